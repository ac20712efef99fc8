"""The converge/diverge boundary of a sign image, and the summed-area table that counts it.

Box counting (:mod:`fractaltrain.dimension.boxcount`) and the target search's block
scores (:mod:`fractaltrain.search.score`, :mod:`fractaltrain.search.scan`)
all start from the same two things: which 2×2 blocks change sign, and sums of
a boolean image over many rectangles, four lookups each.
"""

from __future__ import annotations

import numpy as np


def _any_in_block(flags: np.ndarray) -> np.ndarray:
    """For each 2x2 block of a boolean image, whether any of its four is set."""
    rows = flags[:-1] | flags[1:]
    return rows[:, :-1] | rows[:, 1:]


def boundary_mask(values: np.ndarray) -> np.ndarray:
    """Mark 2x2 neighbourhoods whose values change sign.

    The paper's notebook tests ``sign(max * min) < 0`` over each 2x2 block,
    i.e. the block holds a positive and a negative value.  Here that is
    computed on boolean sign images (``max > 0`` iff some value is positive,
    ``min < 0`` iff some value is negative), which cannot overflow and needs
    an eighth of the memory traffic of float maxima.  Zero counts as neither
    sign, as in the notebook; a block holding a NaN is never boundary, as
    with the notebook's NaN-propagating max/min.

    Parameters
    ----------
    values : ndarray, shape (H, W)
        Raw per-pixel values (negative = converged, positive = diverged).

    Returns
    -------
    ndarray of bool, shape (H - 1, W - 1)
        Element ``[i, j]`` describes the block ``values[i:i+2, j:j+2]``.
    """
    values = np.asarray(values)
    if values.ndim != 2 or min(values.shape) < 2:
        raise ValueError(f"need a 2-D array of at least 2x2, got shape {values.shape}")
    mask = _any_in_block(values > 0) & _any_in_block(values < 0)
    if np.issubdtype(values.dtype, np.floating):
        mask &= ~_any_in_block(np.isnan(values))
    return mask


def integral_image(mask: np.ndarray) -> np.ndarray:
    """Summed-area table with a zero first row and column.

    Any box sum is then four lookups, so counting costs O(boxes) per size
    instead of O(pixels).  int32 is exact while the pixel count fits (and
    halves the memory traffic of a 4096^2 table); larger masks use int64.
    """
    dtype = np.int32 if mask.size < 2**31 else np.int64
    table = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=dtype)
    np.cumsum(mask, axis=0, dtype=dtype, out=table[1:, 1:])
    np.cumsum(table[1:, 1:], axis=1, out=table[1:, 1:])
    return table


def box_sums(table: np.ndarray, r0, r1, c0, c1):
    """Sums of the image over rows ``[r0, r1)`` and columns ``[c0, c1)`` (arrays broadcast)."""
    return table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]
