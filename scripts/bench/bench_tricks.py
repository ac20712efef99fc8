#!/usr/bin/env python
"""Benchmark of issue 32's training tricks against steepest descent on the same grid.  One JSON line.

Run as a whole process from the repository root:

    python scripts/bench/bench_tricks.py            # tanh baseline (width 16, 272 points), 32x32, 100 steps
    python scripts/bench/bench_tricks.py --quick    # demo config, 16x16, 50 steps, 1 repeat

Every variant trains the same pixel table (the opening view's learning rates)
with early stop off, so each trains every pixel-step and the times compare per
pixel-step.  Medians of ``--repeats`` runs after a warm-up, all in this process:

* optimizers: sgd (the anchor), momentum, nesterov, adam, adamw (depth 2: the fast path);
* layer norm: the same network at depth 3, plain against ``norm: layer`` (both take
  the general path), and residual connections there too.

Targets (issue 32): momentum and nesterov at most 1.2x sgd, adam at most 1.5x; layer norm at most 1.5x.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fractaltrain.compute.kernel import run_pixels  # noqa: E402
from fractaltrain.config import config_from_dict, load_config, with_overrides  # noqa: E402
from fractaltrain.config.optimizer import parse_optimizer  # noqa: E402
from fractaltrain.problem import build_problem, pixel_hyperparams  # noqa: E402
from fractaltrain.window import axis_values  # noqa: E402


def table(cfg, n):
    xv = axis_values(*cfg.x.range, n, cfg.x.scale)
    yv = axis_values(*cfg.y.range, n, cfg.y.scale)
    XX, YY = np.meshgrid(xv, yv)
    return pixel_hyperparams(cfg, XX.ravel(), YY.ravel())


def timed(cfg, n, repeats):
    pb = build_problem(cfg)
    hp = table(cfg, n)
    run_pixels(pb, hp, early_stop=False)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run_pixels(pb, hp, early_stop=False)
        times.append(time.perf_counter() - t)
    return statistics.median(times), hp.shape[0] * cfg.training.steps


def variant(cfg, **network_or_training):
    net = {k: v for k, v in network_or_training.items() if k in ("depth", "residual", "norm")}
    tr = {k: v for k, v in network_or_training.items() if k == "optimizer"}
    raw = cfg.to_dict()
    raw["network"].update(net)
    if tr:
        raw["training"]["optimizer"] = parse_optimizer(tr["optimizer"]).to_dict()
    return config_from_dict(raw, name=cfg.name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/tanh_baseline.yaml")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.config, args.size, args.steps, args.repeats = "configs/demo.yaml", 16, 50, 1
    base = with_overrides(load_config(args.config), steps=args.steps)
    rows = {}
    t_sgd, ps = timed(base, args.size, args.repeats)
    rows["sgd"] = 1e9 * t_sgd / ps
    for name in ("momentum", "nesterov", "adam", "adamw"):
        t, _ = timed(variant(base, optimizer=name), args.size, args.repeats)
        rows[name] = 1e9 * t / ps
    deep = variant(base, depth=3)
    t_plain, ps3 = timed(deep, args.size, args.repeats)
    t_norm, _ = timed(variant(deep, norm="layer"), args.size, args.repeats)
    t_res, _ = timed(variant(deep, residual=True), args.size, args.repeats)
    print(json.dumps({
        "benchmark": "training_tricks", "config": args.config, "size": args.size, "steps": args.steps,
        "repeats": args.repeats, "threads": int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1)),
        "ns_per_pixel_step": rows,
        "ratio_to_sgd": {k: v / rows["sgd"] for k, v in rows.items()},
        "depth3_ns_per_pixel_step": {"plain": 1e9 * t_plain / ps3, "layer_norm": 1e9 * t_norm / ps3,
                                     "residual": 1e9 * t_res / ps3},
        "depth3_ratio_to_plain": {"layer_norm": t_norm / t_plain, "residual": t_res / t_plain},
        "targets": {"momentum": 1.2, "nesterov": 1.2, "adam": 1.5, "layer_norm": 1.5},
    }))


if __name__ == "__main__":
    main()
