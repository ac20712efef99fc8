"""Text overlays for zoom videos: the current hyperparameter window and depth.

A deep-zoom frame on its own says nothing about where it is; burning the
coordinate ranges and the zoom depth into a corner makes every frame (and any
screenshot of it) self-describing.  The formatting helpers choose the number
of digits from the width of the window, so the two ends of a range always
read differently even 13 decades deep, without printing 17 digits at the
start of the zoom where 4 are enough.

Importing this module has no side effects; Pillow is imported on first use.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np

from fractaltrain.window import EXACT_DIGITS

__all__ = ["CORNERS", "DEFAULT_TEXT_FRACTION", "draw_overlay", "format_depth", "format_range"]

#: Accepted values of ``draw_overlay(corner=...)``.
CORNERS = ("bottom-left", "bottom-right", "top-left", "top-right")

#: Default text height as a fraction of the frame height: 2.8 % gives 20 px
#: lines at 720p, readable on a laptop without hiding much of the fractal.
DEFAULT_TEXT_FRACTION = 0.028

# Opacity of the dark box behind the text: enough for white text to stay
# readable over the brightest palette colours while the fractal shows through.
_BOX_ALPHA = 0.6


def draw_overlay(frame, lines, corner: str = "bottom-left", scale: float | None = None):
    """Draw a few lines of white text on a translucent dark box in a corner.

    Parameters
    ----------
    frame : numpy.ndarray
        ``(height, width, 3)`` uint8 RGB.  Not modified.
    lines : str or sequence of str
        Text lines, top to bottom (a single string is split at newlines),
        e.g. ``["x 1.3299762e+01 … 1.3299786e+01", "y …", "depth 7.3 decades"]``.
    corner : {"bottom-left", "bottom-right", "top-left", "top-right"}
        Where to put the box.
    scale : float, optional
        Font size as a fraction of the frame height; default
        `DEFAULT_TEXT_FRACTION` (20 px at 720p), never below 10 px.  Tying it to
        the frame height keeps the overlay's share of the picture the same in a
        360p preview and a 4K master.

    Returns
    -------
    numpy.ndarray
        A new ``(height, width, 3)`` uint8 frame; pixels outside the box are
        those of the input.

    Raises
    ------
    ValueError
        Wrong frame shape or dtype, unknown corner, or scale not in (0, 1].
    """
    from PIL import Image, ImageDraw, ImageFont

    arr = np.asarray(frame)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(
            f"frame must be a (height, width, 3) uint8 array, got shape {arr.shape} dtype {arr.dtype}"
        )
    if corner not in CORNERS:
        raise ValueError(f"corner {corner!r} is not one of {', '.join(CORNERS)}")
    frac = DEFAULT_TEXT_FRACTION if scale is None else float(scale)
    if not (0.0 < frac <= 1.0):
        raise ValueError(f"scale must be in (0, 1], got {scale!r}")
    text = lines if isinstance(lines, str) else "\n".join(str(line) for line in lines)
    if not text.strip():
        return arr.copy()

    height, width = arr.shape[:2]
    px = max(10, round(frac * height))  # below 10 px text is unreadable
    font = ImageFont.load_default(size=px)  # Pillow's scalable built-in font
    spacing = round(0.25 * px)
    # The text's ink box laid out at the origin, then placed, padded, in the corner.
    canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    ux0, uy0, ux1, uy1 = draw.multiline_textbbox((0, 0), text, font=font, spacing=spacing)
    pad = max(2, round(0.45 * px))
    margin = max(2, round(0.02 * min(height, width)))
    box_w, box_h = (ux1 - ux0) + 2 * pad, (uy1 - uy0) + 2 * pad
    x0 = margin if corner.endswith("left") else width - margin - box_w
    y0 = margin if corner.startswith("top") else height - margin - box_h
    draw.rectangle((x0, y0, x0 + box_w - 1, y0 + box_h - 1), fill=(0, 0, 0, round(255 * _BOX_ALPHA)))
    draw.multiline_text((x0 + pad - ux0, y0 + pad - uy0), text, font=font, spacing=spacing,
                        fill=(255, 255, 255, 255))
    out = Image.alpha_composite(Image.fromarray(arr).convert("RGBA"), canvas)
    return np.array(out.convert("RGB"), dtype=np.uint8)


def _sig_digits(lo: float, hi: float) -> int:
    """Significant digits so that *lo* and *hi* print differently."""
    width = abs(hi - lo)
    mag = max(abs(lo), abs(hi))
    if width == 0.0 or mag == 0.0:
        return 4
    # Digits from the leading digit of the larger end down to the leading
    # digit of the width, plus one more so the width itself is resolved to
    # two significant digits (the ends then differ by >= ~10 in the last
    # places, not by a rounding accident of 1).
    n = math.floor(math.log10(mag)) - math.floor(math.log10(width)) + 2
    return min(17, max(4, n))


def format_range(lo: float, hi: float) -> str:
    """Format ``lo … hi`` with just enough digits for the ends to differ.

    Parameters
    ----------
    lo, hi : float
        The ends of a window in the hyperparameter's own units (actual
        learning rates, not their log10), so a viewer reads the value the
        network was trained with.

    Returns
    -------
    str
        Both ends in scientific notation with the same number of significant
        digits, joined by " … " (e.g. ``"1.3299762e+01 … 1.3299786e+01"``).
        The digit count is the smallest that resolves the width of the range
        to two significant digits, at least 4 and at most 17 (the most a
        float64 can carry); equal ends are shown with the fewest digits (4 to
        17) that reproduce the value.

    Examples
    --------
    >>> format_range(13.29976231, 13.29978604)
    '1.3299762e+01 … 1.3299786e+01'
    >>> format_range(0.001, 0.1)
    '1.000e-03 … 1.000e-01'
    """
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{lo!r} … {hi!r}"
    if lo == hi:
        n = 4
        while n < 17 and float(f"{lo:.{n - 1}e}") != lo:
            n += 1
    else:
        n = _sig_digits(lo, hi)
        # Rounding can still make the ends coincide at the boundary of a
        # decade; add digits until they do not.
        while n < 17 and f"{lo:.{n - 1}e}" == f"{hi:.{n - 1}e}":
            n += 1
    return f"{lo:.{n - 1}e} … {hi:.{n - 1}e}"


def format_depth(decades: float) -> str:
    """Format a zoom depth, e.g. ``format_depth(7.31)`` -> ``"7.3 decades"``.

    Parameters
    ----------
    decades : float
        log10 of the ratio between the initial and the current window width.
        One decimal is enough: it changes visibly from frame to frame in a
        typical zoom and does not flicker through meaningless digits.

    Returns
    -------
    str
        Without a label, so callers can write ``"depth " + format_depth(d)``.
    """
    d = float(decades)
    if not math.isfinite(d):
        return f"{d!r} decades"
    text = f"{d:.1f}"
    if text == "-0.0":
        text = "0.0"
    return f"{text} decades"


# ---------------------------------------------------------------------- windows past float64's digits
LABEL_DIGITS = 40  # the most significant digits a label prints (double-double holds about 32)


def _value(axis, u: Fraction) -> Decimal:
    """The hyperparameter at axis coordinate ``u``, to EXACT_DIGITS digits (call inside a localcontext)."""
    q = Decimal(u.numerator) / Decimal(u.denominator)
    return Decimal(10) ** q if axis.scale == "log10" else q


def scientific(d: Decimal, digits: int) -> str:
    """``d`` in scientific notation with ``digits`` significant digits, written as Python writes floats."""
    mant, _, exp = f"{d:.{digits - 1}e}".partition("e")
    e = int(exp)
    return f"{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"


def range_text(axis, lo: Fraction, hi: Fraction) -> str:
    """``lo … hi`` in the hyperparameter's own units with just enough digits for the ends to differ.

    The overlay's :func:`~fractaltrain.zoom.overlay.format_range` where float64
    tells the ends apart; past it, the exact values with up to LABEL_DIGITS digits.
    """
    with localcontext() as ctx:
        ctx.prec = EXACT_DIGITS
        a, b = _value(axis, Fraction(lo)), _value(axis, Fraction(hi))
        fa, fb = float(a), float(b)
        if math.isfinite(fa) and math.isfinite(fb) and fa != fb and _sig_digits(fa, fb) < 15:
            return format_range(fa, fb)
        width, mag = abs(b - a), max(abs(a), abs(b))
        if width == 0 or mag == 0:
            return format_range(fa, fb)
        n = min(LABEL_DIGITS, max(4, mag.adjusted() - width.adjusted() + 2))
        while n < LABEL_DIGITS and scientific(a, n) == scientific(b, n):
            n += 1
        return f"{scientific(a, n)} … {scientific(b, n)}"


def window_ranges(cfg, win) -> tuple[str, str]:
    """The overlay's two range lines (``PARAM  lo … hi``) of window ``win``: floats as always, exact edges
    (a window past float64's digits) with as many digits as the ends need to differ."""
    if win.exact is None:
        return (f"{cfg.x.param}  {format_range(cfg.x.to_value(win.x0), cfg.x.to_value(win.x1))}",
                f"{cfg.y.param}  {format_range(cfg.y.to_value(win.y0), cfg.y.to_value(win.y1))}")
    x0, x1, y0, y1 = win.edges()
    return f"{cfg.x.param}  {range_text(cfg.x, x0, x1)}", f"{cfg.y.param}  {range_text(cfg.y, y0, y1)}"
