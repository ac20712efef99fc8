"""Job manifests, completeness checks and progress of an output folder.

Every ``render`` or ``zoom`` writes a manifest ``OUT/jobs/<key>.json`` naming
the command, the resolved config, the options and the keys of the grids it
needs.  Shards of one job write the same bytes (atomically), so concurrent
tasks never conflict, and ``assemble`` / ``status`` can later work from the
folder alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from fractaltrain.hashing import stable_hash
from fractaltrain.store import Grid, TileStore, atomic_write_bytes


@dataclass(frozen=True)
class Manifest:
    kind: str  # "render" or "zoom"
    name: str
    config: dict
    options: dict
    grids: list  # grid keys, in computation order
    shards: int

    @property
    def key(self) -> str:
        return stable_hash([self.kind, self.config, self.options])


def write_manifest(outdir: Path, manifest: Manifest) -> Path:
    path = Path(outdir) / "jobs" / f"{manifest.name}-{manifest.kind}-{manifest.key}.json"
    data = (json.dumps(asdict(manifest), sort_keys=True, indent=1) + "\n").encode()
    if not path.exists() or path.read_bytes() != data:
        atomic_write_bytes(path, data)
    return path


def read_manifests(outdir: Path) -> list[tuple[Path, Manifest]]:
    out = []
    for p in sorted((Path(outdir) / "jobs").glob("*.json")):
        try:
            out.append((p, Manifest(**json.loads(p.read_text()))))
        except (ValueError, TypeError):
            continue
    return out


@dataclass(frozen=True)
class MissingTile:
    grid_index: int
    tile: str
    owner: int  # shard index that owns it


class IncompleteError(RuntimeError):
    """Some tiles of a job are missing; ``missing`` says which and which shard owns them."""

    def __init__(self, missing: list[MissingTile], shards: int):
        self.missing = missing
        self.shards = shards
        owners = sorted({m.owner for m in missing})
        lines = [f"{len(missing)} tile(s) missing; owned by shard(s) {', '.join(f'{o}/{shards}' for o in owners)}"]
        for m in missing[:20]:
            lines.append(f"  grid {m.grid_index} tile {m.tile} -> shard {m.owner}/{shards}")
        if len(missing) > 20:
            lines.append(f"  ... and {len(missing) - 20} more")
        super().__init__("\n".join(lines))


def find_missing(store: TileStore, grids: list[Grid], shards: int = 1) -> list[MissingTile]:
    """Tiles not (validly) stored, with the shard of ``shards`` that owns each."""
    missing = []
    pos = 0
    for gi, grid in enumerate(grids):
        for spec in grid.tiles():
            if store.load(grid, spec) is None:
                missing.append(MissingTile(gi, spec.name, pos % shards))
            pos += 1
    return missing


def require_complete(store: TileStore, grids: list[Grid], shards: int = 1) -> None:
    missing = find_missing(store, grids, shards)
    if missing:
        raise IncompleteError(missing, shards)


@dataclass(frozen=True)
class GridStatus:
    key: str
    tiles: int
    done: int
    pixels: int
    pixels_done: int


def job_status(outdir: Path, manifest: Manifest) -> tuple[list[GridStatus], float | None]:
    """Per-grid progress, and an estimate of the seconds left (None if unknown).

    The estimate divides the pixels left by the rate seen so far: pixels stored
    per second between the first and the last tile file written (all shards
    together).
    """
    root = Path(outdir) / "tiles"
    stats = []
    times = []
    for key in manifest.grids:
        folder = root / key
        desc = folder / "grid.json"
        if not desc.exists():
            stats.append(GridStatus(key, 0, 0, 0, 0))
            continue
        ident = json.loads(desc.read_text())
        w, h, t = ident["width"], ident["height"], ident["tile"]
        nty, ntx = -(-h // t), -(-w // t)
        done_files = list(folder.glob("*.npz"))
        done_px = 0
        for f in done_files:
            r, c = (int(x) for x in f.stem.split("_"))
            done_px += (min(t, h - r * t)) * (min(t, w - c * t))
            times.append(f.stat().st_mtime)
        stats.append(GridStatus(key, nty * ntx, len(done_files), w * h, done_px))
    total = sum(s.pixels for s in stats)
    done = sum(s.pixels_done for s in stats)
    eta = None
    if len(times) >= 2 and done < total and max(times) > min(times):
        rate = done / (max(times) - min(times))
        eta = (total - done) / rate
    elif done >= total and total > 0:
        eta = 0.0
    return stats, eta
