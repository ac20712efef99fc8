"""The explorer's HTTP server: the page, its two assets and a small JSON view API.

Standard library only (``http.server.ThreadingHTTPServer``): the API is three
GET endpoints with query parameters, which a routing table of a few lines
covers; a web framework would add a dependency without removing code.

Routes are an exact-match table, so no part of a request path ever reaches
the file system: the assets are read once from the package at start-up, and
anything else (``/../``, ``/%2e%2e/``, ``/static/x``, absolute URLs) is 404.
When listening on a loopback address, requests whose ``Host`` header names
another host are refused (403), which defeats DNS rebinding: a web page from
elsewhere cannot make the browser talk to the explorer under its own origin.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import os
import socket
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from fractaltrain.errors import InputError, describe_os_error, one_line
from fractaltrain.explore.engine import Explorer
from fractaltrain.explore.params import (
    PIXEL_KEYS,
    VIEW_KEYS,
    RequestError,
    parse_pixel,
    parse_view,
    single_values,
)

ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/explore.js": ("explore.js", "text/javascript; charset=utf-8"),
    "/explore.css": ("explore.css", "text/css; charset=utf-8"),
}
# The page loads nothing from elsewhere (no CDN): say so to the browser as well.
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'"


def load_assets() -> dict[str, tuple[bytes, str]]:
    """Route → (bytes, content type), read from the package's ``static`` folder."""
    folder = resources.files("fractaltrain.explore").joinpath("static")
    return {route: (folder.joinpath(name).read_bytes(), ctype) for route, (name, ctype) in ASSETS.items()}


class ExploreServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that carries the explorer and the assets its handlers use."""

    daemon_threads = True

    def __init__(self, address, explorer: Explorer, verbose: bool = False):
        self.explorer = explorer
        self.assets = load_assets()
        self.verbose = verbose
        super().__init__(address, Handler)
        host, port = self.server_address[:2]
        self.url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        self.allowed_hosts = (
            {f"{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]")} | {"127.0.0.1", "localhost", "[::1]"}
            if loopback else None
        )


class Handler(BaseHTTPRequestHandler):
    """Serves the routes of :data:`ASSETS` and ``/api/{config,view,pixel}``; GET only."""

    server: ExploreServer
    server_version = "fractaltrain-explore"

    def log_message(self, format, *args):  # noqa: A002 (signature of the base class)
        if self.server.verbose:
            super().log_message(format, *args)

    def send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, obj) -> None:
        self.send(status, json.dumps(obj, allow_nan=False).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        """Answer one request; every failure is a status and a one-line JSON message, never a traceback.

        A failure of the tile store (a disk that filled up or turned read-only, a
        tile path that is a folder) is the machine's, not the request's: 507 or
        500 with what went wrong, and one line on stderr for whoever runs the
        server.  Anything else is a bug: 500 and one line (the traceback only
        with ``FRACTALTRAIN_DEBUG=1``), and the server keeps serving.
        """
        try:
            self.route()
        except RequestError as exc:
            self.send_json(exc.status, {"error": exc.message})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the page went away (an aborted fetch); nothing to answer
        except OSError as exc:
            status = 507 if exc.errno in (errno.ENOSPC, errno.EDQUOT) else 500
            self.fail(status, f"cannot store tiles: {one_line(describe_os_error(exc), 300)}")
        except InputError as exc:  # the library refused the request's values
            self.fail(400, one_line(str(exc), 300))
        except Exception as exc:  # a bug: answer 500 and keep serving
            if os.environ.get("FRACTALTRAIN_DEBUG"):
                traceback.print_exc(file=sys.stderr)
            self.fail(500, f"internal error ({type(exc).__name__}: {one_line(str(exc), 200)}); this is a bug, "
                      "please report it (FRACTALTRAIN_DEBUG=1 shows the traceback)")

    def fail(self, status: int, message: str) -> None:
        """Answer ``status`` with ``message`` and say it on stderr once, in one line."""
        path = "".join(c if c.isprintable() else "?" for c in self.path[:200])  # no terminal escapes
        print(f"error: {self.command} {path}: {message}", file=sys.stderr, flush=True)
        with contextlib.suppress(OSError):  # the page may have gone away meanwhile
            self.send_json(status, {"error": message})

    def route(self) -> None:
        if not self.path.startswith("/"):
            raise RequestError(404, "not found")
        hosts = self.headers.get_all("Host") or []
        if len(hosts) > 1:  # which one would a proxy or the browser have meant? (RFC 9112: answer 400)
            raise RequestError(400, "more than one Host header")
        allowed = self.server.allowed_hosts
        if allowed is not None and (hosts[0] if hosts else "") not in allowed:
            raise RequestError(403, "unexpected Host header")
        parts = urlsplit(self.path)
        path = parts.path
        if path in self.server.assets:
            body, ctype = self.server.assets[path]
            self.send(200, body, ctype)
            return
        if not path.startswith("/api/") or path not in ("/api/config", "/api/view", "/api/pixel"):
            raise RequestError(404, "not found")
        try:
            query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query),
                             max_num_fields=len(PIXEL_KEYS) + 2)
        except ValueError:
            raise RequestError(400, "malformed query string") from None
        ex = self.server.explorer
        if path == "/api/config":
            single_values(query, ())
            self.send_json(200, ex.config_info())
        elif path == "/api/view":
            self.send_json(200, ex.view(parse_view(single_values(query, VIEW_KEYS), ex.cfg, ex.limits)))
        else:
            self.send_json(200, ex.pixel(parse_pixel(single_values(query, PIXEL_KEYS), ex.cfg, ex.limits)))


class ExploreServer6(ExploreServer):
    address_family = socket.AF_INET6


def make_server(explorer: Explorer, host: str = "127.0.0.1", port: int = 8765, verbose: bool = False) -> ExploreServer:
    """Bind (port 0 picks a free one) without serving yet; raises OSError if the address is unusable."""
    cls = ExploreServer6 if ":" in host else ExploreServer
    return cls((host, port), explorer, verbose=verbose)
