"""One block of LANES pixels trained in lock-step in double-double (block.py's twin).

The algorithm, the measure and early stop are block.py's, step for step; only
the training trajectory (weights, activations, gradients, losses) is carried
in double-double.  The hyperparameters come as two tables, the float64 parts
``hph`` and the trailing parts ``hpl`` (``value = hph + hpl`` to 32 digits),
and the gradient factor ``2 / (points · outputs)`` as a double-double pair,
so nothing in a pixel's definition is rounded to float64.  The measure's
normalised losses ``v_t`` are formed from the double-double loss and then
rounded to float64, as the measure and the outputs are float64 numbers.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from fractaltrain.columns import LANES, MAXV, OUT_FINAL, OUT_MEASURE, OUT_PROBE, OUT_STEPS, TAIL
from fractaltrain.compute.kernel.cache import JIT
from fractaltrain.compute.kernel.dd import dd_add, dd_mul, dd_mul_d
from fractaltrain.compute.kernel.dd2 import dd2_scratch, loss_grad_dd2
from fractaltrain.compute.kernel.ddgeneral import arch_scratch_dd, forward_dd, general_scratch_dd, loss_grad_dd
from fractaltrain.compute.kernel.ddopt import dd_optimizer_step, dd_scheduled_rates


@nb.njit(**JIT)
def train_block_dd(hph, hpl, X, Y, probe, w0, fi, fo, woff, alphas, gscale, nonlin, steps, batch_idx, early_stop, out, fast_path=True,
                   opt=0, sched=0, arch=np.zeros(2, dtype=np.int64)):
    """Train ``LANES`` pixels in lock-step in double-double and write their results.

    Parameters
    ----------
    hph, hpl : (LANES, depth + 3) float64 (depth + 10 with issue 32's settings), the high and
        low parts of each lane's learning rates, drift, offset and scale (and optimizer and
        schedule settings).
    X, Y, probe, w0, fi, fo, woff, nonlin, steps, batch_idx, early_stop, out :
        as :func:`fractaltrain.compute.kernel.block.train_block`.
    alphas : (2, depth) double-double pre-activation scales, the last the output scale.
    gscale : (2,) double-double gradient factor ``2 / (points · outputs)`` of one step
        (points = the batch size for minibatch training).
    fast_path : use the depth-2 fast path (dd2.py) when it applies (False only for tests).
    opt, sched : the optimizer (0 sgd) and the schedule (0 constant), as block.py's, trained by
        ddopt.py; their settings are the columns after the init scale.
    arch : int64 [residual, layer norm] (zeros: the plain network), as block.py's; ddgeneral.py
        and ddnorm.py train them.
    """
    L = LANES
    depth = fi.shape[0]
    npar = w0.shape[0]
    n = X.shape[0]
    m = Y.shape[1]
    fast = fast_path and depth == 2 and arch[1] == 0  # the fast path has no layer norm
    acts, dacts, hoff, pre, delta, dnext, o = general_scratch_dd(fi, fo, m)
    nrm, istd, ga, acc = arch_scratch_dd(fi, fo)
    Xb, Yb, Z, A, D, R = dd2_scratch(fi, fo, m, batch_idx.shape[1], fast)
    W = np.empty((2, npar * L))
    G = np.empty((2, npar * L))
    loss = np.empty((2, L))
    l0 = np.empty(L)
    s_v = np.zeros(L)
    s_inv = np.zeros(L)
    tail = np.zeros((TAIL, L))
    vlast = np.zeros(L)
    dead_v = np.zeros(L)
    alive = np.ones(L, dtype=np.bool_)
    trained = np.full(L, steps, dtype=np.int64)
    n0 = fi[0] * fo[0]
    inv_nm = 1.0 / (n * m)

    for q in range(npar):
        for p in range(L):
            W[0, q * L + p], W[1, q * L + p] = dd_mul_d(hph[p, depth + 2], hpl[p, depth + 2], w0[q])
    for q in range(n0):
        for p in range(L):
            i = q * L + p
            W[0, i], W[1, i] = dd_add(W[0, i], W[1, i], hph[p, depth + 1], hpl[p, depth + 1])

    # the pixels' rates (and the step's, under a schedule), optimizer state and settings, lanes innermost
    lrh = np.empty(depth * L)
    lrl = np.empty(depth * L)
    for p in range(L):
        for l in range(depth):
            lrh[l * L + p] = hph[p, l]
            lrl[l * L + p] = hpl[p, l]
    rate = np.empty((2, depth * L))
    rate[0] = lrh
    rate[1] = lrl
    nstate = npar * L if opt != 0 else 0
    S1 = np.zeros((2, nstate))
    S2 = np.zeros((2, nstate))
    pw1 = np.zeros((2, L))
    pw2 = np.zeros((2, L))
    pw1[0] = 1.0
    pw2[0] = 1.0
    nset = hph.shape[1] - (depth + 3)
    seth = np.zeros(max(nset, 0) * L)
    setl = np.zeros(max(nset, 0) * L)
    for k in range(nset):
        for p in range(L):
            seth[k * L + p] = hph[p, depth + 3 + k]
            setl[k * L + p] = hpl[p, depth + 3 + k]

    n_alive = L
    t_stop = steps
    for t in range(steps):
        for q in range(n0):
            for p in range(L):
                i = q * L + p
                W[0, i], W[1, i] = dd_add(W[0, i], W[1, i], hph[p, depth], hpl[p, depth])
        if fast:
            loss_grad_dd2(t, X, Y, W, G, loss, alphas, nonlin, batch_idx, Xb, Yb, Z, A, D, R)
        else:
            loss_grad_dd(t, X, Y, W, G, loss, fi, fo, woff, alphas, nonlin, batch_idx, acts, dacts, hoff, pre, delta, dnext, o,
                         arch, nrm, istd, ga, acc)
        for p in range(L):
            finite = math.isfinite(loss[0, p]) and math.isfinite(loss[1, p])
            lt = (loss[0, p] + loss[1, p]) * inv_nm if finite else MAXV
            if not alive[p]:
                v = dead_v[p]
            else:
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
        if sched != 0:
            dd_scheduled_rates(sched, t, steps, lrh, lrl, seth, depth, rate)
        if opt == 0:
            for l in range(depth):
                for q in range(woff[l], woff[l] + fi[l] * fo[l]):
                    for p in range(L):
                        i = q * L + p
                        gh, gl = dd_mul(G[0, i], G[1, i], gscale[0], gscale[1])
                        uh, ul = dd_mul(rate[0, l * L + p], rate[1, l * L + p], gh, gl)
                        W[0, i], W[1, i] = dd_add(W[0, i], W[1, i], -uh, -ul)
        else:
            dd_optimizer_step(opt, W, G, gscale, S1, S2, pw1, pw2, rate, seth, setl, depth, woff, fi, fo)
        for p in range(L):
            if not alive[p]:
                for q in range(npar):
                    W[0, q * L + p] = 0.0
                    W[1, q * L + p] = 0.0

    for t in range(t_stop, steps):
        for p in range(L):
            v = dead_v[p]
            s_v[p] += v
            s_inv[p] += 1.0 / v
            tail[t % TAIL, p] = v

    forward_dd(0, probe.reshape((1, probe.shape[0])), W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o, arch, nrm, istd, acc)
    k = min(TAIL, steps)
    for p in range(L):
        tsum = 0.0
        for j in range(steps - k, steps):
            tsum += tail[j % TAIL, p]
        converged = tsum / k < 1.0
        out[p, OUT_MEASURE] = -s_v[p] if converged else s_inv[p]
        out[p, OUT_FINAL] = math.log10(vlast[p])
        pv = o[0, p]
        out[p, OUT_PROBE] = pv if (alive[p] and math.isfinite(pv)) else MAXV
        out[p, OUT_STEPS] = trained[p]
