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

Gradients are analytic; no fastmath (reassociation would change chaotic pixels).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from fractaltrain.tanh import tanh64

LANES = 8  # pixels trained in lock-step; 8 float64 = one AVX-512 register
MAXV = 1e6  # clip of normalised losses and stand-in for non-finite values
TAIL = 20  # convergence is judged on the mean of the last TAIL normalised losses

# Output columns of the kernel.
OUT_MEASURE, OUT_FINAL, OUT_PROBE, OUT_STEPS = 0, 1, 2, 3
N_OUT = 4

_jit = dict(nogil=True, error_model="numpy", cache=True)


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


@nb.njit(**_jit)
def train_block(hp, X, Y, probe, w0, fi, fo, woff, alphas, nonlin, steps, batch_idx, early_stop, out):
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

    for q in range(npar):
        for p in range(L):
            W[q * L + p] = hp[p, depth + 2] * w0[q]
    for q in range(n0):
        for p in range(L):
            W[q * L + p] += hp[p, depth + 1]

    n_alive = L
    t_stop = steps
    for t in range(steps):
        for q in range(n0):
            for p in range(L):
                W[q * L + p] += hp[p, depth]
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
                    W[q * L + p] -= hp[p, l] * (G[q * L + p] * gs)
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


@nb.njit(parallel=True, **_jit)
def train_pixels(hp, X, Y, probe, w0, fi, fo, woff, alphas, nonlin, steps, batch_idx, early_stop, out):
    """Train every pixel of ``hp`` (pixels × (depth+3)) and fill ``out`` (pixels × N_OUT).

    Blocks of ``LANES`` pixels are distributed over numba's threads; each block is
    independent, so the thread count changes only the speed.
    """
    npix = hp.shape[0]
    nblocks = (npix + LANES - 1) // LANES
    for b in nb.prange(nblocks):
        hpb = np.empty((LANES, hp.shape[1]))
        for p in range(LANES):
            src = min(b * LANES + p, npix - 1)
            for c in range(hp.shape[1]):
                hpb[p, c] = hp[src, c]
        ob = np.empty((LANES, N_OUT))
        train_block(hpb, X, Y, probe, w0, fi, fo, woff, alphas, nonlin, steps, batch_idx, early_stop, ob)
        for p in range(LANES):
            dst = b * LANES + p
            if dst < npix:
                for c in range(N_OUT):
                    out[dst, c] = ob[p, c]


def run_pixels(problem, hp: np.ndarray, early_stop: bool = True) -> np.ndarray:
    """Python entry point: train every row of ``hp`` for ``problem``; returns (pixels, N_OUT)."""
    w0, fi, fo, woff = problem.flat_weights()
    bidx = problem.batch_indices if problem.batch_indices is not None else np.zeros((0, 0), np.int64)
    hp = np.ascontiguousarray(hp, dtype=np.float64)
    out = np.empty((hp.shape[0], N_OUT), dtype=np.float64)
    if hp.shape[0] == 0:
        return out
    train_pixels(
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
        out,
    )
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
