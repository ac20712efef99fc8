"""What a config is: the frozen dataclasses, their defaults and the limits on their values.

The dataclass fields are the one place a default is written: the YAML parser
(:mod:`fractaltrain.config.parse`) fills every key a config leaves out from
:func:`field_defaults`, so a default cannot drift between the two.  The one
default that depends on another key, the seeds for ``rng: notebook``, is the
table :data:`NOTEBOOK_SEEDS`, which overrides the fields' (``pcg64``) seeds.
Plain data and arithmetic only: importing this module loads neither numba nor YAML.
"""

from __future__ import annotations

import dataclasses
import fractions
import json
from dataclasses import dataclass, field
from typing import Any

from fractaltrain.config.optimizer import OptimizerConfig
from fractaltrain.config.schedule import ScheduleConfig

NONLINEARITIES = ("tanh", "relu", "identity")
NORMS = ("none", "layer")
READOUTS = ("measure", "final_loss", "probe")
RNGS = ("pcg64", "notebook")
# Seeds a config leaves out under ``rng: notebook``: the notebook's PRNGKey(0) chain for weights and
# data and PRNGKey(42) for the minibatch sequence.  Under pcg64 they are the fields' own defaults
# (numpy streams 0/1/2); DEFAULT_SEEDS below puts the two side by side.
NOTEBOOK_SEEDS = {"network": 0, "data": 0, "training": 42}
VIEW_UNITS = ("axis", "value")
SOURCES = ("weights", "data", "minibatch")  # the random sources an ensemble can vary (fractaltrain.render.ensemble)
MAX_MEMBERS = 4096
VIEW_SAMPLING = ("centres", "endpoints")
SCALES = ("log10", "linear")
FIXED_PARAMS = ("lr", "lr_input", "lr_output", "offset_drift", "offset_init", "init_scale",
                "momentum", "beta1", "beta2", "eps", "weight_decay", "warmup_steps", "final_fraction")
PARAM_HELP = ("lr, lr_input, lr_output, lr_layer_K (K = 0 .. depth-1), offset_drift, offset_init, init_scale, "
              "the optimizer's momentum, beta1, beta2, eps, weight_decay and the schedule's warmup_steps, "
              "final_fraction")

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
    residual: bool = False  # h <- h + φ(layer(h)) on every hidden-to-hidden layer (depth >= 3)
    norm: str = "none"  # none | layer: layer normalisation of each hidden layer's pre-activations

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
    """Full-batch (``batch: full``) or minibatch training with one optimizer (default: steepest descent)."""

    steps: int = 500
    batch: int | str = "full"
    seed: int = 2
    learning_rate: float = 0.1  # for every layer whose rate is not on an axis
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)  # fractaltrain.config.optimizer
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)  # fractaltrain.config.schedule

    @property
    def tricks(self) -> bool:
        """Whether an optimizer other than sgd or a schedule is used (the table then has their columns)."""
        return bool(self.optimizer.settings) or self.schedule.name != "constant"


@dataclass(frozen=True)
class AxisConfig:
    """One image axis: which hyperparameter, its scale and its range.

    For ``scale: log10`` the range is in decades (``[-3, 6]`` means 1e-3 .. 1e6).
    """

    param: str
    scale: str = "log10"
    range: tuple[float, float] = (-3.0, 6.0)
    exact: tuple | None = None  # the range as exact Fractions, when given in decimals that floats do not hold

    def __post_init__(self):
        if self.exact is not None and tuple(fractions.Fraction(v) for v in self.range) == tuple(self.exact):
            object.__setattr__(self, "exact", None)

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
    exact: tuple | None = None  # (x0, x1, y0, y1) as Fractions, when the view was written in decimal strings


@dataclass(frozen=True)
class EnsembleConfig:
    """A seed ensemble (:mod:`fractaltrain.render.ensemble`): ``members`` draws of the ``vary`` sources.

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
    precision: str = "auto"  # auto, float64 or double-double (fractaltrain.precision)

    @property
    def plain_training(self) -> bool:
        """Steepest descent with a constant rate on the plain network: what every kernel trains.

        The optimizers, schedules, residual connections and layer norm of issue 32
        are trained by the float64 and double-double kernels (CPU and CUDA);
        perturbation trains plain steepest descent only.
        """
        net = self.network
        return not (self.training.tricks or net.residual or net.norm != "none")

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
        from fractaltrain.window import decimal_string

        d = dataclasses.asdict(self)
        for k, axis in (("x", self.x), ("y", self.y)):
            d[k]["range"] = list(axis.range) if axis.exact is None else [decimal_string(q) for q in axis.exact]
            del d[k]["exact"]
        if self.precision == "auto":  # configs that never chose keep the dict (manifest keys) they had
            del d["precision"]
        for k in ("residual", "norm"):  # likewise the plain network
            if d["network"][k] == field_defaults(NetworkConfig)[k]:
                del d["network"][k]
        for k, default in (("optimizer", OptimizerConfig()), ("schedule", ScheduleConfig())):  # likewise sgd
            value = getattr(self.training, k)
            if value == default:
                del d["training"][k]
            else:
                d["training"][k] = value.to_dict()
        d["axes"] = {"x": d.pop("x"), "y": d.pop("y")}
        d["fixed"] = {k: v for k, v in self.fixed}
        d["views"] = {k: {**{f: g for f, g in dataclasses.asdict(v).items() if f != "exact"},
                          "x": list(v.x) if v.exact is None else [decimal_string(q) for q in v.exact[:2]],
                          "y": list(v.y) if v.exact is None else [decimal_string(q) for q in v.exact[2:]]}
                      for k, v in self.views}
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


def field_defaults(cls) -> dict[str, Any]:
    """Default of every field of dataclass ``cls`` that has one, by name, in field order.

    The parser starts each section from these, so the dataclass is the only place
    a default is written.  ``default_factory`` fields are called, giving fresh values.
    """
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def field_names(cls) -> tuple[str, ...]:
    """The keys a section may hold: its dataclass's fields, in order (for "allowed here" messages)."""
    return tuple(f.name for f in dataclasses.fields(cls))


DEFAULT_SEEDS = {
    "pcg64": {"network": NetworkConfig.seed, "data": DataConfig.seed, "training": TrainingConfig.seed},
    "notebook": NOTEBOOK_SEEDS,
}
"""Seeds a config leaves out, per generator (derived: the pcg64 ones are the dataclass defaults)."""


