"""The double-double CUDA kernel in numba-cuda's simulator vs the CPU double-double kernel, bit for bit.

As in tests/test_gpu.py, the simulator (``NUMBA_ENABLE_CUDASIM=1``) must be
chosen before numba.cuda is first imported, so the simulator runs in one
subprocess (module fixture) whose JSON report the tests read.  It checks the
kernel's logic and operation order on IEEE doubles, not NVVM's code
generation (scripts/gpu_check.py does that on a GPU).

Sizes: 3 × 3 grids (9 pixels: one full CPU block of 8 lanes and a padded one),
width 4, 8 points, 20 steps; low parts ``hp · 1e-20``.  About 20-40 s.
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

HAVE_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
pytestmark = pytest.mark.skipif(not HAVE_NUMBA_CUDA, reason="numba-cuda not installed (pip install '.[cuda]')")

STEPS = 20

SIMULATOR_RUN = f"""
import json, warnings
import numpy as np
from fractaltrain.compute.gpu.compare import grid_hp, small_config
from fractaltrain.compute.gpu.ddcompare import check_ops, run_dd_cases
from fractaltrain.compute.gpu.run import run_pixels_dd
from fractaltrain.problem import build_problem

rep = {{"cases": run_dd_cases(3, {STEPS}), "ops": check_ops(),
        "interleaved": run_dd_cases(3, {STEPS}, cases=["relu"], threads=2, blocks=2)["relu"]}}
cfg = small_config({{}})
pb = build_problem(cfg)
hp = grid_hp(cfg, 2)
try:
    run_pixels_dd(pb, hp, hp[:1])
except ValueError as exc:
    rep["shape_error"] = str(exc)
rep["empty_shape"] = list(run_pixels_dd(pb, hp[:0], hp[:0]).shape)
print(json.dumps(rep))
"""

CASE_NAMES = ["tanh", "relu", "identity_out2", "tanh_depth3", "tanh_minibatch", "tanh_drift", "relu_no_early_stop"]


@pytest.fixture(scope="module")
def report() -> dict:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env.pop("FRACTALTRAIN_DEVICE", None)
    r = subprocess.run([sys.executable, "-c", SIMULATOR_RUN], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_arithmetic_and_tanh_are_bitwise_the_cpu_ones(report):
    """ddops vs dd.py on ordinary, wide-range (Dekker's limits, overflow, underflow) and special operands."""
    assert report["ops"] == {k: 0 for k in ("dd_tanh", "dd_mul", "dd_mul_d", "dd_div", "dd_add", "dd_add_d", "dd_sqrt")}


@pytest.mark.parametrize("name", CASE_NAMES)
def test_training_is_bitwise_the_cpu_dd_kernel(report, name):
    """tanh, relu, identity with 2 outputs, depth 3, minibatch, drift, no early stop: every output, every bit."""
    c = report["cases"][name]
    assert c["pixels"] == 9
    assert c["bitwise_equal"], c


def test_the_grids_hold_both_kinds_of_pixel_and_low_parts_count(report):
    """The checks above cover converging and diverging pixels, and inputs whose low parts change the bits."""
    cases = report["cases"].values()
    assert all(0 < c["diverged_share"] < 1 for c in cases)
    assert any(c["low_parts_matter"] for c in cases)


def test_early_stop(report):
    """Diverging relu and identity pixels stop early (and match, above); without early stop none do."""
    assert report["cases"]["relu"]["stopped_early"] > 0
    assert report["cases"]["identity_out2"]["stopped_early"] > 0
    assert report["cases"]["relu_no_early_stop"]["stopped_early"] == 0


def test_threads_interleaving_pixels_give_the_same_bits(report):
    """Two blocks of two threads: a thread whose pixel stopped early takes the next one while its neighbour trains."""
    c = report["interleaved"]
    assert c["bitwise_equal"] and c["stopped_early"] > 0, c


def test_argument_checks(report):
    assert report["shape_error"].startswith("high and low hyperparameter tables differ in shape")
    assert report["empty_shape"][0] == 0
