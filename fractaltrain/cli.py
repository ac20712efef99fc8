"""The ``fractaltrain`` command line: thin wrappers around the library.

Every command turns bad input into one line on stderr naming the field and what
is allowed, and exit code 2, with no traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from fractaltrain.config import ConfigError, load_config, with_overrides

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Render the neural-network trainability fractal: every pixel trains a small network "
    "with its own pair of hyperparameters and is coloured by whether training converged "
    "(blue-green) or diverged (red-yellow).",
)


@app.callback()
def root() -> None:
    """Render the neural-network trainability fractal (see README.md)."""


class UsageError(Exception):
    """Bad input found by the CLI itself (flag values)."""


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def set_threads(threads: Optional[int]) -> None:
    if threads is None:
        return
    import numba

    if threads < 1 or threads > numba.config.NUMBA_NUM_THREADS:
        raise UsageError(f"--threads: must be between 1 and {numba.config.NUMBA_NUM_THREADS}, got {threads}")
    numba.set_num_threads(threads)


def parse_shard(text: Optional[str]):
    """``K/N`` (0-based K), or ``slurm`` to read SLURM_ARRAY_TASK_ID / _COUNT."""
    from fractaltrain.landscape import Shard

    if text is None:
        return Shard()
    if text == "slurm" or text.startswith("slurm/"):
        import os

        try:
            k = int(os.environ["SLURM_ARRAY_TASK_ID"])
            if text == "slurm":
                n = int(os.environ["SLURM_ARRAY_TASK_COUNT"])
            else:
                n = int(text.split("/", 1)[1])
        except (KeyError, ValueError):
            raise UsageError(
                "--shard slurm: SLURM_ARRAY_TASK_ID (and SLURM_ARRAY_TASK_COUNT unless slurm/N is given) must be "
                "set; use --array=0-(N-1)"
            ) from None
    else:
        try:
            ks, ns = text.split("/")
            k, n = int(ks), int(ns)
        except ValueError:
            raise UsageError(f"--shard: expected K/N (task K of N, 0-based) or 'slurm', got {text!r}") from None
    if n < 1 or not 0 <= k < n:
        raise UsageError(f"--shard: need 0 <= K < N, got {k}/{n}")
    return Shard(k, n)


def run_guarded(fn):
    """Call ``fn()``, turning known input errors into one line and exit code 2."""
    try:
        return fn()
    except (ConfigError, UsageError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        typer.echo("interrupted: finished tiles are kept; rerun the same command to resume", err=True)
        raise typer.Exit(130)


CONFIG_ARG = typer.Argument(..., help="YAML experiment config, e.g. configs/demo.yaml.", show_default=False)
OUT_OPT = typer.Option(Path("out"), "--out", "-o", help="Output folder (tiles are kept in OUT/tiles for resuming).")
QUIET_OPT = typer.Option(False, "--quiet", "-q", help="No progress bar.")
THREADS_OPT = typer.Option(None, "--threads", help="Kernel threads (default: all cores).")
SHARD_OPT = typer.Option(
    None,
    "--shard",
    help="Compute only task K of N's tiles (K/N, 0-based); 'slurm/N' takes K from SLURM_ARRAY_TASK_ID "
    "(safe when a single task is resubmitted); 'slurm' also reads N from SLURM_ARRAY_TASK_COUNT.",
)
PALETTE_OPT = typer.Option("spectral", "--palette", help="spectral | rdylbu | puor | gray.")


def check_palette(palette: str) -> str:
    from fractaltrain.colour import PALETTES

    if palette.lower() not in PALETTES:
        raise UsageError(f"--palette: must be one of {', '.join(PALETTES)}; got {palette!r}")
    return palette.lower()


@app.command()
def render(
    config: str = CONFIG_ARG,
    out: Path = OUT_OPT,
    resolution: Optional[str] = typer.Option(None, "--resolution", "-r", help="WIDTHxHEIGHT, e.g. 640x360."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (overrides training.steps)."),
    window: Optional[str] = typer.Option(
        None, "--window", help="X0,X1,Y0,Y1 in axis units (decades for log10), or a view of the config (paper)."),
    palette: str = PALETTE_OPT,
    quiet: bool = QUIET_OPT,
    threads: Optional[int] = THREADS_OPT,
    shard: Optional[str] = SHARD_OPT,
) -> None:
    """Render one image: NAME.png, NAME.npz (raw values) and NAME.json into OUT.

    Resumable: tiles already in OUT/tiles are reused, so rerunning after a crash only
    computes what is missing.
    """

    def go():
        from fractaltrain.render import render as do_render

        cfg = with_overrides(load_config(config), resolution=resolution, steps=steps, window=window)
        pal = check_palette(palette)
        sh = parse_shard(shard)
        set_threads(threads)
        res = do_render(cfg, out, quiet=quiet, shard=sh, palette=pal)
        if res.png is None:
            typer.echo(f"shard {sh.index}/{sh.count}: {res.progress.tiles_computed} tiles computed, "
                       f"{res.progress.tiles_reused} already done")
        else:
            typer.echo(f"wrote {res.png}, {res.npz}, {res.json} ({res.progress.seconds:.1f} s computing)")

    run_guarded(go)


def parse_pair(text: Optional[str], flag: str) -> Optional[tuple[float, float]]:
    if text is None:
        return None
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        a, b = float(parts[0]), float(parts[1])
    except ValueError:
        raise UsageError(f"{flag}: expected two numbers X,Y in axis units (decades on a log10 axis), got {text!r}") from None
    return a, b


def parse_range(text: Optional[str], frames: int) -> Optional[tuple[int, int]]:
    if text is None:
        return None
    try:
        a_s, b_s = text.split(":")
        a = int(a_s) if a_s else 0
        b = int(b_s) if b_s else frames
    except ValueError:
        raise UsageError(f"--frame-range: expected A:B (frames A to B-1), got {text!r}") from None
    if not 0 <= a < b <= frames:
        raise UsageError(f"--frame-range: need 0 <= A < B <= {frames} (the number of frames), got {text!r}")
    return a, b


def zoom_options(*, frames, fps, size, depth, center, factor, palette, crf, codec, frame_range, overlay, recolor,
                 preview, seed, video=True):
    from fractaltrain.config import parse_resolution
    from fractaltrain.video import ALLOWED_CODECS
    from fractaltrain.zoom import ZoomOptions

    if frames < 1:
        raise UsageError(f"--frames: must be >= 1, got {frames}")
    if not fps > 0:
        raise UsageError(f"--fps: must be > 0, got {fps}")
    w, h = parse_resolution(size, "--size")
    if w % 2 or h % 2:
        raise UsageError(f"--size: width and height must be even for H.264/yuv420p, got {w}x{h}")
    if depth is not None and not 0 < depth <= 40:
        raise UsageError(f"--depth: must be between 0 and 40 decades, got {depth}")
    if not 1.1 <= factor <= 16:
        raise UsageError(f"--keyframe-factor: must be between 1.1 and 16, got {factor}")
    if not 0 <= crf <= 51:
        raise UsageError(f"--crf: must be between 0 and 51, got {crf}")
    if codec not in ALLOWED_CODECS:
        raise UsageError(f"--codec: must be one of {', '.join(ALLOWED_CODECS)}; got {codec!r}")
    if seed < 0:
        raise UsageError(f"--seed: must be >= 0, got {seed}")
    return ZoomOptions(
        frames=frames, fps=fps, size=(w, h), depth=depth, factor=factor,
        center=None if center == "auto" else parse_pair(center, "--center"), auto_center=center == "auto",
        palette=check_palette(palette), crf=crf, codec=codec, frame_range=parse_range(frame_range, frames),
        overlay=overlay, recolor=recolor, preview=preview, seed=seed, video=video,
    )


@app.command()
def zoom(
    config: str = CONFIG_ARG,
    out: Path = OUT_OPT,
    frames: int = typer.Option(300, "--frames", help="Number of video frames."),
    fps: float = typer.Option(30.0, "--fps", help="Frames per second."),
    size: str = typer.Option("1280x720", "--size", help="Video WIDTHxHEIGHT (even numbers, any aspect)."),
    depth: Optional[float] = typer.Option(
        None, "--depth", help="Zoom depth in decades of window width [default: 10, or the zoom_target view's depth]."),
    center: Optional[str] = typer.Option(
        None, "--center", help="Target X,Y in axis units, or 'auto' to run locate; default: the centre of the "
        "config's zoom_target view (the published panel, for the paper configs), else locate."),
    seed: int = typer.Option(0, "--seed", help="locate: 0 = boundary nearest the centre, else a random one."),
    keyframe_factor: float = typer.Option(2.0, "--keyframe-factor", help="Width ratio of consecutive keyframes."),
    palette: str = PALETTE_OPT,
    crf: int = typer.Option(18, "--crf", help="Encoder quality (lower = better, 0-51)."),
    codec: str = typer.Option("libx264", "--codec", help="libx264 | libx265 | mpeg4 (yuv420p)."),
    frame_range: Optional[str] = typer.Option(None, "--frame-range", help="Render only frames A:B (A to B-1)."),
    overlay: bool = typer.Option(False, "--overlay", help="Show the window's x/y ranges and zoom depth."),
    recolor: bool = typer.Option(False, "--recolor", help="Re-encode from stored raw values only (never train)."),
    preview: bool = typer.Option(False, "--preview", help="Quick look: 320 px wide, at most 60 steps."),
    keyframes_only: bool = typer.Option(False, "--keyframes-only", help="Keyframes, poster and sidecar; no MP4."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (overrides training.steps)."),
    quiet: bool = QUIET_OPT,
    threads: Optional[int] = THREADS_OPT,
    shard: Optional[str] = SHARD_OPT,
) -> None:
    """Render a deep-zoom MP4 into the converge/diverge boundary.

    Writes NAME.mp4, NAME_poster.png (deepest keyframe), keyframes/NAME_kfNNN.npz (raw values)
    and NAME.json into OUT.  Keyframes go through the tile store: rerunning after a crash only
    computes what is missing, and --recolor re-encodes without training.
    """

    def go():
        from fractaltrain.zoom import zoom as do_zoom

        cfg = with_overrides(load_config(config), steps=steps)
        opts = zoom_options(frames=frames, fps=fps, size=size, depth=depth, center=center, factor=keyframe_factor,
                            palette=palette, crf=crf, codec=codec, frame_range=frame_range, overlay=overlay,
                            recolor=recolor, preview=preview, seed=seed, video=not keyframes_only)
        sh = parse_shard(shard)
        set_threads(threads)
        res = do_zoom(cfg, out, opts, quiet=quiet, shard=sh)
        tx, ty = res.plan.target
        if res.mp4 is None:
            typer.echo(f"shard {sh.index}/{sh.count}: {res.progress.tiles_computed} tiles computed, "
                       f"{res.progress.tiles_reused} already done")
        else:
            typer.echo(f"target x={tx!r} y={ty!r}, {res.plan.depth:g} decades, {res.plan.n_keyframes} keyframes")
            typer.echo(f"wrote {res.mp4 or 'no video'}, {res.poster}, {res.json}")

    run_guarded(go)


@app.command()
def locate(
    config: str = CONFIG_ARG,
    out: Path = OUT_OPT,
    depth: float = typer.Option(10.0, "--depth", help="How deep (decades) the point must stay on the boundary."),
    seed: int = typer.Option(0, "--seed", help="0 = boundary nearest the centre; another seed, another point."),
    size: str = typer.Option("1280x720", "--size", help="Aspect of the start view, as zoom would use it."),
    save: Optional[Path] = typer.Option(None, "--save", help="Also write the point as JSON here."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (overrides training.steps)."),
    quiet: bool = QUIET_OPT,
    threads: Optional[int] = THREADS_OPT,
) -> None:
    """Find a point that stays on the converge/diverge boundary down to DEPTH decades.

    Prints it at full precision in axis units; pass it to zoom as --center X,Y.
    """

    def go():
        import json

        from fractaltrain.config import parse_resolution
        from fractaltrain.locate import LocateError, locate as do_locate
        from fractaltrain.problem import build_problem
        from fractaltrain.render import config_window
        from fractaltrain.store import TileStore
        from fractaltrain.zoomplan import outer_window

        cfg = with_overrides(load_config(config), steps=steps)
        if not 0 < depth <= 40:
            raise UsageError(f"--depth: must be between 0 and 40 decades, got {depth}")
        if seed < 0:
            raise UsageError(f"--seed: must be >= 0, got {seed}")
        set_threads(threads)
        problem = build_problem(cfg)
        start = outer_window(config_window(cfg), cfg.resolution, parse_resolution(size, "--size"))
        try:
            res = do_locate(problem, start, depth, TileStore(Path(out) / "tiles"), seed=seed)
        except LocateError as exc:
            raise UsageError(f"--depth: {exc}") from None
        typer.echo(f"{res.x!r},{res.y!r}")
        typer.echo(f"{cfg.x.param} = {cfg.x.to_value(res.x)!r}, {cfg.y.param} = {cfg.y.to_value(res.y)!r}", err=True)
        if save is not None:
            from fractaltrain.store import atomic_write_bytes

            atomic_write_bytes(Path(save), (json.dumps(res.to_dict(), indent=2) + "\n").encode())

    run_guarded(go)


@app.command()
def assemble(
    outdir: Path = typer.Argument(..., help="Output folder that shards wrote into."),
    name: Optional[str] = typer.Option(None, "--name", help="Only the job(s) with this config name."),
    quiet: bool = QUIET_OPT,
) -> None:
    """Finish sharded jobs: check every tile is present, then write the PNG / MP4 and sidecars.

    Never trains.  Missing tiles are listed with the shard that owns them; rerun those shards
    (or the same render/zoom command without --shard) and assemble again.
    """

    def go():
        from fractaltrain.config import config_from_dict
        from fractaltrain.jobs import IncompleteError, read_manifests
        from fractaltrain.landscape import Shard
        from fractaltrain.render import render as do_render
        from fractaltrain.zoom import zoom_from_manifest

        jobs = [(p, m) for p, m in read_manifests(outdir) if name is None or m.name == name]
        if not jobs:
            raise UsageError(f"assemble: no job manifests in {outdir}/jobs" + (f" named {name!r}" if name else ""))
        failed = 0
        for path, m in jobs:
            try:
                if m.kind == "render":
                    res = do_render(config_from_dict(m.config, name=m.name), outdir, quiet=quiet,
                                    palette=m.options.get("palette", "spectral"), compute=False,
                                    shard=Shard(0, m.shards))
                    typer.echo(f"{m.name}: wrote {res.png}, {res.npz}, {res.json}")
                else:
                    res = zoom_from_manifest(outdir, m, quiet=quiet)
                    typer.echo(f"{m.name}: wrote {res.mp4}, {res.poster}, {res.json}")
            except IncompleteError as exc:
                failed += 1
                typer.echo(f"{m.name} ({path.name}): {exc}", err=True)
        if failed:
            raise typer.Exit(1)

    run_guarded(go)


@app.command()
def status(outdir: Path = typer.Argument(..., help="Output folder of a render or zoom.")) -> None:
    """Tiles done / missing per grid (keyframe) of every job in OUTDIR, and the time left."""

    def go():
        from fractaltrain.jobs import job_status, read_manifests

        jobs = read_manifests(outdir)
        if not jobs:
            raise UsageError(f"status: no job manifests in {outdir}/jobs")
        for path, m in jobs:
            stats, eta = job_status(outdir, m)
            tiles = sum(s.tiles for s in stats)
            done = sum(s.done for s in stats)
            typer.echo(f"{m.kind} {m.name} ({path.name}): {done}/{tiles} tiles, {tiles - done} missing, "
                       f"{m.shards} shard(s)" + ("" if eta is None else f", about {eta / 60:.1f} min left"))
            for k, s in enumerate(stats):
                label = "grid" if m.kind == "render" else f"keyframe {k:3d}"
                typer.echo(f"  {label}: {s.done}/{s.tiles} tiles ({s.pixels_done}/{s.pixels} px)")

    run_guarded(go)


@app.command()
def dimension(
    paths: list[Path] = typer.Argument(..., help="render .npz files and/or zoom output folders (all keyframes)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the log-log box-count plot (PNG) here."),
    min_size: float = typer.Option(10.0, "--min-size", help="Smallest box edge in pixels (the paper uses 10)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the result as JSON here."),
    stride: int = typer.Option(
        1, "--stride", help="Use every STRIDE-th pixel: the same windows at 1/STRIDE resolution, "
        "to see how the estimate drifts with resolution."),
) -> None:
    """Box-counting fractal dimension of the converge/diverge boundary.

    Boundary pixels are 2x2 neighbourhoods whose measure changes sign.  Reports the paper's
    estimator (median of local slopes over all images) and a least-squares fit over the scaling
    range with a 95% interval, and prints the per-scale counts.
    """

    def go():
        import json

        from fractaltrain import dimension as dim
        from fractaltrain import dimension_io as dio

        if stride < 1:
            raise UsageError(f"dimension: --stride must be a whole number >= 1, got {stride}")
        for p in paths:
            if not p.exists():
                raise UsageError(f"dimension: no such file or folder {str(p)!r}")
        try:
            files = dio.find_npz_files(paths)
            if not files:
                raise UsageError(f"dimension: no .npz files in {', '.join(map(str, paths))}")
            result = dim.estimate(dim.subsample(dio.iter_measures(files), stride), min_size=min_size)
        except (KeyError, ValueError) as exc:
            raise UsageError(f"dimension: {exc}") from None
        typer.echo(dio.format_table(result))
        if plot is not None:
            dio.write_loglog_png(result, plot)
            typer.echo(f"wrote {plot}")
        if json_out is not None:
            from fractaltrain.store import atomic_write_bytes

            rec = {
                "files": [str(f) for f in files],
                "median_local_slope": result.median_local_slope,
                "fit_slope": result.fit_slope,
                "fit_ci95": [result.fit_ci_low, result.fit_ci_high],
                "n_images": result.n_images,
                "stride": stride,
            }
            atomic_write_bytes(json_out, (json.dumps(rec, indent=2) + "\n").encode())

    run_guarded(go)


@app.command()
def explore(
    config: str = CONFIG_ARG,
    out: Path = OUT_OPT,
    port: int = typer.Option(8765, "--port", help="Port to listen on (0 = any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; anything but loopback exposes it."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser, just print the address."),
    max_pixels: Optional[int] = typer.Option(
        None, "--max-pixels", help="Refuse views larger than this many pixels (default 1048576)."),
    threads: Optional[int] = THREADS_OPT,
    verbose: bool = typer.Option(False, "--verbose", help="Log every request on stderr."),
) -> None:
    """Serve a local web page to pan and zoom into CONFIG, inspect pixels and copy render/zoom commands.

    Views are computed through the tile store in OUT/tiles, so a later render or zoom with the
    same --out reuses them.  Stop with Ctrl-C.
    """

    def go():
        from fractaltrain.explore.engine import Explorer
        from fractaltrain.explore.params import Limits
        from fractaltrain.explore.server import make_server

        cfg = load_config(config)
        if not 0 <= port <= 65535:
            raise UsageError(f"--port: must be between 0 and 65535, got {port}")
        if max_pixels is not None and max_pixels < 1:
            raise UsageError(f"--max-pixels: must be >= 1, got {max_pixels}")
        set_threads(threads)
        explorer = Explorer(cfg, config, out, Limits() if max_pixels is None else Limits(max_pixels=max_pixels))
        try:
            server = make_server(explorer, host, port, verbose=verbose)
        except OSError as exc:
            raise UsageError(f"--host/--port: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        typer.echo(f"fractaltrain explore: serving {server.url} (Ctrl-C to stop)")
        if not no_browser:
            import webbrowser

            webbrowser.open(server.url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            typer.echo("stopped; computed tiles are kept in " + str(Path(out) / "tiles"), err=True)
        finally:
            server.server_close()

    run_guarded(go)


def main() -> None:
    """Console entry point."""
    app(prog_name="fractaltrain")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
