#!/usr/bin/env python
"""Benchmark fractaltrain.compute.kernel.tanh.tanh_array against numba math.tanh and numpy.tanh.

Prints one JSON line: ns per element (median of several repeats, after
compilation, one thread) for ``tanh_array``, the same loop calling
``math.tanh`` and ``numpy.tanh(x, out=out)``; the maximum ulp error of
``tanh64`` on random points against an 80-bit long double reference; and
whether the compiled ``tanh_array`` uses packed SIMD instructions.

Usage: python scripts/bench/bench_tanh.py [--n 10000000] [--repeats 7]
"""

import argparse
import json
import math
import os
import re
import time

import llvmlite.binding as llb
import numba
import numpy as np

from fractaltrain.compute.kernel.tanh import tanh_array


@numba.njit
def libm_tanh_array(x, out):
    for i in range(x.shape[0]):
        out[i] = math.tanh(x[i])


def numpy_tanh_array(x, out):
    np.tanh(x, out=out)


def ns_per_element(fn, x, out, repeats):
    fn(x, out)  # compile / warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x, out)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) / x.size * 1e9


def max_ulp_error(x, y):
    ref = np.tanh(x.astype(np.longdouble))
    _, ex = np.frexp(np.abs(ref))
    ulp = np.maximum(np.ldexp(np.ones_like(ref), ex - 53), 2.0**-1074)
    return float(np.max(np.abs(y.astype(np.longdouble) - ref) / ulp))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10**7)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()

    rng = np.random.default_rng(12345)
    x = rng.uniform(-5.0, 5.0, args.n)
    out = np.empty_like(x)
    result = {"n": args.n, "repeats": args.repeats}
    for name, fn in [("tanh_array_ns", tanh_array), ("numba_math_tanh_ns", libm_tanh_array),
                     ("numpy_tanh_ns", numpy_tanh_array)]:
        result[name] = round(ns_per_element(fn, x, out, args.repeats), 3)

    # Accuracy: half uniform on [-25, 25], half log-uniform |x| in [1e-320, 1e3].
    h = args.n // 2
    xe = np.concatenate([rng.uniform(-25.0, 25.0, h),
                         rng.choice([-1.0, 1.0], args.n - h)
                         * np.exp(rng.uniform(math.log(1e-320), math.log(1e3), args.n - h))])
    ye = np.empty_like(xe)
    tanh_array(xe, ye)
    if np.finfo(np.longdouble).nmant >= 63:
        result["max_ulp_error"] = round(max_ulp_error(xe, ye), 4)
    else:  # no extended precision: compare with float64 numpy (itself ~1 ulp)
        result["max_ulp_error_vs_numpy"] = round(max_ulp_error(xe.astype(np.float64), ye), 4)
    result["ulp_points"] = int(xe.size)

    asm = tanh_array.inspect_asm(tanh_array.signatures[0])
    packed = re.findall(r"\bv\w+pd\s[^\n]*%([xyz]mm)", asm)
    widths = {"xmm": 128, "ymm": 256, "zmm": 512}
    result["vectorised"] = any(r in ("ymm", "zmm") for r in packed)
    result["vector_bits"] = max((widths[r] for r in packed), default=64)
    result["cpu"] = numba.core.config.CPU_NAME or llb.get_host_cpu_name()
    result["load_avg_1min"] = round(os.getloadavg()[0], 2)  # other processes skew timings
    print(json.dumps(result))


if __name__ == "__main__":
    main()
