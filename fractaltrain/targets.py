"""Target search: boundary points with resolved structure at every scale, never rounding noise.

Why.  Following the sign change nearest the centre (the old ``locate`` rule,
:func:`fractaltrain.locate.locate_nearest`) often walks onto a single smooth
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
(:mod:`fractaltrain.noise`): on a subsample of its window, at most ``FLIP_MAX``
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
scored (:mod:`fractaltrain.window_scan`: the opening view rendered at that
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

from fractaltrain import window_scan
from fractaltrain.boundary_score import ACCEPT, B_HI, B_LO, M_LO, Hit, pick, score_blocks
from fractaltrain.boundary import boundary_mask
from fractaltrain.kernel import OUT_MEASURE
from fractaltrain.landscape import assemble, fill_grids, grid_axes, make_grid
from fractaltrain.noise import FLIP_MAX_SEARCH, SEARCH_SHIFT, moved_signs
from fractaltrain.problem import Problem
from fractaltrain.store import TileStore
from fractaltrain.target_path import Candidate, Target
from fractaltrain.window import Window, axis_coords, block_centre

CHECK = 48  # pixels across the scored window
PAD = 8  # how far (pixels) one level may move the point
LEVEL_PX = CHECK + 2 * PAD
OPEN_PX = 64  # the opening view's image
OPEN_SIZES = (16, 8)  # neighbourhoods scored in the opening image (its structure is coarse)
OPEN_CHILDREN = 8
OPEN_SEP = 6
MAX_CHILDREN = 3
SEP = 4
COARSE_CHILDREN = 4  # branches kept at a coarse level ...
COARSE_POOL = 12  # ... out of this many candidates, ranked by a look-ahead probe
COARSE_SEP = 4
COARSE_REGION = 20  # coarse candidates lie within this many pixels of the image centre
SCAN_PX = 192  # the scan's opening image, pixels across (a pixel: about half the level-2 window)
SCAN_SEP = 2  # its boundary points at least this many pixels apart ...
SCAN_POINTS = 256  # ... and at most this many, busiest first
SCAN_CONFIRM = 24  # best probes rendered again at CHECK pixels
SCAN_KEEP = 12  # branches the scan hands to the depth-first search
PROBE_PX = 24  # look-ahead probe: this many pixels across ...
PROBE_AHEAD = 2.0  # ... a window this many decades deeper than the level
# (strict_from, accept, scan) tried in turn until one yields a target within the budget: every level
# from strict_from decades below the opening view on must score >= accept.  First with the margin, then
# without it (b in [5%, 35%]: some landscapes, ReLU's, are barely busier than a line there), then from
# an exhaustive scan of every window along the boundary (some are one smooth curve for 2 decades almost
# everywhere: dataset size 1; see fractaltrain.window_scan), then judged from 3 decades.  ``scan`` says
# how the first judged level's starting points are found when the search begins with a scan:
# "sampled" (Search._scan) or "every" (Search._scan_every).
TIERS = ((2.0, ACCEPT, "sampled"), (2.0, 0.0, "sampled"), (2.0, 0.0, "every"), (3.0, ACCEPT, "sampled"),
         (3.0, 0.0, "sampled"))
STRICT_FROM = tuple(sorted({t[0] for t in TIERS}))
# The exhaustive scan's tier: its starting points, and each judged level's candidates, at least EVERY_SEP
# pixels apart and at most EVERY_CHILDREN per level.  Its windows sit at the band's edge, where a
# fraction of a pixel decides whether a window is in (Search.verify), so it tries more, closer candidates.
EVERY_SEP = 2
EVERY_CHILDREN = 8
FLIP_STRIDE = 2
BUDGET = 30  # level images per target (plus two per level), far below 5% of any zoom's keyframe pixels


def search_params() -> dict:
    """The settings the search ran with, recorded beside every target.

    Why: a target is a pure function of (config, view, depth, seed) *and these*;
    two runs that disagree with the same arguments ran different settings (in
    the Slurm self-test, the code was edited between the reference zoom and the
    locate job), and the record makes that visible at once.
    """
    from fractaltrain.noise import SEARCH_SHIFT, ULPS

    return {"check_px": CHECK, "level_px": LEVEL_PX, "pad": PAD, "band": [B_LO, B_HI, M_LO],
            "tiers": [[f, round(a, 6), scan] for f, a, scan in TIERS], "flip_max": FLIP_MAX_SEARCH,
            "flip_stride": FLIP_STRIDE, "ulps": ULPS, "shift": SEARCH_SHIFT, "budget": BUDGET, "verify": True,
            "coarse": [COARSE_POOL, COARSE_CHILDREN], "probe": [PROBE_PX, PROBE_AHEAD], "scan": [SCAN_PX, SCAN_SEP, SCAN_POINTS, SCAN_CONFIRM, SCAN_KEEP],
            "scan_every": [window_scan.CELL, window_scan.MAX_SIDE, window_scan.MAX_PIXELS, EVERY_SEP,
                           EVERY_CHILDREN]}


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

    def render(self, win: Window, n: int, n_y: int | None = None):
        """Values (rows = y ascending) and pixel axes of an n × n image of ``win`` (n × n_y if given)."""
        n_y = n if n_y is None else n_y
        grid = make_grid(self.problem, win, n, n_y, n if n_y == n else self.problem.config.tile)
        prog = fill_grids(self.problem, self.store, [grid])
        self.renders += 1
        self.pixels += prog.pixels_computed
        if self.bar is not None:
            self.bar.update(1)
        values = assemble(self.store, grid)[..., OUT_MEASURE]
        hx, hy = grid_axes(self.problem.config, grid)
        return values, hx, hy

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
            found = []
            if len(self.depths) > 2 and self.depths[1] < strict_from <= self.depths[2]:
                starts = self._scan(partial) if scan == "sampled" else self._scan_every(partial)
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
        return found[:want]

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

    def _scan(self, partial) -> list[tuple[Candidate, Candidate]]:
        """Start paths for the depth-first search from a scan of the whole boundary at the first judged level.

        Why: following the best few opening candidates one branch at a time can
        miss the only places where the boundary is already busy two decades down
        (a landscape that is smooth curves for two decades almost everywhere, as
        the dataset-size-1 and ReLU panels are).  So the opening view is rendered
        at ``SCAN_PX`` pixels across (a pixel about half the level-2 window), up
        to ``SCAN_POINTS`` well-separated boundary blocks of it (busiest first)
        are each probed with a ``PROBE_PX`` image of the level-2 window centred
        there, the ``SCAN_CONFIRM`` best are rendered at ``CHECK`` pixels and
        scored exactly as level 2 will be, and the ``SCAN_KEEP`` best start the
        search: (opening point, level-1 point) both at the scanned point, whose
        level-2 image the search then renders.  Bounded: about
        ``SCAN_POINTS·PROBE_PX² + SCAN_CONFIRM·CHECK²`` pixels.
        """
        n_x = SCAN_PX
        n_y = max(8, int(round(SCAN_PX * self.start.height / self.start.width)))
        values, hx0, hy0 = self.render(self.start, n_x, n_y)
        hits = pick(values, (8,), None, SCAN_SEP, SCAN_POINTS, None, self.allowed(self.start, n_x, n_y))
        d = self.depths[2]
        points = []
        for k, hit in enumerate(hits):
            px, py = block_centre(self.start, n_x, n_y, hit.row, hit.col)
            points.append((self._probe(px, py, d, PROBE_PX, (PROBE_PX,)), k, px, py))
        points.sort(key=lambda t: (-t[0], t[1]))
        confirmed = [(self._probe(px, py, d, CHECK, (CHECK, CHECK // 2)), k, px, py)
                     for _, k, px, py in points[:SCAN_CONFIRM]]
        confirmed.sort(key=lambda t: (-t[0], t[1]))
        starts = []
        for _, k, px, py in confirmed[:SCAN_KEEP]:
            c0 = self.candidate(0, self.start, values, hx0, hy0, hits[k])
            if c0.flip > FLIP_MAX_SEARCH:
                partial.append((c0,))
                continue
            starts.append((c0, self._level_one(px, py)))
        return starts

    def _level_one(self, px: float, py: float) -> Candidate:
        """Level 1 as the zoom will show it, centred on a scanned point: its statistics for the record."""
        win1 = self.window(1, px, py)
        v1, hx1, hy1 = self.render(win1, LEVEL_PX)
        mid = LEVEL_PX // 2 - 1
        sc1, b1, m1 = score_blocks(v1, np.array([mid]), np.array([mid]), (CHECK, CHECK // 2))
        c1 = self.candidate(1, win1, v1, hx1, hy1, Hit(mid, mid, float(sc1[0]), float(b1[0]), float(m1[0])))
        return dataclasses.replace(c1, x=px, y=py)

    def _scan_every(self, partial) -> list[tuple[Candidate, Candidate]]:
        """Start paths from every window of the first judged level that scores ``accept`` or more.

        Why: where the boundary is one curve at that depth almost everywhere, the
        windows in the band are a few pixels wide, and the sampled scan
        (:meth:`_scan`) steps over them; :func:`fractaltrain.window_scan.scan_windows`
        scores them all.  The ``SCAN_KEEP`` best of them at least ``EVERY_SEP``
        of their pixels apart (less any whose level-1 window is rounding-
        decided) start the search: (opening point, level-1 point) both at the
        window's centre, a block centre of the level-2 grid, so level 2 sees the
        window the scan scored.  The opening point's record is the scan's score
        of that window (no opening image holds it).
        """
        res = window_scan.scan_windows(self.problem, self.store, self.start, self.depths[2], CHECK,
                                       (CHECK, CHECK // 2), self.accept, self.bounds)
        self.pixels += res.pixels
        s = 10.0 ** self.depths[2] * CHECK
        sx, sy = self.start.width / s, self.start.height / s
        starts, kept = [], []
        for hit in res.hits:
            px, py = hit.x, hit.y
            if any(abs(px - qx) < EVERY_SEP * sx and abs(py - qy) < EVERY_SEP * sy for qx, qy in kept):
                continue
            kept.append((px, py))
            c0 = Candidate(px, py, self.depths[0], hit.score, hit.b, hit.m)
            c1 = self._level_one(px, py)
            if c1.flip > FLIP_MAX_SEARCH:
                partial.append((c0,))
            else:
                starts.append((c0, c1))
            if len(kept) >= SCAN_KEEP:
                break
        return starts

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
