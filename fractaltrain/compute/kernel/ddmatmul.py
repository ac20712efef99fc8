"""The double-double fast path's products and output layer for a chunk of points, as vector LLVM IR.

matmul.py's three routines in double-double, for a chunk of data points and
all LANES pixels at once:
  forward   Z[c, j] = (0 + x[c, 0] W0[0, j] + x[c, 1] W0[1, j] + ...) · alpha0
  gradient  G0[k, j] += D[c, j] x[c, k]        for c = 0, 1, ... in order
  output    the output layer, the loss, and the backward pass down to D
Each is ddgeneral.py's sequence of double-double operations (dd.py), operand
order included, emitted with :class:`~fractaltrain.compute.kernel.ddvec.DDIR`
on vectors of high and low parts; every sum runs in the order of the general
path, so the results are bitwise the same.  Register tiles only choose which
independent sums are computed side by side (as lists, so their long chains of
dependent operations overlap).

Double-double arrays are ``(2, n)`` float64 arrays, row 0 the high parts and
row 1 the low parts, pixel index innermost (``[(point, unit) * LANES + lane]``),
as in ddgeneral.py; ``W`` and ``G`` hold both layers, the first at offset 0.
"""

from __future__ import annotations

from numba import types
from numba.extending import intrinsic

from fractaltrain.compute.kernel.ddvec import DDIR
from fractaltrain.compute.kernel.ir import LANES, _c, _data, _loop, _splat, _tiles, _vconst, _vload, _vstore

FWD_TILE_DD = (2, 4)  # forward accumulators: data points x hidden units
GRAD_TILE_DD = (2, 4)  # gradient accumulators: inputs x hidden units
OUT_TILE_DD = 4  # points (output layer) or hidden units (its backward pass) side by side


def _check_dd(dd_arrays, f64_arrays, ints):
    for a in dd_arrays:
        if not (isinstance(a, types.Array) and a.dtype == types.float64 and a.layout == "C" and a.ndim == 2):
            raise TypeError("expected C-contiguous (2, n) float64 arrays")
    for a in f64_arrays:
        if not (isinstance(a, types.Array) and a.dtype == types.float64 and a.layout == "C"):
            raise TypeError("expected C-contiguous float64 arrays")
    for i in ints:
        if not isinstance(i, types.Integer):
            raise TypeError("expected integers")


def _rows(context, builder, ty, val):
    """Pointers to the high and low rows of a (2, n) C array."""
    arr = context.make_array(ty)(context, builder, val)
    n = builder.extract_value(arr.shape, 1)
    return arr.data, builder.gep(arr.data, [n])


class _Loader:
    """Vector loads and stores of double-doubles at ``index * LANES`` in a pair of rows."""

    def __init__(self, builder, rows):
        self.b, (self.h, self.l) = builder, rows

    def load(self, idx):
        i = self.b.mul(idx, _c(LANES))
        return _vload(self.b, self.h, i), _vload(self.b, self.l, i)

    def store(self, idx, hi, lo):
        i = self.b.mul(idx, _c(LANES))
        _vstore(self.b, self.h, i, hi)
        _vstore(self.b, self.l, i, lo)

    def loads(self, idxs):
        pairs = [self.load(i) for i in idxs]
        return [p[0] for p in pairs], [p[1] for p in pairs]


def _alpha(builder, ap, layer, depth):
    """Splatted (high, low) of alphas[:, layer] from the data pointer of a (2, depth) array (layer: int or IR)."""
    layer = _c(layer) if isinstance(layer, int) else layer
    return (_splat(builder, builder.load(builder.gep(ap, [layer]))),
            _splat(builder, builder.load(builder.gep(ap, [builder.add(depth, layer)]))))


def _scalar(builder, ptr, idx):
    return builder.load(builder.gep(ptr, [idx]), align=8)


@intrinsic
def _forward_dd(typingctx, X, r0, nrows, nin, W, nh, alphas, Z):
    """``Z[c, j] = (0 + Σ_k dd_mul_d(W0[k, j], X[r0 + c, k])) · alphas[:, 0]`` for ``c < nrows``.

    ``X`` is (points, nin); ``W`` holds W0 as (nin, nh, LANES) from offset 0; ``Z`` is (nrows, nh, LANES).
    """
    _check_dd((W, alphas, Z), (X,), (r0, nrows, nin, nh))
    sig = types.void(X, types.int64, types.int64, types.int64, W, types.int64, alphas, Z)

    def codegen(context, builder, sig, args):
        X_, r0_, nrows_, nin_, W_, nh_, al_, Z_ = args
        xp = _data(context, builder, sig.args[0], X_)
        w = _Loader(builder, _rows(context, builder, sig.args[4], W_))
        z = _Loader(builder, _rows(context, builder, sig.args[7], Z_))
        arr = context.make_array(sig.args[6])(context, builder, al_)
        ah, al = _alpha(builder, arr.data, 0, builder.extract_value(arr.shape, 1))
        d = DDIR(builder, context)

        def tile(a0, b0, A, B):  # points a0.., hidden units b0..
            xrow = [builder.mul(builder.add(r0_, builder.add(a0, _c(a))), nin_) for a in range(A)]
            n = A * B

            def body(k, acc):
                wh, wl = w.loads([builder.add(builder.mul(k, nh_), builder.add(b0, _c(b))) for b in range(B)])
                x = [_splat(builder, _scalar(builder, xp, builder.add(xrow[a], k))) for a in range(A)]
                ph, pl = d.dd_mul_d(wh * A, wl * A, [x[a] for a in range(A) for _ in range(B)])
                sh, sl = d.dd_add(acc[:n], acc[n:], ph, pl)
                return sh + sl

            acc = _loop(builder, _c(0), nin_, _c(1), [_vconst(0.0)] * (2 * n), body)
            zh, zl = d.dd_mul(acc[:n], acc[n:], ah, al)
            for a in range(A):
                for b in range(B):
                    z.store(builder.add(builder.mul(builder.add(a0, _c(a)), nh_), builder.add(b0, _c(b))), zh[a * B + b], zl[a * B + b])

        _tiles(builder, nrows_, nh_, FWD_TILE_DD[0], FWD_TILE_DD[1], tile)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _grad_dd(typingctx, X, r0, nrows, nin, D, nh, G):
    """``G0[k, j] = dd_add(G0[k, j], dd_mul_d(D[c, j], X[r0 + c, k]))`` for ``c = 0 .. nrows-1`` in order.

    ``D`` is (nrows, nh, LANES); ``G`` holds G0 as (nin, nh, LANES) from offset 0.
    """
    _check_dd((D, G), (X,), (r0, nrows, nin, nh))
    sig = types.void(X, types.int64, types.int64, types.int64, D, types.int64, G)

    def codegen(context, builder, sig, args):
        X_, r0_, nrows_, nin_, D_, nh_, G_ = args
        xp = _data(context, builder, sig.args[0], X_)
        dv = _Loader(builder, _rows(context, builder, sig.args[4], D_))
        g = _Loader(builder, _rows(context, builder, sig.args[6], G_))
        dd = DDIR(builder, context)

        def tile(a0, b0, A, B):  # inputs a0.., hidden units b0..
            n = A * B
            gidx = [builder.add(builder.mul(builder.add(a0, _c(a)), nh_), builder.add(b0, _c(b))) for a in range(A) for b in range(B)]
            gh, gl = g.loads(gidx)

            def body(c, acc):
                dh, dl = dv.loads([builder.add(builder.mul(c, nh_), builder.add(b0, _c(b))) for b in range(B)])
                xrow = builder.mul(builder.add(r0_, c), nin_)
                x = [_splat(builder, _scalar(builder, xp, builder.add(xrow, builder.add(a0, _c(a))))) for a in range(A)]
                ph, pl = dd.dd_mul_d(dh * A, dl * A, [x[a] for a in range(A) for _ in range(B)])
                sh, sl = dd.dd_add(acc[:n], acc[n:], ph, pl)
                return sh + sl

            acc = _loop(builder, _c(0), nrows_, _c(1), gh + gl, body)
            for i, gi in enumerate(gidx):
                g.store(gi, acc[i], acc[n + i])

        _tiles(builder, nin_, nh_, GRAD_TILE_DD[0], GRAD_TILE_DD[1], tile)
        return context.get_dummy_value()

    return sig, codegen


def _tiled(builder, n, size, body):
    """Call ``body([i, i+1, ... i+size-1])`` over [0, n) in tiles of ``size``, then ``body([i])`` for the rest."""
    nfull = builder.mul(builder.sdiv(n, _c(size)), _c(size))

    def tile(i, _, k):
        body([builder.add(i, _c(t)) for t in range(k)])
        return []

    _loop(builder, _c(0), nfull, _c(size), [], lambda i, v: tile(i, v, size))
    _loop(builder, nfull, n, _c(1), [], lambda i, v: tile(i, v, 1))


@intrinsic
def _output_dd(typingctx, A, D, W, G, woff1, Y, r0, nrows, nh, m, alphas, loss, R, do_loss, do_grad):
    """Output layer of a depth-2 network for a chunk, and its backward pass, as ddgeneral.py.

    ``A``, ``D``: σ and σ' of the chunk's hidden units, (nrows, nh, LANES).
    ``W``, ``G``: W1 and G1 as (nh, m, LANES) from vector offset ``woff1``.
    ``loss``: (2, LANES); ``R``: scratch of at least (nrows, m, LANES).
    Adds Σ_c Σ_o r² to ``loss`` (if ``do_loss``, points then outputs in order); if
    ``do_grad``, adds the chunk to G1 (points in order) and overwrites ``D`` with
    ``((0 + Σ_o δ_o W1[j, o]) · σ') · alpha0``, δ = r · alpha1, as ``_backward_dd``.
    """
    _check_dd((A, D, W, G, alphas, loss, R), (Y,), (woff1, r0, nrows, nh, m))
    sig = types.void(A, D, W, G, types.int64, Y, types.int64, types.int64, types.int64, types.int64, alphas,
                     loss, R, types.boolean, types.boolean)

    def codegen(context, builder, sig, args):
        A_, D_, W_, G_, woff_, Y_, r0_, nrows_, nh_, m_, al_, loss_, R_, do_loss_, do_grad_ = args
        av, dv, wv, gv, lv, rv = (_Loader(builder, _rows(context, builder, sig.args[i], args[i])) for i in (0, 1, 2, 3, 11, 12))
        yp = _data(context, builder, sig.args[5], Y_)
        arr = context.make_array(sig.args[10])(context, builder, al_)
        depth = builder.extract_value(arr.shape, 1)
        a0h, a0l = _alpha(builder, arr.data, 0, depth)
        a1h, a1l = _alpha(builder, arr.data, 1, depth)
        dd = DDIR(builder, context)
        zero = _vconst(0.0)

        def ci(c, j, n):  # vector index of [c, j] in a (rows, n) array
            return builder.add(builder.mul(c, n), j)

        def wi(j, o):  # vector index of W1[j, o] / G1[j, o]
            return builder.add(woff_, ci(j, o, m_))

        # pass 1: r = (0 + Σ_j a_j W1[j, o]) · alpha1 - y into R, points side by side
        def outputs(cs):
            def per_o(o, _):
                def dot(j, acc):
                    ah, al = av.loads([ci(c, j, nh_) for c in cs])
                    wh, wl = wv.load(wi(j, o))
                    ph, pl = dd.dd_mul(ah, al, wh, wl)
                    sh, sl = dd.dd_add(acc[: len(cs)], acc[len(cs):], ph, pl)
                    return sh + sl

                acc = _loop(builder, _c(0), nh_, _c(1), [zero] * (2 * len(cs)), dot)
                oh, ol = dd.dd_mul(acc[: len(cs)], acc[len(cs):], a1h, a1l)
                y = [_splat(builder, builder.fneg(_scalar(builder, yp, ci(builder.add(r0_, c), o, m_)))) for c in cs]
                rh, rl = dd.dd_add_d(oh, ol, y)
                for c, h, l in zip(cs, rh, rl):
                    rv.store(ci(c, o, m_), h, l)
                return []

            _loop(builder, _c(0), m_, _c(1), [], per_o)

        _tiled(builder, nrows_, OUT_TILE_DD, outputs)

        # loss += r², points then outputs in order; R = δ = r · alpha1
        def loss_c(c, lacc):
            def loss_o(o, lacc2):
                rh, rl = rv.load(ci(c, o, m_))
                sh, sl = dd.dd_mul([rh], [rl], [rh], [rl])
                nh_l, nl_l = dd.dd_add([lacc2[0]], [lacc2[1]], sh, sl)
                dh, dl = dd.dd_mul([rh], [rl], a1h, a1l)
                rv.store(ci(c, o, m_), dh[0], dl[0])
                return [builder.select(do_loss_, nh_l[0], lacc2[0]), builder.select(do_loss_, nl_l[0], lacc2[1])]

            return _loop(builder, _c(0), m_, _c(1), lacc, loss_o)

        lh, ll = _loop(builder, _c(0), nrows_, _c(1), list(lv.load(_c(0))), loss_c)
        lv.store(_c(0), lh, ll)

        with builder.if_then(do_grad_):
            # pass 2: G1[j, o] += a_j δ_o, points in order, hidden units side by side
            def g_js(js):
                def g_o(o, _):
                    gidx = [wi(j, o) for j in js]
                    gh, gl = gv.loads(gidx)

                    def g_c(c, acc):
                        ah, al = av.loads([ci(c, j, nh_) for j in js])
                        dh, dl = rv.load(ci(c, o, m_))
                        ph, pl = dd.dd_mul(ah, al, dh, dl)
                        sh, sl = dd.dd_add(acc[: len(js)], acc[len(js):], ph, pl)
                        return sh + sl

                    acc = _loop(builder, _c(0), nrows_, _c(1), gh + gl, g_c)
                    for i, gi in enumerate(gidx):
                        gv.store(gi, acc[i], acc[len(js) + i])
                    return []

                _loop(builder, _c(0), m_, _c(1), [], g_o)

            _tiled(builder, nh_, OUT_TILE_DD, g_js)

            # pass 3: D[c, j] = ((0 + Σ_o δ_o W1[j, o]) · D[c, j]) · alpha0
            def d_c(c, _):
                def d_js(js):
                    def d_o(o, acc):
                        dh, dl = rv.load(ci(c, o, m_))
                        wh, wl = wv.loads([wi(j, o) for j in js])
                        ph, pl = dd.dd_mul(dh, dl, wh, wl)
                        sh, sl = dd.dd_add(acc[: len(js)], acc[len(js):], ph, pl)
                        return sh + sl

                    acc = _loop(builder, _c(0), m_, _c(1), [zero] * (2 * len(js)), d_o)
                    didx = [ci(c, j, nh_) for j in js]
                    sh, sl = dv.loads(didx)
                    th, tl = dd.dd_mul(acc[: len(js)], acc[len(js):], sh, sl)
                    th, tl = dd.dd_mul(th, tl, a0h, a0l)
                    for i, di in enumerate(didx):
                        dv.store(di, th[i], tl[i])

                _tiled(builder, nh_, OUT_TILE_DD, d_js)
                return []

            _loop(builder, _c(0), nrows_, _c(1), [], d_c)
        return context.get_dummy_value()

    return sig, codegen
