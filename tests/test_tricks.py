"""Issue 32's training tricks in the CPU kernel, against the independent numpy reference (scripts/tricks_reference.py)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import tricks_reference as tr  # noqa: E402
from fractaltrain.columns import OUT_MEASURE, OUT_PROBE, OUT_STEPS  # noqa: E402
from fractaltrain.compute.curve import loss_curve, measure_from_curve  # noqa: E402
from fractaltrain.compute.kernel import run_pixels  # noqa: E402
from fractaltrain.config import ConfigError, config_from_dict  # noqa: E402
from fractaltrain.problem import build_problem, pixel_hyperparams  # noqa: E402

BASE = {"network": {"width": 4, "depth": 3, "nonlinearity": "tanh"}, "data": {"size": 10},
        "training": {"steps": 40}, "resolution": "8x8", "tile": 8}

CASES = {
    "residual": ({"network": {"residual": True}}, {}),
    "norm": ({"network": {"norm": "layer"}}, {}),
    "both, depth 4": ({"network": {"residual": True, "norm": "layer", "depth": 4}}, {}),
    "norm, depth 2": ({"network": {"norm": "layer", "depth": 2}}, {}),
    "relu, residual, norm": ({"network": {"nonlinearity": "relu", "residual": True, "norm": "layer"}}, {}),
    "norm, minibatch": ({"network": {"norm": "layer"}}, {"batch": 3}),
    "residual, adam, warmup_cosine": ({"network": {"residual": True}},
                                      {"optimizer": "adam", "schedule": {"name": "warmup_cosine", "warmup_steps": 5}}),
    "norm, nesterov, 2 outputs": ({"network": {"norm": "layer", "output_dim": 2}}, {"optimizer": "nesterov"}),
}


def _cfg(net, training):
    raw = {**BASE, "network": {**BASE["network"], **net.get("network", {})},
           "training": {**BASE["training"], **training}}
    return config_from_dict(raw)


@pytest.mark.parametrize("case", sorted(CASES))
def test_kernel_agrees_with_the_reference(case):
    over, training = CASES[case]
    cfg = _cfg(over, training)
    pb = build_problem(cfg)
    adam = str(training.get("optimizer", "")).startswith("adam")
    lo = 1e-3 if adam else 1e-2
    xv = 10.0 ** np.linspace(np.log10(lo), np.log10(lo) + 2.5, 6)
    XX, YY = np.meshgrid(xv, xv)
    hp = pixel_hyperparams(cfg, XX.ravel(), YY.ravel())
    ours = run_pixels(pb, hp)
    ref = tr.train(pb, hp, tr.TrainingTricks.from_config(cfg), settings="table")
    assert np.mean(np.sign(ours[:, OUT_MEASURE]) == np.sign(ref["measure"])) >= 0.97
    rel = np.abs(ours[:, OUT_MEASURE] - ref["measure"]) / np.abs(ref["measure"])
    assert np.median(rel) < 1e-9
    assert np.mean(ours[:, OUT_STEPS] == ref["steps"]) >= 0.97
    live = ours[:, OUT_STEPS] == cfg.training.steps
    close = np.isclose(ours[live, OUT_PROBE], np.asarray(ref["probe"])[live], rtol=1e-6, atol=1e-9)
    assert np.mean(close) >= 0.9  # a chaotic pixel's output may part at the last digits and grow
    for k in (0, len(hp) // 2):  # the explorer's curve is the kernel's training, bit for bit
        assert measure_from_curve(loss_curve(pb, hp[k])) == ours[k, OUT_MEASURE]


def test_architecture_is_checked_and_plain_configs_keep_their_keys():
    with pytest.raises(ConfigError, match="network.residual: needs depth >= 3"):
        config_from_dict({**BASE, "network": {"depth": 2, "residual": True}})
    with pytest.raises(ConfigError, match="network.norm: must be one of none, layer"):
        config_from_dict({**BASE, "network": {"norm": "batch"}})
    plain = config_from_dict(BASE)
    assert "residual" not in plain.to_dict()["network"] and plain.plain_training
    assert build_problem(plain).key() != build_problem(_cfg({"network": {"residual": True}}, {})).key()
    cfg = _cfg({"network": {"residual": True, "norm": "layer"}}, {})
    assert config_from_dict(cfg.to_dict()) == cfg and not cfg.plain_training
