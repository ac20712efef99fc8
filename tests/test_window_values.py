"""Every pixel is trained at the value its coordinate names (issue 29, class 1).

The reference here is independent of :mod:`fractaltrain.window`: each pixel's
centre coordinate ``u = lo + (i + 1/2)(hi - lo)/n`` as an exact fraction, and
``10**u`` evaluated on its own in 80-digit decimal arithmetic (no geometric
sequence, no centred formula), rounded to float64 once.
"""

from __future__ import annotations

import random
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from fractaltrain.cli import app
from fractaltrain.config import config_from_dict
from fractaltrain.window import KEEP_ULPS, _centred_values, axis_values

TINY = {"network": {"width": 2}, "training": {"steps": 5}, "resolution": "16x16", "tile": 8}


def reference(lo: float, hi: float, n: int, scale: str) -> np.ndarray:
    out = np.empty(n)
    with localcontext() as ctx:
        ctx.prec = 80
        for i in range(n):
            u = Fraction(lo) + (Fraction(hi) - Fraction(lo)) * Fraction(2 * i + 1, 2 * n)
            if scale == "linear":
                out[i] = float(u)
            else:
                out[i] = float(Decimal(10) ** (Decimal(u.numerator) / Decimal(u.denominator)))
    return out


def ulps_off(values: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.abs(values - ref) / np.spacing(np.abs(ref))


def windows(seed: int, count: int):
    """Seeded windows from 600 decades wide to 1e-13 of a decade, anywhere in ±300 decades."""
    rng = random.Random(seed)
    for _ in range(count):
        width = 10.0 ** rng.uniform(-13, np.log10(600))
        centre = rng.uniform(-300 + width / 2, 300 - width / 2)
        yield centre - width / 2, centre + width / 2, rng.choice([1, 2, 7, 64, 333])


@pytest.mark.parametrize("lo,hi,n", [
    (-32.0, 6.0, 64), (-3.0, 30.0, 64), (-300.0, 300.0, 128), (-3.0, 6.0, 256), (-3.0, 6.0, 1280),
    (-1.0, 2.0, 720), (0.98945 - 1e-11, 0.98945 + 1e-11, 640), (299.0, 300.0, 5), (-300.0, -299.9, 9),
])
def test_log10_values_are_within_a_few_ulps_of_the_exact_ones(lo, hi, n):
    assert ulps_off(axis_values(lo, hi, n, "log10"), reference(lo, hi, n, "log10")).max() <= KEEP_ULPS


def test_random_windows_log10_and_linear():
    for lo, hi, n in windows(29, 150):
        assert ulps_off(axis_values(lo, hi, n, "log10"), reference(lo, hi, n, "log10")).max() <= KEEP_ULPS, (lo, hi, n)
    for lo, hi, n in [(-1.0, 1.0 + 2.0**-40, 9), (-1e300, 1e300, 64), (0.0, 1.0, 333), (-5.0, 3e-7, 4)]:
        assert ulps_off(axis_values(lo, hi, n, "linear"), reference(lo, hi, n, "linear")).max() <= KEEP_ULPS


def test_values_already_close_are_kept_bit_for_bit():
    """Where the centred formula earlier versions trained at is within 4 ulps, it is the value,
    so stored tiles and zoom keyframes stay valid."""
    for lo, hi, n in list(windows(7, 60)) + [(-3.0, 6.0, 1280), (0.5 - 1e-9, 0.5 + 1e-9, 640)]:
        ref = reference(lo, hi, n, "log10")
        with np.errstate(all="ignore"):
            old = _centred_values(lo, hi, n, "log10")
            close = ulps_off(old, ref) <= KEEP_ULPS
        new = axis_values(lo, hi, n, "log10")
        assert np.array_equal(new[close], old[close]), (lo, hi, n)
        assert np.all(ulps_off(new[~close], ref[~close]) <= 0.5)  # elsewhere correctly rounded


def test_deep_zoom_windows_keep_their_values():
    """Ten decades down, every value is the one earlier versions computed."""
    lo, hi = 0.9894553333333329 - 4e-10, 0.9894553333333329 + 4e-10
    with np.errstate(all="ignore"):
        assert np.array_equal(axis_values(lo, hi, 1280, "log10"), _centred_values(lo, hi, 1280, "log10"))


@pytest.mark.parametrize("rng", [(-32, 6), (-3, 30), (-300, 300)])
def test_wide_windows_render_at_the_right_values(tmp_path, rng):
    raw = {**TINY, "name": "wide", "axes": {"x": {"param": "lr_input", "scale": "log10", "range": list(rng)},
                                            "y": {"param": "lr_output", "scale": "log10", "range": [-3, 6]}}}
    (tmp_path / "w.yaml").write_text(yaml.safe_dump(raw))
    r = CliRunner().invoke(app, ["render", str(tmp_path / "w.yaml"), "--out", str(tmp_path / "o"), "--quiet"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    with np.load(tmp_path / "o" / "wide.npz") as d:
        assert ulps_off(d["x_values"], reference(*map(float, rng), 16, "log10")).max() <= KEEP_ULPS
        assert ulps_off(d["y_values"], reference(-3.0, 6.0, 16, "log10")).max() <= KEEP_ULPS
        assert np.all(d["x_values"] > 0)


def test_wide_window_flag_is_accepted_and_right(tmp_path):
    cfg = config_from_dict(TINY)
    assert cfg.x.scale == "log10"
    (tmp_path / "w.yaml").write_text(yaml.safe_dump({**TINY, "name": "flag"}))
    r = CliRunner().invoke(app, ["render", str(tmp_path / "w.yaml"), "--window", "-300,300,-40,6",
                                 "--out", str(tmp_path / "o"), "--quiet"], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    with np.load(tmp_path / "o" / "flag.npz") as d:
        assert ulps_off(d["x_values"], reference(-300.0, 300.0, 16, "log10")).max() <= KEEP_ULPS
        assert ulps_off(d["y_values"], reference(-40.0, 6.0, 16, "log10")).max() <= KEEP_ULPS


def test_grids_whose_values_changed_are_keyed_apart_and_old_outputs_are_this_job(tmp_path):
    """Tiles trained at the drifted values are never reused; a narrow view keeps its key; an
    output folder made before the fix is the same job, rewritten at the right values."""
    import json

    from fractaltrain.compute.landscape import make_grid
    from fractaltrain.problem import build_problem
    from fractaltrain.window import Window

    raw = {**TINY, "name": "old", "axes": {"x": {"param": "lr_input", "scale": "log10", "range": [-32, 6]},
                                           "y": {"param": "lr_output", "scale": "log10", "range": [-3, 6]}}}
    problem = build_problem(config_from_dict(raw))
    wide = make_grid(problem, Window(-32.0, 6.0, -3.0, 6.0), 16, 16, 8)
    assert wide.exact_values and wide.key != wide.earlier_key
    narrow = make_grid(problem, Window(0.5 - 1e-9, 0.5 + 1e-9, 1.0 - 1e-9, 1.0 + 1e-9), 16, 16, 8)
    assert not narrow.exact_values and narrow.key == narrow.earlier_key
    assert "values" not in narrow.identity()

    (tmp_path / "w.yaml").write_text(yaml.safe_dump(raw))
    args = ["render", str(tmp_path / "w.yaml"), "--out", str(tmp_path / "o"), "--quiet"]
    assert CliRunner().invoke(app, args, catch_exceptions=False).exit_code == 0
    side = tmp_path / "o" / "old.json"
    rec = json.loads(side.read_text())
    assert rec["grid_key"] == wide.key
    rec["grid_key"] = wide.earlier_key  # as an earlier version wrote it
    side.write_text(json.dumps(rec))
    r = CliRunner().invoke(app, args, catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    assert json.loads(side.read_text())["grid_key"] == wide.key
