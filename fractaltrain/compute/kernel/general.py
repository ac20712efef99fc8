"""The general path: forward and backward passes of a network of any depth, LANES pixels at a time.

One data point at a time, the pixel index innermost (``LANES`` pixels side by
side); every product and sum is rounded separately, in the order written.  The
layer products and layer norm are vector IR (layer.py; matmul.py's products
with one row for the first layer), tanh too (vtanh.py); the per-unit steps
between them (scales, σ', residual sums) are plain loops.  The depth-2 fast
path (depth2.py) reproduces these results bit for bit, and the tests compare
the two.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from fractaltrain.columns import NORM_EPS
from fractaltrain.compute.kernel.cache import JIT
from fractaltrain.compute.kernel.ir import LANES
from fractaltrain.compute.kernel.layer import _backward_lanes, _dense_lanes, _norm_back_lanes, _norm_lanes
from fractaltrain.compute.kernel.matmul import _forward_mm, _grad_mm
from fractaltrain.compute.kernel.tanh import tanh64
from fractaltrain.compute.kernel.vtanh import _activate_tanh, tanh_scratch_size


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
def _activate_layer(pre, act, dact, n, nonlin, T):
    """:func:`_activate` of one hidden layer; tanh on vectors (vtanh.py, the same bits), in scratch ``T``."""
    if nonlin == 0:
        _activate_tanh(pre, act, dact, n, T)
    else:
        _activate(pre, act, dact, n, nonlin)


@nb.njit(**JIT)
def _forward(i, X, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, out, T, arch, nrm, istd):
    """Forward pass of data point ``i`` for all lanes; hidden activations kept for backprop.

    ``arch`` = [residual, layer norm] (0/0: the plain network): with layer norm
    each hidden layer's pre-activations are normalised before σ (``nrm``,
    ``istd`` keep what the backward pass needs); with residual connections every
    hidden-to-hidden layer adds its input to its output.
    """
    depth = fi.shape[0]
    L = LANES
    norm = arch[1] != 0
    _forward_mm(X, i, 1, fi[0], W, fo[0], alphas[0], pre)  # woff[0] is 0
    if norm:
        _norm_lanes(pre, fo[0], nrm, hoff[1] // L, istd, 0, NORM_EPS)
    _activate_layer(pre, acts[hoff[1]:], dacts[hoff[1]:], fo[0] * L, nonlin, T)
    for l in range(1, depth - 1):
        _dense_lanes(acts, hoff[l] // L, W, woff[l], fi[l], fo[l], alphas[l], pre)
        if norm:
            _norm_lanes(pre, fo[l], nrm, hoff[l + 1] // L, istd, l, NORM_EPS)
        _activate_layer(pre, acts[hoff[l + 1]:], dacts[hoff[l + 1]:], fo[l] * L, nonlin, T)
        if arch[0] != 0:
            for q in range(fo[l] * L):
                acts[hoff[l + 1] + q] += acts[hoff[l] + q]
    _dense_lanes(acts, hoff[depth - 1] // L, W, woff[depth - 1], fi[depth - 1], fo[depth - 1], alphas[depth - 1], out)


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
        alpha = alphas[l]
        for q in range(nfo * L):
            delta[q] *= alpha
        if l > 0:
            ab = hoff[l]
            _backward_lanes(acts, ab // L, W, G, woff[l], nfi, nfo, delta, dnext)
            if residual and l <= depth - 2:
                for q in range(nfi * L):
                    dnext[q] += ga[q]
            if residual:
                for q in range(nfi * L):
                    ga[q] = dnext[q]
            for q in range(nfi * L):
                dnext[q] *= dacts[ab + q]
            if norm:
                _norm_back_lanes(dnext, nfi, nrm, ab // L, istd, l - 1)
            for q in range(nfi * L):
                delta[q] = dnext[q]
        else:
            _grad_mm(X, i, 1, nfi, delta, nfo, G)  # woff[0] is 0


@nb.njit(**JIT)
def _loss_grad(t, X, Y, W, G, loss, fi, fo, woff, alphas, nonlin, batch_idx, acts, dacts, hoff, pre, delta, dnext, o, T,
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
        _forward(i, X, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o, T, arch, nrm, istd)
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
            _forward(i, X, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o, T, arch, nrm, istd)
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
    T = np.empty(tanh_scratch_size(wmax * L), dtype=np.int64)
    return acts, dacts, hoff, np.empty(wmax * L), np.empty(wmax * L), np.empty(wmax * L), np.empty(m * L), T


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
