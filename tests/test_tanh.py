"""Accuracy and special-value tests of fractaltrain.compute.kernel.tanh.tanh64.

The reference is numpy's tanh evaluated in 80-bit long double (11 more bits
than float64, so the error of tanh64 is measured in fractional ulps); it is
cross-checked against math.tanh on a subsample.
"""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from fractaltrain.compute.kernel.tanh import MAX_ULP, tanh_array

LN2 = math.log(2.0)
EXTENDED = np.finfo(np.longdouble).nmant >= 63


def tanh64_np(x):
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x)
    tanh_array(x, out)
    return out


def reference(x):
    """tanh in long double (falls back to float64 numpy on other platforms)."""
    return np.tanh(x.astype(np.longdouble) if EXTENDED else x)


def ulp_error(x, y):
    """|y - tanh(x)| in units of the float64 ulp at the exact tanh(x)."""
    ref = reference(x)
    _, ex = np.frexp(np.abs(ref))
    ulp = np.maximum(np.ldexp(np.ones_like(ref), ex - 53), 2.0**-1074)
    return np.asarray(np.abs(y.astype(ref.dtype) - ref) / ulp, dtype=np.float64)


def ordered(v):
    """float64 -> int64 key that is monotone in the float value (for ulp distances)."""
    i = v.view(np.int64)
    return np.where(i < 0, np.int64(-(2**63)) - i, i)


def around(center, n_ulp):
    """The 2*n_ulp+1 consecutive doubles centred on float(center)."""
    c = np.float64(center)
    return c + np.arange(-n_ulp, n_ulp + 1) * np.spacing(c)


@pytest.mark.slow
def test_points():
    """Several million points over the whole real line, both signs."""
    rng = np.random.default_rng(20240611)
    n = 2_000_000
    sign = rng.choice([-1.0, 1.0], n)
    branch_points = [0.55, 19.06, 20.0] + [(m + 0.5) * LN2 / 2 for m in range(60)]
    x = np.concatenate(
        [
            rng.uniform(-25.0, 25.0, n),
            sign * np.exp(rng.uniform(math.log(1e-320), math.log(1e3), n)),
            rng.uniform(-1.2, 1.2, n // 2),
            np.concatenate([around(c, 20_000) for c in branch_points]),
            -np.concatenate([around(c, 2_000) for c in branch_points]),
        ]
    )
    y = tanh64_np(x)
    err = ulp_error(x, y)
    worst = int(np.argmax(err))
    print(f"\ntanh64: {x.size} points, max error {err[worst]:.4f} ulp at x={x[worst]!r}")
    assert err[worst] <= MAX_ULP + (0.0 if EXTENDED else 1.0)
    # Exactly odd (bitwise) on every point.
    assert np.array_equal(tanh64_np(-x).view(np.int64), (-y).view(np.int64))
    # tanh(x) == x to within an ulp for tiny arguments.
    tiny = np.abs(x) < 1e-8
    assert tiny.sum() > 100_000
    assert np.all(np.abs(ordered(y[tiny]) - ordered(x[tiny])) <= 1)


def test_reference_agrees_with_math_tanh():
    """The long double reference agrees with math.tanh (glibc: within 2 ulp)."""
    rng = np.random.default_rng(7)
    x = np.concatenate(
        [rng.uniform(-25.0, 25.0, 50_000), np.exp(rng.uniform(-740.0, 7.0, 50_000))]
    )
    m = np.array([math.tanh(v) for v in x])
    y = tanh64_np(x)
    dist = np.abs(ordered(y) - ordered(m))
    print(f"\nmath.tanh: max error {ulp_error(x, m).max():.4f} ulp; "
          f"tanh64 - math.tanh: max {dist.max()} ulp")
    assert ulp_error(x, m).max() <= 2.0 + (0.0 if EXTENDED else 1.0)
    assert dist.max() <= math.floor(MAX_ULP + 2.0)


def test_same_bits_without_fma():
    """The non-FMA code path (Dekker product) gives bit-identical results."""
    code = (
        "import numpy as np, sys; from fractaltrain.compute.kernel.tanh import tanh_array;"
        "x = np.linspace(-3.0, 3.0, 200_001); x = np.concatenate([x, x * 7]);"
        "o = np.empty_like(x); tanh_array(x, o); sys.stdout.write(o.tobytes().hex())"
    )
    env = dict(os.environ, NUMBA_CPU_NAME="generic")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, timeout=120)
    x = np.linspace(-3.0, 3.0, 200_001)
    x = np.concatenate([x, x * 7])
    assert bytes.fromhex(res.stdout) == tanh64_np(x).tobytes()


@pytest.mark.slow
def test_monotone():
    """Non-decreasing on a dense sorted sample, including across the branch switches."""
    rng = np.random.default_rng(3)
    pts = [0.55, 19.06, 20.0] + [(m + 0.5) * LN2 / 2 for m in range(60)]
    x = np.concatenate(
        [rng.uniform(-25.0, 25.0, 1_000_000), np.linspace(-3.0, 3.0, 1_000_001)]
        + [around(s * c, 3_000) for c in pts for s in (1.0, -1.0)]
    )
    x = np.unique(x)
    assert np.all(np.diff(tanh64_np(x)) >= 0.0)


@pytest.mark.parametrize(
    "x, expected",
    [
        (0.0, 0.0),
        (-0.0, -0.0),
        (math.inf, 1.0),
        (-math.inf, -1.0),
        (5e-324, 5e-324),
        (-5e-324, -5e-324),
        (2.225073858507201e-308, 2.225073858507201e-308),  # largest subnormal
        (-2.2250738585072014e-308, -2.2250738585072014e-308),  # smallest normal
        (1e-300, 1e-300),
        (1.7976931348623157e308, 1.0),
        (-1.7976931348623157e308, -1.0),
        (19.1, 1.0),
        (-40.0, -1.0),
    ],
)
def test_special_values(x, expected):
    y = tanh64_np(np.array([x]))[0]
    assert y == expected
    assert math.copysign(1.0, y) == math.copysign(1.0, expected)  # sign of zero


def test_nan():
    y = tanh64_np(np.array([math.nan, -math.nan]))
    assert np.isnan(y).all()
