#!/usr/bin/env python
"""docs/tricks.md's zooms: each condition zoomed six decades into a target that ``locate`` finds, and the
boundary's box-counting dimension over the zoom's keyframes.  Prints one JSON line.

    python scripts/docs/tricks_zooms.py --out out/tricks_zooms [--conditions sgd momentum ...]
        [--steps 200] [--depth 6] [--size 96x54] [--budget SECONDS] [--figure docs/img/tricks/located_zooms.png]

For each condition of ``tricks_conditions.CONDITIONS`` (the tanh baseline with
one trick changed) it writes the condition's config, runs ``fractaltrain zoom
CONFIG --depth D --size S --keyframes-only`` (the zoom locates its own target
first: the search's acceptance rule, rounding test included) and then
``fractaltrain dimension`` over the zoom's keyframes (the paper's estimator,
the median of local slopes, boxes from 4 px since the keyframes are small).
Everything goes through the tile store of ``OUT/COND``, so a rerun trains only
what is missing; ``--budget`` stops starting new conditions after that many
seconds.  Results accumulate in ``OUT/results.json``.  ``--figure`` draws every
condition in the results (those zoomed in this run or before) as a row of
keyframes at 0, 2.4, 4.8 and 6 decades (those whose dimension is measured).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from records import log, read_json, write_json  # noqa: E402
from tricks_conditions import CONDITIONS, config_of  # noqa: E402
from tricks_report import ascii_label, font  # noqa: E402

from fractaltrain.compute.files import atomic_write_bytes  # noqa: E402
from fractaltrain.render import colour  # noqa: E402


def run(cmd: list[str]) -> tuple[float, str]:
    """Run ``cmd``; (seconds, stdout).  Its stderr (progress bars, errors) passes through, so an
    hour-long zoom shows where it is; a failure stops the script."""
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}); its messages are above")
    return time.perf_counter() - t, r.stdout


def zoom_one(cond: str, out: Path, steps: int, depth: float, size: str, allow_noise: bool = False) -> dict:
    """Zoom one condition and measure its dimension; the record for results.json.

    ``allow_noise`` passes ``--allow-noise`` to the zoom: its guard then goes on through keyframes where
    float64's rounding decides part of the picture (recorded as ``allow_noise``)."""
    folder = out / cond
    folder.mkdir(parents=True, exist_ok=True)
    cfg = config_of(cond, steps, 64, f"tricks_{cond}")
    path = out / f"{cond}.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    zoom_s, _ = run(["fractaltrain", "zoom", str(path), "--out", str(folder), "--depth", str(depth), "--size", size,
                     "--frames", "24", "--keyframes-only"] + (["--allow-noise"] if allow_noise else []))
    dim_json = folder / "dimension.json"
    _, _ = run(["fractaltrain", "dimension", str(folder), "--min-size", "4", "--json", str(dim_json)])
    dim = json.loads(dim_json.read_text())
    side = json.loads((folder / f"tricks_{cond}.json").read_text())
    target = side.get("target") or {}
    return {"condition": cond, "label": CONDITIONS[cond][0], "steps": steps, "depth": depth, "size": size,
            "seconds": round(zoom_s, 1), "allow_noise": allow_noise,
            "target": {k: target.get(k) for k in ("x_exact", "y_exact", "strict", "flip", "score", "pixels_trained")},
            "by_keyframe": keyframe_dimensions(folder, depth),
            "dimension": {"median_local_slope": dim["median_local_slope"], "fit_slope": dim["fit_slope"],
                          "fit_ci95": dim["fit_ci95"], "images": dim["n_images"]}}


def keyframe_dimensions(folder: Path, depth: float, every: int = 4) -> list[dict]:
    """The dimension (median of local slopes, boxes from 4 px) of every ``every``-th keyframe, with its depth
    and converged share: how the boundary looks on the way down."""
    frames = sorted((folder / "keyframes").glob("*.npz"))
    out = []
    for k in list(range(0, len(frames), every)) + ([len(frames) - 1] if (len(frames) - 1) % every else []):
        js = folder / f"dimension_kf{k:03d}.json"
        run(["fractaltrain", "dimension", str(frames[k]), "--min-size", "4", "--json", str(js)])
        d = json.loads(js.read_text())
        m = np.load(frames[k])["measure"]
        out.append({"keyframe": k, "depth": round(depth * k / max(1, len(frames) - 1), 2),
                    "median_local_slope": round(d["median_local_slope"], 3),
                    "converged": round(float(np.mean(m < 0)), 3)})
    return out


def figure(results: dict, out: Path, path: Path, depths=(0, 2.4, 4.8, 6), cell: int = 144) -> None:
    """Each zoomed condition as one row: its keyframes nearest ``depths`` decades, the local dimension of
    each beside its depth (the whole keyframe, as ``keyframe_dimensions`` measures it)."""
    import io

    from PIL import Image, ImageDraw

    conds = [c for c in CONDITIONS if c in results]
    T, gap, left = 16, 6, 150
    with np.load(sorted((out / conds[0] / "keyframes").glob("*.npz"))[0]) as z:
        rows, cols = z["measure"].shape  # every zoom here has the same keyframe size (--size)
    h = round(cell * rows / cols)
    img = Image.new("RGB", (left + len(depths) * (cell + gap), len(conds) * (T + h + gap) + T), "white")
    d = ImageDraw.Draw(img)
    f = font(12)
    for j, dep in enumerate(depths):
        d.text((left + j * (cell + gap), 2), f"{dep:g} decades", fill="black", font=f)
    for i, cond in enumerate(conds):
        r = results[cond]
        frames = sorted((out / cond / "keyframes").glob("*.npz"))
        y = T + i * (T + h + gap)
        d.text((4, y + T + h // 2 - 12), ascii_label(r["label"]), fill="black", font=f)
        d.text((4, y + T + h // 2 + 2), f"zoom: {r['dimension']['median_local_slope']:.2f}", fill="black", font=f)
        for j, dep in enumerate(depths):
            k = round(dep / r["depth"] * (len(frames) - 1))
            with np.load(frames[k]) as z:
                rgb = colour.to_image(z["measure"])
            tile = Image.fromarray(rgb).resize((cell, h), Image.NEAREST)
            img.paste(tile, (left + j * (cell + gap), y + T))
            near = min(r["by_keyframe"], key=lambda b: abs(b["keyframe"] - k))
            label = f"{near['median_local_slope']:.2f}" if near["keyframe"] == k else ""
            d.text((left + j * (cell + gap), y + 2), f"kf {k} {label}", fill="black", font=f)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out/tricks_zooms"))
    ap.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--depth", type=float, default=6.0)
    ap.add_argument("--size", default="96x54", help="video size; keyframes are about twice it")
    ap.add_argument("--budget", type=float, default=None, help="start no new condition after this many seconds")
    ap.add_argument("--figure", type=Path, default=None, help="draw the zoomed conditions' keyframes into this PNG")
    ap.add_argument("--allow-noise", nargs="*", default=[], choices=list(CONDITIONS), metavar="COND",
                    help="conditions whose zoom goes on through keyframes that rounding partly decides")
    args = ap.parse_args()
    results = read_json(args.out / "results.json", {})
    t0 = time.perf_counter()
    for cond in args.conditions:
        if args.budget is not None and time.perf_counter() - t0 > args.budget:
            log("budget spent; stopping before", cond)
            break
        log("zoom", cond)
        results[cond] = zoom_one(cond, args.out, args.steps, args.depth, args.size, cond in args.allow_noise)
        write_json(args.out / "results.json", results)
        log(cond, json.dumps(results[cond]))
    if args.figure is not None:
        figure(results, args.out, args.figure)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
