"""Vector matrix products of the first layer (input rows shared by all lanes), emitted as LLVM IR.

The two products that carry almost all the flops of a depth-2 network (the fast
path's), and the first layer of the general path's, for a chunk of data points
and all LANES pixels at once:
  forward   Z[c, j, :] = alpha * (0 + X[c, 0] W[0, j, :] + X[c, 1] W[1, j, :] + ...)
  gradient  G[k, j, :] += X[c, k] D[c, j, :]        for c = 0, 1, ... in order
They are emitted directly as LLVM IR on <LANES x double> vectors, register
blocked (a tile of accumulators stays in registers while the shared operand
is broadcast once per tile row), with a separate multiply and add per term
(no FMA).  Every sum runs in the order of a plain loop over the terms (0, then
k = 0, 1, ...; points in order), so the results are bitwise those of one point
at a time; blocking only changes which independent sums are computed side by
side.

``_output_mm`` does the same for the output layer and its backward pass.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from fractaltrain.compute.kernel.ir import LANES, _c, _check_args, _data, _loop, _splat, _tiles, _vec, _vload, _vstore

# Register tiles: 16 accumulators, two rows of eight vectors, so each step loads eight vectors and
# broadcasts two scalars (4 x 4 broadcast four: on Zen 4 a 2 x 8 tile ran the forward product in 19% and
# the gradient in 20% less time, scripts/bench/bench_kernel_parts.py).
FWD_TILE = (2, 8)  # forward accumulators: data points x hidden units
GRAD_TILE = (2, 8)  # gradient accumulators: inputs x hidden units
OUT_ROWS = 4  # output layer: dot products (rows, or hidden units for G1) computed side by side


def emit_forward(builder, load_in, wp, woff, nin, nh, nrows, alpha, zp, w_index=None):
    """Emit ``Z[c·nh + j] = alpha · (0 + Σ_k in(c, k) · W[woff + k·nh + j])`` for c < nrows, j < nh.

    Indices are in vectors; ``load_in(c, k)`` gives the input of point ``c``,
    unit ``k`` as a vector (a broadcast data value, or a per-lane activation).
    ``alpha`` is a vector, or None for no scaling; ``w_index(k, j)``, if given,
    replaces ``woff + k·nh + j`` (a backward product reads W transposed).
    Register tiles of FWD_TILE sums, k in order.
    """
    zero = ir.Constant(_vec, [0.0] * LANES)
    L = _c(LANES)
    if w_index is None:
        def w_index(k, j):
            return builder.add(woff, builder.add(builder.mul(k, nh), j))

    def tile(a0, b0, A, B):  # points a0.., units b0..
        def body(k, acc):
            w = [_vload(builder, wp, builder.mul(w_index(k, builder.add(b0, _c(b))), L)) for b in range(B)]
            new = []
            for a in range(A):
                x = load_in(builder.add(a0, _c(a)), k)
                new += [builder.fadd(acc[a * B + b], builder.fmul(x, w[b])) for b in range(B)]
            return new

        acc = _loop(builder, _c(0), nin, _c(1), [zero] * (A * B), body)
        for a in range(A):
            zrow = builder.add(builder.mul(builder.add(a0, _c(a)), nh), b0)
            for b in range(B):
                v = acc[a * B + b] if alpha is None else builder.fmul(acc[a * B + b], alpha)
                _vstore(builder, zp, builder.mul(builder.add(zrow, _c(b)), L), v)

    _tiles(builder, nrows, nh, FWD_TILE[0], FWD_TILE[1], tile)


def emit_grad(builder, load_in, dp, nrows, gp, goff, nin, nh):
    """Emit ``G[goff + k·nh + j] += in(c, k) · D[c·nh + j]`` for c = 0 .. nrows-1 in order (k < nin, j < nh).

    Indices are in vectors; ``load_in`` as :func:`emit_forward`'s.  A register
    tile of GRAD_TILE entries of G stays in registers over all the points.
    """
    L = _c(LANES)

    def tile(a0, b0, A, B):  # inputs a0.., units b0..
        gidx = [builder.mul(builder.add(goff, builder.add(builder.mul(builder.add(a0, _c(a)), nh), builder.add(b0, _c(b)))), L)
                for a in range(A) for b in range(B)]

        def body(c, acc):
            drow = builder.add(builder.mul(c, nh), b0)
            d = [_vload(builder, dp, builder.mul(builder.add(drow, _c(b)), L)) for b in range(B)]
            new = []
            for a in range(A):
                x = load_in(c, builder.add(a0, _c(a)))
                new += [builder.fadd(acc[a * B + b], builder.fmul(x, d[b])) for b in range(B)]
            return new

        acc = _loop(builder, _c(0), nrows, _c(1), [_vload(builder, gp, g) for g in gidx], body)
        for g, v in zip(gidx, acc):
            _vstore(builder, gp, g, v)

    _tiles(builder, nin, nh, GRAD_TILE[0], GRAD_TILE[1], tile)


def _x_loader(builder, xp, r0, nin):
    """``load_in`` of the data rows ``X[r0 + c, k]``, broadcast to all lanes."""
    return lambda c, k: _splat(builder, builder.load(builder.gep(xp, [builder.add(builder.mul(builder.add(r0, c), nin), k)]), align=8))


@intrinsic
def _forward_mm(typingctx, X, r0, nrows, nin, W, nh, alpha, Z):
    """``Z[c, j, :] = alpha * Σ_k X[r0 + c, k] W[k, j, :]`` for ``c < nrows`` (k in order, from 0.0).

    ``X`` is (points, nin); ``W`` is (nin, nh, LANES) and ``Z`` (nrows, nh, LANES), flat.
    """
    _check_args((X, W, Z), (r0, nrows, nin, nh), (alpha,))
    sig = types.void(X, types.int64, types.int64, types.int64, W, types.int64, alpha, Z)

    def codegen(context, builder, sig, args):
        X_, r0_, nrows_, nin_, W_, nh_, alpha_, Z_ = args
        xp, wp, zp = (_data(context, builder, sig.args[i], args[i]) for i in (0, 4, 7))
        emit_forward(builder, _x_loader(builder, xp, r0_, nin_), wp, _c(0), nin_, nh_, nrows_, _splat(builder, alpha_), zp)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _grad_mm(typingctx, X, r0, nrows, nin, D, nh, G):
    """``G[k, j, :] += X[r0 + c, k] D[c, j, :]`` for ``c = 0 .. nrows-1`` in order.

    ``X`` is (points, nin); ``D`` is (nrows, nh, LANES) and ``G`` (nin, nh, LANES), flat.
    """
    _check_args((X, D, G), (r0, nrows, nin, nh), ())
    sig = types.void(X, types.int64, types.int64, types.int64, D, types.int64, G)

    def codegen(context, builder, sig, args):
        X_, r0_, nrows_, nin_, D_, nh_, G_ = args
        xp, dp, gp = (_data(context, builder, sig.args[i], args[i]) for i in (0, 4, 6))
        emit_grad(builder, _x_loader(builder, xp, r0_, nin_), dp, nrows_, gp, _c(0), nin_, nh_)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _output_mm(typingctx, A, D, W1, G1, Y, r0, nrows, nh, m, alpha0, alpha1, loss, R, do_loss, do_grad):
    """Output layer of a depth-2 network for a chunk, and its backward pass.

    ``A``, ``D``: σ and σ' of the chunk's hidden units, (nrows, nh, LANES).
    ``W1``, ``G1``: (nh, m, LANES).  ``R``: scratch, at least (nrows, m, LANES).
    Adds Σ_c Σ_o r² to ``loss`` (if ``do_loss``, rows then outputs in order); if
    ``do_grad``, adds the chunk to ``G1`` (rows in order) and overwrites ``D`` with
    ``((0 + Σ_o δ_o W1[j, o]) · σ') · alpha0``, δ = r · alpha1, as ``_backward``.
    """
    _check_args((A, D, W1, G1, Y, loss, R), (r0, nrows, nh, m), (alpha0, alpha1))
    sig = types.void(A, D, W1, G1, Y, types.int64, types.int64, types.int64, types.int64, alpha0, alpha1,
                     loss, R, types.boolean, types.boolean)

    def codegen(context, builder, sig, args):
        A_, D_, W1_, G1_, Y_, r0_, nrows_, nh_, m_, a0_, a1_, loss_, R_, do_loss_, do_grad_ = args
        ap, dp, wp, gp, yp, lp, rp = (
            _data(context, builder, sig.args[i], v) for i, v in ((0, A_), (1, D_), (2, W1_), (3, G1_), (4, Y_), (11, loss_), (12, R_))
        )
        L = _c(LANES)
        zero = ir.Constant(_vec, [0.0] * LANES)
        av0 = _splat(builder, a0_)
        av1 = _splat(builder, a1_)

        def vidx(*terms):  # ((t0 * n1 + t1) * n2 + t2 ...) * LANES for pairs (index, extent)
            idx = terms[0]
            for i, n in zip(terms[1::2], terms[2::2]):
                idx = builder.add(builder.mul(idx, n), i)
            return builder.mul(idx, L)

        # pass 1: residuals r = alpha1 * (0 + Σ_j a_j W1[j, o]) - y, loss, δ = r * alpha1 into R.
        # Each row's dot product is one chain of dependent adds; with one output
        # (every published config) OUT_ROWS rows run side by side, so the chains
        # overlap instead of waiting on the adder's latency, and their finishing
        # (loss, δ) still goes row by row, in order.
        def dots(c0, rows_, o):
            def dot(j, acc):
                w = _vload(builder, wp, vidx(j, o, m_))
                return [builder.fadd(acc[i], builder.fmul(_vload(builder, ap, vidx(builder.add(c0, _c(i)), j, nh_)), w))
                        for i in range(rows_)]

            return _loop(builder, _c(0), nh_, _c(1), [zero] * rows_, dot)

        def finish(c, o, s, lacc):
            y = builder.load(builder.gep(yp, [builder.add(builder.mul(builder.add(r0_, c), m_), o)]), align=8)
            r = builder.fsub(builder.fmul(s, av1), _splat(builder, y))
            _vstore(builder, rp, vidx(c, o, m_), builder.fmul(r, av1))
            lnew = builder.fadd(lacc, builder.fmul(r, r))
            return builder.select(do_loss_, lnew, lacc)

        def rows(c, lacc):
            def outs(o, lacc2):
                (s,) = dots(c, 1, o)
                return [finish(c, o, s, lacc2[0])]

            return _loop(builder, _c(0), m_, _c(1), lacc, outs)

        def row_group(c0, lacc):
            sums = dots(c0, OUT_ROWS, _c(0))
            acc = lacc[0]
            for i, s in enumerate(sums):
                acc = finish(builder.add(c0, _c(i)), _c(0), s, acc)
            return [acc]

        l0 = _vload(builder, lp, _c(0))
        one_out = builder.icmp_signed("==", m_, _c(1))
        grouped = builder.select(one_out, builder.mul(builder.sdiv(nrows_, _c(OUT_ROWS)), _c(OUT_ROWS)), _c(0))
        lacc = _loop(builder, _c(0), grouped, _c(OUT_ROWS), [l0], row_group)
        (lsum,) = _loop(builder, grouped, nrows_, _c(1), lacc, rows)
        _vstore(builder, lp, _c(0), lsum)

        with builder.if_then(do_grad_):
            # pass 2: G1[j, o] += a_j δ_o, rows in order, accumulated in registers,
            # OUT_ROWS hidden units side by side (independent chains, as in pass 1)
            def g_units(j0, units):
                def g_o(o, _):
                    gi = [vidx(builder.add(j0, _c(i)), o, m_) for i in range(units)]

                    def g_c(c, acc):
                        d = _vload(builder, rp, vidx(c, o, m_))
                        return [builder.fadd(acc[i], builder.fmul(_vload(builder, ap, vidx(c, builder.add(j0, _c(i)), nh_)), d))
                                for i in range(units)]

                    gs = _loop(builder, _c(0), nrows_, _c(1), [_vload(builder, gp, g) for g in gi], g_c)
                    for g, v in zip(gi, gs):
                        _vstore(builder, gp, g, v)
                    return []

                _loop(builder, _c(0), m_, _c(1), [], g_o)

            def g_group(j0, _):
                g_units(j0, OUT_ROWS)
                return []

            def g_one(j, _):
                g_units(j, 1)
                return []

            nhf = builder.mul(builder.sdiv(nh_, _c(OUT_ROWS)), _c(OUT_ROWS))
            _loop(builder, _c(0), nhf, _c(OUT_ROWS), [], g_group)
            _loop(builder, nhf, nh_, _c(1), [], g_one)

            # pass 3: D[c, j] = ((0 + Σ_o δ_o W1[j, o]) · D[c, j]) · alpha0
            def d_c(c, _):
                def d_j(j, _):
                    def d_o(o, acc):
                        d = _vload(builder, rp, vidx(c, o, m_))
                        w = _vload(builder, wp, vidx(j, o, m_))
                        return [builder.fadd(acc[0], builder.fmul(d, w))]

                    (s,) = _loop(builder, _c(0), m_, _c(1), [zero], d_o)
                    di = vidx(c, j, nh_)
                    _vstore(builder, dp, di, builder.fmul(builder.fmul(s, _vload(builder, dp, di)), av0))
                    return []

                _loop(builder, _c(0), nh_, _c(1), [], d_j)
                return []

            _loop(builder, _c(0), nrows_, _c(1), [], d_c)
        return context.get_dummy_value()

    return sig, codegen
