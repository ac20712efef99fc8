"""The problem instance: everything shared by every pixel of an experiment.

A :class:`Problem` holds the initial weights, the training data, the probe
input, the minibatch index sequence and the mean-field constants, all drawn
once from the config's seeds, with numpy's PCG64 (``rng: pcg64``) or with the
author's notebook's own JAX threefry draws (``rng: notebook``, see
:mod:`fractaltrain.problem.threefry`).  Pixels differ only in their hyperparameters,
which :func:`pixel_hyperparams` lays out as one row per pixel.

Mean-field parameterisation (PAPER.md, and the paper's notebook for depth > 2):
hidden layer ``l`` computes ``a_{l+1} = σ(α_l · a_l W_l)`` with
``α_l = sqrt(g / fan_in)``, ``g = 2`` for tanh and ReLU and ``g = 1`` for the
identity; the output is ``ŷ = (1/width) · a_{L-1} W_{L-1}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, localcontext

import numpy as np

from fractaltrain.problem import threefry as tf
from fractaltrain.config import Config
from fractaltrain.config.hyperparams import HP_OPT, HP_SCALE, table_columns
from fractaltrain.config.hyperparams import TRICK_PARAMS
from fractaltrain.config.optimizer import OPT_CODE, OptimizerConfig
from fractaltrain.config.schedule import SCHEDULE_CODE, ScheduleConfig
from fractaltrain.hashing import stable_hash

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

    @property
    def arch(self) -> np.ndarray:
        """The kernel's architecture flags, int64 ``[residual, layer norm]``."""
        net = self.config.network
        return np.array([int(net.residual), int(net.norm == "layer")], dtype=np.int64)

    @property
    def schedule_code(self) -> int:
        """The kernel's code of the config's schedule (0 = constant)."""
        return SCHEDULE_CODE[self.config.training.schedule.name]

    @property
    def optimizer_code(self) -> int:
        """The kernel's code of the config's optimizer (0 = sgd: :data:`fractaltrain.config.optimizer.OPT_CODE`)."""
        return OPT_CODE[self.config.training.optimizer.name]

    @property
    def gradient_count(self) -> int:
        """``c`` of one step's gradient factor ``2/c``: points (the batch size if minibatch) times outputs."""
        n, m = self.Y.shape
        return (n if self.batch_indices is None else self.batch_indices.shape[1]) * m

    def flat_weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Weights concatenated, with per-layer fan_in, fan_out and offset."""
        fi = np.array([w.shape[0] for w in self.weights], dtype=np.int64)
        fo = np.array([w.shape[1] for w in self.weights], dtype=np.int64)
        off = np.concatenate([[0], np.cumsum(fi * fo)[:-1]]).astype(np.int64)
        flat = np.concatenate([w.ravel() for w in self.weights]).astype(np.float64)
        return flat, fi, fo, off

    def alphas_dd(self) -> np.ndarray:
        """The pre-activation scales to double-double precision, (2, depth): high parts, low parts.

        ``sqrt(g / fan_in)`` and ``1 / width`` as exact numbers rounded to 32
        digits; :attr:`alphas` holds their float64 roundings, which is what the
        float64 kernels multiply by (and equals the high parts here).
        """
        g = GAIN[self.config.network.nonlinearity]
        exact = [Decimal(g) / Decimal(int(w.shape[0])) for w in self.weights[:-1]]
        with localcontext() as ctx:
            ctx.prec = 60
            values = [d.sqrt() for d in exact] + [Decimal(1) / Decimal(self.config.network.width)]
            hi = [float(v) for v in values]
            lo = [float(v - Decimal(h)) for v, h in zip(values, hi)]
        return np.array([hi, lo], dtype=np.float64)

    def key(self) -> str:
        """Hash of everything in the problem that affects pixel values."""
        arrays = [np.ascontiguousarray(a, dtype=np.float64).tobytes() for a in (*self.weights, self.X, self.Y, self.probe)]
        if self.batch_indices is not None:
            arrays.append(np.ascontiguousarray(self.batch_indices, dtype=np.int64).tobytes())
        return stable_hash(problem_identity(self.config), *arrays)


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
    } | ({} if cfg.rng == "pcg64" else {"rng": cfg.rng}) | (  # pcg64 keys stay as they were before rng existed
        {} if cfg.training.optimizer == OptimizerConfig() else {"optimizer": repr(cfg.training.optimizer.to_dict())}
    ) | ({} if cfg.training.schedule == ScheduleConfig() else {"schedule": repr(cfg.training.schedule.to_dict())}
    ) | ({"residual": True} if net.residual else {}) | ({} if net.norm == "none" else {"norm": net.norm})


def build_problem(cfg: Config, roots: dict | None = None) -> Problem:
    """Draw the weights, data and minibatch sequence from the config's seeds and generator.

    ``roots`` replaces the root of some random sources (keys ``weights``,
    ``data``, ``minibatch``): a ``numpy.random.SeedSequence`` for ``rng: pcg64``,
    a threefry key for ``rng: notebook``.  Seed ensembles use it to draw their
    members (:mod:`fractaltrain.render.ensemble`); without it each source starts from
    its config seed.  The problem key hashes the drawn arrays, so a member's
    draws enter it.
    """
    net = cfg.network
    draw = _notebook_draws if cfg.rng == "notebook" else _pcg64_draws
    weights, X, Y, probe, batch_indices = draw(cfg, roots or {})
    g = GAIN[net.nonlinearity]
    alphas = np.array([math.sqrt(g / fi) for fi, _ in net.layer_shapes()[:-1]] + [1.0 / net.width])
    return Problem(cfg, weights, X, Y, probe, batch_indices, alphas)


def _pcg64_draws(cfg: Config, roots: dict):
    """numpy PCG64 streams, one per seed: weights; then X, Y and the probe; then minibatches."""
    net = cfg.network
    wrng = np.random.default_rng(roots.get("weights", net.seed))
    weights = tuple(wrng.standard_normal((fi, fo)) for fi, fo in net.layer_shapes())
    drng = np.random.default_rng(roots.get("data", cfg.data.seed))
    n = cfg.data_size
    X = drng.standard_normal((n, net.inputs))
    Y = drng.standard_normal((n, net.output_dim))
    probe = drng.standard_normal(net.inputs)
    batch_indices = None
    if cfg.batch_size is not None:
        trng = np.random.default_rng(roots.get("minibatch", cfg.training.seed))
        batch_indices = trng.integers(0, n, size=(cfg.training.steps, cfg.batch_size), dtype=np.int64)
    return weights, X, Y, probe, batch_indices


NOTEBOOK_PROBE_SEED = -1234567  # the notebook's PRNGKey for its probe input


def _notebook_draws(cfg: Config, roots: dict):
    """The author's notebook (``gen_img``, ``train``), with its seeds taken from the config.

    The notebook draws from one chain: ``rng = PRNGKey(0); rng, srng = split(rng)``
    gives the weights (``split(srng, depth)``, one key per layer), and two more
    splits give X and then Y.  Here the weights come from that chain started at
    ``network.seed`` and the data from the chain started at ``data.seed``, so the
    two can vary independently and both equal to 0 is the notebook exactly.
    Minibatch step t uses ``randint(split(PRNGKey(training.seed), steps)[t], (batch,), 0, N)``.
    """
    net = cfg.network
    _, srng = tf.split(roots.get("weights", tf.prng_key(net.seed)))
    keys = tf.split(srng, net.depth)
    weights = tuple(tf.normal(keys[i], shape) for i, shape in enumerate(net.layer_shapes()))
    rng, _ = tf.split(roots.get("data", tf.prng_key(cfg.data.seed)))
    rng, srng = tf.split(rng)
    n = cfg.data_size
    X = tf.normal(srng, (n, net.inputs))
    rng, srng = tf.split(rng)
    Y = tf.normal(srng, (n, net.output_dim))
    probe = tf.normal(tf.prng_key(NOTEBOOK_PROBE_SEED), (1, net.inputs)).ravel()
    batch_indices = None
    if cfg.batch_size is not None:
        key = roots.get("minibatch", tf.prng_key(cfg.training.seed))
        batch_indices = tf.randint(tf.split(key, cfg.training.steps), (cfg.batch_size,), 0, n)
    return weights, X, Y, probe, batch_indices


def notebook_batch_indices(seed: int, steps: int, batch: int, n: int) -> np.ndarray:
    """The notebook's minibatch sequence, (steps, batch) int64.

    ``split(key, steps)`` depends on ``steps``, so a 1000-step sequence is not
    the 500-step one extended: it differs from the first step on.
    """
    keys = tf.split(tf.prng_key(seed), steps)
    return tf.randint(keys, (batch,), 0, n)


def _apply(table: np.ndarray, depth: int, name: str, value) -> None:
    for col in table_columns(name, depth):
        table[:, col] = value


def pixel_hyperparams(cfg: Config, xv: np.ndarray, yv: np.ndarray) -> np.ndarray:
    """Per-pixel hyperparameter table, shape (pixels, depth + 3), or (pixels, depth + 8) with an optimizer
    that reads settings, float64.

    ``xv`` and ``yv`` are the x and y hyperparameter values of each pixel (same
    length).  Columns: learning rate of each layer, per-step W0 drift, initial W0
    offset, init scale, then (only when the optimizer is not sgd) its momentum,
    beta1, beta2, eps and weight_decay.  Precedence: ``training.learning_rate``
    and the optimizer's settings, then ``fixed`` (``lr`` before per-layer rates),
    then the two axes.
    """
    depth = cfg.network.depth
    tr = cfg.training
    table = np.zeros((len(xv), depth + HP_OPT + (len(TRICK_PARAMS) if tr.tricks else 0)), dtype=np.float64)
    table[:, :depth] = tr.learning_rate
    table[:, depth + HP_SCALE] = 1.0
    if tr.tricks:
        for k, name in enumerate(TRICK_PARAMS):
            table[:, depth + HP_OPT + k] = getattr(tr.optimizer if hasattr(tr.optimizer, name) else tr.schedule, name)
    for name, value in sorted(cfg.fixed, key=lambda kv: kv[0] != "lr"):
        _apply(table, depth, name, value)
    for axis, values in ((cfg.x, xv), (cfg.y, yv)):
        if axis.param == "lr":
            table[:, :depth] = np.asarray(values, dtype=np.float64)[:, None]
        else:
            _apply(table, depth, axis.param, np.asarray(values, dtype=np.float64))
    return table


def pixel_hyperparams_dd(cfg: Config, xv: tuple[np.ndarray, np.ndarray], yv: tuple[np.ndarray, np.ndarray]):
    """:func:`pixel_hyperparams` in double-double: ``(hp_hi, hp_lo)`` from axes given as (high, low) pairs.

    The high table is :func:`pixel_hyperparams` of the high parts; the low
    table holds the axes' low parts in their columns and zeros elsewhere
    (``training.learning_rate`` and ``fixed`` values are the float64 numbers
    the config holds, exactly).
    """
    depth = cfg.network.depth
    hi = pixel_hyperparams(cfg, xv[0], yv[0])
    lo = np.zeros_like(hi)
    for axis, values in ((cfg.x, xv[1]), (cfg.y, yv[1])):
        for col in table_columns(axis.param, depth):
            lo[:, col] = np.asarray(values, dtype=np.float64)
    return hi, lo
