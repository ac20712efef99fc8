"""Where the depth-first target search starts when its first judged level is level 2.

Following the best few opening candidates one branch at a time can miss the
only places where the boundary is already busy two decades down.  So the
search (:class:`fractaltrain.search.targets.Search`) starts from a scan of the whole
opening view instead: :func:`sampled_starts` probes its boundary points, and
:func:`every_window_starts` scores every window of the first judged level
(:mod:`fractaltrain.search.scan`) when the sampled scan finds nothing.  Each
returns start paths (opening point, level-1 point) for the search to descend.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from fractaltrain.compute.landscape import progress_bar
from fractaltrain.search import scan as window_scan
from fractaltrain.search.score import Hit, pick, score_blocks
from fractaltrain.search.noise import FLIP_MAX_SEARCH
from fractaltrain.search.path import Candidate, Deferred
from fractaltrain.search.settings import (CHECK, EVERY_SEP, LEVEL_PX, PROBE_PX, SCAN_CONFIRM, SCAN_KEEP,
                                          SCAN_POINTS, SCAN_PX, SCAN_SEP)
from fractaltrain.window import block_centre

if TYPE_CHECKING:
    from fractaltrain.search.targets import Search


def sampled_starts(search: Search, partial: list) -> list[tuple[Candidate, Candidate]]:
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
    level-2 image the search then renders.  The level-1 point's record
    (its 64×64 image and rounding test) is deferred (:class:`Deferred`): the
    search needs only its coordinates, and most starts are never descended
    from, or end in no returned target.  Bounded: about
    ``SCAN_POINTS·PROBE_PX² + SCAN_CONFIRM·CHECK²`` pixels, most of a search's
    (minutes at 500 steps), so the probes have a bar of their own ("scan")
    when the search has one.
    """
    n_x = SCAN_PX
    n_y = max(8, int(round(SCAN_PX * search.start.height / search.start.width)))
    values, hx0, hy0 = search.render(search.start, n_x, n_y)
    hits = pick(values, (8,), None, SCAN_SEP, SCAN_POINTS, None, search.allowed(search.start, n_x, n_y))
    d = search.depths[2]
    points, confirmed = [], []
    shown = search.bar is not None and not getattr(search.bar, "disable", True)
    total = len(hits) * PROBE_PX**2 + min(SCAN_CONFIRM, len(hits)) * CHECK**2
    with progress_bar(total, 0, not shown, "scan") as bar:  # the probes are most of a search's pixels
        for k, hit in enumerate(hits):
            px, py = block_centre(search.start, n_x, n_y, hit.row, hit.col)
            points.append((search._probe(px, py, d, PROBE_PX, (PROBE_PX,)), k, px, py))
            bar.update(PROBE_PX**2)
        points.sort(key=lambda t: (-t[0], t[1]))
        for _, k, px, py in points[:SCAN_CONFIRM]:
            confirmed.append((search._probe(px, py, d, CHECK, (CHECK, CHECK // 2)), k, px, py))
            bar.update(CHECK**2)
    confirmed.sort(key=lambda t: (-t[0], t[1]))
    starts = []
    for _, k, px, py in confirmed[:SCAN_KEEP]:
        c0 = search.candidate(0, search.start, values, hx0, hy0, hits[k])
        if c0.flip > FLIP_MAX_SEARCH:
            partial.append((c0,))
            continue
        starts.append((c0, Deferred(px, py, search.depths[1])))
    # Each start's level-1 image is charged to the budget now, as when they were all rendered here, so the
    # search takes the same branches; it is rendered only if a returned target holds it (Search.resolved).
    search.charge(len(starts))
    return starts


def level_one(search: Search, px: float, py: float, charged: bool = False) -> Candidate:
    """Level 1 as the zoom will show it, centred on a scanned point: its statistics for the record.

    ``charged``: its image was already counted against the budget (:meth:`Search.charge`).
    """
    win1 = search.window(1, px, py)
    v1, hx1, hy1 = search.render(win1, LEVEL_PX, counted=not charged)
    mid = LEVEL_PX // 2 - 1
    sc1, b1, m1 = score_blocks(v1, np.array([mid]), np.array([mid]), (CHECK, CHECK // 2))
    c1 = search.candidate(1, win1, v1, hx1, hy1, Hit(mid, mid, float(sc1[0]), float(b1[0]), float(m1[0])))
    return dataclasses.replace(c1, x=px, y=py)

def every_window_starts(search: Search, partial: list) -> list[tuple[Candidate, Candidate]]:
    """Start paths from every window of the first judged level that scores ``accept`` or more.

    Why: where the boundary is one curve at that depth almost everywhere, the
    windows in the band are a few pixels wide, and the sampled scan
    (:func:`sampled_starts`) steps over them; :func:`fractaltrain.search.scan.scan_windows`
    scores them all.  The ``SCAN_KEEP`` best of them at least ``EVERY_SEP``
    of their pixels apart (less any whose level-1 window is rounding-
    decided) start the search: (opening point, level-1 point) both at the
    window's centre, a block centre of the level-2 grid, so level 2 sees the
    window the scan scored.  The opening point's record is the scan's score
    of that window (no opening image holds it).
    """
    shown = search.bar is not None and not getattr(search.bar, "disable", True)  # a bar for the scan when the search has one
    res = window_scan.scan_windows(search.problem, search.store, search.start, search.depths[2], CHECK,
                                   (CHECK, CHECK // 2), search.accept, search.bounds, quiet=not shown)
    search.pixels += res.pixels
    s = 10.0 ** search.depths[2] * CHECK
    sx, sy = search.start.width / s, search.start.height / s
    starts, kept = [], []
    for hit in res.hits:
        px, py = hit.x, hit.y
        if any(abs(px - qx) < EVERY_SEP * sx and abs(py - qy) < EVERY_SEP * sy for qx, qy in kept):
            continue
        kept.append((px, py))
        c0 = Candidate(px, py, search.depths[0], hit.score, hit.b, hit.m)
        c1 = level_one(search, px, py)
        if c1.flip > FLIP_MAX_SEARCH:
            partial.append((c0,))
        else:
            starts.append((c0, c1))
        if len(kept) >= SCAN_KEEP:
            break
    return starts
