#!/usr/bin/env python
"""docs/deep.md's inner-scale study: how deep is the trainability boundary fractal?

For every condition (the tanh baseline, notebook draws, at 100, 200, 500 and
1000 steps, and the small network of configs/deep_small.yaml) this

1. finds a boundary point near the condition's target: a float64 scan along x
   at the target's y for the sign change nearest the target, then 9-section
   (8 points a call, one kernel block of LANES pixels) of that bracket, in
   float64 down to ``F64_WIDTH`` decades, then in double-double, each
   bracket kept exactly (decimal strings) in ``OUT/points.json``;
2. renders square windows centred on it, ``9 / 10**depth`` decades wide, at
   ``--depths`` (default 0, 2, ..., 30), precision ``auto``, through the tile
   store (``OUT/COND/COND_dNN.*``, so a rerun computes only what is missing).
   The window at depth d is centred on the first bracket narrower than 1/100
   of its pixel (the bracket sequence does not depend on how far it was
   carried, so a later, deeper run never moves a window already rendered);
3. measures the box-counting dimension of the sign boundary of each window
   (``fractaltrain.dimension.boxcount.estimate``, ``min_size=2`` px: median of
   local slopes, the paper's estimator, and the least-squares fit) and the
   *inner scale*: the shallowest depth from which every deeper window
   measured has dimension <= ``SMOOTH`` (a smooth curve).

With ``--zoom COND`` it also zooms into COND's boundary point to 30 decades
(``fractaltrain.zoom``, keyframes at twice ``--zoom-size``, a short video),
and writes stills of every fifth keyframe.  ``--crosscheck COND:DEPTH``
trains a float64 window again in double-double and counts the signs that
differ (what float64's rounding decided near its floor).

Work is done cheapest first (all float64 windows, then the double-double ones
condition by condition); ``--budget`` seconds stops starting new windows (a
rerun carries on), and ``--smooth-stop K`` skips a condition's deeper
double-double windows once K consecutive windows have measured <= SMOOTH.
Prints the results as JSON (also kept in ``OUT/results.json``), writes the
figures into ``--images`` and, with ``--doc``, the table into docs/deep.md
(between ``<!-- deep table -->`` and ``<!-- end deep table -->``)::

    NUMBA_NUM_THREADS=1 python scripts/docs/deep_study.py --out out/deep_study [--conditions small tanh100 ...]
        [--depths 0:30:2] [--size small=64 tanh=32] [--budget 2400] [--smooth-stop 2]
        [--zoom small] [--zoom-size 64x36] [--crosscheck small:12 tanh100:14 ...] [--images docs/img/deep]
        [--doc docs/deep.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from decimal import Decimal, localcontext
from fractions import Fraction
from pathlib import Path

import numpy as np

from fractaltrain.compute.files import atomic_write_bytes
from fractaltrain.compute.kernel import LANES, run_pixels, run_pixels_dd
from fractaltrain.config import load_config, with_overrides
from fractaltrain.config.overrides import view_window
from fractaltrain.dimension import boxcount
from fractaltrain.precision import resolve, split_dd
from fractaltrain.problem import build_problem, pixel_hyperparams, pixel_hyperparams_dd
from fractaltrain.render import colour
from fractaltrain.render.still import render
from fractaltrain.window import EXACT_DIGITS, Window, config_window, decimal_string

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import log, read_json, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OPENING = Fraction(9)  # decades: width of the opening view, log10 [-3, 6]
F64_WIDTH = Fraction(1, 10**12)  # bisection switches from float64 to double-double below this bracket width (decades)
SMOOTH = 1.15  # a window whose boundary measures at most this is a smooth curve at its scale
CONDITIONS = {  # name: (config, steps, target)
    "tanh100": ("configs/tanh_baseline.yaml", 100, "paper"),
    "tanh200": ("configs/tanh_baseline.yaml", 200, "paper"),
    "tanh500": ("configs/tanh_baseline.yaml", 500, "paper"),
    "tanh1000": ("configs/tanh_baseline.yaml", 1000, "paper"),
    "small": ("configs/deep_small.yaml", 200, "locate"),
}
LABELS = {"tanh100": "tanh baseline, 100 steps", "tanh200": "tanh baseline, 200 steps",
          "tanh500": "tanh baseline, 500 steps", "tanh1000": "tanh baseline, 1000 steps",
          "small": "small net (width 4, 8 points), 200 steps"}
COLOURS = {"tanh100": (230, 159, 0), "tanh200": (86, 180, 233), "tanh500": (0, 158, 115),
           "tanh1000": (204, 121, 167), "small": (0, 0, 0)}


def rel(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def config_of(cond: str):
    path, steps, _ = CONDITIONS[cond]
    return with_overrides(load_config(ROOT / path), steps=steps, precision="auto")


# --------------------------------------------------------------------------- the boundary point


def decimal_inside(a: Fraction, b: Fraction) -> Fraction:
    """The midpoint of [a, b] rounded to a decimal with digits down to a thousandth of b - a (still inside)."""
    k = math.ceil(-math.log10(float(b - a))) + 3 if b > a else 40
    q = Fraction(1, 10**k)
    return round((a + b) / 2 / q) * q


def value_dd(u: Fraction) -> tuple[float, float]:
    """10**u (a log10 axis) as the double-double pair nearest its exact value."""
    with localcontext() as ctx:
        ctx.prec = EXACT_DIGITS
        d = Decimal(10) ** (Decimal(u.numerator) / Decimal(u.denominator))
    hi, lo = split_dd([d])[:, 0]
    return float(hi), float(lo)


class Signs:
    """Signs of the measure at points (x, y) of one condition, in float64 or double-double, LANES at a time."""

    def __init__(self, cond: str):
        self.cfg = config_of(cond)
        self.problem = build_problem(self.cfg)
        self.calls = {"float64": 0, "double-double": 0}
        self.seconds = {"float64": 0.0, "double-double": 0.0}

    def __call__(self, xs: list[Fraction], y: Fraction, dd: bool) -> np.ndarray:
        t0 = time.perf_counter()
        vx = np.array([value_dd(x) for x in xs])
        vy = np.array([value_dd(y)] * len(xs))
        if dd:
            hi, lo = pixel_hyperparams_dd(self.cfg, (vx[:, 0], vx[:, 1]), (vy[:, 0], vy[:, 1]))
            out = run_pixels_dd(self.problem, hi, lo)
        else:
            out = run_pixels(self.problem, pixel_hyperparams(self.cfg, vx[:, 0], vy[:, 0]))
        key = "double-double" if dd else "float64"
        self.calls[key] += 1
        self.seconds[key] += time.perf_counter() - t0
        return np.sign(out[:, 0])


def target_of(cond: str, cfg, out: Path) -> tuple[Fraction, Fraction]:
    """The paper configs' published target (the centre of their ``paper`` view); else ``locate``'s target.

    ``locate`` is the CLI's (``fractaltrain locate CONFIG --depth 6``: start view 1280x720), its
    tiles kept in ``OUT/locate_COND``.
    """
    if CONDITIONS[cond][2] == "paper":
        x0, x1, y0, y1 = view_window(cfg, "paper")
        return Fraction(0.5 * (x0 + x1)), Fraction(0.5 * (y0 + y1))
    from fractaltrain.compute.store import TileStore
    from fractaltrain.search.locate import candidates
    from fractaltrain.zoom.plan import outer_window

    start = outer_window(config_window(cfg), cfg.resolution, (1280, 720))
    found = candidates(build_problem(cfg), start, 6.0, TileStore(out / f"locate_{cond}" / "tiles"), 1,
                       bounds=config_window(cfg))
    return Fraction(found[0].x), Fraction(found[0].y)


def initial_bracket(signs: Signs, cx: Fraction, cy: Fraction) -> tuple[Fraction, Fraction, float]:
    """The sign change along x nearest ``cx`` (at y = ``cy``), from float64 scans of growing half-width."""
    h = Fraction(1, 10**6)
    n = 8 * LANES
    while h <= 4:
        xs = [cx - h + 2 * h * Fraction(i, n) for i in range(n + 1)]
        s = signs(xs, cy, dd=False)
        changes = [i for i in range(n) if s[i] * s[i + 1] < 0]
        if changes:
            i = min(changes, key=lambda i: abs((xs[i] + xs[i + 1]) / 2 - cx))
            return xs[i], xs[i + 1], float(h)
        h *= 4
    raise RuntimeError(f"no sign change along x within 4 decades of {float(cx)}")


def nine_section(signs: Signs, a: Fraction, b: Fraction, y: Fraction, sa: float, dd: bool):
    """One call: [a, b] cut into LANES + 1 parts, the first part (from a) whose ends differ in sign."""
    xs = [a + (b - a) * Fraction(i, LANES + 1) for i in range(1, LANES + 1)]
    s = signs(xs, y, dd)
    pts, ss = [a] + xs + [b], [sa] + list(s) + [-sa]
    for i in range(LANES + 1):
        if ss[i] * ss[i + 1] < 0:
            return pts[i], pts[i + 1], ss[i]
        if ss[i + 1] == 0:  # a zero measure: call it the boundary
            return pts[i + 1], pts[i + 1], ss[i]
    raise RuntimeError("no sign change inside the bracket")


class Point:
    """The bisection history of one condition's boundary point, kept in points.json; extended on demand."""

    def __init__(self, cond: str, path: Path):
        self.cond, self.path = cond, path
        self.signs: Signs | None = None
        rec = read_json(path, {}).get(cond)
        if rec is None:
            self.signs = Signs(cond)
            cx, cy = target_of(cond, self.signs.cfg, path.parent)
            t0 = time.perf_counter()
            a, b, h = initial_bracket(self.signs, cx, cy)
            sa = float(self.signs([a], cy, dd=False)[0])
            rec = {"target": [decimal_string(cx), decimal_string(cy)], "y": decimal_string(cy), "scan_half_width": h,
                   "brackets": [[decimal_string(a), decimal_string(b), "float64"]], "sign_a": sa,
                   "seconds": {"float64": time.perf_counter() - t0, "double-double": 0.0},
                   "calls": {"float64": 1, "double-double": 0}}
            self.rec = rec
            self.save()
        self.rec = rec

    def save(self) -> None:
        allrec = read_json(self.path, {})
        allrec[self.cond] = self.rec
        write_json(self.path, allrec)

    @property
    def y(self) -> Fraction:
        return Fraction(self.rec["y"])

    def bracket(self, k: int) -> tuple[Fraction, Fraction, str]:
        a, b, stage = self.rec["brackets"][k]
        return Fraction(a), Fraction(b), stage

    def _extend(self) -> None:
        """One more 9-section (float64 while the bracket is wider than F64_WIDTH, then double-double)."""
        if self.signs is None:
            self.signs = Signs(self.cond)
        a, b, stage = self.bracket(-1)
        y, sa = self.y, self.rec["sign_a"]
        if b - a > F64_WIDTH:
            dd = False
        else:
            dd = True
            if stage == "float64":
                self._check_in_dd()
                a, b, stage = self.bracket(-1)
                sa = self.rec["sign_a"]
        t0 = time.perf_counter()
        a2, b2, sa2 = nine_section(self.signs, a, b, y, sa, dd)
        key = "double-double" if dd else "float64"
        self.rec["seconds"][key] += time.perf_counter() - t0
        self.rec["calls"][key] += 1
        self.rec["brackets"].append([decimal_string(a2), decimal_string(b2), key])
        self.rec["sign_a"] = float(sa2)
        self.save()

    def _check_in_dd(self) -> None:
        """Before double-double takes over: the deepest float64 bracket whose ends differ in sign in double-double.

        Ends of the last LANES/2 float64 brackets are tested in one call; brackets after the
        deepest valid one are dropped (rounding decided their signs in float64).
        """
        n = len(self.rec["brackets"])
        while True:
            ks = list(range(max(0, n - LANES // 2), n))
            pts = [p for k in ks for p in self.bracket(k)[:2]]
            t0 = time.perf_counter()
            s = self.signs(pts, self.y, dd=True)
            self.rec["seconds"]["double-double"] += time.perf_counter() - t0
            self.rec["calls"]["double-double"] += 1
            good = [k for j, k in enumerate(ks) if s[2 * j] * s[2 * j + 1] < 0]
            if good:
                k = max(good)
                self.rec["brackets"] = self.rec["brackets"][: k + 1]
                self.rec["brackets"][-1][2] = "double-double"  # checked in double-double
                self.rec["sign_a"] = float(s[2 * ks.index(k)])
                self.rec["float64_brackets_dropped"] = n - 1 - k
                self.save()
                return
            if ks[0] == 0:
                raise RuntimeError(f"{self.cond}: no float64 bracket holds a sign change in double-double")
            n = ks[0]

    def centre(self, width: Fraction) -> tuple[Fraction, Fraction]:
        """The midpoint of the first bracket narrower than ``width`` (decades), carrying the bisection on as needed."""
        k = 0
        while True:
            if k >= len(self.rec["brackets"]):
                self._extend()  # may first drop float64 brackets that double-double does not confirm
                k = min(k, len(self.rec["brackets"]) - 1)
                continue
            a, b, _ = self.bracket(k)
            if b - a < width:
                return decimal_inside(a, b), self.y
            k += 1

    def summary(self) -> dict:
        a, b, _ = self.bracket(-1)
        return {"target": self.rec["target"], "x": decimal_string(decimal_inside(a, b)), "y": self.rec["y"],
                "bracket_width": float(b - a), "sign_left": self.rec["sign_a"],
                "bisection_calls": self.rec["calls"], "bisection_seconds": {k: round(v, 1) for k, v in self.rec["seconds"].items()},
                "float64_brackets_dropped": self.rec.get("float64_brackets_dropped")}


# --------------------------------------------------------------------------- windows


def window_config(cond: str, point: Point, depth: int, size: int):
    """The condition's config for the window at ``depth``: name, window, resolution, tile 16."""
    width = OPENING / 10**depth
    cx, cy = point.centre(width / size / 100)
    h = width / 2
    edges = ",".join(decimal_string(v) for v in (cx - h, cx + h, cy - h, cy + h))
    cfg = with_overrides(config_of(cond), window=edges, resolution=f"{size}x{size}")
    return dataclasses.replace(cfg, name=f"{cond}_d{depth:02d}", tile=16), (cx, cy)


def precision_of(cond: str, point: Point, depth: int, size: int) -> str:
    """float64 or double-double: what ``auto`` picks for this window (centred on the first bracket: close enough)."""
    cfg = config_of(cond)
    a, b, _ = point.bracket(0)
    h = OPENING / 10**depth / 2
    return resolve("auto", Window.around((a + b) / 2, point.y, h, h), size, size, (cfg.x.scale, cfg.y.scale))


def measure_dimension(m: np.ndarray) -> dict:
    mask = boxcount.boundary_mask(m)
    rec = {"boundary_pixels": int(mask.sum()), "converged_fraction": round(float(np.mean(m < 0)), 4)}
    if mask.sum() < 8:
        return rec | {"dimension": None, "dimension_fit": None}
    d = boxcount.estimate([m], min_size=2)
    return rec | {"dimension": round(d.median_local_slope, 3),
                  "dimension_fit": None if math.isnan(d.fit_slope) else round(d.fit_slope, 3)}


def rounding_test(cond: str, npz: Path) -> tuple[float, float]:
    """The package's rounding test of a rendered window (``noise.grid_flip_rate``: a 12x12 sample trained
    again 4 ulps away, float64 or double-double ulps as the window was trained); (flip rate, seconds)."""
    from fractaltrain.search import noise

    t0 = time.perf_counter()
    with np.load(npz) as z:
        xv, yv, m = z["x_values"], z["y_values"], z["measure"]
        if "x_values_lo" in z.files:  # double-double: (2, n), high parts then low parts
            xv, yv = np.stack([xv, z["x_values_lo"]]), np.stack([yv, z["y_values_lo"]])
    rate = noise.grid_flip_rate(build_problem(config_of(cond)), xv, yv, m)
    return round(rate, 4), round(time.perf_counter() - t0, 1)


def render_window(cond: str, point: Point, depth: int, size: int, out: Path, precision: str = "auto") -> dict:
    t0 = time.perf_counter()
    cfg, (cx, cy) = window_config(cond, point, depth, size)
    if precision != "auto":
        cfg = dataclasses.replace(with_overrides(cfg, precision=precision), name=f"{cfg.name}_dd")
    t_point = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = render(cfg, out / cond)
    seconds = time.perf_counter() - t0
    with np.load(res.npz) as z:
        m, prec = z["measure"], str(z["precision"])
    sidecar = json.loads(res.json.read_text())
    rec = {"condition": cond, "depth": depth, "size": size, "precision": prec,
           "centre": [decimal_string(cx)[:42], decimal_string(cy)],
           "png": str(res.png), "npz": str(res.npz),
           "seconds": round(seconds, 1), "point_seconds": round(t_point, 1),
           "pixels_computed": res.progress.pixels_computed,
           "kernel_seconds_first_run": sidecar["timing"]["kernel_seconds"],
           "mean_steps_trained": round(sidecar["stats"]["mean_steps_trained"], 1)}
    rec["flip_rate"], rec["flip_seconds"] = rounding_test(cond, res.npz)
    rec["flip_test"] = prec  # the rounding test moved the values by 4 ulps of this precision
    return rec | measure_dimension(m)


def do_window(cond: str, point: Point, depth: int, size: int, out: Path) -> dict:
    """The window at precision auto; where float64's rounding test fails (as zoom's noise guard rules), in
    double-double instead, the float64 window's figures kept beside it."""
    from fractaltrain.search.noise import NOISE_MAX

    rec = render_window(cond, point, depth, size, out)
    if rec["precision"] == "float64" and rec["flip_rate"] > NOISE_MAX:
        log(f"  float64 flip rate {rec['flip_rate']}: rounding decides; again in double-double ...")
        f64 = {f"float64_{k}": rec[k] for k in ("dimension", "dimension_fit", "flip_rate", "seconds", "boundary_pixels",
                                                 "npz", "png")}
        rec = render_window(cond, point, depth, size, out, "double-double") | f64
        rec["upgraded"] = "float64's rounding test failed"
    return rec


def crosscheck(cond: str, point: Point, depth: int, size: int, out: Path, rows: list[dict]) -> dict:
    """The float64 window at ``depth`` trained again in double-double: how many signs rounding decided."""
    cfg, _ = window_config(cond, point, depth, size)
    cfg = dataclasses.replace(with_overrides(cfg, precision="double-double"), name=f"{cond}_d{depth:02d}_dd")
    t0 = time.perf_counter()
    res = render(cfg, out / cond)
    seconds = time.perf_counter() - t0
    base = next(r for r in rows if r["depth"] == depth and r["size"] == size)
    if "float64_npz" in base:  # the window itself was moved to double-double: compare with its float64 render
        base = {"precision": "float64", "npz": base["float64_npz"], "dimension": base["float64_dimension"]}
    with np.load(res.npz) as z, np.load(base["npz"]) as z64:
        m, m64 = z["measure"], z64["measure"]
    return {"condition": cond, "depth": depth, "size": size, "float64_precision": base["precision"],
            "sign_differences": int(np.count_nonzero(np.sign(m) != np.sign(m64))), "pixels": int(m.size),
            "dimension_float64": base.get("dimension"), "seconds": round(seconds, 1), "npz": str(res.npz)} | {
            k + "_dd": v for k, v in measure_dimension(m).items() if k.startswith("dimension")}


def inner_scale(rows: list[dict]) -> dict:
    """The shallowest depth from which every deeper window measured is a smooth curve (dimension <= SMOOTH)."""
    from fractaltrain.search.noise import NOISE_MAX

    done = sorted((r for r in rows if r.get("dimension") is not None and r.get("flip_rate", 0) <= NOISE_MAX),
                  key=lambda r: r["depth"])
    if not done:
        return {"depth": None, "deepest_measured": None, "note": "nothing measured"}
    k = len(done)
    while k > 0 and done[k - 1]["dimension"] <= SMOOTH:
        k -= 1
    deepest = done[-1]["depth"]
    if k == len(done):
        return {"depth": None, "deepest_measured": deepest, "note": f"still above {SMOOTH} at the deepest window measured"}
    last_rough = done[k - 1]["depth"] if k > 0 else None
    return {"depth": done[k]["depth"], "last_rough_depth": last_rough, "deepest_measured": deepest,
            "smooth_windows": len(done) - k}


# --------------------------------------------------------------------------- figures


def font(size: int = 12):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def plot(results: dict, depths: list[int], path: Path) -> None:
    """Dimension (median local slope) against depth, one line per condition; the float64 floor marked."""
    from PIL import Image, ImageDraw

    W, H, L, R, T, B = 780, 430, 60, 300, 34, 50
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    f = font(12)
    dmin, dmax, ymin, ymax = 0, max(depths), 0.8, 2.0
    px = lambda x: L + (x - dmin) / (dmax - dmin) * (W - L - R)
    py = lambda y: H - B - (y - ymin) / (ymax - ymin) * (H - T - B)
    for y in (0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0):
        d.line([(px(dmin), py(y)), (px(dmax), py(y))], fill=(225, 225, 225))
        d.text((L - 8, py(y)), f"{y:.1f}", fill="black", font=f, anchor="rm")
    for x in range(0, dmax + 1, 6 if dmax > 12 else 2):
        d.line([(px(x), py(ymin)), (px(x), py(ymin) + 4)], fill="black")
        d.text((px(x), py(ymin) + 6), str(x), fill="black", font=f, anchor="ma")
    d.rectangle([px(dmin), py(ymax), px(dmax), py(ymin)], outline="black")
    d.line([(px(dmin), py(SMOOTH)), (px(dmax), py(SMOOTH))], fill=(150, 150, 150), width=1)
    floor = results.get("float64_floor_depth")
    if floor:
        for yy in range(int(py(ymax)), int(py(ymin)), 8):
            d.line([(px(floor), yy), (px(floor), yy + 4)], fill=(120, 120, 120))
        d.text((px(floor) + 4, py(ymax) + 4), "float64 | double-double", fill=(90, 90, 90), font=f)
    d.text(((L + W - R) / 2, H - 18), "zoom depth (decades below the 9-decade opening view)", fill="black", font=f, anchor="ma")
    d.text((8, 8), "box-counting dimension of the boundary (median local slope)", fill="black", font=f)
    ly = T + 10
    for cond in [c for c in CONDITIONS if c in results["conditions"]]:
        rows = results["conditions"][cond]
        pts = [(px(r["depth"]), py(min(max(r["dimension"], ymin), ymax)))
               for r in sorted(rows["windows"], key=lambda r: r["depth"]) if r.get("dimension") is not None]
        c = COLOURS.get(cond, (0, 0, 0))
        wide = cond == "tanh500"  # drawn wide: 1000 steps lies on it wherever both were measured
        if len(pts) > 1:
            d.line(pts, fill=c, width=6 if wide else 2)
        for x, y in pts:
            r = 5 if wide else 3
            d.ellipse([x - r, y - r, x + r, y + r], fill=c)
        d.line([(W - R + 15, ly + 6), (W - R + 35, ly + 6)], fill=c, width=3)
        d.text((W - R + 40, ly), LABELS.get(cond, cond), fill="black", font=f)
        ly += 18
    d.text((W - R + 15, ly + 8), f"grey line: {SMOOTH} (smooth)", fill=(90, 90, 90), font=f)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, optimize=True)


def strip(results: dict, show: list[int], path: Path, scale: int = 2) -> None:
    """Rows = conditions, columns = the windows at depths ``show`` (nearest-neighbour upscaled)."""
    from PIL import Image, ImageDraw

    conds = [c for c in CONDITIONS if c in results["conditions"]]
    cell = max(r["size"] for c in conds for r in results["conditions"][c]["windows"]) * scale if conds else 96
    L, T, gap = 190, 22, 6
    img = Image.new("RGB", (L + len(show) * (cell + gap), T + len(conds) * (cell + gap)), "white")
    d = ImageDraw.Draw(img)
    f = font(12)
    for j, depth in enumerate(show):
        d.text((L + j * (cell + gap) + cell / 2, 4), f"depth {depth}", fill="black", font=f, anchor="ma")
    for i, cond in enumerate(conds):
        y = T + i * (cell + gap)
        d.text((4, y + cell / 2), LABELS.get(cond, cond).replace(", ", ",\n", 1), fill="black", font=f, anchor="lm")
        byd = {r["depth"]: r for r in results["conditions"][cond]["windows"]}
        for j, depth in enumerate(show):
            x = L + j * (cell + gap)
            r = byd.get(depth)
            if r is None:
                d.rectangle([x, y, x + cell - 1, y + cell - 1], fill=(235, 235, 235))
                d.text((x + cell / 2, y + cell / 2), "not rendered", fill=(120, 120, 120), font=f, anchor="mm")
                continue
            with np.load(r["npz"]) as z:
                rgb = colour.to_image(z["measure"])
            tile = Image.fromarray(rgb).resize((cell, cell), Image.NEAREST)
            img.paste(tile, (x, y))
            if r.get("dimension") is not None:
                d.text((x + 3, y + cell - 14), f"{r['dimension']:.2f}", fill="black", font=f,
                       stroke_width=2, stroke_fill="white")
    img.save(path, optimize=True)


# --------------------------------------------------------------------------- the zoom


def do_zoom(cond: str, point: Point, size: tuple[int, int], frames: int, depth: float, out: Path, images: Path) -> dict:
    from PIL import Image, ImageDraw

    from fractaltrain.zoom.pipeline import ZoomOptions, zoom

    cfg = dataclasses.replace(config_of(cond), name=f"zoom_{cond}")
    kw = 2 * size[0]
    cx, cy = point.centre(OPENING / 10**math.ceil(depth) / kw / 100)
    t0 = time.perf_counter()
    res = zoom(cfg, out / f"zoom_{cond}", ZoomOptions(frames=frames, fps=30.0, size=size, depth=depth, center=(cx, cy),
                                                     video=True, crf=28))
    seconds = time.perf_counter() - t0
    meta = json.loads(res.json.read_text())
    kfs = sorted((out / f"zoom_{cond}" / "keyframes").glob(f"zoom_{cond}_kf*.npz"))
    pick = list(range(0, len(kfs), 5))
    if pick[-1] != len(kfs) - 1:
        pick.append(len(kfs) - 1)
    cols, scale = 7, 1
    with np.load(kfs[0]) as z:
        h0, w0 = z["measure"].shape
    cw, ch = w0 * scale, h0 * scale
    rows = math.ceil(len(pick) / cols)
    sheet = Image.new("RGB", (cols * (cw + 4), rows * (ch + 18)), "white")
    d = ImageDraw.Draw(sheet)
    f = font(11)
    dims, precisions = [], []
    for n, k in enumerate(pick):
        with np.load(kfs[k]) as z:
            m = z["measure"]
            precisions.append(str(z["precision"]))
        dims.append(measure_dimension(m).get("dimension"))
        x, y = (n % cols) * (cw + 4), (n // cols) * (ch + 18)
        sheet.paste(Image.fromarray(colour.to_image(m)).resize((cw, ch), Image.NEAREST), (x, y))
        dec = math.log10(2.0**k)
        d.text((x + 2, y + ch + 2), f"kf {k}: {dec:.1f} dec", fill="black", font=f)
    images.mkdir(parents=True, exist_ok=True)
    sheet.save(images / f"zoom_{cond}_keyframes.png", optimize=True)
    video = images / f"zoom_{cond}.mp4"
    if res.mp4 is not None and Path(res.mp4).exists():
        video.write_bytes(Path(res.mp4).read_bytes())
    return {"condition": cond, "centre": [decimal_string(cx)[:42], decimal_string(cy)], "depth": depth,
            "size": list(size), "keyframe_size": meta["zoom"]["keyframe_size"], "frames": frames,
            "keyframes": len(kfs), "stills": pick, "still_dimensions": dims, "still_precisions": precisions,
            "flip_rates": meta["noise"]["flip_rates"], "seconds": round(seconds, 1),
            "timing": meta.get("timing"), "video": rel(video) if video.exists() else None,
            "sheet": rel(images / f"zoom_{cond}_keyframes.png")}


# --------------------------------------------------------------------------- the doc's tables

BEGIN, END = "<!-- deep table -->", "<!-- end deep table -->"


def table(results: dict, depths: list[int]) -> str:
    """Markdown: dimension per depth and condition, the inner scale, the cost; between BEGIN and END."""
    from fractaltrain.search.noise import NOISE_MAX

    conds = [c for c in CONDITIONS if c in results["conditions"]]
    head = "| depth | " + " | ".join(LABELS[c] + f" ({results['conditions'][c]['windows'][0]['size']}²)"
                                     if results["conditions"][c]["windows"] else LABELS[c] for c in conds) + " |"
    lines = [BEGIN, "Generated by `scripts/docs/deep_study.py`. Each cell: box-counting dimension of the window's "
             "sign boundary (median of local slopes, boxes from 2 px), *dd* where the window was trained in "
             "double-double; where float64's rounding test failed (more than "
             f"{NOISE_MAX:.0%} of a 12×12 sample flip 4 ulps away) the double-double figure, with float64's in brackets; "
             "– not rendered.", "", head, "|---" * (len(conds) + 1) + "|"]
    skipped = {(c, d): why for c, d, why in results.get("skipped_this_run", []) if isinstance(d, int)}
    for d in depths:
        cells = []
        for c in conds:
            r = next((r for r in results["conditions"][c]["windows"] if r["depth"] == d), None)
            if r is None:
                cells.append("– (smooth above)" if skipped.get((c, d)) == "smooth above" else "–")
                continue
            v = "no boundary" if r.get("dimension") is None else f"{r['dimension']:.2f}"
            if r["precision"] == "double-double":
                v += " dd"
            if "float64_dimension" in r:
                f = r["float64_dimension"]
                v += f" (float64 {'–' if f is None else f'{f:.2f}'}, flips {r['float64_flip_rate']:.0%})"
            elif r.get("flip_rate", 0) > NOISE_MAX:
                v += f" (flips {r['flip_rate']:.0%})"
            cells.append(v)
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    inner = []
    for c in conds:
        s = results["conditions"][c].get("inner_scale", {})
        if s.get("depth") is None:
            inner.append(f"> {s.get('deepest_measured')}" if s.get("deepest_measured") is not None else "–")
        else:
            inner.append(f"{s['last_rough_depth']}–{s['depth']}" if s.get("last_rough_depth") is not None
                         else f"≤ {s['depth']}")
    lines.append("| **inner scale** (depth where it turns smooth) | " + " | ".join(inner) + " |")
    cost = []
    for c in conds:
        rows = results["conditions"][c]["windows"]
        f64 = sum(r["kernel_seconds_first_run"] for r in rows if r["precision"] == "float64")
        ddw = [r for r in rows if r["precision"] == "double-double"]
        dd = sum(r["kernel_seconds_first_run"] + r.get("float64_seconds", 0) * 0 for r in ddw)
        b = results["conditions"][c].get("point", {}).get("bisection_seconds", {})
        cost.append(f"{f64:.0f} s float64, {dd:.0f} s dd ({len(ddw)} windows); point {sum(b.values()):.0f} s")
    lines.append("| cost (kernel, first run) | " + " | ".join(cost) + " |")
    lines += ["", "Boundary points (x at the target's y; the bracket is the last 9-section's, double-double past "
              f"{float(F64_WIDTH):g} decades):", "",
              "| condition | target (x, y) | boundary point x | bracket width | bisection calls (float64 / dd) | seconds |",
              "|---|---|---|---|---|---|"]
    for c in conds:
        pt = results["conditions"][c].get("point")
        if pt:
            lines.append(f"| {LABELS[c]} | {float(Fraction(pt['target'][0])):.10f}, {float(Fraction(pt['target'][1])):.10f} "
                         f"| `{pt['x']}` | {pt['bracket_width']:.1e} | {pt['bisection_calls']['float64']} / "
                         f"{pt['bisection_calls']['double-double']} | {sum(pt['bisection_seconds'].values()):.0f} |")
    checks = [x for c in conds for x in results["conditions"][c].get("crosschecks", [])]
    if checks:
        lines += ["", "float64 windows trained again in double-double (`--crosscheck`):", "",
                  "| condition | depth | signs that differ | dimension float64 → dd |", "|---|---|---|---|"]
        for x in checks:
            lines.append(f"| {LABELS[x['condition']]} | {x['depth']} | {x['sign_differences']} of {x['pixels']} "
                         f"| {x['dimension_float64']} → {x['dimension_dd']} |")
    z = results.get("zoom")
    if z:
        n64 = sum(1 for p in z["still_precisions"] if p == "float64")
        f64 = [r for r, k in zip(z["flip_rates"], range(len(z["flip_rates"])))]
        lines += ["", f"Zoom ({LABELS[z['condition']]}): {z['keyframes']} keyframes of {z['keyframe_size'][0]}×"
                  f"{z['keyframe_size'][1]} to {z['depth']:g} decades, {z['frames']} frames at {z['size'][0]}×"
                  f"{z['size'][1]}; largest sampled rounding-flip rate of a keyframe {max(f64):.1%}; "
                  f"{z['seconds']:.0f} s. Dimension of every fifth keyframe (outer to deepest; the first {n64} float64): "
                  + " ".join("–" if d is None else f"{d:.2f}" for d in z["still_dimensions"]) + "."]
    lines.append(END)
    return "\n".join(lines)


def write_doc(results: dict, depths: list[int], path: Path) -> None:
    text = path.read_text() if path.exists() else ""
    block = table(results, depths)
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    atomic_write_bytes(path, text.encode())


# --------------------------------------------------------------------------- main


def depth_list(text: str) -> list[int]:
    a, b, s = (int(v) for v in text.split(":"))
    return list(range(a, b + 1, s))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/deep_study")
    ap.add_argument("--conditions", nargs="+", default=["small", "tanh100", "tanh200", "tanh500", "tanh1000"])
    ap.add_argument("--depths", default="0:30:2", help="A:B:STEP, decades below the opening view")
    ap.add_argument("--size", nargs="+", default=["small=64", "tanh=32"], help="PREFIX=PIXELS (square windows)")
    ap.add_argument("--budget", type=float, default=math.inf, help="seconds: start no new window after this")
    ap.add_argument("--smooth-stop", type=int, default=2, help="skip deeper double-double windows after K smooth ones (0: never)")
    ap.add_argument("--zoom", default=None, help="a condition to zoom into its boundary point")
    ap.add_argument("--zoom-size", default="64x36")
    ap.add_argument("--zoom-frames", type=int, default=240)
    ap.add_argument("--zoom-depth", type=float, default=30.0)
    ap.add_argument("--crosscheck", nargs="*", default=["small:10", "small:12", "small:14", "tanh100:12", "tanh100:14",
                                                        "tanh500:14", "tanh1000:14"],
                    help="COND:DEPTH: also train that float64 window in double-double and count differing signs")
    ap.add_argument("--images", default="docs/img/deep")
    ap.add_argument("--doc", default=None, help="write the table into this file (docs/deep.md), between its markers")
    ap.add_argument("--show", default="0,6,12,18,24,30", help="depths shown in the strip")
    args = ap.parse_args()
    t_start = time.perf_counter()
    out, images = Path(args.out), ROOT / args.images
    out.mkdir(parents=True, exist_ok=True)
    depths = depth_list(args.depths)
    sizes = dict(s.split("=") for s in args.size)
    size_of = lambda cond: int(next(v for k, v in sizes.items() if cond.startswith(k)))
    store = out / "results.json"
    results = read_json(store, {"conditions": {}})
    points = {c: Point(c, out / "points.json") for c in args.conditions}
    for c in args.conditions:
        results["conditions"].setdefault(c, {"windows": []})
        results["conditions"][c]["label"] = LABELS[c]

    def save():
        for c in args.conditions:
            results["conditions"][c]["point"] = points[c].summary()
            results["conditions"][c]["inner_scale"] = inner_scale(results["conditions"][c]["windows"])
        write_json(store, results)

    # the work list: every float64 window, then the double-double ones, cheapest condition first
    plan = [(c, d, precision_of(c, points[c], d, size_of(c))) for c in args.conditions for d in depths]
    order = [p for p in plan if p[2] == "float64"]
    for c in args.conditions:  # then each condition's double-double windows; the zoom right after its condition's
        order += [p for p in plan if p[0] == c and p[2] != "float64"]
        if c == args.zoom:
            order.append((c, None, "zoom"))
        order += [(c, int(d), "crosscheck") for cc in args.crosscheck for cn, d in [cc.split(":")] if cn == c]
    if args.zoom and args.zoom not in args.conditions:
        order.append((args.zoom, None, "zoom"))
    f64 = [d for c, d, p in plan if p == "float64"]
    dd = [d for c, d, p in plan if p != "float64" and d > max(f64, default=-1)]
    results["float64_floor_depth"] = (max(f64) + min(dd)) / 2 if f64 and dd else None
    skipped = []
    for cond, depth, prec in order:
        if prec == "zoom":
            if time.perf_counter() - t_start > args.budget:
                skipped.append([cond, "zoom", "budget"])
                continue
            zsize = tuple(int(v) for v in args.zoom_size.split("x"))
            pt = points.get(cond) or Point(cond, out / "points.json")
            log(f"zoom into {cond} ...")
            before = results.get("zoom")
            results["zoom"] = do_zoom(cond, pt, zsize, args.zoom_frames, args.zoom_depth, out, images)
            if before and results["zoom"]["timing"]["pixels_computed"] == 0 and before["centre"] == results["zoom"]["centre"]:
                results["zoom"] |= {k: before[k] for k in ("seconds", "timing")}  # the run that trained it
            log(f"  {results['zoom']['seconds']} s")
            save()
            continue
        rows = results["conditions"][cond]["windows"]
        size = size_of(cond)
        old = next((r for r in rows if r["depth"] == depth and r["size"] == size and r.get("flip_test") != r["precision"]),
                   None)
        if old is not None and prec not in ("crosscheck",):  # measured before the rounding test was part of a window
            if time.perf_counter() - t_start > args.budget:
                skipped.append([cond, depth, "rounding test: budget"])
                continue
            log(f"{cond} depth {depth}: rounding test of the stored window ...")
            rows.remove(old)
            new = do_window(cond, points[cond], depth, size, out)
            keep = ("seconds", "kernel_seconds_first_run", "pixels_computed", "point_seconds")  # the first run's cost
            if "upgraded" in new and "upgraded" in old:
                carry = {k: old[k] for k in keep if k in old} | {f"float64_{k}": old[f"float64_{k}"] for k in keep
                                                                  if f"float64_{k}" in old}
            elif "upgraded" in new:
                carry = {f"float64_{k}": old[k] for k in keep}
            else:
                carry = {k: old[k] for k in keep}
            rows.append(new | carry)
            rows.sort(key=lambda r: (r["size"], r["depth"]))
            log(f"  flip rate {next(r['flip_rate'] for r in rows if r['depth'] == depth and r['size'] == size)}")
            save()
            continue
        if prec == "crosscheck":
            checks = results["conditions"][cond].setdefault("crosschecks", [])
            if any(r["depth"] == depth and r["size"] == size for r in checks):
                continue
            if time.perf_counter() - t_start > args.budget or not any(r["depth"] == depth for r in rows):
                skipped.append([cond, depth, "crosscheck: budget" if rows else "crosscheck: no float64 window"])
                continue
            log(f"{cond} depth {depth}: the float64 window again in double-double ...")
            checks.append(crosscheck(cond, points[cond], depth, size, out, rows))
            log(f"  {checks[-1]['seconds']} s, {checks[-1]['sign_differences']} signs differ")
            save()
            continue
        if any(r["depth"] == depth and r["size"] == size for r in rows):
            continue
        if prec != "float64" and args.smooth_stop:
            done = sorted((r for r in rows if r["depth"] < depth and r.get("dimension") is not None), key=lambda r: r["depth"])
            tail = done[-args.smooth_stop:]
            if len(tail) == args.smooth_stop and all(r["dimension"] <= SMOOTH for r in tail):
                skipped.append([cond, depth, "smooth above"])
                continue
        if time.perf_counter() - t_start > args.budget:
            skipped.append([cond, depth, "budget"])
            continue
        log(f"{cond} depth {depth} ({prec}, {size}x{size}) ...")
        rec = do_window(cond, points[cond], depth, size, out)
        log(f"  {rec['seconds']} s, dimension {rec.get('dimension')}, boundary {rec['boundary_pixels']} px")
        rows.append(rec)
        rows.sort(key=lambda r: (r["size"], r["depth"]))
        save()
    results["skipped_this_run"] = skipped
    import subprocess

    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    results["code"] = {"head": git("rev-parse", "--short", "HEAD"),
                       "kernel_changes_not_committed": git("status", "--porcelain", "fractaltrain/compute/kernel").splitlines()}
    save()
    images.mkdir(parents=True, exist_ok=True)
    plot(results, depths, images / "dimension_vs_depth.png")
    strip(results, [int(v) for v in args.show.split(",")], images / "windows.png")
    results["wall_seconds_this_run"] = round(time.perf_counter() - t_start, 1)
    write_json(store, results)
    if args.doc:  # every depth measured so far, whichever run measured it
        shown = sorted(set(depths) | {r["depth"] for c in results["conditions"].values() for r in c["windows"]})
        write_doc(results, shown, ROOT / args.doc)
    print(json.dumps(results, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
