"""Pixels a keyframe shares with the one before it: read from that keyframe's tiles instead of trained again.

Why.  On aligned keyframes (:mod:`fractaltrain.lattice`) with a factor of 2, a
quarter of each keyframe's pixels are the previous keyframe's pixels: the same
hyperparameters to the last bit, so training them again gives the very raw
values already stored.  :func:`fill_tile` copies those from the parent's tiles
and trains only the rest.  Training is per pixel and does not depend on which
other pixels share a call (the kernel's promise, tested over thread counts and
tile sizes), so a tile filled this way is bit for bit the tile trained whole;
``tests/test_reuse.py`` checks that.  A parent tile that is not stored (another
shard owns it and has not written it yet) is simply not used: its pixels are
trained, with the same result.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from fractaltrain.columns import N_OUT, OUT_STEPS
from fractaltrain.compute import device
from fractaltrain.compute.store import Grid, TileSpec, TileStore
from fractaltrain.lattice import parent_offsets

PARENT_TILES_KEPT = 16  # parent tiles held while filling one child keyframe (a row of tiles maps to about two rows)


@dataclass
class Parent:
    """A child grid's parent keyframe and how the child's pixels sit on it (:func:`parent_offsets`)."""

    grid: Grid
    ratio: int
    x_shift: int
    y_shift: int
    tiles: OrderedDict = field(default_factory=OrderedDict)  # parent tiles read so far, least recent first
    specs: list = field(default_factory=list)  # the parent's tiles, row-major


def parents(grids: list[Grid]) -> list[Parent | None]:
    """For each grid, the nearest earlier grid in the list it shares pixels with (or None)."""
    out: list[Parent | None] = []
    for i, g in enumerate(grids):
        found = None
        for j in range(i - 1, -1, -1):
            offs = parent_offsets(g, grids[j])
            if offs is not None:
                found = Parent(grids[j], *offs, specs=grids[j].tiles())
                break
        out.append(found)
    return out


def _axis_hits(n: int, shift: int, ratio: int, parent_n: int) -> np.ndarray:
    """Which of a child axis's ``n`` pixels are a parent pixel (and the parent pixel's index)."""
    i = np.arange(n)
    hit = (i - shift) % ratio == 0
    p = (i - shift) // ratio
    return hit & (p >= 0) & (p < parent_n)


def shared_pixels(child: Grid, parent: Parent) -> int:
    """How many of ``child``'s pixels are ``parent``'s (copied when the parent's tiles are stored)."""
    return int(_axis_hits(child.height, parent.y_shift, parent.ratio, parent.grid.height).sum()
               * _axis_hits(child.width, parent.x_shift, parent.ratio, parent.grid.width).sum())


def inherited(store: TileStore, parent: Parent, spec: TileSpec) -> tuple[np.ndarray, np.ndarray]:
    """(mask, values) of the tile's pixels found in the parent's stored tiles; mask is (rows, cols) bool.

    The tile's parent pixels form a sub-grid (every ``ratio``-th row and column);
    it is copied one parent tile at a time, as whole blocks.
    """
    rows = np.arange(spec.r0, spec.r1)
    cols = np.arange(spec.c0, spec.c1)
    mask = np.zeros((rows.size, cols.size), dtype=bool)
    values = np.empty((rows.size, cols.size, N_OUT), dtype=np.float64)
    a = np.flatnonzero(_axis_hits(spec.r1, parent.y_shift, parent.ratio, parent.grid.height)[spec.r0:])
    b = np.flatnonzero(_axis_hits(spec.c1, parent.x_shift, parent.ratio, parent.grid.width)[spec.c0:])
    if a.size == 0 or b.size == 0:
        return mask, values
    pr = (rows[a] - parent.y_shift) // parent.ratio  # parent rows and columns of the hits
    pc = (cols[b] - parent.x_shift) // parent.ratio
    t = parent.grid.tile
    ntc = -(-parent.grid.width // t)
    for tr in np.unique(pr // t):
        ia = a[pr // t == tr]
        for tc in np.unique(pc // t):
            tile = _parent_tile(store, parent, int(tr) * ntc + int(tc))
            if tile is None:
                continue
            ib = b[pc // t == tc]
            spec_p, data = tile
            sel = np.ix_((rows[ia] - parent.y_shift) // parent.ratio - spec_p.r0,
                         (cols[ib] - parent.x_shift) // parent.ratio - spec_p.c0)
            values[np.ix_(ia, ib)] = data[sel]
            mask[np.ix_(ia, ib)] = True
    return mask, values


def _parent_tile(store: TileStore, parent: Parent, index: int):
    """(spec, data) of the parent's tile ``index`` (row-major), or None if it is not stored; kept a while."""
    if index in parent.tiles:
        parent.tiles.move_to_end(index)
        return parent.tiles[index]
    spec = parent.specs[index]
    data = store.load(parent.grid, spec)
    entry = None if data is None else (spec, data)
    parent.tiles[index] = entry
    if len(parent.tiles) > PARENT_TILES_KEPT:
        parent.tiles.popitem(last=False)
    return entry


def fill_tile(problem, store: TileStore, parent: Parent, hp, spec: TileSpec) -> tuple[np.ndarray, int, float]:
    """One tile of a child keyframe: parent pixels copied, the rest trained.

    ``hp`` is the tile's float64 hyperparameter table (row-major over the tile).
    Returns (the tile's (rows, cols, N_OUT) results, pixels copied, their
    trained steps): the steps the copy saved.
    """
    mask, values = inherited(store, parent, spec)
    flat = mask.ravel()
    out = values.reshape(-1, N_OUT)
    todo = np.flatnonzero(~flat)
    if todo.size:
        out[todo] = device.run_pixels(problem, np.ascontiguousarray(hp[todo]))
    copied = int(flat.sum())
    return out.reshape(values.shape), copied, float(out[flat, OUT_STEPS].sum())
