"""The CUDA training kernel: persistent threads, one pixel per thread at a time.

Design (for the hardware)
-------------------------
* One thread trains one pixel; its weights, gradient and activations live in
  thread-local arrays, whose sizes are compile-time constants of a kernel built
  per network shape (:func:`get_kernel`).  Local memory is interleaved across
  a warp, so lane ``p`` reading ``W[q]`` while its neighbours read theirs is
  one coalesced access.
* The data (X, Y) go to shared memory when they fit (``SHARED_BYTES``, 40 KiB;
  the tanh baseline needs 35 KiB), else they are read from global memory.  Every thread reads the
  same element at the same time (same loop position), a broadcast either way.
* Persistent threads: a thread takes pixels from an atomic counter, and the
  loop body is *one training step* of whatever pixel the thread holds.  When a
  pixel diverges (early stop) or finishes, the thread writes its results and
  starts the next pixel at step 0 in the next iteration, while its warp
  neighbours carry on with theirs.  All threads run the same step code, so a
  warp stays full until the queue of pixels runs dry; diverged pixels cost
  only their short bookkeeping, not an idle lane for the rest of the run.
* float64 throughout.  Products go through :func:`ops.mul` (never fused), so
  the kernel runs at most at half the FMA peak: the price of the CPU's bits.
* Issue 32's training tricks are kernel variants: the optimizer, whether a
  schedule applies, residual connections and layer norm are compile-time
  constants of :func:`_build` (keys of :func:`get_kernel`).  So the plain sgd
  kernel compiles to the instructions, registers and stack it had before the
  tricks (its PTX was compared), and a trick kernel holds only what it needs:
  one more array of NPAR doubles for momentum and Nesterov, two for Adam and
  AdamW (their ``β^t`` in registers), layer norm's normalised values and
  inverse deviations, the residual pass's dL/da.  Their device functions are in
  tricks.py; a schedule's factors come from the host, as a table, because the
  GPU's ``cos`` is not libm's.

Operations and their order are those of fractaltrain/compute/kernel/general.py,
block.py and optimizers.py for one lane; comments name the CPU function each
part mirrors.
The final column ``OUT_FINAL`` is written as the last normalised loss; the
host takes its ``log10`` (run.py).
"""

import math

import numpy as np
from numba import cuda

from fractaltrain.columns import MAXV, OUT_FINAL, OUT_MEASURE, OUT_PROBE, OUT_STEPS, TAIL
from fractaltrain.compute.gpu.ops import mul, tanh64
from fractaltrain.compute.gpu.tricks import (S_BETA1, S_BETA2, S_EPS, S_MOMENTUM, S_WD, SGD, layer_norm, make_update,
                                             norm_backward)
from fractaltrain.compute.kernel.optimizers import ADAM

SHARED_BYTES = 40 * 1024  # X and Y go to shared memory up to this size

_KERNELS = {}
_PASSES = {}


def get_kernel(depth: int, npar: int, nh: int, wmax: int, m: int, shared_x: int, shared_y: int, opt: int = 0,
               sched: bool = False, residual: bool = False, norm: bool = False):
    """The kernel for one network shape (sizes of the thread-local arrays) and training, built once per process.

    ``shared_x``/``shared_y`` are the sizes of X and Y in doubles when they go
    to shared memory, or 0 to read them from global memory.  ``opt`` is the
    optimizer's code (0 sgd, as fractaltrain.config.optimizer.OPT_CODE),
    ``sched`` whether a schedule's factors multiply the rates (tricks.py),
    ``residual``/``norm`` the architecture: each is a variant of its own, so the
    plain sgd kernel keeps its thread-local arrays, registers and bits, and a
    trick kernel holds only the state its optimizer needs.
    """
    key = (depth, npar, nh, wmax, m, shared_x, shared_y, int(opt), bool(sched), bool(residual), bool(norm))
    if key not in _KERNELS:
        _KERNELS[key] = _build(*key)
    return _KERNELS[key]


@cuda.jit(device=True)
def _activate(pre, act, dact, aoff, nfo, nonlin):
    """general._activate for one lane: act, dact of ``nfo`` pre-activations from ``aoff``."""
    for j in range(nfo):
        z = pre[j]
        if nonlin == 0:
            a = tanh64(z)
            act[aoff + j] = a
            dact[aoff + j] = 1.0 - mul(a, a)
        elif nonlin == 1:
            pos = z > 0.0
            act[aoff + j] = z if pos else 0.0
            dact[aoff + j] = 1.0 if pos else 0.0
        else:
            act[aoff + j] = z
            dact[aoff + j] = 1.0


@cuda.jit(device=True)
def _dense(a, aoff, W, wb, nfi, nfo, alpha, pre):
    """layer._dense_lanes / matmul._forward_mm for one point: pre[j] = alpha · Σ_k a[aoff+k] W[wb + k·nfo + j]."""
    for j in range(nfo):
        pre[j] = 0.0
    for k in range(nfi):
        ak = a[aoff + k]
        base = wb + k * nfo
        for j in range(nfo):
            pre[j] += mul(ak, W[base + j])
    for j in range(nfo):
        pre[j] = mul(pre[j], alpha)


def _passes(RES: bool, NORM: bool):
    """(forward, loss_grad) device functions for one architecture, built once per process.

    ``RES`` (residual connections) and ``NORM`` (layer norm) are compile-time
    constants of the returned functions: the plain network's kernel has neither
    branch, and takes the operations it always took.  ``nrm``, ``istd`` and
    ``ga`` are general.py's scratch of the same names (any array where unused).
    """
    key = (bool(RES), bool(NORM))
    if key in _PASSES:
        return _PASSES[key]

    @cuda.jit(device=True)
    def forward(Xs, xb, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o, nrm, istd):
        """general._forward for one lane, input row ``Xs[xb : xb + fi[0]]``."""
        depth = fi.shape[0]
        _dense(Xs, xb, W, woff[0], fi[0], fo[0], alphas[0], pre)
        if NORM:
            layer_norm(pre, fo[0], 0, nrm, hoff[1], istd)
        _activate(pre, acts, dacts, hoff[1], fo[0], nonlin)
        for l in range(1, depth - 1):
            _dense(acts, hoff[l], W, woff[l], fi[l], fo[l], alphas[l], pre)
            if NORM:
                layer_norm(pre, fo[l], l, nrm, hoff[l + 1], istd)
            _activate(pre, acts, dacts, hoff[l + 1], fo[l], nonlin)
            if RES:
                for q in range(fo[l]):
                    acts[hoff[l + 1] + q] += acts[hoff[l] + q]
        _dense(acts, hoff[depth - 1], W, woff[depth - 1], fi[depth - 1], fo[depth - 1], alphas[depth - 1], o)

    @cuda.jit(device=True)
    def backward(Xs, xb, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext, nrm, istd, ga):
        """general._backward for one lane; ``delta`` holds the output residual on entry.

        With residual connections ``ga`` carries dL/da of the layer above (its
        value before σ'), added where layer ``l`` is a residual one; with layer
        norm the δ of the layer below goes back through it.
        """
        depth = fi.shape[0]
        for l in range(depth - 1, -1, -1):
            nfi = fi[l]
            nfo = fo[l]
            wb = woff[l]
            alpha = alphas[l]
            for j in range(nfo):
                delta[j] = mul(delta[j], alpha)
            if l > 0:
                ab = hoff[l]
                for k in range(nfi):
                    for j in range(nfo):
                        G[wb + k * nfo + j] += mul(acts[ab + k], delta[j])
                for k in range(nfi):
                    dnext[k] = 0.0
                    for j in range(nfo):
                        dnext[k] += mul(delta[j], W[wb + k * nfo + j])
                    if RES:
                        if l <= depth - 2:
                            dnext[k] += ga[k]
                        ga[k] = dnext[k]
                    dnext[k] = mul(dnext[k], dacts[ab + k])
                if NORM:
                    norm_backward(dnext, nfi, l - 1, nrm, ab, istd)
                for k in range(nfi):
                    delta[k] = dnext[k]
            else:
                for k in range(nfi):
                    xk = Xs[xb + k]
                    base = wb + k * nfo
                    for j in range(nfo):
                        G[base + j] += mul(xk, delta[j])

    @cuda.jit(device=True)
    def loss_grad(t, Xs, Ys, n, m, W, G, fi, fo, woff, alphas, nonlin, bidx, acts, dacts, hoff, pre, delta, dnext, o,
                  nrm, istd, ga):
        """general._loss_grad for one lane; returns the full-batch sum of squares, gradient into G."""
        nin = fi[0]
        full = bidx.shape[1] == 0
        for q in range(G.shape[0]):
            G[q] = 0.0
        loss = 0.0
        for i in range(n):
            forward(Xs, i * nin, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o, nrm, istd)
            for c in range(m):
                r = o[c] - Ys[i * m + c]
                loss += mul(r, r)
                delta[c] = r
            if full:
                backward(Xs, i * nin, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext, nrm, istd, ga)
        if not full:
            for b in range(bidx.shape[1]):
                i = bidx[t, b]
                forward(Xs, i * nin, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o, nrm, istd)
                for c in range(m):
                    delta[c] = o[c] - Ys[i * m + c]
                backward(Xs, i * nin, W, G, fi, fo, woff, alphas, acts, dacts, hoff, delta, dnext, nrm, istd, ga)
        return loss

    _PASSES[key] = (forward, loss_grad)
    return _PASSES[key]


@cuda.jit(device=True)
def _no_update(W, G, S1, S2, lo, hi, gs, r, c1, c2, eps, wd, pw1, pw2):
    """tricks.make_update's signature for sgd's kernel, which never calls it (its own loop steps)."""
    pass


def _build(DEPTH, NPAR, NH, WMAX, M, SX, SY, OPT=SGD, SCHED=False, RES=False, NORM=False):
    """Compile-time sizes and training variant -> the kernel (shared or global data); see get_kernel."""
    f64 = np.float64
    NOFF = DEPTH + 1  # a name, not an expression: the GPU compiler takes only constant shapes
    NS1 = NPAR if OPT != SGD else 1  # optimizer state: velocity, or adam's first moments
    NS2 = NPAR if OPT >= ADAM else 1  # adam's second moments
    C1 = S_MOMENTUM if OPT < ADAM else S_BETA1  # the column of the optimizer's first setting
    forward, loss_grad = _passes(RES, NORM)
    update = make_update(OPT) if OPT != SGD else _no_update

    @cuda.jit(device=True)
    def train(Xs, Ys, hp, probe, w0, fi, fo, woff, alphas, nonlin, steps, bidx, early_stop, out, counter,
              factors, frow):
        """block.train_block for one pixel per thread, pixels taken from ``counter``."""
        W = cuda.local.array(NPAR, f64)
        G = cuda.local.array(NPAR, f64)
        acts = cuda.local.array(NH, f64)
        dacts = cuda.local.array(NH, f64)
        pre = cuda.local.array(WMAX, f64)
        delta = cuda.local.array(WMAX, f64)
        dnext = cuda.local.array(WMAX, f64)
        o = cuda.local.array(M, f64)
        tail = cuda.local.array(TAIL, f64)
        lr = cuda.local.array(DEPTH, f64)
        hoff = cuda.local.array(NOFF, np.int64)
        # the tricks' arrays exist only in the kernels that use them (others pass arrays they never touch)
        S1 = cuda.local.array(NS1, f64)
        S2 = cuda.local.array(NS2, f64) if OPT >= ADAM else S1
        nrm = cuda.local.array(NH, f64) if NORM else acts
        istd = cuda.local.array(DEPTH, f64) if NORM else lr
        ga = cuda.local.array(WMAX, f64) if RES else dnext
        hoff[0] = 0
        hoff[1] = 0
        for l in range(1, DEPTH):
            hoff[l + 1] = hoff[l] + fo[l - 1]
        npix = hp.shape[0]
        n = Ys.shape[0] // M
        n0 = fi[0] * fo[0]
        full = bidx.shape[1] == 0
        gs = 2.0 / ((n if full else bidx.shape[1]) * M)
        so = DEPTH + 3  # the optimizer's and schedule's settings in hp (tricks.S_MOMENTUM ...)
        drift = 0.0
        l0 = 0.0
        s_v = 0.0
        s_inv = 0.0
        c1 = 0.0
        c2 = 0.0
        eps = 0.0
        wd = 0.0
        pw1 = 1.0
        pw2 = 1.0
        f = 1.0
        t = 0
        pix = cuda.atomic.add(counter, 0, 1)
        new = True
        while pix < npix:
            if new:  # block.train_block's set-up, for the new pixel
                for q in range(NPAR):
                    W[q] = mul(hp[pix, DEPTH + 2], w0[q])
                for q in range(n0):
                    W[q] += hp[pix, DEPTH + 1]
                for l in range(DEPTH):
                    lr[l] = hp[pix, l]
                drift = hp[pix, DEPTH]
                if OPT != SGD:
                    for q in range(NPAR):
                        S1[q] = 0.0
                        S2[q] = 0.0
                    c1 = hp[pix, so + C1]
                    c2 = hp[pix, so + S_BETA2]
                    eps = hp[pix, so + S_EPS]
                    wd = hp[pix, so + S_WD]
                    pw1 = 1.0
                    pw2 = 1.0
                s_v = 0.0
                s_inv = 0.0
                t = 0
                new = False
            for q in range(n0):
                W[q] += drift
            loss = loss_grad(t, Xs, Ys, n, M, W, G, fi, fo, woff, alphas, nonlin, bidx,
                             acts, dacts, hoff, pre, delta, dnext, o, nrm, istd, ga)
            lt = loss / (n * M)
            finite = math.isfinite(lt)
            if not finite:
                lt = MAXV
            if t == 0:
                l0 = lt
            v = min(lt / l0, MAXV)
            dead = early_stop and not finite
            s_v += v
            s_inv += 1.0 / v
            tail[t % TAIL] = v
            if not dead:  # the step: block.py's sgd loop, or optimizers.optimizer_step
                if SCHED:
                    f = factors[frow[pix], t]  # the schedule's factor (tricks.schedule_factors)
                if OPT >= ADAM:
                    pw1 = mul(pw1, c1)
                    pw2 = mul(pw2, c2)
                for l in range(DEPTH):
                    r = lr[l]
                    if SCHED:
                        r = mul(lr[l], f)  # optimizers.scheduled_rates: lr · f
                    lo = woff[l]
                    hi = woff[l] + fi[l] * fo[l]
                    if OPT == SGD:
                        for q in range(lo, hi):
                            W[q] -= mul(r, mul(G[q], gs))
                    else:
                        update(W, G, S1, S2, lo, hi, gs, r, c1, c2, eps, wd, pw1, pw2)
            if dead or t + 1 == steps:
                trained = steps
                if dead:  # the steps a dead pixel skips, added as a full run adds them
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
                    forward(probe, 0, W, fi, fo, woff, alphas, nonlin, acts, dacts, hoff, pre, o, nrm, istd)
                    if math.isfinite(o[0]):
                        pv = o[0]
                out[pix, OUT_PROBE] = pv
                out[pix, OUT_STEPS] = trained
                pix = cuda.atomic.add(counter, 0, 1)
                new = True
            else:
                t += 1

    @cuda.jit
    def kernel_shared(X, Y, hp, probe, w0, fi, fo, woff, alphas, nonlin, steps, bidx, early_stop, out, counter,
                      factors, frow):
        Xs = cuda.shared.array(SX, f64)
        Ys = cuda.shared.array(SY, f64)
        for q in range(cuda.threadIdx.x, SX, cuda.blockDim.x):
            Xs[q] = X[q]
        for q in range(cuda.threadIdx.x, SY, cuda.blockDim.x):
            Ys[q] = Y[q]
        cuda.syncthreads()
        train(Xs, Ys, hp, probe, w0, fi, fo, woff, alphas, nonlin, steps, bidx, early_stop, out, counter, factors, frow)

    @cuda.jit
    def kernel_global(X, Y, hp, probe, w0, fi, fo, woff, alphas, nonlin, steps, bidx, early_stop, out, counter,
                      factors, frow):
        train(X, Y, hp, probe, w0, fi, fo, woff, alphas, nonlin, steps, bidx, early_stop, out, counter, factors, frow)

    return kernel_shared if SX else kernel_global
