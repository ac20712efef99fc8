"""Every check window along the boundary at one depth: the target search's exhaustive scan.

Why.  Some landscapes are one smooth curve at the first judged depth almost
everywhere (dataset size 1: the published panel's streaks lie inside one phase
at two decades).  The few windows there that are busier than a bare line lie
where the curve folds or two branches run close, and only some window positions
catch the second branch: on tanh_dataset1 with the notebook's draws, 2 of about
7,000 window positions along the boundary inside the config's view.  The
sampled scan (:func:`fractaltrain.search.starts.sampled_starts`) probes boundary points about 25 window pixels
apart and cannot see them.

How.  The opening view is rendered at the pixel size of a ``check``-pixel window
``depth`` decades down (``check·10**depth`` pixels across), but only near its
boundary: a coarse image (``CELL`` fine pixels per coarse pixel) finds the
boundary, and the coarse cells within ``check/2`` fine pixels of it are rendered
at full resolution, in strips of one coarse row, through the tile store (so a
second run costs nothing).  Then the windows centred on every boundary block of
that band are scored exactly as the search's level images score them
(:func:`fractaltrain.search.score.score_blocks`), a slab of rows at a time so
memory stays at a few slabs of the image.  Structure finer than a coarse pixel
that touches no coarse sign change is not seen; the band's margin covers what
lies within half a window of it.

The scan is skipped (an empty list) when it would cost more than
``MAX_PIXELS`` fine pixels or the fine image would be wider than ``MAX_SIDE``:
a landscape with that much boundary two decades down is busy enough for the
sampled scan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fractaltrain.search.score import score_blocks
from fractaltrain.boundary import boundary_mask
from fractaltrain.columns import OUT_MEASURE
from fractaltrain.compute.landscape import assemble, fill_grids, make_grid, owned_pixels, progress_bar
from fractaltrain.problem import Problem
from fractaltrain.compute.store import TileStore
from fractaltrain.window import Window

CELL = 10  # fine pixels per coarse pixel
MAX_SIDE = 6000  # fine pixels across the opening view (4,800 for a 48-pixel window two decades down)
MAX_PIXELS = 2_000_000  # fine pixels in the band (tanh_dataset1: 459,800; relu: 577,800)
SLAB = 40  # coarse rows scored at a time
KEEP = 100_000  # best-scoring windows kept (the search uses a dozen)


class WindowHit(NamedTuple):
    """A window of the scanned level whose centre block scores ``score``; ``x``, ``y`` its centre."""

    score: float
    b: float
    m: float
    x: float
    y: float


@dataclass(frozen=True)
class ScanResult:
    """The scored windows (best first) and what the scan cost."""

    hits: list[WindowHit]
    pixels: int  # pixels trained (tiles found in the store not counted, as in the search's own count)
    skipped: str | None = None  # why the scan did not run


def _edges(n_fine: int, n_coarse: int) -> np.ndarray:
    """Fine-pixel index where each coarse pixel starts (and, last, the end)."""
    return (np.arange(n_coarse + 1) * n_fine) // n_coarse


def _band(coarse: np.ndarray, margin: int) -> np.ndarray:
    """Coarse cells within ``margin`` cells of a coarse 2×2 sign change."""
    blocks = np.pad(boundary_mask(coarse), margin + 1)  # block (r, c) touches cells r..r+1, c..c+1
    return sliding_window_view(blocks, (2 * margin + 2, 2 * margin + 2)).any(axis=(2, 3))


def scan_windows(problem: Problem, store: TileStore, start: Window, depth: float, check: int, sizes,
                 threshold: float, bounds: Window | None = None, quiet: bool = True) -> ScanResult:
    """Score the ``check``-pixel window ``depth`` decades below ``start`` centred on every boundary block.

    Parameters
    ----------
    problem, store : the problem and the tile store that caches every render.
    start : the opening view; windows are its extent times ``10**-depth``.
    depth : decades below ``start`` of the windows scored.
    check : pixels across a window; ``sizes`` the nested window sizes scored
        (the search's level sizes, so a hit scores here as its level will).
    threshold : smallest score kept.
    bounds : where a window's centre may lie (the config's own view), or None.
    quiet : no progress bar over the band's pixels (it can take minutes).

    Returns
    -------
    ScanResult
        ``hits`` best first (score, then distance to the view's centre, then
        row-major order: deterministic), at most ``KEEP``.
    """
    n = int(round(check * 10.0**depth))
    n_c = int(math.ceil(n / CELL))
    if n > MAX_SIDE:
        return ScanResult([], 0, f"{n} pixels across (the most is {MAX_SIDE})")
    tile = problem.config.tile
    coarse_grid = make_grid(problem, start, n_c, n_c, tile)
    computed = fill_grids(problem, store, [coarse_grid]).pixels_computed
    coarse = assemble(store, coarse_grid)[..., OUT_MEASURE]
    band = _band(coarse, int(math.ceil((check // 2 + 1) / (n / n_c))))
    edges = _edges(n, n_c)
    sx, sy = start.width / n, start.height / n
    strips = []  # (fine row0, fine row1, fine col0, grid)
    for rc in range(n_c):
        cols = np.nonzero(band[rc])[0]
        if cols.size == 0:
            continue
        runs = np.split(cols, np.nonzero(np.diff(cols) > 1)[0] + 1)
        r0, r1 = int(edges[rc]), int(edges[rc + 1])
        for run in runs:
            c0, c1 = int(edges[run[0]]), int(edges[run[-1] + 1])
            win = Window(start.x0 + c0 * sx, start.x0 + c1 * sx, start.y0 + r0 * sy, start.y0 + r1 * sy)
            strips.append((r0, r1, c0, make_grid(problem, win, c1 - c0, r1 - r0, tile)))
    fine_pixels = sum((s[1] - s[0]) * s[3].width for s in strips)
    if fine_pixels > MAX_PIXELS:
        return ScanResult([], computed, f"{fine_pixels:,} pixels near the boundary (the most is {MAX_PIXELS:,})")
    grids = [s[3] for s in strips]
    total, done = owned_pixels(store, grids)
    with progress_bar(total, done, quiet, "scan") as bar:
        computed += fill_grids(problem, store, grids, bar=bar).pixels_computed

    half = check // 2
    found = []
    for a in range(0, n_c, SLAB):
        core0, core1 = int(edges[a]), int(edges[min(a + SLAB, n_c)])
        lo, hi = max(0, core0 - half - 1), min(n, core1 + half + 1)
        values = np.full((hi - lo, n), np.nan)
        for r0, r1, c0, grid in strips:
            if r1 <= lo or r0 >= hi:
                continue
            part = assemble(store, grid)[..., OUT_MEASURE]
            values[max(r0, lo) - lo: min(r1, hi) - lo, c0: c0 + grid.width] = part[max(r0, lo) - r0: min(r1, hi) - r0]
        rows, cols = np.nonzero(boundary_mask(values))
        g = rows + lo  # the block's top pixel row in the full image
        keep = (g >= core0) & (g < core1) & (g + 1 >= half) & (g + 1 + half <= n) & (cols + 1 >= half) & (cols + 1 + half <= n)
        rows, cols = rows[keep], cols[keep]
        if rows.size == 0:
            continue
        xs = start.x0 + (cols + 1) * sx
        ys = start.y0 + (rows + lo + 1) * sy
        if bounds is not None:
            inside = (xs >= bounds.x0) & (xs <= bounds.x1) & (ys >= bounds.y0) & (ys <= bounds.y1)
            rows, cols, xs, ys = rows[inside], cols[inside], xs[inside], ys[inside]
        score, b, m = score_blocks(values, rows, cols, sizes)
        good = score >= threshold
        for s, bb, mm, x, y, r, c in zip(score[good], b[good], m[good], xs[good], ys[good], rows[good] + lo, cols[good]):
            found.append((float(s), float(bb), float(mm), float(x), float(y), int(r), int(c)))
    cr, cc = (n - 1) / 2.0, (n - 1) / 2.0
    found.sort(key=lambda t: (-t[0], (t[5] + 0.5 - cr) ** 2 + (t[6] + 0.5 - cc) ** 2, t[5], t[6]))
    hits = [WindowHit(*t[:5]) for t in found[:KEEP]]
    return ScanResult(hits, computed)
