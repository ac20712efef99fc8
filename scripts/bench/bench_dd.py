#!/usr/bin/env python
"""Benchmark of the double-double kernel against the float64 kernel on the same grid.  Prints one JSON line.

Run as a whole process from the repository root:

    python scripts/bench/bench_dd.py               # 32x32 grids, 3 repeats: about 5 min on an idle 2-core machine
    python scripts/bench/bench_dd.py --quick       # 16x16 grids, a smoke test
    python scripts/bench/bench_dd.py --general     # also the DD general path (fast_path=False), much slower

Why: the double-double kernel (``run_pixels_dd``) must cost at most
``REQUIREMENT`` (20) times the float64 kernel (``run_pixels``, with its depth-2
fast path) per pixel-step on the same grid.  The anchor is measured in the
same run, on the same pixels, so the ratio does not depend on the machine's
speed; on a shared machine the two are timed alternately (float64, DD,
float64, DD, ...) so that a change of load hits both.

Workloads: configs/tanh_baseline.yaml (width 16, 272 points, 500 steps) and
configs/demo.yaml (width 8, 72 points, 100 steps), each on a ``--res`` x
``--res`` grid over the config's opening window (its ``axes`` ranges,
10^-3 .. 10^6 on both axes), steps as the config, low parts zero.  The grid
holds diverging pixels; both kernels stop them early in the same way (their
trained fractions are reported), so pixels x steps is the same work for both.

Figures per workload and kernel: ``wall_seconds`` of each timed run, the
median ``ns_per_pixel_step`` (wall time / (pixels x steps)), the process CPU
time per pixel-step (all threads; less sensitive to other processes), and the
``ratio`` of the DD median to the float64 median (also in CPU time).  The
timed runs come after a warm-up call on two blocks of pixels that compiles the
kernels (or loads them from numba's cache, ``warmup_seconds``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np

from fractaltrain.compute.cost import cpu_model
from fractaltrain.columns import OUT_STEPS
from fractaltrain.compute.kernel import LANES, run_pixels, run_pixels_dd
from fractaltrain.config import load_config
from fractaltrain.problem import build_problem, pixel_hyperparams
from fractaltrain.window import axis_values

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENT = 20.0  # the DD kernel may take at most this many times the float64 kernel per pixel-step
WORKLOADS = ("tanh_baseline", "demo")


def grid(cfg, res: int) -> np.ndarray:
    """Hyperparameter table of a res x res image over the config's opening window, row-major."""
    xv = axis_values(cfg.x.range[0], cfg.x.range[1], res, cfg.x.scale)
    yv = axis_values(cfg.y.range[0], cfg.y.range[1], res, cfg.y.scale)
    XX, YY = np.meshgrid(xv, yv)
    return pixel_hyperparams(cfg, XX.ravel(), YY.ravel())


def timed(fn) -> tuple[float, float, np.ndarray]:
    """Wall and process CPU seconds of ``fn()``, and its result."""
    c = time.process_time()
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, time.process_time() - c, out


def summary(walls: list[float], cpus: list[float], out: np.ndarray, pixel_steps: int) -> dict:
    return {
        "wall_seconds": walls,
        "cpu_seconds": cpus,
        "ns_per_pixel_step": float(np.median(walls)) / pixel_steps * 1e9,
        "cpu_ns_per_pixel_step": float(np.median(cpus)) / pixel_steps * 1e9,
        "trained_fraction": float(out[:, OUT_STEPS].sum()) / pixel_steps,
    }


def workload(name: str, res: int, repeats: int, general: bool) -> dict:
    """Float64 and DD kernels on the res x res grid of configs/<name>.yaml, timed alternately."""
    cfg = load_config(ROOT / "configs" / f"{name}.yaml")
    pb = build_problem(cfg)
    hp = grid(cfg, res)
    lo = np.zeros_like(hp)
    steps = int(cfg.training.steps)
    pixel_steps = len(hp) * steps
    kernels = {"float64": lambda: run_pixels(pb, hp), "dd": lambda: run_pixels_dd(pb, hp, lo)}
    if general:
        kernels["dd_general"] = lambda: run_pixels_dd(pb, hp, lo, fast_path=False)
    t = time.perf_counter()
    run_pixels(pb, hp[: 2 * LANES])
    run_pixels_dd(pb, hp[: 2 * LANES], lo[: 2 * LANES])
    if general:
        run_pixels_dd(pb, hp[: 2 * LANES], lo[: 2 * LANES], fast_path=False)
    warmup = time.perf_counter() - t
    walls = {k: [] for k in kernels}
    cpus = {k: [] for k in kernels}
    outs = {}
    for _ in range(repeats):
        for k, fn in kernels.items():
            w, c, outs[k] = timed(fn)
            walls[k].append(w)
            cpus[k].append(c)
    res_ = {"config": f"configs/{name}.yaml", "resolution": [res, res], "pixels": len(hp), "steps": steps,
            "warmup_seconds": warmup}
    for k in kernels:
        res_[k] = summary(walls[k], cpus[k], outs[k], pixel_steps)
    for k in kernels:
        if k != "float64":
            res_[f"ratio_{k}" if k != "dd" else "ratio"] = res_[k]["ns_per_pixel_step"] / res_["float64"]["ns_per_pixel_step"]
    res_["ratio_cpu"] = res_["dd"]["cpu_ns_per_pixel_step"] / res_["float64"]["cpu_ns_per_pixel_step"]
    res_["same_steps_trained"] = bool(np.array_equal(outs["float64"][:, OUT_STEPS], outs["dd"][:, OUT_STEPS]))
    return res_


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per kernel and workload, >= 3 (median quoted)")
    ap.add_argument("--res", type=int, default=None, help="grid side in pixels (default 32, --quick 16)")
    ap.add_argument("--quick", action="store_true", help="16x16 grids (a smoke test, not the figures)")
    ap.add_argument("--only", choices=WORKLOADS, default=None, help="one workload only")
    ap.add_argument("--general", action="store_true", help="also time the DD general path (fast_path=False)")
    args = ap.parse_args()
    if args.repeats < 3:
        ap.error("--repeats must be at least 3 (medians)")
    res = args.res or (16 if args.quick else 32)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    results = {name: workload(name, res, args.repeats, args.general) for name in ((args.only,) if args.only else WORKLOADS)}
    report = {
        "benchmark": "fractaltrain double-double kernel vs float64 kernel, per pixel-step",
        "command": "python " + " ".join(["scripts/bench/bench_dd.py"] + sys.argv[1:]),
        "commit": git_commit(),
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "numba_threads": numba.get_num_threads(),
                    "numba": numba.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "requirement": f"ratio <= {REQUIREMENT}",
        "headline": {name: r["ratio"] for name, r in results.items()},
        "requirement_met": all(r["ratio"] <= REQUIREMENT for r in results.values()),
        "workloads": results,
        "total_seconds": time.perf_counter() - t0,
    }
    print(json.dumps(report))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
