"""dd.py's double-double arithmetic and ``dd_tanh`` as LLVM IR on vectors of LANES pixels.

Why
---
The double-double kernel spends its time in long chains of dependent float
operations (a product and a sum of double-doubles are about 20 of them, a
``dd_tanh`` some 440), one chain per pixel.  numba's loops over lanes
vectorise these only in part, so the fast path (dd2.py, ddmatmul.py) emits
them directly as IR on ``<LANES x double>`` vectors, one vector of high parts
and one of low parts per value.

:class:`DDIR` restates dd.py operation by operation, in the same order, with
no fast-math flags (nothing reassociated, nothing contracted; the one FMA is
the exact ``_prod_err`` or, without a hardware FMA, its Dekker twin), so every
lane gets the bits the scalar functions give.  Its operations work on lists of
values, one operation at a time across the list: a list holds independent
chains (several tanh, a register tile of accumulators), and emitting them side
by side fills the pipelines that one chain would leave waiting on latencies.
If dd.py changes, change this too (the tests compare the two bit for bit).
"""

from __future__ import annotations

from numba import types
from numba.extending import intrinsic

from fractaltrain.compute.kernel import dd as _D
from fractaltrain.compute.kernel.ir import LANES, _c, _check_args, _data, _has_fma, _loop, _vconst, _vintrinsic, _vload, _vstore

TANH_GROUP = 4  # tanh evaluated side by side per group of vectors


class DDIR:
    """Double-double operations emitted on lists of ``<LANES x double>`` values.

    Every method takes lists (of equal length) or single operands (an IR
    vector, a Python float or a list of one, used for every element) and
    returns lists; the
    double-double methods return ``(high parts, low parts)``.
    """

    def __init__(self, builder, context):
        self.b = builder
        self.fma = _has_fma(context)

    def map(self, f, *args):
        """``[f(x, y, ...) for each element]``, single operands repeated."""
        n = max((len(a) for a in args if isinstance(a, list)), default=1)
        cols = []
        for a in args:
            if not isinstance(a, list):
                a = [_vconst(a) if isinstance(a, (int, float)) else a]
            if len(a) not in (1, n):
                raise ValueError(f"operand lists of lengths {len(a)} and {n}")
            cols.append(a * (n // len(a)))
        return [f(*xs) for xs in zip(*cols)]

    def add(self, a, b):
        return self.map(self.b.fadd, a, b)

    def sub(self, a, b):
        return self.map(self.b.fsub, a, b)

    def mul(self, a, b):
        return self.map(self.b.fmul, a, b)

    def div(self, a, b):
        return self.map(self.b.fdiv, a, b)

    def neg(self, a):
        return self.map(self.b.fneg, a)

    def select(self, c, a, b):
        return self.map(self.b.select, c, a, b)

    def lt(self, a, b):
        """Ordered ``a < b`` (false for NaN)."""
        return self.map(lambda x, y: self.b.fcmp_ordered("<", x, y), a, b)

    def prod_err(self, a, b, p):
        """dd._prod_err: ``a*b - p`` exactly, by one FMA or by Dekker's product."""
        if self.fma:
            fma = _vintrinsic(self.b, "fma", 3)
            return self.map(lambda x, y, q: self.b.call(fma, [x, y, self.b.fneg(q)]), a, b, p)
        split = 134217729.0

        def halves(v):
            t = self.mul(split, v)
            hi = self.sub(t, self.sub(t, v))
            return hi, self.sub(v, hi)

        (ah, al), (bh, bl) = halves(a), halves(b)
        return self.add(self.add(self.add(self.sub(self.mul(ah, bh), p), self.mul(ah, bl)), self.mul(al, bh)), self.mul(al, bl))

    def two_sum(self, a, b):
        s = self.add(a, b)
        bb = self.sub(s, a)
        return s, self.add(self.sub(a, self.sub(s, bb)), self.sub(b, bb))

    def fast_two_sum(self, a, b):
        s = self.add(a, b)
        return s, self.sub(b, self.sub(s, a))

    def dd_add(self, ah, al, bh, bl):
        s, e = self.two_sum(ah, bh)
        return self.fast_two_sum(s, self.add(e, self.add(al, bl)))

    def dd_add_d(self, ah, al, b):
        s, e = self.two_sum(ah, b)
        return self.fast_two_sum(s, self.add(e, al))

    def dd_mul(self, ah, al, bh, bl):
        p = self.mul(ah, bh)
        e = self.prod_err(ah, bh, p)
        return self.fast_two_sum(p, self.add(e, self.add(self.mul(ah, bl), self.mul(al, bh))))

    def dd_mul_d(self, ah, al, b):
        p = self.mul(ah, b)
        e = self.prod_err(ah, b, p)
        return self.fast_two_sum(p, self.add(e, self.mul(al, b)))

    def dd_div(self, ah, al, bh, bl):
        q1 = self.div(ah, bh)
        ph, pl = self.dd_mul_d(bh, bl, q1)
        rh, rl = self.dd_add(ah, al, self.neg(ph), self.neg(pl))
        q2 = self.div(self.add(rh, rl), bh)
        return self.fast_two_sum(q1, q2)

    def tanh(self, xh, xl):
        """dd.dd_tanh, step for step."""
        d = self
        neg = d.lt(xh, 0.0)
        ah = d.select(neg, d.neg(xh), xh)
        al = d.select(neg, d.neg(xl), xl)
        clamp = d.map(self.b.not_, d.lt(ah, _D._CLAMP))
        rh = d.mul(d.select(clamp, _D._CLAMP, ah), _D._SCALE)
        rl = d.mul(d.select(clamp, 0.0, al), _D._SCALE)
        t = d.mul(rh, _D._T12)
        for c in (_D._T11, _D._T10, _D._T9, _D._T8):
            t = d.mul(rh, d.add(c, t))
        t = d.add(_D._T7, t)
        sh, sl = d.dd_add(_D._C6H, _D._C6L, d.mul(rh, t), 0.0)
        for ch, cl in ((_D._C5H, _D._C5L), (_D._C4H, _D._C4L), (_D._C3H, _D._C3L)):
            sh, sl = d.dd_mul(sh, sl, rh, rl)
            sh, sl = d.dd_add(ch, cl, sh, sl)
        sh, sl = d.dd_mul(sh, sl, rh, rl)
        sh, sl = d.dd_add_d(sh, sl, 0.5)
        sh, sl = d.dd_mul(sh, sl, rh, rl)
        sh, sl = d.dd_add_d(sh, sl, 1.0)
        eh, el = d.dd_mul(sh, sl, rh, rl)
        for _ in range(_D._HALVINGS):
            ph, pl = d.dd_add_d(eh, el, 2.0)
            eh, el = d.dd_mul(eh, el, ph, pl)
        dh, dl = d.dd_add_d(eh, el, 2.0)
        th, tl = d.dd_div(eh, el, dh, dl)
        tiny = d.lt(ah, _D._TINY)
        th, tl = d.select(tiny, ah, th), d.select(tiny, al, tl)
        nan = d.map(lambda x: self.b.fcmp_unordered("uno", x, x), xh)
        th, tl = d.select(nan, xh, th), d.select(nan, xh, tl)
        return d.select(neg, d.neg(th), th), d.select(neg, d.neg(tl), tl)

    def tanh_act(self, zh, zl):
        """``a = dd_tanh(z)`` and ``d = 1 - a²`` as ddgeneral._activate_dd: ``(ah, al, dh, dl)``."""
        ah, al = self.tanh(zh, zl)
        sh, sl = self.dd_mul(ah, al, ah, al)
        dh, dl = self.dd_add_d(self.neg(sh), self.neg(sl), 1.0)
        return ah, al, dh, dl


@intrinsic
def tanh_act_dd(typingctx, Zh, Zl, Ah, Al, Dh, Dl, n):
    """``A = dd_tanh(Z)``, ``D = 1 - A²`` for the first ``n`` entries (a multiple of LANES).

    Double-doubles as separate arrays of high and low parts; ``A`` may be ``Z``.
    Vectors are evaluated TANH_GROUP side by side, then one by one.
    """
    _check_args((Zh, Zl, Ah, Al, Dh, Dl), (n,), ())
    sig = types.void(Zh, Zl, Ah, Al, Dh, Dl, types.int64)

    def codegen(context, builder, sig, args):
        zh, zl, ah, al, dh, dl = (_data(context, builder, sig.args[i], args[i]) for i in range(6))
        nv = builder.sdiv(args[6], _c(LANES))
        d = DDIR(builder, context)

        def group(v, g):
            idx = [builder.mul(builder.add(v, _c(i)), _c(LANES)) for i in range(g)]
            res = d.tanh_act([_vload(builder, zh, i) for i in idx], [_vload(builder, zl, i) for i in idx])
            for ptr, vals in zip((ah, al, dh, dl), res):
                for i, val in zip(idx, vals):
                    _vstore(builder, ptr, i, val)
            return []

        nfull = builder.mul(builder.sdiv(nv, _c(TANH_GROUP)), _c(TANH_GROUP))
        _loop(builder, _c(0), nfull, _c(TANH_GROUP), [], lambda v, _: group(v, TANH_GROUP))
        _loop(builder, nfull, nv, _c(1), [], lambda v, _: group(v, 1))
        return context.get_dummy_value()

    return sig, codegen


