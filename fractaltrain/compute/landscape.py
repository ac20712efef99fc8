"""Compute landscapes: fill a grid's tiles with kernel results, then assemble them.

This is the only place that calls the kernel on behalf of the CLI, so resuming,
sharding and progress reporting work the same for ``render``, ``zoom`` and
``locate``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from fractaltrain.config import Config
from fractaltrain.columns import N_OUT, OUT_STEPS
from fractaltrain.compute.jobs import IncompleteError, MissingTile
from fractaltrain.compute import device, reuse
from fractaltrain.precision import DOUBLE_DOUBLE, axis_values_dd
from fractaltrain.precision import resolve as resolve_precision
from fractaltrain.problem import Problem, pixel_hyperparams, pixel_hyperparams_dd
from fractaltrain.compute.store import Grid, TileSpec, TileStore, dd_revision
from fractaltrain.window import Window, axis_values, centred_throughout


@dataclass(frozen=True)
class Shard:
    """Task ``index`` of ``count`` (0-based) owns every ``count``-th tile of the global list."""

    index: int = 0
    count: int = 1

    def owns(self, position: int) -> bool:
        return position % self.count == self.index


def make_grid(problem: Problem, window: Window, width: int, height: int, tile: int,
              precision: str | None = None) -> Grid:
    """The grid of ``window`` at ``width × height``, training at ``precision`` (default: the config's).

    ``auto`` resolves here, per grid (:func:`fractaltrain.precision.resolve`), so
    a zoom's keyframes switch to double-double where float64 runs out; a
    precision that cannot tell this grid's pixels apart raises PrecisionError.
    """
    cfg = problem.config
    chosen = resolve_precision(precision or cfg.precision, window, width, height, (cfg.x.scale, cfg.y.scale))
    if chosen == DOUBLE_DOUBLE:
        rev = dd_revision(problem.gradient_count)
        return Grid(problem.key(), window, width, height, tile, precision=chosen, dd_revision=rev)
    window = Window(*window.as_list())  # float64 grids train at, and are keyed by, the float edges
    exact = not (centred_throughout(window.x0, window.x1, width, cfg.x.scale)
                 and centred_throughout(window.y0, window.y1, height, cfg.y.scale))
    return Grid(problem.key(), window, width, height, tile, exact_values=exact)


def grid_axes(cfg: Config, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Hyperparameter value of every column (x) and row (y) of the grid.

    float64 grids give 1-D arrays; double-double grids (2, n) arrays, the high
    parts then the low parts of the exact values.
    """
    w = grid.window
    if grid.double_double:
        return axis_values_dd(w, grid.width, cfg.x.scale, 0), axis_values_dd(w, grid.height, cfg.y.scale, 1)
    if grid.lattice is not None:
        from fractaltrain.lattice import lattice_fractions, lattice_values

        cx, hx, cy, hy = lattice_fractions(grid.lattice)
        return lattice_values(cx, hx, grid.width, cfg.x.scale), lattice_values(cy, hy, grid.height, cfg.y.scale)
    return (
        axis_values(w.x0, w.x1, grid.width, cfg.x.scale),
        axis_values(w.y0, w.y1, grid.height, cfg.y.scale),
    )


def tile_hyperparams(cfg: Config, xv: np.ndarray, yv: np.ndarray, spec: TileSpec):
    """The hyperparameter table of one tile's pixels: ``hp``, or ``(hp_hi, hp_lo)`` for double-double axes."""
    xs = xv[..., spec.c0 : spec.c1]
    ys = yv[..., spec.r0 : spec.r1]
    if xv.ndim == 1:
        XX, YY = np.meshgrid(xs, ys)
        return pixel_hyperparams(cfg, XX.ravel(), YY.ravel())
    XH, YH = np.meshgrid(xs[0], ys[0])
    XL, YL = np.meshgrid(xs[1], ys[1])
    return pixel_hyperparams_dd(cfg, (XH.ravel(), XL.ravel()), (YH.ravel(), YL.ravel()))


def compute_tile(problem: Problem, xv: np.ndarray, yv: np.ndarray, spec: TileSpec) -> np.ndarray:
    """Kernel results of one tile, shape (rows, cols, N_OUT); (2, n) axes train in double-double."""
    hp = tile_hyperparams(problem.config, xv, yv, spec)
    shape = (spec.r1 - spec.r0, spec.c1 - spec.c0, N_OUT)
    if isinstance(hp, tuple):
        return device.run_pixels(problem, hp[0], hp[1]).reshape(shape)
    return device.run_pixels(problem, hp).reshape(shape)


@dataclass
class Progress:
    """What a fill did: tiles and pixels computed or found, wall time."""

    tiles_computed: int = 0
    tiles_reused: int = 0
    pixels_computed: int = 0
    seconds: float = 0.0
    pixels_copied: int = 0  # of pixels_computed, taken from the previous keyframe (compute/reuse.py)
    steps_copied: float = 0.0  # the trained steps of those: the pixel-steps the copy saved
    steps_trained: float = 0.0  # pixel-steps trained (early-stopped pixels count the steps they ran)

    def saved_fraction(self) -> float:
        """The share of this fill's pixel-steps that copying saved."""
        total = self.steps_copied + self.steps_trained
        return self.steps_copied / total if total else 0.0


def fill_grids(
    problem: Problem | list[Problem],
    store: TileStore,
    grids: list[Grid],
    shard: Shard = Shard(),
    bar=None,
) -> Progress:
    """Compute every missing tile of ``grids`` that ``shard`` owns, writing each as it finishes.

    Tiles are numbered across all grids in order, and shard ``k`` of ``n`` takes
    positions ``k, k+n, …``, which balances work without coordination.  ``bar``
    is an optional tqdm-like object with ``update(n)``; its total should be the
    owned pixels and its start the pixels already stored (:func:`owned_pixels`),
    so it is advanced by the tiles computed here only.  ``problem``
    is one problem for every grid, or a list with one per grid (the members of
    a seed ensemble), so shards split the tiles of all of them alike.
    """
    problems = list(problem) if isinstance(problem, (list, tuple)) else [problem] * len(grids)
    prog = Progress()
    t0 = time.perf_counter()
    pos = 0
    for grid, problem, parent in zip(grids, problems, reuse.parents(grids), strict=True):
        store.register(grid)
        xv, yv = grid_axes(problem.config, grid)
        for spec in grid.tiles():
            mine = shard.owns(pos)
            pos += 1
            if not mine:
                continue
            if store.load(grid, spec) is not None:
                prog.tiles_reused += 1
            else:
                if parent is None:
                    data, copied, saved = compute_tile(problem, xv, yv, spec), 0, 0.0
                else:  # an aligned keyframe: the previous keyframe's pixels are copied, not trained again
                    hp = tile_hyperparams(problem.config, xv, yv, spec)
                    data, copied, saved = reuse.fill_tile(problem, store, parent, hp, spec)
                store.save(grid, spec, data)
                prog.tiles_computed += 1
                prog.pixels_computed += spec.n_pixels
                prog.pixels_copied += copied
                prog.steps_copied += saved
                prog.steps_trained += float(data[..., OUT_STEPS].sum()) - saved
                if bar is not None:
                    bar.update(spec.n_pixels)
    prog.seconds = time.perf_counter() - t0
    return prog


def owned_pixels(store: TileStore, grids: list[Grid], shard: Shard = Shard()) -> tuple[int, int]:
    """(pixels owned by ``shard``, of which already stored) across ``grids``.

    A tile counts as stored only when the store's verified read accepts it, as
    the fill will: a damaged or foreign file is work still to do.
    """
    total = done = 0
    pos = 0
    for grid in grids:
        for spec in grid.tiles():
            if shard.owns(pos):
                total += spec.n_pixels
                if store.load(grid, spec) is not None:
                    done += spec.n_pixels
            pos += 1
    return total, done


def assemble(store: TileStore, grid: Grid) -> np.ndarray:
    """The grid's full (height, width, N_OUT) result from its tiles; raises IncompleteError."""
    out = np.empty((grid.height, grid.width, N_OUT), dtype=np.float64)
    missing = []
    for spec in grid.tiles():
        data = store.load(grid, spec)
        if data is None:
            missing.append(MissingTile(0, spec.name, 0))
            continue
        out[spec.r0 : spec.r1, spec.c0 : spec.c1] = data
    if missing:
        raise IncompleteError(missing, shards=1)
    return out


def progress_bar(total: int, initial: int, quiet: bool, desc: str, unit: str = "px"):
    """A tqdm bar over pixels (or other ``unit``s, counted as they are) with ETA, or a silent stand-in; shared
    by every command that fills tiles."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit=unit, unit_scale=unit == "px", desc=desc, disable=quiet,
                smoothing=0.05)


def close_at_count(bar) -> None:
    """End a bar whose total was an upper bound (a search that stopped short of its budget) at 100%."""
    if getattr(bar, "total", None) is not None and bar.n < bar.total:
        bar.total = bar.n
        bar.refresh()
