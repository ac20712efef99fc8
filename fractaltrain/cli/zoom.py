"""``fractaltrain zoom``: a deep-zoom MP4, with every zoom flag checked once in :func:`zoom_options`."""

from __future__ import annotations

from typing import Optional

import typer

from fractaltrain.cli.common import (
    PRECISION_OPT,
    CONFIG_ARG, DEVICE_OPT, DRY_RUN_OPT, JSON_OPT, OUT_OPT, PALETTE_OPT, QUIET_OPT, SHARD_OPT, THREADS_OPT, UsageError,
    error_line, guarded, out_folder, parse_shard, parse_size, set_device, set_threads, shard_line, show_plan, time_line,
    wrote,
)
from fractaltrain.config import load_config, with_overrides


def parse_pair(text: Optional[str], flag: str):
    """``X,Y``: long decimals exactly (a zoom 30 decades deep needs a centre of 30 and more digits), shorter
    ones as their float64s, as before (:func:`fractaltrain.config.values.is_long_decimal`)."""
    from fractaltrain.config.values import is_long_decimal
    from fractaltrain.window import parse_coordinate

    def parse_coordinate_or_float(t: str):
        q = parse_coordinate(t)
        return q if is_long_decimal(t) else float(q)

    if text is None:
        return None
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        a, b = parse_coordinate_or_float(parts[0]), parse_coordinate_or_float(parts[1])
        if not (abs(a) < 1e308 and abs(b) < 1e308):
            raise ValueError
    except ValueError:
        raise UsageError(f"{flag}: expected two finite numbers X,Y in axis units (decades on a log10 axis), "
                         f"got {text[:60]!r}") from None
    return a, b


def parse_range(text: Optional[str], frames: int) -> Optional[tuple[int, int]]:
    from fractaltrain.zoom.options import check_frame_range

    if text is None:
        return None
    try:
        a_s, b_s = text.split(":")
        a = int(a_s) if a_s else 0
        b = int(b_s) if b_s else frames
    except ValueError:
        raise UsageError(f"--frame-range: expected A:B (frames A to B-1), got {text[:40]!r}") from None
    return check_frame_range(a, b, frames)


def zoom_options(*, frames, fps, size, depth, center, factor, palette, crf, codec, frame_range, overlay, recolor,
                 preview, seed, video=True, allow_noise=False, preset=None):
    """Every zoom flag checked here, once, before any work (locate, keyframes, encoding).

    The limits are :mod:`fractaltrain.zoom.options`', the same a job manifest is held to.
    """
    from fractaltrain.zoom import options as jo

    preset = jo.ZoomOptions.preset if preset is None else preset
    return jo.ZoomOptions(
        frames=jo.check_frames(frames), fps=jo.check_fps(fps), size=jo.check_size(parse_size(size)),
        depth=None if depth is None else jo.check_depth(depth), factor=jo.check_factor(factor),
        center=None if center == "auto" else parse_pair(center, "--center"), auto_center=center == "auto",
        palette=jo.check_palette(palette), crf=jo.check_crf(crf), codec=jo.check_codec(codec),
        preset=jo.check_preset(preset), frame_range=parse_range(frame_range, frames),
        overlay=overlay, recolor=recolor, preview=preview, seed=jo.check_seed(seed), video=video,
        allow_noise=allow_noise,
    )


@guarded
def zoom(
    config: str = CONFIG_ARG,
    out: str = OUT_OPT,
    frames: int = typer.Option(300, "--frames", help="Number of video frames."),
    fps: float = typer.Option(30.0, "--fps", help="Frames per second."),
    size: str = typer.Option("1280x720", "--size", help="Video WIDTHxHEIGHT (even numbers, any aspect)."),
    depth: Optional[float] = typer.Option(
        None, "--depth", help="Zoom depth in decades of window width [default: 10, or the zoom_target view's depth]."),
    center: Optional[str] = typer.Option(
        None, "--center", help="Target X,Y in axis units, or 'auto' to run locate; default: the centre of the "
        "config's zoom_target view (the published panel, for the paper configs), else locate."),
    seed: int = typer.Option(0, "--seed", help="locate: the K-th best distinct target (0 = the best)."),
    keyframe_factor: float = typer.Option(2.0, "--keyframe-factor", help="Width ratio of consecutive keyframes."),
    palette: str = PALETTE_OPT,
    crf: int = typer.Option(18, "--crf", help="Encoder quality (lower = better, 0-51)."),
    codec: str = typer.Option("libx264", "--codec", help="libx264 | libx265 | mpeg4 (yuv420p)."),
    preset: Optional[str] = typer.Option(
        None, "--preset", help="Encoder speed preset, ultrafast … veryslow [default: veryfast]; slower ones encode "
        "a little better at the same --crf, taking longer."),
    frame_range: Optional[str] = typer.Option(None, "--frame-range", help="Render only frames A:B (A to B-1)."),
    overlay: bool = typer.Option(False, "--overlay", help="Show the window's x/y ranges and zoom depth."),
    recolor: bool = typer.Option(False, "--recolor", help="Re-encode from stored raw values only (never train)."),
    preview: bool = typer.Option(False, "--preview", help="Quick look: 320 px wide, at most 60 steps."),
    keyframes_only: bool = typer.Option(False, "--keyframes-only", help="Keyframes, poster and sidecar; no MP4."),
    allow_noise: bool = typer.Option(False, "--allow-noise", help="Go on into keyframes where rounding decides signs."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (overrides training.steps)."),
    precision: Optional[str] = PRECISION_OPT,
    ensemble: Optional[int] = typer.Option(
        None, "--ensemble", help="Train every keyframe under K draws and show P(converge) (see docs/ensembles.md)."),
    quiet: bool = QUIET_OPT,
    threads: Optional[int] = THREADS_OPT,
    device: Optional[str] = DEVICE_OPT,
    shard: Optional[str] = SHARD_OPT,
    dry_run: bool = DRY_RUN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Render a deep-zoom MP4 into the converge/diverge boundary.

    Writes NAME.mp4, NAME_poster.png (deepest keyframe), keyframes/NAME_kfNNN.npz (raw values)
    and NAME.json into OUT.  Keyframes go through the tile store: rerunning after a crash only
    computes what is missing, and --recolor re-encodes without training (or locating).
    """
    import time

    from fractaltrain.render.ensemble import with_ensemble
    from fractaltrain.compute.jobs import IncompleteError
    from fractaltrain.zoom.guards import NoiseError
    from fractaltrain.zoom.pipeline import zoom as do_zoom

    cfg = with_ensemble(with_overrides(load_config(config), steps=steps, precision=precision), ensemble)
    opts = zoom_options(frames=frames, fps=fps, size=size, depth=depth, center=center, factor=keyframe_factor,
                        palette=palette, crf=crf, codec=codec, frame_range=frame_range, overlay=overlay,
                        recolor=recolor, preview=preview, seed=seed, video=not keyframes_only,
                        allow_noise=allow_noise, preset=preset)
    sh = parse_shard(shard)
    set_threads(threads)
    set_device(device)
    outdir = out_folder(out)
    t_plan = time.perf_counter()
    if dry_run or as_json or not (quiet or recolor):  # recolor trains nothing: no plan unless asked
        from fractaltrain.compute.device import active
        from fractaltrain.zoom.cost import zoom_cost

        show_plan(zoom_cost(cfg, outdir, opts, sh, active()), dry_run, as_json)
        if dry_run:
            return
    t_plan = time.perf_counter() - t_plan
    try:
        res = do_zoom(cfg, outdir, opts, quiet=quiet, shard=sh)
    except NoiseError as exc:
        raise UsageError(f"{error_line(exc)}; --allow-noise goes on anyway") from None
    except IncompleteError as exc:
        if not recolor:
            raise
        raise UsageError(f"--recolor: {str(exc).splitlines()[0]} in {outdir}/tiles; --recolor never trains: "
                         "run the zoom without --recolor first") from None
    tx, ty = res.plan.target_strings()
    if res.poster is None:
        typer.echo(shard_line(sh, res.progress))
    else:
        typer.echo(f"target x={tx} y={ty}, {res.plan.depth:g} decades, {res.plan.n_keyframes} keyframes")
        typer.echo(wrote([res.mp4, res.poster, res.json]))
    if not quiet:
        t = res.timing
        typer.echo(time_line({"plan": t_plan, "target": t.get("locate_seconds", 0.0),
                              "noise guard": t.get("noise_seconds", 0.0), "keyframes": t.get("keyframe_seconds", 0.0),
                              "frames and encoding": t.get("frame_seconds", 0.0)}))
