"""Compare the double-double CUDA kernel with the CPU double-double kernel: training and arithmetic, bit for bit.

Used by tests/test_gpu_dd.py (in a subprocess with ``NUMBA_ENABLE_CUDASIM=1``,
as compare.py) and by scripts/gpu_check.py on a real GPU.
``python -m fractaltrain.compute.gpu.ddcompare [N [STEPS [THREADS BLOCKS]]]``
prints one JSON line: the cases of :data:`DD_CASES` on N × N grids (default
4, 25 steps) and :func:`check_ops`.

The pixels' low parts are ``hp · 1e-20`` (a valid double-double: below half an
ulp of the high part), so the kernels see genuine double-double inputs;
``low_parts_matter`` in each case says whether they changed the CPU's bits.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np

from fractaltrain.compute.gpu.compare import CASES, TRICK_CASES, compare, grid_hp, small_config

#: name -> (config overrides, early_stop): compare.py's configs, and one without early stop.
DD_CASES = {name: (over, True) for name, over in CASES.items()}
DD_CASES["relu_no_early_stop"] = (CASES["relu"], False)
#: compare.py's trick configs (optimizers, schedules, residual connections, layer norm) in double-double.
DD_TRICK_CASES = {"tricks_" + name: (over, True) for name, over in TRICK_CASES.items()}


def run_dd_cases(n: int = 4, steps: int = 25, cases=None, width: int = 4, points: int = 8, lo_scale: float = 1e-20,
                 **launch) -> dict:
    """CPU and CUDA ``run_pixels_dd`` on each case's n × n grid (low parts ``hp · lo_scale``); one report per case.

    ``cases``: names of :data:`DD_CASES` or :data:`DD_TRICK_CASES` (default: all of :data:`DD_CASES`).
    """
    from fractaltrain.columns import OUT_STEPS
    from fractaltrain.compute.gpu.run import run_pixels_dd as run_gpu
    from fractaltrain.compute.kernel import run_pixels_dd as run_cpu
    from fractaltrain.problem import build_problem

    report = {}
    table = {**DD_CASES, **DD_TRICK_CASES}
    for name in cases or DD_CASES:
        over, early_stop = table[name]
        cfg = small_config(over, width=width, points=points, steps=steps)
        pb = build_problem(cfg)
        hp = grid_hp(cfg, n)
        lo = hp * lo_scale
        cpu = run_cpu(pb, hp, lo, early_stop)
        t = time.perf_counter()
        with warnings.catch_warnings():  # the simulator computes on numpy scalars, which warn
            warnings.simplefilter("ignore", RuntimeWarning)
            gpu = run_gpu(pb, hp, lo, early_stop, **launch)
        r = compare(cpu, gpu)
        r["gpu_seconds"] = round(time.perf_counter() - t, 3)
        r["stopped_early"] = int(np.sum(cpu[:, OUT_STEPS] < steps))
        r["low_parts_matter"] = bool(np.any(run_cpu(pb, hp, np.zeros_like(hp), early_stop) != cpu))
        report[name] = r
    return report


def _operands(count: int, seed: int = 5):
    """Double-double operands: ordinary, wide-range (Dekker's limits, overflow, underflow) and special values."""
    rng = np.random.default_rng(seed)
    hi = rng.standard_normal(count) * 10.0 ** rng.uniform(-3, 3, count)
    wide = rng.standard_normal(count // 4) * 10.0 ** rng.uniform(-300, 300, count // 4)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 45.0, 37.9, -1e-17, 1e-300, 2.0**450, 2.0**-450,
                        1.5e154, 1.7e308, 5e-324])
    hi = np.concatenate([hi, wide, special, -special])
    lo = hi * 2.0**-53 * rng.uniform(-0.5, 0.5, hi.shape[0])
    with np.errstate(invalid="ignore", over="ignore"):
        s = hi + lo
        lo = np.where(np.isfinite(s), (hi - s) + lo, 0.0)
    return s, lo


def check_ops(count: int = 400) -> dict:
    """ddops vs dd.py on the same operands: ``{op: values differing}`` for tanh, mul, mul_d, div, add, add_d, and
    sqrt (of ``|a|``)."""
    import numba
    from numba import cuda

    from fractaltrain.compute.gpu import ddops as g
    from fractaltrain.compute.kernel import dd as c

    def table(m):  # the same loop over both modules' functions; columns: op x (hi, lo)
        def body(ah, al, bh, bl, out):
            for i in range(ah.shape[0]):
                out[0, i], out[1, i] = m.dd_tanh(ah[i], al[i])
                out[2, i], out[3, i] = m.dd_mul(ah[i], al[i], bh[i], bl[i])
                out[4, i], out[5, i] = m.dd_mul_d(ah[i], al[i], bh[i])
                out[6, i], out[7, i] = m.dd_div(ah[i], al[i], bh[i], bl[i])
                out[8, i], out[9, i] = m.dd_add(ah[i], al[i], bh[i], bl[i])
                out[10, i], out[11, i] = m.dd_add_d(ah[i], al[i], bh[i])
                sl = al[i] if ah[i] >= 0.0 else -al[i]  # |a| as a double-double
                out[12, i], out[13, i] = m.dd_sqrt(abs(ah[i]), sl)
        return body

    ah, al = _operands(count, 5)
    bh, bl = _operands(count, 6)
    bh, bl = bh[::-1].copy(), bl[::-1].copy()  # pair special values with ordinary ones
    cpu = np.empty((14, ah.shape[0]))
    with np.errstate(all="ignore"):
        numba.njit(error_model="numpy")(table(c))(ah, al, bh, bl, cpu)
    kernel = cuda.jit(table(g))
    d_out = cuda.device_array_like(cpu)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        kernel[1, 1](cuda.to_device(ah), cuda.to_device(al), cuda.to_device(bh), cuda.to_device(bl), d_out)
    gpu = d_out.copy_to_host()
    same = (cpu.view(np.int64) == gpu.view(np.int64)) | (np.isnan(cpu) & np.isnan(gpu))
    names = ("dd_tanh", "dd_mul", "dd_mul_d", "dd_div", "dd_add", "dd_add_d", "dd_sqrt")
    return {name: int(np.sum(~same[2 * k:2 * k + 2])) for k, name in enumerate(names)}


if __name__ == "__main__":
    a = [int(v) for v in sys.argv[1:]]
    n, steps = (a + [4, 25][len(a):])[:2]
    shape = {"threads": a[2], "blocks": a[3]} if len(a) > 3 else {}
    print(json.dumps({"cases": run_dd_cases(n, steps, **shape), "ops": check_ops()}))
