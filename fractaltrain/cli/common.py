"""What every subcommand shares: the error layer, flag parsers and the common options.

One place handles every failure (:func:`guarded`, and :class:`OneLineErrors` for the
parser's own usage errors): bad input of any kind becomes one line ``error: ...`` on
stderr with exit code 2; anything else is a bug, reported as ``error: internal error ...``
with exit code 1.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperGroup

from fractaltrain.config import ConfigError
from fractaltrain.entry import interruptible, note_interrupted
from fractaltrain.errors import InputError, describe_os_error, one_line

try:  # typer >= 0.20 ships its own copy of click
    from typer import _click as click
except ImportError:  # pragma: no cover - older typer
    import click

# library option keys (InputError.option) -> the flag the user typed
FLAGS = {
    "resolution": "--resolution", "steps": "--steps", "window": "--window", "depth": "--depth",
    "center": "--center", "recolor": "--recolor", "size": "--size", "device": "--device",
    "ensemble": "--ensemble", "member": "--member", "frames": "--frames", "fps": "--fps",
    "factor": "--keyframe-factor", "crf": "--crf", "codec": "--codec", "preset": "--preset", "palette": "--palette",
    "seed": "--seed", "frame_range": "--frame-range", "precision": "--precision",
}


class UsageError(Exception):
    """Bad input found by the CLI itself (flag values)."""


def error_line(exc: BaseException) -> str:
    """The one line shown for an expected failure."""
    from fractaltrain.compute.jobs import IncompleteError
    from fractaltrain.compute.files import DamagedFile

    if isinstance(exc, OSError):
        if _from_stdout(exc):
            # no file name and the --out hint would blame an output file, which was written fine
            return f"could not write to standard output: {exc.strerror or exc}"
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


def _from_stdout(exc: OSError) -> bool:
    """Whether ``exc`` was raised writing to standard output (redirected to a full disk, a closed pipe).

    Such an error carries no file name, so it would read as if an output file had failed;
    it is recognised by where it was raised: inside ``echo`` writing to standard output.
    """
    if exc.filename is not None:
        return False
    tb, frame = exc.__traceback__, None
    while tb is not None:
        frame, tb = tb.tb_frame, tb.tb_next
    if frame is None or frame.f_code.co_name != "echo":
        return False
    stream = frame.f_locals.get("file")
    if stream is None:
        return False
    if stream is sys.stdout or stream is sys.__stdout__:
        return True
    try:
        return stream.fileno() == 1
    except (OSError, ValueError, AttributeError):
        return False


def fail(message: str, code: int = 2):
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(code)


def guarded(fn):
    """Run a command body, turning every expected failure into one line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from fractaltrain.compute.jobs import IncompleteError
        from fractaltrain.compute.files import DamagedFile

        try:
            with interruptible():  # Ctrl-C raises here, so partial files are cleaned up on the way out
                return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.exceptions.ClickException):
            raise
        except KeyboardInterrupt:
            note_interrupted()
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
        except typer.Abort as exc:
            if isinstance(exc.__context__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
                typer.echo("interrupted", err=True)
                rv = 130
            else:
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


def set_threads(threads: Optional[int]) -> None:
    if threads is None:
        return
    import numba

    if threads < 1 or threads > numba.config.NUMBA_NUM_THREADS:
        raise UsageError(f"--threads: must be between 1 and {numba.config.NUMBA_NUM_THREADS}, got {threads}")
    numba.set_num_threads(threads)


def set_device(name: Optional[str]) -> None:
    from fractaltrain.compute.device import select

    select(name)


def parse_shard(text: Optional[str]):
    """``K/N`` (0-based K), or ``slurm`` to read SLURM_ARRAY_TASK_ID / _COUNT."""
    from fractaltrain.compute.landscape import Shard

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
    from fractaltrain.compute.jobs import MAX_SHARDS

    if n > MAX_SHARDS:
        raise UsageError(f"--shard: at most {MAX_SHARDS} tasks, got {n}")
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
QUIET_OPT = typer.Option(False, "--quiet", "-q", help="No plan, no progress bar.")
DRY_RUN_OPT = typer.Option(False, "--dry-run", help="Print the plan (pixels, pixel-steps, what the tile store "
                           "holds, disk, the time on this machine from a short calibration) and exit.")
JSON_OPT = typer.Option(False, "--json", help="With --dry-run: the plan as one JSON object.")
THREADS_OPT = typer.Option(None, "--threads", help="Kernel threads (default: all cores).")
PRECISION_OPT = typer.Option(
    None, "--precision", help="auto | float64 | double-double: how pixels are trained (default: the config's "
    "precision, else auto: float64 where it tells neighbouring pixels apart, double-double below; docs/deep.md).")
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
    from fractaltrain.zoom.options import check_palette as check

    return check(palette)


def shard_line(sh, progress) -> str:
    return (f"shard {sh.index}/{sh.count}: {progress.tiles_computed} tiles computed, "
            f"{progress.tiles_reused} already done")


def show_plan(plan, dry_run: bool, as_json: bool) -> None:
    """The plan before any work, on stdout (stderr keeps the progress bars and the one line of an error)."""
    import json

    if as_json and not dry_run:
        raise UsageError("--json: only with --dry-run (a run prints its plan as text)")
    if as_json:
        typer.echo(json.dumps(plan.to_dict()))
        return
    for line in plan.lines():
        typer.echo(line)


def time_line(parts: dict) -> str:
    """The last line of a run: where the time went (phases of under 0.05 s left out)."""
    shown = [f"{name} {seconds:.1f} s" for name, seconds in parts.items() if seconds >= 0.05]
    return "time: " + (", ".join(shown) if shown else "under 0.1 s")


def wrote(paths) -> str:
    return "wrote " + ", ".join(str(p) for p in paths if p is not None)


# checks that zoom and locate share; the limits are job_options', which job manifests are held to too


def check_depth_flag(depth: float) -> None:
    from fractaltrain.zoom.options import check_depth

    check_depth(depth)


def check_seed(seed: int) -> None:
    from fractaltrain.zoom.options import check_seed as check

    check(seed)


def parse_size(size: str) -> tuple[int, int]:
    """``--size WIDTHxHEIGHT``, with the config parser's message under the flag's name."""
    from fractaltrain.config import parse_resolution

    try:
        return parse_resolution(size, "size")
    except ConfigError as exc:
        raise UsageError("--size" + str(exc)[len("size"):]) from None
