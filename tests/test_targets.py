"""Target search and rounding-flip rates (issue #11): scoring, determinism, noise guard, CLI."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from fractaltrain.search import score as boundary_score
from fractaltrain.search import noise
from fractaltrain.search import targets
from fractaltrain.config import config_from_dict
from fractaltrain.search.locate import candidates, locate
from fractaltrain.problem import build_problem
from fractaltrain.window import config_window
from fractaltrain.compute.store import TileStore
from fractaltrain.zoom.guards import NoiseError
from fractaltrain.zoom.pipeline import ZoomOptions, zoom

TINY = {"name": "tiny", "network": {"width": 4}, "data": {"size": 12}, "training": {"steps": 30},
        "resolution": "64x64", "tile": 32}


def centre_score(img):
    n = img.shape[0]
    score, b, m = boundary_score.score_blocks(img, np.array([n // 2 - 1]), np.array([n // 2 - 1]), (n, n // 2))
    return float(score[0]), float(b[0]), float(m[0])


def test_score_rejects_a_bare_line_and_static_and_accepts_structure():
    n = 48
    yy, xx = np.mgrid[0:n, 0:n]
    line = np.where(xx + 0.3 * yy < 30, -1.0, 1.0)
    static = np.random.default_rng(0).choice([-1.0, 1.0], size=(n, n))
    rings = np.where(np.sin(np.hypot(xx - 23.5, yy - 23.5) / 1.6) < 0, -1.0, 1.0)  # a few nested curves
    s_line, b_line, _ = centre_score(line)
    s_static, b_static, _ = centre_score(static)
    s_rings, b_rings, m_rings = centre_score(rings)
    assert b_line < boundary_score.B_LO and s_line < 0
    assert b_static > boundary_score.B_HI and s_static < 0
    assert boundary_score.B_LO < b_rings < boundary_score.B_HI and m_rings > boundary_score.M_LO and s_rings > boundary_score.ACCEPT


def test_pick_is_deterministic_and_spreads_candidates():
    rng = np.random.default_rng(1)
    img = np.where(rng.random((64, 64)) < 0.5, -1.0, 1.0)
    a = boundary_score.pick(img, (48, 24), 8, 4, 3, None)
    assert a == boundary_score.pick(img.copy(), (48, 24), 8, 4, 3, None)
    assert len(a) == 3
    for i in range(3):
        for j in range(i):
            assert max(abs(a[i][0] - a[j][0]), abs(a[i][1] - a[j][1])) >= 4
    assert boundary_score.pick(np.ones((64, 64)), (48, 24), 8, 4, 3, None) == []


def test_level_depths_are_about_a_decade_apart():
    assert targets.level_depths(6) == [0, 1, 2, 3, 4, 5, 6]
    d = targets.level_depths(2.5)
    assert d[0] == 0 and d[-1] == 2.5 and len(d) == 4


def test_nudge_moves_exactly_k_ulps():
    v = np.array([1e-3, 1.0, 123.456, 1e6])
    out = noise.nudge(v, 4)
    np.testing.assert_array_equal(out, v + 4 * np.spacing(v))


def _sample(cfg, n: int, k: int):
    """Values of a k × k sample of the n × n grid of the opening view, as the rounding test picks it."""
    from fractaltrain.window import axis_values

    win = config_window(cfg)
    xv, yv = axis_values(win.x0, win.x1, n, cfg.x.scale), axis_values(win.y0, win.y1, n, cfg.y.scale)
    ix, iy = noise.sample_indices(n, n, k)
    gx, gy = np.meshgrid(xv[ix], yv[iy])
    return gx.ravel(), gy.ravel(), xv, yv


def test_flip_rate_of_resolved_pixels_is_small():
    cfg = config_from_dict(TINY)
    pb = build_problem(cfg)
    xs, ys, xv, yv = _sample(cfg, 64, 8)
    assert xs.size == 64
    rate = noise.flip_rate(pb, xs, ys)
    assert 0.0 <= rate <= 0.05  # the opening view is resolved
    # the rounding test of the view: the same sample, the same rate, with or without stored values
    assert noise.grid_flip_rate(pb, xv, yv, sample=8) == rate
    from fractaltrain.problem import pixel_hyperparams
    from fractaltrain.compute.kernel import run_pixels

    XX, YY = np.meshgrid(xv, yv)
    measure = run_pixels(pb, pixel_hyperparams(cfg, XX.ravel(), YY.ravel()))[:, 0].reshape(64, 64)
    assert noise.grid_flip_rate(pb, xv, yv, measure, sample=8) == rate


def test_candidates_are_distinct_on_the_boundary_and_deterministic(tmp_path):
    cfg = config_from_dict(TINY)
    pb = build_problem(cfg)
    start = config_window(cfg)
    store = TileStore(tmp_path)
    found = candidates(pb, start, 3.0, store, 2)
    assert len(found) == 2
    assert (found[0].x, found[0].y) != (found[1].x, found[1].y)
    for r in found:
        assert r.rule == "search" and len(r.levels) == 4
        assert all(lv["flip"] is not None for lv in r.levels)
        assert start.x0 <= r.x <= start.x1 and start.y0 <= r.y <= start.y1
    again = locate(pb, start, 3.0, TileStore(tmp_path / "fresh"), seed=1)
    assert (again.x, again.y) == (found[1].x, found[1].y)
    json.dumps(found[0].to_dict())


def test_moved_signs_are_kept_verified_and_recomputed_when_damaged(tmp_path):
    cfg = config_from_dict(TINY)
    pb = build_problem(cfg)
    xs, ys, _, _ = _sample(cfg, 64, 6)
    store = TileStore(tmp_path)
    first, trained = noise.moved_signs(pb, xs, ys, shift=1e-14, store=store)
    assert trained
    again, trained = noise.moved_signs(pb, xs, ys, shift=1e-14, store=store)
    assert not trained and np.array_equal(again, first)
    plain, _ = noise.moved_signs(pb, xs, ys, shift=1e-14)
    np.testing.assert_array_equal(first, plain)  # the record holds what training gives
    _, trained = noise.moved_signs(pb, xs, ys, shift=0.0, store=store)
    assert trained  # another move is another record
    for rec in (tmp_path / "moved_signs").glob("*.npz"):
        rec.write_bytes(rec.read_bytes()[:-40])  # truncated: must not be trusted
    fixed, trained = noise.moved_signs(pb, xs, ys, shift=1e-14, store=store)
    assert trained and np.array_equal(fixed, first)


def test_resumed_search_trains_nothing_again(tmp_path, monkeypatch):
    cfg = config_from_dict(TINY)
    pb = build_problem(cfg)
    start = config_window(cfg)
    first = candidates(pb, start, 3.0, TileStore(tmp_path), 2)

    def no_training(*args, **kwargs):
        raise AssertionError("a resumed search trained its rounding test again")

    monkeypatch.setattr(noise, "signs_of", no_training)
    again = candidates(pb, start, 3.0, TileStore(tmp_path), 2)
    assert [r.to_dict() | {"pixels_trained": 0} for r in again] == [r.to_dict() | {"pixels_trained": 0} for r in first]
    assert all(r.pixels == 0 for r in again)


def test_zoom_noise_guard_stops_and_allow_noise_goes_on(tmp_path, monkeypatch):
    cfg = config_from_dict({**TINY, "precision": "float64"})  # auto would go on in double-double (below)
    opts = ZoomOptions(frames=4, size=(16, 16), depth=1.0, center=(1.0, 1.0), video=False)
    monkeypatch.setattr(noise, "NOISE_MAX", -1.0)  # every keyframe counts as noisy
    with pytest.raises(NoiseError) as exc:
        zoom(cfg, tmp_path, opts)
    assert exc.value.reached == 0.0 and "0.00 decades" in str(exc.value)
    assert not (tmp_path / "jobs").exists()  # nothing computed
    res = zoom(cfg, tmp_path, ZoomOptions(**{**opts.__dict__, "allow_noise": True}))
    side = json.loads(res.json.read_text())
    rates = side["noise"]["flip_rates"]
    assert len(rates) == res.plan.n_keyframes and side["noise"]["first_noisy_keyframe"] == 0
    assert all(0.0 <= r <= 1.0 for r in rates)
    assert len(json.loads((tmp_path / "noise.json").read_text())) == res.plan.n_keyframes


def test_auto_precision_moves_noisy_keyframes_to_double_double(tmp_path, monkeypatch):
    """Where float64's rounding decides the signs, auto trains that keyframe and the deeper ones in double-double."""
    cfg = config_from_dict(TINY)
    opts = ZoomOptions(frames=4, size=(16, 16), depth=1.0, center=(1.0, 1.0), video=False)
    real = noise.keyframe_flip_rates

    def float64_is_noise(problem, windows, width, height, precisions=None, **kw):
        rates = real(problem, windows, width, height, precisions=precisions, **kw)
        return [1.0 if (precisions or ["float64"])[k] == "float64" and k >= 0 else r for k, r in enumerate(rates)]

    monkeypatch.setattr(noise, "keyframe_flip_rates", float64_is_noise)
    res = zoom(cfg, tmp_path, opts)
    side = json.loads(res.json.read_text())
    assert side["noise"]["first_noisy_keyframe"] is None
    idents = [json.loads((tmp_path / "tiles" / k / "grid.json").read_text()) for k in side["keyframe_grid_keys"]]
    assert all(i.get("precision") == "double-double" for i in idents)
    again = zoom(cfg, tmp_path, opts)  # resumes: the rates are kept, the same grids chosen, nothing trained
    assert again.progress.tiles_computed == 0


def test_cli_locate_candidates_and_bad_input(tmp_path):
    import yaml
    from typer.testing import CliRunner

    from fractaltrain.cli import app

    cfgp = tmp_path / "tiny.yaml"
    cfgp.write_text(yaml.safe_dump(TINY))
    r = CliRunner().invoke(app, ["locate", str(cfgp), "--depth", "2", "--candidates", "2", "--out",
                                 str(tmp_path / "o"), "--size", "64x64"])
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.stdout.splitlines() if "score" in ln]
    assert len(lines) == 2 and "flip rate" in lines[0]
    r = CliRunner().invoke(app, ["locate", str(cfgp), "--candidates", "-1"])
    assert r.exit_code == 2 and "--candidates" in r.output
    assert math.isfinite(1.0)


@pytest.fixture
def restore_threads():
    import numba

    old = numba.get_num_threads()
    yield numba.config.NUMBA_NUM_THREADS
    numba.set_num_threads(old)


def test_target_does_not_depend_on_the_thread_count(tmp_path, restore_threads):
    """The target is a pure function of (config, view, depth, seed): 1 thread and all threads agree."""
    import numba

    cfg = config_from_dict(TINY)
    pb = build_problem(cfg)
    start = config_window(cfg)
    numba.set_num_threads(1)
    one = candidates(pb, start, 2.0, TileStore(tmp_path / "one"), 2)
    numba.set_num_threads(restore_threads)
    many = candidates(pb, start, 2.0, TileStore(tmp_path / "many"), 2)
    assert one == many  # points, per-level scores and flip rates, windows
    assert [r.to_dict()["levels"] for r in one] == [r.to_dict()["levels"] for r in many]


def test_locate_cli_and_zoom_find_the_same_target(tmp_path, restore_threads):
    """`locate` (1 thread, as the Slurm locate job runs it) and zoom's own search (all threads) agree."""
    import yaml
    from typer.testing import CliRunner

    from fractaltrain.cli import app

    cfgp = tmp_path / "tiny.yaml"
    cfgp.write_text(yaml.safe_dump(TINY))
    common = ["--depth", "1.5", "--size", "32x20", "--quiet"]
    r = CliRunner().invoke(app, ["locate", str(cfgp), "--out", str(tmp_path / "l"), "--threads", "1", *common])
    assert r.exit_code == 0, r.output
    x, y = (float(v) for v in r.stdout.splitlines()[0].split(","))
    r = CliRunner().invoke(app, ["zoom", str(cfgp), "--out", str(tmp_path / "z"), "--frames", "4", "--keyframes-only",
                                 "--center", "auto", "--threads", str(restore_threads), *common])
    assert r.exit_code == 0, r.output
    side = json.loads((tmp_path / "z" / "tiny.json").read_text())
    assert (side["target"]["x"], side["target"]["y"]) == (x, y)


def test_target_stays_inside_the_config_view(tmp_path):
    """The opening view is widened to the video's aspect; the target must stay in the config's own ranges."""
    from fractaltrain.zoom.plan import outer_window

    cfg = config_from_dict(TINY)
    pb = build_problem(cfg)
    view = config_window(cfg)
    wide = outer_window(view, cfg.resolution, (1280, 180))  # far wider than the square view
    assert wide.x0 < view.x0 - view.width
    found = candidates(pb, wide, 1.0, TileStore(tmp_path), 3, bounds=view)
    for r in found:
        for lv in r.levels:
            assert view.x0 <= lv["x"] <= view.x1 and view.y0 <= lv["y"] <= view.y1


def test_scan_of_a_wide_opening_view(tmp_path):
    """A 16:9 opening view (as locate widens the config's view): the scan's image is not square."""
    from fractaltrain.zoom.plan import outer_window

    cfg = config_from_dict(TINY)
    pb = build_problem(cfg)
    start = outer_window(config_window(cfg), cfg.resolution, (64, 36))
    found = candidates(pb, start, 3.0, TileStore(tmp_path), 1, bounds=config_window(cfg))[0]
    assert found.rule == "search" and len(found.levels) == 4
    assert all(lv["flip"] is not None for lv in found.levels)
    assert found.levels[0]["x"] == found.levels[1]["x"]  # levels 0-1 sit on the scanned point
    w = config_window(cfg)
    assert w.x0 <= found.x <= w.x1 and w.y0 <= found.y <= w.y1


def test_tiers_fall_back_to_the_exact_band(tmp_path, monkeypatch):
    """When no branch meets the first tier's score, the next tier's (here: any score in the band) is used."""
    cfg = config_from_dict(TINY)
    pb = build_problem(cfg)
    start = config_window(cfg)
    first = candidates(pb, start, 3.0, TileStore(tmp_path), 1)[0]
    assert first.strict and first.tier == (2.0, boundary_score.ACCEPT, "sampled")
    monkeypatch.setattr(targets, "TIERS", ((2.0, 1e9, "sampled"), (2.0, 0.0, "sampled")))  # nothing scores 1e9
    found = candidates(pb, start, 3.0, TileStore(tmp_path), 1)[0]  # same store: only the search is new
    assert found.strict and found.tier == (2.0, 0.0, "sampled")
    assert min(lv["score"] for lv in found.levels if lv["depth"] >= 2.0) >= 0.0
    assert found.to_dict()["tier"] == {"judged_from": 2.0, "accept": 0.0, "scan": "sampled"}


def test_strict_target_is_verified_on_the_windows_centred_on_it(tmp_path, monkeypatch):
    """The windows a zoom (or an acceptance check) centres on the target lie in the band at every judged
    depth; when they cannot (a band nothing meets), the target is only a relaxed fallback."""
    from fractaltrain.dimension.boxcount import boundary_mask
    from fractaltrain.compute.landscape import assemble, fill_grids, make_grid
    from fractaltrain.compute.kernel import OUT_MEASURE
    from fractaltrain.window import Window

    cfg = config_from_dict(TINY)
    pb = build_problem(cfg)
    start = config_window(cfg)
    store = TileStore(tmp_path)
    found = candidates(pb, start, 3.0, store, 1)[0]
    assert found.strict
    for d in (2.0, 3.0):
        s = 10.0**d
        win = Window.around(found.x, found.y, 0.5 * start.width / s, 0.5 * start.height / s)
        grid = make_grid(pb, win, targets.CHECK, targets.CHECK, targets.CHECK)
        fill_grids(pb, store, [grid])
        v = assemble(store, grid)[..., OUT_MEASURE]
        assert 0.05 <= boundary_mask(v).mean() <= 0.35
        assert min(np.mean(v < 0), np.mean(v > 0)) >= 0.05
    monkeypatch.setattr(targets, "B_LO", 0.99)  # the verification's band only: no window has 99% sign changes
    monkeypatch.setattr(targets, "TIERS", ((2.0, boundary_score.ACCEPT, "sampled"),))  # one pass, a small budget: the test's cost
    monkeypatch.setattr(targets, "BUDGET", 4)
    relaxed = candidates(pb, start, 3.0, store, 1)[0]
    assert not relaxed.strict


def test_scan_windows_scores_exactly_the_windows_centred_on_its_hits(tmp_path):
    """Every hit of the exhaustive scan is the CHECK-pixel window a zoom (or an acceptance check) centred on
    it renders, pixel for pixel: its share of sign-change blocks and its rarer phase are the same."""
    from fractaltrain.search import scan as window_scan
    from fractaltrain.dimension.boxcount import boundary_mask
    from fractaltrain.compute.kernel import OUT_MEASURE
    from fractaltrain.compute.landscape import assemble, fill_grids, make_grid
    from fractaltrain.window import Window

    cfg = config_from_dict(TINY)
    pb = build_problem(cfg)
    start = config_window(cfg)
    store = TileStore(tmp_path)
    res = window_scan.scan_windows(pb, store, start, 1.0, targets.CHECK, (targets.CHECK,), -math.inf)
    assert res.skipped is None and len(res.hits) > 20 and res.pixels > 0
    scores = [h[0] for h in res.hits]
    assert scores == sorted(scores, reverse=True)
    for score, b, m, x, y in res.hits[:: max(1, len(res.hits) // 8)]:
        win = Window.around(x, y, 0.5 * start.width / 10.0, 0.5 * start.height / 10.0)
        grid = make_grid(pb, win, targets.CHECK, targets.CHECK, targets.CHECK)
        fill_grids(pb, store, [grid])
        v = assemble(store, grid)[..., OUT_MEASURE]
        assert b == pytest.approx(boundary_mask(v).mean(), abs=1e-12)
        assert m == pytest.approx(min(np.mean(v < 0), np.mean(v > 0)), abs=1e-12)
    again = window_scan.scan_windows(pb, store, start, 1.0, targets.CHECK, (targets.CHECK,), -math.inf)
    assert again.hits == res.hits  # deterministic, and from the store the second time
    inside = Window(start.x0, 0.5 * (start.x0 + start.x1), start.y0, start.y1)
    bounded = window_scan.scan_windows(pb, store, start, 1.0, targets.CHECK, (targets.CHECK,), -math.inf, inside)
    assert bounded.hits and all(inside.x0 <= h[3] <= inside.x1 for h in bounded.hits)


def test_scan_windows_refuses_a_scan_beyond_its_limits(tmp_path):
    from fractaltrain.search import scan as window_scan

    cfg = config_from_dict(TINY)
    res = window_scan.scan_windows(build_problem(cfg), TileStore(tmp_path), config_window(cfg), 3.0,
                                   targets.CHECK, (targets.CHECK,), 0.0)
    assert res.hits == [] and res.pixels == 0 and "48000 pixels across" in res.skipped


def test_every_window_tier_starts_from_the_exhaustive_scan(tmp_path, monkeypatch):
    """When the sampled tiers find nothing, the tier that scores every window of the first judged level
    finds a strict target, verified on the windows centred on it, and says so in its record."""
    cfg = config_from_dict(TINY)
    pb = build_problem(cfg)
    start = config_window(cfg)
    monkeypatch.setattr(targets, "TIERS", ((1.5, 1e9, "sampled"), (1.5, 0.0, "every")))  # nothing scores 1e9
    found = candidates(pb, start, 2.5, TileStore(tmp_path), 1)[0]
    assert found.strict and found.tier == (1.5, 0.0, "every")
    assert found.to_dict()["tier"]["scan"] == "every"
    first, second = found.levels[0], found.levels[1]
    assert (first["x"], first["y"]) == (second["x"], second["y"])  # both at the scanned window's centre
    assert min(lv["score"] for lv in found.levels if lv["depth"] >= 1.5) >= 0.0
    again = candidates(pb, start, 2.5, TileStore(tmp_path), 1)[0]
    assert (again.x, again.y) == (found.x, found.y)


def test_search_records_match_those_made_before_the_level_one_images_were_deferred(tmp_path):
    """The scan's starts render their level-1 images only for a target that holds them (search.path.Deferred).

    Why pinned: the deferral changes only what is trained, never which branches
    the search takes (each deferred image is still charged to the budget), so
    every target and every per-level record must equal what the search gave
    when it rendered them all up front (tests/fixtures/search_targets.json,
    made at the commit before).  One case ends with the budget spent and
    greedy completions, where a deferred start is completed without a render.
    """
    cases = json.loads((Path(__file__).parent / "fixtures" / "search_targets.json").read_text())["cases"]
    cfg = config_from_dict(TINY)
    pb = build_problem(cfg)
    args = {"tiny_d3_x3": (3.0, 3, None), "tiny_d4_budget3_x2": (4.0, 2, 3)}
    for name, want in cases.items():
        depth, count, budget = args[name]
        found = candidates(pb, config_window(cfg), depth, TileStore(tmp_path / name), count, budget=budget)
        got = [{k: v for k, v in r.to_dict().items() if k not in ("pixels_trained", "search")} for r in found]
        assert json.loads(json.dumps(got)) == want, name
