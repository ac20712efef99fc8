"""The double-double depth-2 fast path: one hidden layer, the same bits as the general path (ddgeneral.py).

depth2.py's layout in double-double.  The data points are processed in chunks
of CHUNK, each chunk in four passes over all LANES pixels: the forward
product, the activation, the output layer with its backward pass, the
gradient product.  The products and the output layer are vector IR
(ddmatmul.py), ``dd_tanh`` too (ddvec.py); the common shapes (16-16-1, 8-8-1)
get code compiled with constant loop bounds.  Every value goes through the
general path's double-double operations in the general path's order, so the
results are bitwise those of :func:`~fractaltrain.compute.kernel.ddgeneral.loss_grad_dd`
(the tests compare the two).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from fractaltrain.columns import CHUNK, LANES
from fractaltrain.compute.kernel.cache import JIT
from fractaltrain.compute.kernel.ddmatmul import _forward_dd, _grad_dd, _output_dd
from fractaltrain.compute.kernel.ddvec import tanh_act_dd


@nb.njit(**JIT)
def activate_dd(Z, A, D, n, nonlin):
    """``A = σ(Z)``, ``D = σ'(Z)`` for the first ``n`` entries of (2, ·) arrays, as ddgeneral._activate_dd.

    ``n`` is a multiple of LANES; ``A`` may be ``Z``.  Compiled once, not per shape.
    """
    if nonlin == 0:
        tanh_act_dd(Z[0], Z[1], A[0], A[1], D[0], D[1], n)
    elif nonlin == 1:
        for q in range(n):
            pos = Z[0, q] > 0.0
            A[0, q] = Z[0, q] if pos else 0.0
            A[1, q] = Z[1, q] if pos else 0.0
            D[0, q] = 1.0 if pos else 0.0
            D[1, q] = 0.0
    else:
        for q in range(n):
            A[0, q] = Z[0, q]
            A[1, q] = Z[1, q]
            D[0, q] = 1.0
            D[1, q] = 0.0


@nb.njit(inline="always", **JIT)
def _chunks_dd_body(X, Y, n, W, G, nin, nh, m, chunk, alphas, nonlin, loss, do_loss, do_grad, Z, A, D, R):
    woff1 = nin * nh
    for r0 in range(0, n, chunk):
        nr = min(chunk, n - r0)
        _forward_dd(X, r0, nr, nin, W, nh, alphas, Z)
        activate_dd(Z, A, D, nr * nh * LANES, nonlin)
        _output_dd(A, D, W, G, woff1, Y, r0, nr, nh, m, alphas, loss, R, do_loss, do_grad)
        if do_grad:
            _grad_dd(X, r0, nr, nin, D, nh, G)


@nb.njit(**JIT)
def _chunks_dd(X, Y, n, W, G, nin, nh, m, alphas, nonlin, loss, do_loss, do_grad, Z, A, D, R):
    """Loss and/or gradient contributions of points 0..n-1 of (X, Y), chunk by chunk.

    The common shapes get code compiled for their sizes (constant loop bounds).
    """
    if nin == 16 and nh == 16 and m == 1:
        _chunks_dd_body(X, Y, n, W, G, 16, 16, 1, CHUNK, alphas, nonlin, loss, do_loss, do_grad, Z, A, D, R)
    elif nin == 8 and nh == 8 and m == 1:
        _chunks_dd_body(X, Y, n, W, G, 8, 8, 1, CHUNK, alphas, nonlin, loss, do_loss, do_grad, Z, A, D, R)
    else:
        _chunks_dd_body(X, Y, n, W, G, nin, nh, m, CHUNK, alphas, nonlin, loss, do_loss, do_grad, Z, A, D, R)


@nb.njit(**JIT)
def loss_grad_dd2(t, X, Y, W, G, loss, alphas, nonlin, batch_idx, Xb, Yb, Z, A, D, R):
    """:func:`~fractaltrain.compute.kernel.ddgeneral.loss_grad_dd` for depth 2, same bits.

    ``Xb``, ``Yb``, ``Z``, ``A``, ``D``, ``R`` are scratch (:func:`dd2_scratch`).
    """
    nin = X.shape[1]
    m = Y.shape[1]
    nh = (W.shape[1] // LANES) // (nin + m)
    G[:, :] = 0.0
    loss[:, :] = 0.0
    full = batch_idx.shape[1] == 0
    _chunks_dd(X, Y, X.shape[0], W, G, nin, nh, m, alphas, nonlin, loss, True, full, Z, A, D, R)
    if not full:
        nbt = batch_idx.shape[1]
        for b in range(nbt):
            i = batch_idx[t, b]
            for k in range(nin):
                Xb[b, k] = X[i, k]
            for o in range(m):
                Yb[b, o] = Y[i, o]
        _chunks_dd(Xb, Yb, nbt, W, G, nin, nh, m, alphas, nonlin, loss, False, True, Z, A, D, R)


@nb.njit(**JIT)
def dd2_scratch(fi, fo, m, nbatch, fast):
    """Scratch of :func:`loss_grad_dd2`: ``(Xb, Yb, Z, A, D, R)``, all empty unless ``fast``."""
    nz = CHUNK * fo[0] * LANES if fast else 0
    Xb = np.empty((nbatch if fast else 0, fi[0]))
    Yb = np.empty((nbatch if fast else 0, m))
    return Xb, Yb, np.empty((2, nz)), np.empty((2, nz)), np.empty((2, nz)), np.empty((2, CHUNK * m * LANES if fast else 0))
