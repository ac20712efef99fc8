"""The zoom stage: keyframes into a deep-zoom MP4.

:mod:`.plan` (the frozen plan: every frame a pure function of its index),
:mod:`.pipeline` (keyframes, guards, frames, encode), :mod:`.frames` and
:mod:`.frames_kernel` (frame composition from keyframes), :mod:`.overlay`
(the text on frames), :mod:`.encoding` and :mod:`.video` (ffmpeg).
"""
