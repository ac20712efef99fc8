"""``fractaltrain explore``: the local web page to pan and zoom into a config."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from fractaltrain.cli.common import (
    PRECISION_OPT,
    CONFIG_ARG,
    DEVICE_OPT,
    OUT_OPT,
    THREADS_OPT,
    UsageError,
    set_device,
    guarded,
    out_folder,
    set_threads,
)
from fractaltrain.config import load_config, with_overrides


def tiles_folder(out: str) -> Path:
    """``OUT/tiles``, created and checked writable before the server starts.

    Every view the page asks for writes tiles there, so an ``--out`` that is a
    file, cannot be created or is read-only is refused now, in one line, rather
    than answered 500 on every request after the page has opened.  The check
    creates the folders (which the first view would) and a nameless temporary
    file (``O_TMPFILE`` where available), so it leaves nothing else behind and
    works for root on read-only file systems, where ``os.access`` would not.
    """
    import tempfile

    from fractaltrain.compute.files import folder_inside
    from fractaltrain.errors import OutputError

    outdir = out_folder(out)
    tiles = outdir / "tiles"
    try:
        folder_inside(outdir, tiles)  # the tile store's own check: no link followed out of --out
        with tempfile.TemporaryFile(dir=tiles):
            pass
    except OutputError as exc:
        raise UsageError(f"--out: {exc}") from None
    except OSError as exc:
        raise UsageError(f"--out: cannot write tiles into {tiles}: {exc.strerror or exc}; choose a folder you can "
                         "write to") from None
    return tiles


@guarded
def explore(
    config: str = CONFIG_ARG,
    out: str = OUT_OPT,
    port: int = typer.Option(8765, "--port", help="Port to listen on (0 = any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; anything but loopback exposes it."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser, just print the address."),
    max_pixels: Optional[int] = typer.Option(
        None, "--max-pixels", help="Refuse views larger than this many pixels (default 1048576)."),
    threads: Optional[int] = THREADS_OPT,
    device: Optional[str] = DEVICE_OPT,
    precision: Optional[str] = PRECISION_OPT,
    verbose: bool = typer.Option(False, "--verbose", help="Log every request on stderr."),
) -> None:
    """Serve a local web page to pan and zoom into CONFIG, inspect pixels and copy render/zoom commands.

    Views are computed through the tile store in OUT/tiles, so a later render or zoom with the
    same --out reuses them.  Stop with Ctrl-C.
    """

    from fractaltrain.explore.engine import Explorer
    from fractaltrain.explore.params import Limits
    from fractaltrain.explore.server import make_server

    cfg = with_overrides(load_config(config), precision=precision)
    out_folder(out)  # the checks that write nothing first; tiles_folder below, once every flag is valid
    if not 0 <= port <= 65535:
        raise UsageError(f"--port: must be between 0 and 65535, got {port}")
    if max_pixels is not None and max_pixels < 1:
        raise UsageError(f"--max-pixels: must be >= 1, got {max_pixels}")
    set_threads(threads)
    set_device(device)
    explorer = Explorer(cfg, config, out, Limits() if max_pixels is None else Limits(max_pixels=max_pixels))
    try:
        server = make_server(explorer, host, port, verbose=verbose)
    except OSError as exc:
        raise UsageError(f"--host/--port: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        tiles_folder(out)
    except UsageError:
        server.server_close()
        raise
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
