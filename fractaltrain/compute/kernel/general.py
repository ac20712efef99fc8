"""The general path: forward and backward passes of a network of any depth, LANES pixels at a time.

Plain numba loops with the pixel index innermost (contiguous, so LLVM
vectorises them); every product and sum is rounded separately, in the order
written.  The depth-2 fast path (depth2.py) reproduces these results bit for
bit, and the tests compare the two.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from fractaltrain.columns import NORM_EPS
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
def _layer_norm(pre, nw, layer, nrm, off, istd):
    """``pre`` (``nw`` units × LANES) normalised over each lane's units: ``(z − mean)·(var + eps)^-½``.

    Keeps the normalised values in ``nrm[off:]`` and the inverse standard
    deviation in ``istd[layer·L:]`` for :func:`_norm_backward`.
    """
    L = LANES
    for p in range(L):
        s = 0.0
        for j in range(nw):
            s += pre[j * L + p]
        mean = s / nw
        v = 0.0
        for j in range(nw):
            d = pre[j * L + p] - mean
            v += d * d
        inv = 1.0 / math.sqrt(v / nw + NORM_EPS)
        istd[layer * L + p] = inv
        for j in range(nw):
            z = (pre[j * L + p] - mean) * inv
            pre[j * L + p] = z
            nrm[off + j * L + p] = z


@nb.njit(**JIT)
def _norm_backward(dn, nw, layer, nrm, off, istd):
    """dL/dz from dL/dn (in place) through the layer norm: ``inv·(dn − mean(dn) − n·mean(dn·n))``."""
    L = LANES
    for p in range(L):
        m1 = 0.0
        m2 = 0.0
        for k in range(nw):
            m1 += dn[k * L + p]
            m2 += dn[k * L + p] * nrm[off + k * L + p]
        m1 /= nw
        m2 /= nw
        inv = istd[layer * L + p]
        for k in range(nw):
            dn[k * L + p] = inv * ((dn[k * L + p] - m1) - nrm[off + k * L + p] * m2)


@nb.njit(**JIT)
def _forward(i, X, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, out, arch, nrm, istd):
    """Forward pass of data point ``i`` for all lanes; hidden activations kept for backprop.

    ``arch`` = [residual, layer norm] (0/0: the plain network): with layer norm
    each hidden layer's pre-activations are normalised before σ (``nrm``,
    ``istd`` keep what the backward pass needs); with residual connections every
    hidden-to-hidden layer adds its input to its output.
    """
    depth = fi.shape[0]
    L = LANES
    norm = arch[1] != 0
    _dense_shared_in(X[i], W, woff[0], fi[0], fo[0], alphas[0], pre)
    if norm:
        _layer_norm(pre, fo[0], 0, nrm, hoff[1], istd)
    _activate(pre, acts[hoff[1]:], dacts[hoff[1]:], fo[0] * L, nonlin)
    for l in range(1, depth - 1):
        _dense(acts, hoff[l], W, woff[l], fi[l], fo[l], alphas[l], pre)
        if norm:
            _layer_norm(pre, fo[l], l, nrm, hoff[l + 1], istd)
        _activate(pre, acts[hoff[l + 1]:], dacts[hoff[l + 1]:], fo[l] * L, nonlin)
        if arch[0] != 0:
            for q in range(fo[l] * L):
                acts[hoff[l + 1] + q] += acts[hoff[l] + q]
    _dense(acts, hoff[depth - 1], W, woff[depth - 1], fi[depth - 1], fo[depth - 1], alphas[depth - 1], out)


@nb.njit(**JIT)
def _backward(i, X, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext, arch, nrm, istd, ga):
    """Accumulate the gradient of point ``i`` into G, given ``delta`` = dL/d(output) (overwritten).

    The gradient is of ``Σ_i Σ_o r_io²/2``; the caller applies the ``2/(points·outputs)``
    factor.  Through residual connections and layer norm too (``arch``, as :func:`_forward`);
    the plain network takes the same operations in the same order as it always did.

    ``dL/da_l = W_l·δ_l`` plus, where layer ``l`` is a residual one
    (``a_{l+1} = a_l + h_l``), the ``dL/da_{l+1}`` of the layer above (kept in ``ga``);
    then through σ' and the layer norm to the ``δ`` of the layer below.
    """
    depth = fi.shape[0]
    L = LANES
    residual = arch[0] != 0
    norm = arch[1] != 0
    for l in range(depth - 1, -1, -1):
        nfi = fi[l]
        nfo = fo[l]
        wb = woff[l] * L
        alpha = alphas[l]
        for q in range(nfo * L):
            delta[q] *= alpha
        if l > 0:
            ab = hoff[l]
            for k in range(nfi):
                for j in range(nfo):
                    for p in range(L):
                        G[wb + (k * nfo + j) * L + p] += acts[ab + k * L + p] * delta[j * L + p]
            skip = residual and l <= depth - 2
            for k in range(nfi):
                for p in range(L):
                    dnext[k * L + p] = 0.0
                for j in range(nfo):
                    for p in range(L):
                        dnext[k * L + p] += delta[j * L + p] * W[wb + (k * nfo + j) * L + p]
                if skip:
                    for p in range(L):
                        dnext[k * L + p] += ga[k * L + p]
            if residual:
                for q in range(nfi * L):
                    ga[q] = dnext[q]
            for q in range(nfi * L):
                dnext[q] *= dacts[ab + q]
            if norm:
                _norm_backward(dnext, nfi, l - 1, nrm, ab, istd)
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
def _loss_grad(t, X, Y, W, G, loss, fi, fo, woff, alphas, nonlin, batch_idx, acts, dacts, hoff, pre, delta, dnext, o,
               arch, nrm, istd, ga):
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
        _forward(i, X, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o, arch, nrm, istd)
        for c in range(m):
            y = Y[i, c]
            for p in range(L):
                r = o[c * L + p] - y
                loss[p] += r * r
                delta[c * L + p] = r
        if full:
            _backward(i, X, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext, arch, nrm, istd, ga)
    if not full:
        for b in range(batch_idx.shape[1]):
            i = batch_idx[t, b]
            _forward(i, X, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o, arch, nrm, istd)
            for c in range(m):
                y = Y[i, c]
                for p in range(L):
                    delta[c * L + p] = o[c * L + p] - y
            _backward(i, X, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext, arch, nrm, istd, ga)


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


@nb.njit(**JIT)
def arch_scratch(fi, fo):
    """Scratch of the residual and layer-norm passes: ``(nrm, istd, ga)`` (normalised values, laid out as
    ``acts``; inverse standard deviations per layer and lane; dL/da of the layer above)."""
    L = LANES
    depth = fi.shape[0]
    nh = 0
    wmax = 1
    for l in range(depth):
        wmax = max(wmax, fi[l], fo[l])
        if l < depth - 1:
            nh += fo[l]
    return np.zeros(max(nh, 1) * L), np.ones(depth * L), np.zeros(wmax * L)
