"""One reference pixel of a one-hidden-layer network trained in double-double, every step recorded.

Perturbation (perturb.py) trains every pixel of a deep window as a float64
difference from one reference pixel.  The differences need the reference's
trajectory to float64 precision only, since every reference quantity enters
them multiplied by a difference; but the trajectory itself must be the
double-double one, or the reference would drift from the true one as any
float64 pixel does.  So the reference is trained here in double-double, one
pixel, plainly (it is one pixel of a window of thousands), and each step's
weights, activations, activation derivatives, pre-activations, residuals, loss
and gradient are stored rounded to float64.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from fractaltrain.compute.kernel.cache import JIT
from fractaltrain.compute.kernel.dd import dd_add, dd_add_d, dd_mul, dd_mul_d, dd_tanh


@nb.njit(**JIT)
def train_reference_dd(hph, hpl, X, Y, w0, nh, alphas, gscale, nonlin, steps, batch_idx,
                       Wr, Ur, Ar, Dr, Rr, Lr, Gr, Wend):
    """Train the reference pixel ``hph + hpl`` (one row, depth 2) and record every step; returns steps alive.

    Records, for step ``t`` (weights after the step's drift, before its update):
    ``Wr[t]`` weights, ``Ur[t, i, j]``/``Ar``/``Dr`` pre-activation, activation and
    its derivative of hidden unit ``j`` at point ``i``, ``Rr[t, i, c]`` residuals,
    ``Lr[t]`` the summed squared error, ``Gr[t]`` the unscaled gradient; ``Wend``
    the weights after the last step.  Training stops at the first non-finite loss.
    """
    n, nin = X.shape
    m = Y.shape[1]
    npar = w0.shape[0]
    n0 = nin * nh
    full = batch_idx.shape[1] == 0
    W = np.zeros((2, npar))
    G = np.zeros((2, npar))
    a = np.zeros((2, n, nh))
    d = np.zeros((2, n, nh))
    r = np.zeros((2, n, m))
    a0h, a0l, a1h, a1l = alphas[0, 0], alphas[1, 0], alphas[0, 1], alphas[1, 1]
    for q in range(npar):
        W[0, q], W[1, q] = dd_mul_d(hph[2 + 2], hpl[2 + 2], w0[q])
    for q in range(n0):
        W[0, q], W[1, q] = dd_add(W[0, q], W[1, q], hph[2 + 1], hpl[2 + 1])
    for t in range(steps):
        for q in range(n0):
            W[0, q], W[1, q] = dd_add(W[0, q], W[1, q], hph[2], hpl[2])
        for q in range(npar):
            Wr[t, q] = W[0, q] + W[1, q]
        lh, ll = 0.0, 0.0
        for i in range(n):
            for j in range(nh):
                sh, sl = 0.0, 0.0
                for k in range(nin):
                    ph, pl = dd_mul_d(W[0, k * nh + j], W[1, k * nh + j], X[i, k])
                    sh, sl = dd_add(sh, sl, ph, pl)
                zh, zl = dd_mul(sh, sl, a0h, a0l)
                if nonlin == 0:
                    ah, al = dd_tanh(zh, zl)
                    qh, ql = dd_mul(ah, al, ah, al)
                    dh, dl = dd_add_d(-qh, -ql, 1.0)
                elif nonlin == 1:
                    pos = zh > 0.0
                    ah, al = (zh, zl) if pos else (0.0, 0.0)
                    dh, dl = (1.0 if pos else 0.0), 0.0
                else:
                    ah, al, dh, dl = zh, zl, 1.0, 0.0
                a[0, i, j], a[1, i, j], d[0, i, j], d[1, i, j] = ah, al, dh, dl
                Ur[t, i, j], Ar[t, i, j], Dr[t, i, j] = zh + zl, ah + al, dh + dl
            for c in range(m):
                oh, ol = 0.0, 0.0
                for j in range(nh):
                    ph, pl = dd_mul(a[0, i, j], a[1, i, j], W[0, n0 + j * m + c], W[1, n0 + j * m + c])
                    oh, ol = dd_add(oh, ol, ph, pl)
                oh, ol = dd_mul(oh, ol, a1h, a1l)
                rh, rl = dd_add_d(oh, ol, -Y[i, c])
                r[0, i, c], r[1, i, c] = rh, rl
                Rr[t, i, c] = rh + rl
                sh, sl = dd_mul(rh, rl, rh, rl)
                lh, ll = dd_add(lh, ll, sh, sl)
        Lr[t] = lh + ll
        if not (math.isfinite(lh) and math.isfinite(ll)):
            return t
        G[:, :] = 0.0
        nb_ = n if full else batch_idx.shape[1]
        for b in range(nb_):
            i = b if full else batch_idx[t, b]
            for j in range(nh):
                eh, el = 0.0, 0.0
                for c in range(m):
                    rh, rl = dd_mul(r[0, i, c], r[1, i, c], a1h, a1l)
                    g = n0 + j * m + c
                    ph, pl = dd_mul(a[0, i, j], a[1, i, j], rh, rl)
                    G[0, g], G[1, g] = dd_add(G[0, g], G[1, g], ph, pl)
                    ph, pl = dd_mul(rh, rl, W[0, g], W[1, g])
                    eh, el = dd_add(eh, el, ph, pl)
                eh, el = dd_mul(eh, el, d[0, i, j], d[1, i, j])
                eh, el = dd_mul(eh, el, a0h, a0l)
                for k in range(nin):
                    g = k * nh + j
                    ph, pl = dd_mul_d(eh, el, X[i, k])
                    G[0, g], G[1, g] = dd_add(G[0, g], G[1, g], ph, pl)
        for q in range(npar):
            Gr[t, q] = G[0, q] + G[1, q]
            lrh, lrl = (hph[0], hpl[0]) if q < n0 else (hph[1], hpl[1])
            gh, gl = dd_mul(G[0, q], G[1, q], gscale[0], gscale[1])
            uh, ul = dd_mul(lrh, lrl, gh, gl)
            W[0, q], W[1, q] = dd_add(W[0, q], W[1, q], -uh, -ul)
    for q in range(npar):
        Wend[q] = W[0, q] + W[1, q]
    return steps
