"""Compare the CUDA backend with the CPU kernel on small problems: bits, signs, differences.

Used by the tests (in a subprocess with ``NUMBA_ENABLE_CUDASIM=1``, since the
simulator must be chosen before numba.cuda is first imported) and by
scripts/gpu_check.py on a real GPU.  ``python -m fractaltrain.compute.gpu.compare``
prints one JSON line: ``python -m fractaltrain.compute.gpu.compare [N [THREADS BLOCKS]]`` compares
N × N grids (default 3) with an optional launch shape.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np

#: Small configs: every nonlinearity, deeper nets, several outputs, minibatches.
CASES = {
    "tanh": {},
    "relu": {"network": {"nonlinearity": "relu"}},
    "identity_out2": {"network": {"nonlinearity": "identity", "output_dim": 2}},
    "tanh_depth3": {"network": {"depth": 3}},
    "tanh_minibatch": {"training": {"batch": 3}},
    "tanh_drift": {"axes": {"x": {"param": "offset_drift", "scale": "linear", "range": [-0.5, 0.5]},
                            "y": {"param": "lr", "scale": "log10", "range": [-3, 6]}}},
}

#: Issue 32's tricks: every optimizer and schedule, settings and warmup steps as axes, residual and layer norm.
LR = {"param": "lr", "scale": "log10", "range": [-3, 3]}
TRICK_CASES = {
    "momentum": {"training": {"optimizer": "momentum"}},
    "nesterov_cosine_final_fraction_axis": {
        "training": {"optimizer": "nesterov", "schedule": "cosine"},
        "axes": {"x": {"param": "final_fraction", "scale": "linear", "range": [0, 1]}, "y": LR}},
    "adam_warmup_cosine": {"training": {"optimizer": "adam", "schedule": {"name": "warmup_cosine", "warmup_steps": 5}}},
    "adamw": {"training": {"optimizer": {"name": "adamw", "weight_decay": 0.01}}},
    "sgd_warmup_steps_axis": {"training": {"schedule": "warmup"},
                              "axes": {"x": {"param": "warmup_steps", "scale": "linear", "range": [0, 20]}, "y": LR}},
    "momentum_axis": {"training": {"optimizer": "momentum"},
                      "axes": {"x": {"param": "momentum", "scale": "linear", "range": [0, 0.95]}, "y": LR}},
    "adam_beta1_axis_warmup_cosine": {
        "training": {"optimizer": "adam", "learning_rate": 3.0,
                     "schedule": {"name": "warmup_cosine", "final_fraction": 0.2}},
        "axes": {"x": {"param": "beta1", "scale": "linear", "range": [0, 0.95]},
                 "y": {"param": "warmup_steps", "scale": "linear", "range": [0.5, 13.3]}}},
    "residual_depth4": {"network": {"depth": 4, "residual": True}},
    "norm_depth3": {"network": {"depth": 3, "norm": "layer"}},
    "residual_norm_depth4_nesterov": {"network": {"depth": 4, "residual": True, "norm": "layer"},
                                      "training": {"optimizer": "nesterov", "schedule": "warmup_cosine"}},
}


def small_config(over: dict, width: int = 3, points: int = 5, steps: int = 12):
    """A tiny config (width 3, 5 points, 12 steps by default) with ``over`` merged in."""
    from fractaltrain.config import config_from_dict

    raw = {"network": {"width": width, "depth": 2, "nonlinearity": "tanh"}, "data": {"size": points},
           "training": {"steps": steps}, "resolution": "8x8", "tile": 8}
    for k, v in over.items():
        raw.setdefault(k, {})
        raw[k].update(v) if isinstance(v, dict) else raw.__setitem__(k, v)
    return config_from_dict(raw)


def grid_hp(cfg, n: int):
    """An n × n grid of hyperparameters over the config's axes (covers converging and diverging pixels)."""
    from fractaltrain.problem import pixel_hyperparams
    from fractaltrain.window import axis_values

    xv = axis_values(cfg.x.range[0], cfg.x.range[1], n, cfg.x.scale)
    yv = axis_values(cfg.y.range[0], cfg.y.range[1], n, cfg.y.scale)
    XX, YY = np.meshgrid(xv, yv)
    return pixel_hyperparams(cfg, XX.ravel(), YY.ravel())


def compare(cpu: np.ndarray, gpu: np.ndarray) -> dict:
    """Bitwise equality, sign agreement of the measure, and relative differences where signs agree."""
    from fractaltrain.columns import OUT_MEASURE

    same = cpu.view(np.int64) == gpu.view(np.int64)
    both_nan = np.isnan(cpu) & np.isnan(gpu)
    sc, sg = cpu[:, OUT_MEASURE] > 0, gpu[:, OUT_MEASURE] > 0
    ok = (sc == sg) & np.isfinite(cpu[:, OUT_MEASURE]) & np.isfinite(gpu[:, OUT_MEASURE])
    rel = np.abs(cpu[ok, OUT_MEASURE] - gpu[ok, OUT_MEASURE]) / np.maximum(np.abs(cpu[ok, OUT_MEASURE]), 1e-300)
    return {
        "pixels": int(cpu.shape[0]),
        "bitwise_equal": bool(np.all(same | both_nan)),
        "values_differing": int(np.sum(~(same | both_nan))),
        "sign_agreement": float(np.mean(sc == sg)),
        "measure_max_rel_diff": float(rel.max()) if rel.size else 0.0,
        "measure_median_rel_diff": float(np.median(rel)) if rel.size else 0.0,
        "diverged_share": float(np.mean(sc)),
    }


def run_cases(n: int = 3, steps: int = 12, cases=None, **launch) -> dict:
    """CPU kernel and CUDA backend on each case's n × n grid; ``launch`` goes to the CUDA run_pixels.

    ``cases``: names of :data:`CASES` or :data:`TRICK_CASES`, or a dict of name to
    config overrides (default: all of :data:`CASES`).
    """
    from fractaltrain.compute.gpu.run import run_pixels as run_gpu
    from fractaltrain.compute.kernel import run_pixels as run_cpu
    from fractaltrain.problem import build_problem

    table = cases if isinstance(cases, dict) else {**CASES, **TRICK_CASES}
    report = {}
    for name in cases or CASES:
        cfg = small_config(table[name], steps=steps)
        pb = build_problem(cfg)
        hp = grid_hp(cfg, n)
        cpu = run_cpu(pb, hp)
        t = time.perf_counter()
        with warnings.catch_warnings():  # the simulator computes on numpy scalars, which warn
            warnings.simplefilter("ignore", RuntimeWarning)
            gpu = run_gpu(pb, hp, **launch)
        r = compare(cpu, gpu)
        r["gpu_seconds"] = round(time.perf_counter() - t, 3)
        report[name] = r
    return report


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    shape = {"threads": int(sys.argv[2]), "blocks": int(sys.argv[3])} if len(sys.argv) > 3 else {}
    print(json.dumps(run_cases(n, **shape)))
