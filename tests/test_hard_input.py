"""Hard input and faults (issue 13): every case gives exit 2 and one line, nothing escapes --out,
nothing damaged is trusted, no traceback.

Most cases run the CLI in-process (typer's CliRunner), so a few hundred of them take seconds.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from fractaltrain.cli import app
from fractaltrain.config import ConfigError, config_from_dict, load_config
from fractaltrain.errors import short

ROOT = Path(__file__).resolve().parents[1]
TINY = {"network": {"width": 2}, "training": {"steps": 5}, "resolution": "16x16", "tile": 8}


def cli(*args, cwd: Path | None = None):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    runner = CliRunner()
    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        r = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)
    return r.exit_code, r.stdout, r.stderr


def assert_one_line_error(code, err, *needles):
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def write_cfg(path: Path, raw) -> Path:
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
    return path


def listing(folder: Path) -> set:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# --------------------------------------------------------------------------- security and data loss


def test_dot_names_cannot_escape_out(tmp_path):
    (tmp_path / "secout").mkdir()
    (tmp_path / "secout" / "proj.png").write_bytes(b"precious")
    cfg = write_cfg(tmp_path / "..yaml", "resolution: 16x16\n")
    before = listing(tmp_path)
    code, _, err = cli("render", cfg, "--out", tmp_path / "secout" / "proj", "-q")
    assert_one_line_error(code, err, "name")
    assert listing(tmp_path) == before and (tmp_path / "secout" / "proj.png").read_bytes() == b"precious"
    for bad in [".", "..", "../x", "a/b", ".hidden", "x" * 101, "", "a\0b"]:
        with pytest.raises(ConfigError, match="^name:"):
            config_from_dict({**TINY, "name": bad})


def test_names_keep_their_dots_and_never_swap_suffixes(tmp_path):
    out = tmp_path / "o"
    for name in ("run.a", "x.png"):
        code, _, err = cli("render", write_cfg(tmp_path / f"{name}.yaml", {**TINY, "name": name}), "--out", out, "-q")
        assert code == 0, err
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    assert files == ["run.a.json", "run.a.npz", "run.a.png", "x.png.json", "x.png.npz", "x.png.png"]


def test_same_name_other_job_is_refused_same_job_reruns(tmp_path):
    out = tmp_path / "o"
    a = write_cfg(tmp_path / "a.yaml", {**TINY, "name": "run"})
    b = write_cfg(tmp_path / "b.yaml", {**TINY, "name": "run", "training": {"steps": 7}})
    assert cli("render", a, "--out", out, "-q")[0] == 0
    png = (out / "run.png").read_bytes()
    code, _, err = cli("render", b, "--out", out, "-q")
    assert_one_line_error(code, err, "run.json", "another render")
    assert (out / "run.png").read_bytes() == png
    assert cli("render", a, "--out", out, "-q", "--palette", "gray")[0] == 0  # same pixels: recoloured in place
    (out / "run.json").write_text("not json")
    assert_one_line_error(*cli("render", a, "--out", out, "-q")[::2], "not a fractaltrain sidecar")


def test_nothing_is_written_outside_out(tmp_path):
    parent = tmp_path / "parent"
    parent.mkdir()
    cfg = write_cfg(tmp_path / "c.yaml", {**TINY, "name": "c"})
    before = listing(tmp_path)
    assert cli("render", cfg, "--out", parent / "out", "-q", cwd=parent)[0] == 0
    after = listing(tmp_path)
    assert all(p.startswith("parent/out") for p in after - before), after - before


# --------------------------------------------------------------------------- stores verified on read


def _tile_files(out: Path) -> list[Path]:
    return sorted((out / "tiles").glob("*/*.npz"))


def test_damaged_tiles_are_missing_everywhere_and_recomputed(tmp_path):
    out = tmp_path / "o"
    cfg = write_cfg(tmp_path / "t.yaml", {**TINY, "name": "t"})
    assert cli("render", cfg, "--out", out, "-q", "--shard", "0/1")[0] == 0
    tiles = _tile_files(out)
    assert len(tiles) == 4
    tiles[0].write_bytes(tiles[0].read_bytes()[:200])  # truncated
    with np.load(tiles[1]) as z:  # rewritten with other values but the right key
        np.savez(tiles[1], out=z["out"] + 1.0, key=z["key"], checksums=z["checksums"])
    (tiles[2].parent / "stray.npz").write_bytes(b"junk")
    code, text, _ = cli("status", out)
    assert code == 0 and "2/4 tiles, 2 missing" in text
    code, _, err = cli("assemble", out, "-q")
    assert code == 1 and "2 tile(s) missing" in err
    assert cli("render", cfg, "--out", out, "-q")[0] == 0  # a rerun recomputes exactly those
    assert "4/4 tiles, 0 missing" in cli("status", out)[1]
    meta = json.loads((out / "t.json").read_text())
    assert meta["timing"]["tiles_computed"] == 2


def test_status_and_assemble_with_damaged_folders(tmp_path):
    out = tmp_path / "o"
    cfg = write_cfg(tmp_path / "g.yaml", {**TINY, "name": "g"})
    assert cli("render", cfg, "--out", out, "-q")[0] == 0
    grid_json = next((out / "tiles").glob("*/grid.json"))
    grid_json.write_text("{garbage")
    code, text, err = cli("status", out)
    assert code == 0 and "grid.json missing or damaged" in text and not err
    grid_json.unlink()
    assert "without a valid grid.json" in cli("status", out)[1]
    jobs = out / "jobs"
    (jobs / "zz-weird.json").write_text(json.dumps({"kind": "video", "name": "g", "config": {}, "options": {},
                                                    "grids": [], "shards": 1}))
    code, text, err = cli("assemble", out, "-q")  # the good job is still assembled, the bad file named
    assert code == 2 and "g: wrote" in text
    assert err.strip().splitlines() == [f"error: {jobs / 'zz-weird.json'}: not a valid job manifest: unknown job "
                                        "kind 'video' (expected render, zoom or ensemble); skipped"]
    for p in jobs.glob("g-*.json"):
        p.unlink()
    assert_one_line_error(*cli("assemble", out)[::2], "zz-weird.json", "unknown job kind")
    assert_one_line_error(*cli("status", out)[::2], "zz-weird.json")
    assert_one_line_error(*cli("status", tmp_path / "nope")[::2], "no such folder")
    assert_one_line_error(*cli("status", cfg)[::2], "not a folder")


def test_damaged_keyframe_is_refused_by_dimension_and_rewritten_by_rerun(tmp_path):
    out = tmp_path / "o"
    cfg = write_cfg(tmp_path / "z.yaml", {**TINY, "name": "z", "resolution": "32x32"})
    run = ["zoom", cfg, "--out", out, "-q", "--keyframes-only", "--frames", "4", "--size", "16x16", "--depth",
           "1", "--center", "1.5,1.5"]
    code, text, err = cli(*run)
    assert code == 0 and "shard" not in text and "None" not in text, (text, err)
    kf = out / "keyframes" / "z_kf001.npz"
    good = kf.read_bytes()
    with np.load(kf) as z:
        arrays = dict(z)
    arrays["measure"] = -arrays["measure"]  # valid zip, intact grid key, wrong values
    np.savez(kf, **arrays)
    assert_one_line_error(*cli("dimension", out)[::2], "z_kf001.npz", "checksum")
    code, text, _ = cli("assemble", out, "-q")
    assert code == 0 and "None" not in text
    assert kf.read_bytes() == good  # rewritten from the tiles
    assert cli("dimension", out)[0] == 0


# --------------------------------------------------------------------------- configs


@pytest.mark.parametrize("raw,needle", [
    ({**TINY, "axes": {"x": {"param": "lr_input"}, "y": {"param": "lr"}}}, "axes.y.param"),
    ({**TINY, "axes": {"x": {"param": "lr_layer_0"}, "y": {"param": "lr_input"}}}, "axes.y.param"),
    ({**TINY, "axes": {"x": {"param": "lr_output"}, "y": {"param": "lr_layer_1"}}}, "axes.y.param"),
    ({**TINY, "axes": {"x": {"param": "lr"}, "y": {"param": "init_scale"}}, "fixed": {"lr_input": 1}}, "fixed.lr_input"),
    ({**TINY, "fixed": {"lr": 1}}, "fixed.lr"),  # both layers are on the axes
    ({**TINY, "axes": {"x": {"scale": "linear", "range": [-1e308, 1e308]}}}, "axes.x.range"),
    ({**TINY, "axes": {"y": {"range": [0, 1e-20]}}}, "axes.y.range"),
    ({**TINY, "training": {"steps": 1e12}}, "training.steps: must be <= 100000000"),
    ({**TINY, "training": {"steps": 1e8}, "resolution": "4096x4096"}, "pixel-steps"),
    ({**TINY, "network": {"width": 1e6}}, "memory"),
    ({**TINY, "network": {"input_dim": 1e6}}, "memory"),
    ({**TINY, "data": {"size": 1e12}}, "memory"),
    ({**TINY, "resolution": "65536x65536"}, "memory"),
])
def test_silently_wrong_or_unbounded_configs_are_refused(raw, needle):
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as exc:
        config_from_dict(raw)
    assert needle in str(exc.value) and "\n" not in str(exc.value)
    assert time.perf_counter() - t0 < 5


def test_window_flag_checks_the_float64_floor(tmp_path):
    cfg = write_cfg(tmp_path / "w.yaml", TINY)
    assert_one_line_error(*cli("render", cfg, "--window", "0,1,0,1e-300", "--out", tmp_path / "o")[::2],
                          "--window", "ulps")
    assert not (tmp_path / "o").exists()


def _bomb(levels=9):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 9) + "]")
    return "\n".join(lines) + f"\nnetwork: {{width: *{chr(96 + levels)}}}\n"


@pytest.mark.parametrize("text,needle", [
    ("training: {steps: 50, steps: 7}\n", "steps: duplicate key"),
    ("resolution: 16x16\nresolution: 32x32\n", "resolution: duplicate key (lines 1 and 2)"),
    (_bomb(), "expands to more than"),
    ("network: {width: &w [1, 2]}\nfixed: *w\n", "network.width"),
    ("a: &a [*a]\n", "config"),
    ("[" * 5000 + "]" * 5000, "config"),
    ("name: " + "x" * 100_000 + "\n", "name"),
    ("network: {width: " + "9" * 5000 + "}\n", "config"),
    ("description: {a: 1}\n", "description"),
    ("", "is empty"),
    ("# only a comment\n", "is empty"),
    ("{}\n", "is empty"),
    ("just a string\n", "config"),
    ("- 1\n- 2\n", "config"),
    ("? [a, b]\n: 1\n", "config"),
    ("network: !!python/object:os.system {}\n", "config"),
    ("resolution: 16x16\ntab:\t1\n\t- x", "config"),
])
def test_bad_yaml_gives_one_short_line(tmp_path, text, needle):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    t0 = time.perf_counter()
    code, _, err = cli("render", p, "--out", tmp_path / "o", "-q")
    assert time.perf_counter() - t0 < 10
    assert_one_line_error(code, err, needle)
    assert len(err) < 600
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("data", [
    "name: café\n".encode("latin-1"),
    "name: x\n".encode("utf-16"),
    bytes(range(256)),
    b"name: x\x00y\n",
])
def test_config_that_is_not_utf8_text(tmp_path, data):
    p = tmp_path / "c.yaml"
    p.write_bytes(data)
    assert_one_line_error(*cli("render", p, "--out", tmp_path / "o")[::2], "c.yaml")


def test_config_bom_is_accepted_and_big_files_refused(tmp_path):
    p = tmp_path / "bom.yaml"
    p.write_bytes("\ufeffresolution: 16x16\n".encode("utf-8"))
    assert load_config(p).resolution == (16, 16)
    p.write_bytes(b"# " + b"x" * (1 << 20) + b"\n")
    assert_one_line_error(*cli("render", p)[::2], "larger than")
    assert_one_line_error(*cli("render", "/dev/null")[::2], "not a regular file")
    assert_one_line_error(*cli("render", tmp_path)[::2], "not a regular file")


def test_short_never_formats_huge_values():
    deep: list = []
    for _ in range(30):
        deep = [deep] * 10  # 10**30 leaves once expanded: must not be walked
    t0 = time.perf_counter()
    assert len(short(deep)) <= 60 and len(short("x" * 10**7)) <= 60 and len(short(10**100000)) <= 60
    assert time.perf_counter() - t0 < 1


# --------------------------------------------------------------------------- file system, flags, usage


def test_filesystem_errors_are_one_line(tmp_path):
    cfg = write_cfg(tmp_path / "f.yaml", {**TINY, "name": "f"})
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert_one_line_error(*cli("render", cfg, "--out", "")[::2], "--out")
    assert_one_line_error(*cli("render", cfg, "--out", afile)[::2], "--out", "not a folder")
    assert_one_line_error(*cli("render", cfg, "--out", afile / "sub", "-q")[::2], "afile")
    assert_one_line_error(*cli("render", cfg, "--out", tmp_path / ("a" * 300), "-q")[::2], "too long")
    assert_one_line_error(*cli("render", cfg, "--out", "/proc/fractaltrain-test", "-q")[::2], "/proc")
    assert_one_line_error(*cli("locate", cfg, "--out", tmp_path / "o", "--save", tmp_path, "-q")[::2], "--save")
    np.save(tmp_path / "m.npy", np.eye(32, dtype=bool))
    assert_one_line_error(*cli("dimension", tmp_path / "m.npy", "--plot", "/proc/x/y.png")[::2], "/proc/x/y.png")
    assert_one_line_error(*cli("dimension", tmp_path / "m.npy", "--json", afile / "d.json")[::2], "afile")
    assert not list(Path("/proc").glob("fractaltrain-test*"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_out(tmp_path):
    cfg = write_cfg(tmp_path / "f.yaml", {**TINY, "name": "f"})
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert_one_line_error(*cli("render", cfg, "--out", ro)[::2], "--out")
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize("args,needle", [
    ([], "Missing command"),
    (["rendr"], "No such command"),
    (["render"], "render: Missing argument"),
    (["render", "c.yaml", "--bogus"], "No such option"),
    (["render", "c.yaml", "--steps", "abc"], "--steps"),
    (["zoom", "c.yaml", "--fps", "inf"], "--fps"),
    (["zoom", "c.yaml", "--fps", "nan"], "--fps"),
    (["zoom", "c.yaml", "--depth", "nan"], "--depth"),
    (["zoom", "c.yaml", "--size", "33x32"], "--size"),
    (["zoom", "c.yaml", "--center", "inf,1"], "--center"),
    (["zoom", "c.yaml", "--frames", "0"], "--frames"),
    (["zoom", "c.yaml", "--codec", "h264"], "--codec"),
    (["render", "c.yaml", "--shard", "3/2"], "--shard"),
    (["render", "c.yaml", "--palette", "pink"], "--palette"),
    (["render", "c.yaml", "--resolution", "0x5"], "--resolution"),
    (["render", "c.yaml", "--steps", "0"], "--steps"),
    (["render", "c.yaml", "--window", "1,0,0,1"], "--window"),
    (["locate", "c.yaml", "--depth", "99"], "--depth"),
    (["dimension", "m.npy", "--min-size", "nan"], "--min-size"),
    (["dimension", "m.npy", "--stride", "0"], "--stride"),
    (["assemble", "nowhere"], "no such folder"),
    (["status", "c.yaml"], "not a folder"),
])
def test_misuse_of_every_command_is_one_line(tmp_path, args, needle):
    write_cfg(tmp_path / "c.yaml", TINY)
    np.save(tmp_path / "m.npy", np.eye(32, dtype=bool))
    code, _, err = cli(*args, cwd=tmp_path)
    assert_one_line_error(code, err, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "m.npy"]  # nothing was started


def test_usage_errors_through_the_entry_point_are_one_line():
    r = subprocess.run([sys.executable, "-m", "fractaltrain", "render", "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_zoom_recolor_without_keyframes_never_locates(tmp_path):
    cfg = write_cfg(tmp_path / "z.yaml", {**TINY, "name": "z"})
    out = tmp_path / "o"
    t0 = time.perf_counter()
    code, _, err = cli("zoom", cfg, "--out", out, "--recolor", "--frames", "4", "--size", "16x16", "--depth", "1")
    assert_one_line_error(code, err, "--recolor", "never trains")
    assert time.perf_counter() - t0 < 10 and not (out / "tiles").exists()
    code, _, err = cli("zoom", cfg, "--out", out, "--recolor", "--frames", "4", "--size", "16x16", "--depth", "1",
                       "--center", "1.5,1.5")
    assert_one_line_error(code, err, "--recolor", "missing")


def test_stale_partial_encodes_are_removed(tmp_path):
    from fractaltrain.zoom.encoding import remove_stale_partials

    mp4 = tmp_path / "v.mp4"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"v.mp4.{dead.pid}-abcd1234.partial.mp4"
    live = tmp_path / f"v.mp4.{os.getppid()}-abcd1234.partial.mp4"
    other = tmp_path / f"w.mp4.{dead.pid}-abcd1234.partial.mp4"
    for p in (stale, live, other):
        p.write_bytes(b"x")
    remove_stale_partials(mp4)
    assert not stale.exists() and live.exists() and other.exists()


# --------------------------------------------------------------------------- dimension inputs


def test_dimension_reads_masks_and_names_bad_files(tmp_path):
    import imageio.v3 as iio

    n = 128
    mask = np.zeros((n, n), dtype=bool)
    mask[n // 2, :] = True  # a line: dimension 1
    np.save(tmp_path / "mask.npy", mask)
    np.save(tmp_path / "mask_u8.npy", mask.astype(np.uint8))
    iio.imwrite(tmp_path / "mask.png", mask.astype(np.uint8) * 255)
    for f in ("mask.npy", "mask_u8.npy", "mask.png"):
        code, text, err = cli("dimension", tmp_path / f, "--json", tmp_path / "d.json")
        assert code == 0, err
        assert abs(json.loads((tmp_path / "d.json").read_text())["median_local_slope"] - 1.0) < 0.05
    (tmp_path / "t.txt").write_text("hello")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not a zip")
    np.save(tmp_path / "three.npy", np.zeros((2, 2, 2)))
    np.savez(tmp_path / "nomeasure.npz", other=np.zeros((4, 4)))
    np.save(tmp_path / "empty_mask.npy", np.zeros((32, 32), dtype=bool))
    for f, needle in [("t.txt", "not a .npz"), ("bad.npz", "cannot be read"), ("three.npy", "2-D"),
                      ("nomeasure.npz", "'measure'"), ("empty_mask.npy", "no boundary")]:
        assert_one_line_error(*cli("dimension", tmp_path / f)[::2], f, needle)
    assert_one_line_error(*cli("dimension", "/dev/null")[::2], "/dev/null")
    folder = tmp_path / "zoomdir"
    folder.mkdir()
    np.savez(folder / "a.npz", measure=np.zeros((32, 32)))
    assert_one_line_error(*cli("dimension", folder)[::2], "a.npz", "no boundary")  # the file, not "image 0"


# --------------------------------------------------------------------------- fuzz


def _bad_configs(seed: int, count: int):
    """Deterministic bad configs: a valid tiny base with one harmful change each, plus broken files."""
    rng = random.Random(seed)
    junk = [True, -1, 1e400, float("nan"), "x" * 300, [], {}, [1, 2, 3], {"a": 1}, "1e999", -1e308,
            "lol", "💥", 2**70]
    keys = {
        "name": [".", "..", "a/b", "x" * 200, "", " ", "-x", ".x", "a b", 5, None],
        "network.width": junk + [0, None, 10**6, 10**12],
        "network.depth": junk + [0, 1, 10**6],
        "network.nonlinearity": junk + ["sigmoid", "TANH"],
        "network.input_dim": junk + [0, 10**7],
        "network.output_dim": junk + [0, 10**9],
        "network.seed": junk,
        "network.bogus": [1],
        "data.size": junk + [0, 10**12, "paperx"],
        "data.size_multiple": junk + [1e9],
        "data.seed": junk,
        "training.steps": junk + [0, None, 10**12, 1e12],
        "training.batch": junk + [0, 10**6, "half"],
        "training.seed": junk,
        "training.learning_rate": [None, True, 1e400, float("nan"), "fast", [], {}],
        "axes.x.param": junk + ["lr", "momentum", "lr_layer_9", "lr_output"],
        "axes.y.param": junk + ["lr", "lr_input", "lr_layer_0"],
        "axes.x.scale": junk + ["log2"],
        "axes.x.range": junk + [[1, 0], [0, 1e-20], [-400, 0], [-1e308, 1e308], [0], [0, 1, 2], ["a", "b"]],
        "axes.y.range": [[0, 1e-300], [5, 5], [float("inf"), 0]],
        "fixed": [True, -1, 5, "lol", [1], {"momentum": 1}, {"lr_input": 1}, {"lr_output": 2}, {"lr": "x"}],
        "readout": junk + ["accuracy"],
        "resolution": junk + ["0x5", "1x1", "99999x2", "axb", "65536x65536", [0, 0]],
        "tile": junk + [0, 0, 7, -64],
        "description": [1, [], {}],
        "extra_key": [1],
        "axes.z": [{}],
    }
    base = {"name": "fuzz", "network": {"width": 2}, "training": {"steps": 5}, "resolution": "16x16", "tile": 8}
    names = sorted(keys)
    for i in range(count):
        kind = rng.random()
        if kind < 0.8:
            raw = json.loads(json.dumps(base))
            for _ in range(rng.choice([1, 1, 1, 2])):
                key = rng.choice(names)
                value = rng.choice(keys[key])
                *path, last = key.split(".")
                d = raw
                for k in path:
                    d = d.setdefault(k, {})
                d[last] = value
            if key == "axes.y.param" and raw.get("axes", {}).get("x") is None and value == "lr_output":
                value = "lr"  # keep it overlapping
            text = yaml.safe_dump(raw, allow_unicode=True)
            yield i, text.encode()
        elif kind < 0.9:  # broken YAML or bytes
            yield i, rng.choice([
                b"\xff\xfe" + bytes(rng.randrange(256) for _ in range(50)),
                b"training: {steps: 5, steps: 6}\nresolution: 16x16\n",
                b"network: [" * rng.randrange(1, 300),
                _bomb(rng.randrange(6, 10)).encode(),
                b"resolution: 16x16\n" * 2,
                bytes(rng.randrange(128) for _ in range(80)),
            ])
        else:  # valid YAML, wrong structure
            yield i, rng.choice([b"[]", b"42", b"null", b"- a\n- b\n", b"name: x\nnetwork: 5\n",
                                 b"axes: [1, 2]\n", b"training: steps\n", b"fixed: [lr]\n"])


def test_fuzz_bad_configs(tmp_path):
    """A few hundred generated bad configs: each exit 2, one line, no traceback, quickly, nothing written."""
    parent = tmp_path / "parent"
    parent.mkdir()
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(b"")
    before = listing(tmp_path)
    t_all = time.perf_counter()
    n = 0
    for i, data in _bad_configs(seed=13, count=300):
        cfg.write_bytes(data)
        t0 = time.perf_counter()
        code, out, err = cli("render", cfg, "--out", parent / "out", "-q")
        dt = time.perf_counter() - t0
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (i, data[:200], code, err[:500])
        assert "Traceback" not in err and len(err) < 600 and dt < 10, (i, data[:200], dt)
        n += 1
    assert n == 300
    assert listing(tmp_path) == before  # --out was never even created
    assert time.perf_counter() - t_all < 60


def test_help_texts_keep_their_brackets():
    """Help is plain text: bracketed words ("[cuda]", "[default: …]") are not eaten as style tags."""
    runner = CliRunner()
    render_help = runner.invoke(app, ["render", "--help"], terminal_width=200).output
    assert "fractaltrain[cuda]" in render_help
    zoom_help = runner.invoke(app, ["zoom", "--help"], terminal_width=200).output
    assert "[default: 10, or the zoom_target view's depth]" in zoom_help


# ------------------------------------------------------------- unhandled states and unclear messages (issue 29)


def ft(*args, env=None, stdout=subprocess.PIPE, timeout=60):
    """Run ``python -m fractaltrain`` in a fresh process (the entry point's own handling is under test)."""
    return subprocess.run([sys.executable, "-m", "fractaltrain", *map(str, args)], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, env=env, timeout=timeout, cwd=ROOT)


@pytest.mark.parametrize("target", [["p"], [["p"]], 5, 1.5, True, {"x": 1}, {"p": 1}, "q"])
def test_zoom_target_of_the_wrong_type_is_one_line(tmp_path, target):
    raw = {**TINY, "views": {"p": {"x": [0, 1], "y": [0, 1]}}, "zoom_target": target}
    with pytest.raises(ConfigError, match=r"^zoom_target: must be a string naming one of the config's views \('p'\)"):
        config_from_dict(raw)
    if isinstance(target, list):  # through the CLI too: once "internal error (TypeError: unhashable type)"
        code, _, err = cli("zoom", write_cfg(tmp_path / "z.yaml", raw), "--out", tmp_path / "o")
        assert_one_line_error(code, err, "zoom_target", "string")
        assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value", ["0", "abc", "-1", "", "1.5", "9999999"])
def test_bad_numba_num_threads_is_one_line_before_numba_loads(tmp_path, value):
    cfg = write_cfg(tmp_path / "t.yaml", TINY)
    r = ft("render", cfg, "--out", tmp_path / "o", "-q", env=dict(os.environ, NUMBA_NUM_THREADS=value))
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == [r.stderr.strip()] and r.stderr.startswith(f"error: NUMBA_NUM_THREADS={value}:")
    assert "whole number" in r.stderr and not (tmp_path / "o").exists()


@pytest.mark.parametrize("delay", [0.1, pytest.param(0.5, marks=pytest.mark.slow), 1.0,
                                   pytest.param(2.0, marks=pytest.mark.slow)])
def test_ctrl_c_at_any_time_exits_130_in_one_line(tmp_path, delay):
    """Start-up (imports, numba), the first tile and the middle of the job: 130, no traceback, no abort.

    configs/demo.yaml in 8 px tiles on one thread: four kernel calls of about 2 s, so the job is still
    running at 2 s on a fast machine, and Ctrl-C during a tile is answered when that tile returns.
    """
    demo = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    cfg = write_cfg(tmp_path / "demo.yaml", {**demo, "tile": 8})
    proc = subprocess.Popen(
        [sys.executable, "-m", "fractaltrain", "render", str(cfg), "--resolution", "16x16", "--steps", "30000",
         "--threads", "1", "--out", str(tmp_path / "o")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        time.sleep(delay)
        assert proc.poll() is None, "finished before Ctrl-C: make the job longer"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    started = "fractaltrain/" in err.replace("fractaltrain/__init__.py", "")
    if proc.returncode != 130 and "Traceback" in err and not started:
        # no fractaltrain frame: SIGINT came during the interpreter's own start-up (site, runpy), which no
        # handler of ours can cover; only a loaded machine is that slow at 0.1 s
        pytest.skip("Ctrl-C arrived before any fractaltrain code ran")
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Traceback" not in err and "Fatal Python error" not in err, err
    messages = [ln for ln in err.splitlines() if "%|" not in ln and ln.strip()]  # all but the progress bar
    assert len(messages) == 1 and messages[0].startswith("interrupted"), err


def test_full_stdout_is_named_not_an_output(tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    cfg = write_cfg(tmp_path / "f.yaml", {**TINY, "name": "f"})
    with open("/dev/full", "w") as full:
        r = ft("render", cfg, "--out", tmp_path / "o", "-q", stdout=full)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == "error: could not write to standard output: No space left on device", r.stderr
    assert (tmp_path / "o" / "f.png").exists()  # the outputs were fine; only the "wrote ..." line was lost


ARRAYS = {
    "complex": np.ones((16, 16), complex), "timedelta": np.ones((16, 16), "m8[s]"),
    "datetime": np.ones((16, 16), "M8[s]"), "text": np.full((16, 16), "a"), "bytes": np.full((16, 16), b"a"),
    "structured": np.zeros((16, 16), [("a", "f8"), ("b", "i4")]),
}


@pytest.mark.parametrize("kind", sorted(ARRAYS))
def test_dimension_refuses_arrays_that_are_not_real_numbers(tmp_path, kind):
    import warnings

    a = ARRAYS[kind]
    np.savez(tmp_path / "m.npz", measure=a)
    np.savez(tmp_path / "p.npz", p_converged=a)
    np.save(tmp_path / "a.npy", a)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning (or any other) before the error line
        for name, array in (("m.npz", "'measure'"), ("p.npz", "'p_converged'"), ("a.npy", "the array")):
            code, _, err = cli("dimension", tmp_path / name)
            assert_one_line_error(code, err, str(tmp_path / name), array, "expected real numbers")


@pytest.mark.parametrize("a", [np.float64(1.0), np.zeros((2, 16, 16)), np.zeros(16)], ids=["0-d", "3-d", "1-d"])
def test_dimension_refuses_arrays_that_are_not_2d(tmp_path, a):
    np.savez(tmp_path / "m.npz", measure=a)
    np.savez(tmp_path / "p.npz", p_converged=a)
    for name, array in (("m.npz", "'measure'"), ("p.npz", "'p_converged'")):
        assert_one_line_error(*cli("dimension", tmp_path / name)[::2], str(tmp_path / name), array, "2-D")


def test_duplicate_yaml_anchor_is_named(tmp_path):
    cfg = write_cfg(tmp_path / "a.yaml", "network: &net {width: 2}\ndata: &net {size: 12}\ntraining: *net\n")
    code, _, err = cli("render", cfg, "--out", tmp_path / "o")
    assert_one_line_error(code, err, "anchor &net", "lines 1 and 2")


@pytest.mark.parametrize("text, got", [
    ("123", "int 123"), ("[a]", "list ['a']"), ("true", "bool True"), ("null", "null"), ("1.5", "float 1.5"),
])
def test_a_name_that_is_not_a_string_says_so(tmp_path, text, got):
    cfg = write_cfg(tmp_path / "n.yaml", yaml.safe_dump(TINY) + f"name: {text}\n")
    code, _, err = cli("render", cfg, "--out", tmp_path / "o")
    assert_one_line_error(code, err, "name: must be a string (letters, digits", f"got {got}")


def test_zoom_target_as_large_as_the_opening_view_is_one_line(tmp_path):
    cfg = write_cfg(tmp_path / "zt.yaml", {**TINY, "name": "zt", "views": {"whole": {"x": [-3, 6], "y": [-3, 6]}},
                                           "zoom_target": "whole"})
    assert_one_line_error(*cli("zoom", cfg, "--out", tmp_path / "o", "-q", "--frames", "3", "--size", "16x16")[::2],
                          "zoom_target", "whole")
