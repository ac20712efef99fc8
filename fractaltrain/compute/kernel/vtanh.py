"""tanh64 on vectors of LANES pixels, emitted as LLVM IR for the depth-2 fast path and the general path.

``tanh64`` (tanh.py) restated on <LANES x double> vectors: the
same operations in the same order, so bit for bit the same results (the tests
check it).  Two things make it faster than a loop over tanh64:
* tanh64 is a long chain of dependent operations, so a loop over it keeps the
  core waiting on latencies; here TANH_GROUP vectors are emitted side by side,
  one operation at a time, and the independent chains fill the pipelines.
* tanh64 evaluates both of its branches (|x| < 0.55: rational function;
  otherwise via exp(-2|x|)) and selects.  A first pass sorts the vectors of a
  chunk into four lists: all lanes small, all lanes big, all lanes saturated
  (|x| >= _SATURATE, where tanh64 is exactly ±1), or mixed; each list is then
  evaluated with only what its lanes need.  Every lane gets the value tanh64
  gives it, since a discarded branch never reaches a lane's result.
If tanh64 changes, change this too (test_vector_tanh_is_bitwise_tanh64).
"""

from __future__ import annotations

import numba as nb
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from fractaltrain.compute.kernel import tanh as _T
from fractaltrain.compute.kernel.cache import JIT
from fractaltrain.compute.kernel.ir import (
    LANES,
    _c,
    _check_args,
    _data,
    _declare,
    _has_fma,
    _i32,
    _i64,
    _loop,
    _vconst,
    _vec,
    _vintrinsic,
    _vload,
    _vstore,
)

TANH_GROUP = (6, 4, 8, 8)  # vectors side by side, by class: both branches, small, big, saturated
TANH_GMAX = max(TANH_GROUP)
_FULL, _SMALL, _BIG, _SAT = 0, 1, 2, 3
# For |x| >= _SATURATE tanh64 returns exactly copysign(1, x): there e = exp(-2|x|)
# <= exp(-38.2) = 2.57e-17, so 1 + e rounds to 1, q = 2e <= 5.2e-17 < 2**-54
# (below half an ulp under 1; the bound is reached at |x| = 19.06), and both
# 1 - q and the final 1 + (lo - corr), lo = -q, |corr| < 1e-31, round to 1.
_SATURATE = 19.1


def _is_small(builder, a):
    """tanh64's branch condition ``not (a >= _SWITCH)`` (true for NaN)."""
    return builder.not_(builder.fcmp_ordered(">=", a, _vconst(_T._SWITCH)))


def _tanh_vecs(builder, xs, fma, mode=_FULL):
    """``tanh64`` of every vector in ``xs``, emitted operation by operation across ``xs``.

    ``mode`` _SMALL or _BIG: every lane is known to take that branch of tanh64,
    so only that branch is evaluated (same result for those lanes).
    """
    b, k_ = builder, _vconst
    fabs = _vintrinsic(b, "fabs", 1)
    copysign = _vintrinsic(b, "copysign", 2)
    fmaf = _vintrinsic(b, "fma", 3)
    ivec = ir.VectorType(_i64, LANES)

    def each(f, *cols):
        return [f(*args) for args in zip(*cols)]

    def horner(z, coefs, lead):  # lead + z*(c0 + z*(c1 + ... z*cn))
        acc = each(lambda zz: b.fmul(zz, k_(coefs[-1])), z)
        for c in reversed(coefs[:-1]):
            acc = each(lambda s, zz, c=c: b.fmul(zz, b.fadd(k_(c), s)), acc, z)
        return each(lambda s: b.fadd(k_(lead), s), acc)

    if mode == _SAT:
        return each(lambda x: b.call(copysign, [k_(1.0), x]), xs)
    a = each(lambda x: b.call(fabs, [x]), xs)
    if mode != _BIG:
        z = each(lambda u: b.fmul(u, u), a)
        n_small = each(lambda u, zz, h: b.fmul(b.fmul(u, zz), h), a, z, horner(z, [_T._P1, _T._P2], 1.0))
        d_small = horner(z, [_T._Q1, _T._Q2, _T._Q3], 3.0)
    if mode == _SMALL:
        q = each(lambda ns, ds: b.fdiv(ns, ds), n_small, d_small)
        hi = each(lambda u, qq: b.fsub(u, qq), a, q)
        lo = each(lambda u, h, qq: b.fsub(b.fsub(u, h), qq), a, hi, q)
        return each(lambda h, l, x: b.call(copysign, [b.fadd(h, b.fsub(l, k_(0.0))), x]), hi, lo, xs)
    y = each(lambda u: b.fmul(k_(-2.0), b.select(b.fcmp_ordered("<", u, k_(_T._CLAMP)), u, k_(_T._CLAMP))), a)
    k = each(lambda v: b.fsub(b.fadd(b.fmul(v, k_(_T._INV_LN2)), k_(_T._ROUND)), k_(_T._ROUND)), y)
    r = each(lambda v, kk: b.fsub(b.fsub(v, b.fmul(kk, k_(_T._LN2_HI))), b.fmul(kk, k_(_T._LN2_LO))), y, k)
    E = [_T._E0, _T._E1, _T._E2, _T._E3, _T._E4, _T._E5, _T._E6, _T._E7, _T._E8, _T._E9]
    s = horner(r, E[1:], E[0])
    p = each(lambda rr, ss: b.fadd(rr, b.fmul(b.fmul(rr, rr), ss)), r, s)
    exp_r = each(lambda pp: b.fadd(k_(1.0), pp), p)
    c1023, c52 = ir.Constant(ivec, [1023] * LANES), ir.Constant(ivec, [52] * LANES)
    scale = each(lambda kk: b.bitcast(b.shl(b.add(b.fptosi(kk, ivec), c1023), c52), _vec), k)
    e = each(lambda er, sc: b.fmul(er, sc), exp_r, scale)
    e_lo = each(lambda er, pp, sc: b.fmul(b.fadd(b.fsub(k_(1.0), er), pp), sc), exp_r, p, scale)
    d_big = each(lambda ee: b.fadd(k_(1.0), ee), e)
    d_lo = each(lambda db, ee: b.fadd(b.fsub(k_(1.0), db), ee), d_big, e)
    two_e = each(lambda ee: b.fmul(k_(2.0), ee), e)
    if mode == _BIG:
        big_a = [k_(1.0)] * len(xs)
        q = each(lambda te, db: b.fdiv(te, db), two_e, d_big)
    else:
        small = each(lambda u: _is_small(b, u), a)
        big_a = each(lambda sm, u: b.select(sm, u, k_(1.0)), small, a)
        q = each(lambda sm, ns, te, ds, db: b.fdiv(b.select(sm, ns, te), b.select(sm, ds, db)), small, n_small, two_e, d_small, d_big)
    if fma:  # _div_rem: the exact remainder 2e - q d_big
        rem = each(lambda qq, db, te: b.call(fmaf, [b.fneg(qq), db, te]), q, d_big, two_e)
    else:
        split = k_(134217729.0)

        def halves(v):
            t = b.fmul(split, v)
            hi = b.fsub(t, b.fsub(t, v))
            return hi, b.fsub(v, hi)

        def dekker(qq, db, te):
            (qh, ql), (dh, dl) = halves(qq), halves(db)
            ph = b.fmul(qq, db)
            pl = b.fadd(b.fadd(b.fadd(b.fsub(b.fmul(qh, dh), ph), b.fmul(qh, dl)), b.fmul(ql, dh)), b.fmul(ql, dl))
            return b.fsub(b.fsub(te, ph), pl)

        rem = each(dekker, q, d_big, two_e)
    corr = each(
        lambda rm, el, qq, dl: b.fmul(
            b.fsub(b.fadd(rm, b.fmul(k_(2.0), el)), b.fmul(qq, b.fadd(dl, el))), b.fsub(k_(1.0), b.fmul(k_(0.5), qq))
        ),
        rem, e_lo, q, d_lo,
    )
    if mode == _FULL:
        corr = each(lambda sm, cr: b.select(sm, k_(0.0), cr), small, corr)
    hi = each(lambda ba, qq: b.fsub(ba, qq), big_a, q)
    lo = each(lambda ba, h, qq: b.fsub(b.fsub(ba, h), qq), big_a, hi, q)
    return each(lambda h, l, cr, x: b.call(copysign, [b.fadd(h, b.fsub(l, cr)), x]), hi, lo, corr, xs)


@nb.njit(**JIT)
def tanh_scratch_size(n):
    """Entries of the int64 ``lists`` scratch that ``_activate_tanh`` needs for ``n`` values."""
    return 4 * (n // LANES + max(TANH_GMAX, 8))


@intrinsic
def _activate_tanh(typingctx, Z, A, D, n, lists):
    """``A = tanh64(Z)``, ``D = 1 - A²`` for the first ``n`` entries (a multiple of LANES).

    ``lists``: int64 scratch of at least ``tanh_scratch_size(n)`` entries.  ``A`` may be ``Z``.
    """
    _check_args((Z, A, D), (n,), ())
    if not (isinstance(lists, types.Array) and lists.dtype == types.int64 and lists.layout == "C"):
        raise TypeError("lists: expected a C-contiguous int64 array")
    sig = types.void(Z, A, D, types.int64, lists)

    def codegen(context, builder, sig, args):
        zp, ap, dp = (_data(context, builder, sig.args[i], args[i]) for i in range(3))
        lp = _data(context, builder, sig.args[4], args[4])
        nv = builder.sdiv(args[3], _c(LANES))
        fma = _has_fma(context)
        i8 = ir.IntType(8)
        cap = builder.add(nv, _c(max(TANH_GMAX, 8)))
        starts = [builder.mul(cap, _c(i)) for i in range(4)]  # lists of _FULL, _SMALL, _BIG, _SAT vectors
        ones, zero8 = ir.Constant(i8, (1 << LANES) - 1), ir.Constant(i8, 0)

        # pass 1: sort the vector indices by the branch all their lanes take
        def classify(v, cnt):
            a = builder.call(_vintrinsic(builder, "fabs", 1), [_vload(builder, zp, builder.mul(v, _c(LANES)))])
            small_bits = builder.bitcast(_is_small(builder, a), i8)
            sat_bits = builder.bitcast(builder.fcmp_ordered(">=", a, _vconst(_SATURATE)), i8)
            is_sat = builder.icmp_unsigned("==", sat_bits, ones)
            is_small = builder.icmp_unsigned("==", small_bits, ones)
            is_big = builder.and_(builder.icmp_unsigned("==", small_bits, zero8), builder.not_(is_sat))
            is_full = builder.not_(builder.or_(builder.or_(is_small, is_big), is_sat))
            new = []
            for st, c, flag in zip(starts, cnt, (is_full, is_small, is_big, is_sat)):
                builder.store(v, builder.gep(lp, [builder.add(st, c)]), align=8)
                new.append(builder.add(c, builder.zext(flag, _i64)))
            return new

        # eight vectors at a time: lane masks -> one byte per vector -> per-vector
        # class masks -> compress-store of the vector indices into the lists
        i1x8 = ir.VectorType(ir.IntType(1), LANES)
        i64x8 = ir.VectorType(_i64, 8)
        compress = _declare(builder, "llvm.experimental.vector.compress.v8i64", i64x8, [i64x8, i1x8, i64x8])
        ctpop = _declare(builder, "llvm.ctpop.i8", i8, [i8])
        step8 = ir.Constant(i64x8, list(range(8)))

        def concat(ms):  # eight lane masks -> i64, byte i = mask of vector i
            while len(ms) > 1:
                n2 = 2 * ms[0].type.count
                ms = [builder.shuffle_vector(x, y, ir.Constant(ir.VectorType(_i32, n2), list(range(n2)))) for x, y in zip(ms[::2], ms[1::2])]
            return builder.bitcast(ms[0], _i64)

        lo7, hi1 = _c(0x7F7F7F7F7F7F7F7F), _c(0x8080808080808080 - (1 << 64))
        gather = _c(0x0102040810204080)

        def zero_bytes(w):  # <8 x i1>: byte i of w is zero (exact SWAR test, then bits packed)
            t = builder.or_(builder.add(builder.and_(w, lo7), lo7), w)
            hb = builder.lshr(builder.and_(builder.not_(t), hi1), _c(7))
            return builder.bitcast(builder.trunc(builder.lshr(builder.mul(hb, gather), _c(56)), i8), i1x8)

        def classify8(v, cnt):
            fabs = _vintrinsic(builder, "fabs", 1)
            a = [builder.call(fabs, [_vload(builder, zp, builder.mul(builder.add(v, _c(i)), _c(LANES)))]) for i in range(8)]
            nosmall_w = concat([builder.fcmp_ordered(">=", x, _vconst(_T._SWITCH)) for x in a])
            sat_w = concat([builder.fcmp_ordered(">=", x, _vconst(_SATURATE)) for x in a])
            all_small = zero_bytes(nosmall_w)
            no_small = zero_bytes(builder.not_(nosmall_w))
            is_sat = zero_bytes(builder.not_(sat_w))
            is_big = builder.and_(no_small, builder.not_(is_sat))
            is_full = builder.not_(builder.or_(all_small, no_small))
            idx = builder.add(builder.shuffle_vector(builder.insert_element(ir.Constant(i64x8, ir.Undefined), v, _c(0)),
                                                     ir.Constant(i64x8, ir.Undefined), ir.Constant(ir.VectorType(_i32, 8), [0] * 8)), step8)
            new = []
            for st, c, m in zip(starts, cnt, (is_full, all_small, is_big, is_sat)):
                packed = builder.call(compress, [idx, m, ir.Constant(i64x8, ir.Undefined)])
                builder.store(packed, builder.bitcast(builder.gep(lp, [builder.add(st, c)]), i64x8.as_pointer()), align=8)
                new.append(builder.add(c, builder.zext(builder.call(ctpop, [builder.bitcast(m, i8)]), _i64)))
            return new

        nv8 = builder.mul(builder.sdiv(nv, _c(8)), _c(8))
        counts = _loop(builder, _c(0), nv8, _c(8), [_c(0)] * 4, classify8)
        counts = _loop(builder, nv8, nv, _c(1), counts, classify)

        # pass 2: each list in groups of TANH_GROUP[mode] vectors.  A short last
        # group is filled up with its last vector again: all of a group's loads
        # come before its stores, so that is harmless even when A is Z.
        def pad(st, i):
            last = builder.load(builder.gep(lp, [builder.add(st, builder.sub(i, _c(1)))]), align=8)
            builder.store(last, builder.gep(lp, [builder.add(st, i)]), align=8)
            return []

        def group(st, j, g, mode):
            idx = [builder.mul(builder.load(builder.gep(lp, [builder.add(st, builder.add(j, _c(i)))]), align=8), _c(LANES))
                   for i in range(g)]
            ts = _tanh_vecs(builder, [_vload(builder, zp, i) for i in idx], fma, mode)
            for i, t in zip(idx, ts):
                _vstore(builder, ap, i, t)
                _vstore(builder, dp, i, builder.fsub(_vconst(1.0), builder.fmul(t, t)))
            return []

        for mode, st, cnt in zip((_FULL, _SMALL, _BIG, _SAT), starts, counts):
            g = TANH_GROUP[mode]
            padded = builder.mul(builder.sdiv(builder.add(cnt, _c(g - 1)), _c(g)), _c(g))
            _loop(builder, cnt, padded, _c(1), [], lambda i, _, st=st: pad(st, i))
            _loop(builder, _c(0), padded, _c(g), [], lambda j, _, st=st, mode=mode, g=g: group(st, j, g, mode))
        return context.get_dummy_value()

    return sig, codegen
