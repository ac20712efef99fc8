"""Config dicts to :class:`~fractaltrain.config.schema.Config`: every key checked, once.

Each section starts from its dataclass's field defaults (:func:`_section`), so a
key a config leaves out takes the value written on the dataclass and nowhere
else; then every value goes through a coercer of :mod:`fractaltrain.config.values`
with its bounds, and checks that need several keys (overlapping hyperparameters,
batch against data size, resolvable windows, the memory budget) come last.
Later stages (problem, kernel, store) can then trust their inputs.
"""

from __future__ import annotations

import dataclasses
import math
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from fractaltrain.config.schema import (
    DEFAULT_SEEDS, MAX_DATA, MAX_DEPTH, MAX_DIM, MAX_MEMBERS, MAX_SEED, MAX_STEPS, MAX_TILE, NONLINEARITIES, NORMS, READOUTS,
    RNGS, SCALES, SOURCES, VIEW_SAMPLING, VIEW_UNITS, AxisConfig, Config, DataConfig, EnsembleConfig, NetworkConfig,
    TrainingConfig, ViewConfig, field_defaults, field_names,
)
from fractaltrain.config.values import (
    as_bool, as_choice, as_exact_range, as_float, is_long_decimal, as_int, as_mapping, as_range, no_unknown, parse_resolution,
)
from fractaltrain.config.hyperparams import check_param, table_columns
from fractaltrain.config.optimizer import check_setting, check_swept, parse_optimizer
from fractaltrain.config.schedule import SCHEDULES, check_schedule_setting, parse_schedule
from fractaltrain.config.yaml_file import parse_yaml, read_config_text
from fractaltrain.precision import check_precision
from fractaltrain.errors import NAME_HELP, ConfigError, check_name, key_text, short

TOP_KEYS = ("name", "description", "rng", "network", "data", "training", "axes", "fixed", "readout", "resolution",
            "tile", "views", "zoom_target", "ensemble", "precision")
"""The keys of a config file.  Not :class:`Config`'s fields: the file nests the axes under ``axes``."""


def _section(cls, d: dict[str, Any], key: str, **defaults: Any) -> dict[str, Any]:
    """Section ``d`` with every absent key filled in: from ``defaults`` if given, else ``cls``'s field default.

    Unknown keys are refused first, against ``cls``'s fields.  A key given as
    ``null`` stays ``None`` (and its coercer says what was expected).
    """
    no_unknown(d, key, field_names(cls))
    return {**field_defaults(cls), **defaults, **d}


def _network(d: dict[str, Any], rng: str) -> NetworkConfig:
    v = _section(NetworkConfig, d, "network", seed=DEFAULT_SEEDS[rng]["network"])
    return NetworkConfig(
        width=as_int(v["width"], "network.width", 1, MAX_DIM),
        depth=as_int(v["depth"], "network.depth", 2, MAX_DEPTH),
        nonlinearity=as_choice(v["nonlinearity"], "network.nonlinearity", NONLINEARITIES),
        input_dim=None if v["input_dim"] is None else as_int(v["input_dim"], "network.input_dim", 1, MAX_DIM),
        output_dim=as_int(v["output_dim"], "network.output_dim", 1, MAX_DIM),
        seed=as_int(v["seed"], "network.seed", 0, MAX_SEED),
        residual=_residual(v),
        norm=as_choice(v["norm"], "network.norm", NORMS),
    )


def _residual(v: dict[str, Any]) -> bool:
    """``network.residual``: skip connections need a hidden-to-hidden layer (depth >= 3)."""
    residual = as_bool(v["residual"], "network.residual")
    if residual and as_int(v["depth"], "network.depth", 2, MAX_DEPTH) < 3:
        raise ConfigError("network.residual: needs depth >= 3 (a hidden-to-hidden layer to skip)")
    return residual


def _data(d: dict[str, Any], rng: str) -> DataConfig:
    v = _section(DataConfig, d, "data", seed=DEFAULT_SEEDS[rng]["data"])
    size = v["size"]
    if size != "paper":
        if isinstance(size, str) and not re.fullmatch(r"[0-9.eE+]+", size):
            raise ConfigError(f"data.size: expected a positive integer or 'paper', got {short(size)}")
        size = as_int(size, "data.size", 1, MAX_DATA)
    multiple = v["size_multiple"]
    if multiple is not None:
        if "size" in d:
            raise ConfigError("data.size_multiple: give either data.size or data.size_multiple, not both")
        multiple = as_float(multiple, "data.size_multiple")
        if not 0 < multiple <= 1e6:
            raise ConfigError(f"data.size_multiple: must be > 0 and <= 1e6, got {multiple}")
    return DataConfig(size=size, size_multiple=multiple, seed=as_int(v["seed"], "data.seed", 0, MAX_SEED))


def _training(d: dict[str, Any], rng: str) -> TrainingConfig:
    v = _section(TrainingConfig, d, "training", seed=DEFAULT_SEEDS[rng]["training"])
    batch = v["batch"]
    if batch != "full":
        if isinstance(batch, str) and not batch.strip().isdigit():
            raise ConfigError(f"training.batch: expected 'full' or a positive integer, got {short(batch)}")
        batch = as_int(batch, "training.batch", 1, MAX_DATA)
    lr = as_float(v["learning_rate"], "training.learning_rate")
    return TrainingConfig(
        steps=as_int(v["steps"], "training.steps", 1, MAX_STEPS),
        batch=batch,
        seed=as_int(v["seed"], "training.seed", 0, MAX_SEED),
        learning_rate=lr,
        optimizer=parse_optimizer(v["optimizer"]),
        schedule=parse_schedule(v["schedule"]),
    )


def _axis(d: Any, key: str, default: AxisConfig, depth: int) -> AxisConfig:
    """One axis; ``default`` (Config's default axis) gives the parameter an absent ``param`` sweeps."""
    v = _section(AxisConfig, as_mapping(d, key), key, param=default.param)
    param = check_param(v["param"], depth, f"{key}.param")
    scale = as_choice(v["scale"], f"{key}.scale", SCALES)
    raw_range = v["range"]
    if isinstance(raw_range, (list, tuple)) and any(is_long_decimal(e) for e in raw_range):
        floats, exact = as_exact_range(raw_range, f"{key}.range")  # more digits than float64 holds: exactly
        return AxisConfig(param=param, scale=scale, range=floats, exact=exact)
    return AxisConfig(param=param, scale=scale, range=as_range(raw_range, f"{key}.range"))


def _views(raw: Any) -> tuple[tuple[str, ViewConfig], ...]:
    views = []
    for name, d in as_mapping(raw, "views").items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]*", name):
            raise ConfigError(f"views: a view name is letters, digits, '_' or '-', starting with a letter; got {short(name)}")
        key = f"views.{name}"
        d = as_mapping(d, key)
        v = _section(ViewConfig, d, key)
        for k in ("x", "y"):
            if k not in d:
                raise ConfigError(f"{key}.{k}: missing; expected [low, high]")
        written = [e for k in ("x", "y") if isinstance(v[k], (list, tuple)) for e in v[k]]
        if any(is_long_decimal(e) for e in written):  # more digits than float64 holds: kept exactly
            (xf, xq), (yf, yq) = as_exact_range(v["x"], f"{key}.x"), as_exact_range(v["y"], f"{key}.y")
            exact = (*xq, *yq)
        else:
            xf, yf, exact = as_range(v["x"], f"{key}.x"), as_range(v["y"], f"{key}.y"), None
        views.append((name, ViewConfig(
            x=xf,
            y=yf,
            exact=exact,
            units=as_choice(v["units"], f"{key}.units", VIEW_UNITS),
            square=as_bool(v["square"], f"{key}.square"),
            sampling=as_choice(v["sampling"], f"{key}.sampling", VIEW_SAMPLING),
        )))
    return tuple(views)


def parse_ensemble(raw: Any, minibatch: bool, key: str = "ensemble") -> EnsembleConfig:
    """``ensemble: K`` or ``ensemble: {members: K, vary: [weights, data, minibatch]}``.

    ``vary`` defaults to every source the config draws; naming ``minibatch`` for
    full-batch training is refused, since it would silently vary nothing.
    """
    d = {"members": raw} if not isinstance(raw, dict) else raw
    no_unknown(d, key, ("members", "vary"))
    if "members" not in d:
        raise ConfigError(f"{key}.members: missing; expected the number of draws (1 .. {MAX_MEMBERS})")
    mkey = key if not isinstance(raw, dict) else f"{key}.members"
    members = as_int(d["members"], mkey, 1, MAX_MEMBERS)
    default = SOURCES if minibatch else tuple(s for s in SOURCES if s != "minibatch")
    vary = d.get("vary", list(default))
    if isinstance(vary, str):
        vary = [vary]
    if not isinstance(vary, (list, tuple)) or not vary:
        raise ConfigError(f"{key}.vary: expected a non-empty list of {', '.join(SOURCES)}; got {short(vary)}")
    for v in vary:
        if v not in SOURCES:
            raise ConfigError(f"{key}.vary: unknown random source {short(v)}; allowed: {', '.join(SOURCES)}")
    if len(set(vary)) != len(vary):
        raise ConfigError(f"{key}.vary: names a source twice; give each once")
    if "minibatch" in vary and not minibatch:
        raise ConfigError(f"{key}.vary: minibatch varies nothing with full-batch training (training.batch: full)")
    return EnsembleConfig(members, tuple(s for s in SOURCES if s in vary))


def config_from_dict(raw: Any, name: str = "experiment") -> Config:
    """Build and validate a :class:`Config` from a parsed YAML mapping."""
    raw = as_mapping(raw, "config")
    no_unknown(raw, "", TOP_KEYS)
    base = field_defaults(Config)
    rng = as_choice(raw.get("rng", base["rng"]), "rng", RNGS)
    network = _network(as_mapping(raw.get("network"), "network"), rng)
    data = _data(as_mapping(raw.get("data"), "data"), rng)
    training = _training(as_mapping(raw.get("training"), "training"), rng)
    axes = as_mapping(raw.get("axes"), "axes")
    no_unknown(axes, "axes", ("x", "y"))
    x = _axis(axes.get("x"), "axes.x", base["x"], network.depth)
    y = _axis(axes.get("y"), "axes.y", base["y"], network.depth)
    if x.param == y.param:
        raise ConfigError(f"axes.y.param: must differ from axes.x.param (both are {x.param!r})")
    fixed_raw = as_mapping(raw.get("fixed"), "fixed")
    fixed = []
    for k in sorted(fixed_raw, key=str):
        check_param(k, network.depth, f"fixed.{key_text(k)}")
        fixed.append((k, as_float(fixed_raw[k], f"fixed.{k}")))
    _check_overlaps(x, y, fixed, network.depth)
    for param, k in ((x.param, "axes.x.param"), (y.param, "axes.y.param"), *((f, f"fixed.{f}") for f, _ in fixed)):
        check_swept(param, training.optimizer, k)
        if param in ("warmup_steps", "final_fraction") and param not in training.schedule.settings:
            users = " and ".join(n for n, s in SCHEDULES.items() if param in s)
            raise ConfigError(f"{k}: {param} is a setting of the {users} schedules; training.schedule is "
                              f"{training.schedule.name}")
    for axis, k in ((x, "axes.x.range"), (y, "axes.y.range")):  # every pixel's setting must be allowed
        for u in axis.range:
            if axis.param in training.optimizer.settings:
                check_setting(axis.param, axis.to_value(u), k)
            elif axis.param in training.schedule.settings:
                check_schedule_setting(axis.param, axis.to_value(u), k)
    for f, value in fixed:
        if f in training.optimizer.settings:
            check_setting(f, value, f"fixed.{f}")
        elif f in training.schedule.settings:
            check_schedule_setting(f, value, f"fixed.{f}")
    nm = raw.get("name", name)
    if "name" not in raw and not check_name_ok(nm):
        raise ConfigError(f"name: the config file's name gives {short(nm)}, which is not a valid name; add a "
                          f"'name:' key ({NAME_HELP})")
    check_name(nm)
    desc = raw.get("description", base["description"])
    if not isinstance(desc, str):
        raise ConfigError("description: expected a string")
    cfg = Config(
        name=nm,
        network=network,
        data=data,
        training=training,
        x=x,
        y=y,
        fixed=tuple(fixed),
        readout=as_choice(raw.get("readout", base["readout"]), "readout", READOUTS),
        resolution=parse_resolution(raw.get("resolution", base["resolution"])),
        tile=as_int(raw.get("tile", base["tile"]), "tile", 8, MAX_TILE),
        description=desc,
        rng=rng,
        views=_views(raw.get("views")),
        zoom_target=raw.get("zoom_target", base["zoom_target"]),
        precision=check_precision(raw.get("precision", base["precision"])),
    )
    if raw.get("ensemble") is not None:
        cfg = dataclasses.replace(cfg, ensemble=parse_ensemble(raw["ensemble"], cfg.batch_size is not None))
    if cfg.zoom_target is not None and (not isinstance(cfg.zoom_target, str) or cfg.view(cfg.zoom_target) is None):
        # a view's name is a string; a list or mapping would not even be hashable for the lookup
        names = ", ".join(k for k, _ in cfg.views) or "none defined"
        kind = "" if isinstance(cfg.zoom_target, str) else f"{type(cfg.zoom_target).__name__} "
        raise ConfigError(f"zoom_target: must be a string naming one of the config's views ({short(names, 200)}); "
                          f"got {kind}{short(cfg.zoom_target)}")
    check_consistency(cfg)
    return cfg


def check_name_ok(name: str) -> bool:
    """Whether ``name`` is a valid job name (to word the message for a name taken from the file stem)."""
    try:
        check_name(name)
    except ConfigError:
        return False
    return True


def param_targets(name: str, depth: int) -> set:
    """What a hyperparameter sets: its columns of the per-pixel table (:mod:`fractaltrain.config.hyperparams`)."""
    return set(table_columns(name, depth))


def _check_overlaps(x: AxisConfig, y: AxisConfig, fixed: list, depth: int) -> None:
    """Refuse settings that overwrite each other (one of them would silently have no effect).

    The axes must set disjoint things (x = lr_input with y = lr would make x do
    nothing).  A ``fixed`` value must not set what an axis or another fixed value
    sets, except ``fixed.lr``, which is the documented base that per-layer rates
    override, as long as it still sets at least one layer.
    """
    tx, ty = param_targets(x.param, depth), param_targets(y.param, depth)
    if tx & ty:
        raise ConfigError(
            f"axes.y.param: {y.param} and axes.x.param {x.param} set the same learning rate, so one axis would "
            "have no effect; choose hyperparameters that do not overlap (e.g. lr_input and lr_output)"
        )
    taken = tx | ty
    specific = [(k, param_targets(k, depth)) for k, _ in fixed if k != "lr"]
    for i, (k, t) in enumerate(specific):
        if t & taken:
            raise ConfigError(f"fixed.{k}: this hyperparameter is already swept by an axis")
        for k2, t2 in specific[:i]:
            if t & t2:
                raise ConfigError(f"fixed.{k}: sets the same learning rate as fixed.{k2}; keep one of them")
    if any(k == "lr" for k, _ in fixed):
        others = set().union(taken, *(t for _, t in specific))
        if param_targets("lr", depth) <= others:
            raise ConfigError("fixed.lr: every layer's learning rate is already set by an axis or another "
                              "fixed value, so it would have no effect")


def check_consistency(cfg: Config) -> None:
    """Checks that need the whole config: batch against data size, axis ranges, the machine's budget.

    Run again after every override, since an override can break what the file alone satisfied.
    """
    if cfg.batch_size is not None and cfg.batch_size > cfg.data_size:
        raise ConfigError(
            f"training.batch: minibatch of {cfg.batch_size} is larger than the data set ({cfg.data_size} points)"
        )
    for axis, key in ((cfg.x, "axes.x"), (cfg.y, "axes.y")):
        if axis.scale == "log10" and max(abs(axis.range[0]), abs(axis.range[1])) > 300:
            raise ConfigError(f"{key}.range: log10 range must lie within [-300, 300]")
    for k, _ in cfg.fixed:
        if k in (cfg.x.param, cfg.y.param):
            raise ConfigError(f"fixed.{k}: this hyperparameter is already swept by an axis")
    check_resolvable(cfg)
    from fractaltrain.config import budget

    budget.check(cfg)


def check_resolvable(cfg: Config, key: str | None = None) -> None:
    """Refuse a window whose pixel values are not finite, or not distinct at the config's precision.

    ``render`` needs the same floor as ``zoom``: neighbouring pixels must differ by
    at least :data:`~fractaltrain.window.MIN_ULPS` ulps of the working precision
    (float64, or double-double below float64's floor: :mod:`fractaltrain.precision`),
    or the image repeats one value and looks like a result.  ``key`` names the thing in the message
    (default: ``axes.x.range`` / ``axes.y.range``).
    """
    from fractaltrain import precision
    from fractaltrain.window import MIN_ULPS, Window, axis_values, decimal_string, min_relative_spacing

    for axis, n, k in ((cfg.x, cfg.resolution[0], "axes.x.range"), (cfg.y, cfg.resolution[1], "axes.y.range")):
        lo, hi = axis.range
        where = key or k
        if not math.isfinite(hi - lo):
            raise ConfigError(f"{where}: [{lo!r}, {hi!r}] is wider than float64 can represent")
        with np.errstate(all="ignore"):
            values = axis_values(lo, hi, n, axis.scale)
        if not np.all(np.isfinite(values)):
            raise ConfigError(f"{where}: [{lo!r}, {hi!r}] ({axis.scale}) gives {axis.param} values that are not finite")
        edges = axis.exact or (Fraction(lo), Fraction(hi))
        shown = f"[{decimal_string(edges[0])}, {decimal_string(edges[1])}]" if axis.exact else f"[{lo!r}, {hi!r}]"
        one = Window.from_edges(*edges, 0, 1)
        try:
            precision.resolve(cfg.precision, one, n, 1, (axis.scale, "linear"))
        except precision.PrecisionError:
            spacing = precision.spacing_ulps(*edges, n, axis.scale) if axis.exact else min_relative_spacing(lo, hi, n, axis.scale)
            if cfg.precision == precision.FLOAT64:
                raise ConfigError(
                    f"{where}: {short(shown, 120)} is too narrow for {n} pixels in float64: neighbouring {axis.param} "
                    f"values are {spacing:.2g} float64 ulps apart (need at least {MIN_ULPS:g}); use precision "
                    f"double-double (or auto), widen the range or lower the resolution") from None
            raise ConfigError(
                f"{where}: {short(shown, 120)} is too narrow for {n} pixels even in double-double: neighbouring "
                f"{axis.param} values are {spacing * precision.DD_ULP ** -1:.2g} double-double ulps apart (need at "
                f"least {MIN_ULPS:g}); widen the range or lower the resolution") from None


def load_config(path: str | Path) -> Config:
    """Read a YAML experiment file.  The file stem is the default ``name``.

    The file must be UTF-8 text of at most a megabyte, with each key given once
    (:mod:`fractaltrain.config.yaml_file`).  An empty file is refused: it would
    silently start the full default job.
    """
    path = Path(path)
    raw = parse_yaml(read_config_text(path), str(path))
    if raw is None or raw == {}:
        net, steps, (w, h) = NetworkConfig(), TrainingConfig().steps, field_defaults(Config)["resolution"]
        raise ConfigError(
            f"config: {path} is empty; it would run the full default job ({net.nonlinearity} width {net.width}, "
            f"{w}x{h} pixels, {steps} steps); write the keys you mean, e.g. start from configs/demo.yaml"
        )
    return config_from_dict(raw, name=path.stem)
