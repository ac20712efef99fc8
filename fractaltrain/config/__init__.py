"""Experiment configuration: YAML in, frozen dataclasses out.

Every value a user can write is checked once, with a one-line message that
names the key and says what is allowed (:class:`ConfigError`), so later stages
(problem, kernel, store) can trust their inputs.  This module is the public
face; the work is split by job:

- :mod:`fractaltrain.config.schema` -- the dataclasses, their defaults (written
  only there) and the limits on values;
- :mod:`fractaltrain.config.yaml_file` -- reading a file's text safely (size,
  encoding, duplicate keys, alias bombs);
- :mod:`fractaltrain.config.values` -- coercion of single values (PyYAML reads
  ``1e-5`` as a string and ``5`` as an int, so every number is coerced explicitly);
- :mod:`fractaltrain.config.parse` -- a parsed mapping to a checked :class:`Config`;
- :mod:`fractaltrain.config.overrides` -- the CLI's overrides and named views.

Import from here (``from fractaltrain.config import load_config``); the split is
an implementation detail.
"""

from __future__ import annotations

from fractaltrain.config.overrides import view_window, with_overrides  # noqa: F401  (re-exported)
from fractaltrain.config.parse import (  # noqa: F401
    TOP_KEYS, check_consistency, check_name_ok, check_resolvable, config_from_dict, load_config, param_targets,
    parse_ensemble,
)
from fractaltrain.config.schema import (  # noqa: F401
    DEFAULT_SEEDS, FIXED_PARAMS, MAX_CONFIG_BYTES, MAX_DATA, MAX_DEPTH, MAX_DIM, MAX_MEMBERS, MAX_SEED, MAX_STEPS,
    MAX_TILE, MAX_YAML_NODES, NONLINEARITIES, NOTEBOOK_SEEDS, PARAM_HELP, READOUTS, RNGS, SCALES, SOURCES,
    VIEW_SAMPLING, VIEW_UNITS, AxisConfig, Config, DataConfig, EnsembleConfig, NetworkConfig, TrainingConfig,
    ViewConfig,
)
from fractaltrain.config.hyperparams import check_param  # noqa: F401
from fractaltrain.config.values import parse_resolution  # noqa: F401
from fractaltrain.config.yaml_file import parse_yaml  # noqa: F401
from fractaltrain.errors import ConfigError  # noqa: F401
