"""The general double-double path's per-point layer loops as vector LLVM IR (any depth).

ddgeneral.py runs one data point at a time through layers of any shape.  Its
loops over lanes, with a double-double product and sum in each iteration,
were vectorised by numba only in part; these intrinsics emit the same
operations (dd.py's, via :class:`~fractaltrain.compute.kernel.ddvec.DDIR`) on
vectors of LANES pixels, in the same order, several independent sums side by
side.  The first layer (an input row shared by all lanes) reuses ddmatmul.py's
forward and gradient products with one row.

Arrays are double-double ``(2, n)`` arrays, row 0 high parts, row 1 low parts,
pixel index innermost; offsets and sizes are in vectors (entries / LANES).
"""

from __future__ import annotations

from numba import types
from numba.extending import intrinsic

from fractaltrain.compute.kernel.ddmatmul import _alpha, _check_dd, _Loader, _rows, _tiled
from fractaltrain.compute.kernel.ddvec import DDIR
from fractaltrain.compute.kernel.ir import _c, _loop, _vconst

TILE = 4  # independent sums side by side


def _alpha_of(context, builder, ty, val, layer):
    arr = context.make_array(ty)(context, builder, val)
    return _alpha(builder, arr.data, layer, builder.extract_value(arr.shape, 1))


@intrinsic
def _dense_dd(typingctx, A, aoff, W, woff, fi, fo, alphas, layer, pre):
    """``pre[j] = (0 + Σ_k dd_mul(A[aoff + k], W[woff + k·fo + j])) · alphas[:, layer]`` for ``j < fo``."""
    _check_dd((A, W, alphas, pre), (), (aoff, woff, fi, fo, layer))
    sig = types.void(A, types.int64, W, types.int64, types.int64, types.int64, alphas, types.int64, pre)

    def codegen(context, builder, sig, args):
        A_, aoff_, W_, woff_, fi_, fo_, al_, layer_, pre_ = args
        av, wv, pv = (_Loader(builder, _rows(context, builder, sig.args[i], args[i])) for i in (0, 2, 8))
        ah_, al__ = _alpha_of(context, builder, sig.args[6], al_, layer_)
        dd = DDIR(builder, context)

        def js(jl):
            n = len(jl)

            def body(k, acc):
                ah, al = av.load(builder.add(aoff_, k))
                wh, wl = wv.loads([builder.add(woff_, builder.add(builder.mul(k, fo_), j)) for j in jl])
                ph, pl = dd.dd_mul(ah, al, wh, wl)
                sh, sl = dd.dd_add(acc[:n], acc[n:], ph, pl)
                return sh + sl

            acc = _loop(builder, _c(0), fi_, _c(1), [_vconst(0.0)] * (2 * n), body)
            zh, zl = dd.dd_mul(acc[:n], acc[n:], ah_, al__)
            for j, h, l in zip(jl, zh, zl):
                pv.store(j, h, l)

        _tiled(builder, fo_, TILE, js)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _scale_dd(typingctx, V, n, alphas, layer):
    """``V[q] = dd_mul(V[q], alphas[:, layer])`` for the first ``n`` vectors."""
    _check_dd((V, alphas), (), (n, layer))
    sig = types.void(V, types.int64, alphas, types.int64)

    def codegen(context, builder, sig, args):
        V_, n_, al_, layer_ = args
        vv = _Loader(builder, _rows(context, builder, sig.args[0], V_))
        ah, al = _alpha_of(context, builder, sig.args[2], al_, layer_)
        dd = DDIR(builder, context)

        def qs(ql):
            vh, vl = vv.loads(ql)
            rh, rl = dd.dd_mul(vh, vl, ah, al)
            for q, h, l in zip(ql, rh, rl):
                vv.store(q, h, l)

        _tiled(builder, n_, TILE, qs)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _backward_layer_dd(typingctx, acts, ab, dacts, W, G, wb, fi, fo, delta, dnext, with_dact):
    """Backward pass through layer ``l > 0`` (weights at ``wb``, ``fi`` x ``fo``), as ddgeneral._backward_dd.

    ``G[wb + k·fo + j] = dd_add(G, dd_mul(acts[ab + k], delta[j]))``, then
    ``dnext[k] = dd_mul(0 + Σ_j dd_mul(delta[j], W[wb + k·fo + j]), dacts[ab + k])``, or the sum
    alone when ``with_dact`` is 0 (residual connections add dL/da of the layer above before σ').
    """
    _check_dd((acts, dacts, W, G, delta, dnext), (), (ab, wb, fi, fo, with_dact))
    sig = types.void(acts, types.int64, dacts, W, G, types.int64, types.int64, types.int64, delta, dnext, types.int64)

    def codegen(context, builder, sig, args):
        av, dav, wv, gv, dv, nv = (_Loader(builder, _rows(context, builder, sig.args[i], args[i])) for i in (0, 2, 3, 4, 8, 9))
        ab_, wb_, fi_, fo_ = args[1], args[5], args[6], args[7]
        keep = builder.icmp_signed("!=", args[10], _c(0))
        dd = DDIR(builder, context)

        def widx(k, j):
            return builder.add(wb_, builder.add(builder.mul(k, fo_), j))

        def grad_k(k, _):
            ah, al = av.load(builder.add(ab_, k))

            def js(jl):
                gi = [widx(k, j) for j in jl]
                gh, gl = gv.loads(gi)
                dh, dl = dv.loads(jl)
                ph, pl = dd.dd_mul(ah, al, dh, dl)
                sh, sl = dd.dd_add(gh, gl, ph, pl)
                for i, h, l in zip(gi, sh, sl):
                    gv.store(i, h, l)

            _tiled(builder, fo_, TILE, js)
            return []

        _loop(builder, _c(0), fi_, _c(1), [], grad_k)

        def ks(kl):
            n = len(kl)

            def body(j, acc):
                dh, dl = dv.load(j)
                wh, wl = wv.loads([widx(k, j) for k in kl])
                ph, pl = dd.dd_mul(dh, dl, wh, wl)
                sh, sl = dd.dd_add(acc[:n], acc[n:], ph, pl)
                return sh + sl

            acc = _loop(builder, _c(0), fo_, _c(1), [_vconst(0.0)] * (2 * n), body)
            sh, sl = dav.loads([builder.add(ab_, k) for k in kl])
            rh, rl = dd.dd_mul(acc[:n], acc[n:], sh, sl)
            for k, h, l, ah, al in zip(kl, rh, rl, acc[:n], acc[n:]):
                nv.store(k, builder.select(keep, h, ah), builder.select(keep, l, al))

        _tiled(builder, fi_, TILE, ks)
        return context.get_dummy_value()

    return sig, codegen
