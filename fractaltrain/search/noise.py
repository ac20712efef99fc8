"""Rounding-flip rates: is a pixel's sign decided by the hyperparameters or by float64 rounding?

Some parts of a landscape are chaotic: training hovers near its initial loss
for all its steps, and whether the last losses average below 1 is settled by
rounding errors, not by the hyperparameters.  Zoomed in, such a region looks
like static, and box counting sees a filled plane.  The test is cheap and
direct: train a sample of pixels a second time with both hyperparameters moved
by a few ulps (the smallest change float64 can make) and count how many change
sign.  In a resolved region almost none do, because neighbouring pixels a whole
pixel apart already agree; in a rounding-decided one a large fraction do
(independent random signs would flip ``2p(1-p)`` of them).

:func:`grid_flip_rate` is *the* rounding test of a view: ``zoom`` uses it to
stop before its keyframes reach such a region (:func:`keyframe_flip_rates`),
and ``explore`` to warn about the view on screen, so both call the same view
rounding-decided or not.  The target search (:mod:`fractaltrain.search.targets`)
applies the same move (:func:`moved_signs`) to its candidates' windows, with a
stricter limit (``FLIP_MAX_SEARCH``) and an extra shift in axis units.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fractaltrain.hashing import stable_hash
from fractaltrain.window import Window, axis_values

if TYPE_CHECKING:
    from fractaltrain.problem import Problem
    from fractaltrain.compute.store import TileStore

ULPS = 4  # how far both hyperparameters move, in ulps of their value
SAMPLE = 12  # keyframe sample: SAMPLE × SAMPLE pixels
NOISE_MAX = 0.05  # a keyframe whose sampled flip rate exceeds this is rounding-decided
FLIP_MAX_SEARCH = 0.01  # target search: stricter, so a target keeps a margin below NOISE_MAX
SEARCH_SHIFT = 1e-14  # target search: also move by this much in axis units (decades on a log10 axis)


def nudge(values: np.ndarray, ulps: int = ULPS) -> np.ndarray:
    """``values`` moved up by ``ulps`` units in the last place (exactly, by repeated nextafter)."""
    out = np.asarray(values, dtype=np.float64).copy()
    for _ in range(ulps):
        out = np.nextafter(out, np.inf)
    return out


def moved_values(values: np.ndarray, scale: str, shift: float = 0.0, ulps: int = ULPS) -> np.ndarray:
    """``values`` moved up by ``ulps`` ulps, or by ``shift`` axis units if that moves them further.

    Why both: a few ulps is the smallest move float64 can make, but whoever checks a
    target moves its window by a fixed amount of axis units (``1e-14`` decades is
    about a hundred ulps of a learning rate), and a chaotic region flips more signs
    the larger the move; the search tests the larger of the two so that what it
    accepts passes either test.
    """
    up = nudge(values, ulps)
    if not shift:
        return up
    v = np.asarray(values, dtype=np.float64)
    shifted = v * 10.0**shift if scale == "log10" else v + shift
    return np.maximum(up, shifted)


def nudge_dd(values: np.ndarray, ulps: int = ULPS) -> np.ndarray:
    """Double-double ``values`` (2, n) moved up by ``ulps`` double-double ulps (``2**-53`` of the high part's ulp)."""
    hi, lo = np.asarray(values, dtype=np.float64)
    lo = lo + ulps * np.spacing(np.abs(hi)) * 2.0**-53
    s = hi + lo
    return np.stack([s, lo - (s - hi)])


def signs_of(problem: Problem, xv: np.ndarray, yv: np.ndarray) -> np.ndarray:
    """Sign (-1, 0, 1) of the measure of every pixel (``xv[i]``, ``yv[i]``), trained on the chosen device.

    (2, n) double-double values train in double-double.
    """
    from fractaltrain.compute import device
    from fractaltrain.columns import OUT_MEASURE
    from fractaltrain.problem import pixel_hyperparams, pixel_hyperparams_dd

    if np.ndim(xv) == 2:
        hi, lo = pixel_hyperparams_dd(problem.config, xv, yv)
        return np.sign(device.run_pixels(problem, hi, lo)[:, OUT_MEASURE])
    res = device.run_pixels(problem, pixel_hyperparams(problem.config, xv, yv))
    return np.sign(res[:, OUT_MEASURE])


def moved_signs(problem: Problem, xv: np.ndarray, yv: np.ndarray, ulps: int = ULPS, shift: float = 0.0,
                store: TileStore | None = None) -> tuple[np.ndarray, bool]:
    """Signs of the pixels (``xv[i]``, ``yv[i]``) moved as :func:`moved_values` moves them.

    Returns the signs and whether they were trained now.  With a ``store`` they
    are kept as a record keyed by a hash of the problem, the pixels and the move,
    and read back (verified) the next time, so a target search resumed on its
    tile store trains nothing it trained before; the signs are the same either
    way, bit for bit.
    """
    xv = np.asarray(xv, dtype=np.float64).ravel()
    yv = np.asarray(yv, dtype=np.float64).ravel()
    key = None
    if store is not None:
        key = stable_hash("moved-signs", problem.key(), xv.tobytes(), yv.tobytes(), int(ulps), repr(float(shift)),
                          length=24)
        kept = store.load_record("moved_signs", key)
        if kept is not None and kept.shape == xv.shape and kept.dtype == np.float64:
            return kept, False
    cfg = problem.config
    signs = signs_of(problem, moved_values(xv, cfg.x.scale, shift, ulps), moved_values(yv, cfg.y.scale, shift, ulps))
    if store is not None:
        store.save_record("moved_signs", key, signs)
    return signs, True


def flip_rate(problem: Problem, xv: np.ndarray, yv: np.ndarray, signs: np.ndarray | None = None,
              ulps: int = ULPS, shift: float = 0.0) -> float:
    """Fraction of pixels (``xv[i]``, ``yv[i]``) whose sign changes when both values move ``ulps`` ulps.

    ``signs`` are the pixels' unmoved signs when already known (e.g. from a
    render); otherwise they are computed.  Values are hyperparameter values (not
    axis coordinates), so the move is the same few ulps on every axis type;
    ``shift`` > 0 moves by at least that many axis units instead (:func:`moved_values`).
    """
    xv = np.asarray(xv, dtype=np.float64).ravel()
    yv = np.asarray(yv, dtype=np.float64).ravel()
    if xv.size == 0:
        return 0.0
    if signs is None:
        signs = signs_of(problem, xv, yv)
    moved, _ = moved_signs(problem, xv, yv, ulps, shift)
    return float(np.mean(np.asarray(signs).ravel() != moved))


def sample_indices(width: int, height: int, sample: int = SAMPLE) -> tuple[np.ndarray, np.ndarray]:
    """Columns and rows of an evenly spaced ``sample`` × ``sample`` subgrid of a width × height grid."""
    ix = np.unique(np.linspace(0, width - 1, min(sample, width)).round().astype(int))
    iy = np.unique(np.linspace(0, height - 1, min(sample, height)).round().astype(int))
    return ix, iy


def grid_flip_rate(problem: Problem, xv: np.ndarray, yv: np.ndarray, measure: np.ndarray | None = None,
                   sample: int = SAMPLE) -> float:
    """The rounding test of a view: the sampled flip rate of the grid with axis values ``xv``, ``yv``.

    A ``sample`` × ``sample`` subgrid of evenly spaced pixels of the grid itself
    (so the sample is made of pixels a render of it really contains) is trained
    again with both hyperparameters moved ``ULPS`` ulps.  ``measure`` (rows = y)
    are the grid's stored values when known, so the unmoved signs are not
    trained twice; they are the same bits either way.  Above ``NOISE_MAX``,
    rounding decides the view.
    """
    xv, yv = np.asarray(xv), np.asarray(yv)
    ix, iy = sample_indices(xv.shape[-1], yv.shape[-1], sample)
    signs = None if measure is None else np.sign(np.asarray(measure)[np.ix_(iy, ix)])
    if xv.ndim == 2:  # double-double: move by ULPS double-double ulps
        gx, gy = (np.stack([g.ravel() for g in np.meshgrid(xv[k][ix], yv[k][iy])]) for k in range(2))
        gx, gy = np.stack([gx[0], gy[0]]), np.stack([gx[1], gy[1]])
        if signs is None:
            signs = signs_of(problem, gx, gy)
        moved = signs_of(problem, nudge_dd(gx), nudge_dd(gy))
        return float(np.mean(np.asarray(signs).ravel() != moved)) if gx.shape[1] else 0.0
    gx, gy = np.meshgrid(xv[ix], yv[iy])
    return flip_rate(problem, gx.ravel(), gy.ravel(), signs)


def keyframe_flip_rates(problem: Problem, windows: list[Window], width: int, height: int,
                        sample: int = SAMPLE, known: dict | None = None, keys: list[str] | None = None,
                        on_rate=None, precisions: list[str] | None = None) -> list[float]:
    """Sampled rounding-flip rate of every keyframe window (see the module docstring).

    ``known`` maps grid keys (``keys[k]`` for window ``k``) to rates already
    measured, which are reused; ``on_rate(k, rate)`` is called after each new
    measurement (to save it as it comes, or to stop early by raising).
    ``precisions[k]`` is window ``k``'s grid precision (default float64): a
    double-double keyframe is tested in double-double, moved by double-double ulps.
    """
    rates = []
    for k, win in enumerate(windows):
        key = keys[k] if keys is not None else None
        if known is not None and key is not None and key in known:
            rate = float(known[key])
        else:
            cfg = problem.config
            if precisions is not None and precisions[k] == "double-double":
                from fractaltrain.precision import axis_values_dd

                xv, yv = axis_values_dd(win, width, cfg.x.scale, 0), axis_values_dd(win, height, cfg.y.scale, 1)
            else:
                xv = axis_values(win.x0, win.x1, width, cfg.x.scale)
                yv = axis_values(win.y0, win.y1, height, cfg.y.scale)
            rate = grid_flip_rate(problem, xv, yv, sample=sample)
        rates.append(rate)
        if on_rate is not None:
            on_rate(k, rate)
    return rates


NEAR_FLOOR_ULPS = 1e6  # float64 grids whose neighbouring pixels are closer than this many ulps get the test


def settle_precision(problem: Problem, window: Window, grid, rates_path: Path | None = None):
    """``grid``, or its double-double twin where float64's rounding decides its signs (``auto`` precision).

    A float64 grid within :data:`NEAR_FLOOR_ULPS` of float64's floor is given the
    rounding test (:func:`grid_flip_rate`); above ``NOISE_MAX`` the picture would
    be rounding, so under ``auto`` it trains in double-double instead, as a
    zoom's keyframes do.  The rate is kept in ``rates_path`` (``noise.json``),
    keyed by the grid, so a rerun measures nothing twice.  ``window`` is the
    window the grid was made from (with its exact edges).
    """
    from fractaltrain.compute.landscape import make_grid
    from fractaltrain.window import min_relative_spacing

    cfg = problem.config
    if cfg.precision != "auto" or grid.double_double:
        return grid
    w = grid.window
    gap = min(min_relative_spacing(w.x0, w.x1, grid.width, cfg.x.scale),
              min_relative_spacing(w.y0, w.y1, grid.height, cfg.y.scale))
    if gap >= NEAR_FLOOR_ULPS:
        return grid
    known = load_rates(rates_path) if rates_path is not None else {}
    if grid.key in known:
        rate = float(known[grid.key])
    else:
        rate = grid_flip_rate(problem, axis_values(w.x0, w.x1, grid.width, cfg.x.scale),
                              axis_values(w.y0, w.y1, grid.height, cfg.y.scale))
        if rates_path is not None:
            known[grid.key] = rate
            save_rates(rates_path, known)
    if rate <= NOISE_MAX:
        return grid
    return make_grid(problem, window, grid.width, grid.height, grid.tile, precision="double-double")


def first_noisy(rates: list[float], limit: float | None = None) -> int | None:
    """Index of the first rate above ``limit`` (default ``NOISE_MAX``), or None."""
    limit = NOISE_MAX if limit is None else limit
    for k, r in enumerate(rates):
        if not math.isfinite(r) or r > limit:
            return k
    return None


def load_rates(path: Path) -> dict:
    """Rates measured earlier (grid key -> rate), or {} when none or unreadable."""
    try:
        from fractaltrain.compute.files import read_json

        data = read_json(Path(path))
        return {str(k): float(v) for k, v in data.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def save_rates(path: Path, rates: dict) -> None:
    """Write the rates atomically (``path`` lies directly in the output folder)."""
    from fractaltrain.compute.files import atomic_write_bytes

    atomic_write_bytes(Path(path), (json.dumps(rates, sort_keys=True, indent=1) + "\n").encode())
