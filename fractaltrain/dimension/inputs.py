"""What ``dimension`` reads: renders and keyframes (.npz), and boundary masks (.npy, PNG).

A file given by name is recognised by its first bytes, not its suffix:

- ``.npz`` (a zip): the ``measure`` array of a render or zoom keyframe; the
  boundary is where it changes sign.  For a seed-ensemble render (it holds
  ``p_converged``, see :mod:`fractaltrain.render.ensemble`) the field is
  ``½ − p_converged``, whose sign boundary is the ½ level of P(converge); with
  ``member`` set it is that member's measure (``members[member]``).  Files written by fractaltrain carry
  checksums, which are verified (a damaged keyframe is refused, naming it).
- ``.npy``: a 2-D array.  Boolean or integer arrays are masks (non-zero =
  boundary pixel); floating-point arrays are raw measure values.
- PNG: a mask, non-zero = boundary (any colour channel; alpha is ignored).

A folder contributes its ``.npz`` files (a zoom's keyframes, a folder of
renders), never its PNGs, which are coloured images and posters.  Every error
names the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from fractaltrain.errors import DataError
from fractaltrain.compute.files import DamagedFile, check_regular, read_verified_npz

MAX_PIXELS = 1 << 30  # a 32768^2 mask; larger is certainly not what the user meant


def _natural_key(path: Path) -> list:
    """Sort key that puts ``frame_2`` before ``frame_10`` (a zoom's keyframes sort in zoom order)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def find_inputs(paths) -> list[Path]:
    """Files to read: files as given, folders expanded to their ``.npz`` files (not under ``tiles/``).

    ``paths`` is one path or an iterable of them.  A folder's files are sorted by
    relative path with numbers compared as numbers, so a zoom's keyframes come in
    zoom order; the tile store's raw tiles are left out, as they are pieces of an
    image, not images.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(
                (p for p in path.rglob("*.npz") if "tiles" not in p.relative_to(path).parts and p.is_file()),
                key=lambda p: _natural_key(p.relative_to(path)),
            ))
        elif path.is_file():
            found.append(path)
        elif path.exists():
            raise DataError(f"{path}: not a regular file or folder; expected a render .npz, a .npy or PNG mask, "
                            "or a zoom's output folder")
        else:
            raise DataError(f"{path}: no such file or folder")
    return found


def _check_2d(path: Path, a: np.ndarray, what: str) -> np.ndarray:
    if a.ndim != 2 or min(a.shape) < 2:
        raise DataError(f"{path}: {what} should be a 2-D array of at least 2x2, got shape {a.shape}")
    if a.size > MAX_PIXELS:
        raise DataError(f"{path}: {what} has {a.size} pixels, more than {MAX_PIXELS}")
    return a


REAL_KINDS = "biuf"  # numpy dtype kinds of real values: bool, signed and unsigned integer, float


def _real(path: Path, a: np.ndarray, what: str) -> np.ndarray:
    """``a`` if its dtype holds real numbers, else a :class:`DataError` naming the file and the array.

    Checked by dtype kind before any cast: ``astype(float64)`` would drop a complex
    array's imaginary part with a ComplexWarning, read a timedelta (which numpy counts
    as an integer) as counts of its unit, and fail with a TypeError on a structured one.
    """
    if a.dtype.kind not in REAL_KINDS:
        raise DataError(f"{path}: {what} has dtype {str(a.dtype)[:60]}; expected real numbers (boolean, "
                        "integer or float)")
    return a


def _npz_names(path: Path) -> set:
    try:
        with np.load(path, allow_pickle=False) as z:
            return set(z.files)
    except Exception:  # read_verified_npz names the damage
        return set()


def _ensemble_field(path: Path, member: int | None) -> np.ndarray | None:
    """½ − p_converged (or one member's measure) of an ensemble npz; None for other npz files."""
    names = _npz_names(path)
    if "p_converged" not in names:
        if member is not None:
            raise DataError(f"member: {path} is not an ensemble render (it has no 'members' array)", option="member")
        return None
    want = ["p_converged"] if member is None else ["members"]
    try:
        arrays = read_verified_npz(path, want, require_checksums=False, follow=True)
    except DamagedFile as exc:
        raise DataError(str(exc)) from None
    if member is None:
        # the sign convention of a measure: negative where most members converge
        p = _check_2d(path, _real(path, arrays["p_converged"], "'p_converged'"), "'p_converged'")
        return 0.5 - p.astype(np.float64)
    members = _real(path, arrays["members"], "'members'")
    if members.ndim != 3:
        raise DataError(f"{path}: 'members' should be a K x rows x cols array, got shape {members.shape}")
    if not 0 <= member < members.shape[0]:
        raise DataError(f"member: {path} has members 0 to {members.shape[0] - 1}, got {member}", option="member")
    return _check_2d(path, members[member].astype(np.float64), "'members'")


def read_image(path: Path, member: int | None = None) -> np.ndarray:
    """The image in ``path``: a boolean mask, or float64 signed values (see module docstring)."""
    path = Path(path)
    try:
        check_regular(path, follow=True)  # a FIFO or a device (a link to /dev/zero) is never opened to read
        with open(path, "rb") as f:
            head = f.read(8)
    except DamagedFile as exc:
        raise DataError(str(exc)) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if head.startswith(b"PK"):
        field = _ensemble_field(path, member)
        if field is not None:
            return field
        try:
            arrays = read_verified_npz(path, ["measure"], require_checksums=False, follow=True)
        except DamagedFile as exc:
            msg = str(exc)
            if "has no array 'measure'" in msg:
                msg = f"{path}: has no 'measure' array; expected a render or keyframe .npz from fractaltrain"
            raise DataError(msg) from None
        m = _check_2d(path, _real(path, arrays["measure"], "'measure'"), "'measure'")
        return m if m.dtype == bool else m.astype(np.float64)
    if head.startswith(b"\x93NUMPY"):
        try:
            a = np.load(path, allow_pickle=False, mmap_mode="r")
        except Exception as exc:
            raise DataError(f"{path}: cannot be read as a .npy array ({type(exc).__name__})") from None
        _check_2d(path, _real(path, a, "the array"), "the array")
        if a.dtype.kind in "biu":
            return np.asarray(a) != 0
        return np.asarray(a, dtype=np.float64)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        import imageio.v3 as iio

        try:
            img = np.asarray(iio.imread(path))
        except Exception as exc:
            raise DataError(f"{path}: cannot be read as a PNG image ({type(exc).__name__})") from None
        if img.ndim == 3:
            img = img[..., :3] if img.shape[2] >= 3 else img[..., :1]
            img = img.max(axis=2)
        return _check_2d(path, img, "the image") != 0
    kind = "empty" if not head else "not a .npz, .npy or PNG file"
    raise DataError(f"{path}: {kind}; expected a render or keyframe .npz, or a boundary mask (.npy or PNG)")


def iter_images(files: list[Path], member: int | None = None):
    """Yield :func:`read_image` of each file in turn.

    A zoom sequence is dozens of 4096² float64 keyframes (128 MiB each); passing
    this generator to :func:`~fractaltrain.dimension.boxcount.estimate` keeps one in memory.
    """
    for f in files:
        yield read_image(f, member)


def labels(files: list[Path]) -> list[str]:
    """Names for :func:`~fractaltrain.dimension.boxcount.estimate`'s error messages, one per file."""
    return [os.fspath(f) for f in files]
