"""Job manifests are checked as strictly as the options they record (issue 29), before anything is written.

``assemble`` and ``status`` read ``OUT/jobs/*.json`` long after the command that wrote it;
an edited or damaged manifest must give one ``error:`` line naming the file and the field,
exit 2, and leave every file in OUT as it was.  :func:`bad_manifests` (seeded, importable)
makes a few hundred invalid manifests from valid ones; they are checked in-process through
the library, the CLI cases on a real tiny render and zoom.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fractaltrain.cli import app
from fractaltrain.config import config_from_dict
from fractaltrain.errors import InputError
from fractaltrain.zoom.options import NOT_RECORDED, ZoomOptions
from fractaltrain.compute.jobs import Manifest, check_manifest

TINY = {"name": "t", "network": {"width": 2}, "training": {"steps": 5}, "resolution": "16x16", "tile": 8}
ZOOM_FLAGS = ["--frames", "4", "--size", "16x16", "--depth", "1", "--center", "1.5,1.5"]


def _key(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(20))


def valid_manifests() -> list[dict]:
    """One valid manifest of each kind (render, ensemble member render, ensemble, zoom), as parsed JSON.

    Built without training anything: the grid keys are made up, which only a replay
    (``assemble``) can tell; :func:`fractaltrain.compute.jobs.check_manifest` accepts them.
    """
    rng = random.Random(0)
    plain = config_from_dict(TINY).to_dict()
    ens = config_from_dict({**TINY, "name": "e", "ensemble": 2}).to_dict()
    member = {**ens, "name": "e_member1"}
    zopts = {k: v for k, v in asdict(ZoomOptions(frames=4, size=(16, 16), depth=1.0, center=(1.5, 1.5))).items()
             if k not in NOT_RECORDED}
    zopts["size"], zopts["center"] = list(zopts["size"]), list(zopts["center"])
    out = [
        {"kind": "render", "name": "t", "config": plain, "options": {"palette": "spectral"}, "grids": [_key(rng)],
         "shards": 1},
        {"kind": "render", "name": "e_member1", "config": member, "options": {"palette": "gray", "member": 1},
         "grids": [_key(rng)], "shards": 3},
        {"kind": "ensemble", "name": "e", "config": ens, "options": {"palette": "puor"},
         "grids": [_key(rng), _key(rng)], "shards": 2},
        {"kind": "zoom", "name": "t", "config": plain, "options": zopts, "grids": [_key(rng) for _ in range(5)],
         "shards": 1},
    ]
    return json.loads(json.dumps(out))  # exactly what a reader gets back


NAN, INF = float("nan"), float("inf")
GARBAGE = [None, [], {}, [1, 2], {"a": 1}, "", "x", True, NAN, -INF, [[[[[]]]]], {"": {"": {"": None}}}]
# bad values of each recorded option: wrong types, out of range, non-finite, wrong nesting
BAD_OPTIONS = {
    "frames": [10**9, 0, -1, 2.5, 300.0, "300", True, 10**40, NAN],
    "fps": [0, -30, 1e9, NAN, INF, "30", True, [30]],
    "size": [["16", "16"], [15, 16], [16], [16, 16, 16], "16x16", 16, [0, 16], [10**6, 16], [16.5, 16],
             {"w": 16, "h": 16}, [True, 16]],
    "depth": [0, -1, 41, 1e300, NAN, INF, "1", None, [1]],
    "center": [[NAN, 0.0], [0.0, INF], [1.0], "1.5,1.5", {"x": 1, "y": 1}, None, [True, 1.0], ["1", "2"]],
    "auto_center": [1, "false", None, 0.0],
    "factor": [1.0, 17, NAN, -2, "2", None],
    "palette": ["neon", "", 3, None, ["gray"], "spectral\x00"],
    "crf": [-1, 52, 18.5, "18", True, None],
    "codec": ["h264", "", 264, None, ["libx264"]],
    "preset": ["fastest", "", 1, None],
    "frame_range": [[3, 1], [0, 10**9], [-1, 2], [0], "0:4", [0.0, 4], {"a": 0}, [0, "4"]],
    "overlay": [1, "yes", None],
    "preview": [True, 1, "no"],
    "seed": [-1, 1.5, "0", None, True],
    "video": [1, "true", None],
}
BAD_RENDER_OPTIONS = {"palette": BAD_OPTIONS["palette"], "member": [-1, 2, 99, 1.0, "1", True, [1]]}
BAD_TOP = {
    "kind": ["video", "", None, 3, ["zoom"]],
    "name": ["", "../x", "-x", "a" * 101, None, 3],
    "grids": ["abc", [1], ["XYZ"], None, {"a": 1}, [["0" * 20]]],
    "shards": [0, -1, 1.5, "1", True, None, 10**7],
    "config": [None, [], "x", 3],
    "options": [None, [], "x", 3],
}
BAD_CONFIG = [  # (path, value): config values the config file would refuse
    (("training", "steps"), 10**12), (("training", "steps"), "many"), (("training", "steps"), 0),
    (("resolution",), "abc"), (("resolution",), ["16", "x"]), (("resolution",), 10**6), (("readout",), "bogus"),
    (("network",), [2]), (("network", "width"), -2), (("network", "width"), NAN), (("tile",), 3),
    (("axes", "x", "range"), [6.0, -3.0]), (("axes", "x", "range"), [NAN, 1.0]), (("axes",), "x"),
    (("bogus_key",), 1), (("name",), "other"), (("name",), None), (("rng",), "mt19937"),
    (("training", "bogus"), 1), (("data", "size"), -5),
]


def _mutate(m: dict, rng: random.Random) -> None:
    """One change that makes ``m`` invalid, whatever else is already wrong with it."""
    what = rng.random()
    opts = m.get("options")
    if what < 0.45 and isinstance(opts, dict):
        table = BAD_OPTIONS if m.get("kind") == "zoom" else BAD_RENDER_OPTIONS
        field = rng.choice(sorted(table))
        op = rng.random()
        if op < 0.7:
            # null and two small numbers are valid here (no frame range; a centre; no member)
            pool = table[field] + ([] if field in ("frame_range", "center", "member") else GARBAGE[:6])
            opts[field] = copy.deepcopy(rng.choice(pool))
        elif op < 0.85 and field in opts and field != "member":
            del opts[field]
        else:
            opts[rng.choice(["threads", "steps", "window", "ensemble", "resolution", "Frames", "x" * 300])] = \
                copy.deepcopy(rng.choice(GARBAGE))
    elif what < 0.65 and isinstance(m.get("config"), dict):
        path, value = rng.choice(BAD_CONFIG)
        d = m["config"]
        for k in path[:-1]:
            if not isinstance(d.get(k), dict):
                d[k] = {}
            d = d[k]
        d[path[-1]] = copy.deepcopy(value)
    elif what < 0.9:
        field = rng.choice(sorted(BAD_TOP))
        m[field] = copy.deepcopy(rng.choice(BAD_TOP[field]))
    elif what < 0.95:
        del m[rng.choice(sorted(BAD_TOP))]
    else:
        m[rng.choice(["extra", "Kind", "options "])] = copy.deepcopy(rng.choice(GARBAGE))


def bad_manifests(seed: int, count: int, bases: list[dict] | None = None) -> list[dict]:
    """``count`` invalid job manifests (parsed JSON), the same for the same ``seed``.

    Each is a valid manifest (of ``bases``, default :func:`valid_manifests`) with one to
    three changes, every one of which alone makes it invalid: a recorded option of the
    wrong type, out of range, non-finite or wrongly nested; a missing or unknown key; a
    config value the config file would refuse; a bad kind, name, grid list or shard count.
    """
    rng = random.Random(seed)
    if bases is None:
        bases = valid_manifests()
        bases += [b for b in bases if b["kind"] == "zoom"] * 2  # the most options to get wrong
    out = []
    for _ in range(count):
        m = copy.deepcopy(rng.choice(bases))
        for _ in range(rng.choice((1, 1, 2, 3))):
            if not isinstance(m, dict):
                break
            _mutate(m, rng)
        if rng.random() < 0.03:
            m = rng.choice([[m], "manifest", None, 3])  # not even an object
        out.append(m)
    return out


def test_valid_manifests_pass():
    for m in valid_manifests():
        assert isinstance(check_manifest(m), Manifest)


def test_generated_bad_manifests_raise_input_errors_only():
    seen = set()
    for i, m in enumerate(bad_manifests(29, 400)):
        with pytest.raises(InputError) as info:  # any other exception type fails the test
            check_manifest(m)
        text = str(info.value)
        assert "\n" not in text and 0 < len(text) <= 400, (i, text)
        seen.add(text.split(":")[0].split(" ")[0])
    assert json.dumps(bad_manifests(7, 50)) == json.dumps(bad_manifests(7, 50))
    assert {"options.frames", "options.size", "options.fps", "options.center", "options.frame_range",
            "options.palette", "options.member", "config.training.steps", "fields", "shards", "grids"} <= seen, seen


# ---- through the CLI, on real jobs --------------------------------------------------------------------


def cli(*args):
    r = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` but the job manifests: its mtime, size and contents' hash."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.parent.name != "jobs":
            st = p.stat()
            out[str(p.relative_to(folder))] = (st.st_mtime_ns, st.st_size, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """A finished tiny render and zoom (shard 0/1: the manifests ``assemble`` replays)."""
    root = tmp_path_factory.mktemp("manifests")
    cfg = root / "t.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    made = {}
    for kind, args in (("render", ["render", cfg, "--out", root / "render"]),
                       ("zoom", ["zoom", cfg, "--out", root / "zoom", "--keyframes-only", *ZOOM_FLAGS])):
        code, _, err = cli(*args, "-q", "--shard", "0/1")
        assert code == 0, err
        out = args[3]
        (path,) = (out / "jobs").glob("*.json")
        made[kind] = (out, path, json.loads(path.read_text()))
    return made


def _set(d: dict, path: str, value):
    keys = path.split(".")
    for k in keys[:-1]:
        d = d[k]
    if value is DELETE:
        del d[keys[-1]]
    else:
        d[keys[-1]] = value


DELETE = object()
ZOOM_CASES = [  # (field path, bad value, words the error names)
    ("options.frames", 10**9, "options.frames: must be between 1 and 1000000"),
    ("options.frames", -3, "options.frames"),
    ("options.frames", 4.0, "options.frames: expected a whole number"),
    ("options.frames", "4", "options.frames: expected a whole number"),
    ("options.frames", True, "options.frames"),
    ("options.fps", NAN, "options.fps"),
    ("options.fps", 1e6, "options.fps: must be a number between 0.01 and 1000"),
    ("options.size", DELETE, "options: missing size"),
    ("options.size", ["16", "16"], "options.size[0]"),
    ("options.size", [15, 16], "options.size: width and height must be even"),
    ("options.size", {"w": 16}, "options.size"),
    ("options.palette", "neon", "options.palette: must be one of"),
    ("options.codec", ["libx264"], "options.codec"),
    ("options.crf", 99, "options.crf"),
    ("options.depth", "1", "options.depth"),
    ("options.depth", 1e9, "options.depth"),
    ("options.center", [INF, 1.5], "options.center[0]"),
    ("options.frame_range", [0, 10**9], "options.frame_range"),
    ("options.overlay", "yes", "options.overlay"),
    ("options.threads", 2, "options.threads: unknown key"),
    ("options", [1, 2], "config and options must be JSON objects"),
    ("config.training.steps", 10**12, "config.training.steps"),
    ("config.network", [2], "config.network"),
    ("config.resolution", "big", "config.resolution"),
    ("shards", "1", "shards"),
    ("grids", [1, 2], "grids"),
]
RENDER_CASES = [
    ("options.palette", "neon", "options.palette: must be one of"),
    ("options.palette", 3, "options.palette: expected a string"),
    ("options.palette", DELETE, "options: missing palette"),
    ("options.member", 0, "options.member"),
    ("options.member", "0", "options.member"),
    ("options.steps", 20, "options.steps: unknown key"),
    ("config.readout", "loss", "config.readout"),
    ("config.name", "other", "config.name"),
    ("config.axes.x.range", [1.0, NAN], "config.axes.x.range"),
    ("kind", "ensemble", "config.ensemble"),
]


def _assert_refused(out: Path, path: Path, manifest: dict, needle: str, command: str):
    before = snapshot(out)
    good = path.read_bytes()
    try:
        path.write_text(json.dumps(manifest))
        code, _, err = cli(command, out, *(["-q"] if command == "assemble" else []))
    finally:
        path.write_bytes(good)
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), err
    assert needle in lines[0] and "Traceback" not in err, (needle, lines[0])
    assert snapshot(out) == before
    assert sorted(p.name for p in (out / "jobs").iterdir()) == [path.name]


@pytest.mark.parametrize("field, value, needle", ZOOM_CASES, ids=[f"{c[0]}={c[1]!r:.20}" for c in ZOOM_CASES])
def test_bad_zoom_manifest_is_refused_before_anything_is_written(jobs, field, value, needle):
    out, path, good = jobs["zoom"]
    m = copy.deepcopy(good)
    _set(m, field, value)
    _assert_refused(out, path, m, needle, "assemble")


@pytest.mark.parametrize("field, value, needle", RENDER_CASES, ids=[f"{c[0]}={c[1]!r:.20}" for c in RENDER_CASES])
def test_bad_render_manifest_is_refused_before_anything_is_written(jobs, field, value, needle):
    out, path, good = jobs["render"]
    m = copy.deepcopy(good)
    _set(m, field, value)
    _assert_refused(out, path, m, needle, "assemble")


def test_status_refuses_bad_manifests_the_same_way(jobs):
    out, path, good = jobs["zoom"]
    for field, value, needle in ZOOM_CASES[:3] + ZOOM_CASES[7:9]:
        m = copy.deepcopy(good)
        _set(m, field, value)
        _assert_refused(out, path, m, needle, "status")


@pytest.mark.parametrize("field, value", [("options.depth", 0.5), ("options.factor", 3.0), ("options.size", [16, 12]),
                                          ("options.center", [1.25, 1.5]), ("config.training.steps", 6),
                                          ("grids", ["0" * 20] * 5)])
def test_zoom_manifest_whose_values_give_other_grids_is_refused(jobs, field, value):
    """Valid values that are not the job's: no grid registered, no noise rate measured, nothing rewritten."""
    out, path, good = jobs["zoom"]
    m = copy.deepcopy(good)
    _set(m, field, value)
    _assert_refused(out, path, m, "grids: its config and options give", "assemble")


def test_render_manifest_whose_config_gives_another_grid_is_refused(jobs):
    out, path, good = jobs["render"]
    m = copy.deepcopy(good)
    m["config"]["training"]["steps"] = 6
    _assert_refused(out, path, m, "grids: its config and options give", "assemble")


def test_generated_bad_manifests_of_real_jobs_through_assemble(jobs):
    """A sample of the generator's manifests, from the real jobs' manifests, through the whole command."""
    for kind in ("render", "zoom"):
        out, path, good = jobs[kind]
        for m in bad_manifests(kind == "zoom", 12, bases=[good]):
            _assert_refused(out, path, m, "not a valid job manifest", "assemble")


def test_unchanged_manifests_still_assemble(jobs):
    for kind in ("render", "zoom"):
        out = jobs[kind][0]
        code, text, err = cli("assemble", out, "-q")
        assert code == 0 and "wrote" in text, err
