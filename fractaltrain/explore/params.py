"""Validating the explorer's query parameters.

Every request to the view API is parsed here into a frozen dataclass, or
refused with a :class:`RequestError` carrying the HTTP status and a message
that names the offending parameter.  Nothing in a request ever becomes a file
path: the tile store's folder names are hashes of the validated values.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction

from fractaltrain.render.colour import PALETTES
from fractaltrain.config import READOUTS, Config
from fractaltrain.window import Window, parse_coordinate

CLIENT_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")
LOG10_LIMIT = 300.0  # |axis coordinate| on a log10 axis, as config files allow


class RequestError(Exception):
    """A request the explorer refuses: ``status`` (4xx) and a one-line ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    """The largest work one request may ask for.

    ``max_pixels`` bounds one image (width × height); ``max_steps`` bounds the
    training steps; ``max_side`` bounds either edge, so a 1 × 10⁶ strip is
    refused as well.
    """

    max_pixels: int = 1 << 20
    max_side: int = 4096
    max_steps: int = 100_000


@dataclass(frozen=True)
class ViewParams:
    """One image of the view API: a window in axis units at ``w × h`` pixels.

    ``window`` is the view (exact edges when it was given as an exact centre,
    :meth:`Window.around`); ``x0 … y1`` are its edges rounded to float64, which
    are all one number 20 decades deep and serve only to log and compare.
    """

    x0: float
    x1: float
    y0: float
    y1: float
    w: int
    h: int
    steps: int
    readout: str
    palette: str
    client: str
    view: int
    final: bool
    window: Window = field(default=None)  # type: ignore[assignment]

    def __post_init__(self):
        if self.window is None:
            object.__setattr__(self, "window", Window(self.x0, self.x1, self.y0, self.y1))


@dataclass(frozen=True)
class PixelParams:
    """One pixel (column ``px`` from the left, row ``py`` from the top) of a view."""

    view: ViewParams
    px: int
    py: int


def single_values(query: dict[str, list[str]], allowed: tuple[str, ...]) -> dict[str, str]:
    """``parse_qs`` output to one string per name; unknown or repeated names are refused."""
    out = {}
    for name, values in query.items():
        if name not in allowed:
            raise RequestError(400, f"unknown parameter {name!r}; allowed: {', '.join(allowed)}")
        if len(values) != 1:
            raise RequestError(400, f"{name}: given {len(values)} times")
        out[name] = values[0]
    return out


def _need(q: dict[str, str], name: str) -> str:
    if name not in q:
        raise RequestError(400, f"{name}: missing")
    return q[name]


def _float(q: dict[str, str], name: str) -> float:
    text = _need(q, name)
    try:
        if len(text) > 40 or "_" in text:
            raise ValueError
        v = float(text)
    except ValueError:
        raise RequestError(400, f"{name}: expected a number, got {text[:40]!r}") from None
    if not math.isfinite(v):
        raise RequestError(400, f"{name}: must be finite, got {text!r}")
    return v


def _int(q: dict[str, str], name: str, lo: int, hi: int, default: int | None = None) -> int:
    if name not in q and default is not None:
        return default
    text = _need(q, name)
    if not re.fullmatch(r"[0-9]{1,12}", text):
        raise RequestError(400, f"{name}: expected a whole number, got {text[:40]!r}")
    v = int(text)
    if not lo <= v <= hi:
        raise RequestError(400, f"{name}: must be between {lo} and {hi}, got {v}")
    return v


def _choice(q: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    v = q.get(name, default)
    if v not in allowed:
        raise RequestError(400, f"{name}: must be one of {', '.join(allowed)}; got {v[:40]!r}")
    return v


EDGE_KEYS = ("x0", "x1", "y0", "y1")
CENTRE_KEYS = ("cx", "cy", "hw", "hh")
VIEW_KEYS = (*EDGE_KEYS, *CENTRE_KEYS, "w", "h", "steps", "readout", "palette", "client", "view", "final")
PIXEL_KEYS = VIEW_KEYS + ("px", "py")


def _exact(q: dict[str, str], name: str) -> Fraction:
    """A decimal of any length, read exactly (:func:`~fractaltrain.window.parse_coordinate`)."""
    text = _need(q, name)
    try:
        if "_" in text:
            raise ValueError("expected a decimal number")
        return parse_coordinate(text)
    except ValueError as exc:
        raise RequestError(400, f"{name}: {exc}, got {text[:40]!r}") from None


def _edges_window(q: dict[str, str], cfg: Config) -> Window:
    """The window given by its float edges ``x0, x1, y0, y1`` (as before exact coordinates)."""
    x0, x1, y0, y1 = (_float(q, k) for k in EDGE_KEYS)
    for lo, hi, axis, a in ((x0, x1, cfg.x, "x"), (y0, y1, cfg.y, "y")):
        if not lo < hi:
            raise RequestError(400, f"{a}0, {a}1: need {a}0 < {a}1, got {lo!r}, {hi!r}")
        if not math.isfinite(hi - lo):
            raise RequestError(
                400, f"{a}0, {a}1: the window is wider than float64 can represent ({a}1 - {a}0 overflows)")
        if axis.scale == "log10" and max(abs(lo), abs(hi)) > LOG10_LIMIT:
            raise RequestError(400, f"{a}0, {a}1: a log10 axis must stay within ±{LOG10_LIMIT:g} decades")
    return Window(x0, x1, y0, y1)


FLOAT_MAX = Fraction(10) ** 308  # below float64's largest number


def _centre_window(q: dict[str, str], cfg: Config) -> Window:
    """The window given by its exact centre ``cx, cy`` and half-extents ``hw, hh`` (decimals of any length)."""
    cx, cy, hw, hh = (_exact(q, k) for k in CENTRE_KEYS)
    for c, half, axis, a in ((cx, hw, cfg.x, "x"), (cy, hh, cfg.y, "y")):
        name = "hw" if a == "x" else "hh"
        if not half > 0:
            raise RequestError(400, f"{name}: the half-{'width' if a == 'x' else 'height'} must be positive, "
                               f"got {q[name][:40]!r}")
        if not (abs(c) + half < FLOAT_MAX and 2 * half < FLOAT_MAX):
            raise RequestError(400, f"c{a}, {name}: the window is wider than float64 can represent")
        if axis.scale == "log10" and abs(c) + half > LOG10_LIMIT:
            raise RequestError(400, f"c{a}, {name}: a log10 axis must stay within ±{LOG10_LIMIT:g} decades")
    return Window.around(cx, cy, hw, hh)


def parse_view(q: dict[str, str], cfg: Config, limits: Limits) -> ViewParams:
    """Validate the window, size, steps and colouring of a view request.

    The window is either ``x0, x1, y0, y1`` (floats) or an exact centre
    ``cx, cy`` with half-extents ``hw, hh`` (decimals of any length, read
    exactly: the page's form, which holds views 30 decades deep).  It must be
    finite with x0 < x1 and y0 < y1; on a log10 axis it must lie within ±300
    decades (the hyperparameter would overflow beyond).  Sizes and steps beyond
    ``limits`` are refused with status 413, which the page shows as is.
    """
    if any(k in q for k in CENTRE_KEYS):
        if any(k in q for k in EDGE_KEYS):
            raise RequestError(400, "give the window as x0, x1, y0, y1 or as cx, cy, hw, hh, not both")
        window = _centre_window(q, cfg)
    else:
        window = _edges_window(q, cfg)
    w = _int(q, "w", 1, 10**12)
    h = _int(q, "h", 1, 10**12)
    if max(w, h) > limits.max_side or w * h > limits.max_pixels:
        raise RequestError(
            413, f"w, h: {w}x{h} is larger than this explorer allows (at most {limits.max_side} px a side "
            f"and {limits.max_pixels} pixels)")
    steps = _int(q, "steps", 1, 10**12, default=cfg.training.steps)
    if steps > limits.max_steps:
        raise RequestError(413, f"steps: {steps} is more than this explorer allows ({limits.max_steps})")
    client = q.get("client", "page")
    if not CLIENT_RE.fullmatch(client):
        raise RequestError(400, "client: expected 1-40 letters, digits, '_' or '-'")
    return ViewParams(
        *window.as_list(), w=w, h=h, steps=steps, window=window,
        readout=_choice(q, "readout", READOUTS, cfg.readout),
        palette=_choice(q, "palette", PALETTES, "spectral"),
        client=client,
        view=_int(q, "view", 0, 2**53, default=0),
        final=_choice(q, "final", ("0", "1"), "1") == "1",
    )


def parse_pixel(q: dict[str, str], cfg: Config, limits: Limits) -> PixelParams:
    """A view plus the clicked pixel, which must lie inside it."""
    view = parse_view({k: v for k, v in q.items() if k not in ("px", "py")}, cfg, limits)
    return PixelParams(view, _int(q, "px", 0, view.w - 1), _int(q, "py", 0, view.h - 1))
