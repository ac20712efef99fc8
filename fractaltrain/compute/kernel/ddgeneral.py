"""Forward and backward passes of a network of any depth in double-double, LANES pixels at a time.

The double-double twin of general.py: the same passes in the same order, with
every product and sum a double-double operation (dd.py).  A double-double
array is a ``(2, n)`` float64 array, row 0 the high parts and row 1 the low
parts, with the pixel index innermost as in the float64 kernel.  The layer
loops themselves are vector IR (ddlayer.py; ddmatmul.py's products with one
row for the first layer, ddvec.py's tanh), since numba vectorised the
double-double loops over lanes only in part; the tests check them bit for bit
against plain scalar loops over dd.py.  The
pre-activation scales ``alphas`` are a ``(2, depth)`` double-double array:
``sqrt(g / fan_in)`` to 32 digits, not its float64 rounding, since below
float64's floor the landscape would otherwise move by 1e-17 relative, a
billion windows at 30 decades.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from fractaltrain.compute.kernel.cache import JIT
from fractaltrain.compute.kernel.dd import dd_add, dd_add_d, dd_mul
from fractaltrain.compute.kernel.ddlayer import _backward_layer_dd, _dense_dd, _scale_dd
from fractaltrain.compute.kernel.ddmatmul import _forward_dd, _grad_dd
from fractaltrain.compute.kernel.ddnorm import add_dd, mul_dd, norm_back_dd, norm_dd
from fractaltrain.compute.kernel.ddvec import tanh_act_dd
from fractaltrain.compute.kernel.general import layer_sizes
from fractaltrain.compute.kernel.ir import LANES


@nb.njit(**JIT)
def _activate_dd(pre, act, dact, off, n, nonlin):
    """act = σ(pre), dact = σ'(pre) for ``n`` entries (a multiple of LANES), written from ``off``.

    tanh is ddvec's vector ``dd_tanh``, bitwise the scalar one of dd.py (the tests check).
    """
    if nonlin == 0:
        tanh_act_dd(pre[0], pre[1], act[0, off:], act[1, off:], dact[0, off:], dact[1, off:], n)
        return
    for q in range(n):
        zh, zl = pre[0, q], pre[1, q]
        if nonlin == 1:
            pos = zh > 0.0
            ah, al = (zh, zl) if pos else (0.0, 0.0)
            dh, dl = (1.0 if pos else 0.0), 0.0
        else:
            ah, al, dh, dl = zh, zl, 1.0, 0.0
        act[0, off + q], act[1, off + q] = ah, al
        dact[0, off + q], dact[1, off + q] = dh, dl


@nb.njit(**JIT)
def forward_dd(i, X, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, out, arch, nrm, istd, acc):
    """Forward pass of data point ``i`` for all lanes; hidden activations kept for backprop.

    ``arch`` = [residual, layer norm], as general._forward: with layer norm each
    hidden layer's pre-activations are normalised before σ (``nrm`` laid out as
    ``acts``, ``istd`` a row per layer keep what the backward pass needs); with
    residual connections every hidden-to-hidden layer adds its input to its output.
    """
    depth = fi.shape[0]
    L = LANES
    _forward_dd(X, i, 1, fi[0], W, fo[0], alphas, pre)
    for l in range(depth - 1):
        w = fo[l]
        if l > 0:
            _dense_dd(acts, hoff[l] // L, W, woff[l], fi[l], w, alphas, l, pre)
        if arch[1] != 0:
            norm_dd(pre, w, nrm, hoff[l + 1], istd, l, acc)
        _activate_dd(pre, acts, dacts, hoff[l + 1], w * L, nonlin)
        if l > 0 and arch[0] != 0:
            add_dd(acts, hoff[l + 1], acts, hoff[l], w * L)
    _dense_dd(acts, hoff[depth - 1] // L, W, woff[depth - 1], fi[depth - 1], fo[depth - 1], alphas, depth - 1, out)


@nb.njit(**JIT)
def _backward_dd(i, X, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext, arch, nrm, istd, ga, acc):
    """Accumulate the gradient of point ``i`` into G, given ``delta`` = dL/d(output) (overwritten).

    Through residual connections and layer norm as general._backward: where
    layer ``l`` is a residual one, dL/da of the layer above (kept in ``ga``)
    is added before σ'; then the δ of the layer below goes back through the norm.
    """
    depth = fi.shape[0]
    L = LANES
    residual = arch[0] != 0
    norm = arch[1] != 0
    for l in range(depth - 1, -1, -1):
        _scale_dd(delta, fo[l], alphas, l)
        if l > 0:
            ab = hoff[l]
            n = fi[l] * L
            _backward_layer_dd(acts, ab // L, dacts, W, G, woff[l], fi[l], fo[l], delta, dnext, 0 if residual else 1)
            if residual:
                if l <= depth - 2:
                    add_dd(dnext, 0, ga, 0, n)
                ga[:, :n] = dnext[:, :n]
                mul_dd(dnext, dacts, ab, n)
            if norm:
                norm_back_dd(dnext, fi[l], nrm, ab, istd, l - 1, acc)
            for q in range(n):
                delta[0, q] = dnext[0, q]
                delta[1, q] = dnext[1, q]
        else:
            _grad_dd(X, i, 1, fi[0], delta, fo[0], G)


@nb.njit(**JIT)
def _residuals(i, Y, o, delta, loss, add_loss):
    """delta = o - Y[i] for every output and lane; optionally loss += delta²."""
    L = LANES
    for c in range(Y.shape[1]):
        y = Y[i, c]
        for p in range(L):
            q = c * L + p
            rh, rl = dd_add_d(o[0, q], o[1, q], -y)
            delta[0, q], delta[1, q] = rh, rl
            if add_loss:
                sh, sl = dd_mul(rh, rl, rh, rl)
                loss[0, p], loss[1, p] = dd_add(loss[0, p], loss[1, p], sh, sl)


@nb.njit(**JIT)
def loss_grad_dd(t, X, Y, W, G, loss, fi, fo, woff, alphas, nonlin, batch_idx, acts, dacts, hoff, pre, delta, dnext, o,
                 arch, nrm, istd, ga, acc):
    """Full-batch sum of squares into ``loss`` and the (unscaled) gradient into ``G``, in double-double.

    The gradient is of the full batch, or of minibatch ``t`` of ``batch_idx``
    when it has columns, as in general.py.
    """
    full = batch_idx.shape[1] == 0
    G[:, :] = 0.0
    loss[:, :] = 0.0
    for i in range(X.shape[0]):
        forward_dd(i, X, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o, arch, nrm, istd, acc)
        _residuals(i, Y, o, delta, loss, True)
        if full:
            _backward_dd(i, X, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext, arch, nrm, istd, ga, acc)
    if not full:
        for b in range(batch_idx.shape[1]):
            i = batch_idx[t, b]
            forward_dd(i, X, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o, arch, nrm, istd, acc)
            _residuals(i, Y, o, delta, loss, False)
            _backward_dd(i, X, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext, arch, nrm, istd, ga, acc)


@nb.njit(**JIT)
def general_scratch_dd(fi, fo, m):
    """Double-double scratch of :func:`loss_grad_dd`: ``(acts, dacts, hoff, pre, delta, dnext, o)``."""
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
    acts = np.zeros((2, max(nh, 1) * L))
    dacts = np.zeros((2, max(nh, 1) * L))
    return acts, dacts, hoff, np.empty((2, wmax * L)), np.empty((2, wmax * L)), np.empty((2, wmax * L)), np.empty((2, m * L))


@nb.njit(**JIT)
def arch_scratch_dd(fi, fo):
    """Double-double scratch of the residual and layer-norm passes: ``(nrm, istd, ga, acc)`` (normalised values,
    laid out as ``acts``; inverse standard deviations, a row of LANES per hidden layer; dL/da of the layer above;
    layer norm's running sums, (4, LANES))."""
    L = LANES
    nh, wmax = layer_sizes(fi, fo)
    return np.zeros((2, max(nh, 1) * L)), np.zeros((2, fi.shape[0] * L)), np.zeros((2, wmax * L)), np.zeros((4, L))
