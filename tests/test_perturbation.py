"""Perturbation from one double-double reference: equal to the double-double kernel where it follows, retrained where not."""

from fractions import Fraction

import numpy as np
import pytest

from fractaltrain.compute.kernel import run_pixels_dd
from fractaltrain.compute.landscape import grid_axes, make_grid, tile_hyperparams
from fractaltrain.compute.perturbation import run_pixels_perturbed
from fractaltrain.compute.store import TileSpec
from fractaltrain.config import config_from_dict
from fractaltrain.problem import build_problem
from fractaltrain.window import Window, parse_coordinate

BASE = {"network": {"width": 4, "depth": 2}, "data": {"size": 8, "seed": 0}, "training": {"steps": 60, "seed": 0},
        "resolution": "8x8", "tile": 8, "name": "p"}


def _pixels(raw, cx, cy, width, n=6):
    cfg = config_from_dict(raw)
    problem = build_problem(cfg)
    hw = Fraction(width) / 2
    grid = make_grid(problem, Window.around(parse_coordinate(cx), parse_coordinate(cy), hw, hw), n, n, n,
                     precision="double-double")
    xv, yv = grid_axes(cfg, grid)
    return problem, tile_hyperparams(cfg, xv, yv, TileSpec(0, 0, 0, n, 0, n))


@pytest.mark.parametrize("over", [{}, {"network": {"width": 4, "depth": 2, "nonlinearity": "relu"}},
                                  {"network": {"width": 4, "depth": 2, "output_dim": 2}},
                                  {"training": {"steps": 60, "seed": 0, "batch": 3}}])
def test_follows_the_reference_where_training_is_not_chaotic(over):
    """Inside the converged region 20 decades deep no pixel glitches and the results are the kernel's."""
    problem, (hi, lo) = _pixels({**BASE, **over}, "0", "0", "1e-20")
    want = run_pixels_dd(problem, hi, lo)
    got, glitched = run_pixels_perturbed(problem, hi, lo)
    assert glitched == 0.0
    assert np.array_equal(np.sign(got[:, 0]), np.sign(want[:, 0]))
    assert np.allclose(got[:, 0], want[:, 0], rtol=1e-12, atol=0)
    assert np.array_equal(got[:, 3], want[:, 3])


def test_glitches_are_retrained_in_double_double():
    """At a boundary point training is chaotic: the float64 difference cannot follow, so those pixels are
    the double-double kernel's, bit for bit."""
    problem, (hi, lo) = _pixels({**BASE, "training": {"steps": 200, "seed": 0}},
                                "1.226714096703170021537918683233539470649546788", "1", "1e-20", n=4)
    want = run_pixels_dd(problem, hi, lo)
    got, glitched = run_pixels_perturbed(problem, hi, lo)
    raw, _ = run_pixels_perturbed(problem, hi, lo, retrain=False)
    assert glitched > 0.5
    redone = ~np.all(raw == got, axis=1)
    assert np.array_equal(got[redone], want[redone])
