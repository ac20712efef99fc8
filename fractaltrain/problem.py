"""The problem instance: everything shared by every pixel of an experiment.

A :class:`Problem` holds the initial weights, the training data, the probe
input, the minibatch index sequence and the mean-field constants, all drawn
once from the config's seeds with numpy's PCG64.  Pixels differ only in their
hyperparameters, which :func:`pixel_hyperparams` lays out as one row per pixel.

Mean-field parameterisation (PAPER.md, and the paper's notebook for depth > 2):
hidden layer ``l`` computes ``a_{l+1} = σ(α_l · a_l W_l)`` with
``α_l = sqrt(g / fan_in)``, ``g = 2`` for tanh and ReLU and ``g = 1`` for the
identity; the output is ``ŷ = (1/width) · a_{L-1} W_{L-1}``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np

from fractaltrain.config import Config

NONLIN_CODE = {"tanh": 0, "relu": 1, "identity": 2}
GAIN = {"tanh": 2.0, "relu": 2.0, "identity": 1.0}
PROBLEM_FORMAT = 1  # bump when any stored value could change, including any bit of the kernel's results,
# or the tile store would reuse tiles computed by the old numerics


@dataclass(frozen=True)
class Problem:
    """Arrays and constants that define one experiment's training runs.

    Attributes
    ----------
    weights : list of (fan_in, fan_out) float64 arrays, the initial weights.
    X, Y : training inputs (points × inputs) and targets (points × outputs).
    probe : (inputs,) the fixed input whose output the ``probe`` readout reports.
    batch_indices : (steps, batch) int64, or None for full-batch training.
    alphas : (depth,) float64; ``alphas[l]`` scales layer ``l``'s pre-activation,
        and the last entry is the output scale ``1/width``.
    """

    config: Config
    weights: tuple[np.ndarray, ...]
    X: np.ndarray
    Y: np.ndarray
    probe: np.ndarray
    batch_indices: np.ndarray | None
    alphas: np.ndarray

    @property
    def depth(self) -> int:
        return len(self.weights)

    @property
    def nonlin_code(self) -> int:
        return NONLIN_CODE[self.config.network.nonlinearity]

    def flat_weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Weights concatenated, with per-layer fan_in, fan_out and offset."""
        fi = np.array([w.shape[0] for w in self.weights], dtype=np.int64)
        fo = np.array([w.shape[1] for w in self.weights], dtype=np.int64)
        off = np.concatenate([[0], np.cumsum(fi * fo)[:-1]]).astype(np.int64)
        flat = np.concatenate([w.ravel() for w in self.weights]).astype(np.float64)
        return flat, fi, fo, off

    def key(self) -> str:
        """Hash of everything in the problem that affects pixel values."""
        h = hashlib.sha256()
        h.update(json.dumps(problem_identity(self.config), sort_keys=True).encode())
        for arr in (*self.weights, self.X, self.Y, self.probe):
            h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
        if self.batch_indices is not None:
            h.update(np.ascontiguousarray(self.batch_indices, dtype=np.int64).tobytes())
        return h.hexdigest()[:16]


def problem_identity(cfg: Config) -> dict:
    """The config fields that change pixel values (not resolution, tile, readout, name)."""
    net = cfg.network
    return {
        "format": PROBLEM_FORMAT,
        "width": net.width,
        "depth": net.depth,
        "inputs": net.inputs,
        "outputs": net.output_dim,
        "nonlinearity": net.nonlinearity,
        "network_seed": net.seed,
        "data_size": cfg.data_size,
        "data_seed": cfg.data.seed,
        "steps": cfg.training.steps,
        "batch": cfg.batch_size,
        "training_seed": cfg.training.seed,
        "learning_rate": repr(cfg.training.learning_rate),
        "fixed": [[k, repr(v)] for k, v in cfg.fixed],
        "x": [cfg.x.param, cfg.x.scale],
        "y": [cfg.y.param, cfg.y.scale],
    }


def build_problem(cfg: Config) -> Problem:
    """Draw the weights, data and minibatch sequence from the config's seeds."""
    net = cfg.network
    wrng = np.random.default_rng(net.seed)
    weights = tuple(wrng.standard_normal((fi, fo)) for fi, fo in net.layer_shapes())
    drng = np.random.default_rng(cfg.data.seed)
    n = cfg.data_size
    X = drng.standard_normal((n, net.inputs))
    Y = drng.standard_normal((n, net.output_dim))
    probe = drng.standard_normal(net.inputs)
    batch = cfg.batch_size
    batch_indices = None
    if batch is not None:
        trng = np.random.default_rng(cfg.training.seed)
        batch_indices = trng.integers(0, n, size=(cfg.training.steps, batch), dtype=np.int64)
    g = GAIN[net.nonlinearity]
    alphas = np.array([math.sqrt(g / fi) for fi, _ in net.layer_shapes()[:-1]] + [1.0 / net.width])
    return Problem(cfg, weights, X, Y, probe, batch_indices, alphas)


# Columns of the per-pixel hyperparameter table: lr of layers 0..depth-1, then these.
HP_DRIFT, HP_OFFSET, HP_SCALE = 0, 1, 2


def _apply(table: np.ndarray, depth: int, name: str, value) -> None:
    if name == "lr":
        table[:, :depth] = value
    elif name == "lr_input":
        table[:, 0] = value
    elif name == "lr_output":
        table[:, depth - 1] = value
    elif name.startswith("lr_layer_"):
        table[:, int(name[len("lr_layer_"):])] = value
    elif name == "offset_drift":
        table[:, depth + HP_DRIFT] = value
    elif name == "offset_init":
        table[:, depth + HP_OFFSET] = value
    elif name == "init_scale":
        table[:, depth + HP_SCALE] = value
    else:  # validated in config; kept as a guard
        raise ValueError(f"unknown hyperparameter {name!r}")


def pixel_hyperparams(cfg: Config, xv: np.ndarray, yv: np.ndarray) -> np.ndarray:
    """Per-pixel hyperparameter table, shape (pixels, depth + 3), float64.

    ``xv`` and ``yv`` are the x and y hyperparameter values of each pixel (same
    length).  Columns: learning rate of each layer, per-step W0 drift, initial W0
    offset, init scale.  Precedence: ``training.learning_rate``, then ``fixed``
    (``lr`` before per-layer rates), then the two axes.
    """
    depth = cfg.network.depth
    table = np.zeros((len(xv), depth + 3), dtype=np.float64)
    table[:, :depth] = cfg.training.learning_rate
    table[:, depth + HP_SCALE] = 1.0
    for name, value in sorted(cfg.fixed, key=lambda kv: kv[0] != "lr"):
        _apply(table, depth, name, value)
    for axis, values in ((cfg.x, xv), (cfg.y, yv)):
        if axis.param == "lr":
            table[:, :depth] = np.asarray(values, dtype=np.float64)[:, None]
        else:
            _apply(table, depth, axis.param, np.asarray(values, dtype=np.float64))
    return table
