"""The depth-2 fast path: one hidden layer (all the paper's conditions), same bits as the general path.

Same operations in the same order as the general path (general.py), reorganised:
the data points are processed in chunks of CHUNK, each chunk in four passes
over all LANES pixels (forward product, activation, output layer and its
backward pass, gradient product), so that the two products can be register
blocked over several points and the activation loop is long and contiguous.
The products and the output layer are vector IR (matmul.py), tanh too
(vtanh.py), and the common shapes (16-16-1, 8-8-1) get code compiled with
constant loop bounds.  See docs/performance.md.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from fractaltrain.compute.kernel.cache import JIT
from fractaltrain.compute.kernel.general import _activate
from fractaltrain.columns import CHUNK, LANES
from fractaltrain.compute.kernel.matmul import _forward_mm, _grad_mm, _output_mm
from fractaltrain.compute.kernel.vtanh import _activate_tanh, tanh_scratch_size



@nb.njit(**JIT)
def _tanh_chunk(Z, A, D, n, T):
    """:func:`_activate_tanh` as a function of its own: compiled once, not per shape."""
    _activate_tanh(Z, A, D, n, T)


@nb.njit(inline="always", **JIT)
def _chunks2_body(X, Y, n, W0, W1, G0, G1, nin, nh, m, chunk, alpha0, alpha1, nonlin, loss, do_loss, do_grad, Z, A, D, R, T):
    for r0 in range(0, n, chunk):
        nr = min(chunk, n - r0)
        _forward_mm(X, r0, nr, nin, W0, nh, alpha0, Z)
        if nonlin == 0:
            _tanh_chunk(Z, A, D, nr * nh * LANES, T)
        else:
            _activate(Z, A, D, nr * nh * LANES, nonlin)
        _output_mm(A, D, W1, G1, Y, r0, nr, nh, m, alpha0, alpha1, loss, R, do_loss, do_grad)
        if do_grad:
            _grad_mm(X, r0, nr, nin, D, nh, G0)


@nb.njit(**JIT)
def _chunks2(X, Y, n, W0, W1, G0, G1, nin, nh, m, alpha0, alpha1, nonlin, loss, do_loss, do_grad, Z, A, D, R, T):
    """Loss and/or gradient contributions of points 0..n-1 of (X, Y), chunk by chunk.

    The common shapes get code compiled for their sizes (constant loop bounds).
    """
    if nin == 16 and nh == 16 and m == 1:
        _chunks2_body(X, Y, n, W0, W1, G0, G1, 16, 16, 1, CHUNK, alpha0, alpha1, nonlin, loss, do_loss, do_grad, Z, A, D, R, T)
    elif nin == 8 and nh == 8 and m == 1:
        _chunks2_body(X, Y, n, W0, W1, G0, G1, 8, 8, 1, CHUNK, alpha0, alpha1, nonlin, loss, do_loss, do_grad, Z, A, D, R, T)
    else:
        _chunks2_body(X, Y, n, W0, W1, G0, G1, nin, nh, m, CHUNK, alpha0, alpha1, nonlin, loss, do_loss, do_grad, Z, A, D, R, T)


@nb.njit(inline="always", **JIT)
def _loss_grad2(t, X, Y, W, G, loss, alphas, nonlin, batch_idx, Xb, Yb, Z, A, D, R, T):
    """:func:`_loss_grad` for depth 2, same results; ``Xb``, ``Yb``, ``Z`` … are scratch."""
    L = LANES
    nin = X.shape[1]
    m = Y.shape[1]
    nh = (W.shape[0] // L) // (nin + m)
    n0 = nin * nh * L
    W0 = W[:n0]
    W1 = W[n0:]
    G0 = G[:n0]
    G1 = G[n0:]
    for q in range(G.shape[0]):
        G[q] = 0.0
    for p in range(L):
        loss[p] = 0.0
    full = batch_idx.shape[1] == 0
    _chunks2(X, Y, X.shape[0], W0, W1, G0, G1, nin, nh, m, alphas[0], alphas[1], nonlin, loss, True, full, Z, A, D, R, T)
    if not full:
        nbt = batch_idx.shape[1]
        for b in range(nbt):
            i = batch_idx[t, b]
            for k in range(nin):
                Xb[b, k] = X[i, k]
            for o in range(m):
                Yb[b, o] = Y[i, o]
        _chunks2(Xb, Yb, nbt, W0, W1, G0, G1, nin, nh, m, alphas[0], alphas[1], nonlin, loss, False, True, Z, A, D, R, T)


@nb.njit(**JIT)
def depth2_scratch(fi, fo, m, nbatch, fast):
    """Scratch of :func:`_loss_grad2`: ``(Xb, Yb, Z, A, D, R, T)``, all empty unless ``fast``."""
    L = LANES
    nz = CHUNK * fo[0] * L if fast else 0
    Xb = np.empty((nbatch if fast else 0, fi[0]))
    Yb = np.empty((nbatch if fast else 0, m))
    T = np.empty(tanh_scratch_size(CHUNK * fo[0] * L) if fast else 0, dtype=np.int64)
    return Xb, Yb, np.empty(nz), np.empty(nz), np.empty(nz), np.empty(CHUNK * m * L if fast else 0), T
