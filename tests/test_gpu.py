"""The CUDA backend: device choice and errors, and the kernel in numba-cuda's simulator vs the CPU kernel.

The simulator (``NUMBA_ENABLE_CUDASIM=1``) must be chosen before numba.cuda is
first imported, so the simulator runs are subprocesses.  It runs the kernel's
Python source on IEEE doubles: it checks the kernel's logic and operation
order bit for bit, not NVVM's code generation (tests marked ``gpu`` do that,
and skip without a GPU).
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

HAVE_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
needs_numba_cuda = pytest.mark.skipif(not HAVE_NUMBA_CUDA, reason="numba-cuda not installed (pip install '.[cuda]')")

TINY = {
    "name": "tiny",
    "network": {"width": 3, "depth": 2, "nonlinearity": "tanh"},
    "data": {"size": 5},
    "training": {"steps": 12},
    "resolution": "16x8",
    "tile": 8,
}


def env(sim: bool) -> dict:
    e = dict(os.environ)
    e.pop("FRACTALTRAIN_DEVICE", None)
    if sim:
        e["NUMBA_ENABLE_CUDASIM"] = "1"
    return e


def ft(*args, sim=False, extra_env=None):
    e = env(sim)
    e.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "fractaltrain", *map(str, args)], capture_output=True, text=True,
                          env=e)


def real_gpu() -> bool:
    if not HAVE_NUMBA_CUDA or os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return False
    code = "from numba import cuda; print(cuda.is_available())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env(False))
    return r.stdout.strip() == "True"


def test_device_names_and_default(monkeypatch):
    from fractaltrain.compute import device

    monkeypatch.delenv(device.ENV, raising=False)
    assert device.resolve() == "cpu"
    assert device.resolve(" CUDA ") == "cuda"
    monkeypatch.setenv(device.ENV, "cuda")
    assert device.resolve() == "cuda"
    assert device.resolve("cpu") == "cpu"
    with pytest.raises(device.DeviceError, match="^device: must be one of cpu, cuda"):
        device.resolve("gpu")
    monkeypatch.setenv(device.ENV, "tpu")
    with pytest.raises(device.DeviceError, match=f"^{device.ENV}: must be one of"):
        device.resolve()


def test_importing_device_loads_no_numba():
    code = "import sys, fractaltrain.compute.device, fractaltrain.compute.landscape; assert 'numba' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_cli_cuda_unavailable_is_one_line_exit_2(tmp_path):
    if real_gpu():
        pytest.skip("this machine has a GPU: cuda is available")
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    for args, extra in ((["--device", "cuda"], None), ([], {"FRACTALTRAIN_DEVICE": "cuda"})):
        r = ft("render", cfg, "-o", tmp_path / "o", *args, extra_env=extra)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: device cuda is not available: "), r.stderr
        assert ("numba-cuda is not installed" in lines[0]) != HAVE_NUMBA_CUDA
    r = ft("locate", cfg, "-o", tmp_path / "o", "--device", "gpu")
    assert r.returncode == 2 and r.stderr.strip() == "error: --device: must be one of cpu, cuda; got 'gpu'"


def simulator_compare(*args: int) -> dict:
    """``gpu.compare`` in a simulator subprocess; its report (one dict per config)."""
    r = subprocess.run([sys.executable, "-m", "fractaltrain.compute.gpu.compare", *map(str, args)], capture_output=True,
                       text=True, env=env(True), timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(report) == 6
    return report


@needs_numba_cuda
def test_simulator_kernel_is_bitwise_the_cpu_kernel_on_2x2_grids():
    """The six configs on 2×2 grids, one thread taking 4 pixels from the queue: seconds, so CI checks the bits.

    Six small configs: tanh, relu, identity with 2 outputs, depth 3, minibatch, drift.
    One thread per block, as gpu.run launches in the simulator: several threads in
    a block convoy on the simulator's lock and take anything from seconds to minutes.
    """
    report = simulator_compare(2, 1, 2)
    for name, c in report.items():
        assert c["bitwise_equal"], (name, c)
    shares = [c["diverged_share"] for c in report.values()]
    assert any(s > 0 for s in shares) and any(s < 1 for s in shares)  # both kinds of pixel


@pytest.mark.slow  # seconds to minutes: 4 simulated threads per block convoy on the simulator's lock
@needs_numba_cuda
def test_simulator_kernel_is_bitwise_the_cpu_kernel():
    """The same six configs on 3×3 grids, 2 blocks of 4 threads: neighbours interleave their pixels."""
    for name, c in simulator_compare(3, 4, 2).items():
        assert 0 < c["diverged_share"] < 1, name  # both kinds of pixel present
        assert c["bitwise_equal"], (name, c)


@needs_numba_cuda
def test_simulator_render_fills_the_cpu_store(tmp_path):
    """A cuda shard and a cpu shard fill one store; the image equals an all-cpu render bit for bit."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(dict(TINY, resolution="16x2")))  # two tiles of 8×2: seconds simulated
    mixed, ref = tmp_path / "mixed", tmp_path / "ref"
    r = ft("render", cfg, "-o", mixed, "-q", "--shard", "0/2", "--device", "cuda", sim=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "1 tiles computed" in r.stdout, r.stdout
    r = ft("render", cfg, "-o", mixed, "-q")  # the cpu computes the other tile and assembles
    assert r.returncode == 0, r.stderr
    r = ft("render", cfg, "-o", ref, "-q", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    a, b = np.load(mixed / "tiny.npz"), np.load(ref / "tiny.npz")
    for key in ("measure", "final_loss", "probe", "steps_trained"):
        assert a[key].tobytes() == b[key].tobytes(), key
    assert 0 < np.mean(a["measure"] > 0) < 1  # both kinds of pixel


@pytest.mark.skipif(not real_gpu(), reason="needs an NVIDIA GPU with numba-cuda (scripts/gpu_check.py runs this)")
def test_gpu_kernel_is_bitwise_the_cpu_kernel():
    from fractaltrain.compute.gpu.compare import run_cases

    report = run_cases(8, steps=40)
    bad = {k: v for k, v in report.items() if not v["bitwise_equal"]}
    assert not bad, bad


@needs_numba_cuda
def test_simulator_zoom_equals_the_cpu_zoom(tmp_path):
    """``zoom --device cuda`` end to end: the same keyframes, bit for bit, and the same video as on the cpu.

    The cpu zoom runs first and its noise guard's rates (``noise.json``, keyed by keyframe grid) are given to
    the cuda zoom, which then trains only its keyframes in the simulator: the guard's sample would cost about
    twice the keyframes' pixels there, through the same device.run_pixels the keyframes take."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(dict(TINY, training={"steps": 4})))
    args = ["--size", "4x4", "--depth", "0.3", "--frames", "4", "--center", "0.5,0.5", "-q"]
    r = ft("zoom", cfg, "-o", tmp_path / "cpu", *args)
    assert r.returncode == 0, r.stderr
    (tmp_path / "gpu").mkdir()
    (tmp_path / "gpu" / "noise.json").write_bytes((tmp_path / "cpu" / "noise.json").read_bytes())
    r = ft("zoom", cfg, "-o", tmp_path / "gpu", "--device", "cuda", *args, sim=True)
    assert r.returncode == 0, r.stderr[-2000:]
    kg = sorted((tmp_path / "gpu" / "keyframes").glob("*.npz"))
    kc = sorted((tmp_path / "cpu" / "keyframes").glob("*.npz"))
    assert len(kg) == len(kc) == 2
    for a, b in zip(kg, kc):
        m = np.load(a)["measure"]
        assert m.tobytes() == np.load(b)["measure"].tobytes(), a.name
        assert 0 < np.mean(m > 0) < 1, a.name  # both kinds of pixel
    assert (tmp_path / "gpu" / "tiny.mp4").read_bytes() == (tmp_path / "cpu" / "tiny.mp4").read_bytes()


def test_thread_arrays_have_constant_shapes():
    """The GPU compiler takes ``cuda.local.array``/``cuda.shared.array`` shapes only as
    constants (a name bound at build time, a literal, or a tuple of those); the simulator
    accepts any integer, so ``DEPTH + 1`` passed every simulator test and failed the
    first compile on an H200.  This reads the sources, so it runs without a GPU."""
    import ast
    from pathlib import Path

    gpu = Path(__file__).resolve().parent.parent / "fractaltrain" / "compute" / "gpu"
    seen = 0
    for path in sorted(gpu.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "array" and isinstance(node.func.value, ast.Attribute)
                    and node.func.value.attr in ("local", "shared")):
                seen += 1
                shape = node.args[0]
                parts = shape.elts if isinstance(shape, ast.Tuple) else [shape]
                for part in parts:
                    assert isinstance(part, (ast.Name, ast.Constant)), (
                        f"{path.name}:{node.lineno}: thread-array shape {ast.unparse(shape)} is an expression; "
                        "bind it to a name in the kernel builder")
    assert seen >= 20
