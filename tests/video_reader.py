"""Reading MP4 files back, for the tests (the package itself only writes them)."""

import os
import subprocess

import imageio_ffmpeg
import numpy as np


def read_video(path):
    """``(frames, fps)``: every decoded frame as ``(n, height, width, 3)`` uint8 RGB.

    ``-fps_mode passthrough`` keeps ffmpeg from duplicating or dropping frames to
    force a constant rate, so the count is that of the stream.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"video not found: {path}")
    gen = imageio_ffmpeg.read_frames(os.fspath(path), pix_fmt="rgb24", output_params=["-fps_mode", "passthrough"])
    try:
        meta = next(gen)
        width, height = meta["size"]
        data = b"".join(gen)
    finally:
        gen.close()
    return np.frombuffer(data, dtype=np.uint8).reshape(-1, height, width, 3), float(meta["fps"])


def available_codecs(candidates):
    """The members of ``candidates`` that the bundled ffmpeg can encode."""
    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-encoders"],
                         capture_output=True, check=True).stdout.decode(errors="replace")
    names = {parts[1] for parts in map(str.split, out.splitlines()) if len(parts) >= 2 and len(parts[0]) == 6}
    return tuple(c for c in candidates if c in names)
