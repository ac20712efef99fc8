"""Coercion of single config values, each with a one-line :class:`ConfigError` that names the key.

PyYAML reads ``1e-5`` as a string and ``5`` as an int, and ``true`` is an int to
Python, so every number is coerced explicitly here rather than trusted.  Each
message is ``KEY: what was wrong, got VALUE``, so the CLI can print it as is.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any

from fractaltrain.errors import ConfigError, key_text, short
from fractaltrain.window import parse_coordinate


def _number(value: Any, key: str, expected: str) -> int | float:
    """``value`` as an int or float, a numeric string read as a float; bools and other types are refused.

    PyYAML reads ``1e-5`` as a string and ``true`` as a bool (a Python int), so both are checked by hand.
    """
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}: expected {expected}, got {short(value)}")
    return value


def as_int(value: Any, key: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]``; ``"1e3"`` and ``1000.0`` count, ``1.5`` and ``true`` do not."""
    value = _number(value, key, "an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ConfigError(f"{key}: expected an integer, got {short(value)}")
        value = int(value)
    if minimum is not None and value < minimum:
        raise ConfigError(f"{key}: must be >= {minimum}, got {short(value)}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{key}: must be <= {maximum}, got {short(value)}")
    return value


def as_float(value: Any, key: str) -> float:
    """``value`` as a finite float; strings such as ``"1e-5"`` count, bools do not."""
    value = float(_number(value, key, "a number"))
    if not math.isfinite(value):
        raise ConfigError(f"{key}: must be finite, got {short(value)}")
    return value


def as_choice(value: Any, key: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``, named in the message otherwise."""
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{key}: must be one of {', '.join(allowed)}; got {short(value)}")
    return value


def as_mapping(value: Any, key: str) -> dict[str, Any]:
    """A section as a dict; an absent (``None``) section is empty, so every key takes its default."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping of keys to values, got {type(value).__name__} {short(value, 40)}")
    return value


def no_unknown(d: dict[str, Any], key: str, allowed: tuple[str, ...]) -> None:
    """Refuse keys outside ``allowed``: a misspelt key would otherwise be ignored silently."""
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
        w, h = as_int(value[0], f"{key}[0]"), as_int(value[1], f"{key}[1]")
    elif isinstance(value, int) and not isinstance(value, bool):
        w = h = value
    else:
        raise ConfigError(f"{key}: expected WIDTHxHEIGHT such as 640x360, got {short(value)}")
    if w < 2 or h < 2 or w > 65536 or h > 65536:
        raise ConfigError(f"{key}: width and height must be between 2 and 65536, got {w}x{h}")
    return w, h


def as_range(value: Any, key: str) -> tuple[float, float]:
    """``[low, high]`` as two finite floats with ``low < high``."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{key}: expected [low, high], got {short(value)}")
    lo, hi = as_float(value[0], f"{key}[0]"), as_float(value[1], f"{key}[1]")
    if not lo < hi:
        raise ConfigError(f"{key}: low must be below high, got [{lo!r}, {hi!r}]")
    return lo, hi


FLOAT_DIGITS = 15  # every decimal of this many significant digits or fewer means its float64
REPR_DIGITS = 17  # the most digits a float64's shortest repr has


def is_long_decimal(value: Any) -> bool:
    """Whether ``value`` is a decimal string that a float64 cannot hold, and so is read exactly.

    Such coordinates are kept exactly (a window 20 decades deep is written in
    them).  Up to :data:`FLOAT_DIGITS` significant digits a string is read as its
    float64, as it always was, so configs, views and windows written in ordinary
    numbers keep their tile keys (PyYAML reads ``1.3e1`` as a string, so strings
    alone do not tell).  With 16 or 17 digits it is read as a float64 only where
    it is that float's shortest repr (a located target printed and passed on as
    ``--center`` is the same float again); any other decimal of that length, say
    ``0.99999999999999995``, the lower edge of a window 1e-16 wide around 1, would
    be rounded by a float64 (to 1.0 here) and so is exact.  Longer strings are exact.
    """
    if not isinstance(value, str):
        return False
    mantissa = re.split(r"[eE]", value.strip())[0].lstrip("+-").replace(".", "").lstrip("0")
    digits = len(mantissa.rstrip("0"))
    if digits <= FLOAT_DIGITS:
        return False
    if digits > REPR_DIGITS:
        return True
    try:
        q = parse_coordinate(value)
    except ValueError:
        return True  # not a number: the exact parser names the problem
    f = float(q)
    return not (math.isfinite(f) and Fraction(repr(f)) == q)


def as_coordinate(value: Any, key: str) -> Fraction:
    """An axis coordinate: a long decimal string (:func:`is_long_decimal`) exactly, digit for digit; anything
    else as its float64."""
    if is_long_decimal(value):
        try:
            q = parse_coordinate(value)
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}, got {short(value)}") from None
    else:
        q = Fraction(as_float(value, key))
    if abs(q) > 1e308:
        raise ConfigError(f"{key}: must be finite in float64, got {short(value)}")
    return q


def as_exact_range(value: Any, key: str) -> tuple[tuple[float, float], tuple[Fraction, Fraction]]:
    """``[low, high]`` as floats and as exact coordinates (:func:`as_coordinate`), ``low < high`` exactly.

    Below float64's floor the two floats may be equal while the exact values are not.
    """
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{key}: expected [low, high], got {short(value)}")
    lo, hi = as_coordinate(value[0], f"{key}[0]"), as_coordinate(value[1], f"{key}[1]")
    if not lo < hi:
        raise ConfigError(f"{key}: low must be below high, got [{short(value[0])}, {short(value[1])}]")
    return (float(lo), float(hi)), (lo, hi)


def as_bool(value: Any, key: str) -> bool:
    """A YAML boolean only: 0, 1 and strings such as ``"true"`` are refused rather than guessed."""
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {short(value)}")
    return value
