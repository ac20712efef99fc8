#!/usr/bin/env python
"""Is a trick landscape's sign decided by float64 rounding, or by the training itself?  Prints one JSON line.

    python scripts/docs/tricks_precision.py CONFIG [--n 24] [--window X0,X1,Y0,Y1] [--against NAME=FILE.npz ...]

Trains an n × n grid over the config's axes four ways: the float64 kernel, the
float64 kernel with every hyperparameter moved by one ulp, the double-double
kernel (the same float64 values, carried to 32 digits), and the double-double
kernel with every hyperparameter moved by 1e-30 of itself.  Where float64 moved
by an ulp disagrees with itself, rounding decides the pixel in float64; where
double-double moved by 1e-30 still agrees with itself, the pixel has a sign of
its own that double-double resolves and that no float64 trainer can be expected
to reproduce (docs/tricks.md, "Past float64").

``--against NAME=FILE.npz`` adds another trainer's results on the same grid (a
``measure`` array, rows y and columns x, with ``x`` and ``y`` axis values to
check the grid): ``scripts/tricks_reference.py train CONFIG --resolution NxN
--npz FILE`` (numpy) or ``scripts/fixtures/make_tricks_fixtures.py --config
CONFIG --resolution NxN --npz FILE`` (JAX and optax); their sign agreement with
the double-double signs is reported under ``against``.  ``--window`` replaces
the config's axis ranges (in axis units, as ``render --window``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fractaltrain.columns import OUT_MEASURE  # noqa: E402
from fractaltrain.compute.device import run_pixels  # noqa: E402
from fractaltrain.config import load_config, with_overrides  # noqa: E402
from fractaltrain.problem import build_problem, pixel_hyperparams  # noqa: E402
from fractaltrain.window import axis_values  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--n", type=int, default=24, help="pixels across (default 24)")
    ap.add_argument("--against", action="append", default=[], metavar="NAME=FILE.npz",
                    help="another trainer's results on the same grid (module docstring)")
    ap.add_argument("--window", help="X0,X1,Y0,Y1 in axis units, in place of the config's axis ranges")
    args = ap.parse_args()
    cfg = load_config(args.config)
    if args.window:
        cfg = with_overrides(cfg, window=args.window)
    pb = build_problem(cfg)
    xv = axis_values(cfg.x.range[0], cfg.x.range[1], args.n, cfg.x.scale)
    yv = axis_values(cfg.y.range[0], cfg.y.range[1], args.n, cfg.y.scale)
    XX, YY = np.meshgrid(xv, yv)
    hp = pixel_hyperparams(cfg, XX.ravel(), YY.ravel())
    runs, seconds = {}, {}
    for name, train in (("float64", lambda: run_pixels(pb, hp)),
                        ("float64_moved_1ulp", lambda: run_pixels(pb, np.nextafter(hp, np.inf))),
                        ("double_double", lambda: run_pixels(pb, hp, np.zeros_like(hp))),
                        ("double_double_moved_1e-30", lambda: run_pixels(pb, hp, hp * 1e-30))):
        t = time.perf_counter()
        runs[name] = np.sign(train()[:, OUT_MEASURE])
        seconds[name] = round(time.perf_counter() - t, 2)

    def agree(a: str, b: str) -> float:
        return round(float(np.mean(runs[a] == runs[b])), 4)

    against = {}
    for item in args.against:
        name, _, path = item.partition("=")
        other = np.load(path)
        if not (np.array_equal(other["x"], xv) and np.array_equal(other["y"], yv)):
            raise SystemExit(f"{path}: its x and y axis values are not this grid's ({args.n} x {args.n})")
        sign = np.sign(other["measure"]).ravel()
        against[name] = {"vs_double_double": round(float(np.mean(sign == runs["double_double"])), 4),
                         "vs_float64_kernel": round(float(np.mean(sign == runs["float64"])), 4)}

    print(json.dumps({
        "config": args.config, "window": [*cfg.x.range, *cfg.y.range], "pixels": int(hp.shape[0]), "steps": cfg.training.steps,
        "optimizer": cfg.training.optimizer.name,
        "float64_vs_float64_moved_1ulp": agree("float64", "float64_moved_1ulp"),
        "double_double_vs_moved_1e-30": agree("double_double", "double_double_moved_1e-30"),
        "float64_vs_double_double": agree("float64", "double_double"),
        "float64_moved_vs_double_double": agree("float64_moved_1ulp", "double_double"),
        "against": against,
        "seconds": seconds,
    }))


if __name__ == "__main__":
    main()
