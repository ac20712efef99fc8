#!/usr/bin/env python
"""One-go check of the CUDA backend on a machine with an NVIDIA GPU (issue 14).  Prints one JSON line.

Run from the repository root (6.5 minutes on an H200 on 2026-12-04, most of it
compiling, before the trick variants were added; each step has its own time limit,
40 + 40 + 200 + 180 + 200 s, so the whole stays under 11 minutes):

    python scripts/gpu_check.py [--out DIR] [--res 256] [--cpu-pixel-steps-per-s 359583]

The H200 image of 2026-12 had numpy 2.5, which removed ``np.row_stack``, and
numba-cuda 0.30.4, which still registers a typing for it on its first kernel
compile.  When numpy lacks the name, the steps run with a ``sitecustomize`` (in a
temporary folder on their PYTHONPATH) that aliases it to ``np.vstack``; the
product itself only says so in one line (``device.cuda_missing``).  The machine
also lacked imageio-ffmpeg (the zoom test needs it): install it there first.

Steps (each result under its key; a failed step is recorded, the rest still run):
  1. environment: numba, numba-cuda (installed from the local index if missing
     and possible), JAX and their devices;
  2. tests: ``pytest tests/test_gpu.py tests/test_gpu_tricks.py`` (their GPU tests compare bits on real
     hardware);
  3. bits: the CUDA kernel vs the CPU kernel on six small configs (12 × 12
     grids, 40 steps), the ten trick configs of issue 32 (8 × 8, 40 steps),
     the tanh baseline (32 × 32, 500 steps), and the double-double kernel vs
     the CPU one (tanh, relu; 8 × 8, 40 steps; and the trick configs it trains,
     6 × 6, 30 steps): bitwise equality, sign agreement, relative differences;
  4. bench: ``scripts/bench/bench_kernel.py --device cuda --only-headline --repeats 1 --res RES``
     (our kernel and the JAX anchor on the GPU; speedup vs the given CPU figure).

With ``--out`` (e.g. ``$OUT`` of the device tool) the JSON is also written to
``DIR/gpu_check.json`` and each step's output to ``DIR/*.log``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


SHIM = """import numpy
if not hasattr(numpy, "row_stack"):  # numba-cuda <= 0.30.4 types it; numpy 2.5 removed it
    numpy.row_stack = numpy.vstack
"""


def shim_folder() -> str | None:
    """A temporary folder with the ``np.row_stack`` sitecustomize (module docstring), or None when numpy has it."""
    import numpy
    if hasattr(numpy, "row_stack"):
        return None
    import tempfile
    folder = tempfile.mkdtemp(prefix="gpu_check_")
    Path(folder, "sitecustomize.py").write_text(SHIM)
    return folder


def sh(cmd: list[str], timeout: float, log: Path | None, shim: str | None = None) -> dict:
    """Run ``cmd`` in the repository root (``shim``: a folder put on its PYTHONPATH); returncode, seconds and
    the last line of its stdout."""
    paths = [str(ROOT), shim or "", os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    t = time.perf_counter()
    try:
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
        rc, out, err = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out, err = "timeout", exc.stdout or "", exc.stderr or ""
        out, err = (o.decode() if isinstance(o, bytes) else o for o in (out, err))
    if log is not None:
        log.write_text(f"$ {' '.join(cmd)}\n--- stdout\n{out}\n--- stderr\n{err}\n")
    lines = out.strip().splitlines()
    return {"returncode": rc, "seconds": round(time.perf_counter() - t, 1), "last_line": lines[-1] if lines else "",
            "stderr_tail": err.strip()[-600:] if rc != 0 else ""}


ENV = """
import importlib.util, json, numba, numba_cuda
from numba import cuda
d = cuda.get_current_device()
info = {"numba": numba.__version__, "numba_cuda": numba_cuda.__version__, "gpu": str(d.name),
        "cc": list(d.compute_capability), "sms": d.MULTIPROCESSOR_COUNT}
if importlib.util.find_spec("jax"):
    import jax
    info["jax"] = jax.__version__
    info["jax_devices"] = [str(x) for x in jax.devices()]
print(json.dumps(info))
"""

BITS = """
import json, warnings
from fractaltrain.compute.device import select
select("cuda")
from fractaltrain.compute.gpu.compare import TRICK_CASES, run_cases, compare, grid_hp
from fractaltrain.compute.gpu.ddcompare import DD_TRICK_CASES, run_dd_cases
from fractaltrain.config import load_config
from fractaltrain.problem import build_problem
from fractaltrain.compute.kernel import run_pixels as cpu
from fractaltrain.compute.gpu.run import run_pixels as gpu
rep = run_cases(12, steps=40)
rep.update({"tricks_" + k: v for k, v in run_cases(8, steps=40, cases=list(TRICK_CASES)).items()})
cfg = load_config("configs/tanh_baseline.yaml")
pb = build_problem(cfg)
hp = grid_hp(cfg, 32)
rep["tanh_baseline_32x32"] = compare(cpu(pb, hp), gpu(pb, hp))
rep.update({"dd_" + k: v for k, v in run_dd_cases(8, 40, cases=["tanh", "relu"]).items()})
rep.update({"dd_" + k: v for k, v in run_dd_cases(6, 30, cases=list(DD_TRICK_CASES)).items()})
print(json.dumps(rep))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="folder for gpu_check.json and the logs")
    ap.add_argument("--res", type=int, default=256,
                    help="headline resolution of the benchmark (256²: 98 s on an H200 with the compile and the JAX "
                    "anchor; 512² did not finish in the step's 200 s)")
    ap.add_argument("--cpu-pixel-steps-per-s", type=float, default=359583.0,
                    help="the 2-core CPU headline figure the GPU is compared with (docs/performance.md)")
    ap.add_argument("--skip-bench", action="store_true",
                    help="leave out step 4 (the benchmark), e.g. to check the bits of new kernel variants in a short "
                    "device session once the speed has been measured")
    args = ap.parse_args()
    shim = shim_folder()
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    log = (lambda name: out / f"{name}.log") if out else (lambda name: None)
    report = {"check": "fractaltrain gpu_check (issue 14)", "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "row_stack_shim": shim is not None}

    if importlib.util.find_spec("numba_cuda") is None:
        report["install_numba_cuda"] = sh([sys.executable, "-m", "pip", "install", "-q", "numba-cuda"], 40,
                                          log("install"))
    env = sh([sys.executable, "-c", ENV], 40, log("env"), shim)
    report["environment"] = env
    report["tests"] = sh([sys.executable, "-m", "pytest", "-q", "-rs", "tests/test_gpu.py", "tests/test_gpu_tricks.py"], 200, log("tests"), shim)
    bits = sh([sys.executable, "-c", BITS], 180, log("bits"), shim)
    try:
        bits["result"] = json.loads(bits.pop("last_line"))
        bits["all_bitwise_equal"] = all(v["bitwise_equal"] for v in bits["result"].values())
    except (ValueError, KeyError):
        pass
    report["bits"] = bits
    if args.skip_bench:
        report["bench"] = "skipped (--skip-bench)"
        return finish(report, out)
    bench = sh([sys.executable, "scripts/bench/bench_kernel.py", "--device", "cuda", "--only-headline", "--repeats", "1",
                "--res", str(args.res), "--cpu-pixel-steps-per-s", str(args.cpu_pixel_steps_per_s)], 200,
               log("bench"), shim)
    try:
        full = json.loads(bench.pop("last_line"))
        bench["headline"] = full["headline"]
        bench["jax_anchor"] = full["jax_anchor"]
        bench["compile_seconds"] = full["compile_seconds"]
        bench["peak_source"] = full["peak_source"]
        if out:
            (out / "bench.json").write_text(json.dumps(full))
    except (ValueError, KeyError):
        pass
    report["bench"] = bench
    finish(report, out)


def finish(report: dict, out: Path | None) -> None:
    """Print the report as one JSON line (and write it to ``out/gpu_check.json``)."""
    text = json.dumps(report)
    if out:
        (out / "gpu_check.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
