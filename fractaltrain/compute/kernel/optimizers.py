"""The update step of the optimizers other than sgd, and the schedules' factor, for one block of LANES pixels.

sgd keeps its own loop in block.py, bit for bit the paper's steepest descent.
The others follow optax's rules (:mod:`fractaltrain.config.optimizer`), each
in its own loops with the pixel index innermost so they vectorise; every
product and sum rounds as written.  Per-lane settings (they may be an axis)
come as ``settings[k * LANES + p]`` in ``OPT_PARAMS`` order: momentum, beta1,
beta2, eps, weight_decay.  Adam's bias corrections ``1 − β^t`` use running
powers ``pw1``, ``pw2`` (``β^t`` as ``t`` products), updated here once a step.
"""

from __future__ import annotations

import math

import numba as nb

from fractaltrain.compute.kernel.cache import JIT
from fractaltrain.compute.kernel.ir import LANES

MOMENTUM, NESTEROV, ADAM, ADAMW = 1, 2, 3, 4  # fractaltrain.config.optimizer.OPT_CODE


@nb.njit(**JIT)
def optimizer_step(opt, W, G, gs, S1, S2, pw1, pw2, lr, settings, depth, woff, fi, fo):
    """One step of optimizer ``opt`` for every weight of the block: ``W -= lr_l · update``.

    ``G`` is the unscaled gradient (the step's gradient is ``G · gs``, as for
    sgd); ``S1``/``S2`` the optimizer's state (velocity; or first and second
    moments), zero before the first step; ``pw1``/``pw2`` (LANES) hold
    ``β1^(t-1)``, ``β2^(t-1)`` on entry at step ``t`` (1 before the first).
    """
    L = LANES
    if opt == ADAM or opt == ADAMW:
        for p in range(L):
            pw1[p] *= settings[1 * L + p]
            pw2[p] *= settings[2 * L + p]
    for l in range(depth):
        for q in range(woff[l], woff[l] + fi[l] * fo[l]):
            b = q * L
            if opt == MOMENTUM:
                for p in range(L):
                    v = G[b + p] * gs + settings[p] * S1[b + p]
                    S1[b + p] = v
                    W[b + p] -= lr[l * L + p] * v
            elif opt == NESTEROV:
                for p in range(L):
                    g = G[b + p] * gs
                    v = g + settings[p] * S1[b + p]
                    S1[b + p] = v
                    W[b + p] -= lr[l * L + p] * (g + settings[p] * v)
            else:
                for p in range(L):
                    g = G[b + p] * gs
                    b1 = settings[1 * L + p]
                    b2 = settings[2 * L + p]
                    m = b1 * S1[b + p] + (1.0 - b1) * g
                    v = b2 * S2[b + p] + (1.0 - b2) * (g * g)
                    S1[b + p] = m
                    S2[b + p] = v
                    u = (m / (1.0 - pw1[p])) / (math.sqrt(v / (1.0 - pw2[p])) + settings[3 * L + p])
                    if opt == ADAMW:
                        u = u + settings[4 * L + p] * W[b + p]
                    W[b + p] -= lr[l * L + p] * u


CONSTANT, WARMUP, COSINE, WARMUP_COSINE = 0, 1, 2, 3  # fractaltrain.config.schedule.SCHEDULE_CODE


@nb.njit(inline="always", cache=False)
def _warmup(t, W):
    """optax.linear_schedule(0, 1, W) at count t, in its operations; 1 throughout for W = 0."""
    if W > 0.0:
        frac = 1.0 - min(max(t, 0.0), W) / W
        return (0.0 - 1.0) * frac + 1.0
    return 1.0


@nb.njit(inline="always", cache=False)
def _cosine(t, T, a):
    """optax.cosine_decay_schedule(1, T, alpha=a) at count t."""
    c = min(t, T)
    return ((1.0 - a) * (0.5 * (1.0 + math.cos(math.pi * c / T))) + a) * 1.0


@nb.njit(**JIT)
def scheduled_rates(sched, t, steps, lr, settings, depth, out):
    """``out[l·L + p] = lr[l·L + p] · f(t)`` for schedule ``sched`` at 0-based step ``t`` of ``steps``.

    ``settings`` holds each lane's warmup_steps and final_fraction at rows 5 and 6
    (:data:`fractaltrain.config.hyperparams.TRICK_PARAMS`).
    """
    L = LANES
    for p in range(L):
        f = schedule_factor(sched, t, steps, settings[5 * L + p], settings[6 * L + p])
        for l in range(depth):
            out[l * L + p] = lr[l * L + p] * f


@nb.njit(inline="always", cache=False)
def schedule_factor(sched, t, steps, W, a):
    """The factor ``f(t)`` of schedule ``sched`` (not constant) at 0-based step ``t`` of ``steps``, for
    warmup_steps ``W`` and final_fraction ``a``; the double-double kernel (ddopt.py) uses it too."""
    tt = float(t)
    T = float(steps)
    if sched == WARMUP:
        return _warmup(tt, W)
    if sched == COSINE:
        return _cosine(tt, T, a)
    return _warmup(tt, W) if tt < W else _cosine(tt - W, T - W, a)
