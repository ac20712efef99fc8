"""The zoom schedule: which window every frame and every keyframe shows.

Everything here is a pure function of the plan and an index, so any frame or
range of frames can be rendered alone, in any order, on any machine.

Geometry.  All windows are centred on the target point ``t`` (concentric, as in
the paper's videos): ``window(z)`` has ``1/z`` of the outer view's extent, where
the outer view is the config's view (widened to the video's aspect).  Every
window therefore contains the target and windows at larger zoom nest inside
those at smaller zoom.  Zoom
``z`` grows exponentially with the frame index (constant zoom speed):
``z_i = 10 ** (depth · i / (frames - 1))``.  Keyframe ``k`` is ``window(f ** k)``
for the keyframe factor ``f``, from ``k = 0`` (the outer view) to the first
``k`` deep enough to cover the last frame.

Aligned keyframes (``aligned``, for a factor that is a power of two) sit on one
lattice (:mod:`fractaltrain.lattice`): an odd number of pixels, the middle one
on the target, spacing divided by the factor from one keyframe to the next, so
a keyframe's every factor-th pixel is the previous keyframe's and is not trained
twice.  Their pixel centres span exactly the unaligned keyframe's window, so
each window is half a pixel wider on every side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from fractaltrain.lattice import power_of_two
from fractaltrain.window import Window, coordinate_text


def even(n: float) -> int:
    """Round to the nearest even integer >= 2 (yuv420p video needs even sizes)."""
    return max(2, int(round(n / 2.0)) * 2)


def outer_window(config_window: Window, config_res: tuple[int, int], size: tuple[int, int]) -> Window:
    """The first frame's window: the config's view widened to the video's aspect.

    The axis units per pixel keep the ratio they have in the config's own render,
    and the window grows in one direction so the whole config view stays visible.
    It is centred on the config view.
    """
    ux = config_window.width / config_res[0]
    uy = config_window.height / config_res[1]
    s = max(config_window.width / (size[0] * ux), config_window.height / (size[1] * uy))
    cx, cy = config_window.center
    return Window.around(cx, cy, 0.5 * size[0] * ux * s, 0.5 * size[1] * uy * s)


@dataclass(frozen=True)
class ZoomPlan:
    """A zoom from ``outer`` into ``target`` by ``depth`` decades over ``frames`` frames."""

    outer: Window
    target: tuple[Fraction, Fraction]  # given as numbers or Fractions, kept as Fractions
    depth: float
    frames: int
    size: tuple[int, int]
    factor: float = 2.0
    aligned: bool = False  # keyframes on one lattice (module docstring); needs a power-of-two factor

    def __post_init__(self):
        # the target is kept exactly (decimals of any length), so windows 30 decades deep are exact too;
        # a float target gives the very float windows it always gave (IEEE sums are correctly rounded)
        object.__setattr__(self, "target", tuple(Fraction(v) for v in self.target))
        tx, ty = self.target
        o = self.outer
        if not (o.x0 <= tx <= o.x1 and o.y0 <= ty <= o.y1):
            raise ValueError(f"target {self.target_strings()} lies outside the outer view {o.as_list()}")
        if self.frames < 1 or self.depth <= 0 or self.factor <= 1:
            raise ValueError("need frames >= 1, depth > 0 and factor > 1")
        if self.aligned and power_of_two(self.factor) is None:
            raise ValueError(f"aligned keyframes need a power-of-two factor, not {self.factor}")

    # -- frames
    def zoom(self, i: int) -> float:
        """Zoom factor of frame ``i`` (1 for the first frame, 10**depth for the last)."""
        if self.frames == 1:
            return 10.0**self.depth
        return 10.0 ** (self.depth * i / (self.frames - 1))

    def window_at(self, z: float) -> Window:
        """The window at zoom ``z``: centred on the target, ``1/z`` of the outer view's extent."""
        tx, ty = self.target
        return Window.around(tx, ty, 0.5 * self.outer.width / z, 0.5 * self.outer.height / z)

    def frame_window(self, i: int) -> Window:
        return self.window_at(self.zoom(i))

    def frame_level(self, i: int) -> tuple[int, float]:
        """(enclosing keyframe k, progress w in [0, 1) towards keyframe k+1) of frame ``i``."""
        lv = math.log(self.zoom(i)) / math.log(self.factor)
        k = min(int(math.floor(lv + 1e-12)), self.n_keyframes - 1)
        return k, min(max(lv - k, 0.0), 1.0)

    # -- keyframes
    @property
    def n_keyframes(self) -> int:
        return int(math.ceil(self.depth / math.log10(self.factor) - 1e-9)) + 1

    def keyframe_zoom(self, k: int) -> float:
        return self.factor**k

    def keyframe_window(self, k: int) -> Window:
        if not self.aligned:
            return self.window_at(self.keyframe_zoom(k))
        cx, hx, cy, hy = self.keyframe_lattice(k)
        kw, kh = self.keyframe_size
        return Window.around(cx, cy, kw * hx / 2, kh * hy / 2)

    def keyframe_lattice(self, k: int) -> tuple[Fraction, Fraction, Fraction, Fraction]:
        """(centre x, spacing x, centre y, spacing y) of aligned keyframe ``k``, exactly."""
        kw, kh = self.keyframe_size
        scale = Fraction(self.factor) ** k
        tx, ty = self.target
        return tx, Fraction(self.outer.width) / (kw - 1) / scale, ty, Fraction(self.outer.height) / (kh - 1) / scale

    @property
    def keyframe_size(self) -> tuple[int, int]:
        """Keyframes are ``factor`` times the frame size, so no frame is ever upsampled (one more pixel each way
        when aligned: the lattice has a middle pixel)."""
        w, h = even(self.size[0] * self.factor), even(self.size[1] * self.factor)
        return (w + 1, h + 1) if self.aligned else (w, h)

    def target_strings(self) -> list[str]:
        """The target as exact decimal strings."""
        return [coordinate_text(v) for v in self.target]

    def to_dict(self) -> dict:
        return {
            "outer": self.outer.as_list(),
            "outer_exact": self.outer.strings(),
            "target": [float(v) for v in self.target],
            "target_exact": self.target_strings(),
            "depth": self.depth,
            "frames": self.frames,
            "size": list(self.size),
            "factor": self.factor,
            "keyframe_size": list(self.keyframe_size),
            **({"aligned": True} if self.aligned else {}),
            "keyframes": [self.keyframe_window(k).as_list() for k in range(self.n_keyframes)],
        }
