"""Files in an output folder: written atomically, read back verified, never followed out of the folder.

Every file the tool writes goes through :func:`atomic_write_bytes` (a temporary
file in the same folder, then a rename), so a file is complete or absent even
after ``kill -9``.  Arrays are saved with a SHA-256 of each (:func:`checksums`)
and read back with :func:`read_verified_npz`, so a damaged file is recomputed,
never trusted.

The output folder is the user's, but what is inside it is the tool's: a
sub-folder (``tiles``, ``tiles/<key>``, ``jobs``, ``keyframes``) that is a
symbolic link could lead a write anywhere on the machine, and a FIFO or a link
to ``/dev/zero`` in place of a stored file would make a read block forever or
never end.  So writers name the folder they must stay inside (``inside``) and
every directory below it is checked not to be a link (:func:`folder_inside`),
and every stored file is opened without following links, without blocking, and
read only if it is a regular file of bounded size (:func:`read_regular`).  A
file that fails is :class:`DamagedFile`: a tile is then recomputed (the rename
replaces the link or FIFO, never what it pointed to), anything else is named in
one line.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import stat
import tempfile
from pathlib import Path

import numpy as np

from fractaltrain.errors import OutputError

MAX_STORED_BYTES = 1 << 34  # 16 GiB: far above any tile, keyframe or render npz; /dev/zero never gets far
MAX_JSON_BYTES = 64 << 20  # sidecars, manifests, grid descriptions, rates


class DamagedFile(ValueError):
    """A stored file is unreadable, incomplete, not a regular file or fails its checksum (the message names it)."""


def folder_inside(root: Path, folder: Path) -> Path:
    """``folder``, created if needed, after checking that no directory from ``root`` down to it is a link.

    ``root`` itself (the output folder the user named) may be a link or lie
    under one; what the tool creates inside it may not, so nothing is ever
    created or replaced outside ``root``.  Raises :class:`OutputError` naming
    the link.
    """
    root, folder = Path(root), Path(folder)
    try:
        parts = folder.relative_to(root).parts
    except ValueError:
        raise OutputError(f"{folder}: is not inside the output folder {root}") from None
    if parts:
        root.mkdir(parents=True, exist_ok=True)  # the output folder itself, wherever the user put it
    here = root
    for part in parts:
        here = here / part
        if here.is_symlink():
            raise OutputError(f"{here}: is a symbolic link; fractaltrain follows no links inside an output folder "
                              "(remove it, or use another output folder)")
        try:
            here.mkdir(exist_ok=True)
        except FileExistsError:
            raise OutputError(f"{here} exists and is not a folder (remove it, or use another output folder)") from None
        if not here.is_dir():
            raise OutputError(f"{here} exists and is not a folder (remove it, or use another output folder)")
    return folder


def _open_regular(path: Path, limit: int, follow: bool) -> tuple[int, int]:
    """``(fd, size)`` of ``path`` opened for reading, if it is a regular file of at most ``limit`` bytes."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | (0 if follow else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DamagedFile(f"{path}: is a symbolic link, not a file fractaltrain wrote") from None
        raise DamagedFile(f"{path}: cannot be opened ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise DamagedFile(f"{path}: is not a regular file")
        if info.st_size > limit:
            raise DamagedFile(f"{path}: is {info.st_size:,} bytes, more than the {limit:,} such a file can be")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def check_regular(path: Path, limit: int = MAX_STORED_BYTES, *, follow: bool = False) -> int:
    """The size of ``path`` after checking, as :func:`read_regular` does, that it is a regular file of at
    most ``limit`` bytes: for readers that open the file themselves (to map a large array, say)."""
    fd, size = _open_regular(Path(path), limit, follow)
    os.close(fd)
    return size


def read_regular(path: Path, limit: int = MAX_STORED_BYTES, *, follow: bool = False) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes; :class:`DamagedFile` otherwise.

    Opened without blocking (a FIFO cannot hang the read) and, unless
    ``follow``, without following a link (a file the tool stored is never a
    link; a file the user names may be).  ``FileNotFoundError`` passes through.
    """
    path = Path(path)
    fd, _ = _open_regular(path, limit, follow)
    try:
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, min(1 << 24, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise DamagedFile(f"{path}: is more than the {limit:,} bytes such a file can be")
        return b"".join(chunks)
    except OSError as exc:
        raise DamagedFile(f"{path}: cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def read_json(path: Path, limit: int = MAX_JSON_BYTES):
    """Parsed JSON of a stored file (:func:`read_regular`); :class:`DamagedFile` when it is not valid JSON."""
    data = read_regular(path, limit)
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise DamagedFile(f"{path}: is not valid JSON ({type(exc).__name__})") from None


def atomic_write_bytes(path: Path, data: bytes, *, inside: Path | None = None) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    With ``inside`` (the output folder), the folders between it and ``path``
    are created and checked not to be links (:func:`folder_inside`).  A link or
    a FIFO at ``path`` itself is replaced by the rename, never followed.  An
    ``OSError`` (full disk, read-only folder, ...) always names ``path``.
    """
    path = Path(path)
    if inside is not None:
        folder_inside(inside, path.parent)
    try:
        if inside is None:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and exc.filename in (None, tmp):
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


def _array_digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    h = hashlib.sha256(f"{a.dtype.str}|{a.shape}|".encode())
    h.update(a.tobytes() if a.dtype != object else repr(a.tolist()).encode())
    return h.hexdigest()


def checksums(arrays: dict) -> str:
    """JSON of every array's SHA-256 (over dtype, shape and bytes), stored as ``checksums``."""
    return json.dumps({k: _array_digest(np.asarray(v)) for k, v in sorted(arrays.items())}, sort_keys=True)


def atomic_save_npz(path: Path, *, inside: Path | None = None, **arrays) -> None:
    """``np.savez`` to ``path`` atomically (``inside`` as for :func:`atomic_write_bytes`), with a
    ``checksums`` entry over all arrays."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    buf = io.BytesIO()
    np.savez(buf, checksums=np.array(checksums(arrays)), **arrays)
    atomic_write_bytes(path, buf.getvalue(), inside=inside)


def read_verified_npz(path: Path, names: list[str] | None = None, *, require_checksums: bool = True,
                      follow: bool = False, limit: int = MAX_STORED_BYTES) -> dict:
    """The arrays ``names`` (default: all) of an npz, each checked against the stored checksum.

    Raises :class:`DamagedFile` naming the file when it is not a regular file of
    at most ``limit`` bytes (:func:`read_regular`; ``follow`` lets a file the
    user names be a link), cannot be read, lacks an array or a checksum, or an array's
    contents differ from its checksum.  With ``require_checksums=False`` a file
    without any ``checksums`` entry (written by an older version, or by another
    program) is read unchecked.
    """
    path = Path(path)
    data = read_regular(path, limit, follow=follow)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            files = set(z.files)
            want = sorted(files - {"checksums"}) if names is None else list(names)
            for k in want:
                if k not in files:
                    raise DamagedFile(f"{path}: has no array {k!r}")
            if "checksums" in files:
                sums = json.loads(str(z["checksums"]))
                if not isinstance(sums, dict):
                    raise DamagedFile(f"{path}: its checksums entry is damaged")
            elif require_checksums:
                raise DamagedFile(f"{path}: has no checksums (written by an older version or another program)")
            else:
                sums = None
            out = {k: z[k] for k in want}
    except DamagedFile:
        raise
    except Exception as exc:  # BadZipFile, CRC errors, truncation, pickled arrays, bad JSON, ...
        raise DamagedFile(f"{path}: cannot be read as an npz file ({type(exc).__name__}: {str(exc)[:80]})") from None
    if sums is not None:
        for k, v in out.items():
            if sums.get(k) != _array_digest(v):
                raise DamagedFile(f"{path}: array {k!r} does not match its checksum (the file is damaged)")
    return out
