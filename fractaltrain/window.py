"""Windows in hyperparameter space and the pixel grid inside them.

A window is a rectangle in *axis coordinates*: decades for a ``log10`` axis,
plain values for a ``linear`` one.  Pixel ``i`` of ``n`` samples the centre of
its cell, so a window cut in half gives pixel grids that line up, which is what
nested zoom keyframes want.

The value a pixel is trained at is the one its coordinate names:
``10**u`` (or ``u``) for the exact pixel-centre coordinate
``u = lo + (i + 1/2)·(hi - lo)/n`` of the float64 window ``[lo, hi]``, to
within :data:`KEEP_ULPS` float64 ulps, for every window float64 can hold.
Two computations give it:

* the *centred* formula ``v_c + v_c·expm1(δ·ln10)`` around the window centre
  ``v_c``, which never rounds a small offset ``δ`` against a large centre
  coordinate and so serves deep zooms, where neighbouring pixels differ in the
  13th digit.  It is what every earlier version trained at, but it cancels to
  nothing for pixels more than about 16 decades from the centre, and drifts by
  thousands of ulps a few decades out;
* an *exact* one, in rational and 60-digit decimal arithmetic, rounded once.

A pixel keeps the centred value wherever it is within :data:`KEEP_ULPS` ulps
of the exact one, bit for bit, so tiles and zoom keyframes stored by earlier
versions stay valid; elsewhere it takes the correctly rounded exact value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np

MIN_ULPS = 4.0  # neighbouring pixels must differ by at least this many float64 ulps (render and zoom)
KEEP_ULPS = 4.0  # a centred value this close to the exact one is kept, bit for bit (see module docstring)
EXACT_DIGITS = 60  # decimal digits of the exact computation: far past float64's 17, so it rounds once
LOG10_REPRESENTABLE = 307.0  # |decades| beyond which 10**u leaves float64's normal range (or nearly)


@dataclass(frozen=True)
class Window:
    """Axis-coordinate rectangle ``[x0, x1] × [y0, y1]`` (x0 < x1, y0 < y1).

    The float fields are the edges rounded to float64, which is all a window
    above float64's floor needs.  ``exact`` holds the edges as exact rationals
    (:class:`~fractions.Fraction`) when they are not those floats: a window
    given in long decimals, or one 20 decades deep whose float edges are all
    the same number.  It is ``None`` otherwise, so windows built from floats
    compare, hash and key exactly as before exact coordinates existed.
    """

    x0: float
    x1: float
    y0: float
    y1: float
    exact: tuple | None = None

    def __post_init__(self):
        if self.exact is not None:
            edges = tuple(Fraction(v) for v in self.exact)
            floats = (self.x0, self.x1, self.y0, self.y1)
            same = all(math.isfinite(f) and Fraction(f) == e for f, e in zip(floats, edges))
            object.__setattr__(self, "exact", None if same else edges)

    @staticmethod
    def from_edges(x0, x1, y0, y1) -> "Window":
        """A window from exact edges (Fractions, Decimals, ints or floats), keeping them exactly."""
        edges = tuple(Fraction(v) for v in (x0, x1, y0, y1))
        return Window(*(float(e) for e in edges), exact=edges)

    def edges(self) -> tuple[Fraction, Fraction, Fraction, Fraction]:
        """The exact edges ``(x0, x1, y0, y1)``."""
        return self.exact if self.exact is not None else tuple(Fraction(v) for v in self.as_list())

    @property
    def width(self) -> float:
        if self.exact is not None:
            return float(self.exact[1] - self.exact[0])
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        if self.exact is not None:
            return float(self.exact[3] - self.exact[2])
        return self.y1 - self.y0

    @property
    def center(self) -> tuple[float, float]:
        if self.exact is not None:
            cx, cy = self.exact_center()
            return float(cx), float(cy)
        return (0.5 * (self.x0 + self.x1), 0.5 * (self.y0 + self.y1))

    def exact_center(self) -> tuple[Fraction, Fraction]:
        x0, x1, y0, y1 = self.edges()
        return (x0 + x1) / 2, (y0 + y1) / 2

    def as_list(self) -> list[float]:
        return [self.x0, self.x1, self.y0, self.y1]

    def strings(self) -> list[str]:
        """The edges as exact decimal strings (``repr`` of the float when the edge is one)."""
        if self.exact is None:
            return [repr(v) for v in self.as_list()]
        return [decimal_string(e) for e in self.exact]

    @staticmethod
    def around(cx, cy, half_w, half_h) -> "Window":
        """The window of half-extents ``half_w``, ``half_h`` around ``(cx, cy)``.

        Floats give float edges (rounded as before exact coordinates); an exact
        centre (a :class:`~fractions.Fraction`) gives exact edges.
        """
        if isinstance(cx, Fraction) or isinstance(cy, Fraction):
            cx, cy, hw, hh = Fraction(cx), Fraction(cy), Fraction(half_w), Fraction(half_h)
            return Window.from_edges(cx - hw, cx + hw, cy - hh, cy + hh)
        return Window(cx - half_w, cx + half_w, cy - half_h, cy + half_h)


def coordinate_text(v) -> str:
    """A coordinate for people and for ``--center``: ``repr`` of a float (or of a Fraction a float holds
    exactly: it reads back as the same float), else the exact decimal of the Fraction."""
    q = Fraction(v)
    f = float(q)
    return repr(f) if math.isfinite(f) and Fraction(f) == q else decimal_string(q)


MAX_COORDINATE_CHARS = 200  # a decimal coordinate this long holds far more digits than any precision uses


def parse_coordinate(text: str) -> Fraction:
    """A decimal number of any length (``0.105506778255164830779938819115608235584e1``), read exactly.

    Raises ValueError for anything else (including inf and nan); callers name the field.
    """
    t = str(text).strip()
    if not t or len(t) > MAX_COORDINATE_CHARS:
        raise ValueError(f"expected a decimal number of at most {MAX_COORDINATE_CHARS} characters")
    try:
        d = Decimal(t)
    except Exception:
        raise ValueError("expected a decimal number") from None
    if not d.is_finite() or abs(d.adjusted()) > 400:
        raise ValueError("expected a finite decimal number of magnitude below 1e400")
    return Fraction(d)


def decimal_string(q: Fraction) -> str:
    """``q`` as an exact decimal string when it has one (a denominator of 2s and 5s), else ``p/q``."""
    q = Fraction(q)
    den, twos, fives = q.denominator, 0, 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        return f"{q.numerator}/{q.denominator}"
    k = max(twos, fives)
    digits = abs(q.numerator) * (10**k // q.denominator)
    text = str(digits).rjust(k + 1, "0")
    body = text if k == 0 else f"{text[:-k]}.{text[-k:]}".rstrip("0").rstrip(".")
    return ("-" if q < 0 else "") + body


def axis_coords(lo: float, hi: float, n: int) -> np.ndarray:
    """Axis coordinate of each of ``n`` pixel centres between ``lo`` and ``hi``."""
    i = np.arange(n, dtype=np.float64)
    return lo + (i + 0.5) * ((hi - lo) / n)


def block_centre(win: Window, n_cols: int, n_rows: int, row: int, col: int) -> tuple[float, float]:
    """Axis coordinates of the centre of 2×2 block (``row``, ``col``) of an ``n_cols × n_rows`` image of ``win``.

    A block is where :func:`~fractaltrain.boundary.boundary_mask` sees a sign
    change; its centre, midway between pixel centres ``col``, ``col + 1`` and
    ``row``, ``row + 1``, is the point the target search and ``locate`` move to.
    """
    xs, ys = axis_coords(win.x0, win.x1, n_cols), axis_coords(win.y0, win.y1, n_rows)
    return float(0.5 * (xs[col] + xs[col + 1])), float(0.5 * (ys[row] + ys[row + 1]))


def axis_values(lo: float, hi: float, n: int, scale: str) -> np.ndarray:
    """Hyperparameter value at each of ``n`` pixel centres (see module docstring).

    The centred value where it is within :data:`KEEP_ULPS` ulps of the exact
    one, the exact one elsewhere.  Values beyond float64 (a log10 window past
    about ±308 decades, a linear window wider than float64) come out as
    ``0`` or ``inf``, for the callers' checks to refuse.
    """
    with np.errstate(all="ignore"):
        centred = _centred_values(lo, hi, n, scale)
        exact = exact_axis_values(lo, hi, n, scale)
        close = np.abs(centred - exact) <= KEEP_ULPS * np.spacing(np.abs(exact))
    return np.where(close | ~np.isfinite(exact), centred, exact)


def _centred_values(lo: float, hi: float, n: int, scale: str) -> np.ndarray:
    """The centred formula: exact for narrow windows, wrong far from the centre."""
    if scale == "linear":
        return axis_coords(lo, hi, n)
    c = 0.5 * (lo + hi)
    i = np.arange(n, dtype=np.float64)
    delta = (i + 0.5 - 0.5 * n) * ((hi - lo) / n)
    vc = 10.0**c
    return vc + vc * np.expm1(delta * math.log(10.0))


def centred_throughout(lo: float, hi: float, n: int, scale: str) -> bool:
    """Whether every value of this axis is the centred formula's, as before exact values.

    Grids where it is not are keyed apart (:class:`~fractaltrain.compute.store.Grid`),
    so tiles trained by earlier versions at the drifted values are never
    reused for them, while deep zooms and narrow views keep their keys and resume.
    """
    with np.errstate(all="ignore"):
        return bool(np.array_equal(axis_values(lo, hi, n, scale), _centred_values(lo, hi, n, scale), equal_nan=True))


def exact_axis_values(lo: float, hi: float, n: int, scale: str) -> np.ndarray:
    """``10**u`` (or ``u``) at the exact pixel-centre coordinates, correctly rounded.

    The coordinates are rational (``lo`` and ``hi`` are exact binary
    fractions); a log10 axis runs the geometric sequence
    ``10**u_0 · (10**step)**i`` in :data:`EXACT_DIGITS`-digit decimal
    arithmetic, whose rounding errors stay some 40 digits below float64's, and
    each value is rounded to float64 once.  Costs about a microsecond a pixel.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or n < 1:
        return np.full(max(n, 0), math.nan)
    q_lo = Fraction(lo)
    step = (Fraction(hi) - q_lo) / n
    out = np.empty(n, dtype=np.float64)
    if scale == "linear":
        u = q_lo + step / 2
        for i in range(n):
            out[i] = float(u)
            u += step
        return out
    if max(abs(lo), abs(hi)) > 2 * LOG10_REPRESENTABLE:
        # nothing here is a float64; keep decimal arithmetic out of absurd exponents
        return 10.0 ** axis_coords(lo, hi, n)
    with localcontext() as ctx:
        ctx.prec = EXACT_DIGITS
        ten = Decimal(10)
        value = ten ** _decimal(q_lo + step / 2)
        ratio = ten ** _decimal(step)
        for i in range(n):
            out[i] = float(value)
            value *= ratio
    return out


def _decimal(q: Fraction) -> Decimal:
    """``q`` rounded to the current decimal context's precision."""
    return Decimal(q.numerator) / Decimal(q.denominator)


def min_relative_spacing(lo: float, hi: float, n: int, scale: str) -> float:
    """Smallest gap between neighbouring pixel values, in units of the value's ulp.

    Used by zoom to stop before float64 can no longer tell pixels apart.
    """
    v = axis_values(lo, hi, n, scale)
    gaps = np.abs(np.diff(v))
    ulps = np.spacing(np.maximum(np.abs(v[1:]), np.abs(v[:-1])))
    return float(np.min(gaps / ulps)) if len(gaps) else math.inf


def config_window(cfg) -> Window:
    """The window a config's axis ranges describe (its opening view)."""
    xq = cfg.x.exact or tuple(Fraction(v) for v in cfg.x.range)
    yq = cfg.y.exact or tuple(Fraction(v) for v in cfg.y.range)
    return Window(cfg.x.range[0], cfg.x.range[1], cfg.y.range[0], cfg.y.range[1], exact=(*xq, *yq))
