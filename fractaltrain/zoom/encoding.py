"""Frames of a planned zoom to an MP4: composition, the optional text overlay, the encoder.

The last stage of the data flow (tiles → keyframes → frames → MP4).  Frames
are composed by :class:`~fractaltrain.zoom.frames.FrameComposer` and streamed to
ffmpeg by :class:`~fractaltrain.zoom.video.Mp4Writer`, which writes atomically;
a partial encode left by a killed run is removed by the next one.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from fractaltrain.config import Config
from fractaltrain.errors import OutputError
from fractaltrain.zoom.frames import FrameComposer
from fractaltrain.zoom.plan import ZoomPlan


def overlay_lines(cfg: Config, plan: ZoomPlan, i: int) -> list[str]:
    from fractaltrain.zoom.overlay import format_depth, window_ranges

    x, y = window_ranges(cfg, plan.frame_window(i))
    return [f"x {x}", f"y {y}", f"zoom {format_depth(math.log10(plan.zoom(i)))}"]



STALE_PARTIAL_SECONDS = 3600.0


def remove_stale_partials(path: Path) -> None:
    """Delete ``path``'s temporary encodes left by a killed run (``NAME.mp4.PID-XXXX.partial.mp4``).

    One is stale when its process is gone from this machine or it has not been
    written to for an hour (a live encoder writes continuously).
    """
    import os
    import re

    for p in path.parent.glob(f"{path.name}.*.partial.mp4"):
        m = re.fullmatch(re.escape(path.name) + r"\.(\d+)-[0-9a-f]+\.partial\.mp4", p.name)
        if m is None:
            continue
        try:
            age = time.time() - p.stat().st_mtime
            pid = int(m.group(1))
            try:
                os.kill(pid, 0)
                alive = pid != os.getpid()
            except ProcessLookupError:
                alive = False
            except PermissionError:
                alive = True
            if not alive or age > STALE_PARTIAL_SECONDS:
                p.unlink()
        except OSError:
            continue


def encode(plan: ZoomPlan, cfg: Config, cache, opts, path: Path, frames, quiet: bool) -> None:
    """Compose ``frames`` of ``plan`` and encode them to ``path`` (atomically; see :class:`~fractaltrain.zoom.video.Mp4Writer`).

    ``cache`` gives keyframe values and colour references (``values(k)``,
    ``reference(k)``); ``opts`` the palette, overlay and encoder settings.
    """
    from tqdm import tqdm

    from fractaltrain.zoom.video import Mp4Writer

    remove_stale_partials(path)
    w, h = opts.size
    try:
        composer = FrameComposer(plan, cache.values, cache.reference, opts.palette)
        with Mp4Writer(path, w, h, fps=opts.fps, codec=opts.codec, crf=opts.crf, preset=opts.preset) as writer:
            for i in tqdm(frames, desc="frames", unit="frame", disable=quiet):
                frame = composer.frame(i)
                if opts.overlay:
                    from fractaltrain.zoom.overlay import draw_overlay

                    frame = draw_overlay(frame, overlay_lines(cfg, plan, i))
                writer.write(frame)
    except RuntimeError as exc:  # ffmpeg failed (full disk, ...): its last line says why
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        why = lines[-1] if len(lines) > 1 else (lines[0] if lines else "unknown error")
        raise OutputError(f"{path}: encoding failed: {why[:200]}") from None
