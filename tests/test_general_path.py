"""The general path (networks with more than one hidden layer) keeps its bits.

Its products and layer norm moved from numba loops to vector IR
(``kernel/layer.py``); the results must not move by one bit.  The fixture holds
the raw outputs of these configs as the loops computed them (commit 5a406a6),
made by running this file as a script there:

    python tests/test_general_path.py tests/fixtures/general_path_bits.npz
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from fractaltrain.config import config_from_dict
from fractaltrain.compute.kernel import run_pixels
from fractaltrain.problem import build_problem, pixel_hyperparams

FIXTURE = Path(__file__).parent / "fixtures" / "general_path_bits.npz"

# widths that are and are not multiples of the IR's tile (8), every nonlinearity,
# residual connections, layer norm, minibatches, several outputs, optimizers, one chunk and several
CASES = {
    "d4_tanh": {"network": {"width": 16, "depth": 4}},
    "d4_residual": {"network": {"width": 16, "depth": 4, "residual": True}},
    "d4_layernorm": {"network": {"width": 16, "depth": 4, "norm": "layer"}},
    "d3_w12_relu": {"network": {"width": 12, "depth": 3, "nonlinearity": "relu"}},
    "d5_w5": {"network": {"width": 5, "depth": 5}},
    "d3_w20_minibatch": {"network": {"width": 20, "depth": 3}, "training": {"batch": 5}},
    "d3_w9_identity_out3": {"network": {"width": 9, "depth": 3, "nonlinearity": "identity", "output_dim": 3}},
    "d3_w7_norm_residual_adam": {"network": {"width": 7, "depth": 3, "norm": "layer", "residual": True},
                                 "training": {"optimizer": "adam"}},
    "d4_w6_nesterov": {"network": {"width": 6, "depth": 4}, "training": {"optimizer": "nesterov"}},
    # more points than a chunk (16), and a short last chunk
    "d4_37pts_residual_norm": {"network": {"width": 8, "depth": 4, "residual": True, "norm": "layer"},
                               "data": {"size": 37}},
    "d3_w10_33pts_relu_norm": {"network": {"width": 10, "depth": 3, "nonlinearity": "relu", "norm": "layer"},
                               "data": {"size": 33}},
    "d3_37pts_minibatch_momentum": {"network": {"width": 6, "depth": 3}, "data": {"size": 37},
                                    "training": {"batch": 7, "optimizer": "momentum"}},
}
N = 10  # pixels a side


def case_config(name):
    raw = {"network": {"input_dim": 6}, "data": {"size": 12}, "training": {"steps": 40},
           "resolution": f"{N}x{N}", "tile": 8}
    for k, v in CASES[name].items():
        raw[k] = {**raw.get(k, {}), **v}
    return config_from_dict(raw)


def train(name):
    cfg = case_config(name)
    xv = np.logspace(cfg.x.range[0], cfg.x.range[1], N) if cfg.x.scale == "log10" else np.linspace(*cfg.x.range, N)
    yv = np.logspace(cfg.y.range[0], cfg.y.range[1], N) if cfg.y.scale == "log10" else np.linspace(*cfg.y.range, N)
    XX, YY = np.meshgrid(xv, yv)
    return run_pixels(build_problem(cfg), pixel_hyperparams(cfg, XX.ravel(), YY.ravel()))


@pytest.mark.parametrize("name", sorted(CASES))
def test_general_path_keeps_its_bits(name):
    want = np.load(FIXTURE)[name]
    got = train(name)
    assert np.isfinite(want).any()
    np.testing.assert_array_equal(got, want)


if __name__ == "__main__":
    np.savez(sys.argv[1], **{name: train(name) for name in CASES})
