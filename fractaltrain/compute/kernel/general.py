"""The general path: forward and backward passes of a network of any depth, LANES pixels at a time.

The full batch goes CHUNK data points at a time (a minibatch's points one at a
time), the pixel index innermost (``LANES`` pixels side by side); every product
and sum is rounded separately, in the order written, and every gradient entry
adds the points in order, so a chunk gives the bits of the points taken one by
one.  The layer products and layer norm are vector IR (layer.py; matmul.py's
products for the first layer), tanh too (vtanh.py); the per-unit steps between
them (scales, σ', residual sums) are plain loops over the chunk.  The depth-2
fast path (depth2.py) reproduces these results bit for bit, and the tests
compare the two.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from fractaltrain.columns import CHUNK, NORM_EPS
from fractaltrain.compute.kernel.cache import JIT
from fractaltrain.compute.kernel.ir import LANES
from fractaltrain.compute.kernel.layer import _back_lanes, _dense_lanes, _grad_lanes, _norm_back_lanes, _norm_lanes
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
def _forward(X, r0, nr, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, out, T, arch, nrm, istd):
    """Forward pass of data points ``r0 .. r0+nr-1`` of ``X`` (nr ≤ CHUNK) for all lanes.

    The hidden activations are kept for backprop: hidden layer ``h`` of point
    ``c`` starts at vector ``hoff[h] + c·fo[h-1]`` of ``acts`` (σ' in ``dacts``);
    the outputs at vector ``c·m`` of ``out``.  ``arch`` = [residual, layer norm]
    (0/0: the plain network): with layer norm each hidden layer's
    pre-activations are normalised before σ (``nrm`` laid out as ``acts``, and
    ``istd`` at vector ``c·depth + layer``, keep what the backward pass needs);
    with residual connections every hidden-to-hidden layer adds its input to
    its output.  Every point gets the operations it would get alone.
    """
    depth = fi.shape[0]
    L = LANES
    norm = arch[1] != 0
    _forward_mm(X, r0, nr, fi[0], W, fo[0], alphas[0], pre)  # woff[0] is 0
    for l in range(depth - 1):
        w = fo[l]
        if l > 0:
            _dense_lanes(acts, hoff[l], W, woff[l], fi[l], w, nr, alphas[l], pre)
        if norm:
            for c in range(nr):
                _norm_lanes(pre, c * w, w, nrm, hoff[l + 1] + c * w, istd, c * depth + l, NORM_EPS)
        h = hoff[l + 1] * L
        _activate_layer(pre, acts[h:], dacts[h:], nr * w * L, nonlin, T)
        if l > 0 and arch[0] != 0:
            g = hoff[l] * L
            for q in range(nr * w * L):
                acts[h + q] += acts[g + q]
    _dense_lanes(acts, hoff[depth - 1], W, woff[depth - 1], fi[depth - 1], fo[depth - 1], nr, alphas[depth - 1], out)


@nb.njit(**JIT)
def _backward(X, r0, nr, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext, arch, nrm, istd, ga):
    """Accumulate the gradient of points ``r0 .. r0+nr-1`` into G, given ``delta`` = dL/d(output) (overwritten).

    ``delta`` holds point ``c``'s output deltas at vector ``c·m``; the layout of
    the rest is :func:`_forward`'s.  The gradient is of ``Σ_i Σ_o r_io²/2``; the
    caller applies the ``2/(points·outputs)`` factor.  Every gradient entry adds
    the points in order, so a chunk gives the bits of the points taken one at a
    time.  Through residual connections and layer norm too (``arch``).

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
        for q in range(nr * nfo * L):
            delta[q] *= alpha
        if l > 0:
            ab = hoff[l]
            _grad_lanes(acts, ab, delta, nr, G, woff[l], nfi, nfo)
            _back_lanes(delta, W, woff[l], nfi, nfo, nr, dnext)
            n = nr * nfi * L
            if residual and l <= depth - 2:
                for q in range(n):
                    dnext[q] += ga[q]
            if residual:
                for q in range(n):
                    ga[q] = dnext[q]
            for q in range(n):
                dnext[q] *= dacts[ab * L + q]
            if norm:
                for c in range(nr):
                    _norm_back_lanes(dnext, c * nfi, nfi, nrm, ab + c * nfi, istd, c * depth + l - 1)
            for q in range(n):
                delta[q] = dnext[q]
        else:
            _grad_mm(X, r0, nr, nfi, delta, nfo, G)  # woff[0] is 0


@nb.njit(**JIT)
def _residuals(Y, r0, nr, m, o, loss, delta, do_loss):
    """``delta[c·m + k] = o − y`` for points ``r0 ..`` of the chunk, and (if ``do_loss``) ``loss += (o − y)²``, in order."""
    L = LANES
    for c in range(nr):
        for k in range(m):
            y = Y[r0 + c, k]
            q = (c * m + k) * L
            for p in range(L):
                r = o[q + p] - y
                if do_loss:
                    loss[p] += r * r
                delta[q + p] = r


@nb.njit(**JIT)
def _loss_grad(t, X, Y, W, G, loss, fi, fo, woff, alphas, nonlin, batch_idx, acts, dacts, hoff, pre, delta, dnext, o, T,
               arch, nrm, istd, ga):
    """Summed squared error over all points into ``loss`` and the (unscaled) gradient into ``G``.

    The gradient is of the full batch, or of minibatch ``t`` of ``batch_idx`` when
    it has columns; either way ``loss`` is the full-batch sum of squares.  The
    full batch goes CHUNK points at a time, a minibatch's points one at a time.
    """
    L = LANES
    n = X.shape[0]
    m = Y.shape[1]
    full = batch_idx.shape[1] == 0
    for q in range(G.shape[0]):
        G[q] = 0.0
    for p in range(L):
        loss[p] = 0.0
    for r0 in range(0, n, CHUNK):
        nr = min(CHUNK, n - r0)
        _forward(X, r0, nr, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o, T, arch, nrm, istd)
        _residuals(Y, r0, nr, m, o, loss, delta, True)
        if full:
            _backward(X, r0, nr, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext, arch, nrm, istd, ga)
    if not full:
        for b in range(batch_idx.shape[1]):
            i = batch_idx[t, b]
            _forward(X, i, 1, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o, T, arch, nrm, istd)
            _residuals(Y, i, 1, m, o, loss, delta, False)
            _backward(X, i, 1, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext, arch, nrm, istd, ga)


@nb.njit(**JIT)
def general_scratch(fi, fo, m):
    """Scratch of :func:`_loss_grad` for layers ``fi`` x ``fo``, ``m`` outputs and CHUNK points.

    Returns ``(acts, dacts, hoff, pre, delta, dnext, o, T)``, in the order
    :func:`_loss_grad` takes them; ``hoff[h]`` is the vector where hidden layer
    ``h`` (``1 .. depth-1``) of the chunk's first point starts in ``acts``.
    """
    L = LANES
    depth = fi.shape[0]
    hoff = np.zeros(depth + 1, dtype=np.int64)
    for l in range(1, depth):
        hoff[l + 1] = hoff[l] + CHUNK * fo[l - 1]
    wmax = 1
    for l in range(depth):
        wmax = max(wmax, fi[l], fo[l])
    nv = max(hoff[depth], 1) * L
    wv = CHUNK * wmax * L
    T = np.empty(tanh_scratch_size(wv), dtype=np.int64)
    return np.zeros(nv), np.zeros(nv), hoff, np.empty(wv), np.empty(wv), np.empty(wv), np.empty(CHUNK * m * L), T


@nb.njit(**JIT)
def layer_sizes(fi, fo):
    """``(nh, wmax)`` of layers ``fi`` x ``fo``: the hidden units of all hidden layers, and the widest layer."""
    depth = fi.shape[0]
    nh = 0
    wmax = 1
    for l in range(depth):
        wmax = max(wmax, fi[l], fo[l])
        if l < depth - 1:
            nh += fo[l]
    return nh, wmax


@nb.njit(**JIT)
def arch_scratch(fi, fo):
    """Scratch of the residual and layer-norm passes for CHUNK points: ``(nrm, istd, ga)`` (normalised
    values, laid out as ``acts``; inverse standard deviations per point, layer and lane; dL/da of the
    layer above)."""
    L = LANES
    nh, wmax = layer_sizes(fi, fo)
    return np.zeros(max(CHUNK * nh, 1) * L), np.ones(CHUNK * fi.shape[0] * L), np.zeros(CHUNK * wmax * L)
