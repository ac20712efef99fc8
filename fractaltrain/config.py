"""Experiment configuration: YAML in, frozen dataclasses out.

Every value a user can write is checked here, once, with a message that names
the key and says what is allowed (:class:`ConfigError`).  Later stages (problem,
kernel, store) can then trust their inputs.  PyYAML reads ``1e-5`` as a string
and ``5`` as an int, so every number is coerced explicitly.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fractaltrain.errors import NAME_HELP, ConfigError, check_name, key_text, short

NONLINEARITIES = ("tanh", "relu", "identity")
READOUTS = ("measure", "final_loss", "probe")
RNGS = ("pcg64", "notebook")
# Seeds a config leaves out, per generator: numpy streams 0/1/2; the notebook's PRNGKey(0) chain
# for weights and data and PRNGKey(42) for the minibatch sequence.
DEFAULT_SEEDS = {"pcg64": {"network": 0, "data": 1, "training": 2}, "notebook": {"network": 0, "data": 0, "training": 42}}
VIEW_UNITS = ("axis", "value")
SOURCES = ("weights", "data", "minibatch")  # the random sources an ensemble can vary (fractaltrain.ensemble)
MAX_MEMBERS = 4096
VIEW_SAMPLING = ("centres", "endpoints")
SCALES = ("log10", "linear")
FIXED_PARAMS = ("lr", "lr_input", "lr_output", "offset_drift", "offset_init", "init_scale")
PARAM_HELP = "lr, lr_input, lr_output, lr_layer_K (K = 0 .. depth-1), offset_drift, offset_init, init_scale"


# ConfigError: a config value is missing, of the wrong type or out of range.  The message is one
# line that names the key (dotted path) and what is allowed, so the CLI can print it as is.
MAX_CONFIG_BYTES = 1 << 20  # a config is a few hundred bytes; refuse anything over a megabyte
MAX_STEPS = 10**8  # 200,000 times the paper's 500 steps; every pixel trains them one after another
MAX_TILE = 4096
MAX_DIM = 10**9  # sanity bounds on sizes; what fits the machine is checked by budget.check
MAX_DEPTH = 1000
MAX_DATA = 10**15
MAX_SEED = 2**63 - 1  # fits an int64 and JSON readers
MAX_YAML_NODES = 10_000  # after expanding aliases; a billion-laughs file is refused before it grows


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class NetworkConfig:
    """The network trained at every pixel (PAPER.md, baseline experiment)."""

    width: int = 16
    depth: int = 2
    nonlinearity: str = "tanh"
    input_dim: int | None = None  # None: same as width, as in the paper
    output_dim: int = 1
    seed: int = 0

    @property
    def inputs(self) -> int:
        return self.width if self.input_dim is None else self.input_dim

    def layer_shapes(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of every weight layer, input layer first."""
        sizes = [self.inputs] + [self.width] * (self.depth - 1) + [self.output_dim]
        return [(sizes[k], sizes[k + 1]) for k in range(self.depth)]

    @property
    def n_params(self) -> int:
        return sum(a * b for a, b in self.layer_shapes())


@dataclass(frozen=True)
class DataConfig:
    """Training set: i.i.d. standard normal inputs and targets, drawn once.

    ``size`` is an int, or ``"paper"`` (PAPER.md's per-condition default: as many
    points as free parameters divided by the output dimension; ``width`` points for
    the identity network).  ``size_multiple`` instead scales the free-parameter
    count (rounded down, at least 1).
    """

    size: int | str = "paper"
    size_multiple: float | None = None
    seed: int = 1


@dataclass(frozen=True)
class TrainingConfig:
    """Full-batch (``batch: full``) or minibatch steepest descent."""

    steps: int = 500
    batch: int | str = "full"
    seed: int = 2
    learning_rate: float = 0.1  # for every layer whose rate is not on an axis


@dataclass(frozen=True)
class AxisConfig:
    """One image axis: which hyperparameter, its scale and its range.

    For ``scale: log10`` the range is in decades (``[-3, 6]`` means 1e-3 .. 1e6).
    """

    param: str
    scale: str = "log10"
    range: tuple[float, float] = (-3.0, 6.0)

    def to_value(self, u: float) -> float:
        """Axis coordinate to hyperparameter value."""
        return 10.0**u if self.scale == "log10" else u


@dataclass(frozen=True)
class ViewConfig:
    """A named window, e.g. a published panel: ``render --window NAME`` renders it.

    ``x`` and ``y`` are ranges in ``units``: ``axis`` (decades on a log10 axis) or
    ``value`` (the hyperparameter itself, as a figure prints it).  ``square``
    gives both axes the mean of their two widths in axis units, about the same
    centres: the notebook's panels are square in decades, and their printed edges
    are rounded.  ``sampling: endpoints`` puts the first and last pixel centres on
    the range's ends, as the notebook's ``jnp.logspace(lo, hi, n)`` does; the
    default ``centres`` puts the range's ends on the outer pixels' edges.
    """

    x: tuple[float, float]
    y: tuple[float, float]
    units: str = "axis"
    square: bool = False
    sampling: str = "centres"


@dataclass(frozen=True)
class EnsembleConfig:
    """A seed ensemble (:mod:`fractaltrain.ensemble`): ``members`` draws of the ``vary`` sources.

    Member 0 is the config's own draws; member k > 0 takes the k-th further draw
    of every source in ``vary`` (``weights``, ``data``, ``minibatch``) and the
    config's draw of the others.  ``vary`` is resolved at load time: the default
    is every source the config draws (``minibatch`` only for minibatch training).
    """

    members: int
    vary: tuple[str, ...]


@dataclass(frozen=True)
class Config:
    """A whole experiment.  Build with :func:`load_config` or :func:`config_from_dict`."""

    name: str
    network: NetworkConfig = field(default_factory=NetworkConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    x: AxisConfig = field(default_factory=lambda: AxisConfig("lr_input"))
    y: AxisConfig = field(default_factory=lambda: AxisConfig("lr_output"))
    fixed: tuple[tuple[str, float], ...] = ()
    readout: str = "measure"
    resolution: tuple[int, int] = (256, 256)
    tile: int = 64
    description: str = ""
    rng: str = "pcg64"
    views: tuple[tuple[str, ViewConfig], ...] = ()
    zoom_target: str | None = None  # a view whose centre zoom heads for by default
    ensemble: EnsembleConfig | None = None  # None: one draw, a plain render

    def view(self, name: str) -> ViewConfig | None:
        return dict(self.views).get(name)

    @property
    def data_size(self) -> int:
        """Number of training points, resolved from ``data.size`` / ``size_multiple``."""
        net = self.network
        if self.data.size_multiple is not None:
            return max(1, int(net.n_params * self.data.size_multiple / net.output_dim))
        if self.data.size == "paper":
            if net.nonlinearity == "identity":
                return net.width
            return net.n_params // net.output_dim
        return int(self.data.size)

    @property
    def batch_size(self) -> int | None:
        """Minibatch size, or None for full batch."""
        return None if self.training.batch == "full" else int(self.training.batch)

    def fixed_value(self, name: str) -> float | None:
        for key, value in self.fixed:
            if key == name:
                return value
        return None

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able dict that :func:`config_from_dict` reads back identically."""
        d = dataclasses.asdict(self)
        d["x"]["range"] = list(self.x.range)
        d["y"]["range"] = list(self.y.range)
        d["axes"] = {"x": d.pop("x"), "y": d.pop("y")}
        d["fixed"] = {k: v for k, v in self.fixed}
        d["views"] = {k: {**dataclasses.asdict(v), "x": list(v.x), "y": list(v.y)} for k, v in self.views}
        if self.zoom_target is None:
            del d["zoom_target"]
        if self.ensemble is None:  # plain configs keep the dict (manifest keys) they had before ensembles
            del d["ensemble"]
        else:
            d["ensemble"] = {"members": self.ensemble.members, "vary": list(self.ensemble.vary)}
        d["resolution"] = f"{self.resolution[0]}x{self.resolution[1]}"
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


# --------------------------------------------------------------------------- coercion helpers


def _int(value: Any, key: str, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected an integer, got {short(value)}")
    if isinstance(value, str):
        try:
            f = float(value)
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {short(value)}") from None
        value = f
    if isinstance(value, float):
        if not value.is_integer():
            raise ConfigError(f"{key}: expected an integer, got {short(value)}")
        value = int(value)
    if not isinstance(value, int):
        raise ConfigError(f"{key}: expected an integer, got {short(value)}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{key}: must be >= {minimum}, got {short(value)}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{key}: must be <= {maximum}, got {short(value)}")
    return value


def _float(value: Any, key: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a number, got {short(value)}")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {short(value)}") from None
    if not isinstance(value, (int, float)):
        raise ConfigError(f"{key}: expected a number, got {short(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{key}: must be finite, got {short(value)}")
    return value


def _choice(value: Any, key: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{key}: must be one of {', '.join(allowed)}; got {short(value)}")
    return value


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping of keys to values, got {type(value).__name__} {short(value, 40)}")
    return value


def _no_unknown(d: dict[str, Any], key: str, allowed: tuple[str, ...]) -> None:
    for k in d:
        if k not in allowed:
            where = f"{key}.{key_text(k)}" if key else key_text(k)
            raise ConfigError(f"{where}: unknown key; allowed here: {', '.join(allowed)}")


def parse_resolution(value: Any, key: str = "resolution") -> tuple[int, int]:
    """``"640x360"``, ``[640, 360]`` or ``256`` (square) to (width, height)."""
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", value)
        if m is None:
            if value.strip().isdigit():
                w = h = int(value)
            else:
                raise ConfigError(f"{key}: expected WIDTHxHEIGHT such as 640x360, got {short(value)}")
        else:
            w, h = int(m.group(1)), int(m.group(2))
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        w, h = _int(value[0], f"{key}[0]"), _int(value[1], f"{key}[1]")
    elif isinstance(value, int) and not isinstance(value, bool):
        w = h = value
    else:
        raise ConfigError(f"{key}: expected WIDTHxHEIGHT such as 640x360, got {short(value)}")
    if w < 2 or h < 2 or w > 65536 or h > 65536:
        raise ConfigError(f"{key}: width and height must be between 2 and 65536, got {w}x{h}")
    return w, h


def check_param(name: str, depth: int, key: str) -> str:
    """Validate a hyperparameter name that an axis or ``fixed`` may set."""
    if name in FIXED_PARAMS:
        return name
    m = re.fullmatch(r"lr_layer_(\d+)", name) if isinstance(name, str) else None
    if m is not None:
        k = int(m.group(1))
        if k >= depth:
            raise ConfigError(f"{key}: {name} names layer {k} but the network has layers 0..{depth - 1}")
        return name
    raise ConfigError(f"{key}: unknown hyperparameter {short(name)}; allowed: {PARAM_HELP}")


# --------------------------------------------------------------------------- sections


def _network(d: dict[str, Any], rng: str) -> NetworkConfig:
    _no_unknown(d, "network", ("width", "depth", "nonlinearity", "input_dim", "output_dim", "seed"))
    base = NetworkConfig()
    input_dim = d.get("input_dim")
    return NetworkConfig(
        width=_int(d.get("width", base.width), "network.width", 1, MAX_DIM),
        depth=_int(d.get("depth", base.depth), "network.depth", 2, MAX_DEPTH),
        nonlinearity=_choice(d.get("nonlinearity", base.nonlinearity), "network.nonlinearity", NONLINEARITIES),
        input_dim=None if input_dim is None else _int(input_dim, "network.input_dim", 1, MAX_DIM),
        output_dim=_int(d.get("output_dim", base.output_dim), "network.output_dim", 1, MAX_DIM),
        seed=_int(d.get("seed", DEFAULT_SEEDS[rng]["network"]), "network.seed", 0, MAX_SEED),
    )


def _data(d: dict[str, Any], rng: str) -> DataConfig:
    _no_unknown(d, "data", ("size", "size_multiple", "seed"))
    size = d.get("size", "paper")
    if size != "paper":
        if isinstance(size, str) and not re.fullmatch(r"[0-9.eE+]+", size):
            raise ConfigError(f"data.size: expected a positive integer or 'paper', got {short(size)}")
        size = _int(size, "data.size", 1, MAX_DATA)
    multiple = d.get("size_multiple")
    if multiple is not None:
        if "size" in d:
            raise ConfigError("data.size_multiple: give either data.size or data.size_multiple, not both")
        multiple = _float(multiple, "data.size_multiple")
        if not 0 < multiple <= 1e6:
            raise ConfigError(f"data.size_multiple: must be > 0 and <= 1e6, got {multiple}")
    return DataConfig(size=size, size_multiple=multiple,
                      seed=_int(d.get("seed", DEFAULT_SEEDS[rng]["data"]), "data.seed", 0, MAX_SEED))


def _training(d: dict[str, Any], rng: str) -> TrainingConfig:
    _no_unknown(d, "training", ("steps", "batch", "seed", "learning_rate"))
    batch = d.get("batch", "full")
    if batch != "full":
        if isinstance(batch, str) and not batch.strip().isdigit():
            raise ConfigError(f"training.batch: expected 'full' or a positive integer, got {short(batch)}")
        batch = _int(batch, "training.batch", 1, MAX_DATA)
    lr = _float(d.get("learning_rate", 0.1), "training.learning_rate")
    return TrainingConfig(
        steps=_int(d.get("steps", 500), "training.steps", 1, MAX_STEPS),
        batch=batch,
        seed=_int(d.get("seed", DEFAULT_SEEDS[rng]["training"]), "training.seed", 0, MAX_SEED),
        learning_rate=lr,
    )


def _axis(d: Any, key: str, default_param: str, depth: int) -> AxisConfig:
    d = _mapping(d, key)
    _no_unknown(d, key, ("param", "scale", "range"))
    param = check_param(d.get("param", default_param), depth, f"{key}.param")
    scale = _choice(d.get("scale", "log10"), f"{key}.scale", SCALES)
    return AxisConfig(param=param, scale=scale, range=_range(d.get("range", [-3, 6]), f"{key}.range"))


TOP_KEYS = ("name", "description", "rng", "network", "data", "training", "axes", "fixed", "readout", "resolution",
            "tile", "views", "zoom_target", "ensemble")


def _range(value: Any, key: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{key}: expected [low, high], got {short(value)}")
    lo, hi = _float(value[0], f"{key}[0]"), _float(value[1], f"{key}[1]")
    if not lo < hi:
        raise ConfigError(f"{key}: low must be below high, got [{lo!r}, {hi!r}]")
    return lo, hi


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {short(value)}")
    return value


def _views(raw: Any) -> tuple[tuple[str, ViewConfig], ...]:
    views = []
    for name, d in _mapping(raw, "views").items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]*", name):
            raise ConfigError(f"views: a view name is letters, digits, '_' or '-', starting with a letter; got {short(name)}")
        key = f"views.{name}"
        d = _mapping(d, key)
        _no_unknown(d, key, ("x", "y", "units", "square", "sampling"))
        for k in ("x", "y"):
            if k not in d:
                raise ConfigError(f"{key}.{k}: missing; expected [low, high]")
        views.append((name, ViewConfig(
            x=_range(d["x"], f"{key}.x"),
            y=_range(d["y"], f"{key}.y"),
            units=_choice(d.get("units", "axis"), f"{key}.units", VIEW_UNITS),
            square=_bool(d.get("square", False), f"{key}.square"),
            sampling=_choice(d.get("sampling", "centres"), f"{key}.sampling", VIEW_SAMPLING),
        )))
    return tuple(views)


def parse_ensemble(raw: Any, minibatch: bool, key: str = "ensemble") -> EnsembleConfig:
    """``ensemble: K`` or ``ensemble: {members: K, vary: [weights, data, minibatch]}``.

    ``vary`` defaults to every source the config draws; naming ``minibatch`` for
    full-batch training is refused, since it would silently vary nothing.
    """
    d = {"members": raw} if not isinstance(raw, dict) else raw
    _no_unknown(d, key, ("members", "vary"))
    if "members" not in d:
        raise ConfigError(f"{key}.members: missing; expected the number of draws (1 .. {MAX_MEMBERS})")
    mkey = key if not isinstance(raw, dict) else f"{key}.members"
    members = _int(d["members"], mkey, 1, MAX_MEMBERS)
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
    raw = _mapping(raw, "config")
    _no_unknown(raw, "", TOP_KEYS)
    rng = _choice(raw.get("rng", "pcg64"), "rng", RNGS)
    network = _network(_mapping(raw.get("network"), "network"), rng)
    data = _data(_mapping(raw.get("data"), "data"), rng)
    training = _training(_mapping(raw.get("training"), "training"), rng)
    axes = _mapping(raw.get("axes"), "axes")
    _no_unknown(axes, "axes", ("x", "y"))
    x = _axis(axes.get("x"), "axes.x", "lr_input", network.depth)
    y = _axis(axes.get("y"), "axes.y", "lr_output", network.depth)
    if x.param == y.param:
        raise ConfigError(f"axes.y.param: must differ from axes.x.param (both are {x.param!r})")
    fixed_raw = _mapping(raw.get("fixed"), "fixed")
    fixed = []
    for k in sorted(fixed_raw, key=str):
        check_param(k, network.depth, f"fixed.{key_text(k)}")
        fixed.append((k, _float(fixed_raw[k], f"fixed.{k}")))
    _check_overlaps(x, y, fixed, network.depth)
    nm = raw.get("name", name)
    if "name" not in raw and not check_name_ok(nm):
        raise ConfigError(f"name: the config file's name gives {short(nm)}, which is not a valid name; add a "
                          f"'name:' key ({NAME_HELP})")
    check_name(nm)
    desc = raw.get("description", "")
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
        readout=_choice(raw.get("readout", "measure"), "readout", READOUTS),
        resolution=parse_resolution(raw.get("resolution", "256x256")),
        tile=_int(raw.get("tile", 64), "tile", 8, MAX_TILE),
        description=desc,
        rng=rng,
        views=_views(raw.get("views")),
        zoom_target=raw.get("zoom_target"),
    )
    if raw.get("ensemble") is not None:
        cfg = dataclasses.replace(cfg, ensemble=parse_ensemble(raw["ensemble"], cfg.batch_size is not None))
    if cfg.zoom_target is not None and cfg.view(cfg.zoom_target) is None:
        names = ", ".join(k for k, _ in cfg.views) or "none defined"
        raise ConfigError(f"zoom_target: must name one of the config's views ({short(names, 200)}); got {short(cfg.zoom_target)}")
    _check_consistency(cfg)
    return cfg


def check_name_ok(name: str) -> bool:
    try:
        check_name(name)
    except ConfigError:
        return False
    return True


def param_targets(name: str, depth: int) -> set:
    """What a hyperparameter sets: ('lr', layer) pairs, or the parameter itself."""
    if name == "lr":
        return {("lr", k) for k in range(depth)}
    if name == "lr_input":
        return {("lr", 0)}
    if name == "lr_output":
        return {("lr", depth - 1)}
    if name.startswith("lr_layer_"):
        return {("lr", int(name[len("lr_layer_"):]))}
    return {name}


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


def _check_consistency(cfg: Config) -> None:
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
    from fractaltrain import budget

    budget.check(cfg)


def check_resolvable(cfg: Config, key: str | None = None) -> None:
    """Refuse a window whose pixel values are not finite or not distinct in float64.

    ``render`` needs the same floor as ``zoom``: neighbouring pixels must differ by
    at least :data:`~fractaltrain.window.MIN_ULPS` ulps, or the image repeats one
    value and looks like a result.  ``key`` names the thing in the message
    (default: ``axes.x.range`` / ``axes.y.range``).
    """
    from fractaltrain.window import MIN_ULPS, axis_values, min_relative_spacing

    for axis, n, k in ((cfg.x, cfg.resolution[0], "axes.x.range"), (cfg.y, cfg.resolution[1], "axes.y.range")):
        lo, hi = axis.range
        where = key or k
        if not math.isfinite(hi - lo):
            raise ConfigError(f"{where}: [{lo!r}, {hi!r}] is wider than float64 can represent")
        with np.errstate(all="ignore"):
            values = axis_values(lo, hi, n, axis.scale)
        if not np.all(np.isfinite(values)):
            raise ConfigError(f"{where}: [{lo!r}, {hi!r}] ({axis.scale}) gives {axis.param} values that are not finite")
        spacing = min_relative_spacing(lo, hi, n, axis.scale)
        if spacing < MIN_ULPS:
            raise ConfigError(
                f"{where}: [{lo!r}, {hi!r}] is too narrow for {n} pixels: neighbouring {axis.param} values are "
                f"{spacing:.2g} float64 ulps apart (need at least {MIN_ULPS:g}); widen the range or lower the resolution"
            )


def _lines(a: int, b: int) -> str:
    return f"line {a + 1}" if a == b else f"lines {a + 1} and {b + 1}"


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and aliases that expand beyond MAX_YAML_NODES."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        if isinstance(node, yaml.MappingNode):
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    k = key_node.value
                    if k in seen:
                        raise ConfigError(
                            f"{key_text(k)}: duplicate key ({_lines(seen[k], key_node.start_mark.line)}); "
                            "give each key once"
                        )
                    seen[k] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node, memo: dict, active: set) -> int:
    """Number of nodes ``node`` stands for once every alias is expanded (linear time, shared nodes memoised)."""
    i = id(node)
    if i in memo:
        return memo[i]
    if i in active:
        raise ConfigError(f"config: an alias refers to itself (line {node.start_mark.line + 1}); remove the cycle")
    active.add(i)
    total = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            total += _expanded_size(child, memo, active)
            if total > MAX_YAML_NODES:
                break
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            total += _expanded_size(k, memo, active) + _expanded_size(v, memo, active)
            if total > MAX_YAML_NODES:
                break
    active.discard(i)
    memo[i] = total
    return total


def parse_yaml(text: str, where: str) -> Any:
    """Parse a config's text safely: no duplicate keys, no alias bombs, no deep nesting tracebacks."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            if _expanded_size(node, {}, set()) > MAX_YAML_NODES:
                raise ConfigError(
                    f"config: {where} expands to more than {MAX_YAML_NODES} values (YAML aliases?); a config is "
                    "a few dozen values"
                )
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = getattr(mark, "line", None)
        where_line = f" (line {line + 1})" if line is not None else ""
        problem = getattr(exc, "problem", None)
        detail = f": {short(problem, 80).strip(chr(39))}" if problem else ""
        raise ConfigError(f"config: {where} is not valid YAML{where_line}{detail}") from None
    except RecursionError:
        raise ConfigError(f"config: {where} is nested too deeply to be a config") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"config: {where} holds a value that cannot be read: {short(str(exc), 80)}") from None


def load_config(path: str | Path) -> Config:
    """Read a YAML experiment file.  The file stem is the default ``name``.

    The file must be UTF-8 text of at most a megabyte, with each key given once.
    An empty file is refused: it would silently start the full default job.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config: no such file {short(str(path), 200)}")
    if not path.is_file():
        raise ConfigError(f"config: {short(str(path), 200)} is not a regular file; expected a YAML config")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config: {path} is larger than {MAX_CONFIG_BYTES >> 20} MB; a config is a short YAML file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config: {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from None
    if "\0" in text:
        raise ConfigError(f"config: {path} contains NUL characters; expected a YAML text file")
    raw = parse_yaml(text, str(path))
    if raw is None or raw == {}:
        raise ConfigError(
            f"config: {path} is empty; it would run the full default job (tanh width 16, 256x256 pixels, 500 "
            "steps); write the keys you mean, e.g. start from configs/demo.yaml"
        )
    return config_from_dict(raw, name=path.stem)


def _as_option(fn, option: str, *args):
    """Call a validator for an override; its error is marked as the option's (see InputError.option)."""
    try:
        return fn(*args)
    except ConfigError as exc:
        raise ConfigError(str(exc), option=option) from None


def with_overrides(
    cfg: Config,
    *,
    resolution: str | None = None,
    steps: int | None = None,
    window: str | None = None,
) -> Config:
    """Apply overrides (the CLI's flags), validated like the YAML values they replace.

    Errors name the override (``resolution:``, ``steps:``, ``window:``), which the CLI
    translates to its flag.
    """
    if resolution is not None:
        cfg = dataclasses.replace(cfg, resolution=_as_option(parse_resolution, "resolution", resolution, "resolution"))
    if steps is not None:
        cfg = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, steps=_as_option(_int, "steps", steps, "steps", 1, MAX_STEPS)))
    if window is not None:
        parts = window.split(",")
        if len(parts) == 1 and cfg.view(window.strip()) is not None:
            x0, x1, y0, y1 = _as_option(view_window, "window", cfg, window.strip())
        elif len(parts) != 4:
            names = ", ".join(k for k, _ in cfg.views)
            raise ConfigError(f"window: expected X0,X1,Y0,Y1 in axis units"
                              + (f" or a view name ({short(names, 200)})" if names else "") + f", got {short(window)}",
                              option="window")
        else:
            x0, x1, y0, y1 = (_as_option(_float, "window", p, "window") for p in parts)
        if not (x0 < x1 and y0 < y1):
            raise ConfigError(f"window: need X0 < X1 and Y0 < Y1, got {short(window)}", option="window")
        cfg = dataclasses.replace(
            cfg, x=dataclasses.replace(cfg.x, range=(x0, x1)), y=dataclasses.replace(cfg.y, range=(y0, y1))
        )
        try:
            _check_consistency(cfg)
        except ConfigError as exc:
            msg = str(exc)
            for k in ("axes.x.range:", "axes.y.range:"):
                if msg.startswith(k):
                    raise ConfigError("window:" + msg[len(k):], option="window") from None
            raise
    elif resolution is not None or steps is not None:
        _check_consistency(cfg)
    return cfg


def view_window(cfg: Config, name: str, resolution: tuple[int, int] | None = None) -> tuple[float, float, float, float]:
    """The window ``x0, x1, y0, y1`` (axis units) that renders view ``name`` at ``resolution``.

    ``resolution`` defaults to the config's.  See :class:`ViewConfig` for units,
    ``square`` and ``sampling``; with ``sampling: endpoints`` the window grows by
    half a pixel on every side, so the pixel centres fall where the notebook's
    ``logspace`` samples are.
    """
    view = cfg.view(name)
    if view is None:
        raise ConfigError(f"views: no view named {short(name)}")
    nx, ny = resolution or cfg.resolution
    ranges = []
    for axis, (lo, hi), key in ((cfg.x, view.x, "x"), (cfg.y, view.y, "y")):
        if view.units == "value" and axis.scale == "log10":
            if lo <= 0:
                raise ConfigError(f"views.{name}.{key}: values on a log10 axis must be > 0, got {lo!r}")
            lo, hi = math.log10(lo), math.log10(hi)
        ranges.append([lo, hi])
    if view.square:
        half = 0.25 * ((ranges[0][1] - ranges[0][0]) + (ranges[1][1] - ranges[1][0]))
        ranges = [[0.5 * (lo + hi) - half, 0.5 * (lo + hi) + half] for lo, hi in ranges]
    if view.sampling == "endpoints":
        for r, n in zip(ranges, (nx, ny)):
            pad = 0.5 * (r[1] - r[0]) / max(n - 1, 1)
            r[0], r[1] = r[0] - pad, r[1] + pad
    (x0, x1), (y0, y1) = ranges
    return x0, x1, y0, y1
