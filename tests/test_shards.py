"""Sharded computation: tasks fill one store, assemble gives the single-process result."""

import subprocess
import sys

import numpy as np
import yaml

from video_reader import read_video

CFG = {
    "name": "sh",
    "network": {"width": 4},
    "data": {"size": 12},
    "training": {"steps": 30},
    "resolution": "40x24",
    "tile": 8,
}


def ft(*args):
    return subprocess.run([sys.executable, "-m", "fractaltrain", *map(str, args)], capture_output=True, text=True)


# `fractaltrain status DIR`, then a check that it never imported numba (it only reads files).
STATUS_WITHOUT_NUMBA = """
import sys
from fractaltrain.cli import main
sys.argv[0] = "fractaltrain"
try:
    main()
finally:
    assert "numba" not in sys.modules, "status imported numba"
"""


def test_render_shards_then_assemble_equals_single_run(tmp_path):
    cfg = tmp_path / "sh.yaml"
    cfg.write_text(yaml.safe_dump(CFG))
    shared = tmp_path / "shared"
    for k in (0, 2):
        r = ft("render", cfg, "-q", "--out", shared, "--shard", f"{k}/3")
        assert r.returncode == 0, r.stderr
        assert not (shared / "sh.png").exists()
    r = ft("assemble", shared, "-q")
    assert r.returncode == 1
    assert "shard(s) 1/3" in r.stderr and "-> shard 1/3" in r.stderr
    r = ft("status", shared)
    assert r.returncode == 0 and "missing" in r.stdout
    r = subprocess.run([sys.executable, "-c", STATUS_WITHOUT_NUMBA, "status", str(shared)], capture_output=True, text=True)
    assert r.returncode == 0 and "missing" in r.stdout, r.stderr
    r = ft("render", cfg, "-q", "--out", shared, "--shard", "1/3")
    assert r.returncode == 0, r.stderr
    r = ft("assemble", shared, "-q")
    assert r.returncode == 0, r.stderr
    single = tmp_path / "single"
    assert ft("render", cfg, "-q", "--out", single).returncode == 0
    np.testing.assert_array_equal(np.load(shared / "sh.npz")["measure"], np.load(single / "sh.npz")["measure"])
    assert (shared / "sh.png").read_bytes() == (single / "sh.png").read_bytes()
    r = ft("status", shared)
    assert " 0 missing" in r.stdout


def test_zoom_shards_then_assemble_equals_single_run(tmp_path):
    cfg = tmp_path / "sh.yaml"
    cfg.write_text(yaml.safe_dump(CFG))
    flags = ["-q", "--frames", "10", "--size", "32x20", "--depth", "1.5"]
    shared = tmp_path / "shared"
    for k in range(3):
        r = ft("zoom", cfg, *flags, "--out", shared, "--shard", f"{k}/3")
        assert r.returncode == 0, r.stderr
    assert not (shared / "sh.mp4").exists()
    r = ft("assemble", shared, "-q")
    assert r.returncode == 0, r.stderr
    single = tmp_path / "single"
    r = ft("zoom", cfg, *flags, "--out", single)
    assert r.returncode == 0, r.stderr
    a, _ = read_video(shared / "sh.mp4")
    b, _ = read_video(single / "sh.mp4")
    np.testing.assert_array_equal(a, b)
    for x, y in zip(sorted((shared / "keyframes").glob("*.npz")), sorted((single / "keyframes").glob("*.npz"))):
        np.testing.assert_array_equal(np.load(x)["measure"], np.load(y)["measure"])


def test_shard_flag_errors(tmp_path):
    cfg = tmp_path / "sh.yaml"
    cfg.write_text(yaml.safe_dump(CFG))
    for bad in ["3/3", "x", "1/0"]:
        r = ft("render", cfg, "-q", "--out", tmp_path / "o", "--shard", bad)
        assert r.returncode == 2 and r.stderr.startswith("error: --shard"), r.stderr
    r = ft("render", cfg, "-q", "--out", tmp_path / "o", "--shard", "slurm")
    assert r.returncode == 2 and "SLURM_ARRAY_TASK_ID" in r.stderr
