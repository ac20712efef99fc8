"""The general path: forward and backward passes of a network of any depth, LANES pixels at a time.

Plain numba loops with the pixel index innermost (contiguous, so LLVM
vectorises them); every product and sum is rounded separately, in the order
written.  The depth-2 fast path (depth2.py) reproduces these results bit for
bit, and the tests compare the two.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from fractaltrain.compute.kernel.cache import JIT
from fractaltrain.compute.kernel.ir import LANES
from fractaltrain.compute.kernel.tanh import tanh64


@nb.njit(**JIT)
def _activate(pre, act, dact, n, nonlin):
    """act = σ(pre), dact = σ'(pre) for ``n`` lanes-major entries (in place of pre)."""
    if nonlin == 0:
        for q in range(n):
            a = tanh64(pre[q])
            act[q] = a
            dact[q] = 1.0 - a * a
    elif nonlin == 1:
        for q in range(n):
            z = pre[q]
            pos = z > 0.0
            act[q] = z if pos else 0.0
            dact[q] = 1.0 if pos else 0.0
    else:
        for q in range(n):
            act[q] = pre[q]
            dact[q] = 1.0


@nb.njit(**JIT)
def _dense_shared_in(x, W, woff, fi, fo, alpha, pre):
    """pre[j,:] = alpha · Σ_k x[k] W[k,j,:] for an input row shared by all lanes."""
    L = LANES
    for q in range(fo * L):
        pre[q] = 0.0
    for k in range(fi):
        xk = x[k]
        base = (woff + k * fo) * L
        for q in range(fo * L):
            pre[q] += xk * W[base + q]
    for q in range(fo * L):
        pre[q] *= alpha


@nb.njit(**JIT)
def _dense(a, aoff, W, woff, fi, fo, alpha, pre):
    """pre[j,:] = alpha · Σ_k a[k,:] W[k,j,:] with a per-lane input."""
    L = LANES
    for q in range(fo * L):
        pre[q] = 0.0
    for k in range(fi):
        base = (woff + k * fo) * L
        abase = aoff + k * L
        for j in range(fo):
            for p in range(L):
                pre[j * L + p] += a[abase + p] * W[base + j * L + p]
    for q in range(fo * L):
        pre[q] *= alpha


@nb.njit(**JIT)
def _forward(i, X, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, out):
    """Forward pass of data point ``i`` for all lanes; hidden activations kept for backprop."""
    depth = fi.shape[0]
    L = LANES
    _dense_shared_in(X[i], W, woff[0], fi[0], fo[0], alphas[0], pre)
    _activate(pre, acts[hoff[1]:], dacts[hoff[1]:], fo[0] * L, nonlin)
    for l in range(1, depth - 1):
        _dense(acts, hoff[l], W, woff[l], fi[l], fo[l], alphas[l], pre)
        _activate(pre, acts[hoff[l + 1]:], dacts[hoff[l + 1]:], fo[l] * L, nonlin)
    _dense(acts, hoff[depth - 1], W, woff[depth - 1], fi[depth - 1], fo[depth - 1], alphas[depth - 1], out)


@nb.njit(**JIT)
def _backward(i, X, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext):
    """Accumulate the gradient of point ``i`` into G, given ``delta`` = dL/d(output).

    ``delta`` holds (output residual) on entry; it is overwritten.  The gradient is
    of ``Σ_i Σ_o r_io²/2``; the caller applies the ``2/(points·outputs)`` factor.
    """
    depth = fi.shape[0]
    L = LANES
    for l in range(depth - 1, -1, -1):
        nfi = fi[l]
        nfo = fo[l]
        wb = woff[l] * L
        alpha = alphas[l]
        # delta currently holds dL/d(pre-scale output of layer l); fold in alpha.
        for q in range(nfo * L):
            delta[q] *= alpha
        if l > 0:
            ab = hoff[l]
            for k in range(nfi):
                for j in range(nfo):
                    for p in range(L):
                        G[wb + (k * nfo + j) * L + p] += acts[ab + k * L + p] * delta[j * L + p]
            for k in range(nfi):
                for p in range(L):
                    dnext[k * L + p] = 0.0
                for j in range(nfo):
                    for p in range(L):
                        dnext[k * L + p] += delta[j * L + p] * W[wb + (k * nfo + j) * L + p]
                for p in range(L):
                    dnext[k * L + p] *= dacts[ab + k * L + p]
            for q in range(nfi * L):
                delta[q] = dnext[q]
        else:
            x = X[i]
            for k in range(nfi):
                xk = x[k]
                base = wb + k * nfo * L
                for q in range(nfo * L):
                    G[base + q] += xk * delta[q]


@nb.njit(**JIT)
def _loss_grad(t, X, Y, W, G, loss, fi, fo, woff, alphas, nonlin, batch_idx, acts, dacts, hoff, pre, delta, dnext, o):
    """Summed squared error over all points into ``loss`` and the (unscaled) gradient into ``G``.

    The gradient is of the full batch, or of minibatch ``t`` of ``batch_idx`` when
    it has columns; either way ``loss`` is the full-batch sum of squares.
    """
    L = LANES
    n = X.shape[0]
    m = Y.shape[1]
    full = batch_idx.shape[1] == 0
    for q in range(G.shape[0]):
        G[q] = 0.0
    for p in range(L):
        loss[p] = 0.0
    for i in range(n):
        _forward(i, X, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o)
        for c in range(m):
            y = Y[i, c]
            for p in range(L):
                r = o[c * L + p] - y
                loss[p] += r * r
                delta[c * L + p] = r
        if full:
            _backward(i, X, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext)
    if not full:
        for b in range(batch_idx.shape[1]):
            i = batch_idx[t, b]
            _forward(i, X, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o)
            for c in range(m):
                y = Y[i, c]
                for p in range(L):
                    delta[c * L + p] = o[c * L + p] - y
            _backward(i, X, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext)


@nb.njit(**JIT)
def general_scratch(fi, fo, m):
    """Scratch of :func:`_loss_grad` for layers ``fi`` x ``fo`` and ``m`` outputs.

    Returns ``(acts, dacts, hoff, pre, delta, dnext, o)``, in the order
    :func:`_loss_grad` takes them; ``hoff[l]`` is where the hidden activations
    ``a_l`` start in ``acts`` (lanes-major, ``l = 1 .. depth-1``).
    """
    L = LANES
    depth = fi.shape[0]
    hoff = np.zeros(depth + 1, dtype=np.int64)
    for l in range(1, depth):
        hoff[l + 1] = hoff[l] + fo[l - 1] * L
    nh = 0
    for l in range(depth - 1):
        nh += fo[l]
    wmax = 1
    for l in range(depth):
        wmax = max(wmax, fi[l], fo[l])
    acts = np.zeros(max(nh, 1) * L)
    dacts = np.zeros(max(nh, 1) * L)
    return acts, dacts, hoff, np.empty(wmax * L), np.empty(wmax * L), np.empty(wmax * L), np.empty(m * L)
