"""Write tests/fixtures/jax_threefry.npz from real JAX: the reference for fractaltrain.threefry.

Run once with JAX installed (an optional extra: ``pip install 'fractaltrain[jax]'``)::

    python scripts/make_jax_fixtures.py [--out tests/fixtures/jax_threefry.npz]

It records, with JAX's original threefry (``jax_threefry_partitionable=False``,
as JAX 0.4.x used by the author's notebook) in x64 mode:

* keys from several seeds (negative and 64-bit ones included), and their splits
  into 1, 2, 3, 7 and 500 keys;
* 64-bit random bits, uniforms, and more than 100,000 float64 normals from
  several keys and shapes;
* int64 ``randint`` draws, and the notebook's minibatch index sequences
  (``split(PRNGKey(42), steps)``, one ``randint(keys[t], (batch,), 0, N)`` per
  step) for several step counts, batch sizes and data sizes;
* the notebook's whole problem draw (``gen_img``: weights, X, Y and the probe
  input) for several widths, depths, data sizes and output dimensions,
  written the way the notebook writes it.

The tests compare fractaltrain's numpy re-expression with these bit for bit.
The JAX version and the CPU are stored in the file, since XLA's CPU code
contracts multiply-adds into FMAs on hardware that has them.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np

SEEDS = (0, 1, 42, 7, -1234567, 2**40 + 3)
SPLITS = (1, 2, 3, 7, 500)
SHAPES = ((1,), (3,), (16, 16), (272, 16), (5, 7))
NORMAL_SHAPES = ((16, 1), (1, 16), (1001,))
BIG_NORMALS = (7, (350, 300))  # one seed, 105,000 normals: the ulp statistics
MINIBATCH = ((500, 16, 272), (1000, 16, 272), (100, 4, 16), (37, 1, 1), (20, 16, 40))
# (width, depth, N, target_dim, input_dim): input_dim None = width, as in the notebook
PROBLEMS = ((16, 2, 272, 1), (16, 2, 1, 1), (16, 2, 16, 1), (8, 2, 72, 1), (8, 3, 136, 1), (5, 4, 20, 5))


def notebook_problem(random, width: int, depth: int, n: int, target_dim: int):
    """The notebook's gen_img draws, line for line."""
    rng = random.PRNGKey(0)
    rng, srng = random.split(rng)
    keys = random.split(srng, depth)
    theta = []
    out_width = width
    for i in range(depth):
        if i == depth - 1:
            out_width = target_dim
        theta.append(np.asarray(random.normal(keys[i], (width, out_width))))
    rng, srng = random.split(rng)
    X = np.asarray(random.normal(srng, (n, width)))
    rng, srng = random.split(rng)
    Y = np.asarray(random.normal(srng, (n, target_dim)))
    probe = np.asarray(random.normal(random.PRNGKey(-1234567), (1, width)))
    return theta, X, Y, probe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "tests/fixtures/jax_threefry.npz")
    args = ap.parse_args()

    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_threefry_partitionable", False)
    from jax import random

    out: dict[str, np.ndarray] = {}
    for s in SEEDS:
        key = random.PRNGKey(s)
        out[f"key/{s}"] = np.asarray(key)
        for n in SPLITS:
            out[f"split/{s}/{n}"] = np.asarray(random.split(key, n))
        for shape in SHAPES:
            tag = "x".join(map(str, shape))
            out[f"bits/{s}/{tag}"] = np.asarray(random.bits(key, shape, dtype=np.uint64))
            out[f"uniform/{s}/{tag}"] = np.asarray(random.uniform(key, shape, dtype=np.float64))
            out[f"randint/{s}/{tag}"] = np.asarray(random.randint(key, shape, 0, 272))
        for shape in NORMAL_SHAPES:
            tag = "x".join(map(str, shape))
            out[f"normal/{s}/{tag}"] = np.asarray(random.normal(key, shape, dtype=np.float64))
    seed, shape = BIG_NORMALS
    out["normal_big"] = np.asarray(random.normal(random.PRNGKey(seed), shape, dtype=np.float64))
    for steps, batch, n in MINIBATCH:
        keys = random.split(random.PRNGKey(42), steps)
        out[f"minibatch/{steps}/{batch}/{n}"] = np.stack(
            [np.asarray(random.randint(k, (batch,), 0, n)) for k in keys]
        )
    for width, depth, n, target_dim in PROBLEMS:
        theta, X, Y, probe = notebook_problem(random, width, depth, n, target_dim)
        tag = f"{width}/{depth}/{n}/{target_dim}"
        for i, w in enumerate(theta):
            out[f"problem/{tag}/W{i}"] = w
        out[f"problem/{tag}/X"] = X
        out[f"problem/{tag}/Y"] = Y
        out[f"problem/{tag}/probe"] = probe
    out["meta/jax_version"] = np.array(jax.__version__)
    out["meta/machine"] = np.array(f"{platform.machine()} {platform.processor()}".strip())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    n_normals = sum(v.size for k, v in out.items() if k.startswith("normal"))
    print(f"wrote {args.out}: {len(out)} arrays, {n_normals} normals, JAX {jax.__version__}")


if __name__ == "__main__":
    main()
