#!/usr/bin/env python
"""Compile the CUDA kernels to PTX on a machine without a GPU.  Prints one JSON line.

numba-cuda's simulator runs the kernels' Python source, so it cannot see what only
the GPU compiler refuses (a thread-array shape that is an expression failed the
first compile on an H200, after every simulator test had passed).  This script
types and compiles the float64 and double-double kernels, with shared and global
data, for each config given, for compute capability 9.0, through NVVM, without a
driver; and, for each config's data, the kernels' variants for issue 32's
training tricks (:data:`TRICKS`: every optimizer, every schedule, residual
connections and layer norm at depth 4; the double-double kernel's for the
optimizers and schedules, which it trains on the plain network).  It
needs NVRTC and libNVVM, e.g.::

    pip install --target /tmp/cudatk nvidia-cuda-nvrtc-cu12 nvidia-cuda-nvcc-cu12
    LD_LIBRARY_PATH=/tmp/cudatk/nvidia/cuda_nvrtc/lib:/tmp/cudatk/nvidia/cuda_nvcc/nvvm/lib64 \\
        PYTHONPATH=/tmp/cudatk python scripts/gpu_compile_check.py configs/*.yaml

About 10 s a config on 2 cores, and 1 to 2 minutes for its trick variants
(``--no-tricks`` leaves them out).
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
    f64 = (a1, a1, a2, a1, a1, i1, i1, i1, a1, types.int64, types.int64, i2, types.boolean, a2, i1, a2, i1)
    dd = (a1, a1, a2, a2, a1, a1, i1, i1, i1, a2, a1, types.int64, types.int64, i2, types.boolean, a2, i1, a2, i1)
    return f64, dd


#: Trick variants compiled for each config: (name, overrides merged into its mapping).  Each picks a kernel
#: variant of its own (kernel.get_kernel: optimizer, schedule, residual, layer norm).
TRICKS = (
    ("momentum", {"training": {"optimizer": "momentum"}}),
    ("nesterov, cosine", {"training": {"optimizer": "nesterov", "schedule": "cosine"}}),
    ("adam, warmup_cosine", {"training": {"optimizer": "adam", "schedule": "warmup_cosine"}}),
    ("adamw, warmup", {"training": {"optimizer": "adamw", "schedule": "warmup"}}),
    ("sgd, residual, layer norm, depth 4", {"network": {"depth": 4, "residual": True, "norm": "layer"}}),
    ("momentum, residual, depth 4", {"network": {"depth": 4, "residual": True}, "training": {"optimizer": "momentum"}}),
    ("adam, warmup_cosine, layer norm, depth 4",
     {"network": {"depth": 4, "norm": "layer"}, "training": {"optimizer": "adam", "schedule": "warmup_cosine"}}),
)


def trick_configs(cfg):
    """``cfg`` with each of :data:`TRICKS` merged in: [(name, config)]."""
    from fractaltrain.config import config_from_dict

    out = []
    for name, over in TRICKS:
        raw = cfg.to_dict()
        for section, values in over.items():
            raw[section] = {**raw.get(section, {}), **values}
        out.append((name, config_from_dict(raw)))
    return out


def variant(pb) -> tuple:
    """The kernel variant arguments of a problem: (optimizer code, schedule?, residual, layer norm), as run.py."""
    residual, norm = (bool(a) for a in pb.arch)
    return int(pb.optimizer_code), int(pb.schedule_code) != 0, residual, norm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+", help="config files whose network shapes to compile")
    ap.add_argument("--cc", default="9.0", help="compute capability (default 9.0, Hopper)")
    ap.add_argument("--no-tricks", action="store_true", help="compile only each config's own kernels")
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

    def compile_one(entry, module, sig, sizes, extra=()):
        t = time.perf_counter()
        try:
            kern = module._build(*sizes, *extra)
            ptx, _ = cuda.compile_ptx(kern.py_func, sig, cc=cc)
            entry.update(ok=True, ptx_chars=len(ptx))
        except Exception as exc:  # report every failure, keep going
            entry.update(ok=False, error=f"{type(exc).__name__}: {str(exc)[:400]}")
        entry["seconds"] = round(time.perf_counter() - t, 1)
        report["results"].append(entry)

    for path in args.configs:
        cfg = load_config(path)
        runs = [(None, cfg)] + ([] if args.no_tricks else trick_configs(cfg))
        for trick, c in runs:
            pb = build_problem(c)
            w0, fi, fo, _ = pb.flat_weights()
            X, Y = np.asarray(pb.X), np.asarray(pb.Y)
            nh = max(1, int(sum(int(f) for f in fo[:-1])))
            wmax = int(max(max(int(a) for a in fi), max(int(a) for a in fo)))
            fits = (X.size + Y.size) * 8 <= SHARED_BYTES
            kernels = [("float64", kernel, sig64), ("double-double", ddkernel, sigdd)]
            for name, module, sig in kernels:
                for shared in ((True, False) if fits else (False,)):
                    sx, sy = (int(X.size), int(Y.size)) if shared else (0, 0)
                    entry = {"config": path, "kernel": name, "data": "shared" if shared else "global"}
                    if trick is not None:
                        entry["tricks"] = trick
                    sizes = (int(fi.shape[0]), int(w0.shape[0]), nh, wmax, int(Y.shape[1]), sx, sy)
                    compile_one(entry, module, sig, sizes, variant(pb))
    report["all_ok"] = all(r["ok"] for r in report["results"])
    print(json.dumps(report))
    sys.exit(0 if report["all_ok"] else 1)


if __name__ == "__main__":
    main()
