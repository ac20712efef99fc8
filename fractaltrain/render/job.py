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


def timing(t0: float, prog: Progress) -> dict:
    """The sidecar's timing record of a render that started at ``t0``."""
    return {"seconds": time.perf_counter() - t0, "kernel_seconds": prog.seconds, "tiles_computed": prog.tiles_computed,
            "tiles_reused": prog.tiles_reused, "pixels_computed": prog.pixels_computed}
