"""The tile store: raw kernel results on disk, one file per tile, written atomically (:mod:`fractaltrain.compute.files`).

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

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from fractaltrain.columns import N_OUT
from fractaltrain.compute.files import (MAX_JSON_BYTES, DamagedFile, atomic_save_npz, atomic_write_bytes, folder_inside,
                                read_regular, read_verified_npz)
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


def dd_revision(count: int) -> int:
    """The double-double kernel's revision for a problem whose gradient factor is ``2/count``, in its keys.

    Revision 2 (2026-12-05) carries the factor to 32 digits; revision 1 formed its low part as
    ``(2 − hi·count)/count`` in float64, which is right only where ``hi·count`` is exact (count a power
    of two) and otherwise left the factor at float64's 16 digits, moving the landscape by
    about 1e-17 of its rates.  Where revision 1's factor was already exact the bits did not change, so
    those grids keep revision 1 and their keys, and earlier folders resume; elsewhere the key changes and
    tiles trained by revision 1 are not this grid's.
    """
    hi = 2.0 / count
    old = (2.0 - hi * count) / count
    return 1 if old == float(Fraction(2, count) - Fraction(hi)) else 2


@dataclass(frozen=True)
class Grid:
    """A window sampled at ``width × height`` pixels, for one problem, in tiles of ``tile`` px."""

    problem_key: str
    window: Window
    width: int
    height: int
    tile: int
    exact_values: bool = False  # some pixel values differ from the centred formula's (window.py)
    precision: str = "float64"  # or "double-double" (fractaltrain.precision): then values come from the exact edges
    lattice: tuple[str, str, str, str] | None = None  # float64 values on a keyframe lattice (fractaltrain.lattice)
    dd_revision: int = 1  # double-double grids: the kernel's revision for this problem (:func:`dd_revision`)

    @property
    def double_double(self) -> bool:
        return self.precision == "double-double"

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
        if self.double_double:  # float64 grids keep the keys they had before double-double existed
            ident["precision"] = self.precision
            ident["window_exact"] = self.window.strings()
            if self.dd_revision != 1:  # only then: grids whose bits did not change keep their keys
                ident["dd_revision"] = self.dd_revision
        if self.lattice is not None:  # only then: other grids keep their keys
            ident["lattice"] = list(self.lattice)
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


MAX_RECORD_BYTES = 1 << 28  # a record holds one float64 per sampled pixel: far less than this

NPZ_SLACK = 1 << 20  # zip and npy headers, the key and the checksums, beyond a tile's array bytes


def _load_keyed(path: Path, key: str, name: str, limit: int) -> np.ndarray | None:
    """Array ``name`` of an npz saved with its ``key``, or None if absent, damaged, foreign or stale.

    A file larger than ``limit`` bytes cannot be what was saved, so it is not read
    (a huge file in place of a tile must not exhaust memory): it counts as damaged.
    """
    try:
        arrays = read_verified_npz(path, ["key", name], limit=limit)
    except (FileNotFoundError, DamagedFile):  # absent, damaged, not a file, foreign or from an older version
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
        """Write the grid's description next to its tiles (same bytes from every writer).

        The grid's folder is checked first, even when nothing needs writing: a
        ``tiles`` or ``tiles/<key>`` that is a link is refused
        (:func:`~fractaltrain.compute.files.folder_inside`) rather than read, so a job
        never uses or replaces tiles outside its output folder.
        """
        desc = json.dumps(grid.identity(), sort_keys=True, indent=1).encode()
        p = folder_inside(self.root.parent, self.folder(grid)) / "grid.json"
        try:
            same = read_regular(p, MAX_JSON_BYTES) == desc
        except (FileNotFoundError, DamagedFile):
            same = False
        if not same:
            atomic_write_bytes(p, desc, inside=self.root.parent)

    def load(self, grid: Grid, spec: TileSpec) -> np.ndarray | None:
        """The tile's (rows, cols, N_OUT) array, or None if absent or not this tile's."""
        shape = (spec.r1 - spec.r0, spec.c1 - spec.c0, N_OUT)
        limit = shape[0] * shape[1] * N_OUT * 8 + NPZ_SLACK
        data = _load_keyed(self.path(grid, spec), self._tile_key(grid, spec), "out", limit)
        if data is None or data.shape != shape or data.dtype != np.float64:
            return None
        return data

    def save(self, grid: Grid, spec: TileSpec, data: np.ndarray) -> None:
        atomic_save_npz(self.path(grid, spec), inside=self.root.parent, out=np.ascontiguousarray(data),
                        key=np.array(self._tile_key(grid, spec)))

    def load_record(self, kind: str, key: str) -> np.ndarray | None:
        """A small array saved with :meth:`save_record`, or None if absent, damaged or not ``key``'s.

        Records keep results that are not tiles of a grid (the target search's
        moved-pixel signs) under ``<root>/<kind>/<key>.npz``, written and verified
        exactly as tiles are.
        """
        return _load_keyed(self.root / kind / f"{key}.npz", key, "data", MAX_RECORD_BYTES)

    def save_record(self, kind: str, key: str, data: np.ndarray) -> None:
        atomic_save_npz(self.root / kind / f"{key}.npz", inside=self.root.parent, data=np.ascontiguousarray(data),
                        key=np.array(key))


def grid_from_identity(key: str, ident) -> Grid | None:
    """The Grid a ``grid.json`` describes, or None if it is malformed or does not hash to ``key``."""
    try:
        from fractaltrain.window import Window

        from fractaltrain.window import parse_coordinate

        win = Window(*(float(v) for v in ident["window"]))
        if "window_exact" in ident:
            win = Window.from_edges(*(parse_coordinate(v) if "/" not in str(v) else Fraction(str(v))
                                      for v in ident["window_exact"]))
        lattice = None
        if "lattice" in ident:
            from fractaltrain.lattice import lattice_fractions, lattice_strings

            lattice = lattice_strings(*lattice_fractions(ident["lattice"]))
        grid = Grid(str(ident["problem"]), win, int(ident["width"]), int(ident["height"]), int(ident["tile"]),
                    exact_values=ident.get("values") == "exact", precision=str(ident.get("precision", "float64")),
                    lattice=lattice, dd_revision=int(ident.get("dd_revision", 1)))
    except (TypeError, ValueError, KeyError, AttributeError):
        return None
    if grid.width < 1 or grid.height < 1 or grid.tile < 1 or grid.key != key:
        return None
    return grid
