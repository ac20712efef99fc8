"""Issue 32's training tricks on the GPU: layer norm, the optimizers' step, the schedules' factors.

Why a module of its own
-----------------------
The CUDA kernel (kernel.py) trains one pixel per thread; these are the parts
that only the trick variants of it compile in, each the CPU kernel's
operations (fractaltrain/compute/kernel/general.py and optimizers.py) for one
lane, in the same order, every product through :func:`ops.mul` so that no
multiply-add is fused.  Square roots and divisions are IEEE-exact on the GPU,
as on the CPU.

Schedules without the GPU's ``cos``
-----------------------------------
CUDA's ``cos`` is not libm's and rounds differently, so the cosine schedules'
factors are not computed on the device: :func:`schedule_factors` builds, on the
host, a table of ``f(t)`` for every distinct (warmup_steps, final_fraction) pair
of the launch and every step, by calling the CPU kernel's own compiled
``scheduled_rates`` (the same code, so the same bits), and a row index per
pixel.  The kernel then forms ``lr_l · f(t)`` with one rounded product, as
``scheduled_rates`` does.  The warmup factors need no ``cos`` but go through the
same table, so every schedule has one code path.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from fractaltrain.columns import LANES, NORM_EPS
from fractaltrain.compute.gpu.ops import mul
from fractaltrain.compute.kernel.optimizers import ADAMW, MOMENTUM, NESTEROV

SGD = 0
#: The per-pixel settings' columns after the init scale (fractaltrain.config.hyperparams.TRICK_PARAMS order).
S_MOMENTUM, S_BETA1, S_BETA2, S_EPS, S_WD, S_WARMUP, S_FINAL = range(7)


@cuda.jit(device=True)
def layer_norm(pre, nw, layer, nrm, off, istd):
    """layer._norm_lanes for one lane: ``pre[:nw]`` normalised in place, kept in ``nrm[off:]``, ``istd[layer]``."""
    s = 0.0
    for j in range(nw):
        s += pre[j]
    mean = s / nw
    v = 0.0
    for j in range(nw):
        d = pre[j] - mean
        v += mul(d, d)
    inv = 1.0 / math.sqrt(v / nw + NORM_EPS)
    istd[layer] = inv
    for j in range(nw):
        z = mul(pre[j] - mean, inv)
        pre[j] = z
        nrm[off + j] = z


@cuda.jit(device=True)
def norm_backward(dn, nw, layer, nrm, off, istd):
    """layer._norm_back_lanes for one lane: dL/dz from dL/dn (``dn[:nw]``, in place)."""
    m1 = 0.0
    m2 = 0.0
    for k in range(nw):
        m1 += dn[k]
        m2 += mul(dn[k], nrm[off + k])
    m1 /= nw
    m2 /= nw
    inv = istd[layer]
    for k in range(nw):
        dn[k] = mul(inv, (dn[k] - m1) - mul(nrm[off + k], m2))


def make_update(OPT: int):
    """optimizers.optimizer_step's update of one layer for optimizer ``OPT`` (not sgd), built per kernel variant.

    ``OPT`` is a compile-time constant of the returned device function, so a
    kernel carries the branch of its own optimizer only.  The returned
    ``update(W, G, S1, S2, lo, hi, gs, r, c1, c2, eps, wd, pw1, pw2)`` steps the
    weights ``W[lo:hi]`` with rate ``r`` (the layer's scheduled rate): ``c1`` is
    the momentum (momentum, nesterov) or β1 (adam, adamw), ``c2`` β2, ``eps``
    and ``wd`` adam's and adamw's; ``S1``/``S2`` the optimizer's state
    (velocity; or first and second moments), zero before the first step;
    ``pw1``/``pw2`` the running ``β1^t``, ``β2^t``, already updated for this step.
    """

    @cuda.jit(device=True)
    def update(W, G, S1, S2, lo, hi, gs, r, c1, c2, eps, wd, pw1, pw2):
        for q in range(lo, hi):
            if OPT == MOMENTUM:
                v = mul(G[q], gs) + mul(c1, S1[q])
                S1[q] = v
                W[q] -= mul(r, v)
            elif OPT == NESTEROV:
                g = mul(G[q], gs)
                v = g + mul(c1, S1[q])
                S1[q] = v
                W[q] -= mul(r, g + mul(c1, v))
            else:
                g = mul(G[q], gs)
                m = mul(c1, S1[q]) + mul(1.0 - c1, g)
                v = mul(c2, S2[q]) + mul(1.0 - c2, mul(g, g))
                S1[q] = m
                S2[q] = v
                u = (m / (1.0 - pw1)) / (math.sqrt(v / (1.0 - pw2)) + eps)
                if OPT == ADAMW:
                    u = u + mul(wd, W[q])
                W[q] -= mul(r, u)

    return update


def schedule_factors(sched: int, steps: int, hp: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """The schedule's factor ``f(t)`` per distinct (warmup_steps, final_fraction) pair and step, and each pixel's pair.

    Returns ``(factors, rows)``: ``factors[r, t]`` (float64, pairs × steps) and
    ``rows[p]`` (int64), the row of pixel ``p``.  The factors are the CPU
    kernel's own: its compiled ``scheduled_rates`` at rate 1 (``1 · f`` is
    ``f`` exactly), LANES pairs a call, step by step, as ``train_block`` calls
    it.  Pairs are told apart by their bits, so no two values that could give
    different factors share a row.  Costs a Python call per step and LANES
    pairs, and 8 bytes per pair and step (a 64-wide tile with warmup_steps on
    an axis at 10,000 steps: 5 MB).
    """
    from fractaltrain.compute.kernel.optimizers import scheduled_rates

    base = depth + 3 + S_WARMUP
    pairs = np.ascontiguousarray(hp[:, base:base + 2], dtype=np.float64)
    keys, first, rows = np.unique(pairs.view(np.int64), axis=0, return_index=True, return_inverse=True)
    values = pairs[first]
    npairs = values.shape[0]
    factors = np.empty((npairs, steps), dtype=np.float64)
    ones = np.ones(LANES, dtype=np.float64)
    out = np.empty(LANES, dtype=np.float64)
    settings = np.zeros(7 * LANES, dtype=np.float64)
    for start in range(0, npairs, LANES):
        chunk = values[start:start + LANES]
        k = chunk.shape[0]
        for c in (S_WARMUP, S_FINAL):  # a short last chunk repeats its last pair, as a short block pads
            col = chunk[:, c - S_WARMUP]
            settings[c * LANES:(c + 1) * LANES] = np.concatenate([col, np.repeat(col[-1:], LANES - k)])
        for t in range(steps):
            scheduled_rates(sched, t, steps, ones, settings, 1, out)
            factors[start:start + k, t] = out[:k]
    return factors, np.ascontiguousarray(rows.reshape(-1), dtype=np.int64)
