"""Find a zoom target that stays on the converge/diverge boundary at every scale.

Start from a view, render a small image around the current point, move to the
boundary pixel (a 2×2 neighbourhood whose measure changes sign) nearest the
centre, zoom in by at most ``zoom_per_level``, and repeat down to the requested
depth.  Because the point is always within a pixel of a sign change, the next,
narrower window still contains that change, so the final point has both
converged and diverged pixels around it at the final depth.

The small images go through the tile store, so a rerun (or the ``zoom`` that
follows a ``locate``) reuses them.  The result depends only on the problem, the
start view, the depth, the resolution and the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fractaltrain.dimension import boundary_mask
from fractaltrain.columns import OUT_MEASURE
from fractaltrain.landscape import assemble, fill_grids, make_grid
from fractaltrain.problem import Problem
from fractaltrain.store import TileStore
from fractaltrain.window import Window, axis_coords


class LocateError(RuntimeError):
    """No boundary found at some depth; ``reached`` is the depth in decades that worked."""

    def __init__(self, reached: float, message: str):
        self.reached = reached
        super().__init__(message)


@dataclass(frozen=True)
class LocateResult:
    x: float
    y: float
    depth: float
    seed: int
    windows: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "x": self.x,
            "y": self.y,
            "x_exact": repr(self.x),
            "y_exact": repr(self.y),
            "depth": self.depth,
            "seed": self.seed,
            "windows": [w.as_list() for w in self.windows],
        }


def pick_boundary(mask: np.ndarray, rng: np.random.Generator | None) -> tuple[int, int] | None:
    """(row, col) of the chosen 2×2 boundary block: nearest the centre, or random with ``rng``."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    if rng is not None:
        j = int(rng.integers(rows.size))
        return int(rows[j]), int(cols[j])
    cr, cc = (mask.shape[0] - 1) / 2.0, (mask.shape[1] - 1) / 2.0
    d = (rows - cr) ** 2 + (cols - cc) ** 2
    j = int(np.argmin(d))  # first of equals, row-major: deterministic
    return int(rows[j]), int(cols[j])


def locate(
    problem: Problem | list[Problem],
    start: Window,
    depth: float,
    store: TileStore,
    *,
    seed: int = 0,
    resolution: int = 32,
    zoom_per_level: float = 8.0,
    bar=None,
) -> LocateResult:
    """Boundary point of ``start`` that stays on the boundary down to ``depth`` decades.

    ``seed`` 0 takes the boundary pixel nearest the centre at every level; another
    seed picks a random boundary pixel of the first view (then nearest-centre),
    which gives a different target.  A list of problems (the members of a seed
    ensemble, :mod:`fractaltrain.ensemble`) follows the ½ level of P(converge)
    instead of one draw's sign boundary.
    """
    problems = problem if isinstance(problem, list) else [problem]
    levels = max(1, int(math.ceil(depth / math.log10(zoom_per_level))))
    px, py = start.center
    hx, hy = 0.5 * start.width, 0.5 * start.height
    rng = np.random.default_rng(seed) if seed else None
    windows = []
    reached = 0.0
    for j in range(levels + 1):
        d = depth * j / levels
        s = 10.0**d
        win = Window.around(px, py, hx / s, hy / s)
        grids = [make_grid(p, win, resolution, resolution, resolution) for p in problems]
        fill_grids(problems, store, grids)
        if bar is not None:
            bar.update(1)
        stack = np.stack([assemble(store, g)[..., OUT_MEASURE] for g in grids])
        # one draw: its measure; an ensemble: ½ − P(converge), negative where most members converge
        values = stack[0] if not isinstance(problem, list) else 0.5 - np.count_nonzero(stack < 0, axis=0) / len(grids)
        hit = pick_boundary(boundary_mask(values), rng if j == 0 else None)
        if hit is None:
            raise LocateError(reached, f"no converge/diverge boundary left at {d:.2f} decades "
                              f"(reached {reached:.2f}); try another --seed or a smaller --depth")
        r, c = hit
        xs = axis_coords(win.x0, win.x1, resolution)
        ys = axis_coords(win.y0, win.y1, resolution)
        px = float(0.5 * (xs[c] + xs[c + 1]))
        py = float(0.5 * (ys[r] + ys[r + 1]))
        windows.append(win)
        reached = d
    return LocateResult(px, py, depth, seed, windows)


def locate_levels(depth: float, zoom_per_level: float = 8.0) -> int:
    """How many small images :func:`locate` renders (for progress bars)."""
    return max(1, int(math.ceil(depth / math.log10(zoom_per_level)))) + 1

