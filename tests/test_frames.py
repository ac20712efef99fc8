"""Frame composition: the numba composer against an independent numpy form of the same layers.

The numpy form below is the composer's definition written with whole-array
operations (colour the part of each keyframe the frame sees, bilinear RGB,
feathered alpha blending); the composer must give the same bytes.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from fractaltrain.render import colour
from fractaltrain.zoom.frames import MARGIN, FrameComposer, compose_frame
from fractaltrain.window import Window, axis_coords
from fractaltrain.zoom.plan import ZoomPlan


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


def numpy_frame(
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


def landscape(k: int, shape: tuple[int, int]) -> np.ndarray:
    """Raw values with filaments of both signs over ten decades, and a NaN patch."""
    h, w = shape
    rng = np.random.default_rng(k)
    y = np.linspace(0.0, 1.0, h)[:, None]
    x = np.linspace(0.0, 1.0, w)[None, :]
    ph = rng.uniform(0, 2 * np.pi, 3)
    f = np.sin(37 * x + 11 * y + ph[0]) * np.sin(23 * y - 7 * x + ph[1]) + 0.3 * rng.standard_normal((h, w))
    v = np.sign(f) * 10.0 ** (10 * np.abs(np.sin(5 * x + 3 * y + ph[2])))
    v[v == 0] = 1.0
    if k == 3:
        v[5:9, 7:20] = np.nan
    return v


@pytest.mark.parametrize("size,factor", [((160, 96), 2.0), ((64, 64), 3.0), ((50, 30), 1.5)])
def test_composer_equals_numpy_form(size, factor):
    plan = ZoomPlan(outer=Window(-3.0, 6.0, -3.0, 6.0), target=(1.5, 1.2), depth=4.0, frames=60, size=size,
                    factor=factor)
    kw, kh = plan.keyframe_size
    kf = {k: landscape(k, (kh, kw)) for k in range(plan.n_keyframes)}
    kf[1][:] = np.round(kf[1], -3)  # many ties in one reference
    refs = {k: colour.make_reference(v) for k, v in kf.items()}
    comp = FrameComposer(plan, kf.__getitem__, refs.__getitem__, palette="rdylbu", keep=3)
    for i in list(range(0, 60, 3)) + [59]:
        want = numpy_frame(plan, i, kf.__getitem__, refs.__getitem__, "rdylbu")
        assert np.array_equal(comp.frame(i), want), i
        assert np.array_equal(compose_frame(plan, i, kf.__getitem__, refs.__getitem__, "rdylbu"), want), i


def test_equalise_kernel_equals_colour_equalize():
    from fractaltrain.zoom import frames_kernel

    rng = np.random.default_rng(5)
    v = rng.standard_normal((120, 150)) * 10.0 ** rng.uniform(-5, 5, (120, 150))
    v[3, :10], v[4, :5], v[5, :5], v[6] = np.nan, np.inf, -np.inf, 0.0
    for ref_values in (v, np.round(v), np.abs(v), -np.abs(v), np.ones(4), rng.standard_normal(30)):
        ref = colour.make_reference(ref_values)
        for x in (v, np.sort(v, axis=1), np.round(v)):
            got = np.empty(x.shape)
            scale = 1.0 - colour.GAP
            frames_kernel.equalise(x, *colour.rank_knots(ref.neg), *colour.rank_knots(ref.pos), -1.0, scale,
                                   colour.GAP, got)
            assert np.array_equal(got, colour.equalize(x, ref), equal_nan=True)
