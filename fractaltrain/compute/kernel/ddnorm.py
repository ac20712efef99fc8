"""Layer norm and residual sums in double-double, for one data point's LANES pixels (ddgeneral.py's arch passes).

The float64 passes are layer.py's ``_norm_lanes`` and ``_norm_back_lanes`` and
general.py's residual loops; these are the same formulas, in the same order,
with every sum, product, quotient and root a double-double operation (dd.py).
They are plain loops over dd.py's scalar functions, the lanes innermost.
Layer norm's epsilon is 1e-5 to 32 digits (not float64's rounding of it),
like the pre-activation scales, so a pixel's definition has no float64
rounding in it.

Arrays are double-double ``(2, n)`` arrays, row 0 the high parts, row 1 the low
parts, the pixel index innermost; offsets are in entries (vector · LANES).
"""

from __future__ import annotations

import math
from decimal import Decimal

import numba as nb

from fractaltrain.columns import NORM_EPS
from fractaltrain.compute.kernel.cache import JIT
from fractaltrain.compute.kernel.dd import _dd_const, dd_add, dd_div, dd_mul, dd_sqrt
from fractaltrain.compute.kernel.ir import LANES

EPS_HI, EPS_LO = _dd_const(Decimal(repr(NORM_EPS)))  # 1e-5 to 32 digits


@nb.njit(**JIT)
def norm_dd(pre, nw, nrm, off, istd, layer, acc):
    """Layer norm of the ``nw`` units of ``pre`` (from entry 0) in place, per lane, in double-double.

    ``mean = (0 + Σ_j z_j) / nw``, ``var = (0 + Σ_j (z_j − mean)²) / nw``,
    ``inv = 1 / sqrt(var + eps)``, ``z_j ← (z_j − mean) · inv``; the normalised
    values are kept in ``nrm`` from entry ``off`` and ``inv`` in ``istd`` at
    entry ``layer · LANES``, for :func:`norm_back_dd`.  The lanes are the inner
    loop (each lane's operations in the order above), so they run side by side;
    ``acc`` (4, LANES) holds their running sums (scratch, no allocation per call).

    Where a diverging run's squares overflow, float64 gets ``var = inf`` and
    ``inv = 0`` (the layer's units become 0 and training goes on), while a
    double-double product that overflows is NaN.  So a variance that is not
    finite from a finite mean gives ``inv = 0`` here too: the two kernels then
    part only where their digits do, not where float64 overflows.
    """
    L = LANES
    n = float(nw)
    mh, ml, vh, vl = acc[0], acc[1], acc[2], acc[3]
    acc[:, :] = 0.0
    for j in range(nw):
        for p in range(L):
            mh[p], ml[p] = dd_add(mh[p], ml[p], pre[0, j * L + p], pre[1, j * L + p])
    for p in range(L):
        mh[p], ml[p] = dd_div(mh[p], ml[p], n, 0.0)
    for j in range(nw):
        for p in range(L):
            dh, dl = dd_add(pre[0, j * L + p], pre[1, j * L + p], -mh[p], -ml[p])
            qh, ql = dd_mul(dh, dl, dh, dl)
            vh[p], vl[p] = dd_add(vh[p], vl[p], qh, ql)
    for p in range(L):
        h, lo = dd_div(vh[p], vl[p], n, 0.0)
        h, lo = dd_add(h, lo, EPS_HI, EPS_LO)
        if math.isfinite(h) or not math.isfinite(mh[p]):
            rh, rl = dd_sqrt(h, lo)
            ih, il = dd_div(1.0, 0.0, rh, rl)
        else:  # the squares overflow (NaN in double-double): float64's var is inf, 1/sqrt(inf) = 0
            ih, il = 0.0, 0.0
        istd[0, layer * L + p], istd[1, layer * L + p] = ih, il
    for j in range(nw):
        for p in range(L):
            dh, dl = dd_add(pre[0, j * L + p], pre[1, j * L + p], -mh[p], -ml[p])
            yh, yl = dd_mul(dh, dl, istd[0, layer * L + p], istd[1, layer * L + p])
            pre[0, j * L + p], pre[1, j * L + p] = yh, yl
            nrm[0, off + j * L + p], nrm[1, off + j * L + p] = yh, yl


@nb.njit(**JIT)
def norm_back_dd(dn, nw, nrm, off, istd, layer, acc):
    """dL/dz from dL/dn (the ``nw`` units of ``dn`` from entry 0, in place) through :func:`norm_dd`.

    ``m1 = (0 + Σ_k dn_k) / nw``, ``m2 = (0 + Σ_k dn_k·n_k) / nw``,
    ``dn_k ← inv · ((dn_k − m1) − n_k · m2)``, n the kept normalised values; lanes innermost, sums in ``acc``.
    """
    L = LANES
    n = float(nw)
    s1h, s1l, s2h, s2l = acc[0], acc[1], acc[2], acc[3]
    acc[:, :] = 0.0
    for k in range(nw):
        for p in range(L):
            dh, dl = dn[0, k * L + p], dn[1, k * L + p]
            s1h[p], s1l[p] = dd_add(s1h[p], s1l[p], dh, dl)
            ph, pl = dd_mul(dh, dl, nrm[0, off + k * L + p], nrm[1, off + k * L + p])
            s2h[p], s2l[p] = dd_add(s2h[p], s2l[p], ph, pl)
    for p in range(L):
        s1h[p], s1l[p] = dd_div(s1h[p], s1l[p], n, 0.0)
        s2h[p], s2l[p] = dd_div(s2h[p], s2l[p], n, 0.0)
    for k in range(nw):
        for p in range(L):
            ah, al = dd_add(dn[0, k * L + p], dn[1, k * L + p], -s1h[p], -s1l[p])
            bh, bl = dd_mul(nrm[0, off + k * L + p], nrm[1, off + k * L + p], s2h[p], s2l[p])
            ah, al = dd_add(ah, al, -bh, -bl)
            dn[0, k * L + p], dn[1, k * L + p] = dd_mul(istd[0, layer * L + p], istd[1, layer * L + p], ah, al)


@nb.njit(**JIT)
def add_dd(A, a0, B, b0, n):
    """``A[a0 + q] = dd_add(A[a0 + q], B[b0 + q])`` for ``q < n`` (a residual connection's sum)."""
    for q in range(n):
        A[0, a0 + q], A[1, a0 + q] = dd_add(A[0, a0 + q], A[1, a0 + q], B[0, b0 + q], B[1, b0 + q])


@nb.njit(**JIT)
def mul_dd(A, B, b0, n):
    """``A[q] = dd_mul(A[q], B[b0 + q])`` for ``q < n`` (σ′ applied after a residual connection's sum)."""
    for q in range(n):
        A[0, q], A[1, q] = dd_mul(A[0, q], A[1, q], B[0, b0 + q], B[1, b0 + q])
