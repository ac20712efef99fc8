"""``fractaltrain locate``: a point that stays on the converge/diverge boundary down to a depth."""

from __future__ import annotations

from typing import Optional

import typer

from fractaltrain.cli.common import (
    PRECISION_OPT,
    CONFIG_ARG, DEVICE_OPT, OUT_OPT, QUIET_OPT, THREADS_OPT, UsageError, check_depth_flag, check_seed, guarded,
    out_file, out_folder, parse_size, set_device, set_threads,
)
from fractaltrain.config import load_config, with_overrides


@guarded
def locate(
    config: str = CONFIG_ARG,
    out: str = OUT_OPT,
    depth: float = typer.Option(10.0, "--depth", help="How deep (decades) the point must stay on the boundary."),
    seed: int = typer.Option(0, "--seed", help="K: the K-th best distinct target (0 = the best)."),
    candidates: int = typer.Option(0, "--candidates", help="List the K best targets with scores and flip rates."),
    size: str = typer.Option("1280x720", "--size", help="Aspect of the start view, as zoom would use it."),
    save: Optional[str] = typer.Option(None, "--save", help="Also write the point as JSON here."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (overrides training.steps)."),
    precision: Optional[str] = PRECISION_OPT,
    quiet: bool = QUIET_OPT,
    threads: Optional[int] = THREADS_OPT,
    device: Optional[str] = DEVICE_OPT,
    ensemble: Optional[int] = typer.Option(
        None, "--ensemble", help="Follow the P(converge) = 1/2 level of K draws instead of one draw's boundary."),
) -> None:
    """Find a point that stays on the converge/diverge boundary down to DEPTH decades.

    Prints it at full precision in axis units; pass it to zoom as --center X,Y.
    """
    import json

    from fractaltrain.render.ensemble import member_problem, with_ensemble
    from fractaltrain.compute.landscape import close_at_count, progress_bar
    from fractaltrain.search.locate import (LocateError, candidates as find_candidates, ensemble_candidates,
                                            locate_images, locate_levels)
    from fractaltrain.problem import build_problem
    from fractaltrain.window import config_window, coordinate_text
    from fractaltrain.compute.files import atomic_write_bytes
    from fractaltrain.compute.store import TileStore
    from fractaltrain.zoom.plan import outer_window

    cfg = with_ensemble(with_overrides(load_config(config), steps=steps, precision=precision), ensemble)
    check_depth_flag(depth)
    check_seed(seed)
    if not 0 <= candidates <= 50:
        raise UsageError(f"--candidates: must be between 0 and 50, got {candidates}")
    start_size = parse_size(size)
    save_path = out_file(save, "--save")
    set_threads(threads)
    set_device(device)
    outdir = out_folder(out)
    start = outer_window(config_window(cfg), cfg.resolution, start_size)
    store, count = TileStore(outdir / "tiles"), max(candidates, seed + 1)
    try:
        total, unit = (locate_levels(depth) * count, "level") if cfg.ensemble else (locate_images(depth, count), "image")
        with progress_bar(total, 0, quiet, "locate", unit) as bar:
            if cfg.ensemble is None:
                found = find_candidates(build_problem(cfg), start, depth, store, count, bounds=config_window(cfg),
                                        bar=bar)
            else:  # the ½ level of P(converge), with the older rule (search.locate.locate_ensemble)
                found = ensemble_candidates([member_problem(cfg, k) for k in range(cfg.ensemble.members)], start,
                                            depth, store, count, bar=bar)
            close_at_count(bar)
    except LocateError as exc:
        raise UsageError(f"--depth: {exc}") from None
    if candidates:
        for r in found[:candidates]:
            if r.score is None:  # an ensemble's ½ level: the older rule, no scores
                typer.echo(f"{r.seed}: {coordinate_text(r.x)},{coordinate_text(r.y)}")
                continue
            typer.echo(f"{r.seed}: {coordinate_text(r.x)},{coordinate_text(r.y)}  score {r.score:+.3f}  flip rate {r.flip:.3f}  "
                       + ("" if r.strict else "(relaxed: some level missed the structure band)"))
        typer.echo(f"{found[0].pixels} pixels trained", err=True)
        return
    res = found[seed]
    if res.strict is False:
        typer.echo("warning: no target met the structure band at every level; this is the closest", err=True)
    typer.echo(f"{coordinate_text(res.x)},{coordinate_text(res.y)}")
    typer.echo(f"{cfg.x.param} = {cfg.x.to_value(res.x)!r}, {cfg.y.param} = {cfg.y.to_value(res.y)!r}", err=True)
    if save_path is not None:
        atomic_write_bytes(save_path, (json.dumps(res.to_dict(), indent=2) + "\n").encode())
