"""fractaltrain.problem.threefry against real JAX (tests/fixtures/jax_threefry.npz, scripts/fixtures/make_jax_fixtures.py).

Every comparison is bitwise.  The normals' largest ulp difference is printed
(``pytest -s``) so a drift would show its size, not only that it happened.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from fractaltrain.problem import threefry as tf

FIXTURES = np.load(Path(__file__).parent / "fixtures" / "jax_threefry.npz")


def keys_with(prefix: str) -> list[str]:
    return [k for k in FIXTURES.files if k.startswith(prefix)]


def ulps(a: np.ndarray, b: np.ndarray) -> int:
    """Largest distance in units in the last place (both arrays finite float64)."""
    ia = a.view(np.int64).astype(object)
    ib = b.view(np.int64).astype(object)
    return int(max((abs(x - y) for x, y in zip(ia.ravel(), ib.ravel())), default=0))


def test_check_value_from_the_issue():
    key = tf.split(tf.prng_key(0))[1]
    w0 = tf.normal(tf.split(key, 2)[0], (16, 16))
    np.testing.assert_allclose(w0[0, :4], [1.80203513, 0.59166611, 2.01222591, -0.75528509], atol=5e-9)


@pytest.mark.parametrize("name", keys_with("key/"))
def test_prng_key(name):
    assert np.array_equal(tf.prng_key(int(name.split("/")[1])), FIXTURES[name])


@pytest.mark.parametrize("name", keys_with("split/"))
def test_split(name):
    _, seed, n = name.split("/")
    assert np.array_equal(tf.split(tf.prng_key(int(seed)), int(n)), FIXTURES[name])


def _shape(tag: str) -> tuple[int, ...]:
    return tuple(int(v) for v in tag.split("x"))


@pytest.mark.parametrize("name", keys_with("bits/") + keys_with("uniform/") + keys_with("randint/"))
def test_bits_uniform_randint(name):
    kind, seed, tag = name.split("/")
    key, shape = tf.prng_key(int(seed)), _shape(tag)
    got = {
        "bits": lambda: tf.random_bits(key, 64, shape),
        "uniform": lambda: tf.uniform(key, shape),
        "randint": lambda: tf.randint(key, shape, 0, 272),
    }[kind]()
    want = FIXTURES[name]
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got.view(np.uint64) if kind == "uniform" else got,
                          want.view(np.uint64) if kind == "uniform" else want)


def test_normals_bitwise_over_100k():
    names = keys_with("normal/")
    got = [tf.normal(tf.prng_key(int(n.split("/")[1])), _shape(n.split("/")[2])) for n in names]
    want = [FIXTURES[n] for n in names]
    got.append(tf.normal(tf.prng_key(7), (350, 300)))
    want.append(FIXTURES["normal_big"])
    g = np.concatenate([a.ravel() for a in got])
    w = np.concatenate([a.ravel() for a in want])
    assert g.size >= 100_000
    worst = ulps(g, w)
    print(f"\n{g.size} normals, largest difference {worst} ulp (JAX {FIXTURES['meta/jax_version']})")
    assert worst == 0


@pytest.mark.parametrize("name", keys_with("minibatch/"))
def test_minibatch_sequences(name):
    from fractaltrain.problem import notebook_batch_indices

    _, steps, batch, n = name.split("/")
    got = notebook_batch_indices(42, int(steps), int(batch), int(n))
    assert got.dtype == np.int64
    assert np.array_equal(got, FIXTURES[name])


def test_minibatch_sequence_depends_on_steps():
    # split(key, n) depends on n: the 1000-step sequence is not the 500-step one extended.
    a = FIXTURES["minibatch/500/16/272"]
    b = FIXTURES["minibatch/1000/16/272"]
    assert not np.array_equal(a, b[:500])


def test_fma_is_correctly_rounded():
    rng = np.random.default_rng(3)
    a = rng.standard_normal(3000) * 10.0 ** rng.integers(-8, 8, 3000)
    b = rng.standard_normal(3000)
    c = -a * b * (1 + rng.standard_normal(3000) * 1e-12)  # heavy cancellation
    c[::2] = rng.standard_normal(1500)
    got = tf.fma(a, b, c)
    exact = [float(Fraction(x) * Fraction(y) + Fraction(z)) for x, y, z in zip(a, b, c)]
    assert np.array_equal(got, np.array(exact))


def test_erf_inv_edges():
    out = tf.erf_inv(np.array([1.0, -1.0, 0.0, 1.5]))
    assert out[0] == np.inf and out[1] == -np.inf and out[2] == 0.0 and np.isnan(out[3])


def test_bad_arguments():
    with pytest.raises(ValueError):
        tf.prng_key(2**64)
    with pytest.raises(ValueError):
        tf.randint(tf.prng_key(0), (2,), 5, 5)
    with pytest.raises(ValueError):
        tf.random_bits(tf.prng_key(0), 16, (2,))
