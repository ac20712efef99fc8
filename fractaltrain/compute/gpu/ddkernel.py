"""The double-double CUDA training kernel: kernel.py's design with ddgeneral.py/ddblock.py's arithmetic.

Why
---
Deep zooms need the CPU double-double kernel's 32 digits; this kernel trains
the same pixels on a GPU and is designed to give that kernel's bits.  It keeps
kernel.py's layout (one pixel per persistent thread, pixels taken from an
atomic counter, one training step per loop iteration, thread-local arrays
sized per network shape, X and Y in shared memory when they fit) and performs,
for one pixel, the operations that the CPU double-double kernel performs for
each of its lanes, in the same order: its lanes never interact, so a lane's
sequence of operations is a pixel's.  The CPU functions mirrored are named in
each docstring.  The CPU kernel may take a faster path for depth 2 that is
bitwise equal to its general path; this kernel mirrors the general path.

A double-double array is a thread-local ``(2, n)`` array, row 0 the high
parts and row 1 the low parts, as on the CPU.  The arithmetic is ddops.py; the
forward and backward passes, built per architecture (residual connections,
layer norm), are ddpasses.py's.
Products of float64 scalars outside the double-double operations (the
normalised loss) go through :func:`ops.mul`, so nothing is fused into an FMA.
The final column ``OUT_FINAL`` is written as the last normalised loss; the
host takes its ``log10`` (run.py), as for the float64 kernel.
"""

import math

import numpy as np
from numba import cuda

from fractaltrain.columns import MAXV, OUT_FINAL, OUT_MEASURE, OUT_PROBE, OUT_STEPS, TAIL
from fractaltrain.compute.gpu.ddops import dd_add, dd_mul, dd_mul_d
from fractaltrain.compute.gpu.ddpasses import dd_passes
from fractaltrain.compute.gpu.ddtricks import N_SETTINGS, make_dd_update
from fractaltrain.compute.gpu.ops import mul
from fractaltrain.compute.kernel.optimizers import ADAM, ADAMW

_KERNELS = {}


def get_dd_kernel(depth: int, npar: int, nh: int, wmax: int, m: int, shared_x: int, shared_y: int, opt: int = 0,
                  sched: bool = False, residual: bool = False, norm: bool = False):
    """The double-double kernel for one network shape and training, built once per process (as kernel.get_kernel).

    ``opt`` (the optimizer's code, 0 sgd), ``sched`` (a schedule's factors multiply the rates) and the
    architecture (``residual``, ``norm``; ddpasses.py) make variants of their own, so the plain sgd
    kernel keeps its operations and bits.
    """
    key = (depth, npar, nh, wmax, m, shared_x, shared_y, int(opt), bool(sched), bool(residual), bool(norm))
    if key not in _KERNELS:
        _KERNELS[key] = _build(*key)
    return _KERNELS[key]


@cuda.jit(device=True)
def _no_dd_update(W, G, S1, S2, lo, hi, gh0, gl0, rh, rl, seth, setl, pw):
    """ddtricks.make_dd_update's signature for sgd's kernel, which never calls it (its own loop steps)."""
    pass


def _build(DEPTH, NPAR, NH, WMAX, M, SX, SY, OPT, SCHED, RES, NORM):
    """Compile-time sizes and training -> the kernel (shared or global data); see :func:`get_dd_kernel`."""
    f64 = np.float64
    NOFF = DEPTH + 1  # a name, not an expression: the GPU compiler takes only constant shapes
    NN = NH if NORM else 1  # layer norm's kept values and inverse deviations, the residual pass's dL/da
    NI = DEPTH if NORM else 1
    NG = WMAX if RES else 1
    _forward_dd, _loss_grad_dd = dd_passes(RES, NORM)
    NS = NPAR if OPT else 1  # the optimizer's state: none for sgd
    ADAPTIVE = OPT == ADAM or OPT == ADAMW
    update = make_dd_update(OPT) if OPT else _no_dd_update

    @cuda.jit(device=True)
    def train(Xs, Ys, hph, hpl, probe, w0, fi, fo, woff, alphas, gscale, nonlin, steps, bidx, early_stop, out,
              counter, factors, frow):
        """ddblock.train_block_dd for one pixel per thread, pixels taken from ``counter``; ``factors[frow[pix], t]``
        is the schedule's factor (with SCHED)."""
        W = cuda.local.array((2, NPAR), f64)
        G = cuda.local.array((2, NPAR), f64)
        acts = cuda.local.array((2, NH), f64)
        dacts = cuda.local.array((2, NH), f64)
        pre = cuda.local.array((2, WMAX), f64)
        delta = cuda.local.array((2, WMAX), f64)
        dnext = cuda.local.array((2, WMAX), f64)
        o = cuda.local.array((2, M), f64)
        nrm = cuda.local.array((2, NN), f64)
        istd = cuda.local.array((2, NI), f64)
        ga = cuda.local.array((2, NG), f64)
        tail = cuda.local.array(TAIL, f64)
        lr = cuda.local.array((2, DEPTH), f64)
        if SCHED:  # the step's scheduled rates; without a schedule they are the pixel's own
            rate = cuda.local.array((2, DEPTH), f64)
        else:
            rate = lr
        S1 = cuda.local.array((2, NS), f64)
        S2 = cuda.local.array((2, NS), f64)
        seth = cuda.local.array(N_SETTINGS, f64)
        setl = cuda.local.array(N_SETTINGS, f64)
        pw = cuda.local.array((2, 2), f64)
        hoff = cuda.local.array(NOFF, np.int64)
        hoff[0] = 0
        hoff[1] = 0
        for l in range(1, DEPTH):
            hoff[l + 1] = hoff[l] + fo[l - 1]
        npix = hph.shape[0]
        n = Ys.shape[0] // M
        n0 = fi[0] * fo[0]
        inv_nm = 1.0 / (n * M)
        gh0 = gscale[0]
        gl0 = gscale[1]
        drh = 0.0
        drl = 0.0
        l0 = 0.0
        s_v = 0.0
        s_inv = 0.0
        t = 0
        pix = cuda.atomic.add(counter, 0, 1)
        new = True
        while pix < npix:
            if new:  # ddblock.train_block_dd's set-up, for the new pixel
                for q in range(NPAR):
                    W[0, q], W[1, q] = dd_mul_d(hph[pix, DEPTH + 2], hpl[pix, DEPTH + 2], w0[q])
                for q in range(n0):
                    W[0, q], W[1, q] = dd_add(W[0, q], W[1, q], hph[pix, DEPTH + 1], hpl[pix, DEPTH + 1])
                for l in range(DEPTH):
                    lr[0, l] = hph[pix, l]
                    lr[1, l] = hpl[pix, l]
                drh = hph[pix, DEPTH]
                drl = hpl[pix, DEPTH]
                if OPT:
                    for q in range(NPAR):
                        S1[0, q] = 0.0
                        S1[1, q] = 0.0
                        S2[0, q] = 0.0
                        S2[1, q] = 0.0
                    for k in range(N_SETTINGS):
                        seth[k] = hph[pix, DEPTH + 3 + k]
                        setl[k] = hpl[pix, DEPTH + 3 + k]
                    pw[0, 0] = 1.0
                    pw[0, 1] = 0.0
                    pw[1, 0] = 1.0
                    pw[1, 1] = 0.0
                s_v = 0.0
                s_inv = 0.0
                t = 0
                new = False
            for q in range(n0):
                W[0, q], W[1, q] = dd_add(W[0, q], W[1, q], drh, drl)
            lh, ll = _loss_grad_dd(t, Xs, Ys, n, M, W, G, fi, fo, woff, alphas, nonlin, bidx,
                                   acts, dacts, hoff, pre, delta, dnext, o, nrm, istd, ga)
            finite = math.isfinite(lh) and math.isfinite(ll)
            lt = mul(lh + ll, inv_nm) if finite else MAXV
            if t == 0:
                l0 = lt
            v = min(lt / l0, MAXV)
            dead = early_stop and not finite
            s_v += v
            s_inv += 1.0 / v
            tail[t % TAIL] = v
            if not dead:  # ddblock's step: the (scheduled) rates, then sgd's update or ddopt's
                if SCHED:
                    for l in range(DEPTH):
                        rate[0, l], rate[1, l] = dd_mul_d(lr[0, l], lr[1, l], factors[frow[pix], t])
                if OPT == 0:
                    for l in range(DEPTH):
                        for q in range(woff[l], woff[l] + fi[l] * fo[l]):
                            gh, gl = dd_mul(G[0, q], G[1, q], gh0, gl0)
                            uh, ul = dd_mul(rate[0, l], rate[1, l], gh, gl)
                            W[0, q], W[1, q] = dd_add(W[0, q], W[1, q], -uh, -ul)
                else:
                    if ADAPTIVE:
                        pw[0, 0], pw[0, 1] = dd_mul(pw[0, 0], pw[0, 1], seth[1], setl[1])
                        pw[1, 0], pw[1, 1] = dd_mul(pw[1, 0], pw[1, 1], seth[2], setl[2])
                    for l in range(DEPTH):
                        update(W, G, S1, S2, woff[l], woff[l] + fi[l] * fo[l], gh0, gl0, rate[0, l], rate[1, l],
                               seth, setl, pw)
            if dead or t + 1 == steps:
                trained = steps
                if dead:  # the steps a dead pixel skips, added as the CPU adds its dead lanes' dead_v
                    trained = t
                    for t2 in range(t + 1, steps):
                        s_v += v
                        s_inv += 1.0 / v
                        tail[t2 % TAIL] = v
                k = min(TAIL, steps)
                tsum = 0.0
                for j in range(steps - k, steps):
                    tsum += tail[j % TAIL]
                out[pix, OUT_MEASURE] = -s_v if tsum / k < 1.0 else s_inv
                out[pix, OUT_FINAL] = v  # log10 on the host
                pv = MAXV
                if not dead:
                    _forward_dd(probe, 0, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o, nrm, istd)
                    if math.isfinite(o[0, 0]):
                        pv = o[0, 0]
                out[pix, OUT_PROBE] = pv
                out[pix, OUT_STEPS] = trained
                pix = cuda.atomic.add(counter, 0, 1)
                new = True
            else:
                t += 1

    @cuda.jit
    def kernel_shared(X, Y, hph, hpl, probe, w0, fi, fo, woff, alphas, gscale, nonlin, steps, bidx, early_stop, out,
                      counter, factors, frow):
        Xs = cuda.shared.array(SX, f64)
        Ys = cuda.shared.array(SY, f64)
        for q in range(cuda.threadIdx.x, SX, cuda.blockDim.x):
            Xs[q] = X[q]
        for q in range(cuda.threadIdx.x, SY, cuda.blockDim.x):
            Ys[q] = Y[q]
        cuda.syncthreads()
        train(Xs, Ys, hph, hpl, probe, w0, fi, fo, woff, alphas, gscale, nonlin, steps, bidx, early_stop, out, counter,
              factors, frow)

    @cuda.jit
    def kernel_global(X, Y, hph, hpl, probe, w0, fi, fo, woff, alphas, gscale, nonlin, steps, bidx, early_stop, out,
                      counter, factors, frow):
        train(X, Y, hph, hpl, probe, w0, fi, fo, woff, alphas, gscale, nonlin, steps, bidx, early_stop, out, counter,
              factors, frow)

    return kernel_shared if SX else kernel_global
