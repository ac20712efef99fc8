"""Diagnose the dimensions of a reproduce_paper.py run: drift, depth, rounding.

For each condition folder written by ``scripts/docs/reproduce_paper.py`` this prints
one JSON line with three things that explain gaps to the paper's figures:

* ``stride``: both estimators over all keyframes at full, 1/2 and 1/4
  resolution (every 2nd / 4th pixel of the same windows), i.e. how far the
  figure drifts with resolution;
* ``per_keyframe``: both estimators for each keyframe alone, outermost first,
  i.e. whether the boundary looks different at different depths;
* ``inner``: both estimators over the keyframes from ``--inner-from`` on
  (default 4, i.e. zoomed in 16x or more).  The paper's sequences have 49-52
  keyframes, nearly all deep inside the opening view, so its median is
  dominated by deep keyframes; a short sequence gives the few outer,
  smooth-looking ones much more weight;
* ``rounding``: for the outermost, middle and deepest keyframe, the fraction
  of sampled pixels whose sign changes when both hyperparameters move by one
  unit in the last place (``numpy.nextafter``).  Where that fraction is large
  the converge/diverge decision is set by float64 rounding, not by the
  hyperparameters, and box counting sees a filled region (dimension near 2).
  For reference, independent random signs with a fraction p of negatives
  would flip 2p(1-p) of the pixels.

Usage::

    python scripts/docs/analyse_reproduction.py out/reproduce256 [--sample 48] [--only relu ...]

Trains ``2 * sample**2`` pixels per keyframe checked (seconds per condition).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from fractaltrain.dimension import boxcount as dimension
from fractaltrain.dimension import inputs as dimension_inputs
from fractaltrain.config import load_config
from fractaltrain.columns import OUT_MEASURE
from fractaltrain.search import noise
from fractaltrain.compute.kernel import run_pixels
from fractaltrain.problem import build_problem, pixel_hyperparams

ROOT = Path(__file__).resolve().parents[2]


def _num(x: float):
    """Rounded for the report; None where an estimator had too few box sizes (NaN is not JSON)."""
    return None if not np.isfinite(x) else round(float(x), 4)


def _estimates(images) -> dict:
    r = dimension.estimate(images)
    return {"median": _num(r.median_local_slope), "fit": _num(r.fit_slope),
            "fit_ci95": [_num(r.fit_ci_low), _num(r.fit_ci_high)]}


def rounding_flips(cfg, problem, file: Path, sample: int) -> dict:
    """Sign flips under a one-ulp move of both axes, on a ``sample``² subgrid of one keyframe."""
    with np.load(file) as z:
        xv, yv = z["x_values"], z["y_values"]
    ix = np.linspace(0, len(xv) - 1, sample).round().astype(int)
    iy = np.linspace(0, len(yv) - 1, sample).round().astype(int)
    gx, gy = np.meshgrid(xv[ix], yv[iy])
    gx, gy = gx.ravel(), gy.ravel()
    a = run_pixels(problem, pixel_hyperparams(cfg, gx, gy))[:, OUT_MEASURE]
    p = float(np.mean(a < 0))
    flipped = noise.flip_rate(problem, gx, gy, np.sign(a), ulps=1)  # the rounding test, moved by one ulp
    return {"keyframe": file.name, "flipped": round(flipped, 4),
            "negative": round(p, 4), "random_signs_would_flip": round(2 * p * (1 - p), 4)}


def analyse(folder: Path, sample: int, inner_from: int = 4) -> dict:
    files = dimension_inputs.find_inputs([folder / "keyframes"])
    if not files:
        raise FileNotFoundError(f"no keyframes in {folder}")
    cfg = load_config(ROOT / "configs" / f"{folder.name}.yaml")
    problem = build_problem(cfg)
    picks = sorted({0, len(files) // 2, len(files) - 1})
    # Each estimate streams the keyframes from disk: a paper-sized sequence
    # (dozens of 4096² float64 keyframes) would not fit in memory at once.
    with np.load(files[0]) as z:
        size = list(z["measure"].shape)
    return {
        "name": folder.name,
        "keyframes": len(files),
        "size": size,
        "stride": {s: _estimates(dimension.subsample(dimension_inputs.iter_images(files), s)) for s in (1, 2, 4)},
        "per_keyframe": [_estimates(dimension_inputs.iter_images([f])) for f in files],
        "inner_from": inner_from,
        "inner": _estimates(dimension_inputs.iter_images(files[inner_from:])) if inner_from < len(files) else None,
        "rounding": [rounding_flips(cfg, problem, files[i], sample) for i in picks] if sample else [],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the --out folder of reproduce_paper.py")
    ap.add_argument("--sample", type=int, default=48, help="subgrid side for the rounding check (0: skip)")
    ap.add_argument("--only", nargs="*", help="condition names")
    ap.add_argument("--inner-from", type=int, default=4, help="first keyframe of the 'inner' estimate")
    args = ap.parse_args(argv)
    folders = [p for p in sorted(args.out.iterdir()) if (p / "keyframes").is_dir()]
    if args.only:
        folders = [p for p in folders if p.name in args.only]
    if not folders:
        print(f"error: no condition folders with keyframes under {args.out}", file=sys.stderr)
        return 2
    for folder in folders:
        print(json.dumps(analyse(folder, args.sample, args.inner_from)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
