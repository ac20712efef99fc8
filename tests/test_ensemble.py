"""Seed ensembles: member draws, P(converge) outputs, tiles, shards, --member, dimension, bad input."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import yaml

from fractaltrain.config import config_from_dict
from fractaltrain.render.ensemble import member_problem, render_ensemble, with_ensemble
from fractaltrain.errors import ConfigError
from fractaltrain.compute.landscape import Shard
from fractaltrain.problem import build_problem
from fractaltrain.render.still import render

BASE = {"network": {"width": 4}, "data": {"size": 12}, "training": {"steps": 30}, "resolution": "16x12", "tile": 8}


def cfg_of(rng="pcg64", ensemble=None, **extra):
    raw = {**BASE, "name": "ens", "rng": rng, **extra}
    if ensemble is not None:
        raw["ensemble"] = ensemble
    return config_from_dict(raw)


def ft(*args):
    return subprocess.run([sys.executable, "-m", "fractaltrain", *map(str, args)], capture_output=True, text=True)


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)


@pytest.mark.parametrize("rng", ["pcg64", "notebook"])
def test_multiples_of_one_over_k_and_member0_is_the_plain_render(tmp_path, rng):
    k = 3
    res = render(cfg_of(rng, k), tmp_path / "e")
    z = np.load(res.npz)
    p = z["p_converged"]
    assert p.dtype == np.float64 and p.shape == (12, 16)
    assert set(np.unique(p * k)) <= {0.0, 1.0, 2.0, 3.0}
    np.testing.assert_array_equal(p, np.count_nonzero(z["members"] < 0, axis=0) / k)
    assert z["members"].shape == (k, 12, 16)
    np.testing.assert_array_equal(z["measure_mean"], z["members"].mean(axis=0))
    plain = render(cfg_of(rng), tmp_path / "p")
    assert np.array_equal(bits(z["members"][0]), bits(np.load(plain.npz)["measure"]))
    assert res.grids[0].key == plain.grid.key  # member 0 shares its tiles with the plain render
    assert len({g.problem_key for g in res.grids}) == k
    # members differ: the landscape changes with the draw
    assert not np.array_equal(z["members"][0], z["members"][1])


@pytest.mark.parametrize("rng", ["pcg64", "notebook"])
def test_vary_subset_keeps_the_other_sources(rng):
    cfg = cfg_of(rng, {"members": 3, "vary": ["weights"]}, training={"steps": 30, "batch": 4})
    base, m2 = member_problem(cfg, 0), member_problem(cfg, 2)
    assert not np.array_equal(base.weights[0], m2.weights[0])
    for a, b in ((base.X, m2.X), (base.Y, m2.Y), (base.probe, m2.probe), (base.batch_indices, m2.batch_indices)):
        np.testing.assert_array_equal(a, b)
    cfg = dataclasses.replace(cfg, ensemble=dataclasses.replace(cfg.ensemble, vary=("data", "minibatch")))
    m1 = member_problem(cfg, 1)
    for a, b in zip(base.weights, m1.weights):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(base.X, m1.X) and not np.array_equal(base.batch_indices, m1.batch_indices)
    assert m1.key() != base.key()


def test_member_draws_are_deterministic_and_member0_is_build_problem():
    for rng in ("pcg64", "notebook"):
        cfg = cfg_of(rng, 4)
        assert member_problem(cfg, 0).key() == build_problem(cfg).key()
        assert member_problem(cfg, 3).key() == member_problem(cfg, 3).key()
        assert len({member_problem(cfg, k).key() for k in range(4)}) == 4


def test_default_vary_and_config_errors():
    assert cfg_of(ensemble=2).ensemble.vary == ("weights", "data")
    assert cfg_of(ensemble=2, training={"steps": 30, "batch": 4}).ensemble.vary == ("weights", "data", "minibatch")
    for bad, msg in [(0, "ensemble: must be"), ({"members": 2, "vary": ["seeds"]}, "unknown random source"),
                     ({"members": 2, "vary": ["minibatch"]}, "varies nothing"), ({"vary": ["data"]}, "members: missing"),
                     ({"members": 2, "vary": []}, "non-empty"), ({"members": 2, "colour": 1}, "ensemble")]:
        with pytest.raises(ConfigError, match=msg):
            cfg_of(ensemble=bad)
    with pytest.raises(ConfigError) as exc:
        with_ensemble(cfg_of(), 0)
    assert exc.value.option == "ensemble"


def test_resume_and_shards_across_members(tmp_path):
    cfg = cfg_of(ensemble=3)
    single = render_ensemble(cfg, tmp_path / "single")
    out = tmp_path / "shared"
    # 3 members x 4 tiles = 12 tiles, numbered over all members: every shard owns tiles of several members
    for k in (0, 1):
        r = render_ensemble(cfg, out, shard=Shard(k, 3))
        assert r.png is None and r.progress.tiles_computed == 4
    with pytest.raises(Exception, match="missing"):
        render_ensemble(cfg, out, compute=False, shard=Shard(0, 3))
    assert ft("assemble", out, "-q").returncode == 1
    r = render_ensemble(cfg, out)  # resume: only the last shard's tiles are computed
    assert r.progress.tiles_computed == 4 and r.progress.tiles_reused == 8
    for name in ("p_converged", "members"):
        np.testing.assert_array_equal(np.load(r.npz)[name], np.load(single.npz)[name])
    assert r.png.read_bytes() == single.png.read_bytes()
    # a bigger ensemble reuses the members it shares (members are prefixes), under the same name
    r4 = render_ensemble(with_ensemble(cfg, 4), out)
    assert r4.progress.tiles_computed == 4 and r4.progress.tiles_reused == 12


def test_cli_render_member_and_dimension(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text(yaml.safe_dump({**BASE, "name": "ens", "resolution": "24x24"}))
    out = tmp_path / "o"
    r = ft("render", y, "-q", "--out", out, "--ensemble", 3)
    assert r.returncode == 0, r.stderr
    r = ft("render", y, "-q", "--out", out, "--ensemble", 3, "--member", 2)
    assert r.returncode == 0, r.stderr
    members = np.load(out / "ens.npz")["members"]
    np.testing.assert_array_equal(np.load(out / "ens_member2.npz")["measure"], members[2])
    st = ft("status", out).stdout
    assert "ensemble ens" in st and "member   2: 9/9 tiles" in st, st
    r = ft("assemble", out, "-q")
    assert r.returncode == 0 and "ens_member2" in r.stdout and "ens:" in r.stdout, r.stderr
    np.testing.assert_array_equal(np.load(out / "ens_member2.npz")["measure"], members[2])
    r = ft("dimension", out / "ens.npz", "--min-size", 2, "--json", tmp_path / "d.json")
    assert r.returncode == 0, r.stderr
    r = ft("dimension", out / "ens.npz", "--member", 1, "--min-size", 2)
    assert r.returncode == 0, r.stderr


def test_dimension_reads_the_half_level():
    from fractaltrain.dimension.boxcount import boundary_mask
    from fractaltrain.render.ensemble import signed_field

    p = np.array([[0, 1 / 3], [2 / 3, 1]])
    f = signed_field(p)
    assert (f[0] > 0).all() and (f[1] < 0).all() and boundary_mask(f).all()


def test_dimension_inputs_on_ensemble_npz(tmp_path):
    from fractaltrain.dimension import inputs as di

    res = render(cfg_of(ensemble=2), tmp_path)
    z = np.load(res.npz)
    np.testing.assert_array_equal(di.read_image(res.npz), 0.5 - z["p_converged"])
    np.testing.assert_array_equal(di.read_image(res.npz, member=1), z["members"][1])
    with pytest.raises(ConfigError.__bases__[0], match="member: .* 0 to 1, got 2"):
        di.read_image(res.npz, member=2)


@pytest.mark.parametrize("args, msg", [
    (["--ensemble", "0"], "error: --ensemble: must be >= 1"),
    (["--ensemble", "2", "--member", "2"], "error: --member: must be between 0 and 1"),
    (["--member", "0"], "error: --member: needs an ensemble"),
    (["--ensemble", "5000"], "error: --ensemble: must be"),
])
def test_bad_cli_input_is_one_line_exit_2(tmp_path, args, msg):
    y = tmp_path / "c.yaml"
    y.write_text(yaml.safe_dump({**BASE, "name": "ens"}))
    r = ft("render", y, "-q", "--out", tmp_path / "o", *args)
    assert r.returncode == 2 and r.stderr.startswith(msg) and r.stderr.count("\n") == 1, r.stderr


def test_bad_vary_in_config_is_one_line_exit_2(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text(yaml.safe_dump({**BASE, "name": "ens", "ensemble": {"members": 2, "vary": ["weights", "labels"]}}))
    r = ft("render", y, "-q", "--out", tmp_path / "o")
    assert r.returncode == 2 and r.stderr.startswith("error: ensemble.vary: unknown random source 'labels'"), r.stderr
    assert r.stderr.count("\n") == 1


def test_locate_follows_the_half_level(tmp_path):
    from fractaltrain.search.locate import locate_ensemble
    from fractaltrain.window import config_window
    from fractaltrain.compute.store import TileStore

    cfg = cfg_of(ensemble=3)
    problems = [member_problem(cfg, k) for k in range(3)]
    res = locate_ensemble(problems, config_window(cfg), 1.0, TileStore(tmp_path / "tiles"), resolution=16)
    again = locate_ensemble(problems, config_window(cfg), 1.0, TileStore(tmp_path / "tiles"), resolution=16)
    assert (res.x, res.y) == (again.x, again.y)


def test_zoom_ensemble_keyframes_frames_and_resume(tmp_path):
    from fractaltrain.zoom.pipeline import ZoomOptions, zoom

    opts = ZoomOptions(frames=6, size=(16, 12), depth=0.7, center=(0.2, 0.3))
    res = zoom(cfg_of(ensemble=2), tmp_path / "e", opts)
    zoom(cfg_of(), tmp_path / "p", opts)
    n = res.plan.n_keyframes
    for k in range(n):
        z = np.load(tmp_path / "e" / "keyframes" / f"ens_kf{k:03d}.npz")
        assert z["members"].shape == (2, 25, 33)  # aligned keyframes: a middle pixel
        assert set(np.unique(z["p_converged"] * 2)) <= {0.0, 1.0, 2.0}
        one = np.load(tmp_path / "p" / "keyframes" / f"ens_kf{k:03d}.npz")
        assert np.array_equal(bits(z["members"][0]), bits(one["measure"]))  # member 0 is the plain zoom
    import json

    side = json.loads(res.json.read_text())
    assert side["ensemble"]["members"] == 2 and len(side["member_keyframe_grid_keys"]) == 2
    assert res.mp4.exists() and res.poster.exists()
    again = zoom(cfg_of(ensemble=2), tmp_path / "e", opts)  # resumes: nothing left to train
    assert again.progress.tiles_computed == 0


def test_cli_zoom_ensemble(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text(yaml.safe_dump({**BASE, "name": "ens"}))
    r = ft("zoom", y, "-q", "--out", tmp_path / "o", "--frames", 4, "--size", "16x12", "--depth", "0.5",
           "--center", "0.2,0.3", "--ensemble", 2)
    assert r.returncode == 0, r.stderr
    st = ft("status", tmp_path / "o")
    assert "keyframe   0 member 1" in st.stdout, st.stdout
    r = ft("zoom", y, "-q", "--out", tmp_path / "o2", "--frames", 2, "--ensemble", 0)
    assert r.returncode == 2 and r.stderr.startswith("error: --ensemble: must be >= 1"), r.stderr
