"""Residual connections and layer norm in double-double (kernel/ddgeneral.py, ddnorm.py), and the gradient factor.

Checked against the independent decimal trainer (scripts/deep_reference.py, 60
digits): the gradient of one step to 32 digits, and whole training runs to the
last bit of their float64 results; against the float64 kernel at float64
values; low parts that reach the result; the same bits on any thread count.
The data sizes are not powers of two, so the gradient factor 2/(points·outputs)
is not a float64 number (with 8 points an error in it would go unseen).
"""

import sys
from decimal import Decimal, localcontext
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import numba
import numpy as np
import pytest

from fractaltrain.columns import OUT_MEASURE, OUT_PROBE
from fractaltrain.compute.kernel import run_pixels, run_pixels_dd
from fractaltrain.compute.kernel.ddgeneral import arch_scratch_dd, general_scratch_dd, loss_grad_dd
from fractaltrain.compute.kernel.driver import gradient_scale_dd
from fractaltrain.compute.kernel.ir import LANES
from fractaltrain.config import config_from_dict
from fractaltrain.problem import Problem, build_problem, pixel_hyperparams

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import deep_reference as dr  # noqa: E402

ARCHS = [
    {"depth": 3, "residual": True},
    {"depth": 3, "norm": "layer"},
    {"depth": 4, "residual": True, "norm": "layer"},
    {"depth": 2, "norm": "layer", "nonlinearity": "relu"},
    {"depth": 4, "residual": True, "nonlinearity": "relu", "width": 5},
]


def _cfg(net, steps=20, size=6, batch="full"):
    raw = {"name": "t", "network": {"width": 4, **net}, "data": {"size": size},
           "training": {"steps": steps, "batch": batch},
           "axes": {"x": {"param": "lr_input", "scale": "log10", "range": [-1, 1.5]},
                    "y": {"param": "lr_output", "scale": "log10", "range": [-1, 1.5]}},
           "resolution": "8x8", "tile": 8}
    return config_from_dict(raw, "t")


def _arch(net):
    return np.array([int(net.get("residual", False)), int(net.get("norm") == "layer")], np.int64)


@pytest.mark.parametrize("count, outputs, batch", [(3, 1, None), (6, 1, None), (272, 1, None), (100, 3, None),
                                                   (272, 1, 16), (8, 1, None)])
def test_the_gradient_factor_is_exact_to_32_digits(count, outputs, batch):
    """2/(points·outputs) as (hi, lo): hi + lo is the rational number to 2^-106 of it."""
    bidx = None if batch is None else np.zeros((4, batch), np.int64)
    problem = SimpleNamespace(Y=np.zeros((count, outputs)), batch_indices=bidx)
    problem.gradient_count = Problem.gradient_count.fget(problem)
    hi, lo = gradient_scale_dd(problem)
    want = Fraction(2, (count if batch is None else batch) * outputs)
    assert hi == float(want)
    assert abs(Fraction(hi) + Fraction(lo) - want) <= want * Fraction(1, 2**106)


@pytest.mark.parametrize("net", ARCHS)
def test_one_gradient_to_32_digits_against_decimal(net):
    """loss_grad_dd's loss and gradient at one point of weight space against 60-digit arithmetic."""
    pb = build_problem(_cfg(net))
    w0, fi, fo, woff = pb.flat_weights()
    W = np.zeros((2, w0.size * LANES))
    W[0] = np.repeat(w0 * 4.0, LANES)  # larger weights than the draw's: the units leave their linear range
    G, loss = np.empty_like(W), np.empty((2, LANES))
    m = pb.Y.shape[1]
    loss_grad_dd(0, pb.X, pb.Y, W, G, loss, fi, fo, woff, pb.alphas_dd(), pb.nonlin_code, np.zeros((0, 0), np.int64),
                 *general_scratch_dd(fi, fo, m), _arch(net), *arch_scratch_dd(fi, fo))
    dp = dr.decimal_problem(pb, 60)
    ctx = dr.working_context(60)
    with localcontext(ctx):
        Wd = [[[w * 4 for w in col] for col in layer] for layer in dp.weights]
        acts, dacts, out, norms = dr.forward(dp, Wd, dp.X, ctx)
        R = [[o - y for o, y in zip(orow, yrow)] for orow, yrow in zip(out, dp.Y)]
        want_loss = sum(r * r for row in R for r in row)
        grads = dr.gradient(dp, Wd, acts, dacts, R, tuple(range(len(dp.X))), norms)
        got_loss = Decimal(float(loss[0, 0])) + Decimal(float(loss[1, 0]))
        assert abs(got_loss - want_loss) <= Decimal("1e-30") * want_loss
        scale = max(abs(g) for layer in grads for col in layer for g in col)
        for l in range(len(fi)):
            for k in range(fi[l]):
                for j in range(fo[l]):
                    q = (woff[l] + k * fo[l] + j) * LANES
                    got = Decimal(float(G[0, q])) + Decimal(float(G[1, q]))
                    assert abs(got - grads[l][j][k]) <= Decimal("1e-29") * scale, (l, k, j)


@pytest.mark.parametrize("net", ARCHS)
def test_training_matches_the_decimal_reference(net):
    """20 steps of four pixels, three converging and one diverging: the float64 results of 32-digit training
    are the 60-digit reference's to float64's rounding of the measure's sums (the float64 kernel's part from it by up to 1e-10)."""
    pb = build_problem(_cfg(net))
    hp = pixel_hyperparams(pb.config, np.array([0.3, 3.0, 10.0, 20.0]), np.array([0.5, 2.0, 8.0, 25.0]))
    got = run_pixels_dd(pb, hp, np.zeros_like(hp))
    for k in range(len(hp)):
        ref = dr.train_pixel(pb, list(hp[k]), 60)
        assert got[k, OUT_MEASURE] == pytest.approx(ref["measure"], rel=1e-14, abs=0), k
        assert got[k, OUT_PROBE] == pytest.approx(ref["probe"], rel=1e-14, abs=1e-300), k


def _grid(cfg, n=8):
    xs = 10 ** np.linspace(-1, 6, n)
    X, Y = np.meshgrid(xs, xs)
    return pixel_hyperparams(cfg, X.ravel(), Y.ravel())


@pytest.mark.parametrize("net, batch", [(ARCHS[0], "full"), (ARCHS[1], "full"), (ARCHS[2], 4), (ARCHS[3], "full")])
def test_agrees_with_the_float64_kernel_at_float64_values(net, batch):
    """Zero low parts: the signs of the float64 kernel on ≥ 97% of a wide window (up to 1e6, where runs
    diverge and layer norm's variance overflows), the measures within float64's rounding where training
    is regular."""
    cfg = _cfg(net, steps=40, size=7, batch=batch)
    pb = build_problem(cfg)
    hp = _grid(cfg)
    dd = run_pixels_dd(pb, hp, np.zeros_like(hp))
    f64 = run_pixels(pb, hp)
    assert np.mean(np.sign(dd[:, OUT_MEASURE]) == np.sign(f64[:, OUT_MEASURE])) >= 0.97
    rel = np.abs(dd[:, OUT_MEASURE] - f64[:, OUT_MEASURE]) / np.abs(f64[:, OUT_MEASURE])
    assert np.median(rel) < 1e-9


@pytest.mark.parametrize("net", [ARCHS[0], ARCHS[1]])
def test_low_parts_reach_the_result_and_threads_do_not(net):
    cfg = _cfg(net, steps=40, size=7)
    pb = build_problem(cfg)
    hp = _grid(cfg)
    lo = np.zeros_like(hp)
    lo[:, :2] = hp[:, :2] * 3e-17
    a = run_pixels_dd(pb, hp, np.zeros_like(hp))
    b = run_pixels_dd(pb, hp, lo)
    assert np.count_nonzero(a[:, OUT_MEASURE] != b[:, OUT_MEASURE]) >= 4
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run_pixels_dd(pb, hp[::-1], lo[::-1])
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = run_pixels_dd(pb, hp, lo)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one[::-1].view(np.int64), b.view(np.int64))
    np.testing.assert_array_equal(two.view(np.int64), b.view(np.int64))


def test_double_double_grids_change_keys_only_where_the_factor_changed():
    """Where the old low part of the factor was already exact (points·outputs a power of two) the bits did not
    change, so the grid keeps its key and an earlier folder resumes; elsewhere (the baseline's 272 points) the
    key carries revision 2 and tiles trained with the 16-digit factor are not reused."""
    from fractaltrain.compute.landscape import make_grid
    from fractaltrain.compute.store import dd_revision
    from fractaltrain.window import Window, parse_coordinate

    assert [dd_revision(c) for c in (1, 2, 8, 64, 1024)] == [1] * 5
    assert [dd_revision(c) for c in (3, 6, 272, 100)] == [2] * 4
    deep = Window.from_edges(*(parse_coordinate(v) for v in ("1.0000000000000000000001", "1.0000000000000000000002",
                                                             "1.0000000000000000000001", "1.0000000000000000000002")))
    for size, want in ((8, None), (6, 2)):
        pb = build_problem(_cfg({"depth": 2}, size=size))
        grid = make_grid(pb, deep, 8, 8, 8)
        assert grid.double_double and grid.identity().get("dd_revision") == want


def test_a_stored_double_double_identity_parses_back_with_its_revision():
    """The store's one verified read rebuilds a grid from its stored identity: the revision comes back and the
    key matches, with and without ``dd_revision`` (earlier folders have none)."""
    import json

    from fractaltrain.compute.landscape import make_grid
    from fractaltrain.compute.store import grid_from_identity
    from fractaltrain.window import Window, parse_coordinate

    deep = Window.from_edges(*(parse_coordinate(v) for v in ("1.0000000000000000000001", "1.0000000000000000000002",
                                                             "1.0000000000000000000001", "1.0000000000000000000002")))
    for size in (8, 6):
        grid = make_grid(build_problem(_cfg({"depth": 2}, size=size)), deep, 8, 8, 8)
        back = grid_from_identity(grid.key, json.loads(json.dumps(grid.identity())))
        assert back == grid and back.key == grid.key
