#!/usr/bin/env python
"""Where a depth-2 pixel-step's time goes: the fast path's parts timed one by one, on one core.  Prints one JSON line.

Run as a whole process from the repository root (about 1 minute):

    python scripts/bench/bench_kernel_parts.py [--repeats 5]

Why: ``bench_kernel.py`` gives the whole kernel's rate as a fraction of numpy's
matmul; this says which part keeps it there.  For the tanh baseline's shape
(16 inputs, 16 hidden units, 1 output, 272 points: 17 chunks of 16 points),
each part of ``depth2._chunks2_body`` runs on one chunk of one block of LANES
pixels, in a compiled loop, single-threaded:

  * forward / gradient / output: the three matrix parts (matmul.py), with the
    matrix-product flops that ``bench_kernel.py`` counts (2·C·nin·nh·LANES for
    each product, 6·C·nh·m·LANES for the output layer) and their GFLOP/s;
  * tanh_<class>: vtanh's activation (A = tanh64(Z), D = 1 − A²) on a chunk whose
    vectors all fall in one class (small: every lane |z| < 0.55; big: every
    lane beyond it; saturated: |z| ≥ 19.1; mixed: each vector's lanes straddle
    the switch, so both branches run), and relu's activation for comparison.

The numpy matmul ceiling is measured in the same run on one thread (n = 1024),
so ``fraction_of_ceiling`` compares like with like.  ``bound_*`` is the best
fraction of that ceiling the whole step could reach if everything but the
three matrix parts and the activation took no time, with every vector of the
chunk in the named tanh class: an upper bound on ``bench_kernel.py``'s figure
for a workload whose pre-activations are all of that class.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the ceiling on the one core the parts run on
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numba as nb  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from fractaltrain.columns import CHUNK, LANES  # noqa: E402
from fractaltrain.compute.cost import cpu_model  # noqa: E402
from fractaltrain.compute.kernel.general import _activate  # noqa: E402
from fractaltrain.compute.kernel.matmul import _forward_mm, _grad_mm, _output_mm  # noqa: E402
from fractaltrain.compute.kernel.vtanh import _activate_tanh, tanh_scratch_size  # noqa: E402

NIN, NH, M, POINTS = 16, 16, 1, 272  # the tanh baseline's shape
CHUNKS = POINTS // CHUNK


@nb.njit
def _forward(X, W, Z, reps):
    for _ in range(reps):
        for r0 in range(0, CHUNKS * CHUNK, CHUNK):
            _forward_mm(X, r0, CHUNK, NIN, W, NH, 0.25, Z)


@nb.njit
def _gradient(X, D, G, reps):
    for _ in range(reps):
        for r0 in range(0, CHUNKS * CHUNK, CHUNK):
            _grad_mm(X, r0, CHUNK, NIN, D, NH, G)


@nb.njit
def _output(A, D, D0, W1, G1, Y, loss, R, reps):
    # the output layer overwrites D (D <- s·D·alpha0): restored from D0 before each call, so the values
    # stay those of a training step (not shrinking to subnormals); the copy is timed apart and subtracted
    for _ in range(reps):
        for r0 in range(0, CHUNKS * CHUNK, CHUNK):
            D[:] = D0
            _output_mm(A, D, W1, G1, Y, r0, CHUNK, NH, M, 0.25, 0.25, loss, R, True, True)


@nb.njit
def _restore(D, D0, reps):
    for _ in range(reps):
        for _c in range(CHUNKS):
            D[:] = D0


@nb.njit
def _tanh(Z, A, D, T, reps):
    for _ in range(reps):
        for _c in range(CHUNKS):
            _activate_tanh(Z, A, D, CHUNK * NH * LANES, T)


@nb.njit
def _relu(Z, A, D, reps):
    for _ in range(reps):
        for _c in range(CHUNKS):
            _activate(Z, A, D, CHUNK * NH * LANES, 1)


def per_chunk(f, args, reps: int, repeats: int) -> float:
    """Median seconds per chunk of ``f(*args, reps)`` (after a compile-and-warm-up call)."""
    f(*args, 1)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f(*args, reps)
        times.append(time.perf_counter() - t)
    return float(np.median(times)) / (reps * CHUNKS)


def chunk_of_class(rng: np.random.Generator, cls: str) -> np.ndarray:
    """Pre-activations of one chunk (CHUNK·NH vectors of LANES lanes) whose vectors all fall in ``cls``."""
    n = CHUNK * NH
    mag = {"small": lambda: rng.uniform(0.0, 0.54, (n, LANES)),
           "big": lambda: rng.uniform(0.56, 19.0, (n, LANES)),
           "saturated": lambda: rng.uniform(19.2, 40.0, (n, LANES)),
           "mixed": lambda: np.where(np.arange(LANES) % 2 == 0, rng.uniform(0.0, 0.54, (n, LANES)),
                                     rng.uniform(0.56, 19.0, (n, LANES)))}[cls]()
    return (mag * rng.choice([-1.0, 1.0], (n, LANES))).ravel()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per part (median)")
    ap.add_argument("--reps", type=int, default=200, help="steps' worth of chunks per timed run")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    nz = CHUNK * NH * LANES
    X = rng.standard_normal((POINTS, NIN))
    W = rng.standard_normal(NIN * NH * LANES) * 0.3
    G = np.zeros(NIN * NH * LANES)
    Z, A = np.empty(nz), np.empty(nz)
    D = rng.standard_normal(nz)
    W1, G1 = rng.standard_normal(NH * M * LANES), np.zeros(NH * M * LANES)
    Y = rng.standard_normal((POINTS, M))
    loss, R = np.zeros(LANES), np.empty(CHUNK * M * LANES)
    T = np.empty(tanh_scratch_size(nz), dtype=np.int64)

    a = rng.standard_normal((1024, 1024))
    a @ a
    mm = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        a @ a
        mm.append(time.perf_counter() - t)
    ceiling = 2 * 1024**3 / float(np.median(mm)) / 1e9

    flops = {"forward": 2 * CHUNK * NIN * NH * LANES, "gradient": 2 * CHUNK * NIN * NH * LANES,
             "output": 6 * CHUNK * NH * M * LANES}
    parts = {
        "forward": per_chunk(_forward, (X, W, Z), args.reps, args.repeats),
        "gradient": per_chunk(_gradient, (X, D, G), args.reps, args.repeats),
        "output": per_chunk(_output, (np.tanh(D), D.copy(), D.copy(), W1, G1, Y, loss, R), args.reps, args.repeats)
        - per_chunk(_restore, (D.copy(), D.copy()), args.reps, args.repeats),
    }
    report_parts = {k: {"ns_per_chunk": v * 1e9, "gflops": flops[k] / v / 1e9,
                        "fraction_of_ceiling": flops[k] / v / 1e9 / ceiling} for k, v in parts.items()}
    matrix = sum(parts.values())
    total_flops = sum(flops.values())
    acts = {}
    for cls in ("small", "big", "saturated", "mixed"):
        Zc = chunk_of_class(rng, cls)
        acts["tanh_" + cls] = per_chunk(_tanh, (Zc, A, D, T), args.reps, args.repeats)
    acts["relu"] = per_chunk(_relu, (rng.standard_normal(nz), A, D), args.reps, args.repeats)
    for k, v in acts.items():
        report_parts[k] = {"ns_per_chunk": v * 1e9, "ns_per_vector": v * 1e9 / (CHUNK * NH)}
    report = {
        "benchmark": "fractaltrain kernel parts (issue 33)",
        "command": "python " + " ".join(["scripts/bench/bench_kernel_parts.py"] + sys.argv[1:]),
        "cpu": cpu_model(),
        "shape": {"inputs": NIN, "hidden": NH, "outputs": M, "points": POINTS, "chunk": CHUNK, "lanes": LANES},
        "numpy_matmul_one_thread_gflops": ceiling,
        "parts": report_parts,
        "matrix_parts_fraction_of_ceiling": total_flops / matrix / 1e9 / ceiling,
        **{f"bound_{k}": total_flops / (matrix + v) / 1e9 / ceiling for k, v in acts.items()},
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
