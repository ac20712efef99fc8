"""The thread driver: train many pixels on all of numba's threads.

``run_pixels`` runs ``numba.get_num_threads()`` workers in Python threads (the
kernel releases the GIL); they take blocks of LANES pixels one at a time from a
shared atomic counter, so threads stay busy when blocks stop early.  A block's
result never depends on the thread that computes it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numba as nb
import numpy as np

from fractaltrain.columns import N_OUT
from fractaltrain.compute.kernel.block import train_block
from fractaltrain.compute.kernel.cache import JIT
from fractaltrain.compute.kernel.ddblock import train_block_dd
from fractaltrain.compute.kernel.ir import LANES, _fetch_add


@nb.njit(inline="always", **JIT)
def _train_one_block(b, hp, X, Y, probe, w0, fi, fo, woff, alphas, nonlin, steps, batch_idx, early_stop, fast_path, out,
                     opt, sched, arch):
    """Train block ``b`` (pixels ``b*LANES ...``) of ``hp``; a short last block is padded."""
    npix = hp.shape[0]
    hpb = np.empty((LANES, hp.shape[1]))
    for p in range(LANES):
        src = min(b * LANES + p, npix - 1)
        for c in range(hp.shape[1]):
            hpb[p, c] = hp[src, c]
    ob = np.empty((LANES, N_OUT))
    train_block(hpb, X, Y, probe, w0, fi, fo, woff, alphas, nonlin, steps, batch_idx, early_stop, ob, fast_path, opt, sched, arch)
    for p in range(LANES):
        dst = b * LANES + p
        if dst < npix:
            for c in range(N_OUT):
                out[dst, c] = ob[p, c]


@nb.njit(**JIT)
def train_pixels(hp, X, Y, probe, w0, fi, fo, woff, alphas, nonlin, steps, batch_idx, early_stop, fast_path, out, counter,
                 opt, sched, arch):
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
        _train_one_block(b, hp, X, Y, probe, w0, fi, fo, woff, alphas, nonlin, steps, batch_idx, early_stop, fast_path, out,
                         opt, sched, arch)
        b = _fetch_add(counter, 1)


@nb.njit(**JIT)
def train_pixels_dd(hph, hpl, X, Y, probe, w0, fi, fo, woff, alphas, gscale, nonlin, steps, batch_idx, early_stop, fast_path, out, counter,
                    opt, sched, arch):
    """:func:`train_pixels` in double-double: ``hph + hpl`` are the pixels' hyperparameters."""
    npix = hph.shape[0]
    ncol = hph.shape[1]
    nblocks = (npix + LANES - 1) // LANES
    hb = np.empty((LANES, ncol))
    lb = np.empty((LANES, ncol))
    ob = np.empty((LANES, N_OUT))
    b = _fetch_add(counter, 1)
    while b < nblocks:
        for p in range(LANES):
            src = min(b * LANES + p, npix - 1)
            for c in range(ncol):
                hb[p, c] = hph[src, c]
                lb[p, c] = hpl[src, c]
        train_block_dd(hb, lb, X, Y, probe, w0, fi, fo, woff, alphas, gscale, nonlin, steps, batch_idx, early_stop, ob, fast_path,
                       opt, sched, arch)
        for p in range(LANES):
            dst = b * LANES + p
            if dst < npix:
                for c in range(N_OUT):
                    out[dst, c] = ob[p, c]
        b = _fetch_add(counter, 1)


def _on_threads(worker, args, npix: int) -> None:
    """Run ``worker(*args)`` on up to ``numba.get_num_threads()`` threads sharing its block counter."""
    nthreads = min(nb.get_num_threads(), (npix + LANES - 1) // LANES)
    if nthreads <= 1:
        worker(*args)
        return
    with ThreadPoolExecutor(nthreads - 1) as pool:
        others = [pool.submit(worker, *args) for _ in range(nthreads - 1)]
        worker(*args)
        for f in others:
            f.result()


def gradient_scale_dd(problem) -> np.ndarray:
    """``2 / (points · outputs)`` of one training step as a double-double pair (points: batch size if minibatch).

    The low part is the exact remainder ``2/c − hi`` rounded once (rational arithmetic): ``hi · c`` is
    not exact in float64 unless ``c`` is a power of two, so a remainder formed from it in float64 would
    leave the factor, and every rate with it, at float64's 16 digits, which moves a double-double
    landscape by about 1e-17 of its rates.
    """
    exact = Fraction(2, problem.gradient_count)
    hi = float(exact)
    return np.array([hi, float(exact - Fraction(hi))])


def run_pixels_dd(problem, hp_hi: np.ndarray, hp_lo: np.ndarray, early_stop: bool = True, *, fast_path: bool = True) -> np.ndarray:
    """Train every pixel ``hp_hi + hp_lo`` (double-double rows) for ``problem`` in double-double; (pixels, N_OUT).

    ``early_stop=False`` and ``fast_path=False`` (always use the general path) exist
    for the tests; neither changes any result.
    """
    w0, fi, fo, woff = problem.flat_weights()
    bidx = problem.batch_indices if problem.batch_indices is not None else np.zeros((0, 0), np.int64)
    hph = np.ascontiguousarray(hp_hi, dtype=np.float64)
    hpl = np.ascontiguousarray(hp_lo, dtype=np.float64)
    if hph.shape != hpl.shape:
        raise ValueError(f"high and low hyperparameter tables differ in shape: {hph.shape} and {hpl.shape}")
    out = np.empty((hph.shape[0], N_OUT), dtype=np.float64)
    if hph.shape[0] == 0:
        return out
    args = (
        hph, hpl,
        np.ascontiguousarray(problem.X), np.ascontiguousarray(problem.Y), np.ascontiguousarray(problem.probe),
        w0, fi, fo, woff, problem.alphas_dd(), gradient_scale_dd(problem), problem.nonlin_code,
        int(problem.config.training.steps), np.ascontiguousarray(bidx, dtype=np.int64), bool(early_stop),
        bool(fast_path), out, np.zeros(1, dtype=np.int64), problem.optimizer_code, problem.schedule_code, problem.arch,
    )
    _on_threads(train_pixels_dd, args, hph.shape[0])
    return out


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
        problem.optimizer_code,
        problem.schedule_code,
        problem.arch,
    )
    _on_threads(train_pixels, args, hp.shape[0])
    return out
