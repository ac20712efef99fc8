"""An independent plain-numpy trainer with the training tricks of issue 32: optimizers, schedules, residual, layer norm.

Why.  Issue 32 adds optimizers (momentum, Nesterov, Adam, AdamW), learning-rate
schedules, residual connections and layer normalisation to the kernels.  A
kernel change that trains every pixel differently can only be trusted against
something written separately from the maths: this module.  It trains one pixel,
or a batch of pixels vectorised over the pixel axis with numpy, of a
fractaltrain :class:`~fractaltrain.problem.Problem`, and reports the same four
results as the kernel (measure, final, probe, steps).  Its training imports nothing
from ``fractaltrain.compute`` and no numba (only :func:`self_test` imports the
kernel, to compare with it), so a bug there cannot hide in both; from
the package it takes only the drawn arrays (``problem.weights``, ``X``, ``Y``,
``probe``, ``batch_indices``, ``alphas``) and the per-pixel table's layout.

The training (PAPER.md; ``fractaltrain/compute/kernel/block.py``), step
``t = 0 .. steps-1``:

1. add the pixel's per-step W0 drift to every entry of W0;
2. the full-batch loss ``l_t = mean((ŷ − y)²)`` over points and outputs (taken
   before the step's update);
3. the gradient of the full batch, or of the rows ``problem.batch_indices[t]``
   (mean over those rows, duplicates counted);
4. the optimizer's direction ``u`` (below), and per layer ``k``
   ``θ_k ← θ_k − lr_k·f(t)·u_k`` with the pixel's learning rate ``lr_k`` and
   the schedule's factor ``f(t)``.

Initial weights ``W = scale·w0`` with the initial offset added to every W0
entry.  The measure: ``v_t = min(l_t/l_0, 1e6)``, a non-finite loss counts as
a loss of 1e6 and ends the run (its ``v`` repeats to the last step, the
weights and optimizer state are zeroed); converged iff the mean of the last
``min(20, steps)`` values of ``v`` is below 1; ``measure = −Σv`` if converged,
else ``Σ1/v`` (sums in time order); ``final = log10(v_last)``; ``probe`` is the
first output at ``problem.probe`` after the last step (1e6 for a dead run or a
non-finite output); ``steps`` is the step of death, else all.

Optimizers (optax's rules, issue 32; ``g`` the gradient, ``t' = t+1 = 1, 2, ...``):

=========  =====================================================================
sgd        ``u = g``  (the paper's steepest descent)
momentum   ``v ← g + β·v``;  ``u = v``                       (optax.sgd(momentum=β))
nesterov   ``v ← g + β·v``;  ``u = g + β·v``                 (optax.sgd(momentum=β, nesterov=True))
adam       ``m ← (1−β1)·g + β1·m``; ``v ← (1−β2)·g² + β2·v``;
           ``u = (m/(1−β1^t')) / (sqrt(v/(1−β2^t')) + eps)``  (optax.adam, eps_root 0)
adamw      ``u = adam's u + weight_decay·θ``                  (optax.adamw; θ after the drift)
=========  =====================================================================

Defaults: momentum 0.9, beta1 0.9, beta2 0.999, eps 1e-8, and weight_decay
1e-4, optax's ``adamw`` default (``fractaltrain.config.optimizer`` says the
same).  The state starts at zero.

Schedules: the factor ``f(t)`` of the 0-based step ``t`` is optax's schedule
evaluated at its update count, which is ``t`` (``scale_by_schedule`` reads
``schedule(count)`` and then increments ``count`` from 0), with ``T = steps``
and ``W = warmup_steps``:

=============  =================================================================
constant       ``f = 1``
warmup         ``f = (0 − 1)·(1 − min(t, W)/W) + 1``, i.e. ``t/W`` for ``t < W``, then 1
               (optax.linear_schedule(0, 1, W)); so step 0 gets factor 0 and does
               not move the weights, step ``W-1`` gets ``(W−1)/W``, steps ``≥ W`` get 1
cosine         ``f = (1 − a)·½(1 + cos(π·min(t, T)/T)) + a``, ``a = final_fraction``
               (optax.cosine_decay_schedule(1, T, alpha=a)); ``f(0) = 1`` and the
               last step ``T−1`` gets slightly more than ``a`` (``a`` is reached
               at ``t = T``, after the run)
warmup_cosine  warmup for ``t < W``, then cosine over ``T − W`` steps at ``t − W``
               (optax.warmup_cosine_decay_schedule(0, 1, W, T, end_value=a))
=============  =================================================================

``warmup_steps = 0`` means no warmup (``f = 1`` for ``warmup``; plain cosine for
``warmup_cosine``): optax's ``linear_schedule`` would instead hold its initial
value 0 and never train.  The arithmetic is written in optax's order (the
linear ramp as ``(0 − 1)·frac + 1``) so the optax cross-check agrees to the last
bits.  (Inside an optimizer optax evaluates the schedule at its int32 update
count, where ``count / W`` comes out in float32 even with ``jax_enable_x64``:
optax's own warmup factors are float32 roundings of ``t/W``, e.g. 0.19999999
for 1/5.  Here they are float64, as a float64 kernel will have them.)

Architecture.  Hidden layer ``l = 0 .. depth-2`` of the mean-field network has
pre-activations ``z_l = α_l·(a_l W_l)`` with ``α_l = sqrt(g/fan_in)``:

* ``norm: layer``: ``n_l = (z_l − mean(z_l)) / sqrt(mean((z_l − mean(z_l))²) + norm_eps)``,
  means over the layer's units for each data point, no learned gain or bias,
  on every hidden layer (the first one too); ``norm_eps = 1e-5`` (PyTorch's
  ``LayerNorm`` and Haiku's default; flax's ``LayerNorm`` uses 1e-6).  ``α_l``
  then cancels except against ``norm_eps``.  Without a norm ``n_l = z_l``.
* the layer's output is ``h_l = σ(n_l)``; ``residual: true`` makes it
  ``a_{l+1} = a_l + h_l`` on every hidden-to-hidden layer (``l = 1 .. depth-2``,
  ``width → width``; the input layer ``l = 0`` is input-to-hidden even when the
  input dimension equals the width), so it needs ``depth ≥ 3``; otherwise
  ``a_{l+1} = h_l``.  The output ``ŷ = (1/width)·a_{depth-1} W_{depth-1}`` is unchanged.

Gradients are derived by hand (explicit backprop through the residual sum and
the layer norm, :func:`loss_and_gradient`) and checked against central finite
differences in :func:`self_test`; where JAX and optax are installed (they are
optional: ``pip install 'fractaltrain[jax]' optax``), one pixel is also trained
with ``jax.grad`` and optax's own optimizers and schedules (:func:`optax_losses`).

API: :class:`TrainingTricks`; :func:`train` (results), :func:`losses` (curves),
:func:`weights_after` (the weights after some steps), :func:`schedule_factor`,
:func:`loss_and_gradient`; :func:`table_settings` reads per-pixel optimizer
settings from a per-pixel table that has them.  As a script::

    python scripts/tricks_reference.py self-test
    python scripts/tricks_reference.py train configs/demo.yaml --optimizer adam --beta1 0.8 \\
        --schedule warmup --warmup-steps 10 --resolution 8x8 --steps 100 [--npz out.npz]

``train`` reads the tricks from the YAML (``training.optimizer``,
``training.schedule``, ``network.residual``, ``network.norm``, the issue's
schema) and then from the flags, trains the config's grid and prints one JSON
line (with ``--npz``, writes the four result arrays too).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

MAXV = 1e6  # clip of v_t and stand-in for a non-finite loss (PAPER.md)
TAIL = 20  # convergence is judged on the mean of the last TAIL values of v_t

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")
SCHEDULES = ("constant", "warmup", "cosine", "warmup_cosine")
NORMS = ("none", "layer")
#: The numeric settings that may differ per pixel (``settings=`` of :func:`train`).
SETTINGS = ("momentum", "beta1", "beta2", "eps", "weight_decay", "warmup_steps", "final_fraction")
#: Order of the settings in a per-pixel table that has them (after the init scale); the package's
#: ``fractaltrain.config.hyperparams.TRICK_PARAMS`` where it exists.
TABLE_SETTINGS = ("momentum", "beta1", "beta2", "eps", "weight_decay", "warmup_steps", "final_fraction")
# per-pixel table columns after the depth learning rates (fractaltrain.config.hyperparams)
HP_DRIFT, HP_OFFSET, HP_SCALE, HP_OPT = 0, 1, 2, 3


@dataclass(frozen=True)
class TrainingTricks:
    """The optimizer, the schedule and the architecture changes one run trains with.

    The defaults are today's training (sgd, constant rate, plain network), so
    ``TrainingTricks()`` must reproduce the kernel.  Settings an optimizer or
    schedule does not read are ignored; they keep their defaults so that a
    per-pixel override (``settings=`` of :func:`train`) has one place to start.

    Attributes
    ----------
    optimizer : one of :data:`OPTIMIZERS`.
    momentum : β of momentum and nesterov (optax's ``momentum``), in [0, 1).
    beta1, beta2, eps : adam's and adamw's settings (optax's ``b1``, ``b2``, ``eps``).
    weight_decay : adamw's decoupled decay, 1e-4 by default as optax's ``adamw``.
    schedule : one of :data:`SCHEDULES`.
    warmup_steps : length ``W`` of the linear warmup (``warmup``, ``warmup_cosine``); 0: none.
    final_fraction : the cosine's floor, as a fraction of the rate (optax's ``alpha``).
    residual : skip connections on the hidden-to-hidden layers (depth ≥ 3).
    norm : ``"none"`` or ``"layer"`` (layer norm of every hidden layer's pre-activations).
    norm_eps : added to the variance inside the square root of the layer norm.
    """

    optimizer: str = "sgd"
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 1e-4
    schedule: str = "constant"
    warmup_steps: float = 0
    final_fraction: float = 0.0
    residual: bool = False
    norm: str = "none"
    norm_eps: float = 1e-5

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.norm not in NORMS:
            raise ValueError(f"norm: one of {', '.join(NORMS)}, got {self.norm!r}")
        _check_settings({k: np.asarray(getattr(self, k), dtype=np.float64) for k in SETTINGS})
        if not self.norm_eps >= 0.0:
            raise ValueError(f"norm_eps: must be >= 0, got {self.norm_eps!r}")

    def replace(self, **changes) -> "TrainingTricks":
        """A copy with some fields changed (a frozen dataclass has no setters)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any] | None) -> "TrainingTricks":
        """The tricks a raw config mapping (a parsed YAML file) asks for, in issue 32's schema.

        ``training.optimizer``: a name or ``{name: ..., <settings>}``;
        ``training.schedule``: a name or ``{name: ..., warmup_steps: ..., final_fraction: ...}``;
        ``network.residual``: a boolean; ``network.norm``: ``layer`` or ``none``
        (also ``null``/``false``), or ``{name: layer, eps: ...}``.  Absent keys
        keep the defaults.
        """
        raw = raw or {}
        training = raw.get("training") or {}
        network = raw.get("network") or {}
        fields: dict[str, Any] = {}
        for key, name_field, allowed in (("optimizer", "optimizer", ("momentum", "beta1", "beta2", "eps", "weight_decay")),
                                         ("schedule", "schedule", ("warmup_steps", "final_fraction"))):
            value = training.get(key)
            if value is None:
                continue
            if isinstance(value, str):
                value = {"name": value}
            if not isinstance(value, Mapping) or "name" not in value:
                raise ValueError(f"training.{key}: a name or a mapping with 'name', got {value!r}")
            fields[name_field] = value["name"]
            for k, v in value.items():
                if k == "name":
                    continue
                if k not in allowed:
                    raise ValueError(f"training.{key}.{k}: unknown setting (allowed: {', '.join(allowed)})")
                fields[k] = float(v)
        if "residual" in network:
            fields["residual"] = bool(network["residual"])
        norm = network.get("norm")
        if isinstance(norm, Mapping):
            fields["norm"] = norm.get("name", "layer")
            if "eps" in norm:
                fields["norm_eps"] = float(norm["eps"])
        elif norm not in (None, False):
            fields["norm"] = str(norm)
        return cls(**fields)

    @classmethod
    def from_config(cls, cfg, **changes) -> "TrainingTricks":
        """The tricks a parsed config has (``cfg.training.optimizer``/``schedule``, ``cfg.network.residual``/``norm``,
        those the installed package knows), plus ``changes``."""
        fields: dict[str, Any] = {}
        for section, key in ((cfg.training, "optimizer"), (cfg.training, "schedule")):
            part = getattr(section, key, None)
            if part is not None:
                fields[key] = part.name
                fields.update({k: getattr(part, k) for k in SETTINGS if hasattr(part, k)})
        for key in ("residual", "norm"):
            value = getattr(cfg.network, key, None)
            if value is not None:
                fields[key] = value if key == "residual" else (value or "none")
        return cls(**{**fields, **changes})

    def to_dict(self) -> dict[str, Any]:
        """All fields, for JSON."""
        return dataclasses.asdict(self)


def _check_settings(s: Mapping[str, np.ndarray]) -> None:
    """Refuse settings outside the ranges where the rules mean what they say (arrays or scalars)."""
    ranges = {
        "momentum": (lambda v: (v >= 0) & (v < 1), "in [0, 1)"),
        "beta1": (lambda v: (v >= 0) & (v < 1), "in [0, 1)"),
        "beta2": (lambda v: (v >= 0) & (v < 1), "in [0, 1)"),
        "eps": (lambda v: v > 0, "> 0"),
        "weight_decay": (lambda v: v >= 0, ">= 0"),
        "warmup_steps": (lambda v: v >= 0, ">= 0"),
        "final_fraction": (lambda v: (v >= 0) & (v <= 1), "in [0, 1]"),
    }
    for k, v in s.items():
        ok, text = ranges[k]
        if not np.all(ok(np.asarray(v, dtype=np.float64))):
            raise ValueError(f"{k}: must be {text}, got {v!r}")


# --------------------------------------------------------------------------- schedules


def schedule_factor(tricks: TrainingTricks, t, steps: int, settings: Mapping[str, Any] | None = None):
    """The factor ``f(t)`` the schedule puts on every learning rate at 0-based step ``t``.

    Written in optax's operation order (module docstring) so that it equals
    optax's schedule at update count ``t``.  ``t`` may be an int or an array;
    ``warmup_steps`` and ``final_fraction`` may come per pixel from ``settings``
    (then the result has the pixels' shape, broadcast against ``t``).

    Raises
    ------
    ValueError
        For ``warmup_cosine`` with ``warmup_steps >= steps`` (no step left to
        decay over; optax refuses it too).
    """
    s = settings or {}
    W = np.asarray(s.get("warmup_steps", tricks.warmup_steps), dtype=np.float64)
    a = np.asarray(s.get("final_fraction", tricks.final_fraction), dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    name = tricks.schedule
    if name == "constant":
        f = np.ones(np.broadcast_shapes(t.shape, W.shape, a.shape))
    elif name == "cosine":
        f = _cosine(t, float(steps), a)
    elif name == "warmup":
        f = _warmup(t, W)
    else:
        if np.any(W >= steps):
            raise ValueError(f"warmup_cosine: warmup_steps ({W}) must be below the run's steps ({steps})")
        with np.errstate(all="ignore"):
            f = np.where(t < W, _warmup(t, W), _cosine(t - W, steps - W, a))
    return float(f) if f.ndim == 0 else f


def _warmup(t, W):
    """optax.linear_schedule(0, 1, W) at count t: ``(0 − 1)·(1 − clip(t, 0, W)/W) + 1``; 1 throughout for W = 0."""
    with np.errstate(all="ignore"):
        frac = 1.0 - np.clip(t, 0.0, W) / W
        ramp = (0.0 - 1.0) * frac + 1.0
    return np.where(W > 0, ramp, 1.0)


def _cosine(t, T, a):
    """optax.cosine_decay_schedule(1, T, alpha=a) at count t: ``(1 − a)·½(1 + cos(π·min(t, T)/T)) + a``."""
    c = np.minimum(t, T)
    cosine_decay = 0.5 * (1.0 + np.cos(np.pi * c / T))
    return ((1.0 - a) * cosine_decay + a) * 1.0


# --------------------------------------------------------------------------- the network and its gradient


class _Net:
    """The forward and backward passes of one problem's network with the tricks' architecture.

    Weights are lists of (pixels, fan_in, fan_out) arrays; the data are shared
    by every pixel, so the first layer's product broadcasts ``(points, inputs)``
    against ``(pixels, inputs, width)``.
    """

    def __init__(self, problem, tricks: TrainingTricks):
        net = problem.config.network
        self.nonlin = net.nonlinearity
        self.alphas = np.asarray(problem.alphas, dtype=np.float64)
        self.depth = len(problem.weights)
        self.norm = tricks.norm == "layer"
        self.norm_eps = float(tricks.norm_eps)
        if tricks.residual and self.depth < 3:
            raise ValueError(f"residual: needs depth >= 3 (a hidden-to-hidden layer), the network has depth {self.depth}")
        shapes = [w.shape for w in problem.weights]
        # hidden-to-hidden layers of equal width: l = 1 .. depth-2
        self.residual = [bool(tricks.residual) and 1 <= l <= self.depth - 2 and shapes[l][0] == shapes[l][1]
                         for l in range(self.depth)]

    def _sigma(self, n):
        if self.nonlin == "tanh":
            a = np.tanh(n)
            return a, 1.0 - a * a
        if self.nonlin == "relu":
            return np.maximum(n, 0.0), (n > 0).astype(np.float64)
        return n, np.ones_like(n)

    def forward(self, W, A0):
        """Output (pixels, points, outputs) and what the backward pass needs."""
        a = A0
        cache = []
        for l in range(self.depth - 1):
            z = self.alphas[l] * (a @ W[l])
            s = None
            if self.norm:
                c = z - z.mean(axis=-1, keepdims=True)
                s = np.sqrt((c * c).mean(axis=-1, keepdims=True) + self.norm_eps)
                n = c / s
            else:
                n = z
            h, dh = self._sigma(n)
            cache.append((a, n, s, dh))
            a = a + h if self.residual[l] else h
        out = self.alphas[-1] * (a @ W[-1])
        cache.append((a, None, None, None))
        return out, cache

    def loss(self, W, X, Y):
        """Mean squared error per pixel over points and outputs."""
        out, _ = self.forward(W, X)
        r = out - Y
        return (r * r).mean(axis=(-2, -1))

    def loss_and_grad(self, W, X, Y):
        """Per-pixel loss on (X, Y) and its gradient with respect to every layer, by backprop.

        Layer norm: with ``y = c/s``, ``c = z − mean(z)``, ``s = sqrt(mean(c²) + eps)``,
        ``∂y_i/∂z_j = (δ_ij − 1/H − y_i·y_j/H)/s``, so
        ``dz = (dy − mean(dy) − y·mean(dy·y))/s`` (exact for any eps).
        Residual: ``a_{l+1} = a_l + σ(n_l)`` passes ``da_{l+1}`` to ``a_l`` unchanged,
        besides the branch's ``du·W_lᵀ``.
        """
        out, cache = self.forward(W, X)
        r = out - Y
        loss = (r * r).mean(axis=(-2, -1))
        d = 2.0 * r / (r.shape[-2] * r.shape[-1])  # dL/dŷ
        grads = [None] * self.depth
        du = self.alphas[-1] * d
        a_last = cache[-1][0]
        grads[-1] = np.swapaxes(a_last, -1, -2) @ du
        da = du @ np.swapaxes(W[-1], -1, -2)
        for l in range(self.depth - 2, -1, -1):
            a, n, s, dh = cache[l]
            dn = da * dh
            if self.norm:
                dz = (dn - dn.mean(axis=-1, keepdims=True) - n * (dn * n).mean(axis=-1, keepdims=True)) / s
            else:
                dz = dn
            du = self.alphas[l] * dz
            grads[l] = np.swapaxes(a, -1, -2) @ du
            if l > 0:
                back = du @ np.swapaxes(W[l], -1, -2)
                da = back + da if self.residual[l] else back
        return loss, grads


def loss_and_gradient(problem, weights, tricks: TrainingTricks = TrainingTricks(), rows=None):
    """Loss and hand-derived gradient of one set of weights (a list of 2-D arrays), on the rows given.

    ``rows``: indices of data points (a minibatch, duplicates counted), or
    None for all.  The loss is of the same rows, so finite differences of it
    check the gradient (in training the loss that is tracked is always the
    full batch's).  Returns ``(loss, [grad per layer])``.
    """
    net = _Net(problem, tricks)
    X, Y = (problem.X, problem.Y) if rows is None else (problem.X[rows], problem.Y[rows])
    W = [np.asarray(w, dtype=np.float64)[None] for w in weights]
    loss, grads = net.loss_and_grad(W, X, Y)
    return float(loss[0]), [g[0] for g in grads]


def loss_only(problem, weights, tricks: TrainingTricks = TrainingTricks(), rows=None) -> float:
    """The loss :func:`loss_and_gradient` differentiates (forward pass only), for finite differences."""
    net = _Net(problem, tricks)
    X, Y = (problem.X, problem.Y) if rows is None else (problem.X[rows], problem.Y[rows])
    return float(net.loss([np.asarray(w, dtype=np.float64)[None] for w in weights], X, Y)[0])


# --------------------------------------------------------------------------- optimizers


class _Optimizer:
    """Optimizer state for a batch of pixels and the direction ``u`` of each step (module docstring)."""

    def __init__(self, tricks: TrainingTricks, s: Mapping[str, np.ndarray], shapes):
        self.name = tricks.optimizer
        self.s = s  # per-pixel settings, each (pixels, 1, 1)
        self.t = 0
        zeros = [np.zeros(sh) for sh in shapes]
        self.S1 = [z.copy() for z in zeros] if self.name != "sgd" else None
        self.S2 = [z.copy() for z in zeros] if self.name in ("adam", "adamw") else None

    def direction(self, grads, W):
        self.t += 1
        if self.name == "sgd":
            return grads
        if self.name in ("momentum", "nesterov"):
            beta = self.s["momentum"]
            out = []
            for k, g in enumerate(grads):
                v = g + beta * self.S1[k]
                self.S1[k] = v
                out.append(v if self.name == "momentum" else g + beta * v)
            return out
        b1, b2, eps = self.s["beta1"], self.s["beta2"], self.s["eps"]
        c1 = 1.0 - b1 ** self.t
        c2 = 1.0 - b2 ** self.t
        out = []
        for k, g in enumerate(grads):
            m = (1.0 - b1) * g + b1 * self.S1[k]
            v = (1.0 - b2) * (g * g) + b2 * self.S2[k]
            self.S1[k], self.S2[k] = m, v
            u = (m / c1) / (np.sqrt(v / c2) + eps)
            if self.name == "adamw":
                u = u + self.s["weight_decay"] * W[k]
            out.append(u)
        return out

    def zero(self, dead):
        """Zero the state of dead pixels, as their weights are."""
        for S in (self.S1, self.S2):
            if S is not None:
                for x in S:
                    x[dead] = 0.0


# --------------------------------------------------------------------------- training


def table_settings(problem, hp) -> dict[str, np.ndarray]:
    """Per-pixel optimizer and schedule settings from a per-pixel table that has them (columns after the init scale).

    The package's table (``pixel_hyperparams``) carries momentum, beta1,
    beta2, eps, weight_decay, warmup_steps and final_fraction after the init
    scale when its config uses an optimizer or schedule with settings (so they
    can be axes); older tables and plain sgd's have none, and then this is
    empty.  The names and their order are the package's
    (``fractaltrain.config.hyperparams.TRICK_PARAMS``) where it has them.
    """
    hp = np.atleast_2d(np.asarray(hp, dtype=np.float64))
    depth = len(problem.weights)
    try:
        from fractaltrain.config.hyperparams import TRICK_PARAMS as names
    except ImportError:
        try:
            from fractaltrain.config.optimizer import OPT_PARAMS as names
        except ImportError:
            names = TABLE_SETTINGS
    first = depth + HP_OPT
    n = max(0, min(hp.shape[1] - first, len(names)))
    return {k: hp[:, first + j].copy() for j, k in enumerate(names[:n])}


def _pixel_settings(tricks: TrainingTricks, B: int, settings) -> dict[str, np.ndarray]:
    s = {k: np.full(B, float(getattr(tricks, k))) for k in SETTINGS}
    for k, v in (settings or {}).items():
        if k not in SETTINGS:
            raise ValueError(f"settings: unknown {k!r} (allowed: {', '.join(SETTINGS)})")
        s[k] = np.broadcast_to(np.asarray(v, dtype=np.float64), (B,)).copy()
    _check_settings(s)
    return s


def _run(problem, hp, tricks: TrainingTricks, settings=None, record=False, stop_after=None):
    """Train every row of ``hp``; the results, the loss curves when ``record``, and the final weights."""
    cfg = problem.config
    steps = cfg.training.steps
    hp = np.atleast_2d(np.asarray(hp, dtype=np.float64))
    B = hp.shape[0]
    depth = len(problem.weights)
    if hp.shape[1] < depth + 3:
        raise ValueError(f"hp: need at least depth + 3 = {depth + 3} columns, got {hp.shape[1]}")
    if isinstance(settings, str):
        if settings != "table":
            raise ValueError("settings: a mapping of per-pixel arrays, or 'table'")
        settings = table_settings(problem, hp)
    s = _pixel_settings(tricks, B, settings)
    f_all = np.broadcast_to(
        schedule_factor(tricks, np.arange(steps)[None, :], steps,
                        {k: s[k][:, None] for k in ("warmup_steps", "final_fraction")}), (B, steps))
    net = _Net(problem, tricks)
    lr = hp[:, :depth]
    drift = hp[:, depth + HP_DRIFT][:, None, None]
    offset = hp[:, depth + HP_OFFSET][:, None, None]
    scale = hp[:, depth + HP_SCALE][:, None, None]
    W = [scale * np.asarray(w, dtype=np.float64)[None] for w in problem.weights]
    W[0] = W[0] + offset
    opt = _Optimizer(tricks, {k: v[:, None, None] for k, v in s.items()}, [w.shape for w in W])
    X, Y, bidx = problem.X, problem.Y, problem.batch_indices
    n_run = steps if stop_after is None else min(stop_after, steps)

    V = np.zeros((B, steps))
    curves = np.full((B, steps), np.nan) if record else None
    l0 = np.zeros(B)
    alive = np.ones(B, dtype=bool)
    dead_v = np.zeros(B)
    dead_l = np.zeros(B)
    trained = np.full(B, steps, dtype=np.int64)
    t_stop = n_run
    with np.errstate(all="ignore"):
        for t in range(n_run):
            W[0] = W[0] + drift
            if bidx is None:
                loss, grads = net.loss_and_grad(W, X, Y)
            else:
                loss = net.loss(W, X, Y)
                _, grads = net.loss_and_grad(W, X[bidx[t]], Y[bidx[t]])
            finite = np.isfinite(loss)
            lt = np.where(finite, loss, MAXV)
            if t == 0:
                l0 = lt.copy()
            v = np.minimum(lt / l0, MAXV)
            dying = alive & ~finite
            dead_v[dying] = v[dying]
            dead_l[dying] = loss[dying]
            trained[dying] = t
            alive &= finite
            v = np.where(alive, v, dead_v)
            V[:, t] = v
            if record:
                curves[:, t] = np.where(alive | dying, loss, dead_l)
            if not alive.any():
                t_stop = t + 1
                break
            u = opt.direction(grads, W)
            f = f_all[:, t]
            for k in range(depth):
                W[k] = W[k] - (lr[:, k] * f)[:, None, None] * u[k]
            dead = ~alive
            if dead.any():
                for w in W:
                    w[dead] = 0.0
                opt.zero(dead)
        for t in range(t_stop, steps):  # what the dead pixels repeat (also when a whole batch died early)
            V[:, t] = dead_v
            if record:
                curves[:, t] = dead_l
        out, _ = net.forward(W, problem.probe[None, :])
    probe = out[:, 0, 0]
    probe = np.where(alive & np.isfinite(probe), probe, MAXV)
    return V, curves, probe, trained, W


def _measure(V) -> tuple[np.ndarray, np.ndarray]:
    """Measure and final readout of the v histories (pixels, steps), sums in time order as the kernel."""
    steps = V.shape[1]
    k = min(TAIL, steps)
    s_v = np.zeros(V.shape[0])
    s_inv = np.zeros(V.shape[0])
    for t in range(steps):
        s_v += V[:, t]
        s_inv += 1.0 / V[:, t]
    tsum = np.zeros(V.shape[0])
    for t in range(steps - k, steps):
        tsum += V[:, t]
    converged = tsum / k < 1.0
    return np.where(converged, -s_v, s_inv), np.log10(V[:, -1])


def train(problem, hp_row, tricks: TrainingTricks = TrainingTricks(), settings=None) -> dict[str, Any]:
    """Train one pixel (``hp_row`` 1-D) or a batch (2-D, one row per pixel) and return the kernel's four results.

    Parameters
    ----------
    problem : fractaltrain.problem.Problem, the shared draws and config (steps, batch).
    hp_row : the per-pixel table row(s) of ``pixel_hyperparams``: the learning
        rate of each layer, the per-step W0 drift, the initial W0 offset, the
        init scale; further columns are read only with ``settings="table"``.
    tricks : the optimizer, schedule and architecture.
    settings : optional per-pixel values of :data:`SETTINGS` (a mapping of
        arrays with one value per row, or scalars) that replace the tricks'
        settings, for landscapes with a setting as an axis; or ``"table"`` to
        read the optimizer settings from ``hp_row``'s extra columns
        (:func:`table_settings`).

    Returns
    -------
    dict with ``measure``, ``final`` (log10 of the last v), ``probe``, ``steps``
    (the steps trained): floats and an int for one pixel, arrays for a batch.
    """
    one = np.asarray(hp_row).ndim == 1
    V, _, probe, trained, _ = _run(problem, hp_row, tricks, settings)
    measure, final = _measure(V)
    if one:
        return {"measure": float(measure[0]), "final": float(final[0]), "probe": float(probe[0]), "steps": int(trained[0])}
    return {"measure": measure, "final": final, "probe": probe, "steps": trained}


def losses(problem, hp_row, tricks: TrainingTricks = TrainingTricks(), settings=None) -> np.ndarray:
    """The full-batch loss curve ``l_0 .. l_{steps-1}`` of one pixel (steps,) or a batch (pixels, steps).

    After a run dies its non-finite loss repeats to the end, so the measure of
    PAPER.md computed from the curve (``tests/measure_reference.py``) equals
    :func:`train`'s measure.
    """
    one = np.asarray(hp_row).ndim == 1
    _, curves, _, _, _ = _run(problem, hp_row, tricks, settings, record=True)
    return curves[0] if one else curves


def weights_after(problem, hp_row, tricks: TrainingTricks, n_steps: int, settings=None) -> list[np.ndarray]:
    """The weights after ``n_steps`` updates (each step: drift, loss, gradient, update), one pixel's or a batch's.

    For checks of single steps (adam's first step has a closed form).  The
    drift of step ``n_steps`` itself is not yet added.
    """
    one = np.asarray(hp_row).ndim == 1
    *_, W = _run(problem, hp_row, tricks, settings, stop_after=n_steps)
    return [w[0] for w in W] if one else W


# --------------------------------------------------------------------------- the optional JAX/optax cross-check


def optax_available() -> bool:
    """Whether JAX and optax can be imported (neither is needed for anything else here)."""
    return importlib.util.find_spec("jax") is not None and importlib.util.find_spec("optax") is not None


def _optax_schedule(optax, tricks: TrainingTricks, steps: int):
    W, a = tricks.warmup_steps, tricks.final_fraction
    if tricks.schedule == "constant":
        return optax.constant_schedule(1.0)
    if tricks.schedule == "cosine":
        return optax.cosine_decay_schedule(1.0, steps, alpha=a)
    if tricks.schedule == "warmup":
        return optax.linear_schedule(0.0, 1.0, int(W)) if W > 0 else optax.constant_schedule(1.0)
    if W == 0:
        return optax.cosine_decay_schedule(1.0, steps, alpha=a)
    return optax.warmup_cosine_decay_schedule(0.0, 1.0, int(W), steps, end_value=a)


def optax_schedule_factors(tricks: TrainingTricks, steps: int) -> np.ndarray:
    """optax's own schedule at counts 0 .. steps-1 (needs JAX and optax)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import optax

    sched = _optax_schedule(optax, tricks, steps)
    return np.array([float(sched(t)) for t in range(steps)])


def optax_losses(problem, hp_row, tricks: TrainingTricks) -> tuple[np.ndarray, list[np.ndarray]]:
    """One pixel trained with ``jax.grad`` and optax's optimizer and schedule: its loss curve, and the first gradient.

    Independent of this module's backprop and update rules: the network is the
    same maths in ``jax.numpy``, the gradient is ``jax.grad``'s, and the update
    is ``optax.sgd``/``adam``/``adamw`` with ``learning_rate`` the schedule,
    its update multiplied per layer by ``lr_k``.  The run is not stopped at a
    non-finite loss; compare converging pixels.
    """
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax

    cfg = problem.config
    steps = cfg.training.steps
    depth = len(problem.weights)
    alphas = [float(a) for a in problem.alphas]
    residual = _Net(problem, tricks).residual
    nonlin, norm, norm_eps = cfg.network.nonlinearity, tricks.norm == "layer", tricks.norm_eps
    hp = np.asarray(hp_row, dtype=np.float64)

    def net(theta, X):
        a = X
        for l in range(depth - 1):
            z = alphas[l] * (a @ theta[l])
            if norm:
                c = z - jnp.mean(z, axis=-1, keepdims=True)
                z = c / jnp.sqrt(jnp.mean(c * c, axis=-1, keepdims=True) + norm_eps)
            h = jnp.tanh(z) if nonlin == "tanh" else (jnp.maximum(z, 0.0) if nonlin == "relu" else z)
            a = a + h if residual[l] else h
        return alphas[-1] * (a @ theta[-1])

    def loss_fn(theta, X, Y):
        return jnp.mean((net(theta, X) - Y) ** 2)

    # optax evaluates a schedule at its int32 update count, and the linear ramp's count / W then comes out in
    # float32 even with jax_enable_x64 (optax 0.2.8: a factor 0.19999999 for 1/5): evaluate it at a float64
    # count, as this module does, so the comparison is of the update rules and not of that rounding
    base = _optax_schedule(optax, tricks, steps)

    def sched(count):
        return base(jnp.asarray(count, dtype=jnp.float64))

    o = tricks.optimizer
    if o == "sgd":
        tx = optax.sgd(sched)
    elif o in ("momentum", "nesterov"):
        tx = optax.sgd(sched, momentum=tricks.momentum, nesterov=(o == "nesterov"))
    elif o == "adam":
        tx = optax.adam(sched, b1=tricks.beta1, b2=tricks.beta2, eps=tricks.eps)
    else:
        tx = optax.adamw(sched, b1=tricks.beta1, b2=tricks.beta2, eps=tricks.eps, weight_decay=tricks.weight_decay)
    lr = [float(x) for x in hp[:depth]]
    drift, offset, scale = (float(hp[depth + k]) for k in (HP_DRIFT, HP_OFFSET, HP_SCALE))
    theta = [scale * jnp.asarray(w) for w in problem.weights]
    theta[0] = theta[0] + offset
    X, Y = jnp.asarray(problem.X), jnp.asarray(problem.Y)
    state = tx.init(theta)

    @jax.jit
    def step(theta, state, Xb, Yb):
        theta = [theta[0] + drift] + list(theta[1:])
        loss = loss_fn(theta, X, Y)
        g = jax.grad(loss_fn)(theta, Xb, Yb)
        upd, state = tx.update(g, state, theta)
        theta = [p + lr_k * u for p, lr_k, u in zip(theta, lr, upd)]
        return theta, state, loss, g

    out, first_grad = [], None
    for t in range(steps):
        if problem.batch_indices is None:
            Xb, Yb = X, Y
        else:
            idx = np.asarray(problem.batch_indices[t])
            Xb, Yb = X[idx], Y[idx]
        theta, state, loss, g = step(theta, state, Xb, Yb)
        if first_grad is None:
            first_grad = [np.asarray(x) for x in g]
        out.append(float(loss))
    return np.array(out), first_grad


# --------------------------------------------------------------------------- self-test


def _tiny_problem(depth=3, nonlinearity="tanh", width=4, steps=30, batch="full"):
    """A tiny problem (width 4, 12 points) from the package's config parser, as tests/test_kernel.py's small_cfg."""
    from fractaltrain.config import config_from_dict
    from fractaltrain.problem import build_problem

    raw = {"network": {"width": width, "depth": depth, "nonlinearity": nonlinearity},
           "data": {"size": 12}, "training": {"steps": steps, "batch": batch}, "resolution": "16x16", "tile": 8}
    return build_problem(config_from_dict(raw))


def finite_difference_error(problem, tricks: TrainingTricks, seed=5, h=1e-6, rows=None) -> float:
    """Largest ``|grad − fd| / (|fd| + 1e-6)`` over every weight: hand gradient against central differences.

    The weights are the problem's, perturbed (seeded) so no unit sits at a
    special point.
    """
    rng = np.random.default_rng(seed)
    weights = [w + 0.1 * rng.standard_normal(w.shape) for w in problem.weights]
    _, grads = loss_and_gradient(problem, weights, tricks, rows)
    worst = 0.0
    for l, w in enumerate(weights):
        for idx in np.ndindex(w.shape):
            wp = [x.copy() for x in weights]
            wm = [x.copy() for x in weights]
            wp[l][idx] += h
            wm[l][idx] -= h
            fd = (loss_only(problem, wp, tricks, rows) - loss_only(problem, wm, tricks, rows)) / (2 * h)
            worst = max(worst, abs(grads[l][idx] - fd) / (abs(fd) + 1e-6))
    return worst


def self_test(verbose=True) -> dict[str, Any]:
    """Check the reference against itself, the kernel and (when installed) JAX and optax; raise on a failure.

    Finite differences of the residual and layer-norm gradients at depth 3
    and 4; momentum with β = 0 is sgd; adam's first step is
    ``−lr·sign(g)/(1 + eps/|g|)``; sgd equals the kernel's measures on
    converging pixels; the schedules' factors at chosen steps; with optax,
    one pixel per optimizer against ``jax.grad`` and optax.
    """
    report: dict[str, Any] = {}
    worst = 0.0
    for depth in (3, 4):
        for nonlin in ("tanh", "identity"):
            pb = _tiny_problem(depth, nonlin)
            for tr in (TrainingTricks(residual=True), TrainingTricks(norm="layer"),
                       TrainingTricks(residual=True, norm="layer")):
                worst = max(worst, finite_difference_error(pb, tr))
    report["finite_difference_worst_relative"] = worst
    assert worst < 1e-5, worst

    pb = _tiny_problem(3, steps=25)
    hp = np.array([0.3, 0.2, 0.4, 0.0, 0.0, 1.0])
    a = train(pb, hp, TrainingTricks())
    b = train(pb, hp, TrainingTricks(optimizer="momentum", momentum=0.0))
    report["momentum_beta0_equals_sgd"] = a == b
    assert a == b, (a, b)

    pb2 = _tiny_problem(2, steps=5)
    hp2 = np.array([0.3, 0.2, 0.0, 0.0, 1.0])
    tr = TrainingTricks(optimizer="adam")
    W1 = weights_after(pb2, hp2, tr, 1)
    _, g = loss_and_gradient(pb2, list(pb2.weights), tr)
    err = max(float(np.max(np.abs(W1[k] - (pb2.weights[k] - hp2[k] * np.sign(g[k]) / (1.0 + tr.eps / np.abs(g[k]))))))
              for k in range(2))
    report["adam_first_step_error"] = err
    assert err < 1e-14, err

    f = [schedule_factor(TrainingTricks(schedule="warmup", warmup_steps=4), t, 10) for t in (0, 1, 3, 4, 9)]
    assert f == [0.0, 0.25, 0.75, 1.0, 1.0], f
    report["schedules"] = "ok"

    from fractaltrain.compute.kernel import run_pixels  # the package's kernel, only for this comparison

    pb = _tiny_problem(3, steps=30)
    v = 10.0 ** np.linspace(-2, -0.5, 4)
    XX, YY = np.meshgrid(v, v)
    from fractaltrain.problem import pixel_hyperparams

    table = pixel_hyperparams(pb.config, XX.ravel(), YY.ravel())
    ours = train(pb, table)["measure"]
    kern = run_pixels(pb, table)[:, 0]
    rel = float(np.max(np.abs(ours - kern) / np.abs(kern)))
    report["sgd_vs_kernel_worst_relative"] = rel
    assert rel < 1e-12, rel

    if optax_available():
        worst = 0.0
        pb = _tiny_problem(3, steps=30)
        hp = np.array([0.2, 0.1, 0.15, 0.0, 0.0, 1.0])
        for tr in (TrainingTricks(), TrainingTricks(optimizer="momentum"), TrainingTricks(optimizer="nesterov"),
                   TrainingTricks(optimizer="adam", schedule="warmup_cosine", warmup_steps=5, final_fraction=0.1),
                   TrainingTricks(optimizer="adamw", weight_decay=0.01, residual=True, norm="layer")):
            lo, _ = optax_losses(pb, hp, tr)
            ln = losses(pb, hp, tr)
            worst = max(worst, float(np.max(np.abs(lo - ln) / np.abs(ln))))
        report["optax_worst_relative_loss"] = worst
        assert worst < 1e-10, worst
    else:
        report["optax"] = "not installed: skipped"
    if verbose:
        print(json.dumps(report))
    return report


# --------------------------------------------------------------------------- command line


def split_raw(raw: Mapping[str, Any]) -> tuple[dict[str, Any], TrainingTricks]:
    """The tricks of a raw config, and the raw config without the keys the installed package does not parse.

    The package learns issue 32's keys one at a time; whatever of
    ``training.optimizer``/``schedule`` and ``network.residual``/``norm`` its
    schema has no field for is removed before ``config_from_dict``.
    """
    from fractaltrain.config.schema import NetworkConfig, TrainingConfig

    tricks = TrainingTricks.from_raw(raw)
    raw = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in raw.items()}
    known_t = {f.name for f in dataclasses.fields(TrainingConfig)}
    known_n = {f.name for f in dataclasses.fields(NetworkConfig)}
    for section, keys, known in (("training", ("optimizer", "schedule"), known_t), ("network", ("residual", "norm"), known_n)):
        for k in keys:
            if isinstance(raw.get(section), dict) and k not in known:
                raw[section].pop(k, None)
    return raw, tricks


def _cli_train(args) -> None:
    from pathlib import Path

    from fractaltrain.config import config_from_dict, with_overrides
    from fractaltrain.config.yaml_file import parse_yaml, read_config_text
    from fractaltrain.problem import build_problem, pixel_hyperparams
    from fractaltrain.window import axis_values, config_window

    path = Path(args.config)
    raw, tricks = split_raw(parse_yaml(read_config_text(path), str(path)) or {})
    changes = {k: getattr(args, k) for k in ("optimizer", "momentum", "beta1", "beta2", "eps", "weight_decay", "schedule",
                                             "warmup_steps", "final_fraction", "norm", "norm_eps")
               if getattr(args, k) is not None}
    if args.residual:
        changes["residual"] = True
    tricks = tricks.replace(**changes)
    cfg = with_overrides(config_from_dict(raw, name=path.stem), resolution=args.resolution, steps=args.steps, window=args.window)
    w = config_window(cfg)
    nx, ny = cfg.resolution
    XX, YY = np.meshgrid(axis_values(w.x0, w.x1, nx, cfg.x.scale), axis_values(w.y0, w.y1, ny, cfg.y.scale))
    pb = build_problem(cfg)
    hp = pixel_hyperparams(cfg, XX.ravel(), YY.ravel())
    t0 = time.perf_counter()
    # per-pixel optimizer settings from the table where the package put them there (axes, fixed), except those a flag set
    settings = {k: v for k, v in table_settings(pb, hp).items() if k not in changes}
    parts = [train(pb, hp[i:i + args.chunk], tricks, {k: v[i:i + args.chunk] for k, v in settings.items()})
             for i in range(0, len(hp), args.chunk)]
    res = {k: np.concatenate([p[k] for p in parts]).reshape(ny, nx) for k in ("measure", "final", "probe", "steps")}
    seconds = time.perf_counter() - t0
    if args.npz:
        np.savez_compressed(args.npz, **res, x=XX[0], y=YY[:, 0], tricks=json.dumps(tricks.to_dict()))
    print(json.dumps({"config": cfg.name, "resolution": f"{nx}x{ny}", "steps": cfg.training.steps,
                      "tricks": tricks.to_dict(), "diverged_share": float(np.mean(res["measure"] > 0)),
                      "seconds": round(seconds, 2), "npz": args.npz}))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("self-test", help="gradients, closed forms, the kernel and (if installed) optax")
    tp = sub.add_parser("train", help="train a config's grid with the tricks; one JSON line, --npz for the arrays")
    tp.add_argument("config")
    tp.add_argument("--resolution", default="8x8")
    tp.add_argument("--steps", type=int, default=None)
    tp.add_argument("--window", default=None, help="X0,X1,Y0,Y1 or a view name")
    tp.add_argument("--npz", default=None)
    tp.add_argument("--chunk", type=int, default=256, help="pixels trained together")
    tp.add_argument("--optimizer", choices=OPTIMIZERS)
    tp.add_argument("--schedule", choices=SCHEDULES)
    tp.add_argument("--norm", choices=NORMS)
    tp.add_argument("--residual", action="store_true")
    for k in ("momentum", "beta1", "beta2", "eps", "weight_decay", "warmup_steps", "final_fraction", "norm_eps"):
        tp.add_argument("--" + k.replace("_", "-"), dest=k, type=float, default=None)
    args = ap.parse_args(argv)
    if args.cmd == "self-test":
        self_test()
    else:
        _cli_train(args)


if __name__ == "__main__":
    sys.exit(main())
