"""Windows in hyperparameter space and the pixel grid inside them.

A window is a rectangle in *axis coordinates*: decades for a ``log10`` axis,
plain values for a ``linear`` one.  Pixel ``i`` of ``n`` samples the centre of
its cell, so a window cut in half gives pixel grids that line up, which is what
nested zoom keyframes want.

Deep zooms need care: 10 decades down, neighbouring pixels differ in the 13th
digit.  Hyperparameter values are therefore computed as ``v_c + v_c·expm1(δ·ln10)``
around the window centre ``v_c`` rather than as ``10**(lo + i·step)``, so the
small offset ``δ`` is never rounded against the large centre coordinate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_ULPS = 4.0  # neighbouring pixels must differ by at least this many float64 ulps (render and zoom)


@dataclass(frozen=True)
class Window:
    """Axis-coordinate rectangle ``[x0, x1] × [y0, y1]`` (x0 < x1, y0 < y1)."""

    x0: float
    x1: float
    y0: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def center(self) -> tuple[float, float]:
        return (0.5 * (self.x0 + self.x1), 0.5 * (self.y0 + self.y1))

    def as_list(self) -> list[float]:
        return [self.x0, self.x1, self.y0, self.y1]

    @staticmethod
    def around(cx: float, cy: float, half_w: float, half_h: float) -> "Window":
        return Window(cx - half_w, cx + half_w, cy - half_h, cy + half_h)


def axis_coords(lo: float, hi: float, n: int) -> np.ndarray:
    """Axis coordinate of each of ``n`` pixel centres between ``lo`` and ``hi``."""
    i = np.arange(n, dtype=np.float64)
    return lo + (i + 0.5) * ((hi - lo) / n)


def axis_values(lo: float, hi: float, n: int, scale: str) -> np.ndarray:
    """Hyperparameter value at each of ``n`` pixel centres (see module docstring)."""
    if scale == "linear":
        return axis_coords(lo, hi, n)
    c = 0.5 * (lo + hi)
    i = np.arange(n, dtype=np.float64)
    delta = (i + 0.5 - 0.5 * n) * ((hi - lo) / n)
    vc = 10.0**c
    return vc + vc * np.expm1(delta * math.log(10.0))


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
    return Window(cfg.x.range[0], cfg.x.range[1], cfg.y.range[0], cfg.y.range[1])
