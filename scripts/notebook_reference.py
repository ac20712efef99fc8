"""Train a config's window with the author's notebook code in JAX, and compare with a fractaltrain render.

An independent check of the whole chain (draws, network, training, measure):
the notebook's ``gen_img`` re-expressed in JAX (jit + vmap, float64, the
original threefry), on the same pixel values as a fractaltrain render, and the
share of pixels whose sign (converged or diverged) agrees.  JAX is an optional
extra (``pip install 'fractaltrain[jax]'``); fractaltrain never needs it.

    python scripts/notebook_reference.py configs/tanh_baseline.yaml --window paper \\
        --resolution 40x40 [--steps 500] [--npz out/tanh_baseline.npz]

Without ``--npz`` the render is made here, in-process, through the same code as
``fractaltrain render``.  Prints one JSON line: sign agreement, pixels, times.

The notebook samples ``jnp.logspace(lo, hi, n)`` on each axis; fractaltrain's
pixel centres of a ``sampling: endpoints`` view are the same points, and both
are given here the pixel values fractaltrain computes, so the comparison is of
training only.  Non-finite notebook values (a diverged run whose loss overflowed
makes the notebook's measure NaN) count as diverged.
"""

from __future__ import annotations

import argparse
import json
import time

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--window", default=None, help="X0,X1,Y0,Y1 or a view name (as render --window)")
    ap.add_argument("--resolution", default="40x40")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--npz", default=None, help="a fractaltrain render of the same config, window and resolution")
    args = ap.parse_args()

    from fractaltrain.config import load_config, with_overrides
    from fractaltrain.window import config_window
    from fractaltrain.window import axis_values

    cfg = with_overrides(load_config(args.config), resolution=args.resolution, steps=args.steps, window=args.window)
    w = config_window(cfg)
    nx, ny = cfg.resolution
    xv = axis_values(w.x0, w.x1, nx, cfg.x.scale)
    yv = axis_values(w.y0, w.y1, ny, cfg.y.scale)
    t0 = time.perf_counter()
    if args.npz:
        ours = np.load(args.npz)["measure"]
    else:
        from fractaltrain.landscape import compute_tile
        from fractaltrain.problem import build_problem
        from fractaltrain.store import TileSpec

        ours = compute_tile(build_problem(cfg), xv, yv, TileSpec(0, 0, 0, ny, 0, nx))[..., 0]
    t_ours = time.perf_counter() - t0
    XX, YY = np.meshgrid(xv, yv)
    t0 = time.perf_counter()
    ref = notebook_values(cfg, XX.ravel(), YY.ravel()).reshape(ny, nx)
    t_ref = time.perf_counter() - t0
    ours_div = ours > 0
    ref_div = ~(ref < 0)  # NaN (overflowed) counts as diverged
    agree = float(np.mean(ours_div == ref_div))
    print(json.dumps({
        "config": cfg.name, "window": [w.x0, w.x1, w.y0, w.y1], "resolution": f"{nx}x{ny}",
        "steps": cfg.training.steps, "sign_agreement": agree, "pixels": int(ours.size),
        "diverged_share_ours": float(ours_div.mean()), "diverged_share_notebook": float(ref_div.mean()),
        "seconds_ours": round(t_ours, 2), "seconds_notebook_jax": round(t_ref, 2),
    }))


if __name__ == "__main__":
    main()
