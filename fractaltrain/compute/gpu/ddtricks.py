"""The optimizers' step in double-double on the GPU: kernel/ddopt.py's update for one lane.

Why a module of its own: as tricks.py for the float64 kernel, only the
optimizer variants of the double-double kernel (ddkernel.py) compile this in.
Each operation is ddopt.dd_optimizer_step's for one lane, in the same order,
through ddops.py (bit for bit dd.py), so a pixel's bits are the CPU
double-double kernel's.  The schedules need nothing here: the kernel
multiplies the pixel's double-double rate by the factor table that
tricks.schedule_factors builds on the host (the CPU kernel's own float64
factors, which the CPU double-double kernel uses too).
"""

from __future__ import annotations

from numba import cuda

from fractaltrain.compute.gpu.ddops import dd_add, dd_add_d, dd_div, dd_mul, dd_sqrt
from fractaltrain.compute.kernel.optimizers import ADAMW, MOMENTUM, NESTEROV

#: The settings a double-double pixel carries (the columns after the init scale, in this order).
N_SETTINGS = 5  # momentum, beta1, beta2, eps, weight_decay


def make_dd_update(OPT: int):
    """ddopt.dd_optimizer_step's update of one layer for optimizer ``OPT`` (not sgd), built per kernel variant.

    The returned ``update(W, G, S1, S2, lo, hi, gh0, gl0, rh, rl, seth, setl, pw)``
    steps ``W[:, lo:hi]`` with the double-double rate ``(rh, rl)``; ``(gh0, gl0)``
    is the gradient factor, ``seth``/``setl`` the pixel's settings
    (:data:`N_SETTINGS`), ``pw`` (2, 2) the running ``β1^t`` (row 0) and
    ``β2^t`` (row 1) as (high, low), already updated for this step.
    """

    @cuda.jit(device=True)
    def update(W, G, S1, S2, lo, hi, gh0, gl0, rh, rl, seth, setl, pw):
        for q in range(lo, hi):
            gh, gl = dd_mul(G[0, q], G[1, q], gh0, gl0)
            if OPT == MOMENTUM or OPT == NESTEROV:
                bh, bl = dd_mul(seth[0], setl[0], S1[0, q], S1[1, q])
                vh, vl = dd_add(gh, gl, bh, bl)
                S1[0, q] = vh
                S1[1, q] = vl
                if OPT == MOMENTUM:
                    uh = vh
                    ul = vl
                else:
                    bh, bl = dd_mul(seth[0], setl[0], vh, vl)
                    uh, ul = dd_add(gh, gl, bh, bl)
            else:
                c1h, c1l = dd_add_d(-seth[1], -setl[1], 1.0)
                c2h, c2l = dd_add_d(-seth[2], -setl[2], 1.0)
                xh, xl = dd_mul(seth[1], setl[1], S1[0, q], S1[1, q])
                yh, yl = dd_mul(c1h, c1l, gh, gl)
                mh, ml = dd_add(xh, xl, yh, yl)
                ggh, ggl = dd_mul(gh, gl, gh, gl)
                xh, xl = dd_mul(seth[2], setl[2], S2[0, q], S2[1, q])
                yh, yl = dd_mul(c2h, c2l, ggh, ggl)
                vh, vl = dd_add(xh, xl, yh, yl)
                S1[0, q] = mh
                S1[1, q] = ml
                S2[0, q] = vh
                S2[1, q] = vl
                d1h, d1l = dd_add_d(-pw[0, 0], -pw[0, 1], 1.0)
                d2h, d2l = dd_add_d(-pw[1, 0], -pw[1, 1], 1.0)
                mhh, mhl = dd_div(mh, ml, d1h, d1l)
                vhh, vhl = dd_div(vh, vl, d2h, d2l)
                sh, sl = dd_sqrt(vhh, vhl)
                sh, sl = dd_add(sh, sl, seth[3], setl[3])
                uh, ul = dd_div(mhh, mhl, sh, sl)
                if OPT == ADAMW:
                    xh, xl = dd_mul(seth[4], setl[4], W[0, q], W[1, q])
                    uh, ul = dd_add(uh, ul, xh, xl)
            xh, xl = dd_mul(rh, rl, uh, ul)
            W[0, q], W[1, q] = dd_add(W[0, q], W[1, q], -xh, -xl)

    return update
