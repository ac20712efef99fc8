"""Train a config's window with the author's notebook code in JAX, and compare with a fractaltrain render.

An independent check of the whole chain (draws, network, training, measure):
the notebook's ``gen_img`` re-expressed in JAX (jit + vmap, float64, the
original threefry), on the same pixel values as a fractaltrain render, and the
share of pixels whose sign (converged or diverged) agrees.  JAX is an optional
extra (``pip install 'fractaltrain[jax]'``); fractaltrain never needs it.

    python scripts/notebook_reference.py configs/tanh_baseline.yaml --window paper \\
        --resolution 40x40 [--steps 500] [--npz out/tanh_baseline.npz]

Without ``--npz`` the render is made here, in-process, through the same code as
``fractaltrain render``.  Prints one JSON line: sign agreement, pixels, times.

The notebook samples ``jnp.logspace(lo, hi, n)`` on each axis; fractaltrain's
pixel centres of a ``sampling: endpoints`` view are the same points, and both
are given here the pixel values fractaltrain computes, so the comparison is of
training only.  Non-finite notebook values (a diverged run whose loss overflowed
makes the notebook's measure NaN) count as diverged.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from fractaltrain.compute.jax_reference import notebook_values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--window", default=None, help="X0,X1,Y0,Y1 or a view name (as render --window)")
    ap.add_argument("--resolution", default="40x40")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--npz", default=None, help="a fractaltrain render of the same config, window and resolution")
    args = ap.parse_args()

    from fractaltrain.config import load_config, with_overrides
    from fractaltrain.window import config_window
    from fractaltrain.window import axis_values

    cfg = with_overrides(load_config(args.config), resolution=args.resolution, steps=args.steps, window=args.window)
    w = config_window(cfg)
    nx, ny = cfg.resolution
    xv = axis_values(w.x0, w.x1, nx, cfg.x.scale)
    yv = axis_values(w.y0, w.y1, ny, cfg.y.scale)
    t0 = time.perf_counter()
    if args.npz:
        ours = np.load(args.npz)["measure"]
    else:
        from fractaltrain.compute.landscape import compute_tile
        from fractaltrain.problem import build_problem
        from fractaltrain.compute.store import TileSpec

        ours = compute_tile(build_problem(cfg), xv, yv, TileSpec(0, 0, 0, ny, 0, nx))[..., 0]
    t_ours = time.perf_counter() - t0
    XX, YY = np.meshgrid(xv, yv)
    t0 = time.perf_counter()
    ref = notebook_values(cfg, XX.ravel(), YY.ravel()).reshape(ny, nx)
    t_ref = time.perf_counter() - t0
    ours_div = ours > 0
    ref_div = ~(ref < 0)  # NaN (overflowed) counts as diverged
    agree = float(np.mean(ours_div == ref_div))
    print(json.dumps({
        "config": cfg.name, "window": [w.x0, w.x1, w.y0, w.y1], "resolution": f"{nx}x{ny}",
        "steps": cfg.training.steps, "sign_agreement": agree, "pixels": int(ours.size),
        "diverged_share_ours": float(ours_div.mean()), "diverged_share_notebook": float(ref_div.mean()),
        "seconds_ours": round(t_ours, 2), "seconds_notebook_jax": round(t_ref, 2),
    }))


if __name__ == "__main__":
    main()
