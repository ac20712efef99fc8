"""The options a job records, each limit written once: for the command line and for job manifests.

A zoom's flags and the ``options`` of its job manifest (``OUT/jobs/*.json``) are the
same settings.  A manifest is read back by ``assemble`` and ``status`` long after the
command that wrote it, possibly edited or damaged, so it is held to exactly the limits
the flags are: a manifest asking for 10^9 frames must not start a four-hour encode the
flag would have refused, and a bad palette must be refused before the sidecar and npz
are rewritten, not after.  So every check lives here, once: the CLI calls it with the
option's name as ``key`` (its error layer shows the flag instead), the manifest reader
with ``options.<name>``.

Importing this module loads no numba (``status`` validates manifests with it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from fractaltrain.errors import DataError, InputError, key_text, short
from fractaltrain.zoom.video import ALLOWED_CODECS, DEFAULT_PRESET, PRESETS

FRAMES_MAX = 1_000_000
FPS_MIN, FPS_MAX = 0.01, 1000.0
SIZE_MAX = 16384  # video width and height; keyframes are larger still (factor x)
DEPTH_MAX = 60.0  # decades; even double-double cannot resolve deeper below any opening view
FACTOR_MIN, FACTOR_MAX = 1.1, 16.0
CRF_MAX = 51
# how a run proceeds rather than what it makes: a zoom manifest does not record them
NOT_RECORDED = ("recolor", "allow_noise")


@dataclass(frozen=True)
class ZoomOptions:
    """Everything about a zoom except the experiment itself."""

    frames: int = 300
    fps: float = 30.0
    size: tuple[int, int] = (1280, 720)
    depth: float | None = None  # None: the zoom_target view's depth, else DEFAULT_DEPTH
    center: tuple[float, float] | None = None  # None: the zoom_target view's centre, else locate
    auto_center: bool = False  # locate a target even when the config names a zoom_target
    factor: float = 2.0
    palette: str = "spectral"
    crf: int = 18
    codec: str = "libx264"
    preset: str = DEFAULT_PRESET
    frame_range: tuple[int, int] | None = None
    overlay: bool = False
    recolor: bool = False
    preview: bool = False
    seed: int = 0
    video: bool = True  # False: keyframes, poster and sidecar only
    allow_noise: bool = False  # compute keyframes past the first rounding-decided one


def _fail(key: str, text: str):
    raise InputError(f"{key}: {text}", option=key)


# range checks of values already of the right type (the CLI's parser gives ints and floats)


def check_frames(frames: int, key: str = "frames") -> int:
    if not 1 <= frames <= FRAMES_MAX:
        _fail(key, f"must be between 1 and {FRAMES_MAX}, got {short(frames)}")
    return frames


def check_fps(fps: float, key: str = "fps") -> float:
    if not FPS_MIN <= fps <= FPS_MAX:  # also refuses nan and inf
        _fail(key, f"must be a number between {FPS_MIN:g} and {FPS_MAX:g}, got {short(fps)}")
    return fps


def check_size(size: tuple[int, int], key: str = "size") -> tuple[int, int]:
    """A video size already parsed (:func:`~fractaltrain.config.parse_resolution`): even, and not huge."""
    w, h = size
    if w % 2 or h % 2:
        _fail(key, f"width and height must be even for H.264/yuv420p, got {w}x{h}")
    if w > SIZE_MAX or h > SIZE_MAX:
        _fail(key, f"width and height must be at most {SIZE_MAX} (keyframes are larger still), got {w}x{h}")
    return w, h


def check_depth(depth: float, key: str = "depth") -> float:
    if not 0 < depth <= DEPTH_MAX:  # also refuses nan
        _fail(key, f"must be between 0 and {DEPTH_MAX:g} decades, got {short(depth)}")
    return depth


def check_factor(factor: float, key: str = "factor") -> float:
    if not FACTOR_MIN <= factor <= FACTOR_MAX:
        _fail(key, f"must be between {FACTOR_MIN:g} and {FACTOR_MAX:g}, got {short(factor)}")
    return factor


def check_crf(crf: int, key: str = "crf") -> int:
    if not 0 <= crf <= CRF_MAX:
        _fail(key, f"must be between 0 and {CRF_MAX}, got {short(crf)}")
    return crf


def check_codec(codec: str, key: str = "codec") -> str:
    if codec not in ALLOWED_CODECS:
        _fail(key, f"must be one of {', '.join(ALLOWED_CODECS)}; got {short(codec, 40)}")
    return codec


def check_preset(preset: str, key: str = "preset") -> str:
    if preset not in PRESETS:
        _fail(key, f"must be one of {', '.join(PRESETS)}; got {short(preset, 40)}")
    return preset


def check_palette(palette: str, key: str = "palette") -> str:
    """A palette name, in any case; returned in lower case."""
    from fractaltrain.render.colour import PALETTES

    if palette.lower() not in PALETTES:
        _fail(key, f"must be one of {', '.join(PALETTES)}; got {short(palette, 40)}")
    return palette.lower()


def check_seed(seed: int, key: str = "seed") -> int:
    if seed < 0:
        _fail(key, f"must be >= 0, got {short(seed)}")
    return seed


def check_frame_range(a: int, b: int, frames: int, key: str = "frame_range") -> tuple[int, int]:
    if not 0 <= a < b <= frames:
        _fail(key, f"need 0 <= A < B <= {frames} (the number of frames), got {short(a)}:{short(b)}")
    return a, b


def check_center(x: float, y: float, key: str = "center") -> tuple[float, float]:
    if not (math.isfinite(x) and math.isfinite(y)):
        _fail(key, f"expected two finite numbers X,Y in axis units (decades on a log10 axis), got {x!r},{y!r}")
    return x, y


# the types a manifest's JSON must have: stricter than YAML coercion, since only our own writer makes them


def _whole(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(key, f"expected a whole number, got {type(value).__name__} {short(value, 40)}")
    return value


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(key, f"expected a finite number, got {type(value).__name__} {short(value, 40)}")
    return float(value)


def _coordinate(value: Any, key: str):
    """A recorded coordinate: a number, or an exact decimal string (a centre past float64's digits)."""
    if isinstance(value, str):
        from fractaltrain.window import parse_coordinate

        try:
            return parse_coordinate(value)
        except ValueError as exc:
            _fail(key, f"{exc}, got {short(value, 40)}")
    return _number(value, key)


def recorded_center(center) -> list:
    """The centre as a manifest records it: numbers when they are floats, else exact decimal strings."""
    from fractions import Fraction

    from fractaltrain.window import decimal_string

    out = []
    for v in center:
        q = Fraction(v)
        out.append(float(q) if Fraction(float(q)) == q else decimal_string(q))
    return out


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        _fail(key, f"expected true or false, got {type(value).__name__} {short(value, 40)}")
    return value


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str):
        _fail(key, f"expected a string, got {type(value).__name__} {short(value, 40)}")
    return value


def _pair(value: Any, key: str, item) -> tuple:
    if not isinstance(value, list) or len(value) != 2:
        _fail(key, f"expected a list of two numbers, got {type(value).__name__} {short(value, 40)}")
    return item(value[0], f"{key}[0]"), item(value[1], f"{key}[1]")


def _size(value: Any, key: str) -> tuple[int, int]:
    from fractaltrain.config import parse_resolution

    return check_size(parse_resolution(_pair(value, key, _whole), key), key)


def _fields(options: Any, allowed: tuple[str, ...], required: tuple[str, ...], what: str) -> dict:
    """``options`` as a dict with exactly the ``required`` keys and no keys outside ``allowed``."""
    if not isinstance(options, dict):
        raise DataError(f"options: expected a JSON object, got {type(options).__name__} {short(options, 40)}")
    for k in options:
        if k not in allowed:
            raise DataError(f"options.{key_text(k)}: unknown key; "
                            f"a {what} manifest records {', '.join(allowed)}")
    missing = [k for k in required if k not in options]
    if missing:
        raise DataError(f"options: missing {', '.join(missing)}; a {what} manifest records {', '.join(allowed)}")
    return options


def render_options_from_manifest(options: Any, kind: str) -> dict:
    """A render or ensemble manifest's options, checked: ``{"palette": ..., "member": int or None}``."""
    allowed = ("palette", "member") if kind == "render" else ("palette",)
    o = _fields(options, allowed, ("palette",), kind)
    member = o.get("member")
    if member is not None:  # its upper limit is the config's ensemble size (ensemble.check_member)
        member = check_seed(_whole(member, "options.member"), "options.member")
    return {"palette": check_palette(_text(o["palette"], "options.palette"), "options.palette"), "member": member}


def zoom_options_from_manifest(options: Any) -> ZoomOptions:
    """A zoom manifest's options, checked as strictly as the flags they record, as :class:`ZoomOptions`.

    The manifest holds the settled options (the target and depth a run resolved),
    so ``center`` and ``depth`` are required, and ``preview`` is false (a preview
    records its reduced settings instead).  Raises :class:`InputError` naming
    ``options.<key>`` and what is allowed.
    """
    names = tuple(f.name for f in fields(ZoomOptions) if f.name not in NOT_RECORDED)
    o = _fields(options, names, names, "zoom")

    def key(k: str) -> str:
        return f"options.{k}"

    frames = check_frames(_whole(o["frames"], key("frames")), key("frames"))
    rng = o["frame_range"]
    if rng is not None:
        rng = check_frame_range(*_pair(rng, key("frame_range"), _whole), frames, key("frame_range"))
    if _flag(o["preview"], key("preview")):
        _fail(key("preview"), "must be false (a manifest records a preview's reduced settings)")
    return ZoomOptions(
        frames=frames,
        fps=check_fps(_number(o["fps"], key("fps")), key("fps")),
        size=_size(o["size"], key("size")),
        depth=check_depth(_number(o["depth"], key("depth")), key("depth")),
        center=check_center(*_pair(o["center"], key("center"), _coordinate), key("center")),
        auto_center=_flag(o["auto_center"], key("auto_center")),
        factor=check_factor(_number(o["factor"], key("factor")), key("factor")),
        palette=check_palette(_text(o["palette"], key("palette")), key("palette")),
        crf=check_crf(_whole(o["crf"], key("crf")), key("crf")),
        codec=check_codec(_text(o["codec"], key("codec")), key("codec")),
        preset=check_preset(_text(o["preset"], key("preset")), key("preset")),
        frame_range=rng,
        overlay=_flag(o["overlay"], key("overlay")),
        preview=False,
        seed=check_seed(_whole(o["seed"], key("seed")), key("seed")),
        video=_flag(o["video"], key("video")),
    )
