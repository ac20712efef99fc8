"""docs/tricks.md's figures and table, from the study's results (``tricks_study.py``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fractaltrain.compute.files import atomic_write_bytes
from fractaltrain.render import colour
from tricks_conditions import BANDS, CONDITIONS, LR_PARAMS, ROOT, config_of
from tricks_ensemble import ensemble_table

BEGIN, END = "<!-- tricks table -->", "<!-- end tricks table -->"


# --------------------------------------------------------------------------- figures


def font(size: int = 12):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def ascii_label(text: str) -> str:
    """Pillow's default font has no × or β."""
    return text.replace("×", "x").replace("β", "beta")


def axis_text(ax) -> str:
    if ax.scale == "log10":
        return f"{ax.param} 1e{ax.range[0]:g}..1e{ax.range[1]:g}"
    return f"{ax.param} {ax.range[0]:g}..{ax.range[1]:g}"


def openings_figure(results: dict, conds: list[str], steps: int, path: Path, cell: int = 192, cols: int = 4) -> None:
    """The opening views, 4 a row: the used-rate band outlined, the boundary point crossed."""
    from PIL import Image, ImageDraw

    conds = [c for c in conds if "opening" in results["conditions"].get(c, {})]
    rows = math.ceil(len(conds) / cols)
    T, B, gap = 18, 30, 10
    img = Image.new("RGB", (cols * (cell + gap) + gap, rows * (T + cell + B) + 4), "white")
    d = ImageDraw.Draw(img)
    f, fs = font(13), font(10)
    for k, cond in enumerate(conds):
        r = results["conditions"][cond]
        x, y = gap + (k % cols) * (cell + gap), (k // cols) * (T + cell + B)
        with np.load(ROOT / r["opening"]["npz"]) as z:
            rgb = colour.to_image(z["measure"])
        img.paste(Image.fromarray(rgb).resize((cell, cell), Image.NEAREST), (x, y + T))
        cfg = config_of(cond, steps, r["opening"]["size"], "x")
        (x0, x1), (y0, y1) = cfg.x.range, cfg.y.range
        px = lambda u: x + (u - x0) / (x1 - x0) * cell
        py = lambda v: y + T + cell - (v - y0) / (y1 - y0) * cell
        lo, hi = BANDS[CONDITIONS[cond][4]]
        bx = (px(lo), px(hi)) if cfg.x.param in LR_PARAMS else (x, x + cell - 1)
        by = (py(hi), py(lo)) if cfg.y.param in LR_PARAMS else (y + T, y + T + cell - 1)
        d.rectangle([bx[0], by[0], bx[1], by[1]], outline="black", width=2)
        for rule, zr in r.get("zooms", {}).items():
            pt = zr.get("point")
            if not pt:
                continue
            cx, cy = px(pt["x"]), py(pt["y"])
            if rule == "edge":  # a cross
                d.line([cx - 7, cy, cx + 7, cy], fill="white", width=3)
                d.line([cx, cy - 7, cx, cy + 7], fill="white", width=3)
                d.line([cx - 6, cy, cx + 6, cy], fill="black", width=1)
                d.line([cx, cy - 6, cx, cy + 6], fill="black", width=1)
            else:  # a circle
                d.ellipse([cx - 6, cy - 6, cx + 6, cy + 6], outline="white", width=3)
                d.ellipse([cx - 5, cy - 5, cx + 5, cy + 5], outline="black", width=1)
        d.text((x, y + 2), ascii_label(CONDITIONS[cond][0]), fill="black", font=f)
        d.text((x, y + T + cell + 2), "x " + axis_text(cfg.x), fill=(60, 60, 60), font=fs)
        d.text((x, y + T + cell + 14), "y " + axis_text(cfg.y), fill=(60, 60, 60), font=fs)
    img.save(path, optimize=True)


def zooms_figure(results: dict, conds: list[str], depths: list[int], rule: str, path: Path, cell: int = 96) -> None:
    """Rows = conditions, columns = the opening view and the windows ``depths`` decades deep around ``rule``'s point
    (dimension in the corner; "rounding" where float64's rounding decides the window)."""
    from PIL import Image, ImageDraw

    conds = [c for c in conds if "opening" in results["conditions"].get(c, {})]
    L, T, gap = 150, 20, 4
    img = Image.new("RGB", (L + (len(depths) + 1) * (cell + gap), T + len(conds) * (cell + gap)), "white")
    d = ImageDraw.Draw(img)
    f = font(12)
    for j, depth in enumerate([0] + depths):
        d.text((L + j * (cell + gap) + cell / 2, 3), "opening view" if depth == 0 else f"{depth} decades",
               fill="black", font=f, anchor="ma")
    for i, cond in enumerate(conds):
        y = T + i * (cell + gap)
        d.text((4, y + cell / 2), ascii_label(CONDITIONS[cond][0]), fill="black", font=f, anchor="lm")
        r = results["conditions"][cond]
        wins = {0: r["opening"]} | {w["depth"]: w for w in r.get("zooms", {}).get(rule, {}).get("windows", [])}
        for j, depth in enumerate([0] + depths):
            x = L + j * (cell + gap)
            w = wins.get(depth)
            if w is None:
                d.rectangle([x, y, x + cell - 1, y + cell - 1], fill=(235, 235, 235))
                d.text((x + cell / 2, y + cell / 2), "not rendered", fill=(120, 120, 120), font=f, anchor="mm")
                continue
            with np.load(ROOT / w["npz"]) as z:
                rgb = colour.to_image(z["measure"])
            img.paste(Image.fromarray(rgb).resize((cell, cell), Image.NEAREST), (x, y))
            if w.get("dimension") is not None:
                d.text((x + 3, y + cell - 15), f"{w['dimension']:.2f}", fill="black", font=f,
                       stroke_width=2, stroke_fill="white")
            if w.get("rounding_decides"):
                d.text((x + 3, y + 3), f"rounding {w['flip_rate']:.0%}", fill="black", font=f,
                       stroke_width=2, stroke_fill="white")
    img.save(path, optimize=True)


# --------------------------------------------------------------------------- the table


def fmt(v, spec=".2f"):
    return "–" if v is None else format(v, spec)


def dim_cell(w: dict | None) -> str:
    if w is None:
        return "–"
    return fmt(w.get("dimension")) + (f" (r {w['flip_rate']:.0%})" if w.get("rounding_decides") else "")


def table(results: dict, conds: list[str], depths: list[int], rules: list[str]) -> str:
    head = ", ".join(map(str, depths))
    lines = [BEGIN, "", f"{results['steps']} steps, tanh baseline (notebook draws). *dim.*: median of local box-count "
             "slopes (boxes from 2 px) of the sign boundary. *(r NN%)*: float64's rounding decides that window (the "
             "rounding test, a 12×12 sample moved 4 ulps, flips more than 5% of signs), so its figure measures noise, "
             f"not the boundary. *dim. zoom*: the windows {head} decades deep pooled, those rounding decides left out. "
             "*band*: the used rates (both rates in it for per-layer axes); *converged*: the paper's measure < 0 (mean "
             "of the last 20 losses below the first); *loss ÷10*: the final loss below a tenth of the first. *edge*: "
             "log10 of the first diverging rate along the diagonal (per-layer axes) or, for a setting axis, per row: "
             "median [min, max].", ""]
    for rule in rules:
        title = {"edge": "Windows around the edge point (the first divergence along the diagonal, or along the "
                         "middle row of a setting axis):",
                 "busy": "Windows around the busy point (the sign change with the most sign changes around it in "
                         "the opening view):"}[rule]
        lines += [title, "",
                  "| condition | opening (zoom) px | dim. opening | " + " | ".join(f"dim. {d} dec." for d in depths)
                  + " | dim. zoom | point (x, y) |"
                  + (" band | converged in band | loss ÷10 in band | edge | converged (view) |"
                     if rule == rules[0] else ""),
                  "|---|---|---|" + "---|" * len(depths) + "---|---|" + ("---|" * 5 if rule == rules[0] else "")]
        for c in conds:
            r = results["conditions"].get(c)
            if not r or "opening" not in r:
                continue
            o, b = r["opening"], r["band"]
            zr = r.get("zooms", {}).get(rule, {})
            if rule != rules[0] and not zr.get("windows"):
                continue  # not run (the budget): said in the prose
            byd = {w["depth"]: w for w in zr.get("windows", [])}
            pt = zr.get("point")
            ptxt = f"{pt['x']:.3f}, {pt['y']:.3f}" + (" (busy)" if pt.get("rule_used") != pt.get("rule") else "") \
                if pt else "–"
            zsize = CONDITIONS[c][3]
            row = (f"| {CONDITIONS[c][0]} | {o['size']} ({zsize}) | {fmt(o['dimension'])} | "
                   + " | ".join(dim_cell(byd.get(d)) for d in depths)
                   + f" | {fmt(zr.get('zoom_dimension'))} | {ptxt} |")
            if rule == rules[0]:
                e = b["edge_log10"]
                edge = fmt(e["diagonal"]) if "diagonal" in e else \
                    f"{fmt(e['rows_median'])} [{fmt(e['rows_min'])}, {fmt(e['rows_max'])}]"
                lo, hi = b["band_log10"]
                row += (f" 1e{lo:g}..1e{hi:g} | {b['band_converged']:.0%} | {b['band_loss_fell_10x']:.0%} | {edge} "
                        f"| {b['converged']:.0%} |")
            lines.append(row)
        lines.append("")
    lines += ensemble_table(results, conds, fmt)
    lines += ["Cost (seconds on the shared 2-core machine, first runs, 1 thread; opening view, points and windows): "
              + "; ".join(f"{CONDITIONS[c][0]} {results['conditions'][c].get('seconds_total', 0):.0f}"
                          for c in conds if c in results["conditions"]) + ".", END]
    return "\n".join(lines)


def write_doc(results: dict, conds: list[str], depths: list[int], rules: list[str], path: Path) -> None:
    text = path.read_text() if path.exists() else ""
    block = table(results, conds, depths, rules)
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    atomic_write_bytes(path, text.encode())


def ensemble_figure(results: dict, conds: list[str], path: Path, cell: int = 120, cols: int = 3) -> None:
    """Each condition's ensemble window: member 0's signs (the config's draw) beside P(converge) of all members
    (blue = every member converges, red = none; the hue jumps at ½), the ½-level dimension in the corner."""
    from PIL import Image, ImageDraw

    from fractaltrain.render.ensemble import probability_image

    conds = [c for c in conds if "ensemble" in results["conditions"].get(c, {})]
    rows = math.ceil(len(conds) / cols)
    T, gap = 18, 14
    img = Image.new("RGB", (cols * (2 * cell + 2 + gap) + gap, rows * (T + cell + 6) + 4), "white")
    d = ImageDraw.Draw(img)
    f = font(12)
    for k, cond in enumerate(conds):
        e = results["conditions"][cond]["ensemble"]
        x, y = gap + (k % cols) * (2 * cell + 2 + gap), (k // cols) * (T + cell + 6)
        with np.load(ROOT / e["npz"]) as z:
            one, p = colour.to_image(z["members"][0]), probability_image(z["p_converged"])
        img.paste(Image.fromarray(one).resize((cell, cell), Image.NEAREST), (x, y + T))
        img.paste(Image.fromarray(p).resize((cell, cell), Image.NEAREST), (x + cell + 2, y + T))
        d.text((x, y + 2), f"{ascii_label(CONDITIONS[cond][0])}: draw 0 | P, {e['members']} draws",
               fill="black", font=f)
        txt = "no 1/2 level" if e["boundary_pixels"] == 0 else f"{fmt(e['dimension'])}"
        d.text((x + cell + 5, y + T + cell - 15), txt, fill="black", font=f, stroke_width=2, stroke_fill="white")
    img.save(path, optimize=True)
