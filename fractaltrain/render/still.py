"""``render``: one window of one experiment, to PNG + npz + JSON.

Usable from Python::

    from fractaltrain.config import load_config
    from fractaltrain.render.still import render
    result = render(load_config("configs/demo.yaml"), "out")
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fractaltrain.render import colour
from fractaltrain.config import Config
from fractaltrain.compute.jobs import Manifest, check_manifest, manifest_config
from fractaltrain.compute.landscape import Progress, Shard, assemble, grid_axes, make_grid
from fractaltrain.render.job import fill_job, settle_grids, timing
from fractaltrain.errors import check_name, output_file
from fractaltrain.render.outputs import claim, readout_values, save_json, save_png, save_raw_npz, sidecar
from fractaltrain.problem import build_problem
from fractaltrain.compute.store import Grid
from fractaltrain.window import config_window


@dataclass(frozen=True)
class RenderResult:
    """Paths written (None when only a shard was computed) and what the fill did."""

    grid: Grid
    png: Path | None
    npz: Path | None
    json: Path | None
    progress: Progress


def render(
    cfg: Config,
    outdir: str | Path,
    *,
    quiet: bool = True,
    shard: Shard = Shard(),
    palette: str = "spectral",
    compute: bool = True,
    member: int | None = None,
    expect_grids: list[str] | None = None,
) -> RenderResult:
    """Compute (or resume) ``cfg``'s window and write NAME.png/.npz/.json into ``outdir``.

    With a shard other than 1/1 only that shard's tiles are computed and nothing
    else is written; a later run without a shard assembles the outputs.  With
    ``compute=False`` nothing is trained: missing tiles raise
    :class:`~fractaltrain.compute.jobs.IncompleteError` naming the shards that own them.

    A config with an ``ensemble`` renders all its members
    (:func:`fractaltrain.render.ensemble.render_ensemble`), unless ``member`` picks one,
    which is then rendered as a normal image from that member's draws.  ``expect_grids`` (a
    job manifest's grid keys) refuses, before anything is written, a job that gives other grids.
    """
    if cfg.ensemble is not None and member is None:
        from fractaltrain.render.ensemble import render_ensemble

        return render_ensemble(cfg, outdir, quiet=quiet, shard=shard, palette=palette, compute=compute,
                               expect_grids=expect_grids)
    outdir = Path(outdir)
    check_name(cfg.name)
    if member is None:
        problem = build_problem(cfg)
    else:
        from fractaltrain.render.ensemble import check_member, member_problem

        problem = member_problem(cfg, check_member(cfg, member))
    options = {"palette": palette} if member is None else {"palette": palette, "member": member}
    window = config_window(cfg)
    grid = make_grid(problem, window, cfg.resolution[0], cfg.resolution[1], cfg.tile)
    grid = settle_grids([problem], window, [grid], outdir, expect_grids)[0]  # auto: double-double where rounding decides
    t0 = time.perf_counter()
    store, prog = fill_job("render", cfg, outdir, [problem], [grid], options, shard=shard, compute=compute,
                           quiet=quiet, expect_grids=expect_grids)
    if shard.count > 1 and compute:
        return RenderResult(grid, None, None, None, prog)
    raw = assemble(store, grid)
    xv, yv = grid_axes(cfg, grid)
    png, npz, js = (output_file(outdir, cfg.name, sfx) for sfx in (".png", ".npz", ".json"))
    claim(js, "render", [grid])  # again: another job may have finished meanwhile
    steps = raw[..., 3]
    # the sidecar first: it claims the name (see outputs.claim) before the other outputs are replaced
    save_json(
        js,
        sidecar(
            problem,
            grid,
            kind="render",
            palette=palette,
            **({} if member is None else {"ensemble_member": member}),
            timing=timing(t0, prog),
            stats={
                "converged_fraction": float(np.mean(raw[..., 0] < 0)),
                "mean_steps_trained": float(np.mean(steps)),
            },
        ),
    )
    save_raw_npz(npz, problem, grid, raw, xv, yv)
    save_png(png, colour.to_image(readout_values(raw, cfg.readout), palette=palette))
    return RenderResult(grid, png, npz, js, prog)


def render_from_manifest(outdir: str | Path, manifest: Manifest, quiet: bool = True):
    """Finish a render or ensemble recorded in a job manifest, without training (see :mod:`fractaltrain.compute.jobs`).

    The manifest is checked again (:func:`~fractaltrain.compute.jobs.check_manifest`), so one
    :class:`~fractaltrain.errors.InputError` comes before anything is written, and its
    grids must be the ones its config gives.
    """
    from dataclasses import asdict

    from fractaltrain.zoom.options import render_options_from_manifest

    check_manifest(asdict(manifest))
    o = render_options_from_manifest(manifest.options, manifest.kind)
    return render(manifest_config(manifest), outdir, quiet=quiet, palette=o["palette"], compute=False,
                  shard=Shard(0, manifest.shards), member=o["member"], expect_grids=list(manifest.grids))
