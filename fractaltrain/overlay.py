"""Text overlays for zoom videos: the current hyperparameter window and depth.

A deep-zoom frame on its own says nothing about where it is; burning the
coordinate ranges and the zoom depth into a corner makes every frame (and any
screenshot of it) self-describing.  The formatting helpers choose the number
of digits from the width of the window, so the two ends of a range always
read differently even 13 decades deep, without printing 17 digits at the
start of the zoom where 4 are enough.

Importing this module has no side effects; fonts are loaded on first use and
cached per pixel size.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os

import numpy as np

__all__ = ["CORNERS", "DEFAULT_TEXT_FRACTION", "draw_overlay", "format_depth", "format_range"]

#: Accepted values of ``draw_overlay(corner=...)``.
CORNERS = ("bottom-left", "bottom-right", "top-left", "top-right")

#: Default text height as a fraction of the frame height: 2.8 % gives 20 px
#: lines at 720p, readable on a laptop without hiding much of the fractal.
DEFAULT_TEXT_FRACTION = 0.028

# Opacity of the dark box behind the text: enough for white text to stay
# readable over the brightest palette colours while the fractal shows through.
_BOX_ALPHA = 0.6

# Characters the Latin-1-only bitmap fallback font cannot draw.
_ASCII_FALLBACK = {"\u2026": "...", "\u2212": "-", "\u2013": "-", "\u2014": "-", "\u00a0": " "}

_DEJAVU_FILES = ("DejaVuSans.ttf", "DejaVuSansMono.ttf")
_DEJAVU_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/TTF",
    "/usr/local/share/fonts",
    "/Library/Fonts",
    os.path.join(os.environ.get("WINDIR", r"C:\Windows"), "Fonts"),
)


def _dejavu_candidates():
    """Paths where a DejaVu font may live, most specific first.

    Includes the copy that matplotlib ships in its package data, located with
    ``importlib.util.find_spec`` so matplotlib is never imported (it is slow
    to import and not a dependency).
    """
    paths = []
    try:
        spec = importlib.util.find_spec("matplotlib")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        ttf_dir = os.path.join(os.path.dirname(spec.origin), "mpl-data", "fonts", "ttf")
        paths += [os.path.join(ttf_dir, f) for f in _DEJAVU_FILES]
    for d in _DEJAVU_DIRS:
        paths += [os.path.join(d, f) for f in _DEJAVU_FILES]
    # Bare names last: Pillow then searches the platform's font folders.
    paths += list(_DEJAVU_FILES)
    return paths


@functools.lru_cache(maxsize=16)
def _load_font(px: int):
    """A font whose text is about *px* pixels high, best available first.

    1. Pillow's built-in scalable font (``load_default(size=...)``, Pillow
       >= 10.1 built with FreeType): always present, no file lookup.
    2. A DejaVu TrueType font from matplotlib's data or the system.
    3. Pillow's fixed-size bitmap font: small, but never fails.
    """
    from PIL import ImageFont

    try:
        font = ImageFont.load_default(size=px)
        if isinstance(font, ImageFont.FreeTypeFont):
            return font
    except (TypeError, OSError, ImportError):
        pass  # old Pillow without the size argument, or no FreeType
    for candidate in _dejavu_candidates():
        try:
            return ImageFont.truetype(candidate, px)
        except (OSError, ImportError):
            continue
    return ImageFont.load_default()


def _is_scalable(font) -> bool:
    from PIL import ImageFont

    return isinstance(font, ImageFont.FreeTypeFont)


def _drawable(text: str, font) -> str:
    if _is_scalable(font):
        return text
    for ch, rep in _ASCII_FALLBACK.items():
        text = text.replace(ch, rep)
    return text.encode("latin-1", errors="replace").decode("latin-1")


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
        `DEFAULT_TEXT_FRACTION` (0.028, i.e. 20 px at 720p), never below
        10 px.  Tying it to the frame height keeps the overlay's share of the
        picture the same in a 360p preview and a 4K master.

    Returns
    -------
    numpy.ndarray
        A new ``(height, width, 3)`` uint8 frame.  Pixels outside the box are
        identical to the input.

    Raises
    ------
    ValueError
        Wrong frame shape or dtype, unknown corner, or scale not in (0, 1].
    """
    from PIL import Image, ImageDraw

    arr = np.asarray(frame)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(
            f"frame must be a (height, width, 3) uint8 array, got shape {arr.shape} "
            f"dtype {arr.dtype}"
        )
    if corner not in CORNERS:
        raise ValueError(f"corner {corner!r} is not one of {', '.join(CORNERS)}")
    frac = DEFAULT_TEXT_FRACTION if scale is None else float(scale)
    if not (0.0 < frac <= 1.0):
        raise ValueError(f"scale must be in (0, 1], got {scale!r}")
    if isinstance(lines, str):
        lines = lines.splitlines()
    lines = [str(line) for line in lines]
    out = np.array(arr, dtype=np.uint8, order="C", copy=True)
    if not any(line.strip() for line in lines):
        return out

    height, width = out.shape[:2]
    px = max(10, int(round(frac * height)))  # below 10 px text is unreadable
    font = _load_font(px)
    lines = [_drawable(line, font) for line in lines]

    # Lay the lines out at the origin and measure the union of their ink
    # boxes, then place that block in the corner.  Line pitch is set from the
    # font size rather than each line's ink, so lines without descenders do
    # not shift the rows below them.
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    if _is_scalable(font):
        pitch = int(round(1.25 * px))
    else:
        pitch = probe.textbbox((0, 0), "Ag", font=font)[3] + 2
    boxes = []
    for i, line in enumerate(lines):
        if line:
            boxes.append(probe.textbbox((0, i * pitch), line, font=font))
    ux0 = min(b[0] for b in boxes)
    uy0 = min(b[1] for b in boxes)
    ux1 = max(b[2] for b in boxes)
    uy1 = max(b[3] for b in boxes)

    pad = max(2, int(round(0.45 * px)))
    margin = max(2, int(round(0.02 * min(height, width))))
    box_w = (ux1 - ux0) + 2 * pad
    box_h = (uy1 - uy0) + 2 * pad
    x0 = margin if corner.endswith("left") else width - margin - box_w
    y0 = margin if corner.startswith("top") else height - margin - box_h
    # Offset that moves the layout's ink box to sit inside the padded box.
    dx = x0 + pad - ux0
    dy = y0 + pad - uy0

    # Darken the box (clipped to the frame) by blending with black.
    cx0, cy0 = max(0, x0), max(0, y0)
    cx1, cy1 = min(width, x0 + box_w), min(height, y0 + box_h)
    if cx1 > cx0 and cy1 > cy0:
        region = out[cy0:cy1, cx0:cx1].astype(np.float32)
        out[cy0:cy1, cx0:cx1] = np.rint(region * (1.0 - _BOX_ALPHA)).astype(np.uint8)

    img = Image.fromarray(out)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        if line:
            draw.text((dx, dy + i * pitch), line, font=font, fill=(255, 255, 255))
    result = np.array(img, dtype=np.uint8)
    # Text can never legitimately land outside the box; enforce it so that a
    # font with odd metrics cannot touch the rest of the picture.
    keep = np.ones((height, width), dtype=bool)
    keep[cy0:cy1, cx0:cx1] = False
    result[keep] = arr[keep]
    return result


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
