"""The kernel's loss and gradient for one set of weights.

The gradient tests check it against finite differences, and the explorer
retrains one clicked pixel step by step with it to plot its training curve, so
both use the very code the kernel trains with.
"""

import numba as nb
import numpy as np

from fractaltrain.compute.kernel.cache import JIT
from fractaltrain.compute.kernel.general import _loss_grad, arch_scratch, general_scratch
from fractaltrain.compute.kernel.ir import LANES


@nb.njit(**JIT)
def _loss_grad_lanes(W, X, Y, fi, fo, woff, alphas, nonlin, batch_idx, t, loss, G, arch):
    """Allocate scratch buffers and call the general path's ``_loss_grad``."""
    acts, dacts, hoff, pre, delta, dnext, o, T_g = general_scratch(fi, fo, Y.shape[1])
    nrm, istd, ga = arch_scratch(fi, fo)
    _loss_grad(t, X, Y, W, G, loss, fi, fo, woff, alphas, nonlin, batch_idx, acts, dacts, hoff, pre, delta, dnext, o, T_g,
               arch, nrm, istd, ga)


def loss_and_grad(problem, weights, step: int = 0) -> tuple[float, list[np.ndarray]]:
    """Full-batch mean loss and the training gradient for one set of weights.

    The gradient is of the full-batch loss, or of minibatch ``step``'s loss for a
    minibatch problem: exactly what the kernel's update uses.  Exposed so tests
    can check the analytic gradients against finite differences.
    """
    _, fi, fo, woff = problem.flat_weights()
    flat = np.concatenate([np.asarray(w, dtype=np.float64).ravel() for w in weights])
    W = np.repeat(flat, LANES)
    G = np.zeros_like(W)
    loss = np.zeros(LANES)
    bidx = problem.batch_indices if problem.batch_indices is not None else np.zeros((0, 0), np.int64)
    _loss_grad_lanes(W, problem.X, problem.Y, fi, fo, woff, problem.alphas, problem.nonlin_code, bidx, step, loss, G,
                     problem.arch)
    n, m = problem.Y.shape
    count = n if problem.batch_indices is None else problem.batch_indices.shape[1]
    g = G.reshape(-1, LANES)[:, 0] * (2.0 / (count * m))
    grads, k = [], 0
    for w in weights:
        grads.append(g[k : k + w.size].reshape(w.shape))
        k += w.size
    return float(loss[0] / (n * m)), grads
