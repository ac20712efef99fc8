"""scripts/deep_reference.py, the Decimal trainer that checks kernels past float64, checked itself.

The reference is only worth anything if it trains the same networks as the
float64 kernel: at shallow windows, where float64 is exact enough, the two must
give the same signs and, away from the boundary, the same measures to float64's
rounding.  These run on tiny networks (width 4, 8 points, tens of steps) so the
pure-Python Decimal arithmetic stays within a few seconds.
"""

import math
import sys
from decimal import Context, Decimal, localcontext
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import deep_reference as dr  # noqa: E402
from fractaltrain import columns  # noqa: E402
from fractaltrain.compute.kernel import run_pixels  # noqa: E402
from fractaltrain.config import config_from_dict  # noqa: E402
from fractaltrain.problem import build_problem, pixel_hyperparams  # noqa: E402
from fractaltrain.window import axis_values, exact_axis_values  # noqa: E402

TANH = {
    "rng": "pcg64",
    "network": {"width": 4, "depth": 2, "nonlinearity": "tanh", "output_dim": 1, "seed": 0},
    "data": {"size": 8, "seed": 0},
    "training": {"steps": 50, "batch": "full", "seed": 0},
    "axes": {"x": {"param": "lr_input", "scale": "log10", "range": [-3, 6]},
             "y": {"param": "lr_output", "scale": "log10", "range": [-3, 6]}},
}
# minibatch, ReLU, three layers, two outputs
RELU_MINIBATCH = {**TANH, "network": {"width": 4, "depth": 3, "nonlinearity": "relu", "output_dim": 2, "seed": 1},
                  "data": {"size": 8, "seed": 1}, "training": {"steps": 40, "batch": 4, "seed": 3}}
# the notebook's draws, the per-step W0 drift, one shared rate, a fixed init scale
OFFSET = {**TANH, "rng": "notebook", "fixed": {"init_scale": 0.7},
          "axes": {"x": {"param": "offset_drift", "scale": "log10", "range": [-3, 6]},
                   "y": {"param": "lr", "scale": "log10", "range": [-3, 6]}}}


def kernel_grid(cfg, n):
    """The float64 kernel's (n, n, 4) results over the config's axes, row r = y pixel r."""
    xv = axis_values(*cfg.x.range, n, cfg.x.scale)
    yv = axis_values(*cfg.y.range, n, cfg.y.scale)
    XX, YY = np.meshgrid(xv, yv)
    return run_pixels(build_problem(cfg), pixel_hyperparams(cfg, XX.ravel(), YY.ravel())).reshape(n, n, -1)


def window_strings(cfg):
    return tuple(repr(float(v)) for v in (*cfg.x.range, *cfg.y.range))


@pytest.mark.parametrize("raw,n", [(TANH, 6), (RELU_MINIBATCH, 4), (OFFSET, 4)], ids=["tanh", "relu_minibatch_depth3", "offset_drift"])
def test_agrees_with_float64_kernel_at_a_shallow_window(raw, n):
    cfg = config_from_dict(raw)
    ours = kernel_grid(cfg, n)
    ref = dr.render_reference(cfg, window_strings(cfg), n, n, processes=1)
    assert ref.shape == ours.shape
    agree = np.mean((ref[..., columns.OUT_MEASURE] > 0) == (ours[..., columns.OUT_MEASURE] > 0))
    assert agree >= 0.95, agree
    # away from the boundary float64 is exact enough: the measures agree to its rounding
    rel = np.abs(ref[..., 0] - ours[..., 0]) / np.abs(ref[..., 0])
    assert np.mean(rel < 1e-9) >= 0.8, np.sort(rel.ravel())


def test_measure_constants_and_column_layout_match_the_package():
    assert float(dr.MAXV) == columns.MAXV and dr.TAIL == columns.TAIL
    assert (dr.OUT_MEASURE, dr.OUT_FINAL, dr.OUT_PROBE, dr.OUT_STEPS, dr.N_OUT) == (
        columns.OUT_MEASURE, columns.OUT_FINAL, columns.OUT_PROBE, columns.OUT_STEPS, columns.N_OUT)
    assert dr.FLOAT64_OVERFLOW == Decimal(2**1024 - 2**970)
    with localcontext(Context(prec=400)):
        assert float(dr.FLOAT64_OVERFLOW.next_minus()) == np.finfo(np.float64).max  # below it rounds to max
    assert float(dr.FLOAT64_OVERFLOW) == math.inf


def test_constants_are_exact_not_float64():
    cfg = config_from_dict({**TANH, "network": {**TANH["network"], "width": 3, "depth": 3}})
    pb = build_problem(cfg)
    dp = dr.decimal_problem(pb, 80)
    a0, a1, out = dp.alphas
    with localcontext(Context(prec=200)):  # checks exact to far past the 80 digits
        # sqrt(2/3) to 80 digits: its square is 2/3 to about 1e-80, where float64's is off by 1e-16
        assert abs(a0 * a0 * 3 - 2) < Decimal("1e-78") and abs(a1 * a1 * 3 - 2) < Decimal("1e-78")
        assert abs(Decimal(float(pb.alphas[0])) ** 2 * 3 - 2) > Decimal("1e-20")
        assert abs(out * 3 - 1) < Decimal("1e-79")
    assert [float(a) for a in dp.alphas] == pytest.approx(list(pb.alphas), rel=3e-16)  # the same constants
    # the drawn arrays convert exactly
    assert float(dp.X[2][1]) == pb.X[2, 1] and Decimal(float(pb.X[2, 1])) == dp.X[2][1]
    assert dp.weights[1][0][2] == Decimal(float(pb.weights[1][2, 0]))  # columns [j][k]


def test_axis_values_are_the_exact_pixel_centres():
    for lo, hi, n, scale in ((-3.0, 6.0, 7, "log10"), (-2.0, 2.0, 5, "linear"), (0.1, 0.1000001, 9, "log10")):
        ours = dr.axis_decimal_values(repr(lo), repr(hi), n, scale)
        assert [float(v) for v in ours] == list(exact_axis_values(lo, hi, n, scale))
    # a window 1e-26 decades wide at a 39-digit centre: far beyond float64, pixels still apart
    centre = Decimal("0.105506778255164830779938819115608235584e1")
    half = Decimal("5e-27")
    vals = dr.axis_decimal_values(str(centre - half), str(centre + half), 4, "log10")
    with localcontext(Context(prec=120)):
        steps = [b - a for a, b in zip(vals, vals[1:])]
        assert all(s > 0 for s in steps)
        # spacing 10**u · ln 10 · Δu to first order (relative error about Δu), Δu = 2.5e-27
        expected = vals[0] * Decimal(10).ln() * Decimal("2.5e-27")
        assert abs(steps[0] / expected - 1) < Decimal("1e-25")
    u = Fraction(str(centre - half)) + Fraction(1, 8) * Fraction(str(2 * half))
    assert vals[0] == dr.axis_value(u, "log10")
    assert dr.axis_value(Fraction(3), "log10") == 1000 and dr.axis_value(Fraction(-1, 2), "linear") == Decimal("-0.5")


def test_tanh_keeps_relative_precision_near_zero_and_when_saturated():
    ctx = dr.working_context(60)
    with localcontext(Context(prec=120)):
        x = Decimal("1e-30")
        a, d = dr.tanh_pair(x, ctx)
        assert abs(a / (x - x**3 / 3) - 1) < Decimal("1e-58")  # not 1e-30 of cancellation in 1 - e^-2x
        a, d = dr.tanh_pair(Decimal(-100), ctx)
        assert a == -1
        # sech²(100) = 4e^-200 (1 + O(e^-200)): full relative precision, where 1 - tanh² is 0
        assert abs(d / (4 * Decimal(-200).exp()) - 1) < Decimal("1e-58")
        e = Decimal(1).exp()  # tanh(1/2) = (e - 1)/(e + 1), another formula than the one tested
        assert abs(dr.tanh_pair(Decimal("0.5"), ctx)[0] - (e - 1) / (e + 1)) < Decimal("1e-59")
    assert dr.tanh_pair(Decimal("Infinity"), ctx) == (1, 0)
    assert math.isnan(dr.tanh_pair(Decimal("NaN"), ctx)[0])


def test_train_pixel_takes_a_named_dict_or_a_row_and_is_deterministic():
    cfg = config_from_dict({**TANH, "training": {**TANH["training"], "steps": 15}})
    pb = build_problem(cfg)
    by_name = dr.train_pixel(pb, {"lr_input": "0.5", "lr_output": Decimal("2")}, digits=40, trace=True)
    by_row = dr.train_pixel(pb, [Decimal("0.5"), Decimal(2), 0, 0, 1], digits=40, trace=True)
    assert by_name == by_row
    assert by_name["steps"] == 15 and len(by_name["v"]) == 15 and by_name["v"][0] == 1.0
    assert by_name["final"] == pytest.approx(math.log10(by_name["v"][-1]))
    # hopeless learning rates: the loss overflows, the run dies and its v repeats to the end
    dead = dr.train_pixel(pb, {"lr": "1e300"}, digits=40, trace=True)
    assert dead["steps"] < 15 and dead["probe"] == 1e6 and dead["measure"] > 0
    assert len(set(dead["v"][dead["steps"]:])) == 1
    with pytest.raises(ValueError):
        dr.train_pixel(pb, [1, 2, 3], digits=40)


def test_cli_writes_values_and_a_pool_gives_the_in_process_results(tmp_path, capsys):
    import json
    import yaml

    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump({**TANH, "name": "tiny"}))
    out = tmp_path / "ref.npz"
    dr.main([str(cfg_path), "--window=-3,6,-1.5,0.25", "--size", "3x2", "--steps", "12", "--processes", "2",
             "--digits", "40", "--verify-digits", "50", "--out", str(out)])
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["size"] == "3x2" and line["steps"] == 12 and line["settled_share"] == 1.0
    data = np.load(out)
    assert data["values"].shape == (2, 3, 4) and list(data["window"]) == ["-3", "6", "-1.5", "0.25"]
    assert data["settled"].all() and len(data["x_values"]) == 3
    inproc = dr.render_reference(str(cfg_path), ("-3", "6", "-1.5", "0.25"), 3, 2, digits=40, steps=12, processes=1)
    assert np.array_equal(inproc, data["values"])
