"""Working precision: float64 or double-double, chosen per grid, and the pixel values at each.

Why
---
float64 tells neighbouring pixels apart down to about 13 decades below the
opening view; there rounding starts to decide the picture.  Below that floor
the kernels train in double-double (about 32 digits, :mod:`fractaltrain.compute.kernel.dd`),
and every pixel's hyperparameter is the exact value its coordinate names,
rounded once to a double-double pair ``(hi, lo)``.  The rule (``auto``, the
default): float64 where neighbouring pixel values are at least
:data:`~fractaltrain.window.MIN_ULPS` float64 ulps apart, as render and zoom
always required, double-double below, down to :data:`~fractaltrain.window.MIN_ULPS`
double-double ulps (``2**-53`` of a float64 ulp: about 30 decades below a
10-decade opening view).  A grid's precision is part of its tile key, so
tiles of one precision are never read as the other's.

Nothing here imports numba: ``status`` and the config checks use it.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np

from fractaltrain.errors import ConfigError
from fractaltrain.window import EXACT_DIGITS, MIN_ULPS, Window, _decimal, min_relative_spacing

FLOAT64, DOUBLE_DOUBLE, AUTO = "float64", "double-double", "auto"
PRECISIONS = (AUTO, FLOAT64, DOUBLE_DOUBLE)
DEFAULT = AUTO
DD_ULP = 2.0**-53  # a double-double ulp, in units of its high part's float64 ulp
PRECISION_HELP = "auto, float64 or double-double"


class PrecisionError(ConfigError):
    """The window is too narrow for the precision asked for (the message gives the figures)."""


def check_precision(value, key: str = "precision") -> str:
    """One of :data:`PRECISIONS`, or a ConfigError naming ``key``."""
    if not isinstance(value, str) or value.strip().lower() not in PRECISIONS:
        raise ConfigError(f"{key}: must be one of {PRECISION_HELP}; got {value!r}")
    return value.strip().lower()


def exact_values(lo: Fraction, hi: Fraction, n: int, scale: str) -> list[Decimal]:
    """The value at each of ``n`` pixel centres of ``[lo, hi]``, to :data:`EXACT_DIGITS` digits.

    ``u = lo + (i + 1/2)(hi - lo)/n`` is exact; a log10 axis takes ``10**u`` as
    a geometric sequence in decimal arithmetic, whose rounding stays some 25
    digits below double-double's.
    """
    lo, hi = Fraction(lo), Fraction(hi)
    step = (hi - lo) / n
    with localcontext() as ctx:
        ctx.prec = EXACT_DIGITS
        if scale == "linear":
            return [_decimal(lo + (i + Fraction(1, 2)) * step) for i in range(n)]
        ten = Decimal(10)
        value = ten ** _decimal(lo + step / 2)
        ratio = ten ** _decimal(step)
        out = []
        for _ in range(n):
            out.append(value)
            value *= ratio
        return out


def split_dd(values: list[Decimal]) -> np.ndarray:
    """(2, n) float64: the double-double pairs ``hi + lo`` nearest each value."""
    out = np.empty((2, len(values)))
    with localcontext() as ctx:
        ctx.prec = EXACT_DIGITS
        for i, v in enumerate(values):
            h = float(v)
            out[0, i] = h
            out[1, i] = float(v - Decimal(h)) if math.isfinite(h) else 0.0
    return out


def spacing_ulps(lo: Fraction, hi: Fraction, n: int, scale: str) -> float:
    """Smallest gap between neighbouring exact pixel values, in float64 ulps of the values."""
    values = exact_values(lo, hi, n, scale)
    if len(values) < 2:
        return math.inf
    with localcontext() as ctx:
        ctx.prec = EXACT_DIGITS
        gaps = np.array([float(abs(b - a)) for a, b in zip(values, values[1:])])
    mags = np.abs(np.array([float(v) for v in values]))
    with np.errstate(all="ignore"):
        ratios = gaps / np.spacing(np.maximum(mags[:-1], mags[1:]))  # one array call: a zoom's depth check asks ~60 times
    ratios = ratios[~np.isnan(ratios)]  # values past float64's range: no gap (as a running min skips NaN)
    return float(ratios.min()) if ratios.size else math.inf


def _float64_gap(window: Window, n: int, scale: str, axis: int) -> float:
    """float64 ulps between neighbouring pixels: as before exact coordinates for float windows."""
    edges = window.edges()[2 * axis : 2 * axis + 2]
    if window.exact is None:
        with np.errstate(all="ignore"):
            return min_relative_spacing(float(edges[0]), float(edges[1]), n, scale)
    return spacing_ulps(edges[0], edges[1], n, scale)


def resolve(requested: str, window: Window, width: int, height: int, scales: tuple[str, str],
            names: tuple[str, str] = ("x", "y")) -> str:
    """The precision a ``width × height`` grid of ``window`` trains at: ``float64`` or ``double-double``.

    ``auto`` takes float64 where it resolves neighbouring pixels (at least
    MIN_ULPS ulps apart on both axes) and double-double below.  Raises
    :class:`PrecisionError` where the precision asked for cannot tell the
    pixels apart, with the figure.
    """
    requested = check_precision(requested)
    gaps = [_float64_gap(window, n, s, a) for a, (n, s) in enumerate(((width, scales[0]), (height, scales[1])))]
    worst = min(gaps)
    name = names[gaps.index(worst)]
    if worst >= MIN_ULPS and requested != DOUBLE_DOUBLE:
        return FLOAT64
    if requested == FLOAT64:
        raise PrecisionError(
            f"precision: float64 cannot tell neighbouring pixels apart here: {name} values are {worst:.2g} float64 "
            f"ulps apart (need at least {MIN_ULPS:g}); use double-double (or auto), a wider window or fewer pixels")
    if worst * 2.0**53 < MIN_ULPS:
        raise PrecisionError(
            f"precision: even double-double cannot tell neighbouring pixels apart here: {name} values are "
            f"{worst * 2.0**53:.2g} double-double ulps apart (need at least {MIN_ULPS:g}); widen the window")
    return DOUBLE_DOUBLE


def axis_values_dd(window: Window, n: int, scale: str, axis: int) -> np.ndarray:
    """(2, n) double-double values of axis ``axis`` (0 = x, 1 = y) of ``window``, from its exact edges."""
    lo, hi = window.edges()[2 * axis : 2 * axis + 2]
    return split_dd(exact_values(lo, hi, n, scale))
