"""``training.schedule``: a factor f(t) on every learning rate at step t (t = 0, 1, ...; T = steps).

optax's schedules evaluated at the update count t (issue 32):

=============  =====================================================================  ========================
name           f(t)                                                                   settings (defaults)
=============  =====================================================================  ========================
constant       1 (the default; the paper's)                                           none
warmup         linear from 0 over W steps: t/W for t < W, then 1 (optax.linear_        warmup_steps W (100)
               schedule(0, 1, W)); step 0 does not move the weights
cosine         (1 − a)·½(1 + cos(π·min(t, T)/T)) + a (optax.cosine_decay_schedule)    final_fraction a (0)
warmup_cosine  warmup for t < W, then cosine over T − W steps at t − W                  both
               (optax.warmup_cosine_decay_schedule(0, 1, W, T, end_value=a))
=============  =====================================================================  ========================

``warmup_steps`` 0 means no warmup.  Both settings are hyperparameters: an axis
or ``fixed`` may set the ones the schedule reads (the table's columns after the
optimizer's, :mod:`fractaltrain.config.hyperparams`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fractaltrain.errors import ConfigError, short

SCHEDULES = {
    "constant": (),
    "warmup": ("warmup_steps",),
    "cosine": ("final_fraction",),
    "warmup_cosine": ("warmup_steps", "final_fraction"),
}
SCHEDULE_PARAMS = ("warmup_steps", "final_fraction")
SCHEDULE_CODE = {name: k for k, name in enumerate(SCHEDULES)}


@dataclass(frozen=True)
class ScheduleConfig:
    """The schedule and both settings (those it does not read keep their defaults)."""

    name: str = "constant"
    warmup_steps: float = 100.0
    final_fraction: float = 0.0

    @property
    def settings(self) -> tuple[str, ...]:
        return SCHEDULES[self.name]

    def to_dict(self) -> dict[str, Any] | str:
        if not self.settings:
            return self.name
        return {"name": self.name, **{k: getattr(self, k) for k in self.settings}}


def check_schedule_setting(name: str, value: float, key: str) -> float:
    """warmup_steps >= 0, final_fraction in [0, 1]."""
    ok = value >= 0.0 if name == "warmup_steps" else 0.0 <= value <= 1.0
    if not ok:
        raise ConfigError(f"{key}: must be {'>= 0' if name == 'warmup_steps' else 'in [0, 1]'}, got {short(value)}")
    return value


def parse_schedule(raw: Any, key: str = "training.schedule") -> ScheduleConfig:
    """``raw`` (a name, or a mapping with ``name`` and settings) as a :class:`ScheduleConfig`."""
    from fractaltrain.config.optimizer import parse_named

    return parse_named(raw, key, SCHEDULES, ScheduleConfig, check_schedule_setting, "a schedule")
