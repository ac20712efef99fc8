#!/usr/bin/env python
"""Check that ``fractaltrain locate CONFIG --depth 6`` gives a target worth watching (issue #11).

For the point X,Y that locate prints, render 48×48 windows centred on it whose
width and height are the opening view's times 10^-k (k = 2, 4, 6 by default;
the opening view is the one locate starts from: the config's view widened to
``--size``), and check in each:

* both phases (measure < 0 and > 0) on at least 5% of pixels;
* a sign change in between 5% and 35% of 2×2 blocks;
* at most 5% of pixels change sign when the window moves by 1e-14 (axis units,
  i.e. decades on a log10 axis) along both axes and is rendered again.

Prints one JSON object; exit code 0 when every window passes, 1 otherwise.

    python scripts/check_targets.py configs/relu.yaml
    python scripts/check_targets.py configs/relu.yaml --point 1.23,4.56   # skip locate
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fractaltrain.config import load_config, parse_resolution
from fractaltrain.search import noise
from fractaltrain.boundary import boundary_mask
from fractaltrain.compute.kernel import OUT_MEASURE, run_pixels
from fractaltrain.problem import build_problem, pixel_hyperparams
from fractaltrain.window import config_window
from fractaltrain.window import Window, axis_values
from fractaltrain.zoom.plan import outer_window

PX = 48
PHASE_MIN, CHANGE_MIN, CHANGE_MAX, FLIP_MAX = 0.05, 0.05, 0.35, 0.05


def render(cfg, problem, win: Window) -> np.ndarray:
    xv = axis_values(win.x0, win.x1, PX, cfg.x.scale)
    yv = axis_values(win.y0, win.y1, PX, cfg.y.scale)
    gx, gy = np.meshgrid(xv, yv)
    return run_pixels(problem, pixel_hyperparams(cfg, gx.ravel(), gy.ravel()))[:, OUT_MEASURE].reshape(PX, PX)


def run_locate(config: str, depth: float, size: str, out: Path) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "fractaltrain", "locate", config, "--depth", repr(depth), "--size", size,
           "--out", str(out), "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"locate failed ({res.returncode}): {res.stderr.strip()}")
    x, y = (float(v) for v in res.stdout.strip().splitlines()[-1].split(","))
    return x, y, time.perf_counter() - t0


def nearest_point(config: str, depth: float, size: str) -> tuple[float, float, float]:
    """The old rule's target (boundary pixel nearest the centre, 8x per level), in process."""
    from fractaltrain.search.locate import locate_nearest
    from fractaltrain.compute.store import TileStore

    t0 = time.perf_counter()
    cfg = load_config(config)
    opening = outer_window(config_window(cfg), cfg.resolution, parse_resolution(size, "--size"))
    with tempfile.TemporaryDirectory() as tmp:
        res = locate_nearest(build_problem(cfg), opening, depth, TileStore(Path(tmp)))
    return res.x, res.y, time.perf_counter() - t0


def check(config: str, x: float, y: float, at: list[float], size: str, shift: float) -> dict:
    cfg = load_config(config)
    problem = build_problem(cfg)
    opening = outer_window(config_window(cfg), cfg.resolution, parse_resolution(size, "--size"))
    rows = []
    for k in at:
        s = 10.0**k
        win = Window.around(x, y, 0.5 * opening.width / s, 0.5 * opening.height / s)
        a = render(cfg, problem, win)
        neg, pos = float(np.mean(a < 0)), float(np.mean(a > 0))
        change = float(boundary_mask(a).mean())
        gx, gy = np.meshgrid(axis_values(win.x0, win.x1, PX, cfg.x.scale), axis_values(win.y0, win.y1, PX, cfg.y.scale))
        # the rounding test, every pixel moved by ``shift`` axis units (not by ulps)
        flip = noise.flip_rate(problem, gx.ravel(), gy.ravel(), np.sign(a).ravel(), ulps=0, shift=shift)
        ok = min(neg, pos) >= PHASE_MIN and CHANGE_MIN <= change <= CHANGE_MAX and flip <= FLIP_MAX
        rows.append({"decades": k, "window": win.as_list(), "converged": round(neg, 4), "diverged": round(pos, 4),
                     "sign_change_blocks": round(change, 4), "flipped": round(flip, 4), "pass": ok})
    return {"config": config, "name": cfg.name, "rng": getattr(cfg, "rng", "pcg64"), "x": x, "y": y,
            "x_exact": repr(x), "y_exact": repr(y), "opening": opening.as_list(), "shift": shift,
            "windows": rows, "pass": all(r["pass"] for r in rows)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--depth", type=float, default=6.0, help="locate --depth (default 6)")
    ap.add_argument("--at", default="2,4,6", help="decades below the opening view to check (default 2,4,6)")
    ap.add_argument("--size", default="1280x720", help="the opening view's aspect, as locate uses it")
    ap.add_argument("--shift", type=float, default=1e-14, help="window move, axis units (default 1e-14)")
    ap.add_argument("--point", help="X,Y to check instead of running locate")
    ap.add_argument("--out", type=Path, help="locate's output folder (default: a temporary one)")
    ap.add_argument("--rule", choices=("search", "nearest"), default="search",
                    help="nearest: check the old rule's point (locate.locate_nearest) instead, for comparison")
    args = ap.parse_args()
    at = [float(v) for v in args.at.split(",")]
    t_locate = None
    if args.point:
        x, y = (float(v) for v in args.point.split(","))
    elif args.rule == "nearest":
        x, y, t_locate = nearest_point(args.config, args.depth, args.size)
    elif args.out:
        x, y, t_locate = run_locate(args.config, args.depth, args.size, args.out)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            x, y, t_locate = run_locate(args.config, args.depth, args.size, Path(tmp))
    t0 = time.perf_counter()
    rec = check(args.config, x, y, at, args.size, args.shift)
    rec["rule"] = "point" if args.point else args.rule
    rec["locate_seconds"] = None if t_locate is None else round(t_locate, 1)
    rec["check_seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(rec, indent=2))
    return 0 if rec["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
