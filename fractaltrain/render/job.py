"""What every still render does before its outputs: claim the name, record the job, fill the tiles.

A plain render and a seed ensemble differ only in how many grids they fill
and what they write at the end (:mod:`fractaltrain.render.still`,
:mod:`fractaltrain.render.ensemble`); the steps before that are one function,
so a change to resuming, sharding or the job manifest is made once.
"""

from __future__ import annotations

import time
from pathlib import Path

from fractaltrain.compute.jobs import Manifest, check_grids, require_complete, write_manifest
from fractaltrain.compute.landscape import Progress, Shard, fill_grids, owned_pixels, progress_bar
from fractaltrain.compute.store import Grid, TileStore
from fractaltrain.config import Config
from fractaltrain.errors import output_file
from fractaltrain.problem import Problem
from fractaltrain.render.outputs import claim


def fill_job(kind: str, cfg: Config, outdir: Path, problems: list[Problem], grids: list[Grid], options: dict, *,
             shard: Shard, compute: bool, quiet: bool, expect_grids: list[str] | None) -> tuple[TileStore, Progress]:
    """Claim ``OUT/NAME.json`` for this job, write its manifest and fill (or, without ``compute``, check) its tiles.

    ``problems[i]`` trains ``grids[i]``.  ``expect_grids`` (a job manifest's
    grid keys, when ``assemble`` replays it) refuses, before anything is
    written, a job that gives other grids.  Returns the store and what the fill did.
    """
    if expect_grids is not None:
        check_grids(expect_grids, grids)
    claim(output_file(outdir, cfg.name, ".json"), kind, grids)  # before any work
    store = TileStore(outdir / "tiles")
    for g in grids:
        store.register(g)
    write_manifest(outdir, Manifest(kind, cfg.name, cfg.to_dict(), options, [g.key for g in grids], shard.count))
    if not compute:
        require_complete(store, grids, shard.count)
        return store, Progress()
    total, done = owned_pixels(store, grids, shard)
    label = cfg.name if len(grids) == 1 else f"{cfg.name} x{len(grids)}"
    with progress_bar(total, done, quiet, label) as bar:
        return store, fill_grids(problems, store, grids, shard, bar)


def settle_grids(problems: list[Problem], window, grids: list[Grid], outdir: Path,
                 expect_grids: list[str] | None) -> list[Grid]:
    """The grids to render: the given ones, or their double-double twins under ``auto`` where float64's
    rounding decides the first one's signs (:func:`fractaltrain.search.noise.settle_precision`; every
    member of an ensemble follows the first).  A recorded job (``expect_grids``) takes the choice from
    its grid keys instead of testing again."""
    from fractaltrain.compute.landscape import make_grid
    from fractaltrain.precision import AUTO, DOUBLE_DOUBLE
    from fractaltrain.search.noise import settle_precision

    first = grids[0]
    if problems[0].config.precision != AUTO or first.double_double:
        return grids
    if expect_grids is not None:
        switch = first.key not in expect_grids
    else:
        switch = settle_precision(problems[0], window, first, outdir / "noise.json" if outdir.is_dir() else None
                                  ).double_double
    if not switch:
        return grids
    return [make_grid(p, window, g.width, g.height, g.tile, precision=DOUBLE_DOUBLE) for p, g in zip(problems, grids)]


def timing(t0: float, prog: Progress) -> dict:
    """The sidecar's timing record of a render that started at ``t0``."""
    return {"seconds": time.perf_counter() - t0, "kernel_seconds": prog.seconds, "tiles_computed": prog.tiles_computed,
            "tiles_reused": prog.tiles_reused, "pixels_computed": prog.pixels_computed}
