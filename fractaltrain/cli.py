"""The ``fractaltrain`` command line: thin wrappers around the library.

One place handles every failure (:func:`guarded` and :class:`OneLineErrors`):
bad input of any kind (config, flags, files, folders, a full or read-only disk,
the encoder, a job too large for the machine, and the parser's own usage
errors) becomes one line ``error: ...`` on stderr naming the thing and what is
allowed, with exit code 2 and no traceback.  Ctrl-C exits 130 keeping finished
tiles.  Anything else is a bug: one line ``error: internal error ...`` and exit
code 1 (``FRACTALTRAIN_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperGroup

from fractaltrain.config import ConfigError, load_config, with_overrides
from fractaltrain.errors import InputError, describe_os_error, one_line

try:  # typer >= 0.20 ships its own copy of click
    from typer import _click as click
except ImportError:  # pragma: no cover - older typer
    import click

# library option keys (InputError.option) -> the flag the user typed
FLAGS = {
    "resolution": "--resolution", "steps": "--steps", "window": "--window", "depth": "--depth",
    "center": "--center", "recolor": "--recolor", "size": "--size", "device": "--device",
    "ensemble": "--ensemble", "member": "--member",
}


class UsageError(Exception):
    """Bad input found by the CLI itself (flag values)."""


def error_line(exc: BaseException) -> str:
    """The one line shown for an expected failure."""
    from fractaltrain.jobs import IncompleteError
    from fractaltrain.store import DamagedFile

    if isinstance(exc, OSError):
        return describe_os_error(exc)
    if isinstance(exc, MemoryError):
        return "not enough memory for this job; lower the resolution, the tile size or the network's size"
    if isinstance(exc, IncompleteError):
        return str(exc).splitlines()[0] + "; run the shards that own them (fractaltrain status lists them)"
    msg = str(exc)
    option = getattr(exc, "option", None)
    if option in FLAGS and msg.startswith(option + ":"):
        msg = FLAGS[option] + msg[len(option):]
    if isinstance(exc, DamagedFile):
        msg += "; delete it and rerun the job"
    return msg


def fail(message: str, code: int = 2):
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(code)


def guarded(fn):
    """Run a command body, turning every expected failure into one line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from fractaltrain.jobs import IncompleteError
        from fractaltrain.store import DamagedFile

        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.exceptions.ClickException):
            raise
        except KeyboardInterrupt:
            typer.echo("interrupted: finished tiles are kept; rerun the same command to resume", err=True)
            raise typer.Exit(130)
        except (InputError, UsageError, OSError, MemoryError, IncompleteError, DamagedFile) as exc:
            fail(error_line(exc))
        except RecursionError:
            fail("input nested too deeply")
        except Exception as exc:
            if os.environ.get("FRACTALTRAIN_DEBUG"):
                raise
            fail(f"internal error ({type(exc).__name__}: {str(exc)[:200]}); this is a bug, please report it "
                 "(FRACTALTRAIN_DEBUG=1 shows the traceback)", code=1)

    return wrapper


class OneLineErrors(TyperGroup):
    """The parser's usage errors (unknown option, missing argument, bad value) as one line, exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False,
                              **extra)
        except click.exceptions.NoArgsIsHelpError:
            rv = self._usage("missing command")
        except click.exceptions.UsageError as exc:
            rv = self._usage(exc.format_message(), exc.ctx)
        except click.exceptions.ClickException as exc:
            typer.echo(f"error: {one_line(exc.format_message())}", err=True)
            rv = 2
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            rv = 1
        code = rv if isinstance(rv, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code

    def _usage(self, message: str, ctx=None) -> int:
        where = ""
        if ctx is not None and ctx.command is not self and ctx.info_name:
            where = f"{ctx.info_name}: "
        commands = ", ".join(self.list_commands(ctx) if ctx is not None else self.commands)
        hint = f" (see fractaltrain {ctx.info_name} --help)" if where else f"; commands: {commands} (see --help)"
        typer.echo(f"error: {where}{one_line(message.rstrip('.'))}{hint}", err=True)
        return 2


app = typer.Typer(
    cls=OneLineErrors,
    add_completion=False,
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    help="Render the neural-network trainability fractal: every pixel trains a small network "
    "with its own pair of hyperparameters and is coloured by whether training converged "
    "(blue-green) or diverged (red-yellow).",
)


@app.callback()
def root() -> None:
    """Render the neural-network trainability fractal (see README.md)."""


def set_threads(threads: Optional[int]) -> None:
    if threads is None:
        return
    import numba

    if threads < 1 or threads > numba.config.NUMBA_NUM_THREADS:
        raise UsageError(f"--threads: must be between 1 and {numba.config.NUMBA_NUM_THREADS}, got {threads}")
    numba.set_num_threads(threads)


def set_device(name: Optional[str]) -> None:
    from fractaltrain.device import select

    select(name)


def parse_shard(text: Optional[str]):
    """``K/N`` (0-based K), or ``slurm`` to read SLURM_ARRAY_TASK_ID / _COUNT."""
    from fractaltrain.landscape import Shard

    if text is None:
        return Shard()
    if text == "slurm" or text.startswith("slurm/"):
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
            raise UsageError(f"--shard: expected K/N (task K of N, 0-based) or 'slurm', got {text[:40]!r}") from None
    if n < 1 or not 0 <= k < n:
        raise UsageError(f"--shard: need 0 <= K < N, got {k}/{n}")
    if n > 1_000_000:
        raise UsageError(f"--shard: at most 1000000 tasks, got {n}")
    return Shard(k, n)


def out_folder(out: str, flag: str = "--out") -> Path:
    """Check an output folder before any work: named, a folder if it exists, writable."""
    if not out or not out.strip():
        raise UsageError(f"{flag}: must name a folder, got an empty string")
    if "\0" in out:
        raise UsageError(f"{flag}: contains a NUL character")
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{flag}: {out} exists and is not a folder")
    if p.is_dir() and not os.access(p, os.W_OK | os.X_OK):
        raise UsageError(f"{flag}: cannot write into {out} (permission denied); choose a folder you can write to")
    return p


def in_folder(outdir: str, command: str) -> Path:
    p = Path(outdir)
    if not outdir:
        raise UsageError(f"{command}: expected an output folder, got an empty string")
    if not p.exists():
        raise UsageError(f"{command}: no such folder {outdir}")
    if not p.is_dir():
        raise UsageError(f"{command}: {outdir} is not a folder; expected the --out folder of a render or zoom")
    return p


def out_file(path: Optional[str], flag: str) -> Optional[Path]:
    """A file the user names for an extra output (--save, --plot, --json)."""
    if path is None:
        return None
    if not path or "\0" in path:
        raise UsageError(f"{flag}: expected a file name, got {path[:40]!r}")
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{flag}: {path} is a folder; expected a file name")
    return p


CONFIG_ARG = typer.Argument(..., help="YAML experiment config, e.g. configs/demo.yaml.", show_default=False)
OUT_OPT = typer.Option("out", "--out", "-o", help="Output folder (tiles are kept in OUT/tiles for resuming).")
QUIET_OPT = typer.Option(False, "--quiet", "-q", help="No progress bar.")
THREADS_OPT = typer.Option(None, "--threads", help="Kernel threads (default: all cores).")
DEVICE_OPT = typer.Option(
    None, "--device", help="cpu | cuda: where pixels are trained (default: $FRACTALTRAIN_DEVICE, else cpu); "
    "cuda needs an NVIDIA GPU and pip install 'fractaltrain[cuda]'.")
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
        raise UsageError(f"--palette: must be one of {', '.join(PALETTES)}; got {palette[:40]!r}")
    return palette.lower()


def shard_line(sh, progress) -> str:
    return (f"shard {sh.index}/{sh.count}: {progress.tiles_computed} tiles computed, "
            f"{progress.tiles_reused} already done")


def wrote(paths) -> str:
    return "wrote " + ", ".join(str(p) for p in paths if p is not None)


@app.command()
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
    shard: Optional[str] = SHARD_OPT,
    ensemble: Optional[int] = typer.Option(
        None, "--ensemble", help="Train every pixel under K draws of the random sources (the config's ensemble.vary, "
        "default all) and map P(converge) (see docs/ensembles.md)."),
    member: Optional[int] = typer.Option(
        None, "--member", help="Render only ensemble member K (0 = the config's own draws) as a normal image, "
        "NAME_memberK.*."),
) -> None:
    """Render one image: NAME.png, NAME.npz (raw values) and NAME.json into OUT.

    Resumable: tiles already in OUT/tiles are reused, so rerunning after a crash only
    computes what is missing.  OUT/NAME.* of a different job (another config with the
    same name) is never overwritten: the command stops and says so.  With an ensemble
    the npz holds p_converged, measure_mean, measure_std and members, and the PNG shows P(converge).
    """
    import dataclasses

    from fractaltrain.ensemble import check_member, with_ensemble
    from fractaltrain.errors import check_name
    from fractaltrain.render import render as do_render

    cfg = with_overrides(load_config(config), resolution=resolution, steps=steps, window=window)
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
    res = do_render(cfg, outdir, quiet=quiet, shard=sh, palette=pal, member=member)
    if res.png is None:
        typer.echo(shard_line(sh, res.progress))
    else:
        typer.echo(f"{wrote([res.png, res.npz, res.json])} ({res.progress.seconds:.1f} s computing)")


def parse_pair(text: Optional[str], flag: str) -> Optional[tuple[float, float]]:
    import math

    if text is None:
        return None
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        a, b = float(parts[0]), float(parts[1])
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError
    except ValueError:
        raise UsageError(f"{flag}: expected two finite numbers X,Y in axis units (decades on a log10 axis), "
                         f"got {text[:60]!r}") from None
    return a, b


def parse_range(text: Optional[str], frames: int) -> Optional[tuple[int, int]]:
    if text is None:
        return None
    try:
        a_s, b_s = text.split(":")
        a = int(a_s) if a_s else 0
        b = int(b_s) if b_s else frames
    except ValueError:
        raise UsageError(f"--frame-range: expected A:B (frames A to B-1), got {text[:40]!r}") from None
    if not 0 <= a < b <= frames:
        raise UsageError(f"--frame-range: need 0 <= A < B <= {frames} (the number of frames), got {text[:40]!r}")
    return a, b


def check_depth_flag(depth: float) -> None:
    if not 0 < depth <= 40:  # also refuses nan
        raise UsageError(f"--depth: must be between 0 and 40 decades, got {depth}")


def zoom_options(*, frames, fps, size, depth, center, factor, palette, crf, codec, frame_range, overlay, recolor,
                 preview, seed, video=True, allow_noise=False):
    """Every zoom flag checked here, once, before any work (locate, keyframes, encoding)."""
    from fractaltrain.config import parse_resolution
    from fractaltrain.video import ALLOWED_CODECS
    from fractaltrain.zoom import ZoomOptions

    if not 1 <= frames <= 1_000_000:
        raise UsageError(f"--frames: must be between 1 and 1000000, got {frames}")
    if not 0.01 <= fps <= 1000:  # also refuses nan and inf
        raise UsageError(f"--fps: must be a number between 0.01 and 1000, got {fps}")
    try:
        w, h = parse_resolution(size, "size")
    except ConfigError as exc:
        raise UsageError("--size" + str(exc)[len("size"):]) from None
    if w % 2 or h % 2:
        raise UsageError(f"--size: width and height must be even for H.264/yuv420p, got {w}x{h}")
    if w > 16384 or h > 16384:
        raise UsageError(f"--size: width and height must be at most 16384 (keyframes are larger still), got {w}x{h}")
    if depth is not None:
        check_depth_flag(depth)
    if not 1.1 <= factor <= 16:
        raise UsageError(f"--keyframe-factor: must be between 1.1 and 16, got {factor}")
    if not 0 <= crf <= 51:
        raise UsageError(f"--crf: must be between 0 and 51, got {crf}")
    if codec not in ALLOWED_CODECS:
        raise UsageError(f"--codec: must be one of {', '.join(ALLOWED_CODECS)}; got {codec[:40]!r}")
    if seed < 0:
        raise UsageError(f"--seed: must be >= 0, got {seed}")
    return ZoomOptions(
        frames=frames, fps=fps, size=(w, h), depth=depth, factor=factor,
        center=None if center == "auto" else parse_pair(center, "--center"), auto_center=center == "auto",
        palette=check_palette(palette), crf=crf, codec=codec, frame_range=parse_range(frame_range, frames),
        overlay=overlay, recolor=recolor, preview=preview, seed=seed, video=video, allow_noise=allow_noise,
    )


@app.command()
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
    frame_range: Optional[str] = typer.Option(None, "--frame-range", help="Render only frames A:B (A to B-1)."),
    overlay: bool = typer.Option(False, "--overlay", help="Show the window's x/y ranges and zoom depth."),
    recolor: bool = typer.Option(False, "--recolor", help="Re-encode from stored raw values only (never train)."),
    preview: bool = typer.Option(False, "--preview", help="Quick look: 320 px wide, at most 60 steps."),
    keyframes_only: bool = typer.Option(False, "--keyframes-only", help="Keyframes, poster and sidecar; no MP4."),
    allow_noise: bool = typer.Option(False, "--allow-noise", help="Go on into keyframes where rounding decides signs."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (overrides training.steps)."),
    quiet: bool = QUIET_OPT,
    threads: Optional[int] = THREADS_OPT,
    device: Optional[str] = DEVICE_OPT,
    shard: Optional[str] = SHARD_OPT,
) -> None:
    """Render a deep-zoom MP4 into the converge/diverge boundary.

    Writes NAME.mp4, NAME_poster.png (deepest keyframe), keyframes/NAME_kfNNN.npz (raw values)
    and NAME.json into OUT.  Keyframes go through the tile store: rerunning after a crash only
    computes what is missing, and --recolor re-encodes without training (or locating).
    """
    from fractaltrain.jobs import IncompleteError
    from fractaltrain.zoom import NoiseError, zoom as do_zoom

    cfg = with_overrides(load_config(config), steps=steps)
    if cfg.ensemble is not None:  # the keyframes would silently show member 0 only
        raise ConfigError("ensemble: zoom does not render seed ensembles yet; render windows of the ensemble "
                          "instead (render with an ensemble and a window)")
    opts = zoom_options(frames=frames, fps=fps, size=size, depth=depth, center=center, factor=keyframe_factor,
                        palette=palette, crf=crf, codec=codec, frame_range=frame_range, overlay=overlay,
                        recolor=recolor, preview=preview, seed=seed, video=not keyframes_only,
                        allow_noise=allow_noise)
    sh = parse_shard(shard)
    set_threads(threads)
    set_device(device)
    outdir = out_folder(out)
    try:
        res = do_zoom(cfg, outdir, opts, quiet=quiet, shard=sh)
    except NoiseError as exc:
        raise UsageError(f"{error_line(exc)}; --allow-noise goes on anyway") from None
    except IncompleteError as exc:
        if not recolor:
            raise
        raise UsageError(f"--recolor: {str(exc).splitlines()[0]} in {outdir}/tiles; --recolor never trains: "
                         "run the zoom without --recolor first") from None
    tx, ty = res.plan.target
    if res.poster is None:
        typer.echo(shard_line(sh, res.progress))
    else:
        typer.echo(f"target x={tx!r} y={ty!r}, {res.plan.depth:g} decades, {res.plan.n_keyframes} keyframes")
        typer.echo(wrote([res.mp4, res.poster, res.json]))


@app.command()
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

    from fractaltrain.config import parse_resolution
    from fractaltrain.locate import LocateError, candidates as find_candidates
    from fractaltrain.problem import build_problem
    from fractaltrain.render import config_window
    from fractaltrain.store import TileStore, atomic_write_bytes
    from fractaltrain.zoomplan import outer_window

    from fractaltrain.ensemble import member_problem, with_ensemble

    cfg = with_ensemble(with_overrides(load_config(config), steps=steps), ensemble)
    check_depth_flag(depth)
    if seed < 0:
        raise UsageError(f"--seed: must be >= 0, got {seed}")
    if not 0 <= candidates <= 50:
        raise UsageError(f"--candidates: must be between 0 and 50, got {candidates}")
    try:
        start_size = parse_resolution(size, "size")
    except ConfigError as exc:
        raise UsageError("--size" + str(exc)[len("size"):]) from None
    save_path = out_file(save, "--save")
    set_threads(threads)
    set_device(device)
    outdir = out_folder(out)
    problem = build_problem(cfg) if cfg.ensemble is None else [
        member_problem(cfg, k) for k in range(cfg.ensemble.members)]
    start = outer_window(config_window(cfg), cfg.resolution, start_size)
    try:
        found = find_candidates(problem, start, depth, TileStore(outdir / "tiles"), max(candidates, seed + 1),
                                bounds=config_window(cfg))
    except LocateError as exc:
        raise UsageError(f"--depth: {exc}") from None
    if candidates:
        for r in found[:candidates]:
            if r.score is None:  # an ensemble's ½ level: the older rule, no scores
                typer.echo(f"{r.seed}: {r.x!r},{r.y!r}")
                continue
            typer.echo(f"{r.seed}: {r.x!r},{r.y!r}  score {r.score:+.3f}  flip rate {r.flip:.3f}  "
                       + ("" if r.strict else "(relaxed: some level missed the structure band)"))
        typer.echo(f"{found[0].pixels} pixels trained", err=True)
        return
    res = found[seed]
    if res.strict is False:
        typer.echo("warning: no target met the structure band at every level; this is the closest", err=True)
    typer.echo(f"{res.x!r},{res.y!r}")
    typer.echo(f"{cfg.x.param} = {cfg.x.to_value(res.x)!r}, {cfg.y.param} = {cfg.y.to_value(res.y)!r}", err=True)
    if save_path is not None:
        atomic_write_bytes(save_path, (json.dumps(res.to_dict(), indent=2) + "\n").encode())


@app.command()
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
    from fractaltrain.config import config_from_dict
    from fractaltrain.jobs import IncompleteError, read_manifests
    from fractaltrain.landscape import Shard
    from fractaltrain.render import render as do_render
    from fractaltrain.zoom import zoom_from_manifest

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
                res = do_render(config_from_dict(m.config, name=m.name), folder, quiet=quiet,
                                palette=str(m.options.get("palette", "spectral")), compute=False,
                                shard=Shard(0, m.shards), member=m.options.get("member"))
                typer.echo(f"{m.name}: {wrote([res.png, res.npz, res.json])}")
            else:
                res = zoom_from_manifest(folder, m, quiet=quiet)
                typer.echo(f"{m.name}: {wrote([res.mp4, res.poster, res.json])}")
        except IncompleteError as exc:
            incomplete += 1
            typer.echo(f"{m.name} ({path.name}): {exc}", err=True)
        except (InputError, OSError, MemoryError, KeyError, TypeError, ValueError) as exc:
            failed += 1
            typer.echo(f"error: {path}: {one_line(error_line(exc), 300)}", err=True)
    if failed or bad:
        raise typer.Exit(2)
    if incomplete:
        raise typer.Exit(1)


@app.command()
@guarded
def status(outdir: str = typer.Argument(..., help="Output folder of a render or zoom.")) -> None:
    """Tiles done / missing per grid (keyframe) of every job in OUTDIR, and the time left.

    A tile counts as done only if it reads back valid (key and checksum), as assemble decides; a
    keyframe's sampled rounding-flip rate is shown when the zoom's noise guard measured it.
    """
    from fractaltrain.jobs import job_status, read_manifests
    from fractaltrain.noise import NOISE_MAX, load_rates

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
        for k, s in enumerate(stats):
            label = {"render": "grid", "ensemble": f"member {k:3d}"}.get(m.kind, f"keyframe {k:3d}")
            rate = rates.get(m.grids[k]) if k < len(m.grids) else None
            flips = "" if rate is None else (f", flip rate {rate:.1%}"
                                             + (" (rounding-decided)" if rate > NOISE_MAX else ""))
            if s.tiles < 0:
                typer.echo(f"  {label}: grid.json missing or damaged in tiles/{s.key}; tiles unknown")
            else:
                typer.echo(f"  {label}: {s.done}/{s.tiles} tiles ({s.pixels_done}/{s.pixels} px){flips}")
    if bad:
        raise typer.Exit(2)


@app.command()
@guarded
def dimension(
    paths: list[str] = typer.Argument(
        ..., help="render .npz files, zoom output folders (all keyframes), or boundary masks (.npy or PNG, "
        "non-zero = boundary)."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Write the log-log box-count plot (PNG) here."),
    min_size: float = typer.Option(10.0, "--min-size", help="Smallest box edge in pixels (the paper uses 10)."),
    json_out: Optional[str] = typer.Option(None, "--json", help="Also write the result as JSON here."),
    stride: int = typer.Option(
        1, "--stride", help="Use every STRIDE-th pixel: the same windows at 1/STRIDE resolution, "
        "to see how the estimate drifts with resolution."),
    member: Optional[int] = typer.Option(
        None, "--member", help="For ensemble renders: the sign boundary of member K instead of the "
        "P(converge) = 1/2 level."),
) -> None:
    """Box-counting fractal dimension of the converge/diverge boundary.

    Boundary pixels are 2x2 neighbourhoods whose measure changes sign (or the non-zero pixels
    of a mask; for an ensemble render, the 1/2 level of P(converge)).  Reports the paper's estimator (median of local slopes over all images) and a
    least-squares fit over the scaling range with a 95% interval, and prints the per-scale counts.
    """
    import json
    import math

    from fractaltrain import dimension as dim
    from fractaltrain import dimension_inputs as inputs
    from fractaltrain import dimension_report as dio

    if stride < 1:
        raise UsageError(f"dimension: --stride must be a whole number >= 1, got {stride}")
    if not (math.isfinite(min_size) and 1 <= min_size <= 1e6):
        raise UsageError(f"--min-size: must be a number of pixels between 1 and 1000000, got {min_size}")
    plot_path, json_path = out_file(plot, "--plot"), out_file(json_out, "--json")
    if not paths or any(not p for p in paths):
        raise UsageError("dimension: expected files or folders, got an empty name")
    files = inputs.find_inputs(paths)
    if not files:
        raise UsageError(f"dimension: no .npz files in {', '.join(paths)[:200]}")
    try:
        result = dim.estimate(dim.subsample(inputs.iter_images(files, member), stride), min_size=min_size,
                              labels=inputs.labels(files))
    except (KeyError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise UsageError(f"dimension: {exc}") from None
    typer.echo(dio.format_table(result))
    if plot_path is not None:
        try:
            dio.write_loglog_png(result, plot_path)  # atomic, like every other output
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(plot_path)) from None
        typer.echo(f"wrote {plot_path}")
    if json_path is not None:
        from fractaltrain.store import atomic_write_bytes

        rec = {
            "files": [str(f) for f in files],
            "median_local_slope": result.median_local_slope,
            "fit_slope": result.fit_slope,
            "fit_ci95": [result.fit_ci_low, result.fit_ci_high],
            "n_images": result.n_images,
            "stride": stride,
        }
        atomic_write_bytes(json_path, (json.dumps(rec, indent=2) + "\n").encode())


@app.command()
@guarded
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


def main() -> None:
    """Console entry point."""
    app(prog_name="fractaltrain")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
