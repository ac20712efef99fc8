"""Compose video frames from keyframes: a pure function of the frame index.

Frame ``i`` lies between keyframe ``k`` (which encloses it) and ``k+1``, with
progress ``w`` (0 at keyframe k, 1 at keyframe k+1) in log-zoom.  It is drawn
in three layers, each keyframe coloured with the same reference and sampled
bilinearly at the frame's pixel centres:

* ``k``: everywhere (alpha 1);
* ``k+1``: alpha 1 inside, ramping to 0 over a border ``MARGIN·(1-w)`` wide, so
  as the frame reaches keyframe ``k+1`` the ramp vanishes and the switch of
  enclosing keyframe shows no seam;
* ``k+2``: the same ramp at full margin, faded in by ``w`` ("the innermost
  fading in").

Every alpha is continuous in ``w`` and matches across keyframe boundaries, and
the colour equalisation is cross-faded ``(1-w)·eq_k + w·eq_{k+1}`` between the
keyframes' references, so neither shapes nor colours jump between frames.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import numpy as np

from fractaltrain.render import colour
from fractaltrain.window import axis_coords
from fractaltrain.zoom.plan import ZoomPlan

MARGIN = 0.08  # feather width, as a fraction of an inner keyframe's extent


def _axis_samples(f: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keyframe indices either side of sample positions ``f`` (pixel units) and the float32 weight of the second.

    The positions are first taken relative to the part of the keyframe the
    frame sees (a crop from one pixel before the first sample to one after the
    last) and clamped to it, which fixes the frames' bytes at the keyframe's
    edges; the indices returned are in the whole keyframe.
    """
    c0 = int(np.clip(np.floor(f.min()), 0, n - 1))
    c1 = int(np.clip(np.floor(f.max()) + 2, 1, n))
    m = c1 - c0
    fc = np.clip(f - c0, 0, m - 1)
    i0 = np.minimum(np.floor(fc).astype(np.int64), m - 2) if m > 1 else np.zeros(len(fc), np.int64)
    weight = (fc - i0).astype(np.float32)
    i1 = np.minimum(i0 + 1, m - 1)
    return c0 + i0, c0 + i1, weight


_NO_HOLE = np.zeros(4, np.int64)


def _opaque_span(inside: np.ndarray, margin: float) -> tuple[int, int]:
    """First and past-last index where a layer's edge alpha is exactly 1 (empty: (0, 0)).

    The kernel's alpha is ``min(max(inside / margin, 0), 1)`` (``inside >= 0``
    when ``margin`` is 0); division is monotone, so the pixels with alpha 1
    along one axis are those where this test holds, and a pixel has alpha 1
    when both of its axes do.  ``inside`` (distance inside the keyframe) rises
    then falls along an axis, so they are one span.
    """
    full = inside / margin >= 1.0 if margin > 0.0 else inside >= 0.0
    idx = np.flatnonzero(full)
    return (int(idx[0]), int(idx[-1]) + 1) if idx.size else (0, 0)


class FrameComposer:
    """Composes frames of one zoom, keeping each keyframe's equalised values between frames.

    A frame's colour is ``(1-w)·eq_k + w·eq_{k+1}`` of each layer's raw
    values, where ``eq_r`` equalises against keyframe r's reference.  Those
    equalised keyframes depend only on the pair (layer, reference), shared by
    all frames between two keyframes, so they are computed once per pair (the
    costly part: a rank lookup of every keyframe pixel) and kept while frames
    need them; what is left per frame is one parallel pass of sampling and
    blending per layer (:mod:`fractaltrain.zoom.frames_kernel`).  Frames depend
    only on their index: the cache changes the time, never the bytes.

    Parameters
    ----------
    plan : ZoomPlan
    keyframe : callable
        ``keyframe(k)`` returns keyframe k's raw values (rows = y ascending).
    refs : callable
        ``refs(k)`` returns keyframe k's colour reference.
    palette : str
    keep : int
        Equalised keyframes kept (a frame needs up to six: three layers, two references).
    """

    def __init__(self, plan: ZoomPlan, keyframe: Callable[[int], np.ndarray],
                 refs: Callable[[int], colour.Reference], palette: str = "spectral", keep: int = 8):
        self.plan, self.keyframe, self.refs, self.keep = plan, keyframe, refs, keep
        # float32 palette with the NaN colour as its last row, as the kernel takes it
        self.table = np.vstack([colour.palette_table(palette), colour.NAN_COLOUR]).astype(np.float32)
        self._eq: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._out: np.ndarray | None = None

    def equalised(self, j: int, r: int) -> np.ndarray:
        """Keyframe j's raw values equalised against keyframe r's reference (cached)."""
        key = (j, r)
        if key in self._eq:
            self._eq.move_to_end(key)
            return self._eq[key]
        from fractaltrain.zoom import frames_kernel

        values = np.ascontiguousarray(self.keyframe(j), dtype=np.float64)
        ref = self.refs(r)
        e = np.empty(values.shape)
        scale = 1.0 - colour.GAP
        frames_kernel.equalise(values, *colour.rank_knots(ref.neg), *colour.rank_knots(ref.pos),
                               -1.0, scale, colour.GAP, e)
        self._eq[key] = e
        while len(self._eq) > self.keep:
            self._eq.popitem(last=False)
        return e

    def frame(self, i: int) -> np.ndarray:
        """RGB uint8 frame ``i`` (height × width × 3, y up)."""
        from fractaltrain.zoom import frames_kernel

        plan = self.plan
        win = plan.frame_window(i)
        W, H = plan.size
        xs = axis_coords(win.x0, win.x1, W)
        ys = axis_coords(win.y0, win.y1, H)
        k, w = plan.frame_level(i)
        mixed = not (k + 1 >= plan.n_keyframes or w == 0.0)
        if self._out is None:
            # reused between frames; zeros, so that pixels the bottom layer leaves to an
            # opaque layer above (``hole``) are finite when that layer multiplies them by 0
            self._out = np.zeros((H, W, 3), np.float32)
        out = self._out
        layers = []
        for r, fade in ((0, 1.0), (1, 1.0), (2, w)):
            j = k + r
            if j >= plan.n_keyframes or (r > 0 and fade <= 0.0):
                continue
            kwin = plan.keyframe_window(j)
            if win.exact is None and kwin.exact is None:
                u = (xs - kwin.x0) / kwin.width  # 0..1 across the keyframe
                v = (ys - kwin.y0) / kwin.height
            else:  # past float64's digits: both windows are centred on the target, so use offsets from it
                u = 0.5 + (axis_coords(-0.5 * win.width, 0.5 * win.width, W)) / kwin.width
                v = 0.5 + (axis_coords(-0.5 * win.height, 0.5 * win.height, H)) / kwin.height
            margin = MARGIN * ((1.0 - w) if r == 1 else 1.0)
            layers.append((r, j, fade, u, v, margin))
        hole = _NO_HOLE
        if len(layers) > 1:  # layer k+1 (fade 1) is opaque where its alpha is exactly 1
            _, _, _, u, v, margin = layers[1]
            hole = np.array([*_opaque_span(np.minimum(v, 1 - v), margin),
                             *_opaque_span(np.minimum(u, 1 - u), margin)], np.int64)
        for r, j, fade, u, v, margin in layers:
            values = self.keyframe(j)
            h, wd = values.shape
            ix0, ix1, ax = _axis_samples(u * wd - 0.5, wd)
            iy0, iy1, ay = _axis_samples(v * h - 0.5, h)
            ea = self.equalised(j, k)
            eb = self.equalised(j, k + 1) if mixed else ea
            in_cols = np.minimum(u, 1 - u)
            cols = np.flatnonzero(in_cols > 0 if margin > 0 else in_cols >= 0) if r else np.arange(W)
            xa, xb = (int(cols[0]), int(cols[-1]) + 1) if cols.size else (0, 0)
            read = np.unique(np.concatenate((ix0[xa:xb], ix1[xa:xb])))  # keyframe columns sampled
            jx0, jx1 = np.searchsorted(read, ix0), np.searchsorted(read, ix1)
            frames_kernel.blend_layer(
                out, ea, eb, w, mixed, self.table, iy0, iy1, ay, read, jx0, jx1, ax,
                np.minimum(v, 1 - v), in_cols, margin, fade, r == 0, xa, xb, hole if r == 0 else _NO_HOLE,
            )
        frame = np.empty((H, W, 3), np.uint8)
        frames_kernel.to_frame(out, frame)
        return frame


def compose_frame(
    plan: ZoomPlan,
    i: int,
    keyframe: Callable[[int], np.ndarray],
    refs: Callable[[int], colour.Reference],
    palette: str = "spectral",
) -> np.ndarray:
    """RGB uint8 frame ``i`` (height × width × 3, y up), composed alone.

    ``keyframe(k)`` returns keyframe k's raw values (rows = y ascending) and
    ``refs(k)`` its colour reference; both are typically cached by the caller.
    For many frames use one :class:`FrameComposer`, which keeps the equalised
    keyframes between frames.
    """
    return FrameComposer(plan, keyframe, refs, palette).frame(i)

