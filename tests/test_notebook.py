"""rng: notebook, named views and the paper configs (issue: paper-exact draws).

The draws themselves are checked bit for bit in test_threefry.py; here the
problem built from a config must equal the notebook's own gen_img draws
(recorded from real JAX in tests/fixtures/jax_threefry.npz), views must resolve
to the published windows, and generators must never share tiles.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fractaltrain.config import ConfigError, config_from_dict, load_config, view_window, with_overrides
from fractaltrain.problem import build_problem, problem_identity

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = np.load(Path(__file__).parent / "fixtures" / "jax_threefry.npz")
PAPER_CONFIGS = ["tanh_baseline", "relu", "deep_linear", "tanh_minibatch16", "tanh_dataset1", "init_offset"]


def notebook_cfg(width, depth, n, target_dim, **extra):
    raw = {
        "rng": "notebook",
        "network": {"width": width, "depth": depth, "output_dim": target_dim},
        "data": {"size": n},
        "resolution": "8x8",
    }
    raw.update(extra)
    return config_from_dict(raw, name="t")


@pytest.mark.parametrize("tag", sorted({"/".join(k.split("/")[1:5]) for k in FIXTURES.files if k.startswith("problem/")}))
def test_problem_equals_notebook_gen_img(tag):
    width, depth, n, target_dim = (int(v) for v in tag.split("/"))
    pb = build_problem(notebook_cfg(width, depth, n, target_dim))
    for i, w in enumerate(pb.weights):
        assert np.array_equal(w, FIXTURES[f"problem/{tag}/W{i}"])
    assert np.array_equal(pb.X, FIXTURES[f"problem/{tag}/X"])
    assert np.array_equal(pb.Y, FIXTURES[f"problem/{tag}/Y"])
    assert np.array_equal(pb.probe, FIXTURES[f"problem/{tag}/probe"].ravel())


def test_minibatch_config_uses_the_notebook_sequence():
    cfg = load_config(ROOT / "configs/tanh_minibatch16.yaml")
    assert cfg.rng == "notebook" and cfg.training.steps == 1000 and cfg.training.seed == 42
    pb = build_problem(cfg)
    assert np.array_equal(pb.batch_indices, FIXTURES["minibatch/1000/16/272"])
    # 500 steps is another sequence from its first step
    pb500 = build_problem(with_overrides(cfg, steps=500))
    assert np.array_equal(pb500.batch_indices, FIXTURES["minibatch/500/16/272"])


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_paper_configs_use_notebook_draws_and_published_view(name):
    cfg = load_config(ROOT / f"configs/{name}.yaml")
    assert cfg.rng == "notebook"
    assert (cfg.network.seed, cfg.data.seed) == (0, 0)
    assert cfg.zoom_target == "paper" and cfg.view("paper") is not None
    x0, x1, y0, y1 = view_window(cfg, "paper", (40, 40))
    assert math.isclose(x1 - x0, y1 - y0, rel_tol=1e-9, abs_tol=1e-14)  # square in decades (to rounding)
    assert cfg.x.range[0] < x0 < x1 < cfg.x.range[1]


def test_view_endpoints_put_pixel_centres_on_the_printed_edges():
    from fractaltrain.window import config_window
    from fractaltrain.window import axis_coords

    cfg = with_overrides(load_config(ROOT / "configs/tanh_baseline.yaml"), resolution="40x40", window="paper")
    w = config_window(cfg)
    xs = axis_coords(w.x0, w.x1, 40)
    v = cfg.view("paper")
    cx = 0.5 * (math.log10(v.x[0]) + math.log10(v.x[1]))
    half = 0.5 * (xs[-1] - xs[0])
    assert math.isclose(0.5 * (xs[0] + xs[-1]), cx, abs_tol=1e-15)
    # the printed edges are rounded: the half width is the mean of both axes' half widths
    hx = 0.5 * (math.log10(v.x[1]) - math.log10(v.x[0]))
    hy = 0.5 * (math.log10(v.y[1]) - math.log10(v.y[0]))
    assert math.isclose(half, 0.5 * (hx + hy), rel_tol=1e-6)


def test_generators_never_share_tiles():
    a = config_from_dict({"resolution": "8x8"}, name="t")
    b = config_from_dict({"resolution": "8x8", "rng": "notebook", "network": {"seed": 0}, "data": {"seed": 1},
                          "training": {"seed": 2}}, name="t")
    assert problem_identity(a) != problem_identity(b)
    assert build_problem(a).key() != build_problem(b).key()
    # pcg64 identities are unchanged by the rng key (old tile stores stay valid)
    assert "rng" not in problem_identity(a)


def test_notebook_seed_defaults():
    cfg = config_from_dict({"rng": "notebook"}, name="t")
    assert (cfg.network.seed, cfg.data.seed, cfg.training.seed) == (0, 0, 42)
    cfg = config_from_dict({}, name="t")
    assert (cfg.network.seed, cfg.data.seed, cfg.training.seed) == (0, 1, 2)


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"rng": "jax"}, "rng"),
        ({"views": {"paper": {"x": [1, 2]}}}, "views.paper.y"),
        ({"views": {"paper": {"x": [2, 1], "y": [1, 2]}}}, "views.paper.x"),
        ({"views": {"paper": {"x": [1, 2], "y": [1, 2], "units": "px"}}}, "views.paper.units"),
        ({"views": {"paper": {"x": [1, 2], "y": [1, 2], "square": "yes"}}}, "views.paper.square"),
        ({"views": {"paper": {"x": [1, 2], "y": [1, 2], "zoom": 1}}}, "views.paper.zoom"),
        ({"views": {"1bad": {"x": [1, 2], "y": [1, 2]}}}, "views"),
        ({"zoom_target": "paper"}, "zoom_target"),
    ],
)
def test_bad_views_and_rng(raw, key):
    with pytest.raises(ConfigError) as exc:
        config_from_dict(raw, name="t")
    assert str(exc.value).startswith(key)


def test_window_names_a_view_or_says_which_exist():
    cfg = load_config(ROOT / "configs/relu.yaml")
    with pytest.raises(ConfigError, match=r"view name \('paper'\)"):
        with_overrides(cfg, window="published")


def test_value_view_on_log_axis_must_be_positive():
    cfg = config_from_dict({"views": {"v": {"x": [-1, 2], "y": [1, 2], "units": "value"}}}, name="t")
    with pytest.raises(ConfigError, match="views.v.x"):
        view_window(cfg, "v")


def test_to_dict_round_trip_keeps_views():
    cfg = load_config(ROOT / "configs/init_offset.yaml")
    again = config_from_dict(cfg.to_dict(), name=cfg.name)
    assert again == cfg


def test_render_window_paper_cli(tmp_path):
    out = tmp_path / "o"
    r = subprocess.run(
        [sys.executable, "-m", "fractaltrain", "render", str(ROOT / "configs/deep_linear.yaml"), "--window", "paper",
         "--resolution", "12x12", "--steps", "50", "--out", str(out), "-q"],
        capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stderr
    import json

    meta = json.loads((out / "deep_linear.json").read_text())
    assert meta["config"]["rng"] == "notebook"
