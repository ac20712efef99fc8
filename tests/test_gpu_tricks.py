"""Issue 32's training tricks in the CUDA kernel, in numba-cuda's simulator: bit for bit the CPU kernel.

As in tests/test_gpu.py, the simulator (``NUMBA_ENABLE_CUDASIM=1``) must be
chosen before numba.cuda is first imported, so it runs in one subprocess
(module fixture) whose JSON report the tests read.  It checks the kernel's
logic and operation order on IEEE doubles, not NVVM's code generation
(scripts/gpu_compile_check.py compiles the trick variants to PTX;
scripts/gpu_check.py compares bits on a GPU).

Sizes: ``compare.TRICK_CASES`` (every optimizer, every schedule, warmup_steps,
final_fraction, momentum and β1 as axes, residual at depth 4, layer norm at
depth 3, both at depth 4) on 3 × 3 grids (one full CPU block of 8 lanes and a
padded one), width 3, 5 points, 20 steps; the schedule tables on 7 × 7 grids.
About 20 s on 2 cores; the 4 × 4, 40-step run with interleaved threads and a
16-pixel ``render --device cuda`` of a trick config are ``slow``.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml
from test_gpu import real_gpu

HAVE_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
pytestmark = pytest.mark.skipif(not HAVE_NUMBA_CUDA, reason="numba-cuda not installed (pip install '.[cuda]')")

STEPS = 20

SIMULATOR_RUN = f"""
import json, warnings
import numpy as np
from fractaltrain.columns import LANES
from fractaltrain.compute import device
from fractaltrain.compute.gpu.compare import TRICK_CASES, compare, grid_hp, run_cases, small_config
from fractaltrain.compute.gpu.tricks import schedule_factors
from fractaltrain.compute.kernel import run_pixels as run_cpu
from fractaltrain.compute.kernel.optimizers import scheduled_rates
from fractaltrain.config.schedule import SCHEDULE_CODE
from fractaltrain.problem import build_problem

def factor_tables():
    '''schedule_factors against the rates the CPU kernel forms, every pixel, layer and step.'''
    axes = {{"warmup": ("warmup_steps", [0.0, 13.3], "lr", [-2.0, 1.0]),
            "cosine": ("final_fraction", [0.0, 1.0], "lr", [-2.0, 1.0]),
            "warmup_cosine": ("warmup_steps", [0.0, 13.3], "final_fraction", [0.0, 1.0])}}
    report = {{}}
    for name, (xp, xr, yp, yr) in axes.items():
        scale = lambda p: "log10" if p == "lr" else "linear"
        cfg = small_config({{"training": {{"schedule": name}},
                            "axes": {{"x": {{"param": xp, "scale": scale(xp), "range": xr}},
                                     "y": {{"param": yp, "scale": scale(yp), "range": yr}}}}}}, steps=30)
        hp = grid_hp(cfg, 7)
        hp = np.concatenate([hp, hp[:5]])  # pixels that repeat a pair share its row
        depth, steps, code = cfg.network.depth, cfg.training.steps, SCHEDULE_CODE[name]
        factors, rows = schedule_factors(code, steps, hp, depth)
        differ = 0
        for b in range(0, len(hp), LANES):  # the CPU kernel's blocks, padded as its driver pads them
            blk = [min(b + p, len(hp) - 1) for p in range(LANES)]
            lr = np.ascontiguousarray(hp[blk, :depth].T).ravel()
            settings = np.ascontiguousarray(hp[blk, depth + 3:].T).ravel()
            out = np.empty(depth * LANES)
            for t in range(steps):
                scheduled_rates(code, t, steps, lr, settings, depth, out)
                ours = np.array([[lr[l * LANES + p] * factors[rows[blk[p]], t] for p in range(LANES)]
                                 for l in range(depth)]).ravel()
                differ += int(np.sum(ours.view(np.int64) != out.view(np.int64)))
        pairs = len({{(a, b) for a, b in hp[:, depth + 8:depth + 10].tolist()}})
        report[name] = {{"differ": differ, "rows": int(factors.shape[0]), "pairs": pairs,
                        "steps": int(factors.shape[1])}}
    return report

def device_choice():
    '''device.run_pixels with device cuda trains the tricks, in float64 and in double-double (optimizers, schedules,
    residual connections and layer norm, bit for bit the CPU double-double kernel).'''
    from fractaltrain.compute.kernel import run_pixels_dd as run_cpu_dd
    device.select("cuda")
    res = {{}}
    for name in ("adam_warmup_cosine", "momentum", "adamw", "nesterov_cosine_final_fraction_axis", "sgd_warmup_steps_axis",
                 "residual_norm_depth4_nesterov"):
        cfg = small_config(TRICK_CASES[name], steps=12)
        pb = build_problem(cfg)
        hp = grid_hp(cfg, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            gpu = device.run_pixels(pb, hp)
            gpu_dd = device.run_pixels(pb, hp, hp * 1e-20)
        res[name] = {{"bitwise_equal": compare(run_cpu(pb, hp), gpu)["bitwise_equal"],
                     "dd_bitwise_equal": compare(run_cpu_dd(pb, hp, hp * 1e-20), gpu_dd)["bitwise_equal"]}}
    return res

print(json.dumps({{"cases": run_cases(3, steps={STEPS}, cases=list(TRICK_CASES)), "factors": factor_tables(),
                  "device": device_choice()}}))
"""


def _simulate(code: str) -> dict:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env.pop("FRACTALTRAIN_DEVICE", None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def report():
    return _simulate(SIMULATOR_RUN)


def _case_names():
    from fractaltrain.compute.gpu.compare import TRICK_CASES

    return sorted(TRICK_CASES)


@pytest.mark.parametrize("case", _case_names())
def test_trick_kernel_is_bitwise_the_cpu_kernel(report, case):
    """Every output of every pixel, bit for bit; each grid has converged and diverged pixels."""
    c = report["cases"][case]
    assert c["bitwise_equal"], c
    assert 0 < c["diverged_share"] < 1, c


@pytest.mark.parametrize("schedule", ["warmup", "cosine", "warmup_cosine"])
def test_schedule_table_is_the_cpu_kernels_factor(report, schedule):
    """lr · factors[row, t] is the rate the CPU kernel's scheduled_rates forms, for every pixel, layer and step,
    with warmup_steps and final_fraction on the axes: one row per distinct pair, one column per step."""
    f = report["factors"][schedule]
    assert f["differ"] == 0, f
    assert f["rows"] == f["pairs"] > 1 and f["steps"] == 30, f


@pytest.mark.parametrize("case", ["adam_warmup_cosine", "momentum", "adamw", "nesterov_cosine_final_fraction_axis",
                                  "sgd_warmup_steps_axis", "residual_norm_depth4_nesterov"])
def test_device_cuda_trains_tricks_in_float64_and_double_double(report, case):
    d = report["device"][case]
    assert d["bitwise_equal"] and d["dd_bitwise_equal"], d


# about 6 s simulated; the default run covers its parts: every trick case bit for bit (``report``), device.run_pixels
# with device cuda on a trick config, and ``render --device cuda`` end to end in tests/test_gpu.py
@pytest.mark.slow
def test_simulator_render_of_a_trick_config_equals_the_cpu_render(tmp_path):
    """``render --device cuda`` end to end (Adam, warmup_cosine, residual and layer norm at depth 3, β1 on an
    axis): the same tile values, bit for bit, as a CPU render."""
    cfg = tmp_path / "t.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "t", "network": {"width": 3, "depth": 3, "residual": True, "norm": "layer"}, "data": {"size": 5},
        "training": {"steps": 12, "optimizer": "adam", "schedule": {"name": "warmup_cosine", "warmup_steps": 3}},
        "axes": {"x": {"param": "lr", "scale": "log10", "range": [-3, 2]},
                 "y": {"param": "beta1", "scale": "linear", "range": [0, 0.95]}},
        "resolution": "8x2", "tile": 8}))
    env = dict(os.environ)
    env.pop("FRACTALTRAIN_DEVICE", None)
    for device, sim in (("cuda", "1"), ("cpu", "0")):
        args = ["render", str(cfg), "-o", str(tmp_path / device), "-q", "--device", device]
        r = subprocess.run([sys.executable, "-m", "fractaltrain", *args], capture_output=True, text=True,
                           env=dict(env, NUMBA_ENABLE_CUDASIM=sim), timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
    a, b = np.load(tmp_path / "cuda" / "t.npz"), np.load(tmp_path / "cpu" / "t.npz")
    for key in ("measure", "final_loss", "probe", "steps_trained"):
        assert a[key].tobytes() == b[key].tobytes(), key
    assert 0 < np.mean(a["measure"] > 0) < 1  # both kinds of pixel


@pytest.mark.skipif(not real_gpu(), reason="needs an NVIDIA GPU with numba-cuda")
def test_gpu_trick_kernel_is_bitwise_the_cpu_kernel():
    """On hardware, what NVVM and ptxas make of the trick variants: 8 × 8 grids, 40 steps, every case."""
    from fractaltrain.compute.gpu.compare import TRICK_CASES, run_cases

    report = run_cases(8, steps=40, cases=list(TRICK_CASES))
    bad = {k: v for k, v in report.items() if not v["bitwise_equal"]}
    assert not bad, bad


INTERLEAVED_EXTRA = {"adamw_norm_minibatch": {"network": {"depth": 3, "norm": "layer"},
                                            "training": {"optimizer": "adamw", "batch": 3, "schedule": "cosine"}}}


@pytest.mark.slow  # 4 simulated threads per block convoy on the simulator's lock: 2 s to minutes a case
@pytest.mark.parametrize("case", _case_names() + list(INTERLEAVED_EXTRA))
def test_trick_kernel_is_bitwise_the_cpu_kernel_interleaved(case):
    """4 × 4 grids, 20 steps, a minibatch case too, 2 blocks of 4 threads: neighbours interleave their pixels.

    One simulator process a case, so each has the whole time limit: the convoy makes one case take 1 s in
    one run and 155 s in the next, and all eleven in one process ran past 15 minutes (2026-12-05; one
    process a case, at 20 steps, 101 s on two workers)."""
    code = ("import json\n"
            "from fractaltrain.compute.gpu.compare import TRICK_CASES, run_cases\n"
            f"cases = {{**TRICK_CASES, **{INTERLEAVED_EXTRA!r}}}\n"
            f"print(json.dumps(run_cases(4, steps=20, cases={{{case!r}: cases[{case!r}]}}, threads=4, blocks=2)))\n")
    for name, c in _simulate(code).items():
        assert c["bitwise_equal"], (name, c)
