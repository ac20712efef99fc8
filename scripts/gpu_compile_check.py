#!/usr/bin/env python
"""Compile the CUDA kernels to PTX on a machine without a GPU.  Prints one JSON line.

numba-cuda's simulator runs the kernels' Python source, so it cannot see what only
the GPU compiler refuses (a thread-array shape that is an expression failed the
first compile on an H200, after every simulator test had passed).  This script
types and compiles the float64 and double-double kernels, with shared and global
data, for each config given, for compute capability 9.0, through NVVM, without a
driver.  It needs NVRTC and libNVVM, e.g.::

    pip install --target /tmp/cudatk nvidia-cuda-nvrtc-cu12 nvidia-cuda-nvcc-cu12
    LD_LIBRARY_PATH=/tmp/cudatk/nvidia/cuda_nvrtc/lib:/tmp/cudatk/nvidia/cuda_nvcc/nvvm/lib64 \\
        PYTHONPATH=/tmp/cudatk python scripts/gpu_compile_check.py configs/*.yaml

About 10 s a config on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def signatures():
    """The launch argument types of run.py's two kernels (float64, double-double), in order."""
    from numba import types
    a1 = types.Array(types.float64, 1, "C")
    a2 = types.Array(types.float64, 2, "C")
    i1 = types.Array(types.int64, 1, "C")
    i2 = types.Array(types.int64, 2, "C")
    f64 = (a1, a1, a2, a1, a1, i1, i1, i1, a1, types.int64, types.int64, i2, types.boolean, a2, i1)
    dd = (a1, a1, a2, a2, a1, a1, i1, i1, i1, a2, a1, types.int64, types.int64, i2, types.boolean, a2, i1)
    return f64, dd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+", help="config files whose network shapes to compile")
    ap.add_argument("--cc", default="9.0", help="compute capability (default 9.0, Hopper)")
    args = ap.parse_args()
    cc = tuple(int(p) for p in args.cc.split("."))

    import numba.cuda.dispatcher as dispatcher
    from numba import cuda

    class _Device:  # device functions ask the current device for its capability; there is none here
        compute_capability = cc

    dispatcher.get_current_device = lambda: _Device()

    from fractaltrain.compute.gpu import ddkernel, kernel
    from fractaltrain.compute.gpu.run import SHARED_BYTES
    from fractaltrain.config import load_config
    from fractaltrain.problem import build_problem

    sig64, sigdd = signatures()
    report = {"check": "fractaltrain gpu_compile_check", "cc": list(cc), "results": []}
    for path in args.configs:
        pb = build_problem(load_config(path))
        w0, fi, fo, _ = pb.flat_weights()
        X, Y = np.asarray(pb.X), np.asarray(pb.Y)
        nh = max(1, int(sum(int(f) for f in fo[:-1])))
        wmax = int(max(max(int(a) for a in fi), max(int(a) for a in fo)))
        fits = (X.size + Y.size) * 8 <= SHARED_BYTES
        for name, module, sig in (("float64", kernel, sig64), ("double-double", ddkernel, sigdd)):
            for shared in ((True, False) if fits else (False,)):
                sx, sy = (int(X.size), int(Y.size)) if shared else (0, 0)
                t = time.perf_counter()
                entry = {"config": path, "kernel": name, "data": "shared" if shared else "global"}
                try:
                    kern = module._build(int(fi.shape[0]), int(w0.shape[0]), nh, wmax, int(Y.shape[1]), sx, sy)
                    ptx, _ = cuda.compile_ptx(kern.py_func, sig, cc=cc)
                    entry.update(ok=True, ptx_chars=len(ptx))
                except Exception as exc:  # report every failure, keep going
                    entry.update(ok=False, error=f"{type(exc).__name__}: {str(exc)[:400]}")
                entry["seconds"] = round(time.perf_counter() - t, 1)
                report["results"].append(entry)
    report["all_ok"] = all(r["ok"] for r in report["results"])
    print(json.dumps(report))
    sys.exit(0 if report["all_ok"] else 1)


if __name__ == "__main__":
    main()
