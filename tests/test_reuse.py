"""Aligned keyframes (issue 33): nested keyframes share pixels bit for bit, the shared ones are copied, not
trained again, every copied pixel equals a fresh training of it, and zoom folders made before keep theirs."""

import json
from fractions import Fraction

import numpy as np
import pytest

from fractaltrain.compute import device
from fractaltrain.compute.landscape import assemble, fill_grids, grid_axes
from fractaltrain.compute.reuse import parents, shared_pixels
from fractaltrain.compute.store import TileStore, grid_from_identity
from fractaltrain.config import config_from_dict
from fractaltrain.lattice import lattice_values, parent_offsets, power_of_two
from fractaltrain.problem import build_problem, pixel_hyperparams
from fractaltrain.window import config_window
from fractaltrain.zoom import pipeline
from fractaltrain.zoom.keyframes import keyframe_grids
from fractaltrain.zoom.options import ZoomOptions
from fractaltrain.zoom.plan import ZoomPlan

TINY = {"name": "tiny", "network": {"width": 4}, "data": {"size": 12}, "training": {"steps": 30},
        "resolution": "64x64", "tile": 16}


def bits(a):
    return np.ascontiguousarray(a).view(np.int64)


@pytest.mark.parametrize("scale", ["log10", "linear"])
def test_a_child_lattice_pixel_is_its_parents_value_to_the_bit(scale):
    c, h = Fraction(1.12384426687789), Fraction(9, 2560)
    for k in range(4):
        parent = lattice_values(c, h / 2**k, 101, scale)
        child = lattice_values(c, h / 2 ** (k + 1), 101, scale)
        # child j' = 2j is parent j: indices 50 + 2j and 50 + j
        j = np.arange(-25, 26)
        assert np.array_equal(bits(child[50 + 2 * j]), bits(parent[50 + j]))
    assert power_of_two(2.0) == 1 and power_of_two(4.0) == 2 and power_of_two(1.5) is None


def test_reused_keyframes_equal_fresh_training_and_save_over_a_fifth():
    cfg = config_from_dict(TINY)
    pb = build_problem(cfg)
    plan = ZoomPlan(config_window(cfg), (0.5, 1.5), 3, 8, (32, 18), 2.0, aligned=True)
    grids = keyframe_grids(pb, plan)
    assert all(g.lattice is not None and g.width % 2 == 1 for g in grids)
    links = parents(grids)
    assert links[0] is None and all(p is not None and p.ratio == 2 for p in links[1:])
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        store = TileStore(f"{d}/tiles")
        prog = fill_grids(pb, store, grids)
        assert prog.pixels_copied == sum(shared_pixels(g, p) for g, p in zip(grids[1:], links[1:]))
        assert prog.saved_fraction() >= 0.20
        for g in grids:
            got = assemble(store, g)
            xv, yv = grid_axes(cfg, g)
            XX, YY = np.meshgrid(xv, yv)
            fresh = device.run_pixels(pb, pixel_hyperparams(cfg, XX.ravel(), YY.ravel())).reshape(got.shape)
            assert np.array_equal(bits(got), bits(fresh))
        # the grid description round-trips with its lattice (status and assemble read it back)
        g = grids[2]
        assert grid_from_identity(g.key, json.loads(json.dumps(g.identity()))) == g


def test_a_missing_parent_tile_is_trained_with_the_same_result(tmp_path):
    cfg = config_from_dict(TINY)
    pb = build_problem(cfg)
    plan = ZoomPlan(config_window(cfg), (0.5, 1.5), 1, 4, (32, 18), 2.0, aligned=True)
    grids = keyframe_grids(pb, plan)
    whole = TileStore(tmp_path / "a" / "tiles")
    fill_grids(pb, whole, grids)
    child_only = TileStore(tmp_path / "b" / "tiles")
    prog = fill_grids(pb, child_only, [grids[1]])  # no parent stored: nothing copied
    assert prog.pixels_copied == 0
    assert np.array_equal(bits(assemble(whole, grids[1])), bits(assemble(child_only, grids[1])))


def test_unaligned_factors_and_double_double_share_nothing():
    cfg = config_from_dict(TINY)
    pb = build_problem(cfg)
    with pytest.raises(ValueError):
        ZoomPlan(config_window(cfg), (0.5, 1.5), 1, 4, (32, 18), 3.0, aligned=True)
    grids = keyframe_grids(pb, ZoomPlan(config_window(cfg), (0.5, 1.5), 1, 4, (32, 18), 2.0))
    assert parent_offsets(grids[1], grids[0]) is None and parents(grids) == [None] * len(grids)


def test_a_zoom_made_before_aligned_keyframes_resumes_with_its_own_grids(tmp_path, monkeypatch):
    cfg = config_from_dict(TINY)
    opts = ZoomOptions(frames=4, size=(32, 18), depth=1.0, center=(0.5, 1.5), video=False)
    monkeypatch.setattr(pipeline, "keyframe_layout", lambda problem, plan, outdir, expect=None: plan)  # the old code
    old = pipeline.zoom(cfg, tmp_path, opts)
    monkeypatch.undo()
    assert not old.plan.aligned and old.progress.tiles_computed > 0
    again = pipeline.zoom(cfg, tmp_path, opts)
    assert not again.plan.aligned and again.progress.tiles_computed == 0  # resumed, nothing recomputed
    fresh = pipeline.zoom(cfg, tmp_path / "new", opts)
    assert fresh.plan.aligned and fresh.progress.pixels_copied > 0
    side = json.loads((tmp_path / "new" / "tiny.json").read_text())
    assert side["timing"]["pixel_steps_saved_fraction"] > 0.1 and side["zoom"]["aligned"] is True
