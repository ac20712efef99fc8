"""``training.optimizer``: which update rule trains every pixel, and its settings.

A config names an optimizer (``optimizer: adam``) or gives a mapping with the
name and its settings (``optimizer: {name: adam, beta1: 0.9}``).  The rules are
optax's (issue 32; per layer k with learning rate lr_k, gradient g, t = 1, 2, ...):

=========  ==================================================================  ==========================
name       update                                                              settings (defaults)
=========  ==================================================================  ==========================
sgd        θ ← θ − lr_k·g (the paper's steepest descent; the default)          none
momentum   v ← g + β·v;  θ ← θ − lr_k·v                                        momentum (0.9)
nesterov   v ← g + β·v;  θ ← θ − lr_k·(g + β·v)                                momentum (0.9)
adam       m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;                         beta1 (0.9), beta2 (0.999),
           θ ← θ − lr_k·(m/(1−β1^t)) / (sqrt(v/(1−β2^t)) + eps)                eps (1e-8)
adamw      θ ← θ − lr_k·(adam's update + weight_decay·θ)                       adam's, weight_decay (1e-4)
=========  ==================================================================  ==========================

The settings are hyperparameters like the learning rates: an axis or a
``fixed`` entry may set one the chosen optimizer uses (they are the last
columns of the per-pixel table, :mod:`fractaltrain.config.hyperparams`).
``weight_decay`` defaults to optax's ``adamw`` default.  A config that never
names an optimizer trains with sgd exactly as before, and keeps its tile keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fractaltrain.errors import ConfigError, key_text, short

#: The settings each optimizer reads, in table-column order (OPT_PARAMS).
OPTIMIZERS = {
    "sgd": (),
    "momentum": ("momentum",),
    "nesterov": ("momentum",),
    "adam": ("beta1", "beta2", "eps"),
    "adamw": ("beta1", "beta2", "eps", "weight_decay"),
}
OPT_PARAMS = ("momentum", "beta1", "beta2", "eps", "weight_decay")  # table columns after the init scale
OPT_CODE = {name: k for k, name in enumerate(OPTIMIZERS)}  # what the kernel is told


@dataclass(frozen=True)
class OptimizerConfig:
    """The optimizer and all five settings (those it does not read keep their defaults)."""

    name: str = "sgd"
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 1e-4

    @property
    def settings(self) -> tuple[str, ...]:
        """The settings this optimizer reads."""
        return OPTIMIZERS[self.name]

    def to_dict(self) -> dict[str, Any] | str:
        """``"sgd"``, or the name with the settings it reads (what a config file would say)."""
        if not self.settings:
            return self.name
        return {"name": self.name, **{k: getattr(self, k) for k in self.settings}}


def check_setting(name: str, value: float, key: str) -> float:
    """A setting's value: momentum and betas in [0, 1), eps > 0, weight_decay >= 0."""
    ok = {"momentum": 0.0 <= value < 1.0, "beta1": 0.0 <= value < 1.0, "beta2": 0.0 <= value < 1.0,
          "eps": value > 0.0, "weight_decay": value >= 0.0}[name]
    if not ok:
        allowed = {"eps": "> 0", "weight_decay": ">= 0"}.get(name, "in [0, 1)")
        raise ConfigError(f"{key}: must be {allowed}, got {short(value)}")
    return value


def parse_named(raw: Any, key: str, table: dict, cls, check, what: str):
    """A name or a mapping with ``name`` and the settings ``table[name]`` lists, as a ``cls`` instance.

    Shared by ``training.optimizer`` and ``training.schedule``: ``raw`` None or
    already a ``cls`` (the field's default) is returned as ``cls()`` / itself;
    each setting is coerced to a float and checked by ``check(name, value, key)``.
    """
    from fractaltrain.config.values import as_float

    names = ", ".join(table)
    if raw is None:
        return cls()
    if isinstance(raw, cls):
        return raw
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"{key}: expected {what} name ({names}) or a mapping with 'name', got {short(raw)}")
    name = raw.get("name")
    if name not in table:
        raise ConfigError(f"{key}.name: must be one of {names}; got {short(name)}")
    values = {}
    for k, v in raw.items():
        if k == "name":
            continue
        if k not in table[name]:
            reads = ", ".join(table[name]) or "no settings"
            raise ConfigError(f"{key}.{key_text(k)}: not a setting of {name} (it reads {reads})")
        values[k] = check(k, as_float(v, f"{key}.{k}"), f"{key}.{k}")
    return cls(name=name, **values)


def parse_optimizer(raw: Any, key: str = "training.optimizer") -> OptimizerConfig:
    """``raw`` (a name, or a mapping with ``name`` and settings) as an :class:`OptimizerConfig`."""
    return parse_named(raw, key, OPTIMIZERS, OptimizerConfig, check_setting, "an optimizer")


def check_swept(param: str, optimizer: OptimizerConfig, key: str) -> None:
    """Refuse an axis or ``fixed`` entry that sets an optimizer setting the optimizer does not read."""
    if param in OPT_PARAMS and param not in optimizer.settings:
        users = " and ".join(n for n, s in OPTIMIZERS.items() if param in s)
        raise ConfigError(f"{key}: {param} is a setting of {users}; training.optimizer is {optimizer.name}")
