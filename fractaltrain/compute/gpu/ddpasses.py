"""The double-double CUDA kernel's forward and backward passes, for one pixel (ddgeneral.py's, one lane).

Why a module of its own: ddkernel.py holds the training loop; these are the
passes it calls each step, built per architecture as kernel.py's ``_passes``
are for the float64 kernel.  Residual connections and layer norm are
compile-time constants of the built functions, so the plain network's kernel
takes the operations it always took.  Each function names the CPU function it
mirrors; the operations, their order and ddops.py's arithmetic (bit for bit
dd.py) are the CPU double-double kernel's, so a pixel's bits are too.
"""

from __future__ import annotations

import math

from numba import cuda

from fractaltrain.compute.gpu.ddops import dd_add, dd_add_d, dd_div, dd_mul, dd_mul_d, dd_sqrt, dd_tanh
from fractaltrain.compute.kernel.ddnorm import EPS_HI, EPS_LO

_PASSES = {}


@cuda.jit(device=True)
def _activate_dd(pre, act, dact, aoff, nfo, nonlin):
    """ddgeneral._activate_dd for one lane: act, dact of ``nfo`` pre-activations, written from ``aoff``."""
    for j in range(nfo):
        zh = pre[0, j]
        zl = pre[1, j]
        if nonlin == 0:
            ah, al = dd_tanh(zh, zl)
            sh, sl = dd_mul(ah, al, ah, al)
            dh, dl = dd_add_d(-sh, -sl, 1.0)
        elif nonlin == 1:
            pos = zh > 0.0
            ah = zh if pos else 0.0
            al = zl if pos else 0.0
            dh = 1.0 if pos else 0.0
            dl = 0.0
        else:
            ah, al, dh, dl = zh, zl, 1.0, 0.0
        act[0, aoff + j] = ah
        act[1, aoff + j] = al
        dact[0, aoff + j] = dh
        dact[1, aoff + j] = dl


@cuda.jit(device=True)
def _scale(v, n, alphas, layer):
    """ddlayer._scale_dd: v[:n] *= alphas[layer] (double-double)."""
    bh = alphas[0, layer]
    bl = alphas[1, layer]
    for q in range(n):
        v[0, q], v[1, q] = dd_mul(v[0, q], v[1, q], bh, bl)


@cuda.jit(device=True)
def _dense_in_dd(Xs, xb, W, wb, nfi, nfo, alphas, pre):
    """ddmatmul._forward_dd for one point (the first layer): pre[j] = alpha_0 · Σ_k W[k,j]·x[k], float64 row at ``xb``."""
    for j in range(nfo):
        pre[0, j] = 0.0
        pre[1, j] = 0.0
    for k in range(nfi):
        xk = Xs[xb + k]
        base = wb + k * nfo
        for j in range(nfo):
            ph, pl = dd_mul_d(W[0, base + j], W[1, base + j], xk)
            pre[0, j], pre[1, j] = dd_add(pre[0, j], pre[1, j], ph, pl)
    _scale(pre, nfo, alphas, 0)


@cuda.jit(device=True)
def _dense_dd(a, aoff, W, wb, nfi, nfo, alphas, layer, pre):
    """ddlayer._dense_dd: pre[j] = alpha_layer · Σ_k a[aoff+k]·W[k,j] with a double-double input."""
    for j in range(nfo):
        pre[0, j] = 0.0
        pre[1, j] = 0.0
    for k in range(nfi):
        base = wb + k * nfo
        for j in range(nfo):
            ph, pl = dd_mul(a[0, aoff + k], a[1, aoff + k], W[0, base + j], W[1, base + j])
            pre[0, j], pre[1, j] = dd_add(pre[0, j], pre[1, j], ph, pl)
    _scale(pre, nfo, alphas, layer)


@cuda.jit(device=True)
def _residuals(Ys, yb, m, o, delta):
    """ddgeneral._residuals without the loss: delta[c] = o[c] - Y[i, c] (row ``Ys[yb : yb + m]``)."""
    for c in range(m):
        delta[0, c], delta[1, c] = dd_add_d(o[0, c], o[1, c], -Ys[yb + c])


@cuda.jit(device=True)
def _layer_norm_dd(pre, nw, layer, nrm, off, istd):
    """ddnorm.norm_dd for one lane: ``pre[:, :nw]`` normalised in place, kept in ``nrm[:, off:]``, ``istd[:, layer]``."""
    n = float(nw)
    sh = 0.0
    sl = 0.0
    for j in range(nw):
        sh, sl = dd_add(sh, sl, pre[0, j], pre[1, j])
    mh, ml = dd_div(sh, sl, n, 0.0)
    vh = 0.0
    vl = 0.0
    for j in range(nw):
        dh, dl = dd_add(pre[0, j], pre[1, j], -mh, -ml)
        qh, ql = dd_mul(dh, dl, dh, dl)
        vh, vl = dd_add(vh, vl, qh, ql)
    vh, vl = dd_div(vh, vl, n, 0.0)
    vh, vl = dd_add(vh, vl, EPS_HI, EPS_LO)
    if math.isfinite(vh) or not math.isfinite(mh):
        rh, rl = dd_sqrt(vh, vl)
        ih, il = dd_div(1.0, 0.0, rh, rl)
    else:  # the squares overflow: float64's 1/sqrt(inf) = 0 (ddnorm.norm_dd)
        ih = 0.0
        il = 0.0
    istd[0, layer] = ih
    istd[1, layer] = il
    for j in range(nw):
        dh, dl = dd_add(pre[0, j], pre[1, j], -mh, -ml)
        yh, yl = dd_mul(dh, dl, ih, il)
        pre[0, j] = yh
        pre[1, j] = yl
        nrm[0, off + j] = yh
        nrm[1, off + j] = yl


@cuda.jit(device=True)
def _norm_backward_dd(dn, nw, layer, nrm, off, istd):
    """ddnorm.norm_back_dd for one lane: dL/dz from dL/dn (``dn[:, :nw]``, in place)."""
    n = float(nw)
    s1h = 0.0
    s1l = 0.0
    s2h = 0.0
    s2l = 0.0
    for k in range(nw):
        dh = dn[0, k]
        dl = dn[1, k]
        s1h, s1l = dd_add(s1h, s1l, dh, dl)
        ph, pl = dd_mul(dh, dl, nrm[0, off + k], nrm[1, off + k])
        s2h, s2l = dd_add(s2h, s2l, ph, pl)
    m1h, m1l = dd_div(s1h, s1l, n, 0.0)
    m2h, m2l = dd_div(s2h, s2l, n, 0.0)
    ih = istd[0, layer]
    il = istd[1, layer]
    for k in range(nw):
        ah, al = dd_add(dn[0, k], dn[1, k], -m1h, -m1l)
        bh, bl = dd_mul(nrm[0, off + k], nrm[1, off + k], m2h, m2l)
        ah, al = dd_add(ah, al, -bh, -bl)
        dn[0, k], dn[1, k] = dd_mul(ih, il, ah, al)


def dd_passes(RES: bool, NORM: bool):
    """(forward, loss_grad) device functions for one architecture, built once per process.

    ``RES`` (residual connections) and ``NORM`` (layer norm) are compile-time
    constants of the returned functions; ``nrm``, ``istd`` and ``ga`` are
    ddgeneral.py's scratch of the same names (any array where unused).
    """
    key = (bool(RES), bool(NORM))
    if key in _PASSES:
        return _PASSES[key]

    @cuda.jit(device=True)
    def forward(Xs, xb, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o, nrm, istd):
        """ddgeneral.forward_dd for one lane, input row ``Xs[xb : xb + fi[0]]``; output into ``o``."""
        depth = fi.shape[0]
        _dense_in_dd(Xs, xb, W, woff[0], fi[0], fo[0], alphas, pre)
        if NORM:
            _layer_norm_dd(pre, fo[0], 0, nrm, hoff[1], istd)
        _activate_dd(pre, acts, dacts, hoff[1], fo[0], nonlin)
        for l in range(1, depth - 1):
            _dense_dd(acts, hoff[l], W, woff[l], fi[l], fo[l], alphas, l, pre)
            if NORM:
                _layer_norm_dd(pre, fo[l], l, nrm, hoff[l + 1], istd)
            _activate_dd(pre, acts, dacts, hoff[l + 1], fo[l], nonlin)
            if RES:
                for q in range(fo[l]):
                    a = hoff[l + 1] + q
                    b = hoff[l] + q
                    acts[0, a], acts[1, a] = dd_add(acts[0, a], acts[1, a], acts[0, b], acts[1, b])
        _dense_dd(acts, hoff[depth - 1], W, woff[depth - 1], fi[depth - 1], fo[depth - 1], alphas, depth - 1, o)

    @cuda.jit(device=True)
    def backward(Xs, xb, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext, nrm, istd, ga):
        """ddgeneral._backward_dd for one lane: gradient of one point into G; ``delta`` (overwritten) = dL/d(output).

        With residual connections ``ga`` carries dL/da of the layer above (before σ'),
        added where layer ``l`` is a residual one; with layer norm the δ of the layer
        below goes back through it.
        """
        depth = fi.shape[0]
        for l in range(depth - 1, -1, -1):
            nfi = fi[l]
            nfo = fo[l]
            wb = woff[l]
            _scale(delta, nfo, alphas, l)
            if l > 0:
                ab = hoff[l]
                for k in range(nfi):
                    for j in range(nfo):
                        g = wb + k * nfo + j
                        ph, pl = dd_mul(acts[0, ab + k], acts[1, ab + k], delta[0, j], delta[1, j])
                        G[0, g], G[1, g] = dd_add(G[0, g], G[1, g], ph, pl)
                for k in range(nfi):
                    dnext[0, k] = 0.0
                    dnext[1, k] = 0.0
                    for j in range(nfo):
                        w = wb + k * nfo + j
                        ph, pl = dd_mul(delta[0, j], delta[1, j], W[0, w], W[1, w])
                        dnext[0, k], dnext[1, k] = dd_add(dnext[0, k], dnext[1, k], ph, pl)
                    if RES:
                        if l <= depth - 2:
                            dnext[0, k], dnext[1, k] = dd_add(dnext[0, k], dnext[1, k], ga[0, k], ga[1, k])
                        ga[0, k] = dnext[0, k]
                        ga[1, k] = dnext[1, k]
                    dnext[0, k], dnext[1, k] = dd_mul(dnext[0, k], dnext[1, k], dacts[0, ab + k], dacts[1, ab + k])
                if NORM:
                    _norm_backward_dd(dnext, nfi, l - 1, nrm, ab, istd)
                for k in range(nfi):
                    delta[0, k] = dnext[0, k]
                    delta[1, k] = dnext[1, k]
            else:
                for k in range(nfi):
                    xk = Xs[xb + k]
                    base = wb + k * nfo
                    for j in range(nfo):
                        ph, pl = dd_mul_d(delta[0, j], delta[1, j], xk)
                        G[0, base + j], G[1, base + j] = dd_add(G[0, base + j], G[1, base + j], ph, pl)

    @cuda.jit(device=True)
    def loss_grad(t, Xs, Ys, n, m, W, G, fi, fo, woff, alphas, nonlin, bidx, acts, dacts, hoff, pre, delta, dnext, o,
                  nrm, istd, ga):
        """ddgeneral.loss_grad_dd for one lane: returns the full-batch sum of squares ``(hi, lo)``; gradient into G.

        The loss adds ``r²`` point by point and output by output, as
        ``_residuals(..., add_loss=True)`` does for each lane.
        """
        nin = fi[0]
        full = bidx.shape[1] == 0
        for q in range(G.shape[1]):
            G[0, q] = 0.0
            G[1, q] = 0.0
        lh = 0.0
        ll = 0.0
        for i in range(n):
            forward(Xs, i * nin, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o, nrm, istd)
            for c in range(m):
                rh, rl = dd_add_d(o[0, c], o[1, c], -Ys[i * m + c])
                delta[0, c] = rh
                delta[1, c] = rl
                sh, sl = dd_mul(rh, rl, rh, rl)
                lh, ll = dd_add(lh, ll, sh, sl)
            if full:
                backward(Xs, i * nin, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext, nrm, istd, ga)
        if not full:
            for b in range(bidx.shape[1]):
                i = bidx[t, b]
                forward(Xs, i * nin, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o, nrm, istd)
                _residuals(Ys, i * m, m, o, delta)
                backward(Xs, i * nin, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext, nrm, istd, ga)
        return lh, ll

    _PASSES[key] = (forward, loss_grad)
    return _PASSES[key]
