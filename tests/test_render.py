"""Render pipeline: outputs, tile-size and thread independence, resume after kill -9."""

import json
import os
import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import numba
import numpy as np
import pytest
import yaml

from fractaltrain.config import config_from_dict
from fractaltrain.errors import OutputError
from fractaltrain.render.still import render

SMALL = {
    "name": "small",
    "network": {"width": 4},
    "data": {"size": 12},
    "training": {"steps": 40},
    "axes": {"x": {"range": [-2, 5]}, "y": {"range": [-2, 5]}},
    "resolution": "24x16",
    "tile": 8,
}


def cfg_with(**over):
    raw = {**SMALL, **over}
    return config_from_dict(raw)


def test_outputs_and_orientation(tmp_path):
    res = render(cfg_with(), tmp_path)
    img = iio.imread(res.png)
    assert img.shape == (16, 24, 3) and img.dtype == np.uint8
    z = np.load(res.npz)
    for k in ["measure", "x_values", "y_values", "w0", "w1", "X", "Y", "config"]:
        assert k in z.files
    m = z["measure"]
    assert m.shape == (16, 24) and m.dtype == np.float64
    assert np.all(np.diff(z["x_values"]) > 0) and np.all(np.diff(z["y_values"]) > 0)
    assert z["w0"].shape == (4, 4) and z["w1"].shape == (4, 1)
    assert z["X"].shape == (12, 4) and z["Y"].shape == (12, 1)
    assert "batch_indices" not in z.files
    assert json.loads(str(z["config"]))["name"] == "small"
    # large output learning rates (top rows) diverge, small ones (bottom) converge; image y points up
    assert np.all(m[-1] > 0) and np.all(m[0, :8] < 0)
    top_row_red = img[0, :, 0].astype(int) > img[0, :, 2].astype(int)
    assert top_row_red.all()
    meta = json.loads(res.json.read_text())
    assert meta["window"]["exact"]["x"] == [repr(-2.0), repr(5.0)]
    assert meta["versions"]["fractaltrain"]
    assert meta["resolution"] == [24, 16]


def test_minibatch_npz_has_batch_indices(tmp_path):
    res = render(cfg_with(training={"steps": 10, "batch": 4}), tmp_path)
    z = np.load(res.npz)
    assert z["batch_indices"].shape == (10, 4)


def test_tile_size_and_threads_do_not_change_bits(tmp_path):
    a = np.load(render(cfg_with(tile=8), tmp_path / "a").npz)["measure"]
    b = np.load(render(cfg_with(tile=16), tmp_path / "b").npz)["measure"]
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        c = np.load(render(cfg_with(tile=64), tmp_path / "c").npz)["measure"]
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_rerun_reuses_tiles(tmp_path):
    r1 = render(cfg_with(), tmp_path)
    r2 = render(cfg_with(), tmp_path)
    assert r1.progress.tiles_computed == 6 and r2.progress.tiles_computed == 0 and r2.progress.tiles_reused == 6
    with pytest.raises(OutputError, match="holds another render"):  # same name, other pixels: never overwritten
        render(cfg_with(training={"steps": 41}), tmp_path)
    r3 = render(cfg_with(name="other", training={"steps": 41}), tmp_path)  # a change that affects pixels
    assert r3.progress.tiles_computed == 6


def test_resume_after_kill_9_is_bitwise_identical(tmp_path):
    raw = {**SMALL, "name": "resume", "resolution": "64x64", "training": {"steps": 300}, "tile": 8}
    cfgfile = tmp_path / "resume.yaml"
    cfgfile.write_text(yaml.safe_dump(raw))
    cmd = [sys.executable, "-m", "fractaltrain", "render", str(cfgfile), "-q", "--threads", "1"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd + ["--out", str(killed)], start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline:
        n = len(list((killed / "tiles").glob("*/*.npz"))) if (killed / "tiles").exists() else 0
        if n >= 4 or proc.poll() is not None:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list((killed / "tiles").glob("*/*.npz")))
    assert 0 < done < 64, f"kill landed at a bad time ({done} tiles)"
    assert not list(killed.glob("*.png"))
    r = subprocess.run(cmd + ["--out", str(killed)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    meta = json.loads((killed / "resume.json").read_text())
    assert meta["timing"]["tiles_reused"] >= done and meta["timing"]["tiles_computed"] == 64 - meta["timing"]["tiles_reused"]
    fresh = tmp_path / "fresh"
    r = subprocess.run(cmd + ["--out", str(fresh)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    a = np.load(killed / "resume.npz")["measure"]
    b = np.load(fresh / "resume.npz")["measure"]
    np.testing.assert_array_equal(a, b)
    assert (killed / "resume.png").read_bytes() == (fresh / "resume.png").read_bytes()
