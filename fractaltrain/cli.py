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
    if text == "slurm":
        import os

        try:
            k = int(os.environ["SLURM_ARRAY_TASK_ID"])
            n = int(os.environ["SLURM_ARRAY_TASK_COUNT"])
            lo = int(os.environ.get("SLURM_ARRAY_TASK_MIN", "0"))
        except (KeyError, ValueError):
            raise UsageError("--shard slurm: SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT must be set") from None
        k -= lo
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
    None, "--shard", help="Compute only task K of N's tiles (K/N, 0-based) or read them from SLURM ('slurm')."
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
    window: Optional[str] = typer.Option(None, "--window", help="X0,X1,Y0,Y1 in axis units (decades for log10)."),
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


def main() -> None:
    """Console entry point."""
    app(prog_name="fractaltrain")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
