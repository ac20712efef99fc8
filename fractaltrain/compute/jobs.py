"""Job manifests, completeness checks and progress of an output folder.

Every ``render`` or ``zoom`` writes a manifest ``OUT/jobs/<key>.json`` naming
the command, the resolved config, the options and the keys of the grids it
needs.  Shards of one job write the same bytes (atomically), so concurrent
tasks never conflict, and ``assemble`` / ``status`` can later work from the
folder alone.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from fractaltrain.errors import DataError, InputError, short
from fractaltrain.hashing import stable_hash
from fractaltrain.compute.files import MAX_JSON_BYTES, DamagedFile, atomic_write_bytes, read_json, read_regular
from fractaltrain.compute.store import Grid, TileStore, grid_from_identity


@dataclass(frozen=True)
class Manifest:
    kind: str  # "render", "zoom" or "ensemble"
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
    try:
        same = read_regular(path, MAX_JSON_BYTES) == data
    except (FileNotFoundError, DamagedFile):
        same = False
    if not same:
        atomic_write_bytes(path, data, inside=Path(outdir))
    return path


KINDS = ("render", "zoom", "ensemble")
MAX_SHARDS = 1_000_000  # as many tasks as --shard allows


def check_manifest(raw) -> Manifest:
    """A Manifest from parsed JSON, checked as strictly as the command that wrote it.

    ``assemble`` replays a manifest and ``status`` reports on it, so every field is
    held to the limits of the option or config key it records
    (:mod:`fractaltrain.zoom.options`, :func:`fractaltrain.config.config_from_dict`)
    before anything is written: an edited or damaged manifest must not start a
    four-hour encode the flag would have refused, nor rewrite outputs before failing.
    Raises :class:`~fractaltrain.errors.InputError` (one line naming the field and
    what is allowed); loads no numba.
    """
    from fractaltrain.zoom.options import render_options_from_manifest, zoom_options_from_manifest

    if not isinstance(raw, dict):
        raise DataError(f"expected a JSON object, got {type(raw).__name__}")
    fields = {"kind", "name", "config", "options", "grids", "shards"}
    if set(raw) != fields:
        missing, extra = fields - set(raw), set(raw) - fields
        raise DataError("fields " + ", ".join(
            [f"missing {', '.join(sorted(missing))}"] * bool(missing) + [f"unknown {', '.join(sorted(map(str, extra)))[:80]}"] * bool(extra)))
    if raw["kind"] not in KINDS:
        raise DataError(f"unknown job kind {str(raw['kind'])[:40]!r} (expected {', '.join(KINDS[:-1])} or {KINDS[-1]})")
    if not isinstance(raw["name"], str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}", raw["name"]):
        raise DataError("its name is not a valid job name")
    if not isinstance(raw["config"], dict) or not isinstance(raw["options"], dict):
        raise DataError("config and options must be JSON objects")
    grids = raw["grids"]
    if not isinstance(grids, list) or not all(isinstance(g, str) and re.fullmatch(r"[0-9a-f]{20}", g) for g in grids):
        raise DataError("grids must be a list of grid keys")
    if isinstance(raw["shards"], bool) or not isinstance(raw["shards"], int) or not 1 <= raw["shards"] <= MAX_SHARDS:
        raise DataError(f"shards must be a whole number between 1 and {MAX_SHARDS}")
    m = Manifest(**raw)
    if raw["config"].get("name") != m.name:
        raise DataError(f"config.name: must be the manifest's name {m.name!r}, got {short(raw['config'].get('name'))}")
    cfg = manifest_config(m)
    if m.kind == "zoom":
        zoom_options_from_manifest(m.options)
        members = 1 if cfg.ensemble is None else cfg.ensemble.members
        if not grids or len(grids) % members:
            raise DataError(f"grids: a zoom of {members} member(s) lists a whole number of keyframe grids per "
                            f"member, got {len(grids)}")
        return m
    member = render_options_from_manifest(m.options, m.kind)["member"]
    if m.kind == "ensemble" and cfg.ensemble is None:
        raise DataError("config.ensemble: an ensemble job's config must have an ensemble")
    if m.kind == "render" and cfg.ensemble is not None and member is None:
        raise DataError("options.member: a render of an ensemble config renders one member; "
                        "an ensemble job has kind 'ensemble'")
    if member is not None:
        from fractaltrain.render.ensemble import check_member

        try:
            check_member(cfg, member)
        except InputError as exc:
            raise DataError(f"options.{exc}") from None
    want = 1 if m.kind == "render" else cfg.ensemble.members
    if len(grids) != want:
        raise DataError(f"grids: a{'n' * (m.kind == 'ensemble')} {m.kind} job lists {want} grid(s), got {len(grids)}")
    return m


_check_manifest = check_manifest  # the name earlier callers use


def manifest_config(manifest: Manifest):
    """The manifest's config, validated as a config file is; errors name ``config.<key>``."""
    from fractaltrain.config import config_from_dict

    try:
        return config_from_dict(manifest.config, name=manifest.name)
    except InputError as exc:
        msg = str(exc)
        raise DataError(f"config.{msg}" if re.match(r"[A-Za-z_][\w.\[\]]*:", msg) else f"config: {msg}") from None


def check_grids(listed: list[str], grids: list[Grid]) -> None:
    """Refuse a manifest whose config and options give other grids than the ones it lists.

    Such a manifest was edited (or written by another version): replaying it would
    register grids and record noise rates no command asked for.  A grid key of the
    version before exact pixel values (``Grid.earlier_key``) is the same job.
    """
    if len(listed) != len(grids) or any(k not in (g.key, g.earlier_key) for k, g in zip(listed, grids)):
        raise DataError(f"grids: its config and options give {len(grids)} other grid(s) than the {len(listed)} it "
                        "lists (edited or damaged); rerun the command that made the job to rewrite it")


def read_manifests(outdir: Path, errors: list | None = None) -> list[tuple[Path, Manifest]]:
    """Every valid job manifest in ``outdir/jobs``.

    Invalid ones are skipped; when ``errors`` is a list, ``(path, reason)`` is
    appended for each, so callers can name them instead of failing every job.
    """
    out = []
    for p in sorted((Path(outdir) / "jobs").glob("*.json")):
        try:
            out.append((p, _check_manifest(read_json(p))))
        except (ValueError, TypeError, OSError, RecursionError) as exc:
            if errors is not None:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                reason = reason.removeprefix(f"{p}: ")  # a DamagedFile names p, as the caller will
                errors.append((p, f"not a valid job manifest: {reason[:160]}"))
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
    precision: str = "float64"


def job_status(outdir: Path, manifest: Manifest) -> tuple[list[GridStatus], float | None]:
    """Per-grid progress, and an estimate of the seconds left (None if unknown).

    A tile counts as done only if it reads back valid (key and checksum, see
    :mod:`fractaltrain.compute.store`), exactly as ``assemble`` and a rerun decide.  A grid
    whose ``grid.json`` is missing or damaged (it must hash to its folder's key)
    has ``tiles = -1``: its size is unknown until the job is run again.

    The estimate divides the pixels left by the rate seen so far: pixels stored
    per second between the first and the last valid tile written (all shards
    together).
    """
    root = Path(outdir) / "tiles"
    store = TileStore(root)
    stats = []
    times = []
    for key in manifest.grids:
        folder = root / key
        try:
            ident = read_json(folder / "grid.json")
        except (OSError, ValueError):
            ident = None
        grid = grid_from_identity(key, ident) if ident is not None else None
        if grid is None:
            stats.append(GridStatus(key, -1, 0, 0, 0))
            continue
        done = done_px = 0
        for spec in grid.tiles():
            if store.load(grid, spec) is not None:
                done += 1
                done_px += spec.n_pixels
                try:
                    times.append(store.path(grid, spec).stat().st_mtime)
                except OSError:
                    pass
        stats.append(GridStatus(key, len(grid.tiles()), done, grid.n_pixels, done_px, grid.precision))
    known = [s for s in stats if s.tiles >= 0]
    total = sum(s.pixels for s in known)
    done = sum(s.pixels_done for s in known)
    eta = None
    if len(known) < len(stats):
        eta = None
    elif len(times) >= 2 and done < total and max(times) > min(times):
        rate = done / (max(times) - min(times))
        eta = (total - done) / rate
    elif done >= total and total > 0:
        eta = 0.0
    return stats, eta
