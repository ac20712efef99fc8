"""``fractaltrain render``: one image (PNG, raw values and sidecar), resumable and shardable."""

from __future__ import annotations

from typing import Optional

import typer

from fractaltrain.cli.common import (
    CONFIG_ARG, DEVICE_OPT, DRY_RUN_OPT, JSON_OPT, OUT_OPT, PALETTE_OPT, PRECISION_OPT, QUIET_OPT, SHARD_OPT, THREADS_OPT,
    check_palette, guarded, out_folder, parse_shard, set_device, set_threads, shard_line, show_plan, time_line, wrote,
)
from fractaltrain.config import load_config, with_overrides


@guarded
def render(
    config: str = CONFIG_ARG,
    out: str = OUT_OPT,
    resolution: Optional[str] = typer.Option(None, "--resolution", "-r", help="WIDTHxHEIGHT, e.g. 640x360."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (overrides training.steps)."),
    window: Optional[str] = typer.Option(
        None, "--window", help="X0,X1,Y0,Y1 in axis units (decades for log10), or a view of the config (paper)."),
    palette: str = PALETTE_OPT,
    quiet: bool = QUIET_OPT,
    threads: Optional[int] = THREADS_OPT,
    device: Optional[str] = DEVICE_OPT,
    precision: Optional[str] = PRECISION_OPT,
    shard: Optional[str] = SHARD_OPT,
    ensemble: Optional[int] = typer.Option(
        None, "--ensemble", help="Train every pixel under K draws of the random sources (the config's ensemble.vary, "
        "default all) and map P(converge) (see docs/ensembles.md)."),
    member: Optional[int] = typer.Option(
        None, "--member", help="Render only ensemble member K (0 = the config's own draws) as a normal image, "
        "NAME_memberK.*."),
    dry_run: bool = DRY_RUN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Render one image: NAME.png, NAME.npz (raw values) and NAME.json into OUT.

    Resumable: tiles already in OUT/tiles are reused, so rerunning after a crash only
    computes what is missing.  OUT/NAME.* of a different job (another config with the
    same name) is never overwritten: the command stops and says so.  With an ensemble
    the npz holds p_converged, measure_mean, measure_std and members, and the PNG shows P(converge).
    """
    import dataclasses
    import time

    from fractaltrain.render.ensemble import check_member, with_ensemble
    from fractaltrain.errors import check_name
    from fractaltrain.render.still import render as do_render

    cfg = with_overrides(load_config(config), resolution=resolution, steps=steps, window=window, precision=precision)
    cfg = with_ensemble(cfg, ensemble)
    if member is not None:
        check_member(cfg, member)
        check_name(f"{cfg.name}_member{member}")
        cfg = dataclasses.replace(cfg, name=f"{cfg.name}_member{member}")
    pal = check_palette(palette)
    sh = parse_shard(shard)
    set_threads(threads)
    set_device(device)
    outdir = out_folder(out)
    if dry_run or as_json or not quiet:
        from fractaltrain.compute.device import active
        from fractaltrain.render.cost import render_cost

        t0 = time.perf_counter()
        show_plan(render_cost(cfg, outdir, sh, member, active()), dry_run, as_json)
        plan_seconds = time.perf_counter() - t0
        if dry_run:
            return
    else:
        plan_seconds = 0.0
    t0 = time.perf_counter()
    res = do_render(cfg, outdir, quiet=quiet, shard=sh, palette=pal, member=member)
    total = time.perf_counter() - t0
    if res.png is None:
        typer.echo(shard_line(sh, res.progress))
    else:
        typer.echo(f"{wrote([res.png, res.npz, res.json])} ({res.progress.seconds:.1f} s computing)")
    if not quiet:
        typer.echo(time_line({"plan": plan_seconds, "training": res.progress.seconds,
                              "outputs and checks": total - res.progress.seconds}))
