"""The optimizers and schedules of issue 32 in double-double: optimizers.py's twin for ddblock.py.

Why: a zoom past float64's floor (about 13 decades) trains in double-double,
and a landscape with momentum or Adam is as deep as one without.  The update
rules are optimizers.py's (optax's), term for term and in the same order,
with every product and sum a double-double one (dd.py), so the trajectory is
carried to about 32 digits like the rest of the double-double step.

What stays float64: the schedule's factor ``f(t)`` (optimizers.schedule_factor,
a function of the step and of the warmup_steps and final_fraction settings,
whose high parts it reads) is a float64 number, and the step's rate is the
pixel's double-double rate times it, exactly as a float64 factor.  The
optimizer's own settings (momentum, beta1, beta2, eps, weight_decay) are
double-double, so an axis over them zooms as deep as a learning-rate axis.
Adam's bias corrections use running double-double powers ``β^t``.

State layout: ``(2, n)`` arrays of high and low parts, pixel index innermost,
as ddblock.py's weights.
"""

from __future__ import annotations

import numba as nb

from fractaltrain.compute.kernel.cache import JIT
from fractaltrain.compute.kernel.dd import dd_add, dd_add_d, dd_div, dd_mul, dd_mul_d, dd_sqrt
from fractaltrain.compute.kernel.ir import LANES
from fractaltrain.compute.kernel.optimizers import ADAM, ADAMW, MOMENTUM, NESTEROV, schedule_factor


@nb.njit(**JIT)
def dd_scheduled_rates(sched, t, steps, lrh, lrl, seth, depth, rate):
    """``rate[:, l·L + p] = lr[l·L + p] · f(t)`` in double-double (``rate``: (2, depth·LANES)).

    ``seth`` holds each lane's settings' high parts, warmup_steps and
    final_fraction at rows 5 and 6 (:data:`fractaltrain.config.hyperparams.TRICK_PARAMS`).
    """
    L = LANES
    for p in range(L):
        f = schedule_factor(sched, t, steps, seth[5 * L + p], seth[6 * L + p])
        for l in range(depth):
            i = l * L + p
            rate[0, i], rate[1, i] = dd_mul_d(lrh[i], lrl[i], f)


@nb.njit(**JIT)
def dd_optimizer_step(opt, W, G, gscale, S1, S2, pw1, pw2, rate, seth, setl, depth, woff, fi, fo):
    """One step of optimizer ``opt`` (not sgd) for every weight of the block, in double-double.

    ``W``, ``G``, ``S1``, ``S2``: (2, npar·LANES) weights, unscaled gradient
    (the step's gradient is ``G · gscale``), and the optimizer's state (velocity;
    or first and second moments), zero before the first step.  ``pw1``, ``pw2``:
    (2, LANES) ``β1^(t-1)``, ``β2^(t-1)`` on entry at step ``t`` (1 before the
    first).  ``rate``: (2, depth·LANES) the step's rates.  ``seth``, ``setl``:
    the lanes' settings (``settings[k·LANES + p]``, optimizers.py's order).
    """
    L = LANES
    if opt == ADAM or opt == ADAMW:
        for p in range(L):
            pw1[0, p], pw1[1, p] = dd_mul(pw1[0, p], pw1[1, p], seth[1 * L + p], setl[1 * L + p])
            pw2[0, p], pw2[1, p] = dd_mul(pw2[0, p], pw2[1, p], seth[2 * L + p], setl[2 * L + p])
    for l in range(depth):
        for q in range(woff[l], woff[l] + fi[l] * fo[l]):
            for p in range(L):
                i = q * L + p
                gh, gl = dd_mul(G[0, i], G[1, i], gscale[0], gscale[1])
                if opt == MOMENTUM or opt == NESTEROV:
                    bh, bl = dd_mul(seth[p], setl[p], S1[0, i], S1[1, i])
                    vh, vl = dd_add(gh, gl, bh, bl)
                    S1[0, i], S1[1, i] = vh, vl
                    if opt == MOMENTUM:
                        uh, ul = vh, vl
                    else:
                        bh, bl = dd_mul(seth[p], setl[p], vh, vl)
                        uh, ul = dd_add(gh, gl, bh, bl)
                else:
                    b1h, b1l = seth[1 * L + p], setl[1 * L + p]
                    b2h, b2l = seth[2 * L + p], setl[2 * L + p]
                    c1h, c1l = dd_add_d(-b1h, -b1l, 1.0)
                    c2h, c2l = dd_add_d(-b2h, -b2l, 1.0)
                    xh, xl = dd_mul(b1h, b1l, S1[0, i], S1[1, i])
                    yh, yl = dd_mul(c1h, c1l, gh, gl)
                    mh, ml = dd_add(xh, xl, yh, yl)
                    ggh, ggl = dd_mul(gh, gl, gh, gl)
                    xh, xl = dd_mul(b2h, b2l, S2[0, i], S2[1, i])
                    yh, yl = dd_mul(c2h, c2l, ggh, ggl)
                    vh, vl = dd_add(xh, xl, yh, yl)
                    S1[0, i], S1[1, i] = mh, ml
                    S2[0, i], S2[1, i] = vh, vl
                    d1h, d1l = dd_add_d(-pw1[0, p], -pw1[1, p], 1.0)
                    d2h, d2l = dd_add_d(-pw2[0, p], -pw2[1, p], 1.0)
                    mhh, mhl = dd_div(mh, ml, d1h, d1l)
                    vhh, vhl = dd_div(vh, vl, d2h, d2l)
                    sh, sl = dd_sqrt(vhh, vhl)
                    sh, sl = dd_add(sh, sl, seth[3 * L + p], setl[3 * L + p])
                    uh, ul = dd_div(mhh, mhl, sh, sl)
                    if opt == ADAMW:
                        xh, xl = dd_mul(seth[4 * L + p], setl[4 * L + p], W[0, i], W[1, i])
                        uh, ul = dd_add(uh, ul, xh, xl)
                rh, rl = dd_mul(rate[0, l * L + p], rate[1, l * L + p], uh, ul)
                W[0, i], W[1, i] = dd_add(W[0, i], W[1, i], -rh, -rl)
