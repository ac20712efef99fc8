"""Colour: sign-preserving rank (CDF) equalisation and diverging palettes.

Raw values span many decades and their sign is the physics (negative =
converged), so colour is assigned by rank, separately on each side of zero
(PAPER.md, "Colour"): negative values map evenly onto [-1, -0.25], non-negative
ones onto [0.25, 1]; the result is negated and looked up in a diverging
palette.  With Spectral, converged pixels are blue-green and diverged ones
red-yellow, pale meaning fast.

A :class:`Reference` is the equalisation's lookup table: quantiles of the
negative and of the non-negative values of some image.  A :class:`CrossFade`
mixes the equalisations against two references, which is how zoom videos move
the reference smoothly from one keyframe to the next so colours never jump.
Colouring is kept separate from training so any stored result can be
re-coloured without retraining.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QUANTILES = 1025  # entries of a reference table on each side of zero
GAP = 0.25  # the band (-GAP, GAP) is left empty so the sign is always visible

_PALETTES_HEX = {
    # ColorBrewer diverging schemes, 11 classes, low to high.
    "spectral": "9e0142 d53e4f f46d43 fdae61 fee08b ffffbf e6f598 abdda4 66c2a5 3288bd 5e4fa2",
    "rdylbu": "a50026 d73027 f46d43 fdae61 fee090 ffffbf e0f3f8 abd9e9 74add1 4575b4 313695",
    "puor": "7f3b08 b35806 e08214 fdb863 fee0b6 f7f7f7 d8daeb b2abd2 8073ac 542788 2d004b",
    "gray": "000000 ffffff",
}
PALETTES = tuple(_PALETTES_HEX)
NAN_COLOUR = np.array([128, 128, 128], dtype=np.uint8)


def palette_table(name: str, n: int = 1024) -> np.ndarray:
    """(n, 3) uint8 lookup table interpolated linearly between the scheme's colours."""
    key = name.lower()
    if key not in _PALETTES_HEX:
        raise ValueError(f"palette: unknown {name!r}; allowed: {', '.join(PALETTES)}")
    stops = np.array([[int(h[i : i + 2], 16) for i in (0, 2, 4)] for h in _PALETTES_HEX[key].split()], float)
    pos = np.linspace(0.0, 1.0, len(stops))
    t = np.linspace(0.0, 1.0, n)
    table = np.stack([np.interp(t, pos, stops[:, c]) for c in range(3)], axis=1)
    return np.round(table).astype(np.uint8)


@dataclass(frozen=True)
class Reference:
    """Quantile tables of the negative and non-negative reference values.

    Either table may be empty (an image with no converged pixel, say).
    """

    neg: np.ndarray
    pos: np.ndarray


def make_reference(values: np.ndarray) -> Reference:
    """Quantile tables of ``values`` (finite entries only), QUANTILES long per side."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    q = np.linspace(0.0, 1.0, QUANTILES)
    neg = v[v < 0]
    pos = v[v >= 0]
    return Reference(
        neg=np.quantile(neg, q) if neg.size else np.empty(0),
        pos=np.quantile(pos, q) if pos.size else np.empty(0),
    )


@dataclass(frozen=True)
class CrossFade:
    """Equalise against ``a`` and ``b`` and mix the results ``(1-w)·a + w·b``.

    Mixing the equalised values (not the quantile tables) keeps every pixel's
    colour within ``w`` of both ends: blending tables instead can move a pixel's
    rank a long way for a tiny ``w`` when many values crowd a narrow range.
    """

    a: Reference
    b: Reference
    w: float


def rank_knots(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (knots, ranks) that :func:`_rank` interpolates in: ``table``'s distinct values and their mean rank.

    Tied table entries (large uniform regions give many) are merged into one
    point at their mean rank, so the map is continuous in ``x`` and changes
    continuously when a blended table breaks a tie; a plain interpolation over
    repeated entries would jump.  A table of fewer than two entries gives the
    single knot rank ½.
    """
    if table.size < 2:
        return np.zeros(1), np.full(1, 0.5)
    uq, inverse, counts = np.unique(table, return_inverse=True, return_counts=True)
    frac = np.bincount(inverse, weights=np.arange(table.size, dtype=np.float64)) / counts / (table.size - 1)
    return uq, frac


def _rank(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Fraction of the reference at or below ``x``, interpolated, in [0, 1] (see :func:`rank_knots`)."""
    uq, frac = rank_knots(table)
    if uq.size == 1:
        return np.full(x.shape, frac[0])
    return np.interp(x, uq, frac)


def equalize(values: np.ndarray, ref: Reference | CrossFade | None = None) -> np.ndarray:
    """Sign-preserving CDF equalisation: negatives to [-1, -GAP], the rest to [GAP, 1].

    NaN stays NaN.  ``ref`` defaults to the values themselves.
    """
    v = np.asarray(values, dtype=np.float64)
    if ref is None:
        ref = make_reference(v)
    if isinstance(ref, CrossFade):
        ea = equalize(v, ref.a)
        return ea if ref.w == 0.0 else (1.0 - ref.w) * ea + ref.w * equalize(v, ref.b)
    out = np.full(v.shape, np.nan)
    neg = v < 0
    pos = v >= 0
    out[neg] = -1.0 + (1.0 - GAP) * _rank(v[neg], ref.neg)
    out[pos] = GAP + (1.0 - GAP) * _rank(v[pos], ref.pos)
    return out


def colourize(values: np.ndarray, ref: Reference | CrossFade | None = None, palette: str = "spectral") -> np.ndarray:
    """RGB uint8 image of a raw-value array (rows as given; see :func:`to_image`)."""
    e = -equalize(values, ref)
    table = palette_table(palette)
    idx = np.clip(np.round((e + 1.0) * 0.5 * (len(table) - 1)), 0, len(table) - 1)
    rgb = table[np.nan_to_num(idx, nan=0).astype(np.int64)]
    rgb[np.isnan(e)] = NAN_COLOUR
    return rgb


def to_image(values: np.ndarray, ref: Reference | CrossFade | None = None, palette: str = "spectral") -> np.ndarray:
    """Raw values with rows = y ascending to an RGB image with y pointing up."""
    return np.ascontiguousarray(colourize(values, ref, palette)[::-1])
