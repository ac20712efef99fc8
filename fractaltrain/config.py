"""Experiment configuration: YAML in, frozen dataclasses out.

Every value a user can write is checked once, with a one-line message that
names the key and says what is allowed (:class:`ConfigError`), so later stages
(problem, kernel, store) can trust their inputs.  This module is the public
face; the work is split by job:

- :mod:`fractaltrain.config_schema` -- the dataclasses, their defaults (written
  only there) and the limits on values;
- :mod:`fractaltrain.config_yaml` -- reading a file's text safely (size,
  encoding, duplicate keys, alias bombs);
- :mod:`fractaltrain.config_values` -- coercion of single values (PyYAML reads
  ``1e-5`` as a string and ``5`` as an int, so every number is coerced explicitly);
- :mod:`fractaltrain.config_parse` -- a parsed mapping to a checked :class:`Config`;
- :mod:`fractaltrain.config_overrides` -- the CLI's overrides and named views.

Import from here (``from fractaltrain.config import load_config``); the split is
an implementation detail.
"""

from __future__ import annotations

from fractaltrain.config_overrides import view_window, with_overrides  # noqa: F401  (re-exported)
from fractaltrain.config_parse import (  # noqa: F401
    TOP_KEYS, check_consistency, check_name_ok, check_resolvable, config_from_dict, load_config, param_targets,
    parse_ensemble,
)
from fractaltrain.config_schema import (  # noqa: F401
    DEFAULT_SEEDS, FIXED_PARAMS, MAX_CONFIG_BYTES, MAX_DATA, MAX_DEPTH, MAX_DIM, MAX_MEMBERS, MAX_SEED, MAX_STEPS,
    MAX_TILE, MAX_YAML_NODES, NONLINEARITIES, NOTEBOOK_SEEDS, PARAM_HELP, READOUTS, RNGS, SCALES, SOURCES,
    VIEW_SAMPLING, VIEW_UNITS, AxisConfig, Config, DataConfig, EnsembleConfig, NetworkConfig, TrainingConfig,
    ViewConfig,
)
from fractaltrain.config_hyperparams import check_param  # noqa: F401
from fractaltrain.config_values import parse_resolution  # noqa: F401
from fractaltrain.config_yaml import parse_yaml  # noqa: F401
from fractaltrain.errors import ConfigError  # noqa: F401
