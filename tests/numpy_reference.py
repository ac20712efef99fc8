"""An independent, plain-numpy statement of the training the kernel does.

Written the obvious way (whole-batch matrix products, explicit backprop) so a
disagreement with the numba kernel points at a bug in one of them.
"""

import numpy as np


def _sigma(z, nonlinearity):
    if nonlinearity == "tanh":
        a = np.tanh(z)
        return a, 1.0 - a * a
    if nonlinearity == "relu":
        return np.maximum(z, 0.0), (z > 0).astype(float)
    return z, np.ones_like(z)


def forward(weights, X, alphas, nonlinearity):
    acts, derivs = [X], []
    a = X
    for l, W in enumerate(weights[:-1]):
        a, d = _sigma(alphas[l] * (a @ W), nonlinearity)
        acts.append(a)
        derivs.append(d)
    return alphas[-1] * (a @ weights[-1]), acts, derivs


def loss(weights, X, Y, alphas, nonlinearity):
    out, _, _ = forward(weights, X, alphas, nonlinearity)
    return np.mean((out - Y) ** 2)


def grad(weights, X, Y, alphas, nonlinearity):
    out, acts, derivs = forward(weights, X, alphas, nonlinearity)
    d = 2.0 * (out - Y) / out.size  # dL/d(out)
    grads = [None] * len(weights)
    for l in range(len(weights) - 1, -1, -1):
        d = d * alphas[l]  # dL/d(a_l W_l)
        grads[l] = acts[l].T @ d
        if l > 0:
            d = (d @ weights[l].T) * derivs[l - 1]
    return grads


def train(problem, lrs, drift=0.0, offset=0.0, scale=1.0, optimizer=None, factor=None):
    """Losses l_0..l_{T-1}, and the probe output after the last step.

    ``optimizer`` is None (steepest descent) or a dict with ``name`` (momentum,
    nesterov, adam, adamw) and its settings, applied as optax states them
    (issue 32), with ``β^t`` from ``**``; ``factor(t)`` (a schedule) multiplies
    every rate at step ``t``.
    """
    cfg = problem.config
    nl = cfg.network.nonlinearity
    W = [scale * w.copy() for w in problem.weights]
    W[0] = W[0] + offset
    losses = []
    state = None  # the optimizer's state; None before its first step
    for t in range(cfg.training.steps):
        W[0] = W[0] + drift
        losses.append(loss(W, problem.X, problem.Y, problem.alphas, nl))
        if problem.batch_indices is None:
            Xb, Yb = problem.X, problem.Y
        else:
            idx = problem.batch_indices[t]
            Xb, Yb = problem.X[idx], problem.Y[idx]
        g = grad(W, Xb, Yb, problem.alphas, nl)
        rates = lrs if factor is None else [lr * factor(t) for lr in lrs]
        if optimizer is None:
            W = [w - lr * gw for w, lr, gw in zip(W, rates, g)]
        else:
            W, state = _optimizer_step(optimizer, W, g, rates, t + 1, state)
    probe, _, _ = forward(W, problem.probe[None, :], problem.alphas, nl)
    return np.array(losses), float(probe[0, 0])


def _optimizer_step(opt, W, g, lrs, t, state):
    """One optimax-style step; ``state`` is None before the first."""
    name = opt["name"]
    if state is None:
        state = ([np.zeros_like(w) for w in W], [np.zeros_like(w) for w in W])
    s1, s2 = state
    out = []
    for k, (w, gw, lr) in enumerate(zip(W, g, lrs)):
        if name in ("momentum", "nesterov"):
            b = opt.get("momentum", 0.9)
            s1[k] = gw + b * s1[k]
            u = s1[k] if name == "momentum" else gw + b * s1[k]
        else:
            b1, b2, eps = opt.get("beta1", 0.9), opt.get("beta2", 0.999), opt.get("eps", 1e-8)
            s1[k] = b1 * s1[k] + (1 - b1) * gw
            s2[k] = b2 * s2[k] + (1 - b2) * gw**2
            u = (s1[k] / (1 - b1**t)) / (np.sqrt(s2[k] / (1 - b2**t)) + eps)
            if name == "adamw":
                u = u + opt.get("weight_decay", 1e-4) * w
        out.append(w - lr * u)
    return out, (s1, s2)
