"""The tile store: raw kernel results on disk, one file per tile, written atomically.

A landscape (one window at one resolution) is a :class:`Grid`, cut into square
tiles.  Each tile is saved as ``<root>/<grid key>/<row>_<col>.npz`` by writing a
temporary file in the same folder and renaming it, so a tile file is either
complete or absent, even after ``kill -9``, and any number of processes can fill
the same store at once without a lock: no file is ever rewritten in place.

The grid key hashes everything that affects the pixels (the problem key, the
window at full precision, the resolution, the tile size), so a changed config
never reuses stale tiles; each tile also stores its own key and is checked when
read back.
"""

from __future__ import annotations

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

    def identity(self) -> dict:
        return {
            "problem": self.problem_key,
            "window": [repr(v) for v in self.window.as_list()],
            "width": self.width,
            "height": self.height,
            "tile": self.tile,
        }

    @property
    def key(self) -> str:
        return stable_hash(self.identity(), length=20)

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
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_save_npz(path: Path, **arrays) -> None:
    """``np.savez`` to ``path`` atomically."""
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


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
        p = self.path(grid, spec)
        if not p.exists():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                key = str(z["key"])
                data = z["out"]
        except Exception:  # unreadable (should not happen with atomic writes): recompute
            return None
        shape = (spec.r1 - spec.r0, spec.c1 - spec.c0, N_OUT)
        if key != self._tile_key(grid, spec) or data.shape != shape or data.dtype != np.float64:
            return None
        return data

    def save(self, grid: Grid, spec: TileSpec, data: np.ndarray) -> None:
        atomic_save_npz(self.path(grid, spec), out=np.ascontiguousarray(data), key=np.array(self._tile_key(grid, spec)))

    def missing(self, grid: Grid, specs: list[TileSpec] | None = None) -> list[TileSpec]:
        specs = grid.tiles() if specs is None else specs
        return [s for s in specs if not self.path(grid, s).exists()]
