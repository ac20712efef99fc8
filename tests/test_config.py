"""Config validation: every bad value gives one line naming its key."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fractaltrain.config import ConfigError, config_from_dict, load_config, with_overrides

ROOT = Path(__file__).resolve().parents[1]


def test_all_shipped_configs_load():
    names = sorted(p.stem for p in (ROOT / "configs").glob("*.yaml"))
    for n in ["demo", "tanh_baseline", "relu", "deep_linear", "tanh_minibatch16", "tanh_dataset1", "init_offset"]:
        assert n in names
    for p in (ROOT / "configs").glob("*.yaml"):
        cfg = load_config(p)
        assert cfg.name == p.stem


def test_paper_dataset_sizes():
    assert load_config(ROOT / "configs/tanh_baseline.yaml").data_size == 272
    assert load_config(ROOT / "configs/deep_linear.yaml").data_size == 16
    assert load_config(ROOT / "configs/tanh_dataset1.yaml").data_size == 1
    assert load_config(ROOT / "configs/demo.yaml").data_size == 72
    cfg = config_from_dict({"data": {"size_multiple": 0.5}})
    assert cfg.data_size == 136


def test_numbers_written_as_strings_are_coerced():
    cfg = config_from_dict(yaml.safe_load("training: {learning_rate: 1e-5, steps: 1e2}\naxes: {x: {range: [1e-5, 2]}}"))
    assert cfg.training.learning_rate == 1e-5
    assert cfg.training.steps == 100
    assert cfg.x.range == (1e-5, 2.0)


def test_round_trip_through_dict():
    cfg = load_config(ROOT / "configs/init_offset.yaml")
    assert config_from_dict(cfg.to_dict(), name="x") == cfg


BAD = [
    ({"network": {"width": 0}}, "network.width"),
    ({"training": {"steps": -5}}, "training.steps"),
    ({"training": {"batch": 1000}}, "training.batch"),
    ({"axes": {"x": {"range": [6, -3]}}}, "axes.x.range"),
    ({"network": {"nonlinearity": "sigmoid"}}, "network.nonlinearity"),
    ({"network": {"widht": 16}}, "network.widht"),
    ({"colour": "red"}, "colour"),
    ({"network": {"width": "sixteen"}}, "network.width"),
    ({"axes": {"y": {"param": "momentum"}}}, "axes.y.param"),
    ({"axes": {"y": {"param": "lr_layer_5"}}}, "axes.y.param"),
    ({"readout": "accuracy"}, "readout"),
    ({"resolution": "big"}, "resolution"),
    ({"network": {"depth": 1}}, "network.depth"),
    ({"training": {"learning_rate": "fast"}}, "training.learning_rate"),
]


@pytest.mark.parametrize("raw,key", BAD, ids=[k for _, k in BAD])
def test_bad_values_name_their_key(raw, key):
    with pytest.raises(ConfigError) as exc:
        config_from_dict(raw)
    msg = str(exc.value)
    assert msg.startswith(key + ":"), msg
    assert "\n" not in msg


def test_overrides():
    cfg = load_config(ROOT / "configs/demo.yaml")
    cfg2 = with_overrides(cfg, resolution="640x360", steps=7, window="0,1,2,3.5")
    assert cfg2.resolution == (640, 360)
    assert cfg2.training.steps == 7
    assert cfg2.x.range == (0.0, 1.0) and cfg2.y.range == (2.0, 3.5)
    with pytest.raises(ConfigError, match="^window:"):
        with_overrides(cfg, window="1,0,2,3")
    assert with_overrides(cfg, resolution="12").resolution == (12, 12)  # one number: square
    with pytest.raises(ConfigError, match="^resolution:"):
        with_overrides(cfg, resolution="axb")
    with pytest.raises(ConfigError, match="^steps:"):
        with_overrides(cfg, steps=0)


@pytest.mark.parametrize("raw,key", BAD[:7], ids=[k for _, k in BAD[:7]])
def test_cli_reports_bad_config_in_one_line(tmp_path, raw, key):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(raw))
    r = subprocess.run(
        [sys.executable, "-m", "fractaltrain", "render", str(p), "--out", str(tmp_path / "o"), "-q"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert key in lines[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_cli_missing_file_and_bad_flag(tmp_path):
    r = subprocess.run([sys.executable, "-m", "fractaltrain", "render", "nope.yaml"], capture_output=True, text=True)
    assert r.returncode == 2 and "nope.yaml" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "fractaltrain", "render", str(ROOT / "configs/demo.yaml"), "--resolution", "0x5"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and r.stderr.strip().startswith("error: --resolution")
