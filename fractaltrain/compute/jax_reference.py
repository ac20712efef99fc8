"""The author's notebook's training in JAX: an independent reference for the kernels.

The notebook's ``gen_img`` re-expressed in JAX (jit + vmap, float64, the
original threefry), trained on any pixel values.  Benchmarks measure their JAX
anchor with it on the same grid (``scripts/bench/bench_kernel.py``), and
``scripts/notebook_reference.py`` compares a render's signs with it.  JAX is an
optional extra (``pip install 'fractaltrain[jax]'``), imported only when a
trainer is built; fractaltrain never needs it.
"""

from __future__ import annotations

import numpy as np


def notebook_measure(jnp, v, max_val=1e6):
    """The notebook's convergence_measure (readout 'loss')."""
    fin = jnp.isfinite(v)
    v = v * fin + max_val * (1 - fin)
    v = v / v[0]
    exceeds = v > max_val
    v = v * (1 - exceeds) + max_val * exceeds
    converged = jnp.mean(v[-20:]) < 1
    return jnp.where(converged, -jnp.sum(v), jnp.sum(1 / v))


def notebook_values(cfg, hp_x: np.ndarray, hp_y: np.ndarray) -> np.ndarray:
    """Train every (x, y) hyperparameter pair with the notebook's own code (JAX)."""
    return notebook_trainer(cfg)(hp_x, hp_y)


def notebook_trainer(cfg):
    """``train(hp_x, hp_y, steps=None) -> measures``: the notebook's training, its jitted step built once.

    Calling ``train`` again on arrays of the same shape reuses the compiled step
    (scripts/bench/bench_kernel.py warms it up with ``steps=2``, then times a full run).
    """
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_threefry_partitionable", False)
    import jax.numpy as jnp
    from jax import random

    net = cfg.network
    nonlin = net.nonlinearity
    width, depth, target_dim = net.width, net.depth, net.output_dim
    n = cfg.data_size
    if cfg.x.param == "offset_drift" and cfg.y.param == "lr":
        phase = "paraminit_vs_lr"
    elif (cfg.x.param, cfg.y.param) == ("lr_input", "lr_output") and depth == 2:
        phase = "lr_vs_lr"
    else:
        raise SystemExit("notebook_reference: the notebook's axes are lr_input/lr_output (depth 2) or offset_drift/lr")

    def net_f(theta, X):
        for W in theta:
            Z = jnp.dot(X, W) / jnp.sqrt(W.shape[0])
            if nonlin == "tanh":
                X = jax.nn.tanh(Z * jnp.sqrt(2))
            elif nonlin == "relu":
                X = jax.nn.relu(Z) * jnp.sqrt(2)
            else:
                X = Z
        return Z / jnp.sqrt(W.shape[0])

    def loss(theta, X, Y):
        return jnp.mean((net_f(theta, X) - Y) ** 2)

    def train_step(rng, theta, hparams, X, Y):
        if phase == "lr_vs_lr":
            lrs = [hparams[i % 2] for i in range(len(theta))]
        else:
            theta = [t + hparams[0] if i == 0 else t for i, t in enumerate(theta)]
            lrs = [hparams[1] for _ in theta]
        if cfg.batch_size is None:
            _loss, grad = jax.value_and_grad(loss)(theta, X, Y)
        else:
            idx = random.randint(rng, (cfg.batch_size,), 0, X.shape[0])
            _loss = loss(theta, X, Y)
            grad = jax.grad(loss)(theta, X[idx], Y[idx])
        return [t - lr * g for t, g, lr in zip(theta, grad, lrs)], _loss

    step = jax.jit(jax.vmap(train_step, in_axes=(None, 0, 0, None, None)))

    rng = random.PRNGKey(cfg.network.seed)
    rng, srng = random.split(rng)
    keys = random.split(srng, depth)
    theta, out_width = [], width
    for i in range(depth):
        if i == depth - 1:
            out_width = target_dim
        theta.append(random.normal(keys[i], (width, out_width)))
    rng = random.PRNGKey(cfg.data.seed)
    rng, _ = random.split(rng)
    rng, srng = random.split(rng)
    X = random.normal(srng, (n, width))
    rng, srng = random.split(rng)
    Y = random.normal(srng, (n, target_dim))

    keys = random.split(random.PRNGKey(cfg.training.seed), cfg.training.steps)
    measure = jax.jit(jax.vmap(lambda v: notebook_measure(jnp, v)))

    def train(hp_x, hp_y, steps=None):
        hp = jnp.stack([jnp.asarray(hp_x), jnp.asarray(hp_y)], axis=-1)
        th = [jnp.tile(u, (hp.shape[0], 1, 1)) for u in theta]
        losses = []
        for k in keys[:steps]:
            th, lv = step(k, th, hp, X, Y)
            losses.append(lv)
        return np.asarray(measure(jnp.stack(losses, axis=-1)))

    return train
