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

from typing import Callable

import numpy as np

from fractaltrain import colour
from fractaltrain.window import Window, axis_coords
from fractaltrain.zoomplan import ZoomPlan

MARGIN = 0.08  # feather width, as a fraction of an inner keyframe's extent


def frame_reference(plan: ZoomPlan, i: int, refs: Callable[[int], colour.Reference]):
    """The colour reference of frame ``i``: a cross-fade from keyframe k's to keyframe k+1's."""
    k, w = plan.frame_level(i)
    if k + 1 >= plan.n_keyframes or w == 0.0:
        return refs(k)
    return colour.CrossFade(refs(k), refs(k + 1), w)


def _sample(values: np.ndarray, kwin: Window, xs: np.ndarray, ys: np.ndarray, ref, palette: str):
    """Bilinear RGB (float) of a keyframe at axis coords ``xs`` × ``ys``, plus the inside-ness of each pixel.

    Only the part of the keyframe the frame sees is coloured.
    """
    h, w = values.shape
    u = (xs - kwin.x0) / kwin.width  # 0..1 across the keyframe
    v = (ys - kwin.y0) / kwin.height
    fx = u * w - 0.5
    fy = v * h - 0.5
    c0 = int(np.clip(np.floor(fx.min()), 0, w - 1))
    c1 = int(np.clip(np.floor(fx.max()) + 2, 1, w))
    r0 = int(np.clip(np.floor(fy.min()), 0, h - 1))
    r1 = int(np.clip(np.floor(fy.max()) + 2, 1, h))
    crop = colour.colourize(values[r0:r1, c0:c1], ref, palette).astype(np.float32)
    fx = np.clip(fx - c0, 0, crop.shape[1] - 1)
    fy = np.clip(fy - r0, 0, crop.shape[0] - 1)
    ix = np.minimum(np.floor(fx).astype(np.int64), crop.shape[1] - 2) if crop.shape[1] > 1 else np.zeros(len(fx), np.int64)
    iy = np.minimum(np.floor(fy).astype(np.int64), crop.shape[0] - 2) if crop.shape[0] > 1 else np.zeros(len(fy), np.int64)
    ax = (fx - ix)[None, :, None].astype(np.float32)
    ay = (fy - iy)[:, None, None].astype(np.float32)
    ix1 = np.minimum(ix + 1, crop.shape[1] - 1)
    iy1 = np.minimum(iy + 1, crop.shape[0] - 1)
    top = crop[iy][:, ix] * (1 - ax) + crop[iy][:, ix1] * ax
    bot = crop[iy1][:, ix] * (1 - ax) + crop[iy1][:, ix1] * ax
    rgb = top * (1 - ay) + bot * ay
    inside = np.minimum.outer(np.minimum(v, 1 - v), np.minimum(u, 1 - u))  # (H, W), <0 outside
    return rgb, inside


def compose_frame(
    plan: ZoomPlan,
    i: int,
    keyframe: Callable[[int], np.ndarray],
    refs: Callable[[int], colour.Reference],
    palette: str = "spectral",
) -> np.ndarray:
    """RGB uint8 frame ``i`` (height × width × 3, y up).

    ``keyframe(k)`` returns keyframe k's raw values (rows = y ascending) and
    ``refs(k)`` its colour reference; both are typically cached by the caller.
    """
    win = plan.frame_window(i)
    W, H = plan.size
    xs = axis_coords(win.x0, win.x1, W)
    ys = axis_coords(win.y0, win.y1, H)
    k, w = plan.frame_level(i)
    ref = frame_reference(plan, i, refs)
    out, _ = _sample(keyframe(k), plan.keyframe_window(k), xs, ys, ref, palette)
    for r, fade in ((1, 1.0), (2, w)):
        j = k + r
        if j >= plan.n_keyframes or fade <= 0.0:
            continue
        margin = MARGIN * ((1.0 - w) if r == 1 else 1.0)
        rgb, inside = _sample(keyframe(j), plan.keyframe_window(j), xs, ys, ref, palette)
        if margin > 0:
            alpha = np.clip(inside / margin, 0.0, 1.0)
        else:
            alpha = (inside >= 0).astype(np.float64)
        alpha = (alpha * fade).astype(np.float32)[:, :, None]
        out = out * (1 - alpha) + rgb * alpha
    frame = np.clip(np.round(out), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(frame[::-1])
