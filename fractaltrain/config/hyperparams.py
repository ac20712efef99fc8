"""Hyperparameter names: what each one sets in the per-pixel table the kernels read.

An axis or a ``fixed`` entry names a hyperparameter (``lr``, ``lr_input``,
``lr_output``, ``lr_layer_K``, ``offset_drift``, ``offset_init``,
``init_scale``).  Each name stands for a set of columns of the per-pixel
hyperparameter table (:func:`fractaltrain.problem.pixel_hyperparams`): the
learning rate of each layer ``0 .. depth-1``, then the W0 drift, the initial W0
offset and the init scale.  :func:`table_columns` is the one place a name is
read, so checking a config, detecting axes that overwrite each other, filling
the table and labelling it (the explorer's pixel panel) cannot disagree; a new
hyperparameter is a new name here and a new column.
"""

from __future__ import annotations

import re

from fractaltrain.config.optimizer import OPT_PARAMS
from fractaltrain.config.schedule import SCHEDULE_PARAMS
from fractaltrain.config.schema import FIXED_PARAMS, PARAM_HELP
from fractaltrain.errors import ConfigError, short

#: Columns after the per-layer learning rates; the optimizer's settings follow, in a table that has them
#: (a config whose optimizer reads settings: fractaltrain.config.optimizer).
HP_DRIFT, HP_OFFSET, HP_SCALE = 0, 1, 2
HP_OPT = 3  # first optimizer setting (OPT_PARAMS order)
_EXTRA = {"offset_drift": HP_DRIFT, "offset_init": HP_OFFSET, "init_scale": HP_SCALE,
          **{name: HP_OPT + k for k, name in enumerate(OPT_PARAMS + SCHEDULE_PARAMS)}}
TRICK_PARAMS = OPT_PARAMS + SCHEDULE_PARAMS  # the table's last columns, when a config uses them
_LAYER = re.compile(r"lr_layer_(\d+)")


def table_columns(name: str, depth: int, key: str = "param") -> tuple[int, ...]:
    """The table columns hyperparameter ``name`` sets in a network of ``depth`` layers.

    Raises :class:`ConfigError` naming ``key`` for an unknown name or a layer
    the network does not have.
    """
    if not isinstance(name, str):
        raise ConfigError(f"{key}: expected a hyperparameter name ({PARAM_HELP}), got {short(name)}")
    if name == "lr":
        return tuple(range(depth))
    if name == "lr_input":
        return (0,)
    if name == "lr_output":
        return (depth - 1,)
    if name in _EXTRA:
        return (depth + _EXTRA[name],)
    m = _LAYER.fullmatch(name)
    if m is not None:
        k = int(m.group(1))
        if k >= depth:
            raise ConfigError(f"{key}: {name} names layer {k} but the network has layers 0..{depth - 1}")
        return (k,)
    raise ConfigError(f"{key}: unknown hyperparameter {short(name)}; allowed: {PARAM_HELP}")


def check_param(name: str, depth: int, key: str) -> str:
    """Validate a hyperparameter name that an axis or ``fixed`` may set."""
    table_columns(name, depth, key)
    return name


def column_names(depth: int) -> list[str]:
    """A label for every column of the table, for people (``lr_input (lr_layer_0)``, ...)."""
    names = [f"lr_layer_{k}" for k in range(depth)] + sorted(_EXTRA, key=_EXTRA.get)
    names[0], names[depth - 1] = "lr_input (lr_layer_0)", f"lr_output (lr_layer_{depth - 1})"
    return names


assert set(FIXED_PARAMS) == {"lr", "lr_input", "lr_output", *_EXTRA}  # the names PARAM_HELP lists
