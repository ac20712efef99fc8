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
from fractaltrain.config.hyperparams import HP_DRIFT, HP_OFFSET, HP_OPT, HP_SCALE
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
    opt = problem.config.training.optimizer.name
    sched = problem.config.training.schedule.name
    settings = hp[depth + HP_OPT :]  # momentum, beta1, beta2, eps, weight_decay, warmup_steps, final_fraction
    state = _State([np.zeros_like(w) for w in weights], [np.zeros_like(w) for w in weights], 1.0, 1.0)
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
        rates = lrs if sched == "constant" else [lr * _factor(sched, t, steps, settings) for lr in lrs]
        if opt == "sgd":
            weights = [w - lr * g for w, lr, g in zip(weights, rates, grads)]
        else:
            weights = _step(opt, settings, weights, grads, rates, state)
    return Curve(v, None)


def _factor(sched: str, t: int, steps: int, settings: np.ndarray) -> float:
    """The schedule's factor at step ``t``, in kernel/optimizers.py's operations (the same bits)."""
    W, a, tt, T = float(settings[5]), float(settings[6]), float(t), float(steps)

    def warmup(x: float) -> float:
        return (0.0 - 1.0) * (1.0 - min(max(x, 0.0), W) / W) + 1.0 if W > 0.0 else 1.0

    def cosine(x: float, span: float) -> float:
        return ((1.0 - a) * (0.5 * (1.0 + math.cos(math.pi * min(x, span) / span))) + a) * 1.0

    if sched == "warmup":
        return warmup(tt)
    if sched == "cosine":
        return cosine(tt, T)
    return warmup(tt) if tt < W else cosine(tt - W, T - W)


@dataclass
class _State:
    """An optimizer's state between steps: velocity or moments per layer, and Adam's running β powers."""

    s1: list
    s2: list
    pw1: float
    pw2: float


def _step(opt: str, settings: np.ndarray, weights: list, grads: list, lrs: np.ndarray, state: _State) -> list:
    """One step of ``opt``, in the kernel's operations and order (kernel/optimizers.py), so the bits agree."""
    mom, b1, b2, eps, wd = (float(x) for x in settings[:5])
    if opt in ("adam", "adamw"):
        state.pw1 *= b1
        state.pw2 *= b2
    out = []
    for k, (w, g, lr) in enumerate(zip(weights, grads, lrs)):
        if opt in ("momentum", "nesterov"):
            vel = g + mom * state.s1[k]
            state.s1[k] = vel
            out.append(w - lr * (vel if opt == "momentum" else g + mom * vel))
            continue
        m = b1 * state.s1[k] + (1.0 - b1) * g
        sq = b2 * state.s2[k] + (1.0 - b2) * (g * g)
        state.s1[k], state.s2[k] = m, sq
        u = (m / (1.0 - state.pw1)) / (np.sqrt(sq / (1.0 - state.pw2)) + eps)
        if opt == "adamw":
            u = u + wd * w
        out.append(w - lr * u)
    return out


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
