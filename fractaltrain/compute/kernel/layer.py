"""The general path's layer products and layer norm as vector LLVM IR (any depth, any width).

general.py runs a chunk of data points at a time through layers of any shape.
Written as numba loops over lanes, its products ran at about 2 GFLOP/s a core:
numba cannot tell LLVM that the output, weight and activation arrays do not
overlap, so every lane was loaded, multiplied, added and stored on its own.
These intrinsics emit the same operations on ``<LANES x double>`` vectors, in
the same order, with a register tile of independent sums (two points or
inputs by eight units) side by side.  All three products are matmul.py's
emitters (the fast path's first-layer products) fed per-lane activations
instead of broadcast data; the backward one reads W transposed.  Layer norm
is written here.  For ``nr`` points c of a chunk, a layer of ``fi`` inputs and
``fo`` outputs (activations ``A[aoff + c·fi + k]``, deltas ``D[c·fo + j]``):

  forward   out[c·fo + j] = (0 + Σ_k A[aoff + c·fi + k] · W[woff + k·fo + j]) · alpha
  gradient  G[wb + k·fo + j] += A[aoff + c·fi + k] · D[c·fo + j]        for c = 0, 1, ... in order
  backward  out[c·fi + k] = 0 + Σ_j D[c·fo + j] · W[wb + k·fo + j]

Each term is a separate multiply and add (no FMA), each sum in the order the
one-point-at-a-time loops used (so a chunk gives the bits of points taken one
by one: a gradient entry still adds the points in order), and the results are
bitwise those of the plain loops they replace (tests/test_general_path.py).
Offsets and sizes are in vectors (entries / LANES).  The first layer, whose
input row is shared by all lanes, uses matmul.py's products.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from fractaltrain.compute.kernel.matmul import emit_forward, emit_grad
from fractaltrain.compute.kernel.ir import (
    LANES,
    _c,
    _check_args,
    _data,
    _loop,
    _splat,
    _vec,
    _vintrinsic,
    _vload,
    _vstore,
)



def _a_loader(builder, ap, aoff, fi):
    """``load_in`` (matmul.py's emitters) of per-lane activations ``A[aoff + c·fi + k]``."""
    return lambda c, k: _vload(builder, ap, builder.mul(builder.add(aoff, builder.add(builder.mul(c, fi), k)), _c(LANES)))


@intrinsic
def _dense_lanes(typingctx, A, aoff, W, woff, fi, fo, nr, alpha, out):
    """``out[c·fo + j] = (0 + Σ_k A[aoff + c·fi + k] · W[woff + k·fo + j]) · alpha`` for c < nr, j < fo."""
    _check_args((A, W, out), (aoff, woff, fi, fo, nr), (alpha,))
    sig = types.void(A, types.int64, W, types.int64, types.int64, types.int64, types.int64, alpha, out)

    def codegen(context, builder, sig, args):
        A_, aoff_, W_, woff_, fi_, fo_, nr_, alpha_, out_ = args
        ap, wp, op = (_data(context, builder, sig.args[i], args[i]) for i in (0, 2, 8))
        emit_forward(builder, _a_loader(builder, ap, aoff_, fi_), wp, woff_, fi_, fo_, nr_, _splat(builder, alpha_), op)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _grad_lanes(typingctx, A, aoff, D, nr, G, wb, fi, fo):
    """``G[wb + k·fo + j] += A[aoff + c·fi + k] · D[c·fo + j]`` for c = 0 .. nr-1 in order (k < fi, j < fo)."""
    _check_args((A, D, G), (aoff, nr, wb, fi, fo), ())
    sig = types.void(A, types.int64, D, types.int64, G, types.int64, types.int64, types.int64)

    def codegen(context, builder, sig, args):
        A_, aoff_, D_, nr_, G_, wb_, fi_, fo_ = args
        ap, dp, gp = (_data(context, builder, sig.args[i], args[i]) for i in (0, 2, 4))
        emit_grad(builder, _a_loader(builder, ap, aoff_, fi_), dp, nr_, gp, wb_, fi_, fo_)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _back_lanes(typingctx, D, W, wb, fi, fo, nr, out):
    """``out[c·fi + k] = 0 + Σ_j D[c·fo + j] · W[wb + k·fo + j]`` (j in order) for c < nr, k < fi."""
    _check_args((D, W, out), (wb, fi, fo, nr), ())
    sig = types.void(D, W, types.int64, types.int64, types.int64, types.int64, out)

    def codegen(context, builder, sig, args):
        D_, W_, wb_, fi_, fo_, nr_, out_ = args
        dp, wp, op = (_data(context, builder, sig.args[i], args[i]) for i in (0, 1, 6))
        # emit_forward with the sum over j (fo terms) and fi outputs per point, W read transposed, no scale
        emit_forward(builder, _a_loader(builder, dp, _c(0), fo_), wp, wb_, fo_, fi_, nr_, None, op,
                     w_index=lambda j, k: builder.add(wb_, builder.add(builder.mul(k, fo_), j)))
        return context.get_dummy_value()

    return sig, codegen


def _sitofp_splat(builder, n):
    return _splat(builder, builder.sitofp(n, ir.DoubleType()))


@intrinsic
def _norm_lanes(typingctx, pre, poff, nw, nrm, off, istd, layer, eps):
    """Layer norm of ``nw`` units (vectors, from vector ``poff``) of ``pre`` in place, per lane.

    ``mean = (0 + Σ_j z_j) / nw``, ``var = (0 + Σ_j (z_j − mean)²) / nw``,
    ``inv = 1 / sqrt(var + eps)``, ``z_j ← (z_j − mean) · inv``; the normalised
    values are also kept in ``nrm`` from vector ``off``, ``inv`` in ``istd``
    at vector ``layer``.  sqrt and division are IEEE's, correctly rounded, as
    ``math.sqrt`` and ``/`` are.
    """
    _check_args((pre, nrm, istd), (poff, nw, off, layer), (eps,))
    sig = types.void(pre, types.int64, types.int64, nrm, types.int64, istd, types.int64, eps)

    def codegen(context, builder, sig, args):
        pre_, poff_, nw_, nrm_, off_, istd_, layer_, eps_ = args
        pp, rp, ip = (_data(context, builder, sig.args[i], args[i]) for i in (0, 3, 5))
        L = _c(LANES)
        zero = ir.Constant(_vec, [0.0] * LANES)
        n = _sitofp_splat(builder, nw_)
        sqrt = _vintrinsic(builder, "sqrt", 1)

        def z(j):
            return _vload(builder, pp, builder.mul(builder.add(poff_, j), L))

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
            _vstore(builder, pp, builder.mul(builder.add(poff_, j), L), y)
            _vstore(builder, rp, builder.mul(builder.add(off_, j), L), y)
            return []

        _loop(builder, _c(0), nw_, _c(1), [], norm)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _norm_back_lanes(typingctx, dn, doff, nw, nrm, off, istd, layer):
    """dL/dz from dL/dn (``nw`` vectors of ``dn`` from vector ``doff``, in place) through :func:`_norm_lanes`.

    ``m1 = (0 + Σ_k dn_k) / nw``, ``m2 = (0 + Σ_k dn_k·n_k) / nw``,
    ``dn_k ← inv · ((dn_k − m1) − n_k · m2)``, n the kept normalised values.
    """
    _check_args((dn, nrm, istd), (doff, nw, off, layer), ())
    sig = types.void(dn, types.int64, types.int64, nrm, types.int64, istd, types.int64)

    def codegen(context, builder, sig, args):
        dn_, doff_, nw_, nrm_, off_, istd_, layer_ = args
        dp, rp, ip = (_data(context, builder, sig.args[i], args[i]) for i in (0, 3, 5))
        L = _c(LANES)
        zero = ir.Constant(_vec, [0.0] * LANES)
        n = _sitofp_splat(builder, nw_)

        def d(k):
            return _vload(builder, dp, builder.mul(builder.add(doff_, k), L))

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
            _vstore(builder, dp, builder.mul(builder.add(doff_, k), L), y)
            return []

        _loop(builder, _c(0), nw_, _c(1), [], back)
        return context.get_dummy_value()

    return sig, codegen
