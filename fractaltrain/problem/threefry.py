"""JAX's original threefry2x32 generator in numpy: the author's notebook draws, bit for bit.

The paper's pictures were rendered from the notebook's own random draws
(PAPER.md, "The author's notebook, exactly"): ``jax.random`` with JAX's
original (non-partitionable) threefry2x32 key splitting and bit generation,
in x64 mode.  Re-expressing those draws here lets a config reproduce the
published panels without JAX at run time.  Every function mirrors the JAX
function of the same name, and ``tests/test_threefry.py`` compares them bit for
bit with fixtures that ``scripts/fixtures/make_jax_fixtures.py`` writes with real JAX.

Keys are ``uint32`` arrays of shape ``(2,)`` (or ``(..., 2)`` for a batch of
keys, as ``split`` returns).  All integer arithmetic wraps modulo 2**32 or
2**64 exactly as in XLA.

Floating point: ``uniform`` and ``normal`` repeat the float64 operations of
XLA's CPU code one by one, with the same roundings: the Giles polynomial XLA
uses for ``erf_inv``, the Cephes-style rational function it uses for ``log1p``
of small arguments, the C library's ``log`` for the rest, and a fused
multiply-add (one rounding) wherever XLA's code generator contracts ``p*w + c``
into one, as it does on every CPU with FMA (x86-64 since 2013, and GPUs).  The
tests find no difference in over 100,000 normals against JAX 0.10 on such a CPU.
JAX on a CPU without FMA, or a GPU's own ``log``, may differ in the last bit of
a few normals; such a difference changes no picture.
"""

from __future__ import annotations

import math

import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def prng_key(seed: int) -> np.ndarray:
    """``jax.random.PRNGKey(seed)`` in x64 mode: the seed's two 32-bit halves.

    A negative seed is taken as its 64-bit two's complement, as JAX does
    (``PRNGKey(-1234567)`` is the notebook's probe key).
    """
    if not -(2**63) <= seed < 2**64:
        raise ValueError(f"seed must fit in 64 bits, got {seed}")
    s = seed % 2**64
    return np.array([s >> 32, s & 0xFFFFFFFF], dtype=np.uint32)


def _rotl(v: np.ndarray, r: int) -> np.ndarray:
    return (v << np.uint32(r)) | (v >> np.uint32(32 - r))


def threefry2x32(k0, k1, x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Threefry-2x32 block cipher, 20 rounds, on broadcastable uint32 arrays."""
    k0 = np.asarray(k0, dtype=np.uint32)
    k1 = np.asarray(k1, dtype=np.uint32)
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    with np.errstate(over="ignore"):
        x = [np.asarray(x0, dtype=np.uint32) + ks[0], np.asarray(x1, dtype=np.uint32) + ks[1]]
        for i in range(5):
            for r in _ROTATIONS[i % 2]:
                x[0] = x[0] + x[1]
                x[1] = _rotl(x[1], r) ^ x[0]
            x[0] = x[0] + ks[(i + 1) % 3]
            x[1] = x[1] + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x[0], x[1]


def threefry_2x32(key: np.ndarray, count: np.ndarray) -> np.ndarray:
    """JAX's ``threefry_2x32(key, count)``: encrypt a flat counter array with one key.

    The counter is cut into a first and a second half (padded with one zero
    when odd), the halves are the cipher's two words, and the output halves are
    concatenated again, which is why the bits depend on the array's length.
    """
    flat = np.asarray(count, dtype=np.uint32).ravel()
    odd = flat.size % 2
    if odd:
        flat = np.concatenate([flat, np.zeros(1, np.uint32)])
    half = flat.size // 2
    y0, y1 = threefry2x32(key[..., 0:1], key[..., 1:2], flat[:half], flat[half:])
    out = np.concatenate([y0, y1], axis=-1)
    if odd:
        out = out[..., :-1]
    return out


def split(key: np.ndarray, num: int = 2) -> np.ndarray:
    """``jax.random.split(key, num)`` (original scheme): ``num`` keys, shape (num, 2).

    A batch of keys ``(..., 2)`` gives ``(..., num, 2)``, like ``vmap(split)``.
    """
    key = np.asarray(key, dtype=np.uint32)
    bits = threefry_2x32(key, np.arange(2 * num, dtype=np.uint32))
    return bits.reshape(key.shape[:-1] + (num, 2))


def random_bits(key: np.ndarray, bit_width: int, shape: tuple[int, ...]) -> np.ndarray:
    """``jax.random.bits`` for 32- or 64-bit words (original scheme).

    A 64-bit draw of ``n`` words uses ``2n`` 32-bit words: the first ``n`` are
    the high halves and the last ``n`` the low halves.
    """
    key = np.asarray(key, dtype=np.uint32)
    size = math.prod(shape)
    count = size * bit_width // 32
    if count >= 2**32 - 1:
        raise ValueError(f"random_bits: {size} words is more than one threefry block allows")
    bits = threefry_2x32(key, np.arange(count, dtype=np.uint32))
    if bit_width == 32:
        return bits.reshape(key.shape[:-1] + tuple(shape))
    if bit_width != 64:
        raise ValueError(f"random_bits: bit_width must be 32 or 64, got {bit_width}")
    hi = bits[..., :size].astype(np.uint64)
    lo = bits[..., size:].astype(np.uint64)
    return ((hi << np.uint64(32)) | lo).reshape(key.shape[:-1] + tuple(shape))


def uniform(key: np.ndarray, shape: tuple[int, ...], minval: float = 0.0, maxval: float = 1.0) -> np.ndarray:
    """``jax.random.uniform`` in float64: the top 52 bits of a 64-bit draw as a mantissa."""
    bits = random_bits(key, 64, shape)
    one = np.array(1.0, dtype=np.float64).view(np.uint64)
    floats = ((bits >> np.uint64(12)) | one).view(np.float64) - 1.0
    lo = np.float64(minval)
    hi = np.float64(maxval)
    return np.maximum(lo, floats * (hi - lo) + lo)

# --------------------------------------------------------------------------- exact fused multiply-add
# XLA's CPU code generator contracts ``p * w + c`` into one FMA instruction (one rounding)
# wherever the hardware has it, so the polynomials below must round the same way.  numpy has
# no FMA, so it is emulated exactly: Dekker's product and Knuth's sum give a*b + c as an
# unevaluated sum, whose tail is rounded to odd before the final round to nearest (Boldo and
# Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms using rounding
# to odd", IEEE Trans. Computers 2008).  Exact while nothing overflows or underflows, which
# holds for every argument these polynomials see.

_SPLITTER = np.float64(2.0**27 + 1.0)


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _veltkamp(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = _SPLITTER * a
    hi = t - (t - a)
    return hi, a - hi


def _two_prod(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = a * b
    ah, al = _veltkamp(a)
    bh, bl = _veltkamp(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _add_round_odd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a + b rounded to odd: exact if representable, else the neighbour with an odd last bit."""
    s, e = _two_sum(a, b)
    even = (s.view(np.uint64) & np.uint64(1)) == 0
    fix = (e != 0) & even
    return np.where(fix, np.nextafter(s, np.where(e > 0, np.inf, -np.inf)), s)


def fma(a, b, c) -> np.ndarray:
    """Correctly rounded ``a * b + c`` in float64 (one rounding, as the FMA instruction)."""
    a, b, c = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, c)))
    with np.errstate(over="ignore", invalid="ignore"):
        uh, ul = _two_prod(a, b)
        th, tl = _two_sum(c, uh)
        out = th + _add_round_odd(tl, ul)
        # Non-finite inputs or products: the plain expression has the right inf/nan.
        plain = a * b + c
    return np.where(np.isfinite(plain) & np.isfinite(uh), out, plain)


# XLA's float64 erf_inv (M. Giles, "Approximating the erfinv function"), three pieces in w = -log1p(-x²).
_ERFINV_LT_6_25 = (
    -3.6444120640178196996e-21, -1.685059138182016589e-19, 1.2858480715256400167e-18,
    1.115787767802518096e-17, -1.333171662854620906e-16, 2.0972767875968561637e-17,
    6.6376381343583238325e-15, -4.0545662729752068639e-14, -8.1519341976054721522e-14,
    2.6335093153082322977e-12, -1.2975133253453532498e-11, -5.4154120542946279317e-11,
    1.051212273321532285e-09, -4.1126339803469836976e-09, -2.9070369957882005086e-08,
    4.2347877827932403518e-07, -1.3654692000834678645e-06, -1.3882523362786468719e-05,
    0.0001867342080340571352, -0.00074070253416626697512, -0.0060336708714301490533,
    0.24015818242558961693, 1.6536545626831027356,
)
_ERFINV_LT_16 = (
    2.2137376921775787049e-09, 9.0756561938885390979e-08, -2.7517406297064545428e-07,
    1.8239629214389227755e-08, 1.5027403968909827627e-06, -4.013867526981545969e-06,
    2.9234449089955446044e-06, 1.2475304481671778723e-05, -4.7318229009055733981e-05,
    6.8284851459573175448e-05, 2.4031110387097893999e-05, -0.0003550375203628474796,
    0.00095328937973738049703, -0.0016882755560235047313, 0.0024914420961078508066,
    -0.0037512085075692412107, 0.005370914553590063617, 1.0052589676941592334,
    3.0838856104922207635,
)
_ERFINV_GE_16 = (
    -2.7109920616438573243e-11, -2.5556418169965252055e-10, 1.5076572693500548083e-09,
    -3.7894654401267369937e-09, 7.6157012080783393804e-09, -1.4960026627149240478e-08,
    2.9147953450901080826e-08, -6.7711997758452339498e-08, 2.2900482228026654717e-07,
    -9.9298272942317002539e-07, 4.5260625972231537039e-06, -1.9681778105531670567e-05,
    7.5995277030017761139e-05, -0.00021503011930044477347, -0.00013871931833623122026,
    1.0103004648645343977, 4.8499064014085844221,
)

# XLA's log1p for |x| < sqrt(2) - 1: x - x²/2 + x³·P(x)/Q(x) (Cephes); log(1 + x) elsewhere.
_LOG1P_NUM = (
    4.5270000862445199635215e-5, 4.9854102823193375972212e-1, 6.5787325942061044846969e0,
    2.9911919328553073277375e1, 6.0949667980987787057556e1, 5.7112963590585538103336e1,
    2.0039553499201281259648e1,
)
_LOG1P_DEN = (
    1.0, 1.5062909083469192043167e1, 8.3047565967967209469434e1, 2.2176239823732856465394e2,
    3.0909872225312059774938e2, 2.1642788614495947685003e2, 6.0118660497603843919306e1,
)


def _horner(coeffs, x: np.ndarray) -> np.ndarray:
    """Coefficients highest power first, evaluated as XLA's EvaluatePolynomial does."""
    p = np.full_like(x, coeffs[0])
    for c in coeffs[1:]:
        p = fma(p, x, c)
    return p


_vlog = np.frompyfunc(math.log, 1, 1)


def _libm_log(v: np.ndarray) -> np.ndarray:
    """The C library's ``log`` per element, as XLA's CPU code calls it.

    numpy's own vectorised ``np.log`` can differ from it in the last bit.
    """
    v = np.asarray(v, dtype=np.float64)
    out = np.full(v.shape, np.nan)
    pos = v > 0
    out[v == 0] = -np.inf
    out[np.isposinf(v)] = np.inf
    ok = pos & np.isfinite(v)
    out[ok] = _vlog(v[ok]).astype(np.float64)
    return out


def log1p(x: np.ndarray) -> np.ndarray:
    """XLA's elementwise float64 ``log1p`` (see the constants above)."""
    x = np.asarray(x, dtype=np.float64)
    x2 = x * x
    small = x + fma(x2, -0.5, (x * x2) * (_horner(_LOG1P_NUM, x) / _horner(_LOG1P_DEN, x)))
    large = _libm_log(x + 1.0)
    return np.where(np.abs(x) < 0.41421356237309504880, small, large)


def erf_inv(x: np.ndarray) -> np.ndarray:
    """XLA's float64 ``erf_inv``: Giles' piecewise polynomial, ±inf at ±1 (nan beyond)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        w = -log1p(-x * x)
        lt625 = w < 6.25
        lt16 = w < 16.0
        sw = np.sqrt(w)
        t = np.where(lt625, w - 3.125, sw - np.where(lt16, 3.25, 5.0))

        def coeff(i):
            c = np.full_like(x, _ERFINV_LT_6_25[i])
            if i < 19:
                c = np.where(lt625, c, _ERFINV_LT_16[i])
            if i < 17:
                c = np.where(lt16, c, _ERFINV_GE_16[i])
            return c

        p = coeff(0)
        for i in range(1, 17):
            p = fma(p, t, coeff(i))
        for i in range(17, 19):
            p = np.where(lt16, fma(p, t, coeff(i)), p)
        for i in range(19, 23):
            p = np.where(lt625, fma(p, t, coeff(i)), p)
        return np.where(np.abs(x) == 1.0, x * np.inf, p * x)


def normal(key: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``jax.random.normal`` in float64: ``sqrt(2)·erf_inv(u)``, u uniform in (−1, 1)."""
    lo = np.nextafter(np.float64(-1.0), np.float64(np.inf))
    u = uniform(key, shape, lo, 1.0)
    return np.float64(math.sqrt(2.0)) * erf_inv(u)


def randint(key: np.ndarray, shape: tuple[int, ...], minval: int, maxval: int) -> np.ndarray:
    """``jax.random.randint`` with int64 output (x64 mode), as JAX's ``_randint``.

    A batch of keys ``(..., 2)`` gives ``(...,) + shape``, like ``vmap(randint)``.
    Two 64-bit draws are combined as ``(hi mod span)·(2**64 mod span) + lo mod span``,
    wrapping modulo 2**64, which lowers the bias of a plain modulo.
    """
    if not -(2**63) <= minval < maxval <= 2**63 - 1:
        raise ValueError(f"randint: need minval < maxval within int64, got {minval}, {maxval}")
    keys = split(key, 2)
    k1, k2 = keys[..., 0, :], keys[..., 1, :]
    higher = random_bits(k1, 64, shape)
    lower = random_bits(k2, 64, shape)
    span = np.uint64(maxval - minval)
    multiplier = np.uint64(2**32) % span
    with np.errstate(over="ignore"):
        multiplier = (multiplier * multiplier) % span
        offset = (higher % span) * multiplier + (lower % span)
    offset = offset % span
    return (np.int64(minval) + offset.astype(np.int64)).astype(np.int64)
