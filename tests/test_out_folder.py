"""What is inside an output folder is the tool's (issue 29, classes 2 and 3).

A sub-folder that is a link never leads a write out of ``--out``; a stored file
that is a link, a FIFO, a device or a folder is never trusted, never blocks a
read and never makes one endless: it is recomputed, or named in one line.
Each CLI call runs in a subprocess with a timeout, so a hang fails the test.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

TINY = {"name": "t", "network": {"width": 2}, "training": {"steps": 5}, "resolution": "16x16", "tile": 8}
ZOOM = ["--frames", "3", "--size", "16x16", "--depth", "1", "--center", "1.5,1.5", "--keyframes-only"]


def ft(*args, timeout=120):
    """(exit code, stderr) of ``python -m fractaltrain ARGS``; a hang past ``timeout`` fails the test."""
    r = subprocess.run([sys.executable, "-m", "fractaltrain", *map(str, args)], capture_output=True, text=True,
                       timeout=timeout)
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    if r.returncode == 1 and args[0] == "assemble" and "tile(s) missing" in r.stderr.splitlines()[0]:
        return r.returncode, r.stderr  # assemble's report of an unfinished job: the tiles and their shards
    if r.returncode != 0:
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (r.returncode, r.stderr)
    return r.returncode, r.stderr


def tree(folder: Path) -> dict:
    """Everything under ``folder`` (links not followed): kind and content hash."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(folder))] = ("link", os.readlink(p))
        elif p.is_file():
            out[str(p.relative_to(folder))] = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
        else:
            out[str(p.relative_to(folder))] = ("dir", "")
    return out


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """A finished render, a sharded render (tile 0 of 4 done, manifest written) and a zoom's keyframes."""
    root = tmp_path_factory.mktemp("outfolder")
    cfg = root / "t.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    assert ft("render", cfg, "--out", root / "render", "-q")[0] == 0
    assert ft("render", cfg, "--out", root / "shard", "-q", "--shard", "0/4")[0] == 0
    assert ft("zoom", cfg, "--out", root / "zoom", "-q", *ZOOM)[0] == 0
    return root, cfg


def fresh(done, kind: str, tmp_path: Path) -> Path:
    root, _ = done
    out = tmp_path / kind
    shutil.copytree(root / kind, out, symlinks=True)
    return out


def grid_folder(out: Path) -> Path:
    return next(p for p in (out / "tiles").iterdir() if p.is_dir() and (p / "grid.json").exists())


# --------------------------------------------------------------------------- links out of --out

@pytest.mark.parametrize("kind,link", [
    ("render", "tiles"), ("render", "tiles/KEY"), ("shard", "jobs"), ("zoom", "keyframes"), ("zoom", "tiles"),
])
# copies outside (True) cost a subprocess each and test_fuzz covers them in-process: slow
@pytest.mark.parametrize("copy", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_linked_folders_never_lead_a_write_out_of_out(done, tmp_path, kind, link, copy):
    out = fresh(done, kind, tmp_path)
    victim = grid_folder(out) if link == "tiles/KEY" else out / link
    elsewhere = tmp_path / "elsewhere" / victim.name
    elsewhere.parent.mkdir()
    if copy:  # the same files, outside: a damaged one must not be replaced there
        shutil.copytree(victim, elsewhere)
        for f in sorted(elsewhere.rglob("*.npz"))[:1]:
            f.write_bytes(f.read_bytes()[:-50])
    else:
        elsewhere.mkdir()
    shutil.rmtree(victim)
    victim.symlink_to(elsewhere, target_is_directory=True)
    before = tree(elsewhere.parent)
    _, cfg = done
    cmd = {"render": ["render", cfg, "--out", out, "-q"], "shard": ["render", cfg, "--out", out, "-q", "--shard", "1/4"],
           "zoom": ["zoom", cfg, "--out", out, "-q", *ZOOM]}[kind]
    code, err = ft(*cmd)
    assert tree(elsewhere.parent) == before
    if code:
        assert "symbolic link" in err and str(victim.name) in err
    for command in (["status", out], ["assemble", out, "-q"]):
        ft(*command)
        assert tree(elsewhere.parent) == before


def test_a_tile_that_is_a_link_out_is_recomputed_and_its_target_untouched(done, tmp_path):
    out = fresh(done, "render", tmp_path)
    tile = sorted(grid_folder(out).glob("*.npz"))[0]
    outside = tmp_path / "decoy.npz"
    outside.write_bytes(tile.read_bytes()[:-10])  # looks like a damaged tile
    tile.unlink()
    tile.symlink_to(outside)
    good = outside.read_bytes()
    assert ft("render", done[1], "--out", out, "-q")[0] == 0
    assert outside.read_bytes() == good
    assert tile.is_file() and not tile.is_symlink()


# --------------------------------------------------------------------------- special files

def _place(path: Path, what: str) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    if what == "fifo":
        os.mkfifo(path)
    elif what == "dev_zero":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()


# a folder in a file's place: test_fuzz covers it in-process, so the subprocess cases are slow
@pytest.mark.parametrize("what", ["fifo", "dev_zero", pytest.param("dir", marks=pytest.mark.slow)])
@pytest.mark.parametrize("which", ["tile", "grid.json", "manifest", "sidecar", "keyframe"])
def test_special_files_never_hang_and_are_recomputed_or_named(done, tmp_path, what, which):
    kind = "zoom" if which == "keyframe" else "shard" if which == "manifest" else "render"
    out = fresh(done, kind, tmp_path)
    path = {"tile": lambda: sorted(grid_folder(out).glob("*.npz"))[0],
            "grid.json": lambda: grid_folder(out) / "grid.json",
            "manifest": lambda: next((out / "jobs").glob("*.json")),
            "sidecar": lambda: out / "t.json",
            "keyframe": lambda: sorted((out / "keyframes").glob("*.npz"))[0]}[which]()
    _place(path, what)
    _, cfg = done
    cmd = {"render": ["render", cfg, "--out", out, "-q"], "shard": ["render", cfg, "--out", out, "-q", "--shard", "1/4"],
           "zoom": ["zoom", cfg, "--out", out, "-q", *ZOOM]}[kind]
    code, err = ft(*cmd, timeout=60)
    if code:
        assert path.name in err, err
    else:
        assert path.is_file() and not path.is_symlink()  # recomputed in its place
    ft("status", out, timeout=60)
    ft("assemble", out, "-q", timeout=60)
    if kind == "zoom" or which == "keyframe":
        ft("dimension", out, timeout=60)


def test_dimension_names_a_fifo_or_device_it_is_given(tmp_path):
    fifo = tmp_path / "a.npz"
    os.mkfifo(fifo)
    zero = tmp_path / "b.npy"
    zero.symlink_to("/dev/zero")
    for p in (fifo, zero):
        code, err = ft("dimension", p, timeout=30)
        assert code == 2 and p.name in err and "regular file" in err


# --------------------------------------------------------------------------- no reads through links, bounded reads

def test_an_intact_tile_folder_linked_out_is_refused_not_read(done, tmp_path):
    """Even when every tile there is valid, so that nothing would be written, a linked ``tiles/<key>`` is refused:
    a job never uses tiles from outside its output folder."""
    out = fresh(done, "render", tmp_path)
    victim = grid_folder(out)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(victim, elsewhere)
    shutil.rmtree(victim)
    victim.symlink_to(elsewhere, target_is_directory=True)
    before = tree(elsewhere)
    code, err = ft("render", done[1], "--out", out, "-q")
    assert code == 2 and "symbolic link" in err and victim.name in err
    assert tree(elsewhere) == before


def test_a_huge_file_in_place_of_a_tile_is_not_read(done, tmp_path):
    """A regular file far larger than any tile (sparse here, so the test is cheap) counts as damaged without being
    read into memory, and is recomputed."""
    out = fresh(done, "shard", tmp_path)
    tile = sorted(grid_folder(out).glob("*.npz"))[0]
    with open(tile, "r+b") as f:
        f.truncate(64 << 30)
    r = subprocess.run([sys.executable, "-m", "fractaltrain", "status", str(out)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "0/4 tiles" in r.stdout, (r.stdout, r.stderr)
    assert ft("render", done[1], "--out", out, "-q", "--shard", "0/4", timeout=60)[0] == 0
    assert tile.stat().st_size < 1 << 20


def test_a_tile_is_read_only_up_to_the_size_a_tile_can_be(done, tmp_path, monkeypatch):
    """The cap is per kind: a file in place of a tile larger than the tile's arrays could make (here 256 MiB,
    far below the cap for other stored files) is not read at all."""
    import json

    import fractaltrain.compute.files as files
    from fractaltrain.compute.store import TileStore, grid_from_identity

    out = fresh(done, "render", tmp_path)
    folder = grid_folder(out)
    grid = grid_from_identity(folder.name, json.loads((folder / "grid.json").read_text()))
    store = TileStore(out / "tiles")
    spec = grid.tiles()[0]
    assert store.load(grid, spec) is not None
    with open(store.path(grid, spec), "r+b") as f:
        f.truncate(256 << 20)
    read = []
    real_read = os.read
    monkeypatch.setattr(files.os, "read", lambda fd, n: read.append(n) or real_read(fd, n))
    assert store.load(grid, spec) is None and not read


def test_a_manifest_that_is_a_fifo_is_named_once(done, tmp_path):
    out = fresh(done, "shard", tmp_path)
    manifest = next((out / "jobs").glob("*.json"))
    _place(manifest, "fifo")
    code, err = ft("status", out, timeout=60)
    assert code == 2 and err.count(manifest.name) == 1 and "not a regular file" in err, err


def test_explore_refuses_a_linked_tile_folder_at_start(done, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "tiles").symlink_to(elsewhere, target_is_directory=True)
    code, err = ft("explore", done[1], "--out", out, "--no-browser", timeout=60)
    assert code == 2 and "symbolic link" in err and "tiles" in err
    assert not any(elsewhere.iterdir())


def test_the_target_search_records_never_follow_a_link_out(done, tmp_path):
    out = tmp_path / "o"
    (out / "tiles").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "tiles" / "moved_signs").symlink_to(elsewhere, target_is_directory=True)
    code, err = ft("locate", done[1], "--out", out, "-q", "--depth", "1", "--size", "16x16")
    assert code == 2 and "moved_signs" in err and "symbolic link" in err
    assert not any(elsewhere.iterdir())


@pytest.mark.parametrize("kind,names", [("render", ["t.png", "t.npz"]), ("zoom", ["t_poster.png", "noise.json"])])
def test_outputs_linked_out_are_replaced_not_written_through(done, tmp_path, kind, names):
    """An output file that is a link is replaced by the new file; what it pointed to is left as it was."""
    out = fresh(done, kind, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in names:
        (elsewhere / name).write_bytes((out / name).read_bytes()[:-7])
        (out / name).unlink()
        (out / name).symlink_to(elsewhere / name)
    before = tree(elsewhere)
    cmd = ["render", done[1], "--out", out, "-q"] if kind == "render" else ["zoom", done[1], "--out", out, "-q", *ZOOM]
    assert ft(*cmd)[0] == 0
    assert tree(elsewhere) == before
    for name in names:
        assert (out / name).is_file() and not (out / name).is_symlink()


def test_an_out_folder_that_is_itself_a_link_is_fine(done, tmp_path):
    """The rule is about links inside --out: the user may name a link as --out (or a folder under one)."""
    real = tmp_path / "real"
    real.mkdir()
    out = tmp_path / "out"
    out.symlink_to(real, target_is_directory=True)
    assert ft("zoom", done[1], "--out", out, "-q", *ZOOM)[0] == 0
    assert ft("render", done[1], "--out", out / "sub", "-q", "--shard", "0/4")[0] == 0
    assert ft("status", out)[0] == 0
    assert sorted((real / "keyframes").glob("*.npz")) and sorted((real / "sub" / "jobs").glob("*.json"))
