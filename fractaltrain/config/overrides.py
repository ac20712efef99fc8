"""Changing a loaded config: the CLI's overrides, and the window a named view stands for.

An override is validated like the YAML value it replaces, and the whole-config
checks run again, since an override can break what the file alone satisfied.
Errors carry ``option`` (see :class:`~fractaltrain.errors.InputError`) so the CLI
can name its flag; this module never names a flag itself.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

from fractaltrain.config.parse import check_consistency
from fractaltrain.config.schema import MAX_STEPS, Config
from fractaltrain.config.values import as_coordinate, as_int, parse_resolution
from fractaltrain.precision import check_precision
from fractaltrain.errors import ConfigError, short


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
    precision: str | None = None,
) -> Config:
    """Apply overrides (the CLI's flags), validated like the YAML values they replace.

    Errors name the override (``resolution:``, ``steps:``, ``window:``, ``precision:``),
    which the CLI translates to its flag.  Window edges are decimal numbers of any
    length, read exactly (:func:`~fractaltrain.window.parse_coordinate`).
    """
    if precision is not None:
        cfg = dataclasses.replace(cfg, precision=_as_option(check_precision, "precision", precision))
    if resolution is not None:
        cfg = dataclasses.replace(cfg, resolution=_as_option(parse_resolution, "resolution", resolution, "resolution"))
    if steps is not None:
        cfg = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, steps=_as_option(as_int, "steps", steps, "steps", 1, MAX_STEPS)))
    if window is not None:
        parts = window.split(",")
        if len(parts) == 1 and cfg.view(window.strip()) is not None:
            x0, x1, y0, y1 = (Fraction(v) for v in _as_option(view_window, "window", cfg, window.strip()))
        elif len(parts) != 4:
            names = ", ".join(k for k, _ in cfg.views)
            raise ConfigError("window: expected X0,X1,Y0,Y1 in axis units"
                              + (f" or a view name ({short(names, 200)})" if names else "") + f", got {short(window)}",
                              option="window")
        else:
            x0, x1, y0, y1 = (_as_option(as_coordinate, "window", p.strip(), "window") for p in parts)
        if not (x0 < x1 and y0 < y1):
            raise ConfigError(f"window: need X0 < X1 and Y0 < Y1, got {short(window)}", option="window")
        cfg = dataclasses.replace(
            cfg, x=dataclasses.replace(cfg.x, range=(float(x0), float(x1)), exact=(x0, x1)),
            y=dataclasses.replace(cfg.y, range=(float(y0), float(y1)), exact=(y0, y1)),
        )
        try:
            check_consistency(cfg)
        except ConfigError as exc:
            msg = str(exc)
            for k in ("axes.x.range:", "axes.y.range:"):
                if msg.startswith(k):
                    raise ConfigError("window:" + msg[len(k):], option="window") from None
            raise
    elif resolution is not None or steps is not None or precision is not None:
        check_consistency(cfg)
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
    if view.exact is not None:
        return _exact_view_window(cfg, view, name, nx, ny)
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


def _exact_view_window(cfg: Config, view, name: str, nx: int, ny: int) -> tuple[Fraction, Fraction, Fraction, Fraction]:
    """:func:`view_window` for a view written in decimal strings, in exact arithmetic (Fractions).

    ``units: value`` on a log10 axis takes the logarithm to 60 digits (it is
    irrational); everything else is exact.  Views written as plain numbers keep
    the float computation, so their windows and tile keys stay as they were.
    """
    from decimal import Decimal, localcontext

    ranges = []
    for axis, (lo, hi), key in ((cfg.x, view.exact[:2], "x"), (cfg.y, view.exact[2:], "y")):
        if view.units == "value" and axis.scale == "log10":
            if lo <= 0:
                raise ConfigError(f"views.{name}.{key}: values on a log10 axis must be > 0, got {float(lo)!r}")
            with localcontext() as ctx:
                ctx.prec = 60
                lo, hi = (Fraction((Decimal(q.numerator) / Decimal(q.denominator)).log10()) for q in (lo, hi))
        ranges.append([lo, hi])
    if view.square:
        half = ((ranges[0][1] - ranges[0][0]) + (ranges[1][1] - ranges[1][0])) / 4
        ranges = [[(lo + hi) / 2 - half, (lo + hi) / 2 + half] for lo, hi in ranges]
    if view.sampling == "endpoints":
        for r, n in zip(ranges, (nx, ny)):
            pad = (r[1] - r[0]) / 2 / max(n - 1, 1)
            r[0], r[1] = r[0] - pad, r[1] + pad
    (x0, x1), (y0, y1) = ranges
    return x0, x1, y0, y1
