#!/usr/bin/env python
"""Benchmark of training past float64: perturbation and the double-double kernel against float64.  One JSON line.

Run as a whole process from the repository root:

    python scripts/bench/bench_perturbation.py            # tanh baseline, 32x32, 500 steps, 20 and 24 decades
    python scripts/bench/bench_perturbation.py --quick    # demo config, 16x16, 100 steps

For each depth, a square window of ``9 / 10**depth`` decades is centred on a
point of the boundary found to about 33 digits by bisection in double-double
along x (at the y of the config's zoom target, between two opening-view pixels
of opposite sign), so the window shows the boundary, as a zoom's keyframes do.
The same pixel table is trained three ways, each timed as the median of
``--repeats`` runs after a warm-up:

* ``float64``: the float64 kernel on the pixels' float64 parts (the anchor:
  the grid float64 would train if it could, same pixels, same steps);
* ``double_double``: the double-double kernel;
* ``perturbation``: :func:`fractaltrain.compute.perturbation.run_pixels_perturbed`,
  glitch retraining included, with its glitched fraction.

Ratios are per pixel-step of the same grid, so early stop counts alike.  The
issue's targets: double-double at most 20x float64, perturbation at most 3x.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fractaltrain.compute.cost import cpu_model  # noqa: E402
from fractaltrain.compute.kernel import run_pixels, run_pixels_dd  # noqa: E402
from fractaltrain.compute.landscape import grid_axes, make_grid, tile_hyperparams  # noqa: E402
from fractaltrain.compute.perturbation import run_pixels_perturbed  # noqa: E402
from fractaltrain.compute.store import TileSpec  # noqa: E402
from fractaltrain.config import load_config, view_window, with_overrides  # noqa: E402
from fractaltrain.precision import split_dd  # noqa: E402
from fractaltrain.problem import build_problem, pixel_hyperparams_dd  # noqa: E402
from fractaltrain.window import Window, config_window, decimal_string  # noqa: E402


def sign_at(problem, cfg, x: Fraction, y: Fraction) -> float:
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = 60
        vals = [split_dd([Decimal(10) ** (Decimal(u.numerator) / Decimal(u.denominator))]) for u in (x, y)]
    hi, lo = pixel_hyperparams_dd(cfg, tuple(vals[0]), tuple(vals[1]))
    return float(np.sign(run_pixels_dd(problem, hi, lo)[0, 0]))


def boundary_point(problem, cfg) -> tuple[Fraction, Fraction]:
    """A boundary point to ~33 digits: bisection along x at the target's y between opposite-sign pixels."""
    win = config_window(cfg)
    if cfg.zoom_target is not None:
        x0, x1, y0, y1 = view_window(cfg, cfg.zoom_target)
        cx, cy = Fraction(0.5 * (x0 + x1)), Fraction(0.5 * (y0 + y1))
    else:
        cx, cy = (Fraction(v) for v in win.center)
    step = Fraction(win.width) / 64
    a, b = cx - step, cx + step
    sa = sign_at(problem, cfg, a, cy)
    while sign_at(problem, cfg, b, cy) == sa:  # widen until the sign changes
        a, b = a - step, b + step
        sa = sign_at(problem, cfg, a, cy)
        step *= 2
        if step > Fraction(win.width):
            raise SystemExit("no sign change along x at the target's y")
    for _ in range(115):
        m = (a + b) / 2
        if sign_at(problem, cfg, m, cy) == sa:
            a = m
        else:
            b = m
    return (a + b) / 2, cy


def timed(fn, repeats: int):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/tanh_baseline.yaml")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--depths", default="20,24")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="configs/demo.yaml, 16x16, 100 steps, 1 repeat")
    args = ap.parse_args()
    if args.quick:
        args.config, args.size, args.repeats = "configs/demo.yaml", 16, 1
    cfg = with_overrides(load_config(args.config), steps=args.steps)
    problem = build_problem(cfg)
    t0 = time.perf_counter()
    px, py = boundary_point(problem, cfg)
    rows = []
    for depth in (float(d) for d in args.depths.split(",")):
        half = Fraction(config_window(cfg).width / 10.0**depth) / 2
        grid = make_grid(problem, Window.around(px, py, half, half), args.size, args.size, args.size,
                         precision="double-double")
        xv, yv = grid_axes(cfg, grid)
        hi, lo = tile_hyperparams(cfg, xv, yv, TileSpec(0, 0, 0, args.size, 0, args.size))
        t64, r64 = timed(lambda: run_pixels(problem, hi), args.repeats)
        tdd, rdd = timed(lambda: run_pixels_dd(problem, hi, lo), args.repeats)
        tpt, (rpt, glitched) = timed(lambda: run_pixels_perturbed(problem, hi, lo), args.repeats)
        pixel_steps = hi.shape[0] * cfg.training.steps
        rows.append({
            "depth": depth, "pixels": hi.shape[0], "converged_fraction": float(np.mean(rdd[:, 0] < 0)),
            "float64_ns_per_pixel_step": 1e9 * t64 / pixel_steps,
            "double_double_ns_per_pixel_step": 1e9 * tdd / pixel_steps,
            "perturbation_ns_per_pixel_step": 1e9 * tpt / pixel_steps,
            "double_double_over_float64": tdd / t64, "perturbation_over_float64": tpt / t64,
            "glitched_fraction": glitched,
            "perturbation_equals_double_double_signs": float(np.mean(np.sign(rpt[:, 0]) == np.sign(rdd[:, 0]))),
        })
    print(json.dumps({
        "benchmark": "past_float64", "config": args.config, "steps": cfg.training.steps, "size": args.size,
        "repeats": args.repeats, "threads": int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1)),
        "cpu": cpu_model(), "boundary_point": [decimal_string(px), decimal_string(py)],
        "seconds": time.perf_counter() - t0, "depths": rows,
        "targets": {"double_double_over_float64": 20.0, "perturbation_over_float64": 3.0},
    }))


if __name__ == "__main__":
    main()
