"""Double-double arithmetic and ``dd_tanh`` as CUDA device functions, bit for bit the CPU kernel's dd.py.

Why
---
The double-double CUDA kernel (ddkernel.py) must give the CPU double-double
kernel's bits, so every function here repeats its twin in
fractaltrain/compute/kernel/dd.py operation by operation, in the same order,
with the same constants (taken from that module, so the two cannot drift
apart).  Two things differ from a plain transcription:

* Contraction.  NVVM and ptxas fuse ``a*b + c`` into one ``fma.rn.f64``
  unless told otherwise, and a fused product rounds once where the CPU rounds
  twice.  Every product therefore goes through :func:`dmul` (``mul.rn.f64``,
  which the PTX ISA guarantees is never fused), as in ops.py; sums and the
  (correctly rounded) divisions need no guard.
* The one fused multiply-add of the algorithms, :func:`prod_err`, must be
  *exact*, as the CPU's ``llvm.fma.f64``: on the GPU it is ``cuda.fma``
  (``fma.rn.f64``).  In numba-cuda's simulator ``cuda.fma`` is ``a*b + c``
  (two roundings) and this Python (3.11) has no ``math.fma``, so there it is
  Dekker's exact product where that is exact (both factors between 2^-450
  and 2^450: no overflow in the split, no underflow in the partial products)
  and exact rational arithmetic elsewhere; either gives the bits of an exact
  FMA, i.e. of the CPU kernel on an FMA host.

In the simulator the functions here are plain Python functions, not
simulated device functions: the simulator takes a per-module lock on every
device-function call, and a double-double tanh makes some hundred calls, so a
simulated device function would make the tests minutes slower.  The source is
the same; on a GPU each function is ``cuda.jit(device=True, inline="always")``.
"""

import math
from fractions import Fraction

from numba import cuda

from fractaltrain.compute.gpu.ops import SIMULATOR
from fractaltrain.compute.kernel import dd as _cpu_dd

# dd_tanh's constants, taken from the CPU module so the two cannot drift apart
_HALVINGS, _CLAMP, _TINY, _SCALE = _cpu_dd._HALVINGS, _cpu_dd._CLAMP, _cpu_dd._TINY, _cpu_dd._SCALE
_T7, _T8, _T9, _T10, _T11, _T12 = _cpu_dd._T7, _cpu_dd._T8, _cpu_dd._T9, _cpu_dd._T10, _cpu_dd._T11, _cpu_dd._T12
_C3H, _C3L, _C4H, _C4L = _cpu_dd._C3H, _cpu_dd._C3L, _cpu_dd._C4H, _cpu_dd._C4L
_C5H, _C5L, _C6H, _C6L = _cpu_dd._C5H, _cpu_dd._C5L, _cpu_dd._C6H, _cpu_dd._C6L

_DEKKER_MIN, _DEKKER_MAX = 2.0**-450, 2.0**450  # where Dekker's product is exact (simulator)

if SIMULATOR:

    def device(fn):
        """Plain Python in the simulator (no per-call lock); see the module docstring."""
        return fn

    def dmul(a, b):
        """``a * b``, rounded (Python floats never fuse)."""
        return a * b

    def prod_err(a, b, p):
        """The exact rounding error ``a*b - p`` of ``p = fl(a*b)``, rounded once as ``fma(a, b, -p)``."""
        if _DEKKER_MIN < abs(a) < _DEKKER_MAX and _DEKKER_MIN < abs(b) < _DEKKER_MAX:
            split = 134217729.0  # 2**27 + 1, as dd._prod_err without FMA
            t = split * a
            ah = t - (t - a)
            al = a - ah
            t = split * b
            bh = t - (t - b)
            bl = b - bh
            return (((ah * bh - p) + ah * bl) + al * bh) + al * bl
        if math.isfinite(a) and math.isfinite(b):
            if not math.isfinite(p):  # the product overflowed: fma(a, b, -inf) is -inf
                return -p
            return float(Fraction(float(a)) * Fraction(float(b)) - Fraction(float(p)))
        return a * b - p  # inf or NaN factors: the fma's IEEE result

else:  # pragma: no cover - needs a GPU
    from fractaltrain.compute.gpu.ops import mul as dmul

    device = cuda.jit(device=True, inline="always")

    @device
    def prod_err(a, b, p):
        """The exact rounding error ``a*b - p`` of ``p = fl(a*b)``: one ``fma.rn.f64``."""
        return cuda.fma(a, b, -p)


@device
def two_sum(a, b):
    """``(s, e)`` with ``s = fl(a + b)`` and ``a + b = s + e`` exactly (dd.two_sum)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@device
def fast_two_sum(a, b):
    """``(s, e)`` with ``a + b = s + e`` exactly, given ``|a| >= |b|`` (dd.fast_two_sum)."""
    s = a + b
    return s, b - (s - a)


@device
def dd_add(ah, al, bh, bl):
    """``a + b``, the sloppy double-double sum (dd.dd_add)."""
    s, e = two_sum(ah, bh)
    return fast_two_sum(s, e + (al + bl))


@device
def dd_add_d(ah, al, b):
    """``a + b`` for a float64 ``b`` (dd.dd_add_d)."""
    s, e = two_sum(ah, b)
    return fast_two_sum(s, e + al)


@device
def dd_mul(ah, al, bh, bl):
    """``a · b`` (dd.dd_mul): the exact product of the high parts plus the cross terms."""
    p = dmul(ah, bh)
    e = prod_err(ah, bh, p)
    return fast_two_sum(p, e + (dmul(ah, bl) + dmul(al, bh)))


@device
def dd_mul_d(ah, al, b):
    """``a · b`` for a float64 ``b`` (dd.dd_mul_d)."""
    p = dmul(ah, b)
    e = prod_err(ah, b, p)
    return fast_two_sum(p, e + dmul(al, b))


@device
def dd_div(ah, al, bh, bl):
    """``a / b`` (dd.dd_div): the float64 quotient and one correction from the remainder."""
    q1 = ah / bh
    ph, pl = dd_mul_d(bh, bl, q1)
    rh, rl = dd_add(ah, al, -ph, -pl)
    q2 = (rh + rl) / bh
    return fast_two_sum(q1, q2)


@device
def dd_sqrt(ah, al):
    """``sqrt(a)`` (dd.dd_sqrt): the float64 root and one Newton correction from the remainder."""
    q = math.sqrt(ah)
    if q == 0.0 or not math.isfinite(q):
        return q, 0.0
    p = dmul(q, q)
    e = prod_err(q, q, p)
    rh, rl = dd_add(ah, al, -p, -e)
    return fast_two_sum(q, (rh + rl) / dmul(2.0, q))


@device
def dd_tanh(xh, xl):
    """``tanh(x)`` in double-double, dd.dd_tanh step for step (see its docstring for the method).

    ``expm1`` of ``|x| / 2**13`` by a Taylor polynomial, 14 doublings, then
    ``E / (E + 2)``; the polynomial's float64 part goes through :func:`dmul`
    so that no product is fused into a sum, as on the CPU.
    """
    neg = xh < 0.0
    ah = -xh if neg else xh
    al = -xl if neg else xl
    clamp = not (ah < _CLAMP)
    rh = dmul(_CLAMP if clamp else ah, _SCALE)
    rl = dmul(0.0 if clamp else al, _SCALE)
    t = _T7 + dmul(rh, _T8 + dmul(rh, _T9 + dmul(rh, _T10 + dmul(rh, _T11 + dmul(rh, _T12)))))
    sh, sl = dd_add(_C6H, _C6L, dmul(rh, t), 0.0)
    sh, sl = dd_mul(sh, sl, rh, rl)
    sh, sl = dd_add(_C5H, _C5L, sh, sl)
    sh, sl = dd_mul(sh, sl, rh, rl)
    sh, sl = dd_add(_C4H, _C4L, sh, sl)
    sh, sl = dd_mul(sh, sl, rh, rl)
    sh, sl = dd_add(_C3H, _C3L, sh, sl)
    sh, sl = dd_mul(sh, sl, rh, rl)
    sh, sl = dd_add_d(sh, sl, 0.5)
    sh, sl = dd_mul(sh, sl, rh, rl)
    sh, sl = dd_add_d(sh, sl, 1.0)
    eh, el = dd_mul(sh, sl, rh, rl)
    for _ in range(_HALVINGS):
        ph, pl = dd_add_d(eh, el, 2.0)
        eh, el = dd_mul(eh, el, ph, pl)
    dh, dl = dd_add_d(eh, el, 2.0)
    th, tl = dd_div(eh, el, dh, dl)
    if ah < _TINY:  # tanh(x) = x to 34 digits
        th, tl = ah, al
    if xh != xh:
        th, tl = xh, xh
    if neg:
        return -th, -tl
    return th, tl
