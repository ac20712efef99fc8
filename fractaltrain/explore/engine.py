"""The explorer's work: images of views, one pixel's story, and the commands to go further.

Every image is a :class:`~fractaltrain.compute.store.Grid` filled tile by tile through
:func:`~fractaltrain.compute.landscape.compute_tile` and the :class:`TileStore` under
the explorer's output folder, exactly as ``render`` fills its grid.  A view at
``w × h`` pixels is therefore the same grid as ``render --window … --resolution
w×h`` with the same output folder, which then has nothing left to train, and a
view visited again is read back from disk.

Work control.  The kernel already spreads one tile over one thread per core, so
the explorer runs one tile at a time (a lock): never more kernel threads than
cores, whatever the number of open pages or requests.  Each page names itself
(``client``) and numbers its views (``view``); a request whose view is older
than the newest one seen from its page is dropped while it waits for the lock
and between tiles, and answered 409, so a page that moved on stops paying for
where it was.
"""

from __future__ import annotations

import dataclasses
import io
import math
import shlex
import threading
import time
from collections import OrderedDict, deque
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from fractaltrain.render import colour
from fractaltrain.config import Config
from fractaltrain.compute.curve import loss_curve, measure_from_curve
from fractaltrain.explore import deep
from fractaltrain.explore.params import Limits, PixelParams, RequestError, ViewParams
from fractaltrain.compute import device
from fractaltrain.columns import N_OUT, OUT_FINAL, OUT_MEASURE, OUT_PROBE, OUT_STEPS
from fractaltrain.search.noise import NOISE_MAX, ULPS, grid_flip_rate
from fractaltrain.compute.landscape import compute_tile, grid_axes, make_grid
from fractaltrain.render.outputs import readout_values
from fractaltrain.precision import DEFAULT as DEFAULT_PRECISION
from fractaltrain.problem import Problem, build_problem, pixel_hyperparams, pixel_hyperparams_dd
from fractaltrain.window import config_window, coordinate_text
from fractaltrain.compute.store import Grid, TileStore
from fractaltrain.config.hyperparams import column_names
from fractaltrain.window import Window, axis_coords
from fractaltrain.zoom.guards import max_depth
from fractaltrain.zoom.options import ZoomOptions
from fractaltrain.zoom.plan import ZoomPlan, outer_window

KEEP_CLIENTS = 256


def finite_or_none(x: float):
    """JSON has no NaN or infinity; the page shows None as 'not finite'."""
    x = float(x)
    return x if math.isfinite(x) else None


def png_bytes(rgb: np.ndarray) -> bytes:
    import imageio.v3 as iio

    buf = io.BytesIO()
    iio.imwrite(buf, rgb, extension=".png")
    return buf.getvalue()


class Explorer:
    """State of one ``explore`` session: the config, the tile store and the work control.

    Parameters
    ----------
    cfg : Config
        The experiment; views may change its steps, readout and palette only.
    config_path : str
        How the user named the config, for the commands the page offers.
    outdir : Path
        The only folder the explorer writes to (tiles under ``outdir/tiles``).
    limits : Limits
        The largest request served.
    """

    def __init__(self, cfg: Config, config_path: str, outdir: str | Path, limits: Limits = Limits()):
        self.cfg = cfg
        self.config_path = config_path
        self.outdir = Path(outdir)
        self.limits = limits
        self.store = TileStore(self.outdir / "tiles")
        self._kernel = threading.Lock()
        self._mu = threading.Lock()
        self._latest: OrderedDict[str, int] = OrderedDict()
        self._problems: OrderedDict[int, Problem] = OrderedDict()
        self.log: deque[dict] = deque(maxlen=512)  # recent view requests, newest last (tests read it)

    # ------------------------------------------------------------------ helpers
    def config_at(self, steps: int) -> Config:
        return dataclasses.replace(self.cfg, training=dataclasses.replace(self.cfg.training, steps=steps))

    def problem(self, steps: int) -> Problem:
        with self._mu:
            if steps not in self._problems:
                self._problems[steps] = build_problem(self.config_at(steps))
                while len(self._problems) > 8:
                    self._problems.popitem(last=False)
            return self._problems[steps]

    def _claim(self, client: str, view: int) -> None:
        with self._mu:
            if view < self._latest.get(client, -1):
                raise RequestError(409, "superseded by a newer view")
            self._latest[client] = view
            self._latest.move_to_end(client)
            while len(self._latest) > KEEP_CLIENTS:
                self._latest.popitem(last=False)

    def stale(self, client: str, view: int) -> bool:
        with self._mu:
            return self._latest.get(client, -1) > view

    @contextmanager
    def kernel_slot(self, p: ViewParams | None = None):
        """Hold the one kernel slot; a view that goes stale meanwhile is refused with 409."""
        while not self._kernel.acquire(timeout=0.05):
            if p is not None and self.stale(p.client, p.view):
                raise RequestError(409, "superseded by a newer view")
        try:
            if p is not None and self.stale(p.client, p.view):
                raise RequestError(409, "superseded by a newer view")
            yield
        finally:
            self._kernel.release()

    def grid(self, p: ViewParams) -> Grid:
        """The view's grid: float64 or double-double as the precision rule picks for it (``make_grid``)."""
        return make_grid(self.problem(p.steps), p.window, p.w, p.h, self.cfg.tile)

    # ------------------------------------------------------------------ the page's API
    def config_info(self) -> dict:
        """What the page needs to start: axes, the config's view, steps, readouts, palettes, limits."""
        cfg = self.cfg
        home = config_window(cfg).strings()
        return {
            "name": cfg.name,
            "description": cfg.description,
            "config_path": self.config_path,
            "x": {"param": cfg.x.param, "scale": cfg.x.scale, "range": list(cfg.x.range), "range_exact": home[:2]},
            "y": {"param": cfg.y.param, "scale": cfg.y.scale, "range": list(cfg.y.range), "range_exact": home[2:]},
            "precision": cfg.precision,
            "resolution": list(cfg.resolution),
            "steps": cfg.training.steps,
            "readout": cfg.readout,
            "readouts": list(("measure", "final_loss", "probe")),
            "palettes": list(colour.PALETTES),
            "limits": dataclasses.asdict(self.limits),
            "views": self.named_views(),
        }

    def named_views(self) -> dict[str, list[float]]:
        """The config's named views (e.g. a published panel) as windows in axis units, to jump to."""
        from fractaltrain.config import view_window

        return {name: [float(v) for v in view_window(self.cfg, name)] for name, _ in self.cfg.views}

    def view(self, p: ViewParams) -> dict:
        """Fill (or read back) the view's tiles and return its PNG and description.

        Raises RequestError(409) as soon as a newer view from the same page arrives.
        """
        t0 = time.perf_counter()
        entry = {"client": p.client, "view": p.view, "w": p.w, "h": p.h, "window": [p.x0, p.x1, p.y0, p.y1],
                 "window_exact": p.window.strings(), "final": p.final, "status": "running"}
        self.log.append(entry)
        try:
            self._claim(p.client, p.view)
            out = self._fill(p)
        except RequestError as exc:
            entry["status"] = exc.status
            raise
        entry["status"] = 200
        out["seconds"] = time.perf_counter() - t0
        return out

    def _fill(self, p: ViewParams) -> dict:
        cfg = self.config_at(p.steps)
        problem = self.problem(p.steps)
        grid = self.grid(p)
        self.store.register(grid)
        xv, yv = grid_axes(cfg, grid)
        raw = np.empty((p.h, p.w, N_OUT))
        computed = reused = 0
        for spec in grid.tiles():
            data = self.store.load(grid, spec)
            if data is None:
                with self.kernel_slot(p):
                    data = compute_tile(problem, xv, yv, spec)
                self.store.save(grid, spec, data)
                computed += 1
            else:
                reused += 1
            raw[spec.r0 : spec.r1, spec.c0 : spec.c1] = data
        values = readout_values(raw, p.readout)
        win = p.window
        warnings = deep.precision_warnings(cfg, win, p.w, p.h, grid.precision)
        noise = None
        if p.final:
            with self.kernel_slot(p):
                noise = grid_flip_rate(problem, xv, yv, raw[..., OUT_MEASURE])
            if noise > NOISE_MAX:
                warnings.append(f"rounding noise: {100 * noise:.0f}% of sampled pixels change phase when both "
                                f"hyperparameters move by {ULPS} ulps; here {grid.precision} rounding, not the "
                                "hyperparameters, decides the pattern")
        return {
            "image": "data:image/png;base64," + _b64(png_bytes(colour.to_image(values, palette=p.palette))),
            "w": p.w,
            "h": p.h,
            "window": grid.window.as_list(),
            "window_exact": win.strings(),
            "center_exact": deep.centre_strings(win),
            "half": [0.5 * win.width, 0.5 * win.height],
            "precision": grid.precision,
            "floor": {"precision": deep.floor_precision(cfg), "decades_left": finite_or_none(
                deep.decades_left(deep.float64_gap(cfg, win, p.w, p.h), deep.floor_precision(cfg)))},
            "grid_key": grid.key,
            "labels": self.labels(win),
            "converged_fraction": float(np.mean(raw[..., OUT_MEASURE] < 0)),
            "tiles_computed": computed,
            "tiles_reused": reused,
            "noise": noise,
            "warnings": warnings,
            "commands": {"render": self.render_command(p, grid), "zoom": self.zoom_command(p, *self._centre(win))},
        }

    def labels(self, win: Window) -> dict:
        """The window in the hyperparameters' own units and the zoom depth, as the video overlay prints them."""
        return deep.labels(self.cfg, win)

    @staticmethod
    def _centre(win: Window):
        """The view's centre: floats for a float window (as before), exact Fractions otherwise."""
        return win.center if win.exact is None else win.exact_center()

    def pixel(self, pp: PixelParams) -> dict:
        """One pixel of a view: hyperparameters, the kernel's values and its training curve.

        The values are the stored tile's (or the kernel's, trained now at the
        grid's precision).  The curve is retrained in float64; for a float64
        grid it reproduces the pixel's measure bit for bit
        (``curve_matches_kernel``), for a double-double grid it is float64's
        curve at the values rounded to float64, and ``curve_matches_kernel`` is
        None: nothing to compare it with.
        """
        p = pp.view
        cfg = self.config_at(p.steps)
        problem = self.problem(p.steps)
        row = p.h - 1 - pp.py  # the image has y up; grid rows are y ascending
        grid = self.grid(p)
        xs, ys = grid_axes(cfg, grid)
        dd = grid.double_double
        if dd:  # (2, n) axes: high and low parts
            hp, hp_lo = pixel_hyperparams_dd(cfg, (xs[0, [pp.px]], xs[1, [pp.px]]), (ys[0, [row]], ys[1, [row]]))
            xv, yv = xs[0, pp.px], ys[0, row]
        else:
            xv, yv = xs[pp.px], ys[row]
            hp, hp_lo = pixel_hyperparams(cfg, np.array([xv]), np.array([yv])), None
        out = self._stored_pixel(grid, row, pp.px)
        with self.kernel_slot():
            if out is None:
                out = device.run_pixels(problem, hp, hp_lo)[0]
            curve = loss_curve(problem, hp[0])
        names = column_names(problem.depth)
        win = p.window
        if win.exact is None:  # a float window: float coordinates, as before exact coordinates
            ax = ay = None
            cx, cy = float(axis_coords(p.x0, p.x1, p.w)[pp.px]), float(axis_coords(p.y0, p.y1, p.h)[row])
        else:
            x0, x1, y0, y1 = win.edges()
            ax, ay = deep.pixel_coordinate(x0, x1, p.w, pp.px), deep.pixel_coordinate(y0, y1, p.h, row)
            cx, cy = ax, ay
        from_curve = measure_from_curve(curve)
        r = {
            "axis": {"x": float(cx), "y": float(cy)},
            "x": {"param": cfg.x.param, "value": float(xv)},
            "y": {"param": cfg.y.param, "value": float(yv)},
            "hyperparameters": [[n, float(v)] for n, v in zip(names, hp[0])],
            "precision": grid.precision,
            "readout": p.readout,
            "value": finite_or_none(out[{"measure": OUT_MEASURE, "final_loss": OUT_FINAL, "probe": OUT_PROBE}[p.readout]]),
            "measure": finite_or_none(out[OUT_MEASURE]),
            "final_loss": finite_or_none(out[OUT_FINAL]),
            "probe": finite_or_none(out[OUT_PROBE]),
            "steps_trained": int(out[OUT_STEPS]),
            "converged": bool(out[OUT_MEASURE] < 0),
            "curve": [finite_or_none(v) for v in curve.v],
            "curve_precision": "float64",
            "curve_measure": finite_or_none(from_curve),
            "diverged_at": curve.diverged_at,
            "curve_matches_kernel": None if dd else bool(from_curve == out[OUT_MEASURE]),
            "commands": {"zoom": self.zoom_command(p, cx, cy)},
        }
        if ax is not None:
            r["axis_exact"] = {"x": coordinate_text(ax), "y": coordinate_text(ay)}
        if dd:
            r["x"]["exact"] = deep.dd_text(xs[0, pp.px], xs[1, pp.px])
            r["y"]["exact"] = deep.dd_text(ys[0, row], ys[1, row])
            r["hyperparameters_exact"] = [[n, deep.dd_text(h, lo)] for n, h, lo in zip(names, hp[0], hp_lo[0])]
        return r

    def _stored_pixel(self, grid: Grid, row: int, col: int):
        """The pixel's kernel results from the store if its tile is there (no training)."""
        for spec in grid.tiles():
            if spec.r0 <= row < spec.r1 and spec.c0 <= col < spec.c1:
                data = self.store.load(grid, spec)
                return None if data is None else data[row - spec.r0, col - spec.c0]
        return None

    # ------------------------------------------------------------------ commands
    def _common_flags(self, p: ViewParams) -> list[str]:
        flags = []
        if p.steps != self.cfg.training.steps:
            flags.append(f"--steps {p.steps}")
        if p.palette != "spectral":
            flags.append(f"--palette {p.palette}")
        if self.outdir != Path("out"):
            flags.append(f"--out {shlex.quote(str(self.outdir))}")
        return flags

    def render_command(self, p: ViewParams, grid: Grid | None = None) -> str:
        """``fractaltrain render`` of exactly this grid: same window (exact decimals), size, precision, tiles folder.

        A double-double view, or any view when the explorer runs at a precision
        other than ``auto``, names its precision, so the command trains (or finds)
        the very grid the page showed.
        """
        grid = grid or self.grid(p)
        flags = [f"--window={','.join(p.window.strings())}", f"--resolution {p.w}x{p.h}", *self._common_flags(p)]
        if grid.double_double or self.cfg.precision != DEFAULT_PRECISION:
            flags.append(f"--precision {grid.precision}")
        cmd = f"fractaltrain render {shlex.quote(self.config_path)} " + " ".join(flags)
        if p.readout != self.cfg.readout:
            cmd += f"\n# the PNG shows the config's readout ({self.cfg.readout}); the .npz holds {p.readout} too"
        return cmd

    def zoom_command(self, p: ViewParams, cx, cy) -> str:
        """``fractaltrain zoom`` into (cx, cy) down to this view's width, capped at the precision's floor.

        ``cx``, ``cy`` are floats (written as ``repr``) or exact Fractions (written as exact decimals).
        """
        size = ZoomOptions().size
        outer = outer_window(config_window(self.cfg), self.cfg.resolution, size)
        where = f"{coordinate_text(cx)},{coordinate_text(cy)}"
        if not (outer.x0 <= cx <= outer.x1 and outer.y0 <= cy <= outer.y1):
            return f"# ({where}) lies outside the config's view, where a zoom starts"
        depth = round(math.log10(outer.width / p.window.width), 2)
        if depth < 1:  # this view is barely zoomed: offer zoom's default depth instead
            depth = 10.0
        note = ""
        reachable = max_depth(ZoomPlan(outer, (cx, cy), min(depth, 40.0), 300, size), self.config_at(p.steps))
        if depth > reachable:
            depth = math.floor(reachable * 100) / 100
            note = f"\n# depth capped at the {deep.floor_precision(self.cfg)} floor for a 1280x720 video"
        if depth > 40:
            depth, note = 40.0, "\n# depth capped at 40 decades"
        flags = [f"--center={where}", f"--depth {depth:g}", *self._common_flags(p)]
        if self.cfg.precision != DEFAULT_PRECISION:
            flags.append(f"--precision {self.cfg.precision}")
        return f"fractaltrain zoom {shlex.quote(self.config_path)} " + " ".join(flags) + note


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")
