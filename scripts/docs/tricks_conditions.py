"""The conditions of docs/tricks.md's study (``tricks_study.py``): the tanh baseline with one trick changed each.

Shared by the study, its report (``tricks_report.py``) and its ensemble step
(``tricks_ensemble.py``): ``CONDITIONS``, the used-rate ``BANDS``, the config
of a condition at a size and window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from fractaltrain.config import with_overrides
from fractaltrain.config.parse import config_from_dict

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "configs/tanh_baseline.yaml"


def LOG(param, lo, hi):
    return {"param": param, "scale": "log10", "range": [lo, hi]}


def LIN(param, lo, hi):
    return {"param": param, "scale": "linear", "range": [lo, hi]}


PER_LAYER = {"x": LOG("lr_input", -3, 6), "y": LOG("lr_output", -3, 6)}  # the baseline's axes
PER_LAYER_ADAM = {"x": LOG("lr_input", -4, 6), "y": LOG("lr_output", -4, 6)}
DEEP = {"network": {"depth": 4}, "data": {"size": 272}}  # the baseline's 272 points (paper size would be 784)
WIDE = {"data": {"size": 272}, "network": {"input_dim": 16}}  # the same 272 points of 16 inputs at every width

# name: (label, changes to the baseline's YAML mapping, opening px, window px, band kind)
CONDITIONS = {
    "sgd": ("sgd (the paper's)", {}, 96, 64, "sgd"),
    "momentum": ("momentum 0.9", {"training": {"optimizer": {"name": "momentum", "momentum": 0.9}}}, 96, 64, "sgd"),
    "nesterov": ("Nesterov 0.9", {"training": {"optimizer": {"name": "nesterov", "momentum": 0.9}}}, 96, 64, "sgd"),
    "adam": ("Adam", {"training": {"optimizer": "adam"}, "axes": PER_LAYER_ADAM}, 96, 64, "adam"),
    "lr_momentum": ("lr × momentum", {"training": {"optimizer": "momentum"},
                                      "axes": {"x": LOG("lr", -3, 6), "y": LIN("momentum", 0, 0.99)}}, 96, 64, "sgd"),
    "lr_beta1": ("Adam: lr × β1", {"training": {"optimizer": "adam"},
                                   "axes": {"x": LOG("lr", -4, 6), "y": LIN("beta1", 0, 0.99)}}, 96, 64, "adam"),
    "lr_warmup": ("sgd: lr × warmup steps", {"training": {"schedule": {"name": "warmup", "warmup_steps": 100}},
                                             "axes": {"x": LOG("lr", -3, 6), "y": LIN("warmup_steps", 0, 200)}},
                  96, 64, "sgd"),
    "width8": ("width 8", {**WIDE, "network": {"width": 8, "input_dim": 16}}, 96, 64, "sgd"),
    "width64": ("width 64", {**WIDE, "network": {"width": 64, "input_dim": 16}}, 64, 48, "sgd"),
    "depth4": ("depth 4", DEEP, 48, 32, "sgd"),
    "depth4_residual": ("depth 4, residual", {**DEEP, "network": {"depth": 4, "residual": True}}, 48, 32, "sgd"),
    "depth4_layernorm": ("depth 4, layer norm", {**DEEP, "network": {"depth": 4, "norm": "layer"}}, 48, 32, "sgd"),
}
BANDS = {"sgd": (-3.0, 0.0), "adam": (-4.0, -1.0)}  # log10 of the learning rates people use
LR_PARAMS = ("lr", "lr_input", "lr_output")


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def config_of(cond: str, steps: int, size: int, name: str, window: str | None = None):
    raw = yaml.safe_load(BASE.read_text())
    for k in ("views", "zoom_target"):
        raw.pop(k, None)
    raw = merge(raw, CONDITIONS[cond][1])
    raw["training"]["steps"] = steps
    raw["resolution"] = f"{size}x{size}"
    raw["name"] = name
    raw["tile"] = 16 if size <= 64 else 32
    raw["precision"] = "float64"  # 6 decades is far above float64's floor: the study compares float64 landscapes
    cfg = config_from_dict(raw, name)
    return with_overrides(cfg, window=window) if window else cfg


def axis_values(scale: str, u: np.ndarray) -> np.ndarray:
    return 10.0 ** np.asarray(u, dtype=np.float64) if scale == "log10" else np.asarray(u, dtype=np.float64)


def centres(lo: float, hi: float, n: int) -> np.ndarray:
    return lo + (np.arange(n) + 0.5) * (hi - lo) / n
