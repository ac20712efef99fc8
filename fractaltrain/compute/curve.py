"""The training curve of one pixel: normalised loss against step.

The tile kernel returns only a pixel's summary (measure, final loss, probe,
steps trained), because storing every step of every pixel would multiply the
tile store by the number of steps.  When the explorer is asked about one pixel,
it trains that pixel once more here, step by step, through the kernel's own
:func:`~fractaltrain.compute.kernel.loss_and_grad` (the same compiled loss and gradient
code, in the same operation order), and applies the steepest-descent update
exactly as the kernel writes it.  The curve therefore reproduces the kernel's
value bit for bit, which :func:`measure_from_curve` lets the tests (and the
page) check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fractaltrain.compute.kernel import loss_and_grad
from fractaltrain.columns import MAXV, TAIL
from fractaltrain.config.hyperparams import HP_DRIFT, HP_OFFSET, HP_SCALE
from fractaltrain.problem import Problem


@dataclass(frozen=True)
class Curve:
    """Normalised losses of one pixel.

    Attributes
    ----------
    v : (steps,) float64
        ``min(l_t / l_0, 1e6)`` for every step, with a non-finite loss counted as
        1e6 (the kernel's convention).  Steps after divergence repeat the value
        at divergence, as the kernel adds them.
    diverged_at : int or None
        The first step whose loss was not finite (training stops there), or None.
    """

    v: np.ndarray
    diverged_at: int | None


def loss_curve(problem: Problem, hp_row: np.ndarray) -> Curve:
    """Train one pixel with hyperparameters ``hp_row`` (one row of the kernel's table).

    Parameters
    ----------
    problem : Problem
        Weights, data and steps, as for the tile kernel.
    hp_row : (depth + 3,) array
        Learning rate per layer, then per-step input-layer drift, initial
        input-layer offset and init scale (see
        :func:`fractaltrain.problem.pixel_hyperparams`).

    Returns
    -------
    Curve
    """
    depth = problem.depth
    hp = np.asarray(hp_row, dtype=np.float64)
    lrs = hp[:depth]
    drift, offset, scale = hp[depth + HP_DRIFT], hp[depth + HP_OFFSET], hp[depth + HP_SCALE]
    weights = [scale * w for w in problem.weights]
    weights[0] = weights[0] + offset
    steps = problem.config.training.steps
    v = np.empty(steps)
    l0 = None
    for t in range(steps):
        weights[0] = weights[0] + drift
        loss, grads = loss_and_grad(problem, weights, step=t)
        finite = math.isfinite(loss)
        lt = loss if finite else MAXV
        if l0 is None:
            l0 = lt
        v[t] = min(lt / l0, MAXV)
        if not finite:
            v[t + 1 :] = v[t]
            return Curve(v, t)
        weights = [w - lr * g for w, lr, g in zip(weights, lrs, grads)]
    return Curve(v, None)


def measure_from_curve(curve: Curve) -> float:
    """The paper's convergence measure from a curve, summed in the kernel's order.

    Converged (mean of the last ``TAIL`` normalised losses below 1) gives
    ``-Σ v_t``; diverged gives ``Σ 1/v_t``.
    """
    s_v = 0.0
    s_inv = 0.0
    for x in curve.v:
        s_v += float(x)
        s_inv += 1.0 / float(x)
    k = min(TAIL, len(curve.v))
    tsum = 0.0
    for x in curve.v[len(curve.v) - k :]:
        tsum += float(x)
    return -s_v if tsum / k < 1.0 else s_inv
