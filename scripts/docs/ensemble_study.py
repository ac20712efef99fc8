"""The seed-ensemble study of docs/ensembles.md, from ensemble render npz files.

Usage::

    python scripts/docs/ensemble_study.py LABEL=OUT/NAME.npz ... [--images docs/images] [--min-size 2]

For every file (a ``render --ensemble K`` output) and every K' in 1, 4, 16, 64
up to K, the P(converge) map of the first K' members (members do not depend
on K, so this is exactly what ``--ensemble K'`` renders) is written as
``ensemble_LABEL_KK'.png`` (upscaled 4x, nearest neighbour) and the box-counting
dimension of its ½ level is printed, with the dimensions of the members' own
sign boundaries and the fraction of pixels whose outcome depends on the draw.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from fractaltrain.dimension import boxcount as dim
from fractaltrain.render.ensemble import probability_image, signed_field
from fractaltrain.render.outputs import save_png


def fit(values: np.ndarray, min_size: float) -> tuple[float, float] | None:
    """(median local slope, fit slope) of the sign boundary, or None when there is no boundary."""
    try:
        d = dim.estimate(values, min_size=min_size)
    except ValueError:
        return None
    return d.median_local_slope, d.fit_slope


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+", help="LABEL=path/to/ensemble.npz")
    ap.add_argument("--images", default="docs/images")
    ap.add_argument("--min-size", type=float, default=2.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    for item in args.inputs:
        label, path = item.split("=", 1)
        members = np.load(path)["members"]
        for k in (1, 4, 16, 64):
            if k > members.shape[0]:
                continue
            p = np.count_nonzero(members[:k] < 0, axis=0) / k
            img = probability_image(p)
            save_png(Path(args.images) / f"ensemble_{label}_K{k}.png", np.repeat(np.repeat(img, 4, 0), 4, 1))
            d = fit(signed_field(p), args.min_size)
            rows.append({"view": label, "K": k, "half_level_median_slope": d and d[0], "half_level_fit": d and d[1],
                         "undecided_fraction": float(np.mean((p > 0) & (p < 1))),
                         "mean_p": float(p.mean())})
        per_member = [fit(m, args.min_size) for m in members]
        found = [f[1] for f in per_member if f is not None]
        rows.append({"view": label, "K": "each member", "members_with_boundary": len(found),
                     "member_fit_mean": float(np.mean(found)), "member_fit_std": float(np.std(found)),
                     "member_converged_fraction_min_max": [float(np.mean(members < 0, axis=(1, 2)).min()),
                                                           float(np.mean(members < 0, axis=(1, 2)).max())]})
    for r in rows:
        print(json.dumps(r))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
