"""Follow a target below float64's floor: the boundary point refined level by level in exact coordinates.

The target search (:mod:`fractaltrain.search.targets`) works in float64
coordinates and judges candidates with rounding tests made for float64, so it
runs down to :data:`SEARCH_DEPTH` decades.  Deeper, :func:`deepen` follows the
boundary with the nearest-block rule of ``locate_nearest``: a small image
around the point (in double-double where float64 cannot resolve it, as every
grid does under ``auto`` precision), the 2×2 sign-change block nearest the
centre, its exact centre as the next point, and again about one decade
further.  The point stays within a pixel of a sign change at every level, so
it stays on the boundary to the depth asked for, whether the boundary there
is still fractal or has become a smooth curve (docs/deep.md).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from fractaltrain.boundary import boundary_mask
from fractaltrain.columns import OUT_MEASURE
from fractaltrain.compute.landscape import assemble, fill_grids, make_grid
from fractaltrain.compute.store import TileStore
from fractaltrain.problem import Problem
from fractaltrain.window import Window

SEARCH_DEPTH = 10.0  # decades the float64 target search goes; deeper levels follow the boundary exactly
RESOLUTION = 32  # pixels per side of each deep level's image (a power of two: the points stay finite decimals)
ZOOM_PER_LEVEL = 8.0  # at most this much zoom between deep levels


class DeepError(ValueError):
    """No boundary left in a deep level's image; ``reached`` is the last depth where there was one."""

    def __init__(self, reached: float, message: str):
        self.reached = reached
        super().__init__(message)


def deep_levels(start_depth: float, depth: float) -> list[float]:
    """Depths of the deep levels after ``start_depth``, down to ``depth`` (empty when not deeper)."""
    if depth <= start_depth:
        return []
    n = int(math.ceil((depth - start_depth) / math.log10(ZOOM_PER_LEVEL)))
    return [start_depth + (depth - start_depth) * (j + 1) / n for j in range(n)]


def exact_block_centre(win: Window, n: int, row: int, col: int) -> tuple[Fraction, Fraction]:
    """The exact centre of 2×2 block (``row``, ``col``) of an ``n × n`` image of ``win``."""
    x0, x1, y0, y1 = win.edges()
    return x0 + (col + 1) * (x1 - x0) / n, y0 + (row + 1) * (y1 - y0) / n


def deepen(problem: Problem, start: Window, x, y, start_depth: float, depth: float, store: TileStore,
           bar=None) -> tuple[Fraction, Fraction, list[Window]]:
    """The point ``(x, y)``, on the boundary down to ``start_depth`` below ``start``, followed to ``depth``.

    Returns the exact point and the windows it was chosen in.  Raises
    :class:`DeepError` where a level's image shows no boundary.
    """
    px, py = Fraction(x), Fraction(y)
    hx, hy = 0.5 * start.width, 0.5 * start.height
    windows = []
    reached = start_depth
    for d in deep_levels(start_depth, depth):
        s = 10.0**d  # float half-widths, as zoom plans have: binary, so points stay finite decimals
        win = Window.around(px, py, hx / s, hy / s)
        grid = make_grid(problem, win, RESOLUTION, RESOLUTION, RESOLUTION)
        fill_grids(problem, store, [grid])
        if bar is not None:
            bar.update(1)
        mask = boundary_mask(assemble(store, grid)[..., OUT_MEASURE])
        rows, cols = np.nonzero(mask)
        if rows.size == 0:
            raise DeepError(reached, f"no converge/diverge boundary left at {d:.2f} decades (reached {reached:.2f}); "
                            "try another seed or a smaller depth")
        c = (RESOLUTION - 2) / 2.0
        j = int(np.argmin((rows - c) ** 2 + (cols - c) ** 2))  # first of equals, row-major: deterministic
        px, py = exact_block_centre(grid.window, RESOLUTION, int(rows[j]), int(cols[j]))
        windows.append(win)
        reached = d
    return px, py, windows
