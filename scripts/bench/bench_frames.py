#!/usr/bin/env python
"""Benchmark of frame composition and encoding (issue 14).  Prints one JSON line.

Run as a whole process from the repository root:

    python scripts/bench/bench_frames.py                  # 1920x1080, 48 frames
    python scripts/bench/bench_frames.py --size 640x360 --frames 24 --quick

A zoom of 10 decades over 600 frames (keyframe factor 2, so keyframes are
3840×2160) is planned and frames are composed from synthetic keyframes: raw
values with the sign structure and magnitude spread of a trainability
landscape (filaments of both signs, values over ten decades), made once
before timing, so only composition and encoding are measured.  The frames
timed are consecutive ones from the middle of the video, so they cross
keyframe boundaries and pay for the colour equalisation of new keyframes as a
real encode does; the composer has composed the frame before them (steady
state of a long encode, not the cold start of its first frame).

Figures (medians over --repeats timed runs, after a warm-up run that also
compiles the composer):

  * compose_fps: frames composed per second (no encoding);
  * encode_fps: precomposed frames encoded per second (libx264, crf 18 and
    the preset given, the zoom command's defaults), through the same writer as
    ``zoom``;
  * pipeline_fps: compose and encode together, as ``zoom`` does (the encoder
    is a separate process, so the two overlap);
  * us_per_output_pixel: the pipeline's wall time per frame pixel;
  * load average and CPU count, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fractaltrain.render import colour  # noqa: E402
from fractaltrain.zoom.frames import FrameComposer  # noqa: E402
from fractaltrain.zoom.video import DEFAULT_PRESET, PRESETS, Mp4Writer  # noqa: E402
from fractaltrain.window import Window  # noqa: E402
from fractaltrain.zoom.plan import ZoomPlan  # noqa: E402


def synthetic_keyframe(k: int, shape: tuple[int, int]) -> np.ndarray:
    """Raw values with filaments of both signs and magnitudes over ten decades (rows = y ascending)."""
    h, w = shape
    rng = np.random.default_rng(k)
    y = np.linspace(0.0, 1.0, h)[:, None]
    x = np.linspace(0.0, 1.0, w)[None, :]
    phase = rng.uniform(0, 2 * np.pi, 4)
    f = (np.sin(37 * x + 11 * y + phase[0]) * np.sin(23 * y - 7 * x + phase[1])
         + 0.5 * np.sin(91 * (x * y) + phase[2]) + 0.25 * np.sin(211 * x - 157 * y + phase[3]))
    mag = 10.0 ** (10 * np.abs(np.sin(5 * x + 3 * y + phase[0])))
    v = np.sign(f) * mag * (1 + 0.1 * np.abs(f))
    v[v == 0] = 1.0
    return v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--frames", type=int, default=48, help="frames per timed run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one timed run")
    ap.add_argument("--preset", default=DEFAULT_PRESET, choices=PRESETS, help="encoder speed preset")
    args = ap.parse_args()
    w, h = (int(s) for s in args.size.lower().split("x"))
    plan = ZoomPlan(outer=Window(-3.0, 6.0, -3.0, 6.0), target=(1.5, 1.5), depth=10.0, frames=600, size=(w, h))
    first = plan.frames // 2 - args.frames // 2
    frames = range(first, first + args.frames)
    levels = sorted({plan.frame_level(i)[0] + r for i in frames for r in range(3)} - {plan.n_keyframes})
    kh, kw = plan.keyframe_size[1], plan.keyframe_size[0]
    keyframes = {k: synthetic_keyframe(k, (kh, kw)) for k in levels if k < plan.n_keyframes}
    refs = {k: colour.make_reference(v) for k, v in keyframes.items()}

    def composer() -> FrameComposer:
        comp = FrameComposer(plan, keyframes.__getitem__, refs.__getitem__)
        comp.frame(first - 1)
        return comp

    def compose_all() -> list[np.ndarray]:
        comp = composer()
        t0 = time.perf_counter()
        images = [comp.frame(i) for i in frames]
        return images, time.perf_counter() - t0

    def encode(images) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            with Mp4Writer(Path(tmp) / "bench.mp4", w, h, fps=30, preset=args.preset) as writer:
                for f in images:
                    writer.write(f)
            return time.perf_counter() - t0

    def pipeline() -> float:
        comp = composer()
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            with Mp4Writer(Path(tmp) / "bench.mp4", w, h, fps=30, preset=args.preset) as writer:
                for i in frames:
                    writer.write(comp.frame(i))
            return time.perf_counter() - t0

    images, _ = compose_all()  # warm-up (compiles)
    repeats = 1 if args.quick else args.repeats
    times = {"compose": [], "encode": [], "pipeline": []}
    for _ in range(repeats):
        times["compose"].append(compose_all()[1])
        times["encode"].append(encode(images))
        times["pipeline"].append(pipeline())
    med = {k: statistics.median(v) for k, v in times.items()}
    n = len(frames)
    print(json.dumps({
        "size": [w, h], "frames": n, "keyframe_size": list(plan.keyframe_size), "repeats": repeats,
        "preset": args.preset,
        "compose_fps": n / med["compose"], "encode_fps": n / med["encode"], "pipeline_fps": n / med["pipeline"],
        "us_per_output_pixel": 1e6 * med["pipeline"] / (n * w * h),
        "seconds": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "cpus": os.cpu_count(), "loadavg": list(os.getloadavg()),
    }))


if __name__ == "__main__":
    main()
