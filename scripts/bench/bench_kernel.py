#!/usr/bin/env python
"""Benchmark of the training kernel (issue 4).  Prints one JSON line.

Run as a whole process from the repository root:

    python scripts/bench/bench_kernel.py              # full benchmark, 2.5 min on an idle 2-core machine
    python scripts/bench/bench_kernel.py --quick      # smaller workloads, for a smoke test
    python scripts/bench/bench_kernel.py --device cuda --quick   # the CUDA backend (a GPU and numba-cuda)
    python scripts/bench/bench_kernel.py --device cuda --only-headline --res 1024   # the issue-14 target

Anchors are measured in the same run (no constants): the JAX re-expression of
the notebook's training (scripts/notebook_reference.py: jit + vmap, float64,
timed after a warm-up compile of its step on the same grid) trains the
headline grid on the same device (CPU, or the GPU with ``--device cuda``);
``--no-jax`` leaves it out, and it is left out (and said so) when JAX is not
installed (``pip install 'fractaltrain[jax]'``).  JAX has no early stop, so
every pixel-step it counts is trained.

Workloads (window 10^-3 … 10^6 on both axes, as in the configs):
  * tanh_baseline: configs/tanh_baseline.yaml (width 16, 272 points, full batch,
    500 steps) at 128×128 — the headline figure;
  * tanh_baseline_full_pixels: the pixels of that image that train all 500 steps
    (every 4th of them), to time the kernel without early stop;
  * demo (width 8, 72 points, 100 steps) at 128×128; relu and tanh_minibatch16
    (500 steps) at 64×64.

Figures per workload (medians over --repeats timed runs, after a warm-up run):
  * pixel_steps_per_s: pixels × steps ÷ wall time;
  * trained_pixel_steps_per_s: Σ OUT_STEPS ÷ wall time (steps skipped by the
    early stop of diverged pixels are not counted);
  * gflops: matrix-product flops of the trained steps ÷ wall time, with
    flops per pixel-step = 4·N·nin·nh + 6·N·nh·m for full batch (N points, nin
    inputs, nh hidden units, m outputs; forward X·W0, output layer, its
    backward, δ·W1ᵀ and Xᵀ·δ, one multiply and one add per term) and
    (2N + 4B)·nin·nh + (2N + 6B)·nh·m for minibatch B (full-batch loss pass
    plus forward and backward on the batch); tanh and other elementwise work
    are not counted;
  * matmul_ceiling_gflops: numpy float64 matmul (n = 2048, all threads) measured
    in the same run; fraction_of_ceiling = gflops ÷ that;
  * pixel_steps_per_cpu_s: pixels × steps ÷ process CPU time (all threads), a
    figure less sensitive to other processes on a shared machine (an idle
    machine gives about cpus × this).

Fraction of peak: ``fraction_of_peak`` = gflops ÷ the device's float64 peak
(``--peak-gflops``; default: the GPU's vector float64 peak from a small table
by name (H200/H100 SXM 34 000, A100 9 700), or for the CPU cores × 118
GFLOP/s, the Zen 5 core of the development machine at ~3.75 GHz with two
512-bit FMA units).  ``matmul_ceiling_gflops`` (numpy, CPU only) stays as the
attainable CPU figure.

compile_seconds is the first call in this process with numba's on-disk cache
pointed at an empty temporary directory (a true compile); with the normal
cache a new process loads the compiled kernel in well under a second.
The machine may be shared: the load average and the process CPU time (all
threads) are reported next to the wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A true compile: numba reads NUMBA_CACHE_DIR when it is imported.
_CACHE_DIR = tempfile.TemporaryDirectory(prefix="bench_kernel_numba_")
os.environ["NUMBA_CACHE_DIR"] = _CACHE_DIR.name

import numba  # noqa: E402
import numpy as np  # noqa: E402

from fractaltrain.compute.cost import cpu_model  # noqa: E402
from fractaltrain.config import load_config  # noqa: E402
from fractaltrain.columns import OUT_STEPS  # noqa: E402
from fractaltrain.compute.kernel import LANES  # noqa: E402
from fractaltrain.problem import build_problem, pixel_hyperparams  # noqa: E402
from fractaltrain.window import axis_values  # noqa: E402


CPU_CORE_PEAK_GFLOPS = 118.0  # Zen 5 at ~3.75 GHz: 2 FMA x 8 doubles x 2 flops per cycle
GPU_PEAK_GFLOPS = {"H200": 34_000.0, "H100": 34_000.0, "A100": 9_700.0, "V100": 7_800.0}  # vector float64


def device_peak(device: str, override: float | None) -> tuple[float | None, str]:
    """The device's float64 peak in GFLOP/s and where the figure comes from."""
    if override:
        return override, "--peak-gflops"
    if device == "cpu":
        return CPU_CORE_PEAK_GFLOPS * (os.cpu_count() or 1), f"{os.cpu_count()} cores x {CPU_CORE_PEAK_GFLOPS}"
    from numba import cuda

    name = cuda.get_current_device().name
    name = name.decode() if isinstance(name, bytes) else str(name)
    for key, peak in GPU_PEAK_GFLOPS.items():
        if key in name:
            return peak, f"{name}: vector float64 peak ({key})"
    return None, f"{name}: unknown peak (give --peak-gflops)"


def jax_anchor(cfg, hx: np.ndarray, hy: np.ndarray, device: str, flops: int) -> dict:
    """The notebook's training in JAX (jit + vmap, float64) on ``hp``, timed after a warm-up compile."""
    try:
        import jax
    except ImportError:
        return {"skipped": "JAX not installed (pip install 'fractaltrain[jax]')"}
    from fractaltrain.compute.jax_reference import notebook_trainer

    platform = "gpu" if device == "cuda" else "cpu"
    try:
        dev = jax.devices(platform)[0]
    except RuntimeError as exc:
        return {"skipped": f"JAX has no {platform} device ({str(exc)[:120]})"}
    steps = int(cfg.training.steps)
    with jax.default_device(dev):
        train = notebook_trainer(cfg)
        t = time.perf_counter()
        train(hx, hy, steps=2)  # compiles the step for this shape
        compile_s = time.perf_counter() - t
        c = time.process_time()
        t = time.perf_counter()
        train(hx, hy)
        wall = time.perf_counter() - t
        cpu = time.process_time() - c
    total = len(hx) * steps
    return {"jax": jax.__version__, "jax_device": str(dev), "pixels": len(hx), "steps": steps,
            "warmup_seconds": compile_s, "wall_seconds": wall, "cpu_seconds": cpu,
            "pixel_steps_per_s": total / wall, "gflops": flops * total / wall / 1e9}


def grid_xy(cfg, res: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y values of the pixels of a res × res image over the config's window, row-major."""
    xv = axis_values(cfg.x.range[0], cfg.x.range[1], res, cfg.x.scale)
    yv = axis_values(cfg.y.range[0], cfg.y.range[1], res, cfg.y.scale)
    XX, YY = np.meshgrid(xv, yv)
    return XX.ravel(), YY.ravel()


def grid(cfg, res: int) -> np.ndarray:
    """Hyperparameter table of a res × res image over the config's window, row-major."""
    return pixel_hyperparams(cfg, *grid_xy(cfg, res))


def flops_per_step(pb) -> int:
    """Matrix-product flops of one pixel-step (see the module docstring)."""
    n, nin = pb.X.shape
    m = pb.Y.shape[1]
    nh = pb.weights[0].shape[1]
    if len(pb.weights) != 2:
        raise ValueError("flop count written for depth 2")
    if pb.batch_indices is None:
        return 4 * n * nin * nh + 6 * n * nh * m
    b = pb.batch_indices.shape[1]
    return (2 * n + 4 * b) * nin * nh + (2 * n + 6 * b) * nh * m


def matmul_gflops(repeats: int, n: int = 2048) -> dict:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n))
    b = rng.standard_normal((n, n))
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return {"n": n, "seconds": times, "gflops": 2 * n**3 / float(np.median(times)) / 1e9}


def time_workload(run_pixels, pb, hp, repeats: int, flops: int, ceiling: float) -> tuple[np.ndarray, dict]:
    """Timings of ``run_pixels(pb, hp)`` (after one untimed warm-up run), and its output."""
    steps = int(pb.config.training.steps)
    run_pixels(pb, hp)  # warm-up (compiled already)
    walls, cpus, trained = [], [], []
    for _ in range(repeats):
        c = time.process_time()
        t = time.perf_counter()
        out = run_pixels(pb, hp)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
        trained.append(float(out[:, OUT_STEPS].sum()))
    wall = float(np.median(walls))
    total = len(hp) * steps
    done = trained[0]
    return out, {
        "pixels": len(hp),
        "steps": steps,
        "wall_seconds": walls,
        "cpu_seconds": cpus,
        "trained_fraction": done / total,
        "pixel_steps_per_s": total / wall,
        "pixel_steps_per_cpu_s": total / float(np.median(cpus)),
        "trained_pixel_steps_per_s": done / wall,
        "flops_per_pixel_step": flops,
        "gflops": flops * done / wall / 1e9,
        "fraction_of_ceiling": flops * done / wall / 1e9 / ceiling,
    }


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per workload, >= 1 (median quoted)")
    ap.add_argument("--quick", action="store_true", help="small workloads (not the issue's figures)")
    ap.add_argument("--label", default="", help="free text stored in the JSON (e.g. which kernel)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="our kernel and JAX on this device")
    ap.add_argument("--res", type=int, default=None, help="headline resolution (default 128, --quick 32)")
    ap.add_argument("--only-headline", action="store_true", help="only the tanh baseline (and its anchor)")
    ap.add_argument("--no-jax", action="store_true", help="leave out the JAX anchor")
    ap.add_argument("--peak-gflops", type=float, default=None, help="the device's float64 peak (GFLOP/s)")
    ap.add_argument("--cpu-pixel-steps-per-s", type=float, default=None,
                    help="a CPU headline figure to compare a --device cuda run with (speedup_vs_cpu)")
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    res_main, res_other = (32, 32) if args.quick else (128, 64)
    if args.res:
        res_main = args.res
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    if args.device == "cuda":
        from fractaltrain.compute.device import select
        from fractaltrain.compute.gpu.run import run_pixels

        select("cuda")  # one line saying what is missing, if anything
    else:
        from fractaltrain.compute.kernel import run_pixels

    ceiling_before = matmul_gflops(5)
    peak, peak_source = device_peak(args.device, args.peak_gflops)

    configs = ROOT / "configs"
    base_cfg = load_config(configs / "tanh_baseline.yaml")
    base = build_problem(base_cfg)
    base_hp = grid(base_cfg, res_main)

    # compile: first call in this process, empty cache directory
    t = time.perf_counter()
    run_pixels(base, base_hp[:LANES])
    compile_seconds = time.perf_counter() - t

    results = {}
    ceiling = ceiling_before["gflops"] if args.device == "cpu" else float("nan")
    fl = flops_per_step(base)
    out, results["tanh_baseline"] = time_workload(run_pixels, base, base_hp, args.repeats, fl, ceiling)
    results["tanh_baseline"]["resolution"] = [res_main, res_main]

    if not args.only_headline:
        full = np.nonzero(out[:, OUT_STEPS] == base_cfg.training.steps)[0][::4]
        _, r = time_workload(run_pixels, base, base_hp[full], args.repeats, fl, ceiling)
        r["selection"] = f"every 4th pixel of the {res_main}x{res_main} baseline image that trains all steps"
        results["tanh_baseline_full_pixels"] = r
        for name, res in (("demo", res_main), ("relu", res_other), ("tanh_minibatch16", res_other)):
            cfg = load_config(configs / f"{name}.yaml")
            pb = build_problem(cfg)
            _, r = time_workload(run_pixels, pb, grid(cfg, res), args.repeats, flops_per_step(pb), ceiling)
            r["resolution"] = [res, res]
            results[name] = r
    for r in results.values():
        r["fraction_of_peak"] = r["gflops"] / peak if peak else None

    anchor = {"skipped": "--no-jax"} if args.no_jax else jax_anchor(base_cfg, *grid_xy(base_cfg, res_main),
                                                                     args.device, fl)
    if "gflops" in anchor:
        anchor["fraction_of_peak"] = anchor["gflops"] / peak if peak else None

    ceiling_after = matmul_gflops(5)
    head = results["tanh_baseline"]
    headline = {
        "device": args.device,
        "pixel_steps_per_s": head["pixel_steps_per_s"],
        "jax_pixel_steps_per_s": anchor.get("pixel_steps_per_s"),
        "speedup_vs_jax": head["pixel_steps_per_s"] / anchor["pixel_steps_per_s"] if "pixel_steps_per_s" in anchor
        else None,
        "trained_pixel_steps_per_s": head["trained_pixel_steps_per_s"],
        "gflops": head["gflops"],
        "fraction_of_peak": head["fraction_of_peak"],
    }
    if "tanh_baseline_full_pixels" in results:
        headline["full_pixels_gflops"] = results["tanh_baseline_full_pixels"]["gflops"]
        headline["full_pixels_fraction_of_ceiling"] = results["tanh_baseline_full_pixels"]["fraction_of_ceiling"]
        headline["full_pixels_fraction_of_peak"] = results["tanh_baseline_full_pixels"]["fraction_of_peak"]
    if args.cpu_pixel_steps_per_s:
        headline["speedup_vs_cpu"] = head["pixel_steps_per_s"] / args.cpu_pixel_steps_per_s
    report = {
        "benchmark": "fractaltrain kernel (issues 4, 14)",
        "command": "python " + " ".join(["scripts/bench/bench_kernel.py"] + sys.argv[1:]),
        "commit": git_commit(),
        "label": args.label,
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "numba_threads": numba.get_num_threads(),
                    "numba": numba.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "window": "10^-3..10^6 x 10^-3..10^6 (log10 axes)",
        "compile_seconds": compile_seconds,
        "flop_formula": "full batch: 4*N*nin*nh + 6*N*nh*m; minibatch B: (2N+4B)*nin*nh + (2N+6B)*nh*m "
                        "(matrix products only) per trained pixel-step",
        "peak_gflops": peak,
        "peak_source": peak_source,
        "matmul_ceiling_gflops": ceiling_before["gflops"],
        "matmul_ceiling_gflops_after": ceiling_after["gflops"],
        "matmul_ceiling_detail": {"before": ceiling_before, "after": ceiling_after},
        "jax_anchor": anchor,
        "headline": headline,
        "workloads": results,
        "total_seconds": time.perf_counter() - t_start,
    }
    print(json.dumps(report))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
