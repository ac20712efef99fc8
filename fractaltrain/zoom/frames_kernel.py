"""numba kernels of frame composition: colour and bilinear sampling of one keyframe layer, and rounding.

Kept apart from :mod:`fractaltrain.zoom.frames` so that importing the zoom
schedule does not load numba.  Each kernel is a plain function writing into
explicit output arrays, parallel over frame rows.  They reproduce the numpy
expressions they replace operation for operation (float64 equalised values,
the palette index rounded half to even, float32 bilinear weights and
blending), so frames are the same bytes as the vectorised numpy form gives,
whatever the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _interp(x, xp, fp, j):
    """``np.interp(x, xp, fp)`` with numpy's own arithmetic, and the interval found.

    The search starts from interval ``j`` (the previous pixel's: neighbours
    are close in value) and falls back to bisection.  Then numpy's formula:
    the table value on a knot or beyond the ends, else ``slope·(x - xp[j]) +
    fp[j]`` with the interval's slope (from the other end if that is NaN).
    """
    n = xp.shape[0]
    if n == 1 or x < xp[0]:
        return fp[0], j
    if x >= xp[n - 1]:
        return fp[n - 1], j
    for _ in range(4):  # a few steps towards x first: neighbouring pixels are often a few knots apart
        if x < xp[j]:
            j -= 1
        elif x >= xp[j + 1]:
            j += 1
        else:
            break
    if not (xp[j] <= x < xp[j + 1]):
        j = 0  # branch-free bisection: xp[j] <= x < xp[j + size] throughout
        size = n - 1
        while size > 1:
            half = size >> 1
            j = j + half if xp[j + half] <= x else j
            size -= half
    if xp[j] == x:
        return fp[j], j
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    r = slope * (x - xp[j]) + fp[j]
    if r != r:
        r = slope * (x - xp[j + 1]) + fp[j + 1]
        if r != r and fp[j] == fp[j + 1]:
            r = fp[j]
    return r, j


@njit(cache=True, parallel=True)
def equalise(values, neg_x, neg_f, pos_x, pos_f, lo_neg, scale, lo_pos, out):
    """Sign-preserving rank equalisation of ``values`` (2-D) into ``out``, parallel over rows.

    Negative values map to ``lo_neg + scale·rank_neg``, the rest to
    ``lo_pos + scale·rank_pos``, each rank interpolated in its (knots, ranks)
    table as :func:`fractaltrain.render.colour.equalize` does; NaN stays NaN.  Same
    bits as that function.
    """
    h, w = values.shape
    for y in prange(h):
        jn = 0
        jp = 0
        for x in range(w):
            v = values[y, x]
            if v != v:
                out[y, x] = v
            elif v < 0:
                r, jn = _interp(v, neg_x, neg_f, jn)
                out[y, x] = lo_neg + scale * r
            else:
                r, jp = _interp(v, pos_x, pos_f, jp)
                out[y, x] = lo_pos + scale * r


ROW_BLOCK = 32  # frame rows per parallel task: a task colours each keyframe row it needs once


@njit(cache=True)
def _colour_row(ea, eb, w, mixed, table, r, cols, p0, p1, dst):
    """Colour keyframe row ``r`` at columns ``cols[p0:p1]`` into ``dst[p0:p1]`` (float32 RGB, one row per column).

    The palette index is ``round((1 - e) · ½ · nmax)`` (half to even, clipped)
    of the colour value e (``(1-w)·ea + w·eb`` when ``mixed``, else ``ea``); NaN
    takes the table's last row.
    """
    nmax = float(table.shape[0] - 2)
    for i in range(p0, p1):
        c = cols[i]
        e = ea[r, c]
        if mixed:
            e = (1.0 - w) * e + w * eb[r, c]
        if e != e:
            k = table.shape[0] - 1
        else:
            t = np.rint((-e + 1.0) * 0.5 * nmax)
            if t < 0.0:
                t = 0.0
            elif t > nmax:
                t = nmax
            k = int(t)
        for ch in range(3):
            dst[i, ch] = table[k, ch]


@njit(cache=True, parallel=True)
def blend_layer(out, ea, eb, w, mixed, table, iy0, iy1, ay, cols, jx0, jx1, ax, in_rows, in_cols, margin, fade,
                first, xa, xb, hole):
    """Sample one keyframe layer at frame pixels and blend it into ``out`` (float32, H × W × 3).

    Each keyframe pixel the frame needs is coloured once (two keyframe rows
    are kept per task, since consecutive frame rows mostly share them; only
    the columns the samples read, since an inner keyframe is shown smaller than
    it is), then sampled bilinearly in float32 RGB at the frame's pixel centres.

    Parameters
    ----------
    ea, eb : float64 arrays
        The keyframe's equalised values against the frame's two references;
        the colour value is ``(1 - w)·ea + w·eb`` when ``mixed``, else ``ea``.
    table : float32 array
        The palette (n × 3) with the colour of NaN appended as row n.
    iy0, iy1, ay : the keyframe rows above and below each frame row and the
        float32 weight of the second.
    cols, jx0, jx1, ax : the keyframe columns the layer reads (ascending), and
        for each frame column the positions in ``cols`` of the columns left and
        right of it and the float32 weight of the second.
    in_rows, in_cols : float64
        Distance of each frame row / column inside the keyframe (fraction of
        its extent, negative outside); a pixel's inside-ness is the smaller.
    margin, fade : float
        Feather width (0: hard edge) and layer opacity.
    first : bool
        The bottom layer: written as is, with no alpha.
    xa, xb : int
        The frame columns the layer can touch (alpha 0 elsewhere leaves ``out``
        as it is, bit for bit).
    hole : int64 array (y0, y1, x0, x1)
        Frame pixels a later layer covers with alpha exactly 1, which this
        layer skips (that layer writes ``out·0 + rgb·1``, i.e. its own colour,
        whatever ``out`` held, as long as it is finite).  Empty (0, 0, 0, 0)
        for a layer nothing covers.
    """
    h = out.shape[0]
    if xb <= xa:
        return
    ncol = cols.shape[0]
    one = np.float32(1.0)
    nblocks = (h + ROW_BLOCK - 1) // ROW_BLOCK
    hy0, hy1, hx0, hx1 = hole[0], hole[1], hole[2], hole[3]
    for blk in prange(nblocks):
        buf = np.empty((2, ncol, 3), np.float32)
        held = np.full(2, -1, np.int64)  # keyframe row in each slot (slot = row parity) ...
        whole = np.zeros(2, np.bool_)  # ... and whether all its columns are coloured, or only those beside the hole
        for y in range(blk * ROW_BLOCK, min(h, (blk + 1) * ROW_BLOCK)):
            if not first and in_rows[y] < 0.0:
                continue  # the row misses the keyframe
            in_hole = hy0 <= y < hy1
            if in_hole and hx0 <= xa and xb <= hx1:
                continue  # covered all along by a later layer
            r0, r1 = iy0[y], iy1[y]
            for r in (r0, r1):
                slot = r & 1
                if held[slot] == r and (whole[slot] or in_hole):
                    continue
                if in_hole:  # only the columns read left and right of the hole
                    if hx0 > xa:
                        _colour_row(ea, eb, w, mixed, table, r, cols, jx0[xa], jx1[hx0 - 1] + 1, buf[slot])
                    if hx1 < xb:
                        _colour_row(ea, eb, w, mixed, table, r, cols, jx0[hx1], jx1[xb - 1] + 1, buf[slot])
                else:
                    _colour_row(ea, eb, w, mixed, table, r, cols, 0, ncol, buf[slot])
                held[slot] = r
                whole[slot] = not in_hole
            top_row = buf[r0 & 1]
            bot_row = buf[r1 & 1]
            fy = ay[y]
            for x in range(xa, xb):
                if in_hole and hx0 <= x < hx1:
                    continue
                a = np.float32(1.0)
                if not first:
                    inside = min(in_rows[y], in_cols[x])
                    if margin > 0.0:
                        al = min(max(inside / margin, 0.0), 1.0)
                    else:
                        al = 1.0 if inside >= 0.0 else 0.0
                    a = np.float32(al * fade)
                    if a == 0.0:
                        continue  # out·(1 - 0) + rgb·0 is out, bit for bit
                i0 = jx0[x]
                i1 = jx1[x]
                fx = ax[x]
                for ch in range(3):
                    top = top_row[i0, ch] * (one - fx) + top_row[i1, ch] * fx
                    bot = bot_row[i0, ch] * (one - fx) + bot_row[i1, ch] * fx
                    rgb = top * (one - fy) + bot * fy
                    if first:
                        out[y, x, ch] = rgb
                    else:
                        out[y, x, ch] = out[y, x, ch] * (one - a) + rgb * a


@njit(cache=True, parallel=True)
def to_frame(out, frame):
    """Round ``out`` (float32, rows = y ascending) half to even into ``frame`` (uint8, y up)."""
    h, wd = out.shape[0], out.shape[1]
    for y in prange(h):
        for x in range(wd):
            for ch in range(3):
                v = np.rint(out[y, x, ch])
                if v < 0:
                    v = np.float32(0.0)
                elif v > 255:
                    v = np.float32(255.0)
                frame[h - 1 - y, x, ch] = np.uint8(v)
