"""docs/tricks.md's seed-ensemble step: the ½-level dimension of K draws at one depth (tricks_study.py --ensemble K).

For each condition, one square window ``ENSEMBLE_DEPTH`` (2) decades deep,
centred on the condition's edge point (the study's ``points.json``; the same
window as the single-draw ``COND_edge_d2`` one, fewer pixels), trained under K
draws of the config's default ``ensemble.vary`` (every source it draws: weights
and data for the full-batch baseline) by ``fractaltrain.render.still.render``
(the ensemble path, through the tile store: ``OUT/COND/COND_edge_d2_ensK.*``,
so a rerun trains only what is missing; member 0 is the config's own draws).
Measured: the box-counting dimension of the ½ level of P(converge) (the sign
boundary of ½ − p, as ``fractaltrain dimension`` does for an ensemble npz;
boxes from 2 px, median of local slopes), the share of undecided pixels
(0 < p < 1), the mean P, and each member's own sign-boundary dimension (median
over the members that have a boundary in the window) with the members'
converged shares.  Depth-2 conditions run first (``ENSEMBLE_PX``; the depth-4
networks cost about 20x a pixel, so they get ``ENSEMBLE_PX_DEEP``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

ENSEMBLE_DEPTH = 2
ENSEMBLE_PX = 48
ENSEMBLE_PX_DEEP = 24
FEW = 50  # boundary pixels below which the table gives no ½-level dimension (the JSON keeps it)


def ensemble_order(conds: list[str]) -> list[str]:
    """Depth-2 conditions first (cheap), the depth-4 ones last."""
    return sorted(conds, key=lambda c: c.startswith("depth4"))


def ensemble_size(cond: str, px: int = ENSEMBLE_PX, px_deep: int = ENSEMBLE_PX_DEEP) -> int:
    return px_deep if cond.startswith("depth4") else px


def ensemble_window(study, cond: str, steps: int, members: int, size: int, out: Path) -> dict:
    """Render (or resume) ``cond``'s ensemble window around its edge point and measure it."""
    from fractaltrain.render.ensemble import signed_field, with_ensemble
    from fractaltrain.render.still import render

    _, _, open_size, _, _ = study.CONDITIONS[cond]
    cfg0 = study.config_of(cond, steps, open_size, f"{cond}_d0")
    pt = study.read_json(out / "points.json", {})[f"{cond}:edge"]
    name = f"{cond}_edge_d{ENSEMBLE_DEPTH}_ens{members}"
    cfg = with_ensemble(study.config_of(cond, steps, size, name, study.window_edges(cfg0, pt, ENSEMBLE_DEPTH)),
                        members)
    t0 = time.perf_counter()
    res = render(cfg, out / cond)
    seconds = time.perf_counter() - t0
    with np.load(res.npz) as z:
        p, stack = z["p_converged"], z["members"]
    side = json.loads(res.json.read_text())
    own = [study.dimension_of([m]) for m in stack]
    dims = [d["dimension"] for d in own if d["dimension"] is not None]
    npz = res.npz.relative_to(study.ROOT) if res.npz.is_relative_to(study.ROOT) else res.npz
    rec = {"name": name, "size": size, "depth": ENSEMBLE_DEPTH, "members": members,
           "vary": list(cfg.ensemble.vary), "window": [*cfg.x.range, *cfg.y.range], "point": [pt["x"], pt["y"]],
           "npz": str(npz), "seconds": round(seconds, 1), "pixels_computed": res.progress.pixels_computed,
           "kernel_seconds_first_run": side["timing"]["kernel_seconds"],
           "mean_p": round(float(p.mean()), 4), "undecided": round(float(np.mean((p > 0) & (p < 1))), 4),
           "below_half": round(float(np.mean(p < 0.5)), 4),
           "member_converged": [round(float(np.mean(m < 0)), 4) for m in stack],
           "member_dimensions": [d["dimension"] for d in own], "members_with_boundary": len(dims),
           "member_dimension_median": round(float(np.median(dims)), 3) if dims else None,
           "member_dimension_range": [min(dims), max(dims)] if dims else None}
    return rec | study.dimension_of([signed_field(p)])


def run_ensembles(study, results: dict, conds: list[str], steps: int, members: int, px: int, px_deep: int,
                  out: Path, over, skipped: list, save) -> None:
    """The ensemble window of every condition with an edge point, depth-2 conditions first; ``over()`` stops it."""
    for cond in ensemble_order(conds):
        rec = results["conditions"].get(cond, {})
        if "edge" not in rec.get("zooms", {}):
            skipped.append([cond, "ensemble", "no edge point"])
            continue
        size = ensemble_size(cond, px, px_deep)
        old = rec.get("ensemble", {})
        if over() and (old.get("name"), old.get("size")) != (f"{cond}_edge_d{ENSEMBLE_DEPTH}_ens{members}", size):
            skipped.append([cond, "ensemble"])
            continue
        study.log(f"{cond}: ensemble of {members}, {ENSEMBLE_DEPTH} decades deep, {size}x{size} ...")
        e = ensemble_window(study, cond, steps, members, size, out)
        if old.get("name") == e["name"] and old.get("size") == size and not e["pixels_computed"]:
            e |= {k: old[k] for k in ("seconds", "pixels_computed")}  # the run that trained it
        rec["ensemble"] = e
        study.log(f"  {e['seconds']} s, ½-level dimension {e['dimension']} ({e['boundary_pixels']} px), "
                  f"undecided {e['undecided']}, members' median {e['member_dimension_median']}")
        save()


def ensemble_table(results: dict, conds: list[str], fmt) -> list[str]:
    """Markdown lines: one row per condition with an ensemble window (empty if none)."""
    rows = [(c, results["conditions"][c]) for c in conds if "ensemble" in results["conditions"].get(c, {})]
    if not rows:
        return []
    k = rows[0][1]["ensemble"]["members"]
    vary = ", ".join(rows[0][1]["ensemble"]["vary"])
    lines = [f"½-level dimension of {k} draws, {ENSEMBLE_DEPTH} decades deep (the edge point's "
             f"{ENSEMBLE_DEPTH}-decade window; members vary {vary}; member 0 is the draw above). *½ level*: the "
             "box-count dimension of the boundary of P(converge) = ½ (the sign boundary of ½ − p; in brackets its "
             f"boundary pixels; below {FEW}, too few for a dimension: –); *one draw*: the 2-decade window above (its "
             "pixels; r: rounding decides it); *draw 0*: the same draw's sign boundary at this window's pixels; "
             "*members*: the median of the members' own sign-boundary dimensions [min, max] in this window (how many "
             "have a boundary in it); *undecided*: pixels with 0 < P < 1; *P < ½*: pixels most members diverge at; "
             "*seconds*: training the 16 members on the shared machine, 1 thread.", "",
             "| condition | px | ½ level | one draw | draw 0 | members | undecided | mean P | P < ½ | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for c, r in rows:
        e = r["ensemble"]
        one = next((w for w in r["zooms"]["edge"].get("windows", []) if w["depth"] == e["depth"]), None)
        one_txt = "–" if one is None else fmt(one.get("dimension")) + f" ({one['size']} px" + (
            f", r {one['flip_rate']:.0%})" if one.get("rounding_decides") else ")")
        half = fmt(e["dimension"]) if e["boundary_pixels"] >= FEW else "–"
        d0 = fmt((e.get("member_dimensions") or [None])[0])
        rng = e["member_dimension_range"]
        mem = "–" if rng is None else (f"{fmt(e['member_dimension_median'])} [{fmt(rng[0])}, {fmt(rng[1])}] "
                                       f"({e['members_with_boundary']})")
        lines.append(f"| {r['label']} | {e['size']} | {half} ({e['boundary_pixels']} px) | {one_txt} | {d0} | "
                     f"{mem} | {e['undecided']:.0%} | {e['mean_p']:.2f} | {e['below_half']:.0%} | "
                     f"{e['seconds']:.0f} |")
    return lines + [""]
