"""The seed-ensemble study of docs/ensembles.md, from ensemble render npz files.

Usage::

    python scripts/ensemble_study.py LABEL=OUT/NAME.npz ... [--images docs/images] [--min-size 2]

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

from fractaltrain import dimension as dim
from fractaltrain.ensemble import probability_image, signed_field
from fractaltrain.outputs import save_png


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
            d = dim.estimate(signed_field(p), min_size=args.min_size)
            rows.append({"view": label, "K": k, "half_level_median_slope": d.median_local_slope,
                         "half_level_fit": d.fit_slope, "fit_ci95": [d.fit_ci_low, d.fit_ci_high],
                         "undecided_fraction": float(np.mean((p > 0) & (p < 1))),
                         "mean_p": float(p.mean())})
        per_member = [dim.estimate(m, min_size=args.min_size).fit_slope for m in members[:16]]
        rows.append({"view": label, "K": "members 0-15", "member_fit_mean": float(np.mean(per_member)),
                     "member_fit_std": float(np.std(per_member)),
                     "member_converged_fraction": [float(np.mean(m < 0)) for m in members[:16]]})
    for r in rows:
        print(json.dumps(r))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
