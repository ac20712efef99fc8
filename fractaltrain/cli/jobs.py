"""``fractaltrain assemble`` and ``status``: finish sharded jobs, and report what is done.

Both only read the output folder (assemble writes the finished outputs, never trains);
importing this module and running ``status`` loads no numba.
"""

from __future__ import annotations

from typing import Optional

import typer

from fractaltrain.cli.common import QUIET_OPT, UsageError, error_line, guarded, in_folder, wrote
from fractaltrain.errors import InputError, one_line


@guarded
def assemble(
    outdir: str = typer.Argument(..., help="Output folder that shards wrote into."),
    name: Optional[str] = typer.Option(None, "--name", help="Only the job(s) with this config name."),
    quiet: bool = QUIET_OPT,
) -> None:
    """Finish sharded jobs: check every tile is present, then write the PNG / MP4 and sidecars.

    Never trains.  Missing tiles are listed with the shard that owns them; rerun those shards
    (or the same render/zoom command without --shard) and assemble again.  A damaged job
    manifest is named and skipped; the other jobs are still assembled (exit code 2 at the end).
    """
    from fractaltrain.compute.jobs import IncompleteError, read_manifests
    from fractaltrain.render.still import render_from_manifest
    from fractaltrain.compute.files import DamagedFile
    from fractaltrain.zoom.pipeline import zoom_from_manifest

    folder = in_folder(outdir, "assemble")
    bad: list = []
    jobs = [(p, m) for p, m in read_manifests(folder, bad) if name is None or m.name == name]
    for path, reason in bad:
        typer.echo(f"error: {path}: {one_line(reason, 200)}; skipped", err=True)
    if not jobs:
        if bad:
            raise typer.Exit(2)
        raise UsageError(f"assemble: no job manifests in {folder}/jobs" + (f" named {name[:40]!r}" if name else ""))
    incomplete = failed = 0
    for path, m in jobs:
        try:
            if m.kind in ("render", "ensemble"):
                res = render_from_manifest(folder, m, quiet=quiet)
                typer.echo(f"{m.name}: {wrote([res.png, res.npz, res.json])}")
            else:
                res = zoom_from_manifest(folder, m, quiet=quiet)
                typer.echo(f"{m.name}: {wrote([res.mp4, res.poster, res.json])}")
        except IncompleteError as exc:
            incomplete += 1
            typer.echo(f"{m.name} ({path.name}): {exc}", err=True)
        except (InputError, DamagedFile, OSError, MemoryError) as exc:  # manifests are checked first
            failed += 1
            typer.echo(f"error: {path}: {one_line(error_line(exc), 300)}", err=True)
    if failed or bad:
        raise typer.Exit(2)
    if incomplete:
        raise typer.Exit(1)


@guarded
def status(outdir: str = typer.Argument(..., help="Output folder of a render or zoom.")) -> None:
    """Tiles done / missing per grid (keyframe) of every job in OUTDIR, and the time left.

    A tile counts as done only if it reads back valid (key and checksum), as assemble decides; a
    keyframe's sampled rounding-flip rate is shown when the zoom's noise guard measured it.
    """
    from fractaltrain.compute.jobs import job_status, read_manifests
    from fractaltrain.search.noise import NOISE_MAX, load_rates

    folder = in_folder(outdir, "status")
    bad: list = []
    jobs = read_manifests(folder, bad)
    rates = load_rates(folder / "noise.json")
    for path, reason in bad:
        typer.echo(f"error: {path}: {one_line(reason, 200)}; skipped", err=True)
    if not jobs:
        if bad:
            raise typer.Exit(2)
        raise UsageError(f"status: no job manifests in {folder}/jobs")
    for path, m in jobs:
        stats, eta = job_status(folder, m)
        known = [s for s in stats if s.tiles >= 0]
        tiles = sum(s.tiles for s in known)
        done = sum(s.done for s in known)
        unknown = len(stats) - len(known)
        extra = f", {unknown} grid(s) without a valid grid.json (rerun the job to rewrite it)" if unknown else ""
        typer.echo(f"{m.kind} {m.name} ({path.name}): {done}/{tiles} tiles, {tiles - done} missing, "
                   f"{m.shards} shard(s)" + extra + ("" if eta is None else f", about {eta / 60:.1f} min left"))
        ens = m.config.get("ensemble") if isinstance(m.config, dict) else None
        members = ens.get("members", 1) if isinstance(ens, dict) and m.kind == "zoom" else 1
        per = max(1, len(stats) // members) if isinstance(members, int) and members > 0 else len(stats)
        for k, s in enumerate(stats):
            label = {"render": "grid", "ensemble": f"member {k:3d}"}.get(
                m.kind, f"keyframe {k % per:3d}" + (f" member {k // per}" if members != 1 else ""))
            rate = rates.get(m.grids[k]) if k < len(m.grids) else None
            flips = "" if rate is None else (f", flip rate {rate:.1%}"
                                             + (" (rounding-decided)" if rate > NOISE_MAX else ""))
            if s.tiles < 0:
                typer.echo(f"  {label}: grid.json missing or damaged in tiles/{s.key}; tiles unknown")
            else:
                dd = ", double-double" if s.precision == "double-double" else ""
                typer.echo(f"  {label}: {s.done}/{s.tiles} tiles ({s.pixels_done}/{s.pixels} px){dd}{flips}")
    if bad:
        raise typer.Exit(2)
