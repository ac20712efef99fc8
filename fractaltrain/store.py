"""The tile store: raw kernel results on disk, one file per tile, written atomically.

A landscape (one window at one resolution) is a :class:`Grid`, cut into square
tiles.  Each tile is saved as ``<root>/<grid key>/<row>_<col>.npz`` by writing a
temporary file in the same folder and renaming it, so a tile file is either
complete or absent, even after ``kill -9``, and any number of processes can fill
the same store at once without a lock: no file is ever rewritten in place.

The grid key hashes everything that affects the pixels (the problem key, the
window at full precision, the resolution, the tile size), so a changed config
never reuses stale tiles; each tile also stores its own key and a SHA-256 of
its contents (``checksums``), both checked whenever it is read: ``status``,
``assemble``, a rerun and ``dimension`` all use :func:`read_verified_npz`, so
they agree on which files are valid, and a damaged file is recomputed, never
trusted.  Tiles written before checksums existed count as missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fractaltrain.columns import N_OUT
from fractaltrain.hashing import stable_hash
from fractaltrain.window import Window


@dataclass(frozen=True)
class TileSpec:
    """One tile: its index in the tile grid and its pixel rectangle [r0, r1) × [c0, c1)."""

    row: int
    col: int
    r0: int
    r1: int
    c0: int
    c1: int

    @property
    def n_pixels(self) -> int:
        return (self.r1 - self.r0) * (self.c1 - self.c0)

    @property
    def name(self) -> str:
        return f"{self.row:04d}_{self.col:04d}"


@dataclass(frozen=True)
class Grid:
    """A window sampled at ``width × height`` pixels, for one problem, in tiles of ``tile`` px."""

    problem_key: str
    window: Window
    width: int
    height: int
    tile: int
    exact_values: bool = False  # some pixel values differ from the centred formula's (window.py)

    def identity(self) -> dict:
        ident = {
            "problem": self.problem_key,
            "window": [repr(v) for v in self.window.as_list()],
            "width": self.width,
            "height": self.height,
            "tile": self.tile,
        }
        if self.exact_values:  # only then, so grids whose values did not change keep their keys
            ident["values"] = "exact"
        return ident

    @property
    def key(self) -> str:
        return stable_hash(self.identity(), length=20)

    @property
    def earlier_key(self) -> str:
        """The key versions before exact pixel values gave this grid (equal to ``key`` unless
        ``exact_values``): their outputs are this job's, made at the drifted values."""
        return stable_hash({k: v for k, v in self.identity().items() if k != "values"}, length=20)

    def tiles(self) -> list[TileSpec]:
        """All tiles, row-major (rows are y ascending)."""
        out = []
        t = self.tile
        for i, r0 in enumerate(range(0, self.height, t)):
            for j, c0 in enumerate(range(0, self.width, t)):
                out.append(TileSpec(i, j, r0, min(r0 + t, self.height), c0, min(c0 + t, self.width)))
        return out

    @property
    def n_pixels(self) -> int:
        return self.width * self.height


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    An ``OSError`` (full disk, read-only folder, ...) always names ``path``.
    """
    path = Path(path)
    try:
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


def atomic_save_npz(path: Path, **arrays) -> None:
    """``np.savez`` to ``path`` atomically, with a ``checksums`` entry over all arrays."""
    import io

    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    buf = io.BytesIO()
    np.savez(buf, checksums=np.array(checksums(arrays)), **arrays)
    atomic_write_bytes(path, buf.getvalue())


class DamagedFile(ValueError):
    """A stored npz is unreadable, incomplete or fails its checksum (the message names the file)."""


def read_verified_npz(path: Path, names: list[str] | None = None, *, require_checksums: bool = True) -> dict:
    """The arrays ``names`` (default: all) of an npz, each checked against the stored checksum.

    Raises :class:`DamagedFile` naming the file when it cannot be read, lacks an
    array or a checksum, or an array's contents differ from its checksum.  With
    ``require_checksums=False`` a file without any ``checksums`` entry (written
    by an older version, or by another program) is read unchecked.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
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


def _load_keyed(path: Path, key: str, name: str) -> np.ndarray | None:
    """Array ``name`` of an npz saved with its ``key``, or None if absent, damaged, foreign or stale."""
    if not path.exists():
        return None
    try:
        arrays = read_verified_npz(path, ["key", name])
    except DamagedFile:  # damaged, foreign or from an older version: recompute
        return None
    return arrays[name] if str(arrays["key"]) == key else None


class TileStore:
    """Tiles of raw results under ``root`` (see module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def folder(self, grid: Grid) -> Path:
        return self.root / grid.key

    def path(self, grid: Grid, spec: TileSpec) -> Path:
        return self.folder(grid) / f"{spec.name}.npz"

    def _tile_key(self, grid: Grid, spec: TileSpec) -> str:
        return f"{grid.key}/{spec.name}/{spec.r0}:{spec.r1},{spec.c0}:{spec.c1}"

    def register(self, grid: Grid) -> None:
        """Write the grid's description next to its tiles (same bytes from every writer)."""
        desc = json.dumps(grid.identity(), sort_keys=True, indent=1).encode()
        p = self.folder(grid) / "grid.json"
        if not p.exists() or p.read_bytes() != desc:
            atomic_write_bytes(p, desc)

    def has(self, grid: Grid, spec: TileSpec) -> bool:
        return self.load(grid, spec) is not None

    def load(self, grid: Grid, spec: TileSpec) -> np.ndarray | None:
        """The tile's (rows, cols, N_OUT) array, or None if absent or not this tile's."""
        data = _load_keyed(self.path(grid, spec), self._tile_key(grid, spec), "out")
        shape = (spec.r1 - spec.r0, spec.c1 - spec.c0, N_OUT)
        if data is None or data.shape != shape or data.dtype != np.float64:
            return None
        return data

    def save(self, grid: Grid, spec: TileSpec, data: np.ndarray) -> None:
        atomic_save_npz(self.path(grid, spec), out=np.ascontiguousarray(data), key=np.array(self._tile_key(grid, spec)))

    def load_record(self, kind: str, key: str) -> np.ndarray | None:
        """A small array saved with :meth:`save_record`, or None if absent, damaged or not ``key``'s.

        Records keep results that are not tiles of a grid (the target search's
        moved-pixel signs) under ``<root>/<kind>/<key>.npz``, written and verified
        exactly as tiles are.
        """
        return _load_keyed(self.root / kind / f"{key}.npz", key, "data")

    def save_record(self, kind: str, key: str, data: np.ndarray) -> None:
        atomic_save_npz(self.root / kind / f"{key}.npz", data=np.ascontiguousarray(data), key=np.array(key))

    def missing(self, grid: Grid, specs: list[TileSpec] | None = None) -> list[TileSpec]:
        """Tiles not validly stored (absent, damaged or not this tile's)."""
        specs = grid.tiles() if specs is None else specs
        return [s for s in specs if self.load(grid, s) is None]


def grid_from_identity(key: str, ident) -> Grid | None:
    """The Grid a ``grid.json`` describes, or None if it is malformed or does not hash to ``key``."""
    try:
        from fractaltrain.window import Window

        win = Window(*(float(v) for v in ident["window"]))
        grid = Grid(str(ident["problem"]), win, int(ident["width"]), int(ident["height"]), int(ident["tile"]),
                    exact_values=ident.get("values") == "exact")
    except (TypeError, ValueError, KeyError, AttributeError):
        return None
    if grid.width < 1 or grid.height < 1 or grid.tile < 1 or grid.key != key:
        return None
    return grid
