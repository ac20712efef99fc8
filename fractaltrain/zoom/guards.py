"""The zoom's two guards: the precision's floor and the noise guard.

The floor (:func:`max_depth`, :func:`check_depth`) stops a zoom where the
working precision (float64, or double-double below float64's floor) can no
longer tell neighbouring keyframe pixels apart; the noise guard
(:func:`noise_rates`) stops it, before any keyframe is computed, where the
pixels' signs are decided by rounding rather than by the hyperparameters
(:func:`fractaltrain.search.noise.grid_flip_rate`, the one rounding test).
"""

from __future__ import annotations

import math
from pathlib import Path

from fractaltrain.compute.store import Grid
from fractaltrain.config import Config, ConfigError
from fractaltrain.problem import Problem
from fractaltrain.search import noise
from fractaltrain.precision import FLOAT64, PrecisionError
from fractaltrain.precision import resolve as resolve_precision
from fractaltrain.zoom.plan import ZoomPlan


DEEPEST = 80.0  # decades: past anything double-double resolves from any opening view


def max_depth(plan: ZoomPlan, cfg: Config, precision: str | None = None) -> float:
    """Deepest zoom (decades) at which keyframe pixels still differ by MIN_ULPS ulps of the precision.

    ``precision`` defaults to the config's; ``auto`` reaches as deep as
    double-double does (:func:`fractaltrain.precision.resolve`).  Bisection to
    about 1e-6 decades.
    """
    kw, kh = plan.keyframe_size
    chosen = precision or cfg.precision
    scales = (cfg.x.scale, cfg.y.scale)

    def ok(depth: float) -> bool:
        try:
            resolve_precision(chosen, plan.window_at(10.0**depth), kw, kh, scales)
        except PrecisionError:
            return False
        return True

    lo, hi = 0.0, DEEPEST
    if ok(hi):
        return hi
    for _ in range(27):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def check_depth(plan: ZoomPlan, cfg: Config) -> None:
    reachable = max_depth(plan, cfg)
    if plan.depth > reachable:
        which = "float64" if cfg.precision == FLOAT64 else "double-double"
        hint = "" if which == "double-double" else "; use precision double-double (or auto) to go deeper"
        raise ConfigError(
            f"depth: {which} cannot tell neighbouring pixels apart below {reachable:.2f} decades at this "
            f"point and keyframe size {plan.keyframe_size[0]}x{plan.keyframe_size[1]}; asked for {plan.depth:g}{hint}",
            option="depth",
        )


class NoiseError(ConfigError):
    """The zoom would enter a rounding-decided region; ``reached`` is the last clean keyframe's depth."""

    def __init__(self, reached: float, message: str):
        self.reached = reached
        super().__init__(f"depth: {message}", option="depth")


def noise_rates(problem: Problem, plan: ZoomPlan, grids: list[Grid], outdir: Path, allow: bool,
                retrain_dd=None, bar=None) -> list[float]:
    """Sampled rounding-flip rate of every keyframe (:mod:`fractaltrain.search.noise`), cached in ``noise.json``.

    Raises :class:`NoiseError` at the first keyframe above ``NOISE_MAX`` unless
    ``allow``, before any keyframe is computed, so a zoom never ends in static
    without saying so.  The guard is the precision floor's sibling: that one stops
    where pixels cannot be told apart, this one where their signs mean nothing.

    ``retrain_dd(k)``, when given, is called at the first float64 keyframe found
    rounding-decided; it returns keyframe ``k``'s double-double grid (or None
    when there is none) and the list ``grids`` is changed in place from ``k`` on
    (the caller's ``auto`` precision: double-double where float64's rounding
    decides the signs), and the test continues in double-double.  ``bar`` (a
    tqdm-like object) advances by one per keyframe tested or found in the cache.
    """
    path = outdir / "noise.json"
    known = noise.load_rates(path)
    kw, kh = plan.keyframe_size
    rates: list[float] = []

    def measure(k: int) -> float:
        g = grids[k]
        if g.key in known:
            return float(known[g.key])
        rate = noise.keyframe_flip_rates(problem, [g.window], kw, kh, precisions=[g.precision])[0]
        known[g.key] = rate
        noise.save_rates(path, known)
        return rate

    for k in range(plan.n_keyframes):
        rate = measure(k)
        if rate > noise.NOISE_MAX and retrain_dd is not None and not grids[k].double_double:
            upgraded = retrain_dd(k)
            if upgraded is not None:
                grids[k:] = upgraded[k:]
                rate = measure(k)
        if not allow and rate > noise.NOISE_MAX:
            reached = math.log10(plan.keyframe_zoom(k - 1)) if k > 0 else 0.0
            raise NoiseError(reached, (
                f"keyframe {k} ({math.log10(plan.keyframe_zoom(k)):.2f} decades): {rate:.0%} of sampled pixels "
                f"change sign when the hyperparameters move by {noise.ULPS} ulps, so {grids[k].precision} rounding, "
                f"not the hyperparameters, decides the picture there; the zoom is resolved down to {reached:.2f} "
                f"decades at this target (zoom less deep, or pick another target)"))
        rates.append(rate)
        if bar is not None:
            bar.update(1)
    return rates
