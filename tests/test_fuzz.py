"""The promise, fuzzed (issue 29): for generated configs, windows, manifests and output folders,
every command exits 0, or 2 with one ``error:`` line (or 1 from ``assemble``
with its list of the tiles still missing); never a traceback, never a hang, nothing
created or changed outside ``--out``; and a render that succeeds trained each pixel at the value
its coordinate names.

Seeded, in-process (typer's CliRunner), each case under an alarm so a hang fails the test instead
of stalling CI; the whole module runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
from pathlib import Path

import numpy as np
import yaml
from typer.testing import CliRunner

from fractaltrain.cli import app

CASE_SECONDS = 20  # a case that takes longer is a hang
BASE = {"name": "fz", "network": {"width": 2}, "training": {"steps": 5}, "resolution": "8x8", "tile": 8,
        "axes": {"x": {"param": "lr_input", "scale": "log10", "range": [-3, 6]},
                 "y": {"param": "lr_output", "scale": "log10", "range": [-3, 6]}}}


class Hang(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds: int, what):
    def on_alarm(signum, frame):
        raise Hang(f"{what} ran past {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run(args, what):
    """(exit code, stderr) of one in-process CLI call, with the promise checked."""
    with deadline(CASE_SECONDS, what):
        r = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=True)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise AssertionError(f"{what}: {type(r.exception).__name__}: {r.exception}")
    err = r.stderr
    assert "Traceback" not in err and "Traceback" not in r.stdout, (what, err[-800:])
    if r.exit_code == 1 and args[0] == "assemble" and "tile(s) missing" in err.splitlines()[0]:
        return r.exit_code, err  # assemble's report of an unfinished job: the tiles and their shards
    if r.exit_code != 0:
        lines = err.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (what, r.exit_code, err[-800:])
    return r.exit_code, err


def snapshot(folder: Path) -> dict:
    """Every path under ``folder`` (links not followed) with its kind, size and content hash."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        kind = "link" if p.is_symlink() else "dir" if p.is_dir() else "file"
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if kind == "file" else os.readlink(p) if kind == "link" else ""
        out[str(p.relative_to(folder))] = (kind, st.st_size if kind == "file" else 0, digest)
    return out


def exact_values(lo: float, hi: float, n: int) -> np.ndarray:
    from decimal import Decimal, localcontext
    from fractions import Fraction

    out = np.empty(n)
    with localcontext() as ctx:
        ctx.prec = 80
        for i in range(n):
            u = Fraction(lo) + (Fraction(hi) - Fraction(lo)) * Fraction(2 * i + 1, 2 * n)
            out[i] = float(Decimal(10) ** (Decimal(u.numerator) / Decimal(u.denominator)))
    return out


# --------------------------------------------------------------------------- configs and windows

CHOICES = {
    "name": ["fz", "a.b", 123, True, None, [1], "x" * 150, "-a"],
    "axes.x.range": [[-3, 6], [-32, 6], [-3, 30], [-300, 300], [-299.5, -299], [0.98, 0.98 + 1e-9],
                     [-400, 0], [0, 1e-20], [-1e308, 1e308], [1, 1], ["a", 1], 5],
    "axes.y.range": [[-3, 6], [-40, 40], [5, 5.000001], [-300, -200], [299, 300], [0, 301]],
    "axes.x.scale": ["log10", "linear", "log2", 1],
    "zoom_target": [None, "paper", ["paper"], 3, {"x": 1}, [[1, 2]], "nope"],
    "views": [None, {"paper": {"x": [1, 2], "y": [1, 2]}}, {"paper": 5}, [1], {"p": {"x": [2, 1], "y": [1, 2]}}],
    "training.steps": [5, 0, -1, "5", 1e300, None],
    "resolution": ["8x8", "1x1", "3x5", "0x8", "8x", [8, 8]],
    "readout": ["measure", "final_loss", "probe", "accuracy", 0],
}


def fuzz_configs(seed: int, count: int):
    rng = random.Random(seed)
    keys = sorted(CHOICES)
    for i in range(count):
        raw = json.loads(json.dumps(BASE))
        for _ in range(rng.choice([1, 1, 2, 3])):
            key = rng.choice(keys)
            *path, last = key.split(".")
            d = raw
            for k in path:
                d = d.setdefault(k, {})
            value = rng.choice(CHOICES[key])
            if value is None:
                d.pop(last, None)
            else:
                d[last] = value
        yield i, raw


def check_values(npz: Path, cfg: dict, window: list[float] | None):
    """A render that succeeded trained every log10 pixel within 4 ulps of 10**u."""
    axes = cfg.get("axes", BASE["axes"])
    with np.load(npz) as z:
        for name, ax, w in (("x_values", axes["x"], window[:2] if window else None),
                            ("y_values", axes["y"], window[2:] if window else None)):
            if ax.get("scale", "log10") != "log10":
                continue
            lo, hi = map(float, w or ax["range"])
            got = z[name]
            ref = exact_values(lo, hi, len(got))
            assert np.all(np.abs(got - ref) <= 4 * np.spacing(np.abs(ref))), (name, lo, hi)


def test_fuzz_configs_and_windows(tmp_path):
    """Generated configs (valid and not) and --window values: exit 0 with right values, or 2 and one line."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not yours")
    before = snapshot(outside)
    rng = random.Random(29)
    codes = []
    for i, raw in fuzz_configs(29, 300):
        folder = tmp_path / f"c{i}"
        folder.mkdir()
        cfg = folder / "c.yaml"
        cfg.write_text(yaml.safe_dump(raw))
        window = None
        args = ["render", cfg, "--out", folder / "out", "-q"]
        roll = rng.random()
        if roll < 0.3:
            window = sorted(rng.uniform(-300, 300) for _ in range(2)) + sorted(rng.uniform(-300, 300) for _ in range(2))
            args += ["--window", ",".join(repr(v) for v in window)]
        elif roll < 0.36:  # a short zoom to a given centre: its keyframes go through the same values
            centre = f"{rng.uniform(-3, 6)!r},{rng.uniform(-3, 6)!r}"
            args = ["zoom", cfg, "--out", folder / "out", "-q", "--center", centre, "--depth",
                    repr(rng.choice([0.5, 2.0, 20.0])), "--frames", "4", "--size", "16x16", "--allow-noise"]
        code, err = run(args, f"config {i}: {raw} {args[0]} window {window}")
        codes.append(code)
        if code == 0 and args[0] == "render":
            npz = next((folder / "out").glob("*.npz"))
            check_values(npz, raw, window)
        assert {p.name for p in folder.iterdir()} <= {"c.yaml", "out"}
    assert snapshot(outside) == before
    assert 0 in codes and 2 in codes  # both kinds were exercised


# --------------------------------------------------------------------------- output folders

FILE_FAULTS = ["fifo", "dev_zero", "link_out", "dir", "truncate", "garbage", "empty"]
FOLDER_FAULTS = ["link_out_empty", "link_out_copy"]


def _targets(out: Path) -> tuple[list[Path], list[Path]]:
    files = [p for p in sorted(out.rglob("*")) if p.is_file() and not p.is_symlink()]
    folders = [p for p in sorted(out.rglob("*")) if p.is_dir() and not p.is_symlink()]
    return files, folders


def _break_file(path: Path, fault: str, outside: Path, rng: random.Random) -> None:
    data = path.read_bytes()
    path.unlink()
    if fault == "fifo":
        os.mkfifo(path)
    elif fault == "dev_zero":
        path.symlink_to("/dev/zero")
    elif fault == "link_out":  # a file outside --out that looks like the real one
        decoy = outside / f"decoy_{rng.randrange(10**9)}{path.suffix}"
        decoy.write_bytes(data[: len(data) // 2])
        path.symlink_to(decoy)
    elif fault == "dir":
        path.mkdir()
    elif fault == "truncate":
        path.write_bytes(data[: rng.randrange(max(len(data), 1))])
    elif fault == "garbage":
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
    else:
        path.write_bytes(b"")


def _break_folder(path: Path, fault: str, outside: Path, rng: random.Random) -> None:
    import shutil

    elsewhere = outside / f"folder_{rng.randrange(10**9)}"
    if fault == "link_out_copy":  # the same files, but outside --out
        shutil.copytree(path, elsewhere)
    else:
        elsewhere.mkdir()
    shutil.rmtree(path)
    path.symlink_to(elsewhere, target_is_directory=True)


def test_fuzz_output_folders(tmp_path):
    """A finished (or sharded) job's folder with a file or folder swapped for a FIFO, /dev/zero, a link
    out of --out, a directory, or damaged bytes: every command ends (0 or 2, one line), nothing outside
    --out is created or changed."""
    import shutil

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({**BASE, "resolution": "16x16"}))
    pristine = {}
    for kind, extra in (("render", []), ("shard", ["--shard", "0/2"])):
        out = tmp_path / f"pristine_{kind}"
        assert run(["render", cfg, "--out", out, "-q", *extra], kind)[0] == 0
        pristine[kind] = out
    rng = random.Random(2929)
    outside = tmp_path / "outside"
    outside.mkdir()
    for i in range(60):
        kind = rng.choice(sorted(pristine))
        out = tmp_path / f"o{i}"
        shutil.copytree(pristine[kind], out, symlinks=True)
        files, folders = _targets(out)
        if rng.random() < 0.7 or not folders:
            victim, fault = rng.choice(files), rng.choice(FILE_FAULTS)
            _break_file(victim, fault, outside, rng)
        else:
            victim, fault = rng.choice(folders), rng.choice(FOLDER_FAULTS)
            _break_folder(victim, fault, outside, rng)
        before = snapshot(outside)
        command = rng.choice([["render", cfg, "--out", out, "-q"], ["status", out], ["assemble", out],
                              ["render", cfg, "--out", out, "-q", "--shard", "1/2"], ["dimension", out]])
        run(command, f"case {i}: {victim.relative_to(out)} -> {fault}; {command[0]}")
        assert snapshot(outside) == before, (i, str(victim.relative_to(out)), fault, command)


# --------------------------------------------------------------------------- manifests

def test_fuzz_manifests_through_assemble_and_status(tmp_path):
    """Generated bad manifests in a real sharded job's folder: ``assemble`` and ``status`` refuse each
    in one line (exit 2) and change nothing in the folder; the pristine manifest still assembles."""
    import shutil

    from test_manifests import bad_manifests

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({**BASE, "resolution": "16x16"}))
    pristine = tmp_path / "pristine"
    assert run(["render", cfg, "--out", pristine, "-q", "--shard", "0/1"], "sharded render")[0] == 0
    (manifest,) = (pristine / "jobs").glob("*.json")
    base = json.loads(manifest.read_text())
    out = tmp_path / "out"
    for i, bad in enumerate(bad_manifests(2929, 120, bases=[base])):
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(pristine, out)
        (out / "jobs" / manifest.name).write_text(json.dumps(bad))
        before = snapshot(out)
        command = ["assemble", out] if i % 2 == 0 else ["status", out]
        code, err = run(command, f"manifest {i}: {json.dumps(bad)[:300]}")
        if command[0] == "assemble":
            assert code == 2, (i, code, err)
        assert snapshot(out) == before, (i, command[0])
    shutil.rmtree(out)
    shutil.copytree(pristine, out)
    assert run(["assemble", out, "-q"], "pristine assemble")[0] == 0
