"""Past float64: exact decimal coordinates, the precision rule, double-double tiles and zooms."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import yaml

from fractaltrain.compute.store import Grid, grid_from_identity
from fractaltrain.config import ConfigError, config_from_dict, with_overrides
from fractaltrain.precision import DOUBLE_DOUBLE, FLOAT64, PrecisionError, exact_values, resolve
from fractaltrain.window import Window, decimal_string, parse_coordinate
from test_hard_input import assert_one_line_error, cli

SMALL = {"network": {"width": 4, "depth": 2}, "data": {"size": 8, "seed": 0}, "training": {"steps": 30, "seed": 0},
         "resolution": "8x8", "tile": 8, "name": "small"}
X = "1.226714096703170021537918683233539470649546788"  # 46 characters: a boundary point of SMALL at 200 steps
Y = "1.000000000000000000000000000000000000000000000"


def deep_window(width: str) -> str:
    """``--window`` text of a square of ``width`` decades around (X, Y), edges as long decimals."""
    w = Fraction(width)
    x, y = parse_coordinate(X), parse_coordinate(Y)
    return ",".join(decimal_string(v) for v in (x - w / 2, x + w / 2, y - w / 2, y + w / 2))


def test_coordinates_are_read_exactly():
    q = parse_coordinate("0.105506778255164830779938819115608235584e1")
    assert q == Fraction(105506778255164830779938819115608235584, 10**38)
    assert decimal_string(q) == "1.05506778255164830779938819115608235584"
    assert decimal_string(Fraction(0.1)).startswith("0.1000000000000000055511151231257827")
    for bad in ("nan", "inf", "1e500", "0x10", "", "1" * 300):
        with pytest.raises(ValueError):
            parse_coordinate(bad)


def test_a_decimal_a_float64_would_round_is_read_exactly():
    """Up to 15 digits a coordinate means its float64, and so does a float's own 16-17-digit repr; any other
    16-17-digit decimal is exact (it was once rounded: a window 1e-16 wide around 1 lost half its height)."""
    from fractaltrain.config.values import as_coordinate

    for text in ("0.99999999999999995", "1.00000000000000005", "0.12345678901234567", "1.226714096703170022"):
        assert as_coordinate(text, "w") == parse_coordinate(text)
    for f in (0.1 + 0.2, 1 / 3, 1.2267140967031700, 2.0 ** -60, 1e-16):
        assert as_coordinate(repr(f), "w") == Fraction(f)
    for text in ("0.1", "1.3e1", "0.123456789012345", "1.2267140967031700"):
        assert as_coordinate(text, "w") == Fraction(float(text))
    cfg = with_overrides(config_from_dict(SMALL), window="1,2,0.99999999999999995,1.00000000000000005")
    assert cfg.y.exact == (Fraction(1, 1) - Fraction(5, 10**17), Fraction(1, 1) + Fraction(5, 10**17))


def test_windows_from_floats_are_unchanged():
    assert Window(0.5, 0.6, 1.5, 1.6, exact=(0.5, 0.6, 1.5, 1.6)) == Window(0.5, 0.6, 1.5, 1.6)
    deep = Window.from_edges(parse_coordinate(X), parse_coordinate(X) + Fraction(1, 10**25), 0, 1)
    assert deep.x0 == deep.x1 and deep.exact is not None  # float64 cannot hold it; the exact edges can
    assert deep.width == pytest.approx(1e-25)
    assert Window.around(0.25, 1.0, 0.5, 0.5) == Window(-0.25, 0.75, 0.5, 1.5)


def test_the_precision_rule():
    wide = Window(-3.0, 6.0, -3.0, 6.0)
    assert resolve("auto", wide, 256, 256, ("log10", "log10")) == FLOAT64
    assert resolve("double-double", wide, 256, 256, ("log10", "log10")) == DOUBLE_DOUBLE
    c = parse_coordinate(X)
    for width, ok in ((1e-10, FLOAT64), (1e-16, DOUBLE_DOUBLE), (1e-26, DOUBLE_DOUBLE)):
        win = Window.around(c, c, Fraction(width) / 2, Fraction(width) / 2)
        assert resolve("auto", win, 16, 16, ("log10", "log10")) == ok
    deep = Window.around(c, c, Fraction(1, 2 * 10**20), Fraction(1, 2 * 10**20))
    with pytest.raises(PrecisionError, match="float64 cannot tell"):
        resolve("float64", deep, 16, 16, ("log10", "log10"))
    too_deep = Window.around(c, c, Fraction(1, 2 * 10**33), Fraction(1, 2 * 10**33))
    with pytest.raises(PrecisionError, match="even double-double"):
        resolve("auto", too_deep, 16, 16, ("log10", "log10"))


def test_exact_values_are_ten_to_the_pixel_centre():
    from decimal import Decimal, localcontext

    lo, hi = parse_coordinate(X), parse_coordinate(X) + Fraction(1, 10**24)
    vals = exact_values(lo, hi, 5, "log10")
    with localcontext() as ctx:
        ctx.prec = 80
        for i, v in enumerate(vals):
            u = lo + (i + Fraction(1, 2)) * (hi - lo) / 5
            ref = Decimal(10) ** (Decimal(u.numerator) / Decimal(u.denominator))
            assert abs(v / ref - 1) < Decimal("1e-55")


def test_config_precision_and_exact_ranges_round_trip():
    cfg = config_from_dict({**SMALL, "precision": "double-double",
                            "axes": {"x": {"param": "lr_input", "range": [X, "1.3"]}}})
    assert cfg.precision == DOUBLE_DOUBLE and cfg.x.exact[0] == parse_coordinate(X)
    again = config_from_dict(cfg.to_dict())
    assert again == cfg
    plain = config_from_dict(SMALL)
    assert "precision" not in plain.to_dict()  # configs that never chose keep their manifest dicts
    with pytest.raises(ConfigError, match="precision: must be one of"):
        config_from_dict({**SMALL, "precision": "quad"})


def test_float64_refused_below_its_floor_with_one_line(tmp_path):
    cfg_path = tmp_path / "small.yaml"
    cfg_path.write_text(yaml.safe_dump(SMALL))
    code, _, err = cli("render", cfg_path, "--window", deep_window("1e-20"), "--precision", "float64",
                       "--out", tmp_path / "out")
    assert_one_line_error(code, err, "--window", "float64")
    assert not (tmp_path / "out" / "small.npz").exists()
    with pytest.raises(ConfigError):
        with_overrides(config_from_dict(SMALL), window=deep_window("1e-34"))


def test_double_double_render_records_and_resumes(tmp_path):
    cfg_path = tmp_path / "small.yaml"
    cfg_path.write_text(yaml.safe_dump(SMALL))
    out = tmp_path / "out"
    args = ("render", cfg_path, "--window", deep_window("1e-20"), "--out", out, "--quiet")
    code, _, err = cli(*args)
    assert code == 0, err
    d = np.load(out / "small.npz")
    assert str(d["precision"]) == DOUBLE_DOUBLE
    assert d["x_values"].shape == d["x_values_lo"].shape == (8,)
    assert list(d["window_exact"])[0] == deep_window("1e-20").split(",")[0]
    assert np.all(np.diff(d["x_values"] + d["x_values_lo"] * 0) >= 0) and np.any(d["x_values_lo"] != 0)
    side = json.loads((out / "small.json").read_text())
    assert side["window"]["precision"] == DOUBLE_DOUBLE
    assert side["window"]["exact"]["x"][0] == deep_window("1e-20").split(",")[0]
    ident = json.loads(next((out / "tiles").glob("*/grid.json")).read_text())
    grid = grid_from_identity(side["grid_key"], ident)
    assert grid is not None and grid.double_double and grid.window.exact is not None
    before = {p: p.stat().st_mtime_ns for p in (out / "tiles").rglob("*.npz")}
    code, _, err = cli(*args)
    assert code == 0 and {p: p.stat().st_mtime_ns for p in (out / "tiles").rglob("*.npz")} == before


def test_float64_grids_keep_their_keys():
    g = Grid("p", Window(-3.0, 6.0, -3.0, 6.0), 16, 16, 8)
    assert "precision" not in g.identity() and "window_exact" not in g.identity()


def test_zoom_plans_reach_past_float64():
    from fractaltrain.problem import build_problem
    from fractaltrain.zoom.guards import max_depth
    from fractaltrain.zoom.keyframes import keyframe_grids
    from fractaltrain.zoom.plan import ZoomPlan, outer_window
    from fractaltrain.window import config_window

    cfg = config_from_dict(SMALL)
    outer = outer_window(config_window(cfg), cfg.resolution, (8, 8))
    plan = ZoomPlan(outer, (parse_coordinate(X), parse_coordinate(Y)), 24.0, 10, (8, 8), 16.0)
    assert 24 < max_depth(plan, cfg) < 33
    assert max_depth(plan, cfg, "float64") < 16
    grids = keyframe_grids(build_problem(cfg), plan)
    kinds = [g.precision for g in grids]
    assert kinds[0] == FLOAT64 and kinds[-1] == DOUBLE_DOUBLE
    assert kinds == sorted(kinds, key=lambda k: k == DOUBLE_DOUBLE)  # float64 first, then double-double
    assert grids[-1].window.exact is not None and grids[-1].window.width == pytest.approx(outer.width / 16.0 ** 20)
    assert [g.precision for g in keyframe_grids(build_problem(cfg), plan, dd_from=3)][3] == DOUBLE_DOUBLE


@pytest.mark.slow
def test_a_zoom_24_decades_deep_switches_to_double_double(tmp_path):
    cfg_path = tmp_path / "small.yaml"
    cfg_path.write_text(yaml.safe_dump({**SMALL, "training": {"steps": 20}}))
    out = tmp_path / "zoom"
    code, stdout, err = cli("zoom", cfg_path, "--center", f"{X},{Y}", "--depth", "24", "--keyframes-only",
                            "--size", "4x4", "--keyframe-factor", "16", "--out", out, "--quiet")
    assert code == 0, err
    side = json.loads((out / "small.json").read_text())
    assert side["zoom"]["target_exact"][0] == X.rstrip("0")
    manifest = json.loads(next((out / "jobs").glob("*.json")).read_text())
    assert manifest["options"]["center"][0] == X.rstrip("0")
    kinds = [json.loads(p.read_text()).get("precision", FLOAT64) for p in
             sorted((out / "tiles").glob("*/grid.json"))]
    assert DOUBLE_DOUBLE in kinds and FLOAT64 in kinds
    code, _, err = cli("assemble", out, "--quiet")
    assert code == 0, err


def test_locate_follows_the_boundary_below_float64(tmp_path):
    """Below the float64 search, the point is followed in exact coordinates, one sign change per level."""
    from fractaltrain.compute.store import TileStore
    from fractaltrain.problem import build_problem
    from fractaltrain.search.deep import deepen
    from fractaltrain.window import config_window

    cfg = config_from_dict({**SMALL, "training": {"steps": 200, "seed": 0}})
    start = config_window(cfg)
    x, y = parse_coordinate(X), parse_coordinate(Y)
    px, py, wins = deepen(build_problem(cfg), start, x, y, 14.0, 18.0, TileStore(tmp_path / "tiles"))
    assert len(wins) == 5 and all(w.exact is not None for w in wins[-2:])
    assert abs(px - x) <= Fraction(wins[0].width)  # each level moves it less than half the level's window
    assert "/" not in decimal_string(px) and len(decimal_string(px)) > 30


def test_views_and_zoom_targets_in_long_decimals():
    """A view written in decimal strings is read exactly, renders, and a zoom heads for its exact centre."""
    from fractaltrain.config import view_window
    from fractaltrain.zoom.options import ZoomOptions
    from fractaltrain.zoom.pipeline import resolve_target
    from fractaltrain.zoom.plan import outer_window
    from fractaltrain.window import config_window

    x, y = parse_coordinate(X), parse_coordinate(Y)
    w = Fraction(1, 10**22)
    edges = [decimal_string(v) for v in (x - w, x + w, y - w, y + w)]
    cfg = config_from_dict({**SMALL, "views": {"deep": {"x": edges[:2], "y": edges[2:]}}, "zoom_target": "deep"})
    assert view_window(cfg, "deep") == (x - w, x + w, y - w, y + w)
    assert config_from_dict(cfg.to_dict()) == cfg
    rendered = with_overrides(cfg, window="deep")
    assert rendered.x.exact == (x - w, x + w)
    outer = outer_window(config_window(cfg), cfg.resolution, (8, 8))
    opts = resolve_target(cfg, ZoomOptions(frames=2, size=(8, 8)), outer)
    assert opts.center == (x, y) and 21 < opts.depth < 23
    plain = config_from_dict({**SMALL, "views": {"v": {"x": [1.0, 2.0], "y": [1.0, 2.0]}}})
    assert plain.view("v").exact is None and all(isinstance(v, float) for v in view_window(plain, "v"))


def test_render_moves_to_double_double_where_float64_rounding_decides(tmp_path, monkeypatch):
    """Near float64's floor a render under auto takes the rounding test, as zoom's keyframes do."""
    from fractaltrain.render.still import render
    from fractaltrain.search import noise

    real = noise.grid_flip_rate
    monkeypatch.setattr(noise, "grid_flip_rate",
                        lambda problem, xv, yv, *a, **k: 1.0 if np.ndim(xv) == 1 else real(problem, xv, yv, *a, **k))
    near = with_overrides(config_from_dict(SMALL), window=deep_window("1e-12"))
    far = with_overrides(config_from_dict({**SMALL, "name": "far"}), window="0,1,0,1")
    (tmp_path / "o").mkdir()
    assert render(near, tmp_path / "o").grid.double_double
    assert "noise.json" in {p.name for p in (tmp_path / "o").iterdir()}
    assert not render(far, tmp_path / "o").grid.double_double  # far from the floor: no test, float64
    code, _, err = cli("assemble", tmp_path / "o", "--quiet")  # replays the recorded (double-double) grid
    assert code == 0, err


def test_ensemble_members_follow_the_first_into_double_double(tmp_path, monkeypatch):
    from fractaltrain.render.ensemble import render_ensemble
    from fractaltrain.search import noise

    real = noise.grid_flip_rate
    monkeypatch.setattr(noise, "grid_flip_rate",
                        lambda problem, xv, yv, *a, **k: 1.0 if np.ndim(xv) == 1 else real(problem, xv, yv, *a, **k))
    cfg = with_overrides(config_from_dict({**SMALL, "ensemble": 2}), window=deep_window("1e-12"))
    (tmp_path / "o").mkdir()
    res = render_ensemble(cfg, tmp_path / "o")
    assert all(g.double_double for g in res.grids)


def test_spacing_ulps_equals_a_pairwise_running_minimum():
    """spacing_ulps works on arrays (a zoom's depth check calls it ~60 times on 2,561-pixel axes); its
    figure must be the plain pairwise definition's, NaN gaps (values past float64's range) skipped."""
    import math
    import random
    from decimal import localcontext
    from fractions import Fraction as F

    from fractaltrain.precision import EXACT_DIGITS, exact_values, spacing_ulps

    def plain(lo, hi, n, scale):
        best = math.inf
        values = exact_values(lo, hi, n, scale)
        with localcontext() as ctx:
            ctx.prec = EXACT_DIGITS
            for a, b in zip(values, values[1:]):
                big = max(abs(float(a)), abs(float(b)))
                best = min(best, float(abs(b - a)) / float(np.spacing(big)))
        return best

    rng = random.Random(1)
    for _ in range(60):
        lo = F(rng.randint(-10**6, 10**6), 10 ** rng.randint(0, 5))
        hi = lo + F(rng.randint(1, 1000), 10 ** rng.randint(0, 30))
        n, scale = rng.choice([1, 2, 3, 17, 64, 257]), rng.choice(["linear", "log10"])
        got, want = spacing_ulps(lo, hi, n, scale), plain(lo, hi, n, scale)
        assert got == want or (math.isnan(got) and math.isnan(want)), (lo, hi, n, scale)
