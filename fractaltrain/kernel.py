"""The training kernel: train one network per pixel, in float64, with numba.

Layout.  Pixels are trained in blocks of ``LANES`` in lock-step, and every
per-pixel array keeps the pixel index innermost (``W[(q)*LANES + p]``).  The
innermost loops are then contiguous, fixed-length and free of dependencies
between lanes, so LLVM vectorises them, while each pixel still performs exactly
the same operations in the same order whichever block, tile or thread it lands
in.  That is what makes results bitwise independent of thread count and tile
size.  Short final blocks are padded with copies of the last pixel, whose
results are discarded.

Algorithm (PAPER.md).  At each step ``t``: add the per-step W0 drift (the
notebook's form of the offset condition), evaluate the full-batch loss ``l_t``
and the gradient (full batch, or on the ``t``-th minibatch of the shared index
sequence, reusing nothing but the weights), then take one steepest-descent step
with each layer's own learning rate.  The measure accumulates
``v_t = min(l_t / l_0, 1e6)`` (a non-finite loss counts as 1e6) as it goes.

Early stop.  Once a pixel's loss is non-finite it never recovers (PAPER.md), so
every later ``v_t`` is the same constant: the pixel is marked dead, its weights
are zeroed so it costs no NaN arithmetic, and its sums keep adding that constant
step by step (not multiplied, so the bits equal a full run).  A block stops
training when all its pixels are dead.

Depth-2 fast path.  Networks with one hidden layer (all the paper's
conditions) go through ``_loss_grad2`` instead of the general ``_loss_grad``.
It does the same floating-point operations in the same order, so its results
are bitwise those of the general path (the tests compare the two), but lays the
work out for the hardware: the data points are taken in chunks of ``CHUNK``; the
two matrix products (forward ``X W0`` and gradient ``Xᵀ δ``) are emitted as
LLVM IR on <LANES x double> vectors with register-blocked tiles of
accumulators; tanh is evaluated by ``_activate_tanh``, a restatement of
``tanh64`` in IR that interleaves several vectors and computes for each vector
only what its lanes need (one branch of tanh64, or nothing where tanh64 is
exactly ±1); the output layer and its backward pass are vector IR too; and the
common shapes (16-16-1, 8-8-1) are compiled with constant loop bounds.  See
docs/performance.md.  The compiled code is cached on disk, and numba does not
notice changes to fractaltrain/tanh.py there: after changing tanh64, delete
fractaltrain/__pycache__/kernel.* (the tests then check the two still agree).

Threads.  ``run_pixels`` runs ``numba.get_num_threads()`` workers in Python
threads (the kernel releases the GIL); they take blocks one at a time from a
shared atomic counter, so threads stay busy when blocks stop early.  A block's
result never depends on the thread that computes it.

Gradients are analytic; no fastmath: no reassociation (it would change chaotic
pixels) and no contraction into fused multiply-adds (every product and sum is
rounded separately, as written).  The only fused multiply-add is the one
``tanh64`` itself uses to get an exact division remainder.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from fractaltrain import tanh as _T
from fractaltrain.tanh import tanh64

LANES = 8  # pixels trained in lock-step; 8 float64 = one AVX-512 register
MAXV = 1e6  # clip of normalised losses and stand-in for non-finite values
TAIL = 20  # convergence is judged on the mean of the last TAIL normalised losses

# Output columns of the kernel.
OUT_MEASURE, OUT_FINAL, OUT_PROBE, OUT_STEPS = 0, 1, 2, 3
N_OUT = 4

_jit = dict(nogil=True, error_model="numpy", cache=True)


# --------------------------------------------------------------------------- lane-vector matrix products
#
# The two products that carry almost all the flops of a depth-2 network, for a
# chunk of data points and all LANES pixels at once:
#   forward   Z[c, j, :] = alpha * (0 + X[c, 0] W[0, j, :] + X[c, 1] W[1, j, :] + ...)
#   gradient  G[k, j, :] += X[c, k] D[c, j, :]        for c = 0, 1, ... in order
# They are emitted directly as LLVM IR on <LANES x double> vectors, register
# blocked (a tile of accumulators stays in registers while the shared operand
# is broadcast once per tile row), with a separate multiply and add per term
# (no FMA).  Every sum runs in the same order as the plain loops of the general
# path, so the results are bitwise the same; blocking only changes which
# independent sums are computed side by side.

_f64 = ir.DoubleType()
_vec = ir.VectorType(_f64, LANES)
_i64 = ir.IntType(64)
_i32 = ir.IntType(32)
_ZEROS_I32 = ir.Constant(ir.VectorType(_i32, LANES), [0] * LANES)

FWD_TILE = (4, 4)  # forward accumulators: data points x hidden units
GRAD_TILE = (4, 4)  # gradient accumulators: inputs x hidden units


def _c(v):
    return ir.Constant(_i64, v)


def _loop(builder, start, stop, step, inits, body):
    """Emit ``for (i = start; i < stop; i += step) vals = body(i, vals)``; return the final vals."""
    pre = builder.basic_block
    cond = builder.append_basic_block("vl.cond")
    bodyb = builder.append_basic_block("vl.body")
    end = builder.append_basic_block("vl.end")
    builder.branch(cond)
    builder.position_at_end(cond)
    idx = builder.phi(_i64)
    phis = [builder.phi(v.type) for v in inits]
    builder.cbranch(builder.icmp_signed("<", idx, stop), bodyb, end)
    builder.position_at_end(bodyb)
    new = body(idx, phis)
    nxt = builder.add(idx, step)
    last = builder.basic_block
    builder.branch(cond)
    idx.add_incoming(start, pre)
    idx.add_incoming(nxt, last)
    for p, v0, v1 in zip(phis, inits, new):
        p.add_incoming(v0, pre)
        p.add_incoming(v1, last)
    builder.position_at_end(end)
    return phis


def _vptr(builder, base, idx):
    return builder.bitcast(builder.gep(base, [idx]), _vec.as_pointer())


def _vload(builder, base, idx):
    return builder.load(_vptr(builder, base, idx), align=8)


def _vstore(builder, base, idx, val):
    builder.store(val, _vptr(builder, base, idx), align=8)


def _splat(builder, s):
    v = builder.insert_element(ir.Constant(_vec, ir.Undefined), s, _c(0))
    return builder.shuffle_vector(v, ir.Constant(_vec, ir.Undefined), _ZEROS_I32)


def _tiles(builder, na, nb_, tile_a, tile_b, tile):
    """Cover [0, na) x [0, nb_) by calls ``tile(a0, b0, A, B)``: full tiles, then width-1 remainders."""
    nbf = builder.mul(builder.sdiv(nb_, _c(tile_b)), _c(tile_b))
    naf = builder.mul(builder.sdiv(na, _c(tile_a)), _c(tile_a))

    def over_a(b0, B):
        def full(a0, _):
            tile(a0, b0, tile_a, B)
            return []

        def rest(a0, _):
            tile(a0, b0, 1, B)
            return []

        _loop(builder, _c(0), naf, _c(tile_a), [], full)
        _loop(builder, naf, na, _c(1), [], rest)

    def full_b(b0, _):
        over_a(b0, tile_b)
        return []

    def rest_b(b0, _):
        over_a(b0, 1)
        return []

    _loop(builder, _c(0), nbf, _c(tile_b), [], full_b)
    _loop(builder, nbf, nb_, _c(1), [], rest_b)


def _data(context, builder, ty, val):
    return context.make_array(ty)(context, builder, val).data


def _check_args(arrays, ints, floats):
    for a in arrays:
        if not (isinstance(a, types.Array) and a.dtype == types.float64 and a.layout == "C"):
            raise TypeError("expected C-contiguous float64 arrays")
    for i in ints:
        if not isinstance(i, types.Integer):
            raise TypeError("expected integers")
    for f in floats:
        if f != types.float64:
            raise TypeError("expected float64")


@intrinsic
def _forward_mm(typingctx, X, r0, nrows, nin, W, nh, alpha, Z):
    """``Z[c, j, :] = alpha * Σ_k X[r0 + c, k] W[k, j, :]`` for ``c < nrows`` (k in order, from 0.0).

    ``X`` is (points, nin); ``W`` is (nin, nh, LANES) and ``Z`` (nrows, nh, LANES), flat.
    """
    _check_args((X, W, Z), (r0, nrows, nin, nh), (alpha,))
    sig = types.void(X, types.int64, types.int64, types.int64, W, types.int64, alpha, Z)

    def codegen(context, builder, sig, args):
        X_, r0_, nrows_, nin_, W_, nh_, alpha_, Z_ = args
        xp = _data(context, builder, sig.args[0], X_)
        wp = _data(context, builder, sig.args[4], W_)
        zp = _data(context, builder, sig.args[7], Z_)
        av = _splat(builder, alpha_)
        zero = ir.Constant(_vec, [0.0] * LANES)
        L = _c(LANES)

        def tile(a0, b0, A, B):  # points a0.., hidden units b0..
            xrow = [builder.mul(builder.add(r0_, builder.add(a0, _c(a))), nin_) for a in range(A)]

            def body(k, acc):
                wrow = builder.mul(k, nh_)
                w = [_vload(builder, wp, builder.mul(builder.add(wrow, builder.add(b0, _c(b))), L)) for b in range(B)]
                new = []
                for a in range(A):
                    x = _splat(builder, builder.load(builder.gep(xp, [builder.add(xrow[a], k)]), align=8))
                    for b in range(B):
                        new.append(builder.fadd(acc[a * B + b], builder.fmul(x, w[b])))
                return new

            acc = _loop(builder, _c(0), nin_, _c(1), [zero] * (A * B), body)
            for a in range(A):
                zrow = builder.mul(builder.add(a0, _c(a)), nh_)
                for b in range(B):
                    idx = builder.mul(builder.add(zrow, builder.add(b0, _c(b))), L)
                    _vstore(builder, zp, idx, builder.fmul(acc[a * B + b], av))

        _tiles(builder, nrows_, nh_, FWD_TILE[0], FWD_TILE[1], tile)
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
        xp = _data(context, builder, sig.args[0], X_)
        dp = _data(context, builder, sig.args[4], D_)
        gp = _data(context, builder, sig.args[6], G_)
        L = _c(LANES)

        def tile(a0, b0, A, B):  # inputs a0.., hidden units b0..
            gidx = [
                builder.mul(builder.add(builder.mul(builder.add(a0, _c(a)), nh_), builder.add(b0, _c(b))), L)
                for a in range(A)
                for b in range(B)
            ]
            init = [_vload(builder, gp, g) for g in gidx]

            def body(c, acc):
                drow = builder.mul(c, nh_)
                d = [_vload(builder, dp, builder.mul(builder.add(drow, builder.add(b0, _c(b))), L)) for b in range(B)]
                xrow = builder.mul(builder.add(r0_, c), nin_)
                new = []
                for a in range(A):
                    x = _splat(builder, builder.load(builder.gep(xp, [builder.add(xrow, builder.add(a0, _c(a)))]), align=8))
                    for b in range(B):
                        new.append(builder.fadd(acc[a * B + b], builder.fmul(x, d[b])))
                return new

            acc = _loop(builder, _c(0), nrows_, _c(1), init, body)
            for g, v in zip(gidx, acc):
                _vstore(builder, gp, g, v)

        _tiles(builder, nin_, nh_, GRAD_TILE[0], GRAD_TILE[1], tile)
        return context.get_dummy_value()

    return sig, codegen


@nb.njit(**_jit)
def _activate(pre, act, dact, n, nonlin):
    """act = σ(pre), dact = σ'(pre) for ``n`` lanes-major entries (in place of pre)."""
    if nonlin == 0:
        for q in range(n):
            a = tanh64(pre[q])
            act[q] = a
            dact[q] = 1.0 - a * a
    elif nonlin == 1:
        for q in range(n):
            z = pre[q]
            pos = z > 0.0
            act[q] = z if pos else 0.0
            dact[q] = 1.0 if pos else 0.0
    else:
        for q in range(n):
            act[q] = pre[q]
            dact[q] = 1.0


@nb.njit(**_jit)
def _dense_shared_in(x, W, woff, fi, fo, alpha, pre):
    """pre[j,:] = alpha · Σ_k x[k] W[k,j,:] for an input row shared by all lanes."""
    L = LANES
    for q in range(fo * L):
        pre[q] = 0.0
    for k in range(fi):
        xk = x[k]
        base = (woff + k * fo) * L
        for q in range(fo * L):
            pre[q] += xk * W[base + q]
    for q in range(fo * L):
        pre[q] *= alpha


@nb.njit(**_jit)
def _dense(a, aoff, W, woff, fi, fo, alpha, pre):
    """pre[j,:] = alpha · Σ_k a[k,:] W[k,j,:] with a per-lane input."""
    L = LANES
    for q in range(fo * L):
        pre[q] = 0.0
    for k in range(fi):
        base = (woff + k * fo) * L
        abase = aoff + k * L
        for j in range(fo):
            for p in range(L):
                pre[j * L + p] += a[abase + p] * W[base + j * L + p]
    for q in range(fo * L):
        pre[q] *= alpha


@nb.njit(**_jit)
def _forward(i, X, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, out):
    """Forward pass of data point ``i`` for all lanes; hidden activations kept for backprop."""
    depth = fi.shape[0]
    L = LANES
    _dense_shared_in(X[i], W, woff[0], fi[0], fo[0], alphas[0], pre)
    _activate(pre, acts[hoff[1]:], dacts[hoff[1]:], fo[0] * L, nonlin)
    for l in range(1, depth - 1):
        _dense(acts, hoff[l], W, woff[l], fi[l], fo[l], alphas[l], pre)
        _activate(pre, acts[hoff[l + 1]:], dacts[hoff[l + 1]:], fo[l] * L, nonlin)
    _dense(acts, hoff[depth - 1], W, woff[depth - 1], fi[depth - 1], fo[depth - 1], alphas[depth - 1], out)


@nb.njit(**_jit)
def _backward(i, X, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext):
    """Accumulate the gradient of point ``i`` into G, given ``delta`` = dL/d(output).

    ``delta`` holds (output residual) on entry; it is overwritten.  The gradient is
    of ``Σ_i Σ_o r_io²/2``; the caller applies the ``2/(points·outputs)`` factor.
    """
    depth = fi.shape[0]
    L = LANES
    for l in range(depth - 1, -1, -1):
        nfi = fi[l]
        nfo = fo[l]
        wb = woff[l] * L
        alpha = alphas[l]
        # delta currently holds dL/d(pre-scale output of layer l); fold in alpha.
        for q in range(nfo * L):
            delta[q] *= alpha
        if l > 0:
            ab = hoff[l]
            for k in range(nfi):
                for j in range(nfo):
                    for p in range(L):
                        G[wb + (k * nfo + j) * L + p] += acts[ab + k * L + p] * delta[j * L + p]
            for k in range(nfi):
                for p in range(L):
                    dnext[k * L + p] = 0.0
                for j in range(nfo):
                    for p in range(L):
                        dnext[k * L + p] += delta[j * L + p] * W[wb + (k * nfo + j) * L + p]
                for p in range(L):
                    dnext[k * L + p] *= dacts[ab + k * L + p]
            for q in range(nfi * L):
                delta[q] = dnext[q]
        else:
            x = X[i]
            for k in range(nfi):
                xk = x[k]
                base = wb + k * nfo * L
                for q in range(nfo * L):
                    G[base + q] += xk * delta[q]


@nb.njit(**_jit)
def _loss_grad(t, X, Y, W, G, loss, fi, fo, woff, alphas, nonlin, batch_idx, acts, dacts, hoff, pre, delta, dnext, o):
    """Summed squared error over all points into ``loss`` and the (unscaled) gradient into ``G``.

    The gradient is of the full batch, or of minibatch ``t`` of ``batch_idx`` when
    it has columns; either way ``loss`` is the full-batch sum of squares.
    """
    L = LANES
    n = X.shape[0]
    m = Y.shape[1]
    full = batch_idx.shape[1] == 0
    for q in range(G.shape[0]):
        G[q] = 0.0
    for p in range(L):
        loss[p] = 0.0
    for i in range(n):
        _forward(i, X, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o)
        for c in range(m):
            y = Y[i, c]
            for p in range(L):
                r = o[c * L + p] - y
                loss[p] += r * r
                delta[c * L + p] = r
        if full:
            _backward(i, X, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext)
    if not full:
        for b in range(batch_idx.shape[1]):
            i = batch_idx[t, b]
            _forward(i, X, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o)
            for c in range(m):
                y = Y[i, c]
                for p in range(L):
                    delta[c * L + p] = o[c * L + p] - y
            _backward(i, X, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext)


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

        # pass 1: residuals r = alpha1 * (0 + Σ_j a_j W1[j, o]) - y, loss, δ = r * alpha1 into R
        def rows(c, lacc):
            def outs(o, lacc2):
                def dot(j, acc):
                    a = _vload(builder, ap, vidx(c, j, nh_))
                    w = _vload(builder, wp, vidx(j, o, m_))
                    return [builder.fadd(acc[0], builder.fmul(a, w))]

                (s,) = _loop(builder, _c(0), nh_, _c(1), [zero], dot)
                y = builder.load(builder.gep(yp, [builder.add(builder.mul(builder.add(r0_, c), m_), o)]), align=8)
                r = builder.fsub(builder.fmul(s, av1), _splat(builder, y))
                _vstore(builder, rp, vidx(c, o, m_), builder.fmul(r, av1))
                lnew = builder.fadd(lacc2[0], builder.fmul(r, r))
                return [builder.select(do_loss_, lnew, lacc2[0])]

            return _loop(builder, _c(0), m_, _c(1), lacc, outs)

        l0 = _vload(builder, lp, _c(0))
        (lsum,) = _loop(builder, _c(0), nrows_, _c(1), [l0], rows)
        _vstore(builder, lp, _c(0), lsum)

        with builder.if_then(do_grad_):
            # pass 2: G1[j, o] += a_j δ_o, rows in order, accumulated in registers
            def g_j(j, _):
                def g_o(o, _):
                    gi = vidx(j, o, m_)

                    def g_c(c, acc):
                        a = _vload(builder, ap, vidx(c, j, nh_))
                        d = _vload(builder, rp, vidx(c, o, m_))
                        return [builder.fadd(acc[0], builder.fmul(a, d))]

                    (g,) = _loop(builder, _c(0), nrows_, _c(1), [_vload(builder, gp, gi)], g_c)
                    _vstore(builder, gp, gi, g)
                    return []

                _loop(builder, _c(0), m_, _c(1), [], g_o)
                return []

            _loop(builder, _c(0), nh_, _c(1), [], g_j)

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


# --------------------------------------------------------------------------- tanh on vectors
#
# ``tanh64`` (fractaltrain/tanh.py) restated on <LANES x double> vectors: the
# same operations in the same order, so bit for bit the same results (the tests
# check it).  Two things make it faster than a loop over tanh64:
# * tanh64 is a long chain of dependent operations, so a loop over it keeps the
#   core waiting on latencies; here TANH_GROUP vectors are emitted side by side,
#   one operation at a time, and the independent chains fill the pipelines.
# * tanh64 evaluates both of its branches (|x| < 0.55: rational function;
#   otherwise via exp(-2|x|)) and selects.  A first pass sorts the vectors of a
#   chunk into four lists: all lanes small, all lanes big, all lanes saturated
#   (|x| >= _SATURATE, where tanh64 is exactly ±1), or mixed; each list is then
#   evaluated with only what its lanes need.  Every lane gets the value tanh64
#   gives it, since a discarded branch never reaches a lane's result.
# If tanh64 changes, change this too (test_vector_tanh_is_bitwise_tanh64).

TANH_GROUP = (6, 4, 8, 8)  # vectors side by side, by class: both branches, small, big, saturated
TANH_GMAX = max(TANH_GROUP)
_FULL, _SMALL, _BIG, _SAT = 0, 1, 2, 3
# For |x| >= _SATURATE tanh64 returns exactly copysign(1, x): there e = exp(-2|x|)
# <= exp(-38.2) = 2.57e-17, so 1 + e rounds to 1, q = 2e <= 5.2e-17 < 2**-54
# (below half an ulp under 1; the bound is reached at |x| = 19.06), and both
# 1 - q and the final 1 + (lo - corr), lo = -q, |corr| < 1e-31, round to 1.
_SATURATE = 19.1


def _vconst(v):
    return ir.Constant(_vec, [float(v)] * LANES)


def _vintrinsic(builder, name, nargs):
    fname = f"llvm.{name}.v{LANES}f64"
    try:
        return builder.module.get_global(fname)
    except KeyError:
        return ir.Function(builder.module, ir.FunctionType(_vec, [_vec] * nargs), name=fname)


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


def _declare(builder, name, ret, argtys):
    try:
        return builder.module.get_global(name)
    except KeyError:
        return ir.Function(builder.module, ir.FunctionType(ret, argtys), name=name)


@nb.njit(**_jit)
def tanh_scratch_size(n):
    """Entries of the int64 ``lists`` scratch that ``_activate_tanh`` needs for ``n`` values."""
    return 4 * (n // LANES + max(TANH_GMAX, 8))


def _has_fma(context):
    return "+fma" in getattr(context.codegen(), "_tm_features", "").split(",")


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
        i8x8 = ir.VectorType(i8, 8)
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


# --------------------------------------------------------------------------- depth-2 fast path
#
# Same operations in the same order as the general path above, reorganised:
# the data points are processed in chunks of CHUNK, each chunk in four passes
# over all LANES pixels (forward product, activation, output layer and its
# backward pass, gradient product), so that the two products can be register
# blocked over several points and the activation loop is long and contiguous.

CHUNK = 16  # data points per chunk


@nb.njit(**_jit)
def _tanh_chunk(Z, A, D, n, T):
    """:func:`_activate_tanh` as a function of its own: compiled once, not per shape."""
    _activate_tanh(Z, A, D, n, T)


@nb.njit(inline="always", **_jit)
def _chunks2_body(X, Y, n, W0, W1, G0, G1, nin, nh, m, chunk, alpha0, alpha1, nonlin, loss, do_loss, do_grad, Z, A, D, R, T):
    for r0 in range(0, n, chunk):
        nr = min(chunk, n - r0)
        _forward_mm(X, r0, nr, nin, W0, nh, alpha0, Z)
        if nonlin == 0:
            _tanh_chunk(Z, A, D, nr * nh * LANES, T)
        else:
            _activate(Z, A, D, nr * nh * LANES, nonlin)
        _output_mm(A, D, W1, G1, Y, r0, nr, nh, m, alpha0, alpha1, loss, R, do_loss, do_grad)
        if do_grad:
            _grad_mm(X, r0, nr, nin, D, nh, G0)


@nb.njit(**_jit)
def _chunks2(X, Y, n, W0, W1, G0, G1, nin, nh, m, alpha0, alpha1, nonlin, loss, do_loss, do_grad, Z, A, D, R, T):
    """Loss and/or gradient contributions of points 0..n-1 of (X, Y), chunk by chunk.

    The common shapes get code compiled for their sizes (constant loop bounds).
    """
    if nin == 16 and nh == 16 and m == 1:
        _chunks2_body(X, Y, n, W0, W1, G0, G1, 16, 16, 1, CHUNK, alpha0, alpha1, nonlin, loss, do_loss, do_grad, Z, A, D, R, T)
    elif nin == 8 and nh == 8 and m == 1:
        _chunks2_body(X, Y, n, W0, W1, G0, G1, 8, 8, 1, CHUNK, alpha0, alpha1, nonlin, loss, do_loss, do_grad, Z, A, D, R, T)
    else:
        _chunks2_body(X, Y, n, W0, W1, G0, G1, nin, nh, m, CHUNK, alpha0, alpha1, nonlin, loss, do_loss, do_grad, Z, A, D, R, T)


@nb.njit(inline="always", **_jit)
def _loss_grad2(t, X, Y, W, G, loss, alphas, nonlin, batch_idx, Xb, Yb, Z, A, D, R, T):
    """:func:`_loss_grad` for depth 2, same results; ``Xb``, ``Yb``, ``Z`` … are scratch."""
    L = LANES
    nin = X.shape[1]
    m = Y.shape[1]
    nh = (W.shape[0] // L) // (nin + m)
    n0 = nin * nh * L
    W0 = W[:n0]
    W1 = W[n0:]
    G0 = G[:n0]
    G1 = G[n0:]
    for q in range(G.shape[0]):
        G[q] = 0.0
    for p in range(L):
        loss[p] = 0.0
    full = batch_idx.shape[1] == 0
    _chunks2(X, Y, X.shape[0], W0, W1, G0, G1, nin, nh, m, alphas[0], alphas[1], nonlin, loss, True, full, Z, A, D, R, T)
    if not full:
        nbt = batch_idx.shape[1]
        for b in range(nbt):
            i = batch_idx[t, b]
            for k in range(nin):
                Xb[b, k] = X[i, k]
            for o in range(m):
                Yb[b, o] = Y[i, o]
        _chunks2(Xb, Yb, nbt, W0, W1, G0, G1, nin, nh, m, alphas[0], alphas[1], nonlin, loss, False, True, Z, A, D, R, T)


@nb.njit(**_jit)
def train_block(hp, X, Y, probe, w0, fi, fo, woff, alphas, nonlin, steps, batch_idx, early_stop, out, fast_path=True):
    """Train ``LANES`` pixels in lock-step and write their results.

    Parameters
    ----------
    hp : (LANES, depth + 3) float64 — per-lane learning rates, drift, offset, scale.
    X, Y, probe : training data and probe input, shared by all lanes.
    w0 : flat initial weights; ``fi``, ``fo``, ``woff`` give each layer's shape and offset.
    alphas : per-layer pre-activation scale, last entry is the output scale.
    nonlin : 0 tanh, 1 relu, 2 identity.
    steps : number of training steps.
    batch_idx : (steps, batch) int64 minibatch indices, or a (0, 0) array for full batch.
    early_stop : stop training dead lanes (False only for tests).
    out : (LANES, N_OUT) float64 output: measure, log10 final normalised loss,
        probe output, steps trained.
    fast_path : use the depth-2 fast path when it applies (False only for tests).
    """
    L = LANES
    depth = fi.shape[0]
    npar = w0.shape[0]
    n = X.shape[0]
    m = Y.shape[1]
    full = batch_idx.shape[1] == 0
    nb_ = batch_idx.shape[1]
    # hidden activation offsets (lanes-major): hoff[l] = start of a_l for l = 1..depth-1
    hoff = np.zeros(depth + 1, dtype=np.int64)
    for l in range(1, depth):
        hoff[l + 1] = hoff[l] + fo[l - 1] * L
    nh = 0
    for l in range(depth - 1):
        nh += fo[l]
    wmax = 1
    for l in range(depth):
        wmax = max(wmax, fi[l], fo[l])
    W = np.empty(npar * L)
    G = np.empty(npar * L)
    acts = np.zeros(max(nh, 1) * L)
    dacts = np.zeros(max(nh, 1) * L)
    pre = np.empty(wmax * L)
    delta = np.empty(wmax * L)
    dnext = np.empty(wmax * L)
    o = np.empty(m * L)
    loss = np.empty(L)
    l0 = np.empty(L)
    s_v = np.zeros(L)
    s_inv = np.zeros(L)
    tail = np.zeros((TAIL, L))
    vlast = np.zeros(L)
    dead_v = np.zeros(L)
    alive = np.ones(L, dtype=np.bool_)
    trained = np.full(L, steps, dtype=np.int64)
    n0 = fi[0] * fo[0]
    fast = fast_path and depth == 2
    nz = CHUNK * fo[0] * L if fast else 0
    Z = np.empty(nz)
    A = np.empty(nz)
    D = np.empty(nz)
    R = np.empty(CHUNK * m * L if fast else 0)
    T = np.empty(tanh_scratch_size(CHUNK * fo[0] * L) if fast else 0, dtype=np.int64)
    Xb = np.empty((nb_ if fast else 0, fi[0]))
    Yb = np.empty((nb_ if fast else 0, m))

    for q in range(npar):
        for p in range(L):
            W[q * L + p] = hp[p, depth + 2] * w0[q]
    for q in range(n0):
        for p in range(L):
            W[q * L + p] += hp[p, depth + 1]

    # per-lane learning rates and drift, contiguous so the loops below vectorise
    lr = np.empty(depth * L)
    drift = np.empty(L)
    for p in range(L):
        for l in range(depth):
            lr[l * L + p] = hp[p, l]
        drift[p] = hp[p, depth]

    n_alive = L
    t_stop = steps
    for t in range(steps):
        for q in range(n0):
            for p in range(L):
                W[q * L + p] += drift[p]
        if fast:
            _loss_grad2(t, X, Y, W, G, loss, alphas, nonlin, batch_idx, Xb, Yb, Z, A, D, R, T)
        else:
            _loss_grad(t, X, Y, W, G, loss, fi, fo, woff, alphas, nonlin, batch_idx, acts, dacts, hoff, pre, delta, dnext, o)
        # measure bookkeeping
        for p in range(L):
            lt = loss[p] / (n * m)
            if not alive[p]:
                v = dead_v[p]
            else:
                finite = math.isfinite(lt)
                if not finite:
                    lt = MAXV
                if t == 0:
                    l0[p] = lt
                v = min(lt / l0[p], MAXV)
                if not finite and early_stop:
                    alive[p] = False
                    dead_v[p] = v
                    trained[p] = t
                    n_alive -= 1
            s_v[p] += v
            s_inv[p] += 1.0 / v
            tail[t % TAIL, p] = v
            vlast[p] = v
        if n_alive == 0:
            t_stop = t + 1
            break
        # steepest-descent step
        gs = 2.0 / ((n if full else nb_) * m)
        for l in range(depth):
            for q in range(woff[l], woff[l] + fi[l] * fo[l]):
                for p in range(L):
                    W[q * L + p] -= lr[l * L + p] * (G[q * L + p] * gs)
        for p in range(L):
            if not alive[p]:
                for q in range(npar):
                    W[q * L + p] = 0.0

    # fill in the steps a fully dead block skipped, exactly as a full run adds them
    for t in range(t_stop, steps):
        for p in range(L):
            v = dead_v[p]
            s_v[p] += v
            s_inv[p] += 1.0 / v
            tail[t % TAIL, p] = v

    # probe output after the last step
    _forward(0, probe.reshape((1, probe.shape[0])), W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o)
    k = min(TAIL, steps)
    for p in range(L):
        tsum = 0.0
        for j in range(steps - k, steps):
            tsum += tail[j % TAIL, p]
        converged = tsum / k < 1.0
        out[p, OUT_MEASURE] = -s_v[p] if converged else s_inv[p]
        out[p, OUT_FINAL] = math.log10(vlast[p])
        pv = o[p]
        out[p, OUT_PROBE] = pv if (alive[p] and math.isfinite(pv)) else MAXV
        out[p, OUT_STEPS] = trained[p]


@intrinsic
def _fetch_add(typingctx, counter, val):
    """Atomically add ``val`` to ``counter[0]`` (int64 array); returns the previous value."""
    sig = types.int64(counter, types.int64)

    def codegen(context, builder, sig, args):
        ptr = _data(context, builder, sig.args[0], args[0])
        return builder.atomic_rmw("add", ptr, args[1], "monotonic")

    return sig, codegen


@nb.njit(inline="always", **_jit)
def _train_one_block(b, hp, X, Y, probe, w0, fi, fo, woff, alphas, nonlin, steps, batch_idx, early_stop, fast_path, out):
    """Train block ``b`` (pixels ``b*LANES ...``) of ``hp``; a short last block is padded."""
    npix = hp.shape[0]
    hpb = np.empty((LANES, hp.shape[1]))
    for p in range(LANES):
        src = min(b * LANES + p, npix - 1)
        for c in range(hp.shape[1]):
            hpb[p, c] = hp[src, c]
    ob = np.empty((LANES, N_OUT))
    train_block(hpb, X, Y, probe, w0, fi, fo, woff, alphas, nonlin, steps, batch_idx, early_stop, ob, fast_path)
    for p in range(LANES):
        dst = b * LANES + p
        if dst < npix:
            for c in range(N_OUT):
                out[dst, c] = ob[p, c]


@nb.njit(**_jit)
def train_pixels(hp, X, Y, probe, w0, fi, fo, woff, alphas, nonlin, steps, batch_idx, early_stop, fast_path, out, counter):
    """Train pixels of ``hp`` (pixels × (depth+3)) into ``out`` (pixels × N_OUT), block by block.

    One worker: it takes the next block of ``LANES`` pixels from the shared
    atomic ``counter`` (int64[1], starting at 0) until none is left.  Several
    threads run it on the same arrays (it releases the GIL), so a thread whose
    blocks stopped early takes more.  Each block is computed independently, so
    which thread computes it changes only the speed, never a result.
    """
    nblocks = (hp.shape[0] + LANES - 1) // LANES
    b = _fetch_add(counter, 1)
    while b < nblocks:
        _train_one_block(b, hp, X, Y, probe, w0, fi, fo, woff, alphas, nonlin, steps, batch_idx, early_stop, fast_path, out)
        b = _fetch_add(counter, 1)


def run_pixels(problem, hp: np.ndarray, early_stop: bool = True, *, fast_path: bool = True) -> np.ndarray:
    """Python entry point: train every row of ``hp`` for ``problem``; returns (pixels, N_OUT).

    ``early_stop=False`` and ``fast_path=False`` (always use the general path) exist
    for the tests; neither changes any result.
    """
    w0, fi, fo, woff = problem.flat_weights()
    bidx = problem.batch_indices if problem.batch_indices is not None else np.zeros((0, 0), np.int64)
    hp = np.ascontiguousarray(hp, dtype=np.float64)
    out = np.empty((hp.shape[0], N_OUT), dtype=np.float64)
    if hp.shape[0] == 0:
        return out
    args = (
        hp,
        np.ascontiguousarray(problem.X),
        np.ascontiguousarray(problem.Y),
        np.ascontiguousarray(problem.probe),
        w0,
        fi,
        fo,
        woff,
        np.ascontiguousarray(problem.alphas),
        problem.nonlin_code,
        int(problem.config.training.steps),
        np.ascontiguousarray(bidx, dtype=np.int64),
        bool(early_stop),
        bool(fast_path),
        out,
        np.zeros(1, dtype=np.int64),  # the block counter shared by the workers
    )
    nthreads = min(nb.get_num_threads(), (hp.shape[0] + LANES - 1) // LANES)
    if nthreads <= 1:
        train_pixels(*args)
    else:
        with ThreadPoolExecutor(nthreads - 1) as pool:
            others = [pool.submit(train_pixels, *args) for _ in range(nthreads - 1)]
            train_pixels(*args)
            for f in others:
                f.result()
    return out


@nb.njit(**_jit)
def _loss_grad_lanes(W, X, Y, fi, fo, woff, alphas, nonlin, batch_idx, t, loss, G):
    """Allocate scratch buffers and call :func:`_loss_grad` (for tests and tools)."""
    L = LANES
    depth = fi.shape[0]
    hoff = np.zeros(depth + 1, dtype=np.int64)
    for l in range(1, depth):
        hoff[l + 1] = hoff[l] + fo[l - 1] * L
    nh = 0
    wmax = 1
    for l in range(depth):
        wmax = max(wmax, fi[l], fo[l])
        if l < depth - 1:
            nh += fo[l]
    acts = np.zeros(max(nh, 1) * L)
    dacts = np.zeros(max(nh, 1) * L)
    pre = np.empty(wmax * L)
    delta = np.empty(wmax * L)
    dnext = np.empty(wmax * L)
    o = np.empty(Y.shape[1] * L)
    _loss_grad(t, X, Y, W, G, loss, fi, fo, woff, alphas, nonlin, batch_idx, acts, dacts, hoff, pre, delta, dnext, o)


def loss_and_grad(problem, weights, step: int = 0) -> tuple[float, list[np.ndarray]]:
    """Full-batch mean loss and the training gradient for one set of weights.

    The gradient is of the full-batch loss, or of minibatch ``step``'s loss for a
    minibatch problem: exactly what the kernel's update uses.  Exposed so tests
    can check the analytic gradients against finite differences.
    """
    _, fi, fo, woff = problem.flat_weights()
    flat = np.concatenate([np.asarray(w, dtype=np.float64).ravel() for w in weights])
    W = np.repeat(flat, LANES)
    G = np.zeros_like(W)
    loss = np.zeros(LANES)
    bidx = problem.batch_indices if problem.batch_indices is not None else np.zeros((0, 0), np.int64)
    _loss_grad_lanes(W, problem.X, problem.Y, fi, fo, woff, problem.alphas, problem.nonlin_code, bidx, step, loss, G)
    n, m = problem.Y.shape
    count = n if problem.batch_indices is None else problem.batch_indices.shape[1]
    g = G.reshape(-1, LANES)[:, 0] * (2.0 / (count * m))
    grads, k = [], 0
    for w in weights:
        grads.append(g[k : k + w.size].reshape(w.shape))
        k += w.size
    return float(loss[0] / (n * m)), grads
