"""Host side of the CUDA backend: ``run_pixels`` and ``run_pixels_dd`` with the CPU kernel's signatures and outputs.

Transfers the problem once per call, launches the persistent-thread kernel
(kernel.py) on enough blocks to fill the GPU, and converts the final
normalised loss to ``log10`` on the host with ``math.log10`` (the same libm
function the CPU kernel calls; CUDA's ``log10`` is not correctly rounded
either, and differently so).
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from fractaltrain.columns import N_OUT, OUT_FINAL
from fractaltrain.compute.gpu.ddkernel import get_dd_kernel
from fractaltrain.compute.gpu.kernel import SHARED_BYTES, get_kernel
from fractaltrain.compute.gpu.ops import SIMULATOR
from fractaltrain.compute.gpu.tricks import schedule_factors
from fractaltrain.compute.kernel.driver import gradient_scale_dd

THREADS_PER_BLOCK = 128  # 4 warps; the local arrays keep occupancy low anyway
BLOCKS_PER_SM = 16


def launch_shape(npix: int, threads: int | None = None, blocks: int | None = None) -> tuple[int, int]:
    """(blocks, threads per block): enough resident threads to fill the GPU, no more than the pixels need.

    The simulator runs every thread of a block as a Python thread, and every
    device-function call takes one per-module lock; several threads in a block
    convoy on that lock under the GIL (the same tiny render took 3 s or 25 s,
    and over 4 minutes on a loaded machine).  So it gets 2 blocks of one
    thread: blocks run one after the other, the first thread takes every pixel
    from the queue, and the time is steady.
    """
    if threads is None:
        threads = 1 if SIMULATOR else THREADS_PER_BLOCK
    if blocks is None:
        if SIMULATOR:
            blocks = 2
        else:  # pragma: no cover - needs a GPU
            sms = cuda.get_current_device().MULTIPROCESSOR_COUNT
            blocks = sms * BLOCKS_PER_SM
    blocks = max(1, min(blocks, -(-npix // threads)))
    return blocks, threads


def run_pixels(problem, hp: np.ndarray, early_stop: bool = True, *, threads: int | None = None,
               blocks: int | None = None) -> np.ndarray:
    """Train every row of ``hp`` for ``problem`` on the GPU; returns (pixels, N_OUT) as the CPU kernel.

    With issue 32's tricks too (the problem's optimizer, schedule and
    architecture pick the kernel variant): a schedule's factors are computed
    here, by the CPU kernel's own code, and sent as a table
    (:func:`tricks.schedule_factors`).  ``threads``/``blocks`` override the
    launch shape (tests).
    """
    hp = np.ascontiguousarray(hp, dtype=np.float64)
    out = np.empty((hp.shape[0], N_OUT), dtype=np.float64)
    if hp.shape[0] == 0:
        return out
    w0, fi, fo, woff = problem.flat_weights()
    depth = int(fi.shape[0])
    X = np.ascontiguousarray(problem.X, dtype=np.float64)
    Y = np.ascontiguousarray(problem.Y, dtype=np.float64)
    n, m = Y.shape
    bidx = problem.batch_indices if problem.batch_indices is not None else np.zeros((1, 0), np.int64)
    nh = max(1, int(sum(int(f) for f in fo[:-1])))
    wmax = int(max(max(int(a) for a in fi), max(int(a) for a in fo)))
    shared = (X.size + Y.size) * 8 <= SHARED_BYTES
    opt, sched = int(problem.optimizer_code), int(problem.schedule_code)
    residual, norm = (bool(a) for a in problem.arch)
    steps = int(problem.config.training.steps)
    if sched:
        factors, frow = schedule_factors(sched, steps, hp, depth)
    else:
        factors, frow = np.zeros((1, 1)), np.zeros(1, dtype=np.int64)
    kern = get_kernel(depth, int(w0.shape[0]), nh, wmax, int(m),
                      int(X.size) if shared else 0, int(Y.size) if shared else 0, opt, sched != 0, residual, norm)
    nblocks, nthreads = launch_shape(hp.shape[0], threads, blocks)
    d_out = cuda.device_array_like(out)
    kern[nblocks, nthreads](
        cuda.to_device(X.ravel()), cuda.to_device(Y.ravel()), cuda.to_device(hp),
        cuda.to_device(np.ascontiguousarray(problem.probe, dtype=np.float64)),
        cuda.to_device(w0), cuda.to_device(fi.astype(np.int64)), cuda.to_device(fo.astype(np.int64)),
        cuda.to_device(woff.astype(np.int64)), cuda.to_device(np.ascontiguousarray(problem.alphas, dtype=np.float64)),
        int(problem.nonlin_code), steps,
        cuda.to_device(np.ascontiguousarray(bidx, dtype=np.int64)), bool(early_stop), d_out,
        cuda.to_device(np.zeros(1, dtype=np.int64)), cuda.to_device(factors), cuda.to_device(frow),
    )
    out = d_out.copy_to_host()
    out[:, OUT_FINAL] = [math.log10(v) for v in out[:, OUT_FINAL].tolist()]
    return out


def run_pixels_dd(problem, hp_hi: np.ndarray, hp_lo: np.ndarray, early_stop: bool = True, *,
                  threads: int | None = None, blocks: int | None = None) -> np.ndarray:
    """Train every pixel ``hp_hi + hp_lo`` in double-double on the GPU; (pixels, N_OUT) as the CPU ``run_pixels_dd``.

    The same inputs as the CPU double-double driver (kernel/driver.py): the
    32-digit pre-activation scales ``problem.alphas_dd()`` and gradient factor
    ``gradient_scale_dd(problem)``, so the kernel (ddkernel.py) can reproduce
    its bits; with issue 32's optimizers, schedules, residual connections and
    layer norm too.  ``threads``/``blocks`` override the launch shape (tests).
    """
    hph = np.ascontiguousarray(hp_hi, dtype=np.float64)
    hpl = np.ascontiguousarray(hp_lo, dtype=np.float64)
    if hph.shape != hpl.shape:
        raise ValueError(f"high and low hyperparameter tables differ in shape: {hph.shape} and {hpl.shape}")
    out = np.empty((hph.shape[0], N_OUT), dtype=np.float64)
    if hph.shape[0] == 0:
        return out
    w0, fi, fo, woff = problem.flat_weights()
    X = np.ascontiguousarray(problem.X, dtype=np.float64)
    Y = np.ascontiguousarray(problem.Y, dtype=np.float64)
    m = Y.shape[1]
    bidx = problem.batch_indices if problem.batch_indices is not None else np.zeros((1, 0), np.int64)
    nh = max(1, int(sum(int(f) for f in fo[:-1])))
    wmax = int(max(max(int(a) for a in fi), max(int(a) for a in fo)))
    shared = (X.size + Y.size) * 8 <= SHARED_BYTES
    opt, sched = int(problem.optimizer_code), int(problem.schedule_code)
    steps = int(problem.config.training.steps)
    if sched:  # the float64 factors the CPU double-double kernel uses too (kernel/ddopt.py)
        factors, frow = schedule_factors(sched, steps, hph, int(fi.shape[0]))
    else:
        factors, frow = np.zeros((1, 1)), np.zeros(1, dtype=np.int64)
    residual, norm = (bool(a) for a in problem.arch)
    kern = get_dd_kernel(int(fi.shape[0]), int(w0.shape[0]), nh, wmax, int(m),
                         int(X.size) if shared else 0, int(Y.size) if shared else 0, opt, sched != 0, residual, norm)
    nblocks, nthreads = launch_shape(hph.shape[0], threads, blocks)
    d_out = cuda.device_array_like(out)
    kern[nblocks, nthreads](
        cuda.to_device(X.ravel()), cuda.to_device(Y.ravel()), cuda.to_device(hph), cuda.to_device(hpl),
        cuda.to_device(np.ascontiguousarray(problem.probe, dtype=np.float64)),
        cuda.to_device(w0), cuda.to_device(fi.astype(np.int64)), cuda.to_device(fo.astype(np.int64)),
        cuda.to_device(woff.astype(np.int64)), cuda.to_device(np.ascontiguousarray(problem.alphas_dd())),
        cuda.to_device(np.ascontiguousarray(gradient_scale_dd(problem), dtype=np.float64)),
        int(problem.nonlin_code), steps,
        cuda.to_device(np.ascontiguousarray(bidx, dtype=np.int64)), bool(early_stop), d_out,
        cuda.to_device(np.zeros(1, dtype=np.int64)), cuda.to_device(factors), cuda.to_device(frow),
    )
    out = d_out.copy_to_host()
    out[:, OUT_FINAL] = [math.log10(v) for v in out[:, OUT_FINAL].tolist()]
    return out
