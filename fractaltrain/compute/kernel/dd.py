"""Double-double arithmetic for the kernels: about 32 significant digits from pairs of float64s.

Why
---
Below about 13 decades of zoom, neighbouring pixels' hyperparameters differ
in float64's last digits and rounding decides their signs.  A double-double
number is the unevaluated sum ``hi + lo`` of two float64s with
``|lo| <= ulp(hi)/2``: 106 bits of significand (relative precision about
1e-32) from ordinary float64 operations, so the training kernel can follow a
trajectory some 16 decades further before rounding matters.  Everything here is
plain float arithmetic in a fixed order (no fastmath, no contraction), inlined
into the caller's loop over lanes so LLVM can vectorise it, and bitwise
reproducible on any host: the one fused multiply-add (:func:`_prod_err`) is
exact, and on a target without FMA its Dekker replacement gives the same bits.

Algorithms (Dekker 1971; Knuth; Shewchuk; the QD library of Hida, Li and
Bailey): :func:`two_sum` and :func:`fast_two_sum` recover a sum's rounding
error exactly, :func:`_prod_err` a product's; :func:`dd_add` is the "sloppy"
double-double sum (error below 2^-104 of the operands' magnitudes, as a
float64 sum's is below 2^-53 of them), :func:`dd_mul` the product (relative
error below 2^-104), :func:`dd_div` two Newton-free correction steps, :func:`dd_sqrt` one Newton step.
:func:`dd_tanh` evaluates ``tanh`` through ``expm1`` (see its docstring).
ddvec.py restates all of this on vectors of pixels, operation by operation,
for the kernel's hot loops: a change here must be made there too (the tests
compare the two bit for bit).

Non-finite values: an overflow or a NaN leaves ``hi`` or ``lo`` non-finite and
it spreads from there, so the kernels' "loss is not finite" test on both parts
catches it exactly as the float64 kernel's does.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import numba as nb
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from fractaltrain.compute.kernel.ir import _declare, _has_fma

_F64 = types.float64


@intrinsic
def _prod_err(typingctx, a, b, p):
    """The rounding error ``a*b - p`` of ``p = a*b`` (rounded), computed exactly.

    One fused multiply-add where the target has it; otherwise Dekker's exact
    product with Veltkamp splitting, which gives the same bits.
    """

    def codegen(context, builder, sig, args):
        a, b, p = args
        f64 = ir.DoubleType()
        if _has_fma(context):
            fma = _declare(builder, "llvm.fma.f64", f64, [f64] * 3)
            return builder.call(fma, [a, b, builder.fneg(p)])
        add, sub, mul = builder.fadd, builder.fsub, builder.fmul
        split = ir.Constant(f64, 134217729.0)  # 2**27 + 1

        def halves(v):
            t = mul(split, v)
            hi = sub(t, sub(t, v))
            return hi, sub(v, hi)

        (ah, al), (bh, bl) = halves(a), halves(b)
        return add(add(add(sub(mul(ah, bh), p), mul(ah, bl)), mul(al, bh)), mul(al, bl))

    return _F64(_F64, _F64, _F64), codegen


@nb.njit(inline="always", cache=False)
def two_sum(a, b):
    """``(s, e)`` with ``s = fl(a + b)`` and ``a + b = s + e`` exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@nb.njit(inline="always", cache=False)
def fast_two_sum(a, b):
    """``(s, e)`` with ``a + b = s + e`` exactly, given ``|a| >= |b|`` (or a == 0)."""
    s = a + b
    return s, b - (s - a)


@nb.njit(inline="always", cache=False)
def dd_add(ah, al, bh, bl):
    """``a + b`` (sloppy double-double sum: error below 2^-104·(|a| + |b|))."""
    s, e = two_sum(ah, bh)
    return fast_two_sum(s, e + (al + bl))


@nb.njit(inline="always", cache=False)
def dd_add_d(ah, al, b):
    """``a + b`` for a float64 ``b``."""
    s, e = two_sum(ah, b)
    return fast_two_sum(s, e + al)


@nb.njit(inline="always", cache=False)
def dd_mul(ah, al, bh, bl):
    """``a · b`` (relative error below 2^-104)."""
    p = ah * bh
    e = _prod_err(ah, bh, p)
    return fast_two_sum(p, e + (ah * bl + al * bh))


@nb.njit(inline="always", cache=False)
def dd_mul_d(ah, al, b):
    """``a · b`` for a float64 ``b``."""
    p = ah * b
    e = _prod_err(ah, b, p)
    return fast_two_sum(p, e + al * b)


@nb.njit(inline="always", cache=False)
def dd_div(ah, al, bh, bl):
    """``a / b``: the float64 quotient and one correction from the double-double remainder."""
    q1 = ah / bh
    ph, pl = dd_mul_d(bh, bl, q1)
    rh, rl = dd_add(ah, al, -ph, -pl)
    q2 = (rh + rl) / bh
    return fast_two_sum(q1, q2)


@nb.njit(inline="always", cache=False)
def dd_sqrt(ah, al):
    """``sqrt(a)`` for ``a >= 0``: the float64 root and one correction from the double-double remainder.

    ``q = sqrt(hi)``; the remainder ``a - q²`` is exact to double-double (q² by
    :func:`_prod_err`), and ``q + (a - q²)/(2q)`` is one Newton step, which
    doubles q's 53 bits (relative error below 2^-104).  Zero and infinity
    return themselves; a negative ``a`` gives NaN, as ``math.sqrt`` would.
    """
    q = math.sqrt(ah)
    if q == 0.0 or not math.isfinite(q):
        return q, 0.0
    p = q * q
    e = _prod_err(q, q, p)
    rh, rl = dd_add(ah, al, -p, -e)
    return fast_two_sum(q, (rh + rl) / (2.0 * q))


# tanh: E = expm1(2a) from r = 2a / 2**_HALVINGS by a Taylor polynomial, then
# _HALVINGS doublings expm1(2r) = expm1(r)·(expm1(r) + 2), then tanh = E/(E + 2).
_HALVINGS = 14
_CLAMP = 40.0  # tanh(a) rounds to 1 in double-double for a > 37.5
_TINY = 1e-17  # below this x - x**3/3 rounds to x in double-double
_SCALE = 2.0 / 2.0**_HALVINGS  # exact power of two: r = a * _SCALE
# |r| <= 80 / 16384: terms r**k / k! for k >= 7 are below 3e-18 of r, so float64 suffices for them
_T7, _T8, _T9, _T10, _T11, _T12 = (1.0 / math.factorial(k) for k in range(7, 13))


def _dd_const(q) -> tuple[float, float]:
    """``(hi, lo)`` of a rational or Decimal value, correctly rounded to double-double."""
    with localcontext() as ctx:
        ctx.prec = 60
        d = Decimal(q.numerator) / Decimal(q.denominator) if hasattr(q, "numerator") else Decimal(q)
        hi = float(d)
        return hi, float(d - Decimal(hi))


from fractions import Fraction  # noqa: E402  (used only for the constants below)

(_C3H, _C3L), (_C4H, _C4L), (_C5H, _C5L), (_C6H, _C6L) = (_dd_const(Fraction(1, math.factorial(k))) for k in (3, 4, 5, 6))


@nb.njit(inline="always", cache=False)
def dd_tanh(xh, xl):
    """``tanh(x)`` in double-double, relative error about 1e-31, exactly odd, branch-free.

    ``a = |x|`` (clamped at 40, where tanh is 1 to 35 digits) is divided by
    2**14, ``expm1`` of the small argument is a Taylor polynomial (the high
    terms in float64, the low ones in double-double), and 14 doublings
    ``E ← E·(E + 2)`` give ``E = expm1(2a)``; every addition there adds
    positive numbers, so nothing cancels, and ``tanh(a) = E / (E + 2)``.  NaN
    gives NaN, ``±inf`` gives ``±1`` and ``|x| < 1e-17`` gives ``x``.
    """
    neg = xh < 0.0
    ah = -xh if neg else xh
    al = -xl if neg else xl
    clamp = not (ah < _CLAMP)
    rh = (_CLAMP if clamp else ah) * _SCALE
    rl = (0.0 if clamp else al) * _SCALE
    t = _T7 + rh * (_T8 + rh * (_T9 + rh * (_T10 + rh * (_T11 + rh * _T12))))
    sh, sl = dd_add(_C6H, _C6L, rh * t, 0.0)
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
    if ah < _TINY:  # tanh(x) = x to 34 digits; also keeps lo out of subnormals
        th, tl = ah, al
    if xh != xh:
        th, tl = xh, xh
    return (-th, -tl) if neg else (th, tl)
