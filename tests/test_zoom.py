"""Zoom: frame windows, locate, MP4 contents, colour continuity, resume after kill -9."""

import json
from dataclasses import replace
from fractions import Fraction
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from fractaltrain.config import ConfigError, config_from_dict
from fractaltrain.columns import OUT_MEASURE
from fractaltrain.compute.landscape import assemble, make_grid
from fractaltrain.search.locate import boundary_mask, locate, locate_nearest
from fractaltrain.problem import build_problem
from fractaltrain.window import config_window
from fractaltrain.compute.store import TileStore
from video_reader import read_video
from fractaltrain.window import Window
from fractaltrain.zoom.pipeline import ZoomOptions, zoom
from fractaltrain.zoom.plan import ZoomPlan, outer_window

TINY = {
    "name": "tiny",
    "network": {"width": 4},
    "data": {"size": 12},
    "training": {"steps": 30},
    "resolution": "64x64",
    "tile": 32,
}


def tiny_cfg(**over):
    return config_from_dict({**TINY, **over})


def test_frame_windows_shrink_geometrically_and_contain_target():
    outer = Window(-3, 6, -3, 6)
    plan = ZoomPlan(outer, (1.234, 2.5), depth=6, frames=50, size=(64, 36))
    widths = np.array([plan.frame_window(i).width for i in range(50)])
    assert plan.frame_window(0) == Window(1.234 - 4.5, 1.234 + 4.5, 2.5 - 4.5, 2.5 + 4.5)
    assert math.isclose(widths[-1], outer.width * 1e-6, rel_tol=1e-9)
    ratios = widths[1:] / widths[:-1]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-7)
    assert ratios[0] < 1
    for i in range(50):
        w = plan.frame_window(i)
        assert w.x0 <= 1.234 <= w.x1 and w.y0 <= 2.5 <= w.y1
    # keyframes: factor-2 nesting down past the deepest frame
    assert plan.n_keyframes == math.ceil(6 / math.log10(2)) + 1
    assert plan.keyframe_window(plan.n_keyframes - 1).width <= widths[-1]
    assert plan.keyframe_size == (128, 72)


def test_outer_window_keeps_whole_view_at_any_aspect():
    w = outer_window(Window(-3, 6, -3, 6), (256, 256), (640, 360))
    assert math.isclose(w.height, 9.0) and math.isclose(w.width, 16.0)
    w = outer_window(Window(-3, 6, -3, 6), (256, 256), (360, 640))
    assert math.isclose(w.width, 9.0) and w.height > 9.0


def test_locate_stays_on_boundary_at_final_depth(tmp_path):
    cfg = tiny_cfg()
    pb = build_problem(cfg)
    store = TileStore(tmp_path)
    start = config_window(cfg)
    res = locate(pb, start, 4.0, store)
    # the neighbourhood at the final depth has both converged and diverged pixels
    s = 10.0**4
    win = Window.around(res.x, res.y, 0.5 * start.width / s, 0.5 * start.height / s)
    grid = make_grid(pb, win, 24, 24, 24)
    from fractaltrain.compute.landscape import fill_grids

    fill_grids(pb, store, [grid])
    m = assemble(store, grid)[..., OUT_MEASURE]
    assert (m < 0).any() and (m > 0).any()
    assert boundary_mask(m).any()
    # deterministic; another seed gives another point
    assert locate(pb, start, 4.0, store) == res
    other = locate(pb, start, 4.0, store, seed=1)
    assert (other.x, other.y) != (res.x, res.y)


def test_old_nearest_rule_still_available(tmp_path):
    cfg = tiny_cfg()
    pb = build_problem(cfg)
    store = TileStore(tmp_path)
    start = config_window(cfg)
    res = locate_nearest(pb, start, 4.0, store, resolution=24)
    assert locate_nearest(pb, start, 4.0, store, resolution=24) == res
    assert locate_nearest(pb, start, 4.0, store, resolution=24, seed=3) != res


@pytest.fixture(scope="module")
def tiny_zoom(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoom")
    cfg = tiny_cfg()
    opts = ZoomOptions(frames=48, fps=24, size=(48, 32), depth=1.5)
    res = zoom(cfg, out, opts)
    return cfg, opts, out, res


def test_zoom_writes_mp4_with_exact_frames_size_fps(tiny_zoom):
    cfg, opts, out, res = tiny_zoom
    frames, fps = read_video(res.mp4)
    assert frames.shape == (48, 32, 48, 3)
    assert fps == 24
    meta = json.loads(res.json.read_text())
    assert meta["zoom"]["depth"] == 1.5
    assert len(meta["zoom"]["keyframes"]) == res.plan.n_keyframes
    assert Fraction(float(meta["target"]["x_exact"])) == res.plan.target[0]  # repr of the located float
    kf = sorted((out / "keyframes").glob("*.npz"))
    assert len(kf) == res.plan.n_keyframes
    z = np.load(kf[-1])
    assert z["measure"].shape == (65, 97)  # aligned keyframes: twice the frame size, plus a middle pixel
    assert res.poster.exists()


def test_colour_is_continuous_and_no_frame_is_blank(tiny_zoom):
    _, _, _, res = tiny_zoom
    frames, _ = read_video(res.mp4)
    f = frames.astype(float)
    mean_colour = f.mean(axis=(1, 2))  # (frames, 3)
    jumps = np.linalg.norm(np.diff(mean_colour, axis=0), axis=1)
    print("mean-colour change between consecutive frames:", np.round(jumps, 1))
    assert jumps.max() < 12
    assert np.median(jumps) < 4
    # switching the enclosing keyframe must not be a visible pop: no bigger than the usual change
    levels = [res.plan.frame_level(i)[0] for i in range(len(f))]
    switch = [i for i in range(1, len(f)) if levels[i] != levels[i - 1]]
    assert switch
    pixel_diffs = np.abs(np.diff(f, axis=0)).mean(axis=(1, 2, 3))
    for i in switch:
        lo, hi = max(0, i - 4), min(len(pixel_diffs), i + 3)
        assert pixel_diffs[i - 1] <= 1.5 * np.median(pixel_diffs[lo:hi]) + 2
    assert f.std(axis=(1, 2, 3)).min() > 5


def test_frame_range_and_recolor_match_full_video(tiny_zoom, tmp_path):
    cfg, opts, out, res = tiny_zoom
    from dataclasses import replace

    part = zoom(cfg, out, replace(opts, frame_range=(10, 20), recolor=True))
    assert part.progress.tiles_computed == 0
    a, _ = read_video(res.mp4)
    b, _ = read_video(part.mp4)
    assert b.shape[0] == 10
    assert np.abs(a[10:20].astype(int) - b.astype(int)).mean() < 6  # same frames, lossy re-encode
    gray = zoom(cfg, out, replace(opts, palette="gray", recolor=True))
    g, _ = read_video(gray.mp4)
    assert np.abs(g[..., 0].astype(int) - g[..., 2].astype(int)).max() < 12  # grey pixels
    from fractaltrain.errors import InputError
    from fractaltrain.compute.jobs import IncompleteError

    with pytest.raises(InputError, match="^recolor: .* holds no zoom"):  # never locates, never trains
        zoom(cfg, tmp_path, replace(opts, recolor=True))
    assert not (tmp_path / "tiles").exists()
    with pytest.raises(IncompleteError, match="missing"):
        zoom(cfg, tmp_path, replace(opts, recolor=True, center=res.plan.target))


def test_depth_beyond_float64_is_refused(tmp_path):
    cfg = replace(tiny_cfg(), precision="float64")
    with pytest.raises(ConfigError, match="^depth: float64"):
        zoom(cfg, tmp_path, ZoomOptions(frames=4, size=(48, 32), depth=16.0, center=(1.0, 1.0)))


def test_zoom_resume_after_kill_9_gives_same_frames(tmp_path):
    raw = {**TINY, "name": "kz", "training": {"steps": 120}, "tile": 16}
    cfgfile = tmp_path / "kz.yaml"
    cfgfile.write_text(yaml.safe_dump(raw))
    base = [sys.executable, "-m", "fractaltrain", "zoom", str(cfgfile), "-q", "--threads", "1", "--frames", "12",
            "--size", "32x32", "--depth", "2", "--center", "1.4,1.5"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(base + ["--out", str(killed)], start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline:
        n = len(list(killed.glob("tiles/*/*.npz")))
        if n >= 6 or proc.poll() is not None:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "kz.mp4").exists()
    assert 0 < len(list(killed.glob("tiles/*/*.npz")))
    r = subprocess.run(base + ["--out", str(killed)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    fresh = tmp_path / "fresh"
    r = subprocess.run(base + ["--out", str(fresh)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    a, _ = read_video(killed / "kz.mp4")
    b, _ = read_video(fresh / "kz.mp4")
    np.testing.assert_array_equal(a, b)
    ka = sorted((killed / "keyframes").glob("*.npz"))
    kb = sorted((fresh / "keyframes").glob("*.npz"))
    for x, y in zip(ka, kb):
        np.testing.assert_array_equal(np.load(x)["measure"], np.load(y)["measure"])


def test_zoom_cli_rejects_bad_flags(tmp_path):
    cfg = tmp_path / "t.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    for flags, key in [
        (["--size", "33x20"], "--size"),
        (["--frame-range", "5:2"], "--frame-range"),
        (["--codec", "vp9"], "--codec"),
        (["--center", "abc"], "--center"),
        (["--center", "50,50"], "--center"),
        (["--palette", "rainbow"], "--palette"),
    ]:
        r = subprocess.run([sys.executable, "-m", "fractaltrain", "zoom", str(cfg), "-q", "--out", str(tmp_path / "o")]
                           + flags, capture_output=True, text=True)
        assert r.returncode == 2, (flags, r.stderr)
        assert r.stderr.strip().startswith(f"error: {key}"), r.stderr
        assert "Traceback" not in r.stderr


def test_frame_is_pure_function_of_index(tiny_zoom):
    cfg, opts, out, res = tiny_zoom
    from fractaltrain.zoom.frames import compose_frame
    from fractaltrain.zoom.keyframes import KeyframeCache, keyframe_grids

    pb = build_problem(cfg)
    grids = keyframe_grids(pb, res.plan)
    c1 = KeyframeCache(TileStore(out / "tiles"), [grids], cfg.readout)
    alone = compose_frame(res.plan, 30, c1.values, c1.reference)
    c2 = KeyframeCache(TileStore(out / "tiles"), [grids], cfg.readout)
    for i in range(0, 31, 5):
        f = compose_frame(res.plan, i, c2.values, c2.reference)
    np.testing.assert_array_equal(alone, f)
    from fractaltrain.zoom.frames import FrameComposer

    comp = FrameComposer(res.plan, c2.values, c2.reference, keep=2)  # a small cache: evictions, same bytes
    for i in list(range(0, 31, 3)) + [30]:
        f = comp.frame(i)
    np.testing.assert_array_equal(alone, f)
