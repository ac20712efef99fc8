"""The zoom's two guards: the float64 floor and the noise guard.

The floor (:func:`max_depth`, :func:`check_depth`) stops a zoom where float64
can no longer tell neighbouring keyframe pixels apart; the noise guard
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
from fractaltrain.window import MIN_ULPS, min_relative_spacing
from fractaltrain.zoom.plan import ZoomPlan


def max_depth(plan: ZoomPlan, cfg: Config) -> float:
    """Deepest zoom (decades) at which keyframe pixels still differ by MIN_ULPS ulps."""
    kw, kh = plan.keyframe_size

    def ok(depth: float) -> bool:
        win = plan.window_at(10.0**depth)
        return (
            min_relative_spacing(win.x0, win.x1, kw, cfg.x.scale) >= MIN_ULPS
            and min_relative_spacing(win.y0, win.y1, kh, cfg.y.scale) >= MIN_ULPS
        )

    lo, hi = 0.0, 40.0
    if ok(hi):
        return hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def check_depth(plan: ZoomPlan, cfg: Config) -> None:
    reachable = max_depth(plan, cfg)
    if plan.depth > reachable:
        raise ConfigError(
            f"depth: float64 cannot tell neighbouring pixels apart below {reachable:.2f} decades at this "
            f"point and keyframe size {plan.keyframe_size[0]}x{plan.keyframe_size[1]}; asked for {plan.depth:g}",
            option="depth",
        )


class NoiseError(ConfigError):
    """The zoom would enter a rounding-decided region; ``reached`` is the last clean keyframe's depth."""

    def __init__(self, reached: float, message: str):
        self.reached = reached
        super().__init__(f"depth: {message}", option="depth")


def noise_rates(problem: Problem, plan: ZoomPlan, grids: list[Grid], outdir: Path, allow: bool) -> list[float]:
    """Sampled rounding-flip rate of every keyframe (:mod:`fractaltrain.search.noise`), cached in ``noise.json``.

    Raises :class:`NoiseError` at the first keyframe above ``NOISE_MAX`` unless
    ``allow``, before any keyframe is computed, so a zoom never ends in static
    without saying so.  The guard is the float64 floor's sibling: that one stops
    where pixels cannot be told apart, this one where their signs mean nothing.
    """
    path = outdir / "noise.json"
    known = noise.load_rates(path)
    kw, kh = plan.keyframe_size

    def on_rate(k: int, rate: float) -> None:
        if grids[k].key not in known:
            known[grids[k].key] = rate
            noise.save_rates(path, known)
        if not allow and rate > noise.NOISE_MAX:
            reached = math.log10(plan.keyframe_zoom(k - 1)) if k > 0 else 0.0
            raise NoiseError(reached, (
                f"keyframe {k} ({math.log10(plan.keyframe_zoom(k)):.2f} decades): {rate:.0%} of sampled pixels "
                f"change sign when the hyperparameters move by {noise.ULPS} ulps, so float64 rounding, not the "
                f"hyperparameters, decides the picture there; the zoom is resolved down to {reached:.2f} decades "
                f"at this target (zoom less deep, or pick another target)"))

    windows = [plan.keyframe_window(k) for k in range(plan.n_keyframes)]
    return noise.keyframe_flip_rates(problem, windows, kw, kh, known=known, keys=[g.key for g in grids],
                                     on_rate=on_rate)
