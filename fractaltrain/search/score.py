"""Scoring boundary blocks of a small sign image for the target search (:mod:`fractaltrain.search.targets`).

A window is worth zooming into when its boundary is busy but resolved: the
share ``b`` of 2×2 blocks that change sign lies in ``[B_LO, B_HI]`` (more than a
bare line, less than rounding static) and the rarer phase covers at least
``M_LO`` of the pixels.  A block's score is the smallest log-margin of those
three over nested windows centred on it (integral images make every block's
windows cost O(1)).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from fractaltrain.boundary import boundary_mask, box_sums, integral_image

class Hit(NamedTuple):
    """A scored boundary block of an image: its 2×2 block (``row``, ``col``) and window statistics."""

    row: int
    col: int
    score: float
    b: float  # fraction of 2×2 blocks that change sign
    m: float  # fraction of the rarer phase


B_LO, B_HI, M_LO = 0.05, 0.35, 0.05
ACCEPT = math.log(1.2)  # the search's margin: b in [6%, 29%] and m >= 6%, inside the 5% / 35% / 5% band


def score_blocks(values: np.ndarray, rows: np.ndarray, cols: np.ndarray, sizes) -> tuple[np.ndarray, ...]:
    """Score of the boundary blocks (``rows``, ``cols``) of ``values``; see the module docstring.

    Returns (score, b, m) arrays, ``b`` and ``m`` of the first (largest) size.
    Windows are clipped at the image edge and normalised by what remains.
    """
    h, w = values.shape
    mask = boundary_mask(values)
    Ib, In, Ip = integral_image(mask), integral_image(values < 0), integral_image(values > 0)
    score = np.full(rows.shape, np.inf)
    b_first = m_first = None
    for s in sizes:
        half = s // 2
        pr0 = np.clip(rows + 1 - half, 0, h)
        pr1 = np.clip(rows + 1 + half, 0, h)
        pc0 = np.clip(cols + 1 - half, 0, w)
        pc1 = np.clip(cols + 1 + half, 0, w)
        n_px = (pr1 - pr0) * (pc1 - pc0)
        n_blk = np.maximum((pr1 - pr0 - 1) * (pc1 - pc0 - 1), 1)
        blocks = box_sums(Ib, pr0, pr1 - 1, pc0, pc1 - 1)
        neg, pos = box_sums(In, pr0, pr1, pc0, pc1), box_sums(Ip, pr0, pr1, pc0, pc1)
        b = blocks / n_blk
        m = np.minimum(neg, pos) / n_px
        with np.errstate(divide="ignore"):
            s_here = np.minimum.reduce([np.log(b / B_LO), np.log(B_HI / np.maximum(b, 1e-300)), np.log(m / M_LO)])
        score = np.minimum(score, s_here)
        if b_first is None:
            b_first, m_first = b, m
    return score, b_first, m_first


def pick(values: np.ndarray, sizes, region: int | None, sep: int, limit: int,
         threshold: float | None, allowed: np.ndarray | None = None) -> list[tuple[int, int, float, float, float]]:
    """Well-separated boundary blocks in score order: (row, col, score, b, m).

    ``region``: only blocks whose centre lies within this many pixels of the
    image centre (None: anywhere).  ``threshold``: minimum score (None: any).
    ``allowed``: a mask of the blocks that may be picked (the config's own view;
    the search's images reach beyond it, since the opening view is widened to the
    video's aspect).
    """
    mask = boundary_mask(values)
    if allowed is not None:
        mask = mask & allowed
    rows, cols = np.nonzero(mask)
    h, w = values.shape
    cr, cc = (h - 1) / 2.0, (w - 1) / 2.0
    dr, dc = rows + 0.5 - cr, cols + 0.5 - cc
    if region is not None:
        keep = (np.abs(dr) <= region) & (np.abs(dc) <= region)
        rows, cols, dr, dc = rows[keep], cols[keep], dr[keep], dc[keep]
    if rows.size == 0:
        return []
    score, b, m = score_blocks(values, rows, cols, sizes)
    order = np.lexsort((cols, rows, dr * dr + dc * dc, -score))  # last key sorts first
    out: list[Hit] = []
    for i in order:
        if threshold is not None and not score[i] >= threshold:
            break
        r, c = int(rows[i]), int(cols[i])
        if all(max(abs(r - q.row), abs(c - q.col)) >= sep for q in out):
            out.append(Hit(r, c, float(score[i]), float(b[i]), float(m[i])))
            if len(out) >= limit:
                break
    return out
