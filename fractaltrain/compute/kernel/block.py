"""One block of LANES pixels trained in lock-step: the steps, the measure, early stop, the outputs.

Algorithm (PAPER.md).  At each step ``t``: add the per-step W0 drift (the
notebook's form of the offset condition), evaluate the full-batch loss ``l_t``
and the gradient (full batch, or on the ``t``-th minibatch of the shared index
sequence, reusing nothing but the weights), then take one steepest-descent step
with each layer's own learning rate.  The measure accumulates
``v_t = min(l_t / l_0, 1e6)`` (a non-finite loss counts as 1e6) as it goes.

Early stop.  Once a pixel's loss is non-finite it never recovers (PAPER.md), so
every later ``v_t`` is the same constant: the pixel is marked dead, its weights
are zeroed so it costs no NaN arithmetic, and its sums keep adding that constant
step by step (not multiplied, so the bits equal a full run).  A block stops
training when all its pixels are dead.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from fractaltrain.columns import OUT_FINAL, OUT_MEASURE, OUT_PROBE, OUT_STEPS
from fractaltrain.compute.kernel.cache import JIT
from fractaltrain.compute.kernel.depth2 import _loss_grad2, depth2_scratch
from fractaltrain.compute.kernel.general import _forward, _loss_grad, arch_scratch, general_scratch
from fractaltrain.compute.kernel.optimizers import optimizer_step, scheduled_rates
from fractaltrain.columns import LANES, MAXV, TAIL


@nb.njit(**JIT)
def train_block(hp, X, Y, probe, w0, fi, fo, woff, alphas, nonlin, steps, batch_idx, early_stop, out, fast_path=True,
                opt=0, sched=0, arch=np.zeros(2, dtype=np.int64)):
    """Train ``LANES`` pixels in lock-step and write their results.

    Parameters
    ----------
    hp : (LANES, depth + 3) float64 — per-lane learning rates, drift, offset, scale.
    X, Y, probe : training data and probe input, shared by all lanes.
    w0 : flat initial weights; ``fi``, ``fo``, ``woff`` give each layer's shape and offset.
    alphas : per-layer pre-activation scale, last entry is the output scale.
    nonlin : 0 tanh, 1 relu, 2 identity.
    steps : number of training steps.
    batch_idx : (steps, batch) int64 minibatch indices, or a (0, 0) array for full batch.
    early_stop : stop training dead lanes (False only for tests).
    out : (LANES, N_OUT) float64 output: measure, log10 final normalised loss,
        probe output, steps trained.
    fast_path : use the depth-2 fast path when it applies (False only for tests).
    arch : int64 [residual, layer norm] (zeros: the plain network; general.py's _forward).
    opt, sched : the optimizer (0 sgd) and the schedule (0 constant), as
        :mod:`fractaltrain.compute.kernel.optimizers`; their settings are ``hp``'s
        columns after the init scale.
    """
    L = LANES
    depth = fi.shape[0]
    npar = w0.shape[0]
    n = X.shape[0]
    m = Y.shape[1]
    full = batch_idx.shape[1] == 0
    nb_ = batch_idx.shape[1]
    fast = fast_path and depth == 2 and arch[1] == 0  # the fast path has no layer norm
    acts, dacts, hoff, pre, delta, dnext, o, T_g = general_scratch(fi, fo, m)
    nrm, istd, ga = arch_scratch(fi, fo)
    Xb, Yb, Z, A, D, R, T = depth2_scratch(fi, fo, m, nb_, fast)
    W = np.empty(npar * L)
    G = np.empty(npar * L)
    loss = np.empty(L)
    l0 = np.empty(L)
    s_v = np.zeros(L)
    s_inv = np.zeros(L)
    tail = np.zeros((TAIL, L))
    vlast = np.zeros(L)
    dead_v = np.zeros(L)
    alive = np.ones(L, dtype=np.bool_)
    trained = np.full(L, steps, dtype=np.int64)
    n0 = fi[0] * fo[0]

    for q in range(npar):
        for p in range(L):
            W[q * L + p] = hp[p, depth + 2] * w0[q]
    for q in range(n0):
        for p in range(L):
            W[q * L + p] += hp[p, depth + 1]

    # per-lane learning rates and drift, contiguous so the loops below vectorise
    lr = np.empty(depth * L)
    drift = np.empty(L)
    for p in range(L):
        for l in range(depth):
            lr[l * L + p] = hp[p, l]
        drift[p] = hp[p, depth]

    # optimizer state (empty for sgd) and per-lane settings, contiguous like lr
    nstate = npar * L if opt != 0 else 0
    S1 = np.zeros(nstate)
    S2 = np.zeros(nstate)
    pw1 = np.ones(L)
    pw2 = np.ones(L)
    nset = hp.shape[1] - (depth + 3)
    settings = np.zeros(max(nset, 0) * L)
    for k in range(nset):
        for p in range(L):
            settings[k * L + p] = hp[p, depth + 3 + k]

    rate = lr if sched == 0 else np.empty(depth * L)  # the step's rates: the schedule's factor times lr

    n_alive = L
    t_stop = steps
    for t in range(steps):
        for q in range(n0):
            for p in range(L):
                W[q * L + p] += drift[p]
        if fast:
            _loss_grad2(t, X, Y, W, G, loss, alphas, nonlin, batch_idx, Xb, Yb, Z, A, D, R, T)
        else:
            _loss_grad(t, X, Y, W, G, loss, fi, fo, woff, alphas, nonlin, batch_idx, acts, dacts, hoff, pre, delta, dnext, o, T_g,
                       arch, nrm, istd, ga)
        # measure bookkeeping
        for p in range(L):
            lt = loss[p] / (n * m)
            if not alive[p]:
                v = dead_v[p]
            else:
                finite = math.isfinite(lt)
                if not finite:
                    lt = MAXV
                if t == 0:
                    l0[p] = lt
                v = min(lt / l0[p], MAXV)
                if not finite and early_stop:
                    alive[p] = False
                    dead_v[p] = v
                    trained[p] = t
                    n_alive -= 1
            s_v[p] += v
            s_inv[p] += 1.0 / v
            tail[t % TAIL, p] = v
            vlast[p] = v
        if n_alive == 0:
            t_stop = t + 1
            break
        # the optimizer's step: steepest descent, or optimizers.py
        gs = 2.0 / ((n if full else nb_) * m)
        if sched != 0:
            scheduled_rates(sched, t, steps, lr, settings, depth, rate)
        if opt == 0:
            for l in range(depth):
                for q in range(woff[l], woff[l] + fi[l] * fo[l]):
                    for p in range(L):
                        W[q * L + p] -= rate[l * L + p] * (G[q * L + p] * gs)
        else:
            optimizer_step(opt, W, G, gs, S1, S2, pw1, pw2, rate, settings, depth, woff, fi, fo)
        for p in range(L):
            if not alive[p]:
                for q in range(npar):
                    W[q * L + p] = 0.0

    # fill in the steps a fully dead block skipped, exactly as a full run adds them
    for t in range(t_stop, steps):
        for p in range(L):
            v = dead_v[p]
            s_v[p] += v
            s_inv[p] += 1.0 / v
            tail[t % TAIL, p] = v

    # probe output after the last step
    _forward(probe.reshape((1, probe.shape[0])), 0, 1, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o, T_g, arch, nrm,
             istd)
    k = min(TAIL, steps)
    for p in range(L):
        tsum = 0.0
        for j in range(steps - k, steps):
            tsum += tail[j % TAIL, p]
        converged = tsum / k < 1.0
        out[p, OUT_MEASURE] = -s_v[p] if converged else s_inv[p]
        out[p, OUT_FINAL] = math.log10(vlast[p])
        pv = o[p]
        out[p, OUT_PROBE] = pv if (alive[p] and math.isfinite(pv)) else MAXV
        out[p, OUT_STEPS] = trained[p]
