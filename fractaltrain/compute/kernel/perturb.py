"""Perturbation: every pixel of a deep window trained as a float64 difference from one reference pixel.

Why
---
Deep-zoom renderers of the Mandelbrot set go far below double precision at
double-precision cost by iterating each pixel's small difference from one
high-precision reference orbit.  Training is an iterated map too: with the
reference's trajectory recorded in double-double (ddref.py), a pixel whose
hyperparameters differ by ``δη`` follows ``W = W_ref + δW`` with ``δW`` in
float64, and float64's relative rounding of ``δW`` is an absolute error far
below double-double's as long as ``δW`` stays small.

The difference formulas never subtract nearly equal numbers:

* products: ``(A + a)(B + b) - AB = Ab + aB + ab``;
* tanh: ``tanh(u + d) - tanh(u) = tanh(d)(1 - tanh²u) / (1 + tanh(u) tanh(d))``,
  with ``1 - tanh²u`` recorded from the reference's double-double value;
* its derivative: ``(1 - (t + e)²) - (1 - t²) = -(2t + e)e``;
* ReLU by cases on the signs of ``u`` and ``u + d``;
* the loss: ``(r + e)² - r² = (2r + e)e``;
* the update: ``η_p g_p - η_r g_r = δη g_r + η_p δg``.

Glitches.  A pixel is flagged (``glitch[p]``) and its result must not be used
when its difference has grown past ``TAU`` of the reference's weights (from
there float64's rounding of ``δW`` exceeds what double-double would make), or
when the reference's loss stops being finite while the pixel's is finite (the
reference has no trajectory left to follow).  The caller retrains flagged
pixels in double-double (``fractaltrain.compute.perturbation``), so a result is
never worse than the double-double kernel's.

One hidden layer (depth 2), any width, inputs and outputs, tanh, ReLU or the
identity, full batch or minibatch; LANES pixels in lock-step as block.py.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from fractaltrain.columns import LANES, MAXV, OUT_FINAL, OUT_MEASURE, OUT_PROBE, OUT_STEPS, TAIL
from fractaltrain.compute.kernel.cache import JIT
from fractaltrain.compute.kernel.tanh import tanh64

TAU = 2.0**-50  # glitch when max|δW| exceeds this fraction of max|W_ref|


@nb.njit(**JIT)
def perturb_block(dhp, hp, X, Y, probe, w0, nh, alphas, gs, nonlin, steps, batch_idx, ref_alive,
                  Wr, Ur, Ar, Dr, Rr, Lr, Gr, Wend, out, glitch, tau=TAU):
    """Train ``LANES`` pixels as differences ``dhp`` (hyperparameters minus the reference's) from the reference.

    ``hp`` holds the pixels' own hyperparameters rounded to float64 (their
    learning rates multiply ``δg``).  The records are ddref.py's; ``ref_alive``
    is how many steps the reference trained with a finite loss.  Writes ``out``
    as block.py does and sets ``glitch[p]`` where lane ``p``'s result must be
    recomputed (``tau``: the glitch threshold, :data:`TAU`; other values for studies).
    """
    L = LANES
    n, nin = X.shape
    m = Y.shape[1]
    npar = w0.shape[0]
    n0 = nin * nh
    full = batch_idx.shape[1] == 0
    a0, a1 = alphas[0], alphas[1]
    dW = np.empty(npar * L)
    dG = np.empty(npar * L)
    dpre = np.empty(nh * L)
    da = np.empty((n, nh * L))
    dz = np.empty((n, nh * L))
    dr = np.empty((n, m * L))
    dL = np.empty(L)
    l0 = np.empty(L)
    s_v = np.zeros(L)
    s_inv = np.zeros(L)
    tail = np.zeros((TAIL, L))
    vlast = np.zeros(L)
    dead_v = np.zeros(L)
    alive = np.ones(L, dtype=np.bool_)
    trained = np.full(L, steps, dtype=np.int64)
    inv_nm = 1.0 / (n * m)
    for p in range(L):
        glitch[p] = False
    for q in range(npar):
        for p in range(L):
            dW[q * L + p] = dhp[p, 2 + 2] * w0[q]
    for q in range(n0):
        for p in range(L):
            dW[q * L + p] += dhp[p, 2 + 1]
    for t in range(steps):
        if t >= ref_alive:
            for p in range(L):
                if alive[p]:
                    glitch[p] = True
            break
        for q in range(n0):
            for p in range(L):
                dW[q * L + p] += dhp[p, 2]
        for p in range(L):
            dL[p] = 0.0
        for i in range(n):
            for j in range(nh):
                for p in range(L):
                    dpre[j * L + p] = 0.0
            for k in range(nin):
                xk = X[i, k]
                for j in range(nh):
                    for p in range(L):
                        dpre[j * L + p] += xk * dW[(k * nh + j) * L + p]
            for j in range(nh):
                u, ar, dr_ = Ur[t, i, j], Ar[t, i, j], Dr[t, i, j]
                for p in range(L):
                    d = a0 * dpre[j * L + p]
                    dz[i, j * L + p] = d
                    if nonlin == 0:
                        td = tanh64(d)
                        v = td * dr_ / (1.0 + ar * td)
                    elif nonlin == 1:
                        ud = u + d
                        v = (d if ud > 0.0 else -u) if u > 0.0 else (ud if ud > 0.0 else 0.0)
                    else:
                        v = d
                    da[i, j * L + p] = v
            for c in range(m):
                rr = Rr[t, i, c]
                for p in range(L):
                    s = 0.0
                    for j in range(nh):
                        w = Wr[t, n0 + j * m + c]
                        e = da[i, j * L + p]
                        b = dW[(n0 + j * m + c) * L + p]
                        s += e * w + Ar[t, i, j] * b + e * b
                    e = a1 * s
                    dr[i, c * L + p] = e
                    dL[p] += (2.0 * rr + e) * e
        for q in range(npar * L):
            dG[q] = 0.0
        nb_ = n if full else batch_idx.shape[1]
        for bb in range(nb_):
            i = bb if full else batch_idx[t, bb]
            for j in range(nh):
                ar = Ar[t, i, j]
                d0 = Dr[t, i, j]
                u = Ur[t, i, j]
                for p in range(L):
                    e_a = da[i, j * L + p]
                    sq = 0.0  # δ of Σ_c ρ_c W1[j, c], ρ = a1·r
                    qr = 0.0
                    for c in range(m):
                        rho = a1 * Rr[t, i, c]
                        drho = a1 * dr[i, c * L + p]
                        g = n0 + j * m + c
                        w = Wr[t, g]
                        b = dW[g * L + p]
                        dG[g * L + p] += ar * drho + e_a * rho + e_a * drho
                        sq += drho * w + rho * b + drho * b
                        qr += rho * w
                    if nonlin == 0:
                        dd = -(2.0 * ar + e_a) * e_a
                    elif nonlin == 1:
                        dd = (1.0 if u + dz[i, j * L + p] > 0.0 else 0.0) - (1.0 if u > 0.0 else 0.0)
                    else:
                        dd = 0.0
                    de = a0 * (sq * d0 + qr * dd + sq * dd)
                    for k in range(nin):
                        dG[(k * nh + j) * L + p] += X[i, k] * de
        for p in range(L):
            lt = (Lr[t] + dL[p]) * inv_nm
            finite = math.isfinite(lt)
            if not alive[p]:
                v = dead_v[p]
            else:
                if not finite:
                    lt = MAXV
                if t == 0:
                    l0[p] = lt
                v = min(lt / l0[p], MAXV)
                if not finite:
                    alive[p] = False
                    dead_v[p] = v
                    trained[p] = t
            s_v[p] += v
            s_inv[p] += 1.0 / v
            tail[t % TAIL, p] = v
            vlast[p] = v
        wmax = 0.0
        for q in range(npar):
            wmax = max(wmax, abs(Wr[t, q]))
        for q in range(npar):
            lr_col = 0 if q < n0 else 1
            gr = Gr[t, q] * gs
            for p in range(L):
                x = dW[q * L + p] - (dhp[p, lr_col] * gr + hp[p, lr_col] * (dG[q * L + p] * gs))
                dW[q * L + p] = x
                if alive[p] and not (abs(x) <= tau * wmax):
                    glitch[p] = True
        for p in range(L):
            if not alive[p]:
                for q in range(npar):
                    dW[q * L + p] = 0.0
    k = min(TAIL, steps)
    for p in range(L):
        tsum = 0.0
        for j in range(steps - k, steps):
            tsum += tail[j % TAIL, p]
        converged = tsum / k < 1.0
        out[p, OUT_MEASURE] = -s_v[p] if converged else s_inv[p]
        out[p, OUT_FINAL] = math.log10(vlast[p]) if vlast[p] > 0 else -math.inf
        pv = 0.0
        for c in range(m):
            if c == 0:
                for j in range(nh):
                    z = 0.0
                    for kk in range(nin):
                        z += probe[kk] * (Wend[kk * nh + j] + dW[(kk * nh + j) * L + p])
                    z *= a0
                    act = tanh64(z) if nonlin == 0 else (max(z, 0.0) if nonlin == 1 else z)
                    pv += act * (Wend[n0 + j * m] + dW[(n0 + j * m) * L + p])
                pv *= a1
        out[p, OUT_PROBE] = pv if (alive[p] and math.isfinite(pv)) else MAXV
        out[p, OUT_STEPS] = trained[p]
