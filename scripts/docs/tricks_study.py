#!/usr/bin/env python
"""docs/tricks.md's study: do the training tricks smooth the boundary, shift it, or leave it fractal?

A reduced version of issue 32's study, sized for a shared 2-core machine.
Every condition is the tanh baseline (configs/tanh_baseline.yaml, the
notebook's draws, full batch) at ``--steps`` (default 200) with one trick
changed (``CONDITIONS``): sgd (the paper's), momentum 0.9, Nesterov 0.9 and
Adam with the per-layer rates lr_input x lr_output as axes; landscapes with a
setting as an axis (lr x momentum, lr x Adam's beta1, lr x warmup steps);
depth 4 (plain, residual, layer norm; 272 points, the two hidden layers at
the config's learning_rate 0.1); hidden widths 8 and 64 (same 272 points of
16 inputs). For each condition this

1. renders the opening view through the tile store
   (``fractaltrain.render.still.render``, ``OUT/COND/COND_d0.*``, so a rerun
   computes only what is missing);
2. picks a boundary point by each rule of ``--rules``: *edge*, the first
   diverging pixel from the low-rate end along the diagonal (both axes
   rates) or along the middle row (a setting on y), and the converged pixel
   before it; *busy*, the 2x2 sign-change block of the opening view with the
   most sign-change blocks within ``size/12`` pixels (ties: nearest the
   view's centre; not within 2 pixels of an edge) and two differing
   neighbouring pixels in it (a horizontal pair if there is one). Then
   9-section (8 points a call, one kernel block) along the line between the
   two pixel centres, in float64, until the bracket is below 1/100 of a
   pixel of the deepest window; kept in ``OUT/points.json``;
3. renders square windows (in pixels; each axis ``10**-d`` of the opening
   view's range) centred on that point, ``d`` = ``--depths`` (default 2, 4,
   6) decades deep (``OUT/COND/COND_edge_dN.*``; busy: ``COND_dN.*``), and
   runs the package's rounding test on each (``noise.grid_flip_rate``: a
   12x12 sample moved 4 ulps; above ``NOISE_MAX``, 5%, rounding decides the
   window, and the pooled zoom dimension leaves it out);
4. measures the box-counting dimension of the sign boundary of every window
   (``fractaltrain.dimension.boxcount.estimate``, boxes from 2 px: median of
   local slopes, the paper's estimator, and the least-squares fit) and over
   the zoom's windows together, and, in the opening view, the fraction of
   pixels that converge (the paper's measure < 0) and that lower the loss
   tenfold (``final_loss`` < -1) inside the band of learning rates people use
   (``BANDS``: 1e-3..1 for sgd-like rules, 1e-4..1e-1 for Adam; both rates in
   the band for per-layer axes), and where the boundary lies (the first
   diverging rate along the diagonal, or along each row of a setting axis).
5. with ``--ensemble K``, trains the edge point's 2-decade window again under
   K draws (the config's default ``ensemble.vary``) at ``--ensemble-px``
   pixels (``--ensemble-px-deep`` for the depth-4 networks) and measures the
   dimension of the ½ level of P(converge) (``tricks_ensemble.py``).

Work is done cheapest first: every opening view, then each condition's point
and windows, the edge rule's for every condition before the busy rule's, then
the ensembles (depth-2 networks first). ``--budget`` seconds stops starting
new windows (a rerun carries on). Prints the results as JSON (also kept in
``OUT/results.json``), writes the figures into ``--images`` and, with
``--doc``, the table into docs/tricks.md (between ``<!-- tricks table -->``
and ``<!-- end tricks table -->``; every rule with results in
``OUT/results.json`` gets its rows, whatever ``--rules`` this run had). The
conditions are in ``tricks_conditions.py``, the figures and the table in
``tricks_report.py``::

    NUMBA_NUM_THREADS=1 python scripts/docs/tricks_study.py --out out/tricks_study [--conditions sgd adam ...]
        [--steps 200] [--depths 2,4,6] [--rules edge busy] [--budget 900] [--images docs/img/tricks]
        [--doc docs/tricks.md] [--ensemble 16 [--ensemble-px 48] [--ensemble-px-deep 24]]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from fractaltrain.columns import LANES
from fractaltrain.dimension import boxcount
from fractaltrain.problem import build_problem
from fractaltrain.render.still import render

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tricks_ensemble  # noqa: E402
from records import log, read_json, write_json  # noqa: E402
from tricks_conditions import BANDS, CONDITIONS, LR_PARAMS, ROOT, axis_values, centres, config_of  # noqa: E402
from tricks_report import ensemble_figure, openings_figure, write_doc, zooms_figure  # noqa: E402



# --------------------------------------------------------------------------- measurements


def dimension_of(ms: list[np.ndarray]) -> dict:
    masks = [boxcount.boundary_mask(m) for m in ms]
    rec = {"boundary_pixels": int(sum(k.sum() for k in masks))}
    if any(k.sum() < 8 for k in masks):
        return rec | {"dimension": None, "dimension_fit": None}
    d = boxcount.estimate(ms, min_size=2)
    return rec | {"dimension": round(d.median_local_slope, 3),
                  "dimension_fit": None if math.isnan(d.fit_slope) else round(d.fit_slope, 3)}


def band_stats(cond: str, cfg, m: np.ndarray, fl: np.ndarray) -> dict:
    """The opening view: converged shares overall and in the used-rate band; where the boundary lies."""
    lo, hi = BANDS[CONDITIONS[cond][4]]
    (x0, x1), (y0, y1) = cfg.x.range, cfg.y.range
    ny, nx = m.shape
    ux, uy = centres(x0, x1, nx), centres(y0, y1, ny)
    inx = (ux >= lo) & (ux <= hi) if cfg.x.param in LR_PARAMS else np.ones(nx, bool)
    iny = (uy >= lo) & (uy <= hi) if cfg.y.param in LR_PARAMS else np.ones(ny, bool)
    sel = np.ix_(iny, inx)
    rec = {"band_log10": [lo, hi], "converged": round(float(np.mean(m < 0)), 4),
           "band_pixels": int(inx.sum() * iny.sum()),
           "band_converged": round(float(np.mean(m[sel] < 0)), 4),
           "band_loss_fell_10x": round(float(np.mean(fl[sel] < -1)), 4)}

    def first_diverged(signs, u):
        k = np.flatnonzero(signs > 0)
        return None if k.size == 0 else round(float(u[k[0]]), 2)

    if cfg.y.param in LR_PARAMS:  # both axes rates: along the diagonal lr_input = lr_output
        n = min(nx, ny)
        rec["edge_log10"] = {"diagonal": first_diverged(m[np.arange(n), np.arange(n)], ux[:n])}
    else:  # lr x setting: the first diverging lr in each row (setting value)
        edges = [first_diverged(m[i], ux) for i in range(ny)]
        e = [v for v in edges if v is not None]
        rec["edge_log10"] = {"rows_min": min(e, default=None), "rows_median": float(np.median(e)) if e else None,
                             "rows_max": max(e, default=None), "rows_without": edges.count(None),
                             "first_row": edges[0], "last_row": edges[-1],
                             "setting_first_last": [round(float(uy[0]), 4), round(float(uy[-1]), 4)]}
    return rec


# --------------------------------------------------------------------------- the boundary point


def ranked_blocks(m: np.ndarray) -> list[tuple[int, int]]:
    """Row, column of the 2x2 sign-change blocks, the busiest neighbourhood first (see the module's docstring)."""
    s = m < 0
    blocks = (s[:-1, :-1] != s[:-1, 1:]) | (s[:-1, :-1] != s[1:, :-1]) | (s[:-1, :-1] != s[1:, 1:])
    n = blocks.shape[0]
    r = max(2, m.shape[0] // 12)
    c = np.pad(blocks.astype(np.int64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    keyed = []
    for i, j in zip(*np.nonzero(blocks)):
        if min(i, j) < 2 or max(i, j) > n - 3:
            continue
        a0, a1, b0, b1 = max(0, i - r), min(n, i + r + 1), max(0, j - r), min(blocks.shape[1], j + r + 1)
        score = c[a1, b1] - c[a0, b1] - c[a1, b0] + c[a0, b0]
        keyed.append(((score, -((i - n / 2) ** 2 + (j - blocks.shape[1] / 2) ** 2)), (int(i), int(j))))
    if not keyed:
        raise RuntimeError("no sign change away from the edges of the opening view")
    keyed.sort(key=lambda kb: kb[0], reverse=True)  # stable: ties keep the scan order
    return [b for _, b in keyed]


def edge_pair(cfg, m: np.ndarray):
    """The first diverging pixel, from the low-rate end, along the diagonal (both axes rates) or along the middle
    row (a setting on y), and the converged pixel before it; None if there is none."""
    ny, nx = m.shape
    if cfg.y.param in LR_PARAMS:
        path = [(k, k) for k in range(min(nx, ny))]
    else:
        path = [(ny // 2, k) for k in range(nx)]
    for a, b in zip(path, path[1:]):
        if m[a] < 0 and m[b] > 0:
            return a, b
    return None


def boundary_point(cond: str, rule: str, cfg, m: np.ndarray, target_width: float, points: Path) -> dict:
    """9-section along a line through a sign change of the opening view (``rule``: edge or busy); kept in ``points``."""
    key = f"{cond}:{rule}"
    allp = read_json(points, {})
    if key in allp and allp[key]["target_width"] <= target_width and allp[key]["steps"] == cfg.training.steps:
        return allp[key]
    from fractaltrain.search.noise import signs_of

    t0 = time.perf_counter()
    problem = build_problem(cfg)
    (x0, x1), (y0, y1) = cfg.x.range, cfg.y.range
    ny, nx = m.shape
    ux, uy = centres(x0, x1, nx), centres(y0, y1, ny)
    s = m < 0

    def busy_pairs():
        for i, j in ranked_blocks(m):
            yield from (((i, j), p) for p in [((i, j), (i, j + 1)), ((i + 1, j), (i + 1, j + 1)), ((i, j), (i + 1, j)),
                                              ((i, j + 1), (i + 1, j + 1))] if s[p[0]] != s[p[1]])

    def signs(ts):
        pts = [pa + t * (pb - pa) for t in ts]
        return signs_of(problem, axis_values(cfg.x.scale, [p[0] for p in pts]),
                        axis_values(cfg.y.scale, [p[1] for p in pts]))

    # The pair's ends are trained again at values recomputed from the pixel centres,
    # which can differ from the image's by an ulp; where rounding decides the sign
    # (a busy block can be such a place) the pair may then not change sign: take
    # the next busiest block's pair, and say how many were passed over.
    pair = edge_pair(cfg, m) if rule == "edge" else None
    rule_used = "edge" if pair is not None else "busy"
    candidates = iter([(pair[0], pair)]) if pair is not None else busy_pairs()
    passed_over = 0
    for (i, j), pair in candidates:
        (ia, ja), (ib, jb) = pair
        pa, pb = np.array([ux[ja], uy[ia]]), np.array([ux[jb], uy[ib]])
        sa, sb = signs([0.0, 1.0])
        if sa * sb < 0:
            break
        passed_over += 1
        if rule_used == "edge" or passed_over >= 40:
            raise RuntimeError(f"{cond}: the pixel pair's signs do not differ when trained again "
                               f"({passed_over} pair(s) tried)")
    along = "x" if ia == ib else ("y" if ja == jb else "diagonal")
    span = (x1 - x0) if along != "y" else (y1 - y0)
    a, b, calls = 0.0, 1.0, 1
    length = float(np.abs(pb - pa).max())  # axis units along the line
    while (b - a) * length > target_width:
        ts = [a + (b - a) * k / (LANES + 1) for k in range(1, LANES + 1)]
        ss = list(signs(ts))
        calls += 1
        pts, sg = [a] + ts + [b], [sa] + ss + [-sa]
        for k in range(LANES + 1):
            if sg[k] * sg[k + 1] < 0 or sg[k + 1] == 0:
                a, b, sa = pts[k], pts[k + 1], sg[k]
                break
    t = 0.5 * (a + b)
    p = pa + t * (pb - pa)
    rec = {"rule": rule, "rule_used": rule_used, "block": [i, j], "pairs_passed_over": passed_over, "along": along,
           "line": [pa.tolist(), pb.tolist()], "x": float(p[0]), "y": float(p[1]),
           "bracket_axis_units": (b - a) * length, "bracket_pixels_of_opening": (b - a) * length / span * nx,
           "target_width": target_width, "sign_left": float(sa), "calls": calls, "steps": cfg.training.steps,
           "seconds": round(time.perf_counter() - t0, 1)}
    allp = read_json(points, {})
    allp[key] = rec
    write_json(points, allp)
    return rec


# --------------------------------------------------------------------------- windows


def render_window(cond: str, cfg, out: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    t0 = time.perf_counter()
    res = render(cfg, out / cond)
    seconds = time.perf_counter() - t0
    with np.load(res.npz) as z:
        m, fl = z["measure"], z["final_loss"]
    side = json.loads(res.json.read_text())
    rec = {"name": cfg.name, "size": cfg.resolution[0], "window": [*cfg.x.range, *cfg.y.range],
           "npz": str(res.npz.relative_to(ROOT) if res.npz.is_relative_to(ROOT) else res.npz),
           "seconds": round(seconds, 1), "pixels_computed": res.progress.pixels_computed,
           "kernel_seconds_first_run": side["timing"]["kernel_seconds"],
           "mean_steps_trained": round(side["stats"]["mean_steps_trained"], 1),
           "converged": round(float(np.mean(m < 0)), 4)}
    return rec | dimension_of([m]), m, fl


def window_edges(cfg0, pt: dict, depth: int) -> str:
    hx = (cfg0.x.range[1] - cfg0.x.range[0]) / 2 / 10**depth
    hy = (cfg0.y.range[1] - cfg0.y.range[0]) / 2 / 10**depth
    return ",".join(repr(float(v)) for v in (pt["x"] - hx, pt["x"] + hx, pt["y"] - hy, pt["y"] + hy))


def flip_test(cfg, npz: Path) -> tuple[float, float]:
    from fractaltrain.search import noise

    t0 = time.perf_counter()
    with np.load(npz) as z:
        rate = noise.grid_flip_rate(build_problem(cfg), z["x_values"], z["y_values"], z["measure"])
    return round(rate, 4), round(time.perf_counter() - t0, 1)


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/tricks_study")
    ap.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--depths", default="2,4,6", help="decades below the opening view, comma-separated")
    ap.add_argument("--rules", nargs="+", default=["edge", "busy"], choices=["edge", "busy"],
                    help="boundary points: edge (the first divergence along the diagonal or middle row) and/or busy")
    ap.add_argument("--budget", type=float, default=math.inf, help="seconds: start no new window after this")
    ap.add_argument("--images", default="docs/img/tricks")
    ap.add_argument("--doc", default=None, help="write the table into this file (docs/tricks.md), between its markers")
    ap.add_argument("--ensemble", type=int, default=0, metavar="K",
                    help="also the ½-level dimension of K draws in each edge point's 2-decade window")
    ap.add_argument("--ensemble-px", type=int, default=tricks_ensemble.ENSEMBLE_PX, help="its pixels (depth-2 nets)")
    ap.add_argument("--ensemble-px-deep", type=int, default=tricks_ensemble.ENSEMBLE_PX_DEEP,
                    help="its pixels for the depth-4 networks (about 20x the cost of a pixel)")
    args = ap.parse_args()
    t_start = time.perf_counter()
    out, images = Path(args.out).resolve(), ROOT / args.images
    out.mkdir(parents=True, exist_ok=True)
    depths = [int(v) for v in args.depths.split(",")]
    store = out / "results.json"
    results = read_json(store, {"conditions": {}})
    if results.get("steps") not in (None, args.steps) or results.get("depths") not in (None, depths):
        results = {"conditions": {}}  # another study's figures: measured again (the tiles are still reused)
    results |= {"steps": args.steps, "depths": depths}
    save = lambda: write_json(store, results)
    over = lambda: time.perf_counter() - t_start > args.budget
    skipped = []
    for cond in args.conditions:  # every opening view first
        rec = results["conditions"].setdefault(cond, {"label": CONDITIONS[cond][0]})
        if over():
            skipped.append([cond, 0])
            continue
        size = CONDITIONS[cond][2]
        cfg = config_of(cond, args.steps, size, f"{cond}_d0")
        log(f"{cond}: opening view {size}x{size} ...")
        o, m, fl = render_window(cond, cfg, out)
        if rec.get("opening", {}).get("pixels_computed") and not o["pixels_computed"]:
            o |= {k: rec["opening"][k] for k in ("seconds", "pixels_computed")}  # the run that trained it
        rec["opening"] = o
        rec["band"] = band_stats(cond, cfg, m, fl)
        log(f"  {o['seconds']} s, dimension {o['dimension']}, band converged {rec['band']['band_converged']}")
        save()
    from fractaltrain.search.noise import NOISE_MAX

    for rule in args.rules:  # then each condition's point and windows, rule by rule
        for cond in args.conditions:
            rec = results["conditions"][cond]
            if "opening" not in rec:
                continue
            _, _, size, zsize, _ = CONDITIONS[cond]
            cfg0 = config_of(cond, args.steps, size, f"{cond}_d0")
            with np.load(ROOT / rec["opening"]["npz"]) as z:
                m0 = z["measure"]
            span = min(cfg0.x.range[1] - cfg0.x.range[0], cfg0.y.range[1] - cfg0.y.range[0])
            if over():
                skipped.append([cond, rule, "point"])
                continue
            zrec = rec.setdefault("zooms", {}).setdefault(rule, {})
            zrec["point"] = boundary_point(cond, rule, cfg0, m0, span / 10 ** max(depths) / zsize / 100,
                                           out / "points.json")
            windows = {w["depth"]: w for w in zrec.get("windows", [])}
            prefix = cond if rule == "busy" else f"{cond}_{rule}"
            for depth in depths:
                cfg = config_of(cond, args.steps, zsize, f"{prefix}_d{depth}", window_edges(cfg0, zrec["point"], depth))
                done = depth in windows and windows[depth]["window"] == [*cfg.x.range, *cfg.y.range]
                if done and "rounding_decides" in windows[depth]:
                    continue
                if over():
                    skipped.append([cond, rule, depth])
                    continue
                if not done:
                    log(f"{cond} ({rule}): {depth} decades deep, {zsize}x{zsize} ...")
                    w, m, _ = render_window(cond, cfg, out)
                    w["depth"] = depth
                    windows[depth] = w
                w = windows[depth]
                w["flip_rate"], w["flip_seconds"] = flip_test(cfg, ROOT / w["npz"])
                w["rounding_decides"] = w["flip_rate"] > NOISE_MAX
                log(f"  {w['seconds']} s, dimension {w['dimension']}, {w['boundary_pixels']} boundary px, "
                    f"flip rate {w['flip_rate']}")
                zrec["windows"] = [windows[d] for d in sorted(windows)]
                save()
            resolved = [d for d in depths if d in windows and not windows[d]["rounding_decides"]]
            zrec["resolved_depths"] = resolved
            zd = {"dimension": None, "dimension_fit": None}
            if resolved:
                ms = []
                for d in resolved:
                    with np.load(ROOT / windows[d]["npz"]) as z:
                        ms.append(z["measure"])
                zd = dimension_of(ms)
            zrec["zoom_dimension"], zrec["zoom_dimension_fit"] = zd["dimension"], zd["dimension_fit"]
            zrec["seconds"] = round(zrec["point"]["seconds"] + sum(w["seconds"] + w.get("flip_seconds", 0)
                                                                 for w in windows.values()), 1)
            rec["seconds_total"] = round(rec["opening"]["seconds"]
                                         + sum(z.get("seconds", 0) for z in rec["zooms"].values()), 1)
            save()
    if args.ensemble:
        tricks_ensemble.run_ensembles(sys.modules[__name__], results, args.conditions, args.steps, args.ensemble,
                                      args.ensemble_px, args.ensemble_px_deep, out, over, skipped, save)
    results["skipped_this_run"] = skipped
    results["wall_seconds_this_run"] = round(time.perf_counter() - t_start, 1)
    save()
    images.mkdir(parents=True, exist_ok=True)
    shown = [c for c in CONDITIONS if c in results["conditions"]]
    openings_figure(results, shown, args.steps, images / "openings.png")
    for rule in args.rules:
        zooms_figure(results, shown, depths, rule, images / f"zooms_{rule}.png")
    if any("ensemble" in results["conditions"][c] for c in shown):
        ensemble_figure(results, shown, images / "ensemble_edge.png")
    if args.doc:  # every rule with results (a run of fewer --rules keeps the others' rows)
        rules = [r for r in ("edge", "busy") if any(r in results["conditions"][c].get("zooms", {}) for c in shown)]
        write_doc(results, shown, depths, rules, ROOT / args.doc)
    print(json.dumps(results, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
