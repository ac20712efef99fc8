"""The ``fractaltrain`` command line: thin wrappers around the library.

One place handles every failure (:func:`~fractaltrain.cli.common.guarded` and
:class:`~fractaltrain.cli.common.OneLineErrors`): bad input of any kind (config, flags,
files, folders, a full or read-only disk, the encoder, a job too large for the machine,
and the parser's own usage errors) becomes one line ``error: ...`` on stderr naming the
thing and what is allowed, with exit code 2 and no traceback.  Ctrl-C exits 130 keeping
finished tiles (before a command starts, at once with one line ``interrupted``:
:mod:`fractaltrain.entry`).  Anything else is a bug: one line ``error: internal error ...`` and exit
code 1 (``FRACTALTRAIN_DEBUG=1`` shows the traceback).

Each subcommand is a plain function in a module of its own (``jobs`` holds assemble and
status); :mod:`fractaltrain.cli.common` holds the error layer, the flag parsers and the
options they share.  This module only builds the Typer app and registers them.
"""

from __future__ import annotations

import sys

import typer

from fractaltrain.cli import dimension, explore, jobs, locate, render, zoom
from fractaltrain.cli.common import OneLineErrors, UsageError, error_line, fail, guarded

__all__ = ["app", "main", "UsageError", "error_line", "fail", "guarded"]

app = typer.Typer(
    cls=OneLineErrors,
    add_completion=False,
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    # Help texts are plain text: rich markup would eat "[cuda]" and "[default: …]" as style tags.
    rich_markup_mode=None,
    help="Render the neural-network trainability fractal: every pixel trains a small network "
    "with its own pair of hyperparameters and is coloured by whether training converged "
    "(blue-green) or diverged (red-yellow).",
)


@app.callback()
def root() -> None:
    """Render the neural-network trainability fractal (see README.md)."""


# the order of --help and of the "commands: ..." hint
for command in (render.render, zoom.zoom, locate.locate, jobs.assemble, jobs.status, dimension.dimension,
                explore.explore):
    app.command()(command)
del command


def main() -> None:
    """Console entry point (kept for installs whose script names it): see :func:`fractaltrain.entry.main`."""
    from fractaltrain.entry import main as entry_main

    entry_main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
