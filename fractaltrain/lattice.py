"""Keyframe lattices: pixel values that nested keyframes share bit for bit, so a zoom trains them once.

Why.  With a keyframe factor of 2, a quarter of each keyframe's pixels lie
inside the previous keyframe's window.  They can be taken from it instead of
trained again only if they are the *same* hyperparameters, to the last bit.
The usual pixel values (:func:`fractaltrain.window.axis_values`) depend on the
window's edges, so two keyframes never share one.

A lattice fixes that.  Keyframe ``k`` has an odd number ``n`` of pixels on an
axis, centred on the target ``c``, and its pixel ``i`` sits at the exact
rational coordinate ``u = c + j·h_k`` with ``j = i − (n−1)/2`` and spacing
``h_k = h_0 / f^k`` (``f`` the keyframe factor, a power of two).  The value is
a function of ``u`` alone: ``u`` itself correctly rounded on a linear axis, or
``exp(u·ln 10)`` evaluated in :data:`DIGITS`-digit decimal arithmetic and
rounded once to float64 on a log10 axis.  Keyframe ``k+1``'s pixel
``j' = f·j`` has ``u' = c + f·j·h_k/f = u`` exactly, so it has the same value,
trains to the same raw values, and is copied from keyframe ``k``
(:mod:`fractaltrain.compute.reuse`).

A lattice is written as four exact fractions, ``(c_x, h_x, c_y, h_y)``, kept as
strings in the grid's identity (:class:`fractaltrain.compute.store.Grid`).
"""

from __future__ import annotations

import functools
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np

DIGITS = 50  # decimal digits of exp(u·ln 10): far past float64's 17, so it rounds to float64 once


def lattice_strings(cx: Fraction, hx: Fraction, cy: Fraction, hy: Fraction) -> tuple[str, str, str, str]:
    """The lattice as it is stored in a grid's identity."""
    return tuple(str(Fraction(v)) for v in (cx, hx, cy, hy))


def lattice_fractions(strings) -> tuple[Fraction, Fraction, Fraction, Fraction]:
    """The four exact numbers back from :func:`lattice_strings` (raises ValueError if malformed)."""
    vals = tuple(Fraction(str(s)) for s in strings)
    if len(vals) != 4 or vals[1] <= 0 or vals[3] <= 0:
        raise ValueError(f"a lattice is four numbers (cx, hx, cy, hy) with positive spacings, got {strings!r}")
    return vals


@functools.lru_cache(maxsize=128)
def lattice_values(c: Fraction, h: Fraction, n: int, scale: str) -> np.ndarray:
    """The ``n`` (odd) values of one axis: ``v(c + j·h)`` for ``j = −(n−1)/2 … (n−1)/2`` (module docstring).

    Cached: a zoom asks for the same axes when it trains, tests and writes a
    keyframe, and a log10 axis costs about 30 µs a value.  Read-only result.
    """
    out = lattice_values_at(c, h, n, range(n), scale)
    out.setflags(write=False)
    return out


def lattice_values_at(c: Fraction, h: Fraction, n: int, indices, scale: str) -> np.ndarray:
    """The values of pixels ``indices`` of an ``n``-pixel lattice axis (the same numbers as :func:`lattice_values`)."""
    if n < 1 or n % 2 == 0:
        raise ValueError(f"a lattice axis has an odd number of pixels, got {n}")
    half = (n - 1) // 2
    idx = [int(i) for i in indices]
    out = np.empty(len(idx), dtype=np.float64)
    with localcontext() as ctx:
        ctx.prec = DIGITS
        ln10 = Decimal(10).ln()
        for k, i in enumerate(idx):
            u = c + (i - half) * h
            if scale == "linear":
                out[k] = float(u)
            else:
                d = Decimal(u.numerator) / Decimal(u.denominator)
                out[k] = float((d * ln10).exp())
    return out


def power_of_two(factor: float) -> int | None:
    """``m`` where ``factor == 2**m`` (m ≥ 1), else None: only then do nested keyframes share pixels."""
    m = round(np.log2(factor)) if factor > 1 else 0
    return m if m >= 1 and 2.0**m == factor else None


def parent_offsets(child, parent) -> tuple[int, int, int] | None:
    """How ``child``'s pixels sit on ``parent``'s lattice: ``(ratio, x_shift, y_shift)``, or None.

    ``ratio`` is ``h_parent / h_child`` (a power of two on both axes alike),
    and child pixel ``(r, c)`` is parent pixel ``((r − y_shift)/ratio,
    (c − x_shift)/ratio)`` wherever both divide evenly and land inside the
    parent.  Both grids must be float64 lattices of one problem and one centre.
    """
    if child.lattice is None or parent.lattice is None or child.double_double or parent.double_double:
        return None
    if child.problem_key != parent.problem_key:
        return None
    ccx, chx, ccy, chy = lattice_fractions(child.lattice)
    pcx, phx, pcy, phy = lattice_fractions(parent.lattice)
    if (ccx, ccy) != (pcx, pcy):
        return None
    rx, ry = phx / chx, phy / chy
    if rx != ry or rx.denominator != 1 or rx < 2 or (rx.numerator & (rx.numerator - 1)) != 0:
        return None
    ratio = int(rx)
    # child j' = ratio·j: child index i' = j' + (nc−1)/2, parent index i = j + (np−1)/2
    x_shift = (child.width - 1) // 2 - ratio * ((parent.width - 1) // 2)
    y_shift = (child.height - 1) // 2 - ratio * ((parent.height - 1) // 2)
    return ratio, x_shift, y_shift
