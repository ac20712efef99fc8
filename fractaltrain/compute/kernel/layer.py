"""The general path's per-point layer products as vector LLVM IR (any depth, any width).

general.py runs one data point at a time through layers of any shape.  Written
as numba loops over lanes, its products ran at about 2 GFLOP/s a core: numba
cannot tell LLVM that the output, weight and activation arrays do not overlap,
so every lane was loaded, multiplied, added and stored on its own.  These
intrinsics emit the same operations on ``<LANES x double>`` vectors, in the
same order, with several independent sums kept in registers side by side (as
matmul.py does for the depth-2 fast path, and ddlayer.py for double-double):

  forward   pre[j] = (0 + Σ_k A[aoff + k] · W[woff + k·fo + j]) · alpha
  gradient  G[wb + k·fo + j] += acts[ab + k] · delta[j]
  backward  dnext[k] = 0 + Σ_j delta[j] · W[wb + k·fo + j]

Each term is a separate multiply and add (no FMA), each sum in the order
written, so the results are bitwise those of the plain loops they replace
(the tests compare the general path with the fast path and with numpy).
Offsets and sizes are in vectors (entries / LANES).  The first layer, whose
input row is shared by all lanes, uses matmul.py's products with one row.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from fractaltrain.compute.kernel.ir import (
    LANES,
    _c,
    _check_args,
    _data,
    _loop,
    _splat,
    _tiles,
    _vec,
    _vintrinsic,
    _vload,
    _vstore,
)

TILE = 8  # independent sums (vectors) kept in registers side by side


def _cover(builder, n, body):
    """``body(start, width)`` over [0, n): tiles of TILE, then narrower ones (4, 2, 1) for the rest."""
    _tiles(builder, _c(1), n, 1, TILE, lambda _a0, b0, _A, B: body(b0, B))


@intrinsic
def _dense_lanes(typingctx, A, aoff, W, woff, fi, fo, alpha, pre):
    """``pre[j] = (0 + Σ_k A[aoff + k] · W[woff + k·fo + j]) · alpha`` for ``j < fo`` (k in order)."""
    _check_args((A, W, pre), (aoff, woff, fi, fo), (alpha,))
    sig = types.void(A, types.int64, W, types.int64, types.int64, types.int64, alpha, pre)

    def codegen(context, builder, sig, args):
        A_, aoff_, W_, woff_, fi_, fo_, alpha_, pre_ = args
        ap, wp, pp = (_data(context, builder, sig.args[i], args[i]) for i in (0, 2, 7))
        L = _c(LANES)
        av = _splat(builder, alpha_)
        zero = ir.Constant(_vec, [0.0] * LANES)

        def tile(j0, B):
            def body(k, acc):
                a = _vload(builder, ap, builder.mul(builder.add(aoff_, k), L))
                row = builder.add(woff_, builder.add(builder.mul(k, fo_), j0))
                w = [_vload(builder, wp, builder.mul(builder.add(row, _c(b)), L)) for b in range(B)]
                return [builder.fadd(acc[b], builder.fmul(a, w[b])) for b in range(B)]

            acc = _loop(builder, _c(0), fi_, _c(1), [zero] * B, body)
            for b in range(B):
                _vstore(builder, pp, builder.mul(builder.add(j0, _c(b)), L), builder.fmul(acc[b], av))

        _cover(builder, fo_, tile)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _backward_lanes(typingctx, acts, ab, W, G, wb, fi, fo, delta, dnext):
    """Backward through a layer with per-lane input, weights at vector ``wb`` (``fi`` x ``fo``).

    ``G[wb + k·fo + j] += acts[ab + k] · delta[j]``, then
    ``dnext[k] = 0 + Σ_j delta[j] · W[wb + k·fo + j]`` (j in order) for ``k < fi``.
    """
    _check_args((acts, W, G, delta, dnext), (ab, wb, fi, fo), ())
    sig = types.void(acts, types.int64, W, G, types.int64, types.int64, types.int64, delta, dnext)

    def codegen(context, builder, sig, args):
        acts_, ab_, W_, G_, wb_, fi_, fo_, delta_, dnext_ = args
        ap, wp, gp, dp, np_ = (_data(context, builder, sig.args[i], args[i]) for i in (0, 2, 3, 7, 8))
        L = _c(LANES)
        zero = ir.Constant(_vec, [0.0] * LANES)

        def widx(k, j):
            return builder.mul(builder.add(wb_, builder.add(builder.mul(k, fo_), j)), L)

        def grad_k(k, _):
            a = _vload(builder, ap, builder.mul(builder.add(ab_, k), L))

            def tile(j0, B):
                for b in range(B):
                    j = builder.add(j0, _c(b))
                    gi = widx(k, j)
                    d = _vload(builder, dp, builder.mul(j, L))
                    _vstore(builder, gp, gi, builder.fadd(_vload(builder, gp, gi), builder.fmul(a, d)))

            _cover(builder, fo_, tile)
            return []

        _loop(builder, _c(0), fi_, _c(1), [], grad_k)

        def ktile(k0, B):
            def body(j, acc):
                d = _vload(builder, dp, builder.mul(j, L))
                w = [_vload(builder, wp, widx(builder.add(k0, _c(b)), j)) for b in range(B)]
                return [builder.fadd(acc[b], builder.fmul(d, w[b])) for b in range(B)]

            acc = _loop(builder, _c(0), fo_, _c(1), [zero] * B, body)
            for b in range(B):
                _vstore(builder, np_, builder.mul(builder.add(k0, _c(b)), L), acc[b])

        _cover(builder, fi_, ktile)
        return context.get_dummy_value()

    return sig, codegen


def _sitofp_splat(builder, n):
    return _splat(builder, builder.sitofp(n, ir.DoubleType()))


@intrinsic
def _norm_lanes(typingctx, pre, nw, nrm, off, istd, layer, eps):
    """Layer norm of ``nw`` units (vectors) of ``pre`` in place, as general.py wrote it per lane.

    ``mean = (0 + Σ_j z_j) / nw``, ``var = (0 + Σ_j (z_j − mean)²) / nw``,
    ``inv = 1 / sqrt(var + eps)``, ``z_j ← (z_j − mean) · inv``; the normalised
    values are also kept in ``nrm`` from vector ``off``, ``inv`` in ``istd``
    at vector ``layer``.  sqrt and division are IEEE's, correctly rounded, as
    ``math.sqrt`` and ``/`` are.
    """
    _check_args((pre, nrm, istd), (nw, off, layer), (eps,))
    sig = types.void(pre, types.int64, nrm, types.int64, istd, types.int64, eps)

    def codegen(context, builder, sig, args):
        pre_, nw_, nrm_, off_, istd_, layer_, eps_ = args
        pp, rp, ip = (_data(context, builder, sig.args[i], args[i]) for i in (0, 2, 4))
        L = _c(LANES)
        zero = ir.Constant(_vec, [0.0] * LANES)
        n = _sitofp_splat(builder, nw_)
        sqrt = _vintrinsic(builder, "sqrt", 1)

        def z(j):
            return _vload(builder, pp, builder.mul(j, L))

        (s,) = _loop(builder, _c(0), nw_, _c(1), [zero], lambda j, acc: [builder.fadd(acc[0], z(j))])
        mean = builder.fdiv(s, n)

        def sq(j, acc):
            d = builder.fsub(z(j), mean)
            return [builder.fadd(acc[0], builder.fmul(d, d))]

        (v,) = _loop(builder, _c(0), nw_, _c(1), [zero], sq)
        var = builder.fadd(builder.fdiv(v, n), _splat(builder, eps_))
        inv = builder.fdiv(ir.Constant(_vec, [1.0] * LANES), builder.call(sqrt, [var]))
        _vstore(builder, ip, builder.mul(layer_, L), inv)

        def norm(j, _):
            y = builder.fmul(builder.fsub(z(j), mean), inv)
            _vstore(builder, pp, builder.mul(j, L), y)
            _vstore(builder, rp, builder.mul(builder.add(off_, j), L), y)
            return []

        _loop(builder, _c(0), nw_, _c(1), [], norm)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _norm_back_lanes(typingctx, dn, nw, nrm, off, istd, layer):
    """dL/dz from dL/dn (``nw`` vectors of ``dn``, in place) through :func:`_norm_lanes`.

    ``m1 = (0 + Σ_k dn_k) / nw``, ``m2 = (0 + Σ_k dn_k·n_k) / nw``,
    ``dn_k ← inv · ((dn_k − m1) − n_k · m2)``, n the kept normalised values.
    """
    _check_args((dn, nrm, istd), (nw, off, layer), ())
    sig = types.void(dn, types.int64, nrm, types.int64, istd, types.int64)

    def codegen(context, builder, sig, args):
        dn_, nw_, nrm_, off_, istd_, layer_ = args
        dp, rp, ip = (_data(context, builder, sig.args[i], args[i]) for i in (0, 2, 4))
        L = _c(LANES)
        zero = ir.Constant(_vec, [0.0] * LANES)
        n = _sitofp_splat(builder, nw_)

        def d(k):
            return _vload(builder, dp, builder.mul(k, L))

        def r(k):
            return _vload(builder, rp, builder.mul(builder.add(off_, k), L))

        def sums(k, acc):
            dk = d(k)
            return [builder.fadd(acc[0], dk), builder.fadd(acc[1], builder.fmul(dk, r(k)))]

        s1, s2 = _loop(builder, _c(0), nw_, _c(1), [zero, zero], sums)
        m1, m2 = builder.fdiv(s1, n), builder.fdiv(s2, n)
        inv = _vload(builder, ip, builder.mul(layer_, L))

        def back(k, _):
            y = builder.fmul(inv, builder.fsub(builder.fsub(d(k), m1), builder.fmul(r(k), m2)))
            _vstore(builder, dp, builder.mul(k, L), y)
            return []

        _loop(builder, _c(0), nw_, _c(1), [], back)
        return context.get_dummy_value()

    return sig, codegen
