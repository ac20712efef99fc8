"""Find a zoom target that stays on the converge/diverge boundary at every scale.

:func:`locate` runs the target search of :mod:`fractaltrain.search.targets`: at about
one level per decade it scores candidate boundary points by how much resolved
structure surrounds them and rejects rounding-decided ones, so the target is
worth watching at every depth.  :func:`locate_nearest` is the older rule, which
seed ensembles follow (the search's tests are defined for one draw's sign) and
docs/targets.md compares against: render a small image around the current
point, move to the boundary pixel (a 2×2 neighbourhood whose measure changes
sign) nearest the centre, zoom in by at most ``zoom_per_level``, repeat.

Both keep the point within a pixel of a sign change at every level, so the
final point has both converged and diverged pixels around it at every depth.
The small images go through the tile store, and so do the search's rounding
tests (the signs of its moved pixels, kept as records), so a rerun (or the
``zoom`` that follows a ``locate``) reuses them and trains nothing twice.  The
result depends only on the problem, the start view, the depth and the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fractaltrain.boundary import boundary_mask
from fractaltrain.columns import OUT_MEASURE
from fractaltrain.compute.landscape import assemble, fill_grids, make_grid
from fractaltrain.problem import Problem
from fractaltrain.compute.store import TileStore
from fractaltrain.search.deep import SEARCH_DEPTH, DeepError, deep_levels, deepen
from fractaltrain.search.settings import BUDGET, search_params
from fractaltrain.search.targets import LocateError, Search, level_depths
from fractaltrain.window import Window, block_centre, decimal_string

__all__ = ["LocateError", "LocateResult", "candidates", "ensemble_candidates", "locate", "locate_ensemble",
           "locate_images", "locate_levels", "locate_nearest"]


@dataclass(frozen=True)
class LocateResult:
    """A target; ``score``/``flip``/``strict``/``levels`` are set by the target search only."""

    x: float
    y: float
    depth: float
    seed: int
    windows: list = field(default_factory=list)
    rule: str = "nearest"
    score: float | None = None  # worst level's structure score (> 0: inside the wanted band)
    flip: float | None = None  # worst level's sampled rounding-flip rate
    strict: bool | None = None  # every level met the acceptance rule
    levels: list = field(default_factory=list)  # per-level dicts (Candidate.to_dict)
    pixels: int = field(default=0, compare=False)  # pixels trained (tiles found in the store not counted)
    tier: tuple | None = None  # (judged from, minimum score, scan) of the search pass that found it (target_settings.TIERS)

    def to_dict(self) -> dict:
        return {
            "x": float(self.x),
            "y": float(self.y),
            "x_exact": repr(self.x) if isinstance(self.x, float) else decimal_string(self.x),
            "y_exact": repr(self.y) if isinstance(self.y, float) else decimal_string(self.y),
            "depth": self.depth,
            "seed": self.seed,
            "rule": self.rule,
            "score": None if self.score is None or not math.isfinite(self.score) else round(self.score, 4),
            "flip": self.flip,
            "strict": self.strict,
            "tier": None if self.tier is None else {"judged_from": self.tier[0], "accept": round(self.tier[1], 6),
                                                    "scan": self.tier[2]},
            "levels": self.levels,
            "pixels_trained": self.pixels,
            "search": search_params() if self.rule == "search" else None,
            "windows": [w.strings() if w.exact is not None else w.as_list() for w in self.windows],
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


def locate(problem: Problem, start: Window, depth: float, store: TileStore, *, seed: int = 0, bar=None,
           budget: int | None = None, bounds: Window | None = None) -> LocateResult:
    """Target ``seed`` (0 = the best) of the target search, down to ``depth`` decades below ``start``.

    ``bounds`` (the config's own view) is where the target may lie; ``start`` (the
    view widened to the video's aspect) may reach beyond it.
    """
    return candidates(problem, start, depth, store, seed + 1, bar=bar, budget=budget, bounds=bounds)[seed]


def locate_ensemble(problems: list[Problem], start: Window, depth: float, store: TileStore, *, seed: int = 0,
                    bar=None, resolution: int = 32) -> LocateResult:
    """Target ``seed`` of a seed ensemble: the ½ level of P(converge), followed with the older rule.

    The search's structure and rounding tests are defined for one draw's sign
    only, so an ensemble follows :func:`locate_nearest`'s rule (``resolution``
    pixels per level) on ``½ − P(converge)``.
    """
    return _follow_boundary(problems, _half_level, start, depth, store, seed=seed, resolution=resolution, bar=bar)


def candidates(problem: Problem, start: Window, depth: float, store: TileStore, count: int, *,
               bar=None, budget: int | None = None, bounds: Window | None = None) -> list[LocateResult]:
    """The first ``count`` distinct targets of the search, in search (best-first) order.

    A pure function of its arguments: the search renders through the tile store
    (whose contents only save work) and uses no clock, thread count or random
    state, so ``locate`` and ``zoom`` find the same target on any machine.
    """
    shallow = min(depth, SEARCH_DEPTH)
    search = Search(problem, start, shallow, store, budget=budget, bar=bar, bounds=bounds)
    found = search.targets(count)
    if len(found) < count:
        raise LocateError(shallow, f"found only {len(found)} distinct target(s); asked for {count}")
    out = []
    for k, t in enumerate(found):
        wins = [search.window(j, t.path[j - 1].x, t.path[j - 1].y) if j else start for j in range(len(t.path))]
        x, y = t.x, t.y
        if depth > shallow:  # below the search's float64 levels: follow the boundary exactly
            try:
                x, y, deep_wins = deepen(problem, start, x, y, shallow, depth, store, bar=bar)
            except DeepError as exc:
                raise LocateError(exc.reached, str(exc)) from None
            wins += deep_wins
        out.append(LocateResult(x=x, y=y, depth=depth, seed=k, windows=wins, rule="search", score=t.score,
                                flip=round(t.flip, 4), strict=t.strict, levels=[c.to_dict() for c in t.path],
                                pixels=search.pixels, tier=(t.strict_from, t.accept, t.scan)))
    return out


def ensemble_candidates(problems: list[Problem], start: Window, depth: float, store: TileStore, count: int, *,
                        bar=None) -> list[LocateResult]:
    """The targets of seeds ``0 .. count-1`` of a seed ensemble (:func:`locate_ensemble`)."""
    return [locate_ensemble(problems, start, depth, store, seed=k, bar=bar) for k in range(count)]


def locate_nearest(problem: Problem, start: Window, depth: float, store: TileStore, *, seed: int = 0,
                   resolution: int = 32, zoom_per_level: float = 8.0, bar=None) -> LocateResult:
    """Boundary point of ``start`` that stays on one draw's sign boundary down to ``depth`` decades.

    ``seed`` 0 takes the boundary pixel nearest the centre at every level; another
    seed picks a random boundary pixel of the first view (then nearest-centre),
    which gives a different target.
    """
    return _follow_boundary([problem], _one_draw, start, depth, store, seed=seed, resolution=resolution,
                            zoom_per_level=zoom_per_level, bar=bar)


def _one_draw(stack: np.ndarray) -> np.ndarray:
    """One draw's measure."""
    return stack[0]


def _half_level(stack: np.ndarray) -> np.ndarray:
    """½ − P(converge) over the members: negative where most members converge."""
    return 0.5 - np.count_nonzero(stack < 0, axis=0) / len(stack)


def _follow_boundary(problems: list[Problem], field, start: Window, depth: float, store: TileStore, *, seed: int,
                     resolution: int, zoom_per_level: float = 8.0, bar=None) -> LocateResult:
    """The older rule: render a small image, move to the boundary block of ``field(measures)`` nearest
    the centre (random at the first level with ``seed``), zoom in by at most ``zoom_per_level``, repeat."""
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
        values = field(np.stack([assemble(store, g)[..., OUT_MEASURE] for g in grids]))
        hit = pick_boundary(boundary_mask(values), rng if j == 0 else None)
        if hit is None:
            raise LocateError(reached, f"no converge/diverge boundary left at {d:.2f} decades "
                              f"(reached {reached:.2f}); try another seed or a smaller depth")
        px, py = block_centre(win, resolution, resolution, *hit)
        windows.append(win)
        reached = d
    return LocateResult(x=px, y=py, depth=depth, seed=seed, windows=windows)


def locate_levels(depth: float) -> int:
    """How many small images :func:`locate` renders at least (one per level)."""
    return len(level_depths(min(depth, SEARCH_DEPTH))) + len(deep_levels(SEARCH_DEPTH, depth))


def locate_images(depth: float, count: int = 1) -> int:
    """A progress bar's total for :func:`candidates` (``count`` targets): the images its first pass may render.

    Why not the levels: the search renders a level image per branch it tries and
    probes ahead, so a 6-decade search renders some 10 to 40 images, not 7.  Its
    budget (:data:`~fractaltrain.search.settings.BUDGET` plus two per level, per
    target) bounds the first pass; most searches stop well short of it, and a
    later pass raises the total as it starts (:meth:`Search.targets`).
    """
    n = len(level_depths(min(depth, SEARCH_DEPTH))) - 1
    return 1 + (BUDGET + 2 * n) * count + len(deep_levels(SEARCH_DEPTH, depth)) * count

