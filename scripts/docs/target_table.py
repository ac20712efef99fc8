#!/usr/bin/env python
"""docs/targets.md's comparison table: the old target rule against the search, per config and generator.

For every (config, generator, rule) this finds the target from the opening view
(the config's view widened to ``--size``), zooms to ``--depth`` decades into it
with keyframes only (no video), and records per keyframe the sampled
rounding-flip rate (the zoom's noise guard, run with noise allowed so every
keyframe is computed) and the box-counting dimension (median of local slopes
on that keyframe alone), and saves the deepest keyframe as a still.  The
generators: the config's own draws as given (``notebook`` for the six paper
configs) and ``pcg64`` with the same seeds.  The rules: ``search`` (``locate``,
the default) and ``nearest`` (the old rule, ``locate.locate_nearest``).

Resumable: every row is kept in ``--rows`` (docs/targets.json, committed with
the table, so a finished row outlives the work folder) as soon as it is done,
and zooms reuse their tile store under ``--out``.  The record is re-read before
each row and each write, so runs with different ``--out`` folders (on
different machines' shares, say) can fill one record.  Cost on the 2-core CPU is about
``locate`` (≈ 300k pixels) plus the keyframes (2·size per keyframe, about
3.3 keyframes per decade) per row; ``--device cuda`` runs it on a GPU.

    python scripts/docs/target_table.py --out out/target_table [--configs relu tanh_dataset1] [--rows docs/targets.json]
        [--rngs notebook pcg64] [--rules search nearest] [--depth 6] [--size 64x36]
        [--device cuda] [--doc docs/targets.md] [--images docs/images/targets] [--gallery 320x180]

The table is written into ``--doc`` between the lines ``<!-- target table -->``
and ``<!-- end target table -->`` (appended at the end if they are missing).
With ``--gallery WxH`` the deepest keyframe window of the zoom into each of
``--configs``' search target with its own draws is also rendered at WxH
(``gallery_NAME.png`` in ``--images``, for the README; targets, windows and
times under "gallery" in ``--rows``); ``--rules`` with no rule makes only the stills.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import yaml

from fractaltrain.render import colour
from fractaltrain.compute import device
from fractaltrain.dimension import boxcount as dimension
from fractaltrain.config import config_from_dict, parse_resolution
from fractaltrain.search.locate import locate, locate_nearest
from fractaltrain.render.outputs import save_png
from fractaltrain.problem import build_problem
from fractaltrain.render.still import render
from fractaltrain.compute.files import atomic_write_bytes
from fractaltrain.compute.store import TileStore
from fractaltrain.window import config_window
from fractaltrain.zoom.pipeline import ZoomOptions, zoom
from fractaltrain.zoom.plan import ZoomPlan, outer_window

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ["tanh_baseline", "relu", "deep_linear", "tanh_minibatch16", "tanh_dataset1", "init_offset"]
RNGS, RULES = ["notebook", "pcg64"], ["search", "nearest"]
BEGIN, END = "<!-- target table -->", "<!-- end target table -->"


def raw_config(name: str, rng: str | None = None) -> dict:
    """configs/NAME.yaml as a dict, with generator ``rng`` (same seeds) when given and its
    zoom_target dropped, since the rules pick."""
    raw = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())
    if rng is not None:
        raw["rng"] = rng
    raw.pop("zoom_target", None)
    return raw


def load(name: str, rng: str):
    """Config ``name`` with generator ``rng``; see :func:`raw_config`."""
    return config_from_dict(raw_config(name, rng))


def row(name: str, rng: str, rule: str, depth: float, size: tuple[int, int], out: Path, images: Path) -> dict:
    """Find the target with ``rule``, zoom into it (keyframes only) and measure every keyframe."""
    cfg = load(name, rng)
    problem = build_problem(cfg)
    work = out / f"{name}_{rng}_{rule}"
    store = TileStore(work / "tiles")
    opening = outer_window(config_window(cfg), cfg.resolution, size)
    t0 = time.perf_counter()
    if rule == "search":
        res = locate(problem, opening, depth, store, bounds=config_window(cfg))
    else:
        res = locate_nearest(problem, opening, depth, store)
    t_locate = time.perf_counter() - t0
    opts = ZoomOptions(frames=2, size=size, depth=depth, center=(res.x, res.y), video=False, allow_noise=True)
    t0 = time.perf_counter()
    result = zoom(cfg, work, opts)
    t_zoom = time.perf_counter() - t0
    meta = json.loads(result.json.read_text())
    rates = meta["noise"]["flip_rates"]
    keyframes = sorted((work / "keyframes").glob("*.npz"))
    dims, shares = [], []
    for kf in keyframes:
        with np.load(kf) as z:
            m = z["measure"]
        shares.append(float(np.mean(m > 0)))
        mask = dimension.boundary_mask(m)
        dims.append(dimension.estimate([m]).median_local_slope if mask.sum() >= 16 else None)
    with np.load(keyframes[-1]) as z:
        still = images / f"{name}_{rng}_{rule}.png"
        images.mkdir(parents=True, exist_ok=True)
        save_png(still, colour.to_image(z["measure"]))
    return {
        "config": name, "rng": rng, "rule": rule, "depth": depth, "size": list(size),
        "x": res.x, "y": res.y, "x_exact": repr(res.x), "y_exact": repr(res.y), "strict": res.strict,
        "tier": res.to_dict()["tier"], "flip_rates": rates, "dimensions": dims, "diverged_share": shares,
        "locate_seconds": round(t_locate, 1), "zoom_seconds": round(t_zoom, 1),
        "seconds": round(t_locate + t_zoom, 1), "device": device.active(),
        "still": str(still.relative_to(ROOT / "docs")) if still.is_relative_to(ROOT / "docs") else str(still),
    }


def search_target(name: str, rng: str, depth: float, size: tuple[int, int], out: Path, rows: list[dict]):
    """The search's target for (name, rng): from its table row if there is one, else ``locate`` in the row's store."""
    for r in rows:
        if row_key(r) == (name, rng, "search", depth, list(size)):
            return r["x"], r["y"]
    cfg = load(name, rng)
    opening = outer_window(config_window(cfg), cfg.resolution, size)
    res = locate(build_problem(cfg), opening, depth, TileStore(out / f"{name}_{rng}_search" / "tiles"),
                 bounds=config_window(cfg))
    return res.x, res.y


def gallery_still(name: str, rng: str, depth: float, size: tuple[int, int], gsize: tuple[int, int], out: Path,
                  images: Path, rows: list[dict]) -> dict:
    """Render the deepest keyframe window of the zoom into the search's target at ``gsize``.

    The window is the zoom's own (:class:`ZoomPlan`, opening view widened to ``size``),
    so the still can be made before, or without, that row's zoom.
    """
    x, y = search_target(name, rng, depth, size, out, rows)
    cfg = load(name, rng)
    plan = ZoomPlan(outer_window(config_window(cfg), cfg.resolution, size), (x, y), depth, 2, size)
    win = plan.keyframe_window(plan.n_keyframes - 1)
    raw = raw_config(name, rng)
    raw.pop("views", None)  # named windows of the whole view; this config is one small window of it
    raw["axes"]["x"]["range"], raw["axes"]["y"]["range"] = [win.x0, win.x1], [win.y0, win.y1]
    raw["resolution"] = f"{gsize[0]}x{gsize[1]}"
    t0 = time.perf_counter()
    res = render(config_from_dict(raw), out / "gallery" / f"{name}_{gsize[0]}x{gsize[1]}")
    still = images / f"gallery_{name}.png"
    still.write_bytes(res.png.read_bytes())
    return {"config": name, "rng": rng, "target": [x, y], "x_exact": repr(x), "y_exact": repr(y),
            "window": win.as_list(), "decades": round(math.log10(plan.keyframe_zoom(plan.n_keyframes - 1)), 3),
            "size": list(gsize), "seconds": round(time.perf_counter() - t0, 1), "device": device.active(),
            "still": str(still.relative_to(ROOT)) if still.is_relative_to(ROOT) else str(still)}


def fmt(values, digits: int, scale: float = 1.0) -> str:
    return " ".join("–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{scale * v:.{digits}f}"
                    for v in values)


def table(rows: list[dict]) -> str:
    lines = [
        BEGIN,
        "Generated by `scripts/docs/target_table.py` (per keyframe, outer to deepest: sampled rounding-flip rate, "
        "the zoom's noise guard; box-counting dimension of that keyframe alone, – where it has almost no "
        "boundary).",
        "",
        "| config | draws | rule | target (x, y) | flip rate per keyframe (%) | dimension per keyframe "
        "| deepest keyframe | time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        strict = "" if r["strict"] in (None, True) else " (relaxed)"
        lines.append(
            f"| {r['config']} | {r['rng']} | {r['rule']}{strict} | {r['x_exact']}, {r['y_exact']} "
            f"| {fmt(r['flip_rates'], 1, 100.0)} | {fmt(r['dimensions'], 2)} | ![]({r['still']}) "
            f"| {r['seconds']:.0f} s ({r['device']}) |")
    missing = [f"{name} {rng} {rule}" for name in CONFIGS for rng in RNGS for rule in RULES
               if not any((r["config"], r["rng"], r["rule"]) == (name, rng, rule) for r in rows)]
    if missing:
        lines += ["", f"Not measured yet ({len(missing)} of {len(CONFIGS) * len(RNGS) * len(RULES)} rows): "
                  + ", ".join(missing) + "."]
    lines.append(END)
    return "\n".join(lines)


def write_doc(rows: list[dict], path: Path) -> None:
    text = path.read_text() if path.exists() else ""
    block = table(rows)
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    atomic_write_bytes(path, text.encode())


def row_key(r: dict) -> tuple:
    """What makes two rows the same measurement."""
    return r["config"], r["rng"], r["rule"], r["depth"], r["size"]


def load_record(path: Path) -> dict:
    """The rows and gallery stills done so far: ``{"rows": [...], "gallery": [...]}``."""
    record = json.loads(path.read_text()) if path.exists() else {}
    return {"rows": record.get("rows", []), "gallery": record.get("gallery", [])}


def save_record(record: dict, path: Path) -> None:
    """Write ``record`` atomically, so an interrupted run never leaves half a file."""
    atomic_write_bytes(path, (json.dumps(record, indent=1) + "\n").encode())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/target_table", help="work folder: the rows' tile stores and renders")
    ap.add_argument("--configs", nargs="*", default=CONFIGS)
    ap.add_argument("--rngs", nargs="*", default=RNGS, choices=RNGS)
    ap.add_argument("--rules", nargs="*", default=RULES, choices=RULES)
    ap.add_argument("--depth", type=float, default=6.0)
    ap.add_argument("--size", default="64x36", help="zoom frame size; keyframes are twice as large")
    ap.add_argument("--device", default=None, help="cpu | cuda (default: $FRACTALTRAIN_DEVICE, else cpu)")
    ap.add_argument("--rows", default=str(ROOT / "docs" / "targets.json"), help="the finished rows (resumes)")
    ap.add_argument("--doc", default=str(ROOT / "docs" / "targets.md"))
    ap.add_argument("--images", default=str(ROOT / "docs" / "images" / "targets"))
    ap.add_argument("--gallery", help="WxH: also render each config's deepest search keyframe at this size")
    args = ap.parse_args()
    device.select(args.device)
    out, images, record_path = Path(args.out), Path(args.images).resolve(), Path(args.rows)
    size = parse_resolution(args.size, "size")
    out.mkdir(parents=True, exist_ok=True)
    order = {n: i for i, n in enumerate(CONFIGS)}
    for name in args.configs:
        for rng in args.rngs:
            for rule in args.rules:
                rows = load_record(record_path)["rows"]
                if any(row_key(r) == (name, rng, rule, args.depth, list(size)) for r in rows):
                    continue
                r = row(name, rng, rule, args.depth, size, out, images)
                print(json.dumps(r), flush=True)
                # re-read before adding: another run (or a hand fix) may have changed the record meanwhile
                record = load_record(record_path)
                rows = [o for o in record["rows"] if row_key(o) != row_key(r)] + [r]
                rows.sort(key=lambda r: (order.get(r["config"], 99), r["config"], r["rng"], r["rule"] != "search"))
                record["rows"] = rows
                save_record(record, record_path)
                write_doc(rows, Path(args.doc))
    record = load_record(record_path)
    write_doc(record["rows"], Path(args.doc))
    if args.gallery:
        gsize = parse_resolution(args.gallery, "gallery")
        done = record["gallery"]
        for name in args.configs:
            own = raw_config(name).get("rng", "pcg64")
            if any((g["config"], g["rng"], g["size"]) == (name, own, list(gsize)) for g in done):
                continue
            g = gallery_still(name, own, args.depth, size, gsize, out, images, record["rows"])
            print(json.dumps(g), flush=True)
            record = load_record(record_path)
            done = [d for d in record["gallery"] if (d["config"], d["rng"], d["size"]) != (name, own, list(gsize))]
            record["gallery"] = done + [g]
            save_record(record, record_path)


if __name__ == "__main__":
    main()
