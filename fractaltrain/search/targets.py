"""Target search: boundary points with resolved structure at every scale, never rounding noise.

Why.  Following the sign change nearest the centre (the old ``locate`` rule,
:func:`fractaltrain.search.locate.locate_nearest`) often walks onto a single smooth
boundary line, so a zoom shows nothing happening, or into a band where float64
rounding decides the sign, so the zoom ends in static.  A person picking a
target looks for a place where the boundary stays *busy but resolved* as they
zoom.  This module does that automatically.

How.  The search descends one decade per level, from the opening view down to
the requested depth.  Level ``j`` renders a small image (``LEVEL_PX`` pixels
square) centred on the point chosen at level ``j - 1``, with the pixel size of a
``CHECK``-pixel window ``10**-d_j`` times the opening view.  Every boundary
block (a 2×2 sign change) within ``PAD`` pixels of the centre is a candidate,
scored on the ``CHECK``-pixel window centred on it and on the half-size window
inside that (nested neighbourhoods, i.e. this depth and 0.3 decades deeper):

* ``b``: the fraction of 2×2 blocks that change sign.  A single straight line
  across a 48-pixel window gives 2-4%; rounding static gives 40% and more.
* ``m``: the fraction of the minority phase (converged or diverged).

The score is the smallest log-margin of ``b`` inside ``[B_LO, B_HI]`` and of
``m`` above ``M_LO`` over both windows, so it is largest for a boundary that is
clearly more than a line, clearly less than static, with both phases present.
A candidate must score at least ``ACCEPT`` (or 0, exactly the band, in a
second pass when nothing meets the margin: ``TIERS``) and pass the rounding test
(:mod:`fractaltrain.search.noise`): on a subsample of its window, at most ``FLIP_MAX``
of pixels may change sign when both hyperparameters move by a few ulps.

The chosen point is always a boundary block, so the target stays on the
boundary at every depth, and later levels move it by less than a pixel of any
earlier level, so each level's scored window is (up to a fraction of a pixel)
the window that a zoom centred on the final target shows at that depth.  A
fraction of a pixel can still carry a window's block count across the band's
edge (a single curve sampled at another phase: 5.4% of blocks on the level's
own grid, 4.4% centred on the final point), so a complete target is verified:
the ``CHECK``-pixel windows centred on the final point at every judged depth
must lie in the band (:meth:`Search.verify`).  One that does not is kept only
as a relaxed fallback.

When the first judged level is level 2 (the usual case: one decade per
level, judged from 2 decades), the first two levels are a scan of the whole
opening view instead: every opening candidate's level-1 image is rendered and
all its coarse candidates probed, and the depth-first search starts from the
``SCAN_KEEP`` best (opening, level-1) pairs over the whole view, so a landscape
that is smooth curves for two decades almost everywhere is still searched
where it is not.  When neither the margin nor the band itself yields a target
from that scan, every window of the first judged level along the boundary is
scored (:mod:`fractaltrain.search.scan`: the opening view rendered at that
level's pixel size near its boundary) and the search starts from the best of
them, before it gives up judging the first level at all.

The search is depth-first and best-first with backtracking: candidates are
tried in score order (at most ``MAX_CHILDREN`` well-separated ones per level),
and a branch that finds no acceptable candidate deeper down is abandoned for
the next.  After a complete target the search resumes at the first level below
the opening view, so successive targets differ from the first decade on; the
``n``-th target found is seed ``n``.  When no branch satisfies every level
within the render budget, the deepest, best partial branch is completed
greedily (best score, rounding test preferred) and flagged ``strict=False``.
Everything is deterministic: ties break by distance to the centre, then
row-major order.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from fractaltrain.search.score import B_HI, B_LO, M_LO, Hit, pick, score_blocks
from fractaltrain.boundary import boundary_mask
from fractaltrain.columns import OUT_MEASURE
from fractaltrain.compute.landscape import assemble, fill_grids, grid_axes, make_grid
from fractaltrain.search.noise import FLIP_MAX_SEARCH, SEARCH_SHIFT, moved_signs
from fractaltrain.problem import Problem
from fractaltrain.compute.store import TileStore
from fractaltrain.search.path import Candidate, Deferred, Target
from fractaltrain.search.settings import (CHECK, COARSE_CHILDREN, COARSE_POOL, COARSE_REGION, COARSE_SEP, EVERY_CHILDREN,
                                          EVERY_SEP, FLIP_STRIDE, LEVEL_PX, MAX_CHILDREN, OPEN_CHILDREN, OPEN_PX,
                                          OPEN_SEP, OPEN_SIZES, PAD, PROBE_AHEAD, PROBE_PX, SEP, STRICT_FROM, TIERS,
                                          BUDGET)
from fractaltrain.search.starts import every_window_starts, level_one, sampled_starts
from fractaltrain.window import Window, axis_coords, block_centre

class LocateError(RuntimeError):
    """No boundary, or no target, at some depth; ``reached`` is the depth in decades that worked."""

    def __init__(self, reached: float, message: str):
        self.reached = reached
        super().__init__(message)


def level_depths(depth: float) -> list[float]:
    """Depths (decades below the opening view) of the search levels: about one decade apart."""
    n = max(1, int(math.ceil(depth - 1e-9)))
    return [depth * j / n for j in range(n + 1)]


class Search:
    """One target search over a problem and opening view (see the module docstring)."""

    def __init__(self, problem: Problem, start: Window, depth: float, store: TileStore, *,
                 budget: int | None = None, bar=None, bounds: Window | None = None):
        self.problem, self.start, self.store, self.bar = problem, start, store, bar
        self.bounds = bounds
        self.depths = level_depths(depth)
        n = len(self.depths) - 1
        self.budget_per_target = budget if budget is not None else BUDGET + 2 * n
        self.renders = 0
        self.pixels = 0
        self._budget = 0
        self.strict_from, self.accept, self.scan = TIERS[0]

    # -- rendering
    def window(self, j: int, px: float, py: float) -> Window:
        if j == 0:
            return self.start
        s = 10.0 ** self.depths[j] * CHECK / LEVEL_PX
        return Window.around(px, py, 0.5 * self.start.width / s, 0.5 * self.start.height / s)

    def render(self, win: Window, n: int, n_y: int | None = None, counted: bool = True):
        """Values (rows = y ascending) and pixel axes of an n × n image of ``win`` (n × n_y if given).

        ``counted=False``: the image was charged to the budget already (:meth:`charge`).
        """
        n_y = n if n_y is None else n_y
        grid = make_grid(self.problem, win, n, n_y, n if n_y == n else self.problem.config.tile)
        prog = fill_grids(self.problem, self.store, [grid])
        self.pixels += prog.pixels_computed
        if counted:
            self.charge(1)
        values = assemble(self.store, grid)[..., OUT_MEASURE]
        hx, hy = grid_axes(self.problem.config, grid)
        return values, hx, hy

    def charge(self, images: int) -> None:
        """Count ``images`` level images against the budget (and the bar), rendered now or deferred."""
        self.renders += images
        if self.bar is not None and images:
            self.bar.update(images)

    def resolved(self, target: Target) -> Target:
        """``target`` with its deferred level-1 record computed (:class:`fractaltrain.search.path.Deferred`)."""
        path = tuple(level_one(self, c.x, c.y, charged=True) if isinstance(c, Deferred) else c for c in target.path)
        return dataclasses.replace(target, path=path)

    def allowed(self, win: Window, n: int, n_y: int | None = None) -> np.ndarray | None:
        """Mask of the 2×2 blocks of an n × n image of ``win`` (n × n_y if given) whose centre lies in ``bounds``."""
        if self.bounds is None:
            return None
        b = self.bounds
        xs, ys = axis_coords(win.x0, win.x1, n), axis_coords(win.y0, win.y1, n if n_y is None else n_y)
        bx, by = 0.5 * (xs[:-1] + xs[1:]), 0.5 * (ys[:-1] + ys[1:])
        return ((by >= b.y0) & (by <= b.y1))[:, None] & ((bx >= b.x0) & (bx <= b.x1))[None, :]

    def candidate(self, j, win, values, hx, hy, hit: Hit) -> Candidate:
        """The candidate at ``hit``, with the rounding-flip rate of a subsample of its window."""
        r, c = hit.row, hit.col
        n_rows, n_cols = values.shape  # square, except the scan's opening image
        px, py = block_centre(win, n_cols, n_rows, r, c)
        half = (CHECK if j > 0 else OPEN_SIZES[0]) // 2
        stride = FLIP_STRIDE if j > 0 else 1
        rr = np.arange(max(0, r + 1 - half), min(n_rows, r + 1 + half), stride)
        cc = np.arange(max(0, c + 1 - half), min(n_cols, c + 1 + half), stride)
        gx, gy = np.meshgrid(hx[cc], hy[rr])
        signs = np.sign(values[np.ix_(rr, cc)]).ravel()
        moved, trained = moved_signs(self.problem, gx, gy, shift=SEARCH_SHIFT, store=self.store)
        self.pixels += gx.size if trained else 0
        return Candidate(px, py, self.depths[j], hit.score, hit.b, hit.m, float(np.mean(signs != moved)))

    # -- search
    def targets(self, want: int) -> list[Target]:
        """The first ``want`` targets (strict ones in search order, then relaxed ones)."""
        values, hx, hy = self.render(self.start, OPEN_PX)
        hits = pick(values, OPEN_SIZES, None, OPEN_SEP, OPEN_CHILDREN, None, self.allowed(self.start, OPEN_PX))
        if not hits:
            raise LocateError(0.0, "no converge/diverge boundary in the opening view")
        found: list[Target] = []
        partial: list[tuple[Candidate, ...]] = []
        for strict_from, accept, scan in TIERS:
            self.strict_from, self.accept, self.scan = strict_from, accept, scan
            self._budget = self.renders + self.budget_per_target * want
            self._raise_bar_total(self.budget_per_target * want)
            found = []
            if len(self.depths) > 2 and self.depths[1] < strict_from <= self.depths[2]:
                starts = sampled_starts(self, partial) if scan == "sampled" else every_window_starts(self, partial)
            else:
                starts = []
                for hit in hits:
                    c0 = self.candidate(0, self.start, values, hx, hy, hit)
                    if c0.flip > FLIP_MAX_SEARCH:
                        partial.append((c0,))
                    else:
                        starts.append((c0,))
            for path in starts:
                self._descend(path, len(path), want, found, partial)
                if len(found) >= want or self.renders >= self._budget:
                    break
            if found:
                break
        if len(found) < want:
            def rank(p):
                inner = [c.score for c in p[1:] if c.depth >= self.strict_from]
                return (-len(p), -min(inner, default=p[0].score))
            partial.sort(key=rank)
            used = {t.path[:2] for t in found}
            for p in partial:
                if len(found) >= want:
                    break
                if p[:2] in used:
                    continue
                used.add(p[:2])
                found.append(self._greedy(p))
        if not found:
            raise LocateError(0.0, "no target found")
        return [self.resolved(t) for t in found[:want]]

    def _raise_bar_total(self, more: int) -> None:
        """Let the progress bar's total (images, locate_images) cover ``more`` renders from here on."""
        bar = self.bar
        if bar is None or getattr(bar, "total", None) is None:
            return
        if bar.n + more > bar.total:
            bar.total = bar.n + more
            bar.refresh()

    def _children(self, path, j):
        parent = path[-1]
        win = self.window(j, parent.x, parent.y)
        values, hx, hy = self.render(win, LEVEL_PX)
        return win, values, hx, hy

    def _descend(self, path, j, want, found, partial) -> bool:
        """Extend ``path`` from level ``j``; True when a target was completed below a level > 1."""
        if self.renders >= self._budget:
            partial.append(path)
            return False
        win, values, hx, hy = self._children(path, j)
        inside = self.allowed(win, LEVEL_PX)
        if self.depths[j] < self.strict_from:
            hits = self._probe_ranked(j, win, pick(values, (CHECK, CHECK // 2), COARSE_REGION, COARSE_SEP,
                                                   COARSE_POOL, None, inside))
        else:
            sep, limit = (EVERY_SEP, EVERY_CHILDREN) if self.scan == "every" else (SEP, MAX_CHILDREN)
            hits = pick(values, (CHECK, CHECK // 2), PAD, sep, limit, self.accept, inside)
        progressed = False
        for hit in hits:
            cand = self.candidate(j, win, values, hx, hy, hit)
            if cand.flip > FLIP_MAX_SEARCH:
                continue
            if self.scan == "every" and not self.verify(cand.x, cand.y, self.depths[j]):
                continue  # a shallower window centred here is out of the band: nothing below can mend it
            progressed = True
            new = path + (cand,)
            if j == len(self.depths) - 1:
                if not self.verify(cand.x, cand.y):
                    partial.append(new)
                    continue
                found.append(Target(new, True, self.strict_from, self.accept, self.scan))
                return True
            done = self._descend(new, j + 1, want, found, partial)
            if len(found) >= want or self.renders >= self._budget:
                return done
            if done and j > 1:
                return True  # a target was found: resume at level 1 for a distinct one
        if not progressed:
            partial.append(path)
        return False

    def verify(self, x: float, y: float, below: float = math.inf) -> bool:
        """Whether the ``CHECK``-pixel windows centred on (x, y) lie in the band at every judged depth
        shallower than ``below`` (every judged depth by default).

        Why: each level scored the window centred on *its* point, and later
        levels move the point by up to a pixel of it; a boundary that is barely
        busier than a line can drop out of the band under that move.  These are
        exactly the windows a zoom centred on the target shows (and an
        acceptance check renders): the opening view's extent times
        ``10**-d``, ``CHECK`` pixels across, for every level ``d`` from
        ``strict_from`` on; each must have its blocks' sign-change share in
        ``[B_LO, B_HI]`` and its rarer phase at ``M_LO`` or more.

        With ``below``, the search checks a candidate of the level at depth
        ``below`` on the windows above it, which the levels still to come move
        by less than a tenth of a pixel.  The exhaustive scan's tier does
        (``scan == "every"``): its windows sit at the band's edge, where the
        pixel phase of the final point decides the count, and without the early
        check the depth-first search spends its budget on deep branches that
        the first judged window already rules out.
        """
        for d in self.depths[1:]:
            if d < self.strict_from or d >= below:
                continue
            v = self._centred_image(x, y, d, CHECK)
            b = float(boundary_mask(v).mean())
            m = float(min(np.mean(v < 0), np.mean(v > 0)))
            if not (B_LO <= b <= B_HI and m >= M_LO):
                return False
        return True

    def _probe(self, px: float, py: float, depth: float, m: int, sizes) -> float:
        """Score of the centre block of an m × m image of the window ``depth`` decades down, centred on (px, py)."""
        v = self._centred_image(px, py, depth, m)
        return float(score_blocks(v, np.array([m // 2 - 1]), np.array([m // 2 - 1]), sizes)[0][0])

    def _centred_image(self, px: float, py: float, depth: float, m: int) -> np.ndarray:
        """Values of an m × m image of the window ``depth`` decades down (the opening view's extent
        times ``10**-depth``), centred on (px, py): what a zoom centred there shows at that depth."""
        s = 10.0**depth
        win = Window.around(px, py, 0.5 * self.start.width / s, 0.5 * self.start.height / s)
        grid = make_grid(self.problem, win, m, m, m)
        self.pixels += fill_grids(self.problem, self.store, [grid]).pixels_computed
        return assemble(self.store, grid)[..., OUT_MEASURE]

    def _probe_ranked(self, j, win, hits):
        """The ``COARSE_CHILDREN`` hits whose look-ahead probes show the most structure (:meth:`_probe_scores`)."""
        if len(hits) <= 1:
            return hits
        return [h for _, _, h in self._probe_scores(j, win, hits)[:COARSE_CHILDREN]]

    def _probe_scores(self, j, win, hits):
        """(worst probe score, index, hit) of every hit, best first.

        At coarse levels the boundary is usually a smooth curve at the level's
        own resolution, and whatever structure it has lies below the pixel size.
        Two probes around each hit show where: the window of the first level that
        must pass (``strict_from``; ``CHECK`` pixels, scored exactly as that level
        will be, so a branch that would fail there is not chosen) and a small one
        ``PROBE_AHEAD`` decades deeper (where the structure keeps going).  A hit
        ranks by the worse of the two, and of its own score when this level is
        already one whose window is judged (``STRICT_FROM[0]`` and deeper: when
        the strict rule had to start later, the levels in between are still made
        as busy as they can be).
        """
        first = min((d for d in self.depths[j + 1:] if d >= self.strict_from), default=self.depths[-1])
        probes = [(first, CHECK, (CHECK, CHECK // 2))]
        ahead = min(self.depths[j] + PROBE_AHEAD, self.depths[-1])
        if ahead > first:
            probes.append((ahead, PROBE_PX, (PROBE_PX,)))
        ranked = []
        for k, hit in enumerate(hits):
            px, py = block_centre(win, LEVEL_PX, LEVEL_PX, hit.row, hit.col)
            worst = hit.score if self.depths[j] >= STRICT_FROM[0] else math.inf
            for d, m, sizes in probes:
                worst = min(worst, self._probe(px, py, d, m, sizes))
            ranked.append((-worst, k, hit))
        ranked.sort(key=lambda t: (t[0], t[1]))
        return [(-w, k, h) for w, k, h in ranked]

    def _greedy(self, path) -> Target:
        """Complete a partial path level by level with the best candidate (relaxed rule)."""
        j = len(path)
        while j < len(self.depths):
            win, values, hx, hy = self._children(path, j)
            hits = pick(values, (CHECK, CHECK // 2), PAD, SEP, MAX_CHILDREN, None, self.allowed(win, LEVEL_PX))
            if not hits:
                raise LocateError(self.depths[j - 1], f"no converge/diverge boundary left at "
                                      f"{self.depths[j]:.2f} decades (reached {self.depths[j - 1]:.2f})")
            cands = [self.candidate(j, win, values, hx, hy, h) for h in hits]
            clean = [c for c in cands if c.flip <= FLIP_MAX_SEARCH]
            path = path + ((clean or sorted(cands, key=lambda c: c.flip))[0],)
            j += 1
        return Target(path, False, self.strict_from, self.accept, self.scan)
