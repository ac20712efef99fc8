"""The explorer past float64: exact views, their labels, pixel coordinates and the precision floors.

Thirty decades deep a view's float edges are all one number, so the page keeps
the view's centre as an exact decimal and its half-extents as floats, and the
server builds :meth:`Window.around` from them (exact edges).  Everything here
works from those exact edges (:meth:`Window.edges`) when the window has them,
and from the float edges, exactly as before exact coordinates, when it has not,
so float views keep their labels, warnings and commands to the last digit.

The floors.  float64 tells neighbouring pixels apart while their values are at
least :data:`~fractaltrain.window.MIN_ULPS` float64 ulps apart; below that
``auto`` trains in double-double, which reaches 2**53 times further (about 16
decades).  The gap between neighbouring pixels shrinks tenfold per decade of
zoom, so ``log10(gap / MIN_ULPS)`` (in the working floor's ulps) is the zoom
left at this size: the page stops wheeling there.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np

from fractaltrain.config import Config
from fractaltrain.precision import DD_ULP, DOUBLE_DOUBLE, FLOAT64, spacing_ulps
from fractaltrain.zoom.overlay import scientific
from fractaltrain.window import EXACT_DIGITS, MIN_ULPS, Window, config_window, decimal_string, min_relative_spacing

NEAR_FLOOR_DECADES = 2.0  # warn this many decades before a precision's floor
AT_FLOOR_DECADES = 0.1  # closer than this, the page zooms no deeper
PIXEL_PLACES = 6  # a pixel's coordinate is given to a millionth of a pixel


def float64_gap(cfg: Config, win: Window, w: int, h: int) -> float:
    """Smallest gap between neighbouring pixel values of the view, in float64 ulps (as ``precision.resolve``)."""
    if win.exact is None:
        with np.errstate(all="ignore"):
            return min(min_relative_spacing(win.x0, win.x1, w, cfg.x.scale),
                       min_relative_spacing(win.y0, win.y1, h, cfg.y.scale))
    x0, x1, y0, y1 = win.edges()
    return min(spacing_ulps(x0, x1, w, cfg.x.scale), spacing_ulps(y0, y1, h, cfg.y.scale))


def floor_precision(cfg: Config) -> str:
    """Whose floor bounds the zoom: float64's with ``precision float64``, double-double's otherwise."""
    return FLOAT64 if cfg.precision == FLOAT64 else DOUBLE_DOUBLE


def decades_left(gap: float, precision: str) -> float:
    """Decades of zoom at this size before ``precision`` cannot tell neighbouring pixels apart."""
    ulps = gap if precision == FLOAT64 else gap / DD_ULP
    if not ulps > 0:
        return -math.inf
    return math.log10(ulps / MIN_ULPS)


def precision_warnings(cfg: Config, win: Window, w: int, h: int, precision: str) -> list[str]:
    """What the view's precision means: double-double in use, and how near a floor the view is.

    ``precision`` is the precision the view's grid trains at (float64 or double-double).
    """
    gap = float64_gap(cfg, win, w, h)
    if precision == DOUBLE_DOUBLE:
        if gap < MIN_ULPS:
            out = [f"float64 floor: neighbouring pixels are {gap:.2g} ulps apart (fewer than {MIN_ULPS:g}); "
                   "training in double-double here (about 20 times slower)"]
        else:
            out = ["training in double-double (precision double-double; slower than float64)"]
        left = decades_left(gap, DOUBLE_DOUBLE)
        if left < AT_FLOOR_DECADES:
            out.append(f"double-double floor: neighbouring pixels are {gap / DD_ULP:.2g} double-double ulps apart; "
                       "deeper views cannot show new detail, so the page zooms no deeper here")
        elif left < NEAR_FLOOR_DECADES:
            out.append(f"near the double-double floor: about {left:.1f} decades of zoom left at this size")
        return out
    if gap < MIN_ULPS:  # only a float64 grid asked for below its floor gets here
        return [f"float64 floor: neighbouring pixels are {gap:.1f} ulps apart (fewer than {MIN_ULPS:g}); "
                "deeper views cannot show new detail (precision double-double goes further)"]
    left = decades_left(gap, FLOAT64)
    if left < NEAR_FLOOR_DECADES:
        then = ("; double-double takes over below" if cfg.precision != FLOAT64
                else "; precision double-double goes further")
        return [f"near the float64 floor: about {left:.1f} decades of zoom left at this size{then}"]
    return []


# ---------------------------------------------------------------------- labels
def labels(cfg: Config, win: Window) -> dict:
    """The window in the hyperparameters' own units and the zoom depth, as the video overlay prints them."""
    from fractaltrain.zoom.overlay import format_depth, window_ranges

    home = config_window(cfg)
    x, y = window_ranges(cfg, win)
    return {"x": x, "y": y, "depth": "zoom " + format_depth(math.log10(home.width / win.width))}


# ---------------------------------------------------------------------- coordinates and values
def round_decimal(q: Fraction, tolerance: Fraction) -> Fraction:
    """``q`` rounded to the fewest decimal places that keep it within ``tolerance`` (> 0)."""
    places = max(0, math.ceil(-math.log10(float(tolerance))))
    scale = 10**places
    return Fraction(round(q * scale), scale)


def pixel_coordinate(lo: Fraction, hi: Fraction, n: int, i: int) -> Fraction:
    """Axis coordinate of pixel ``i`` of ``n`` in ``[lo, hi]``: a decimal within a millionth of a pixel."""
    step = (Fraction(hi) - Fraction(lo)) / n
    return round_decimal(Fraction(lo) + (i + Fraction(1, 2)) * step, step / 10**PIXEL_PLACES)


def dd_text(hi: float, lo: float) -> str:
    """The double-double ``hi + lo`` to 32 significant digits."""
    if not math.isfinite(hi) or hi == 0:
        return repr(float(hi))
    with localcontext() as ctx:
        ctx.prec = EXACT_DIGITS
        return scientific(Decimal(float(hi)) + Decimal(float(lo)), 32)


def centre_strings(win: Window) -> list[str]:
    """The window's exact centre as decimal strings."""
    return [decimal_string(c) for c in win.exact_center()]
