"""The plan before any work (issue 33): ``--dry-run`` and ``--json`` on render and zoom, the calibration, the
noise guard's bar and the last line that says where the time went."""

import json
import subprocess
import sys

import pytest
import yaml

from fractaltrain.compute.cost import HOUR, JobCost, Phase, Rate, calibrate, sample_table
from fractaltrain.config import config_from_dict
from fractaltrain.problem import build_problem
from fractaltrain.compute.landscape import make_grid
from fractaltrain.window import config_window

TINY = {"name": "tiny", "network": {"width": 4}, "data": {"size": 12}, "training": {"steps": 30},
        "resolution": "48x32", "tile": 16}


def cli(*args):
    return subprocess.run([sys.executable, "-m", "fractaltrain", *map(str, args)], capture_output=True, text=True)


@pytest.fixture()
def tiny_yaml(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(TINY))
    return p


def test_render_dry_run_writes_nothing_and_json_counts_the_work(tmp_path, tiny_yaml):
    out = tmp_path / "out"
    r = cli("render", tiny_yaml, "--out", out, "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert not out.exists()  # a dry run writes nothing, not even the folder
    assert plan["pixels"] == 48 * 32 and plan["pixel_steps"] == 48 * 32 * 30
    assert plan["pixels_stored"] == 0 and plan["pixels_to_compute"] == 48 * 32
    assert plan["disk_bytes"] >= 48 * 32 * 4 * 8
    assert plan["rates"] and plan["rates"][0]["sample_pixels"] <= 48 * 32 // 8 + 16
    assert plan["train_seconds"] is not None and plan["train_seconds"] >= 0
    # after the render, the same plan finds every pixel stored and nothing to train
    r = cli("render", tiny_yaml, "--out", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("plan: render tiny: 48×32;")
    assert r.stdout.strip().splitlines()[-1].startswith("time: ")
    again = json.loads(cli("render", tiny_yaml, "--out", out, "--dry-run", "--json").stdout)
    assert again["pixels_stored"] == again["pixels"] and again["rates"] == [] and again["train_seconds"] == 0


def test_json_needs_dry_run(tmp_path, tiny_yaml):
    r = cli("render", tiny_yaml, "--out", tmp_path / "o", "--json")
    assert r.returncode == 2 and r.stderr.strip().startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_zoom_dry_run_lists_keyframes_and_phases(tmp_path, tiny_yaml):
    out = tmp_path / "z"
    r = cli("zoom", tiny_yaml, "--out", out, "--size", "32x18", "--frames", "8", "--depth", "2",
            "--center", "0.5,1.5", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert not out.exists()
    assert plan["kind"] == "zoom" and len(plan["grids"]) == 8  # ceil(2 / log10 2) + 1 keyframes
    assert {g["width"] for g in plan["grids"]} == {65} and {g["height"] for g in plan["grids"]} == {37}  # aligned
    assert plan["pixels_copied"] > 0.2 * plan["pixels"]
    names = [p["name"] for p in plan["phases"]]
    assert "noise guard" in names and "frames and encoding" in names and "locate" not in names
    text = cli("zoom", tiny_yaml, "--out", out, "--size", "32x18", "--frames", "8", "--depth", "2", "--dry-run")
    assert text.returncode == 0 and "locate" in text.stdout  # no centre: the search runs first, not estimated


def test_zoom_shows_the_noise_guard_and_where_the_time_went(tmp_path, tiny_yaml):
    r = cli("zoom", tiny_yaml, "--out", tmp_path / "z", "--size", "32x18", "--frames", "6", "--depth", "1",
            "--center", "0.5,1.5", "--keyframes-only")
    assert r.returncode == 0, r.stderr
    assert "noise guard" in r.stderr and "keyframes" in r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("time: ") and "keyframes" in last


def test_calibration_samples_runs_of_neighbours_spread_over_every_grid():
    cfg = config_from_dict(TINY)
    pb = build_problem(cfg)
    w = config_window(cfg)
    cx, cy = w.center
    grids = [make_grid(pb, w, 48, 32, 16), make_grid(pb, w.around(cx, cy, 0.5, 0.5), 48, 32, 16)]
    hp, n = sample_table(cfg, grids, 64)
    assert n == 64 and hp.shape[0] == 64
    again, _ = sample_table(cfg, grids, 64)
    assert (hp == again).all()  # the same sample every run
    rate = calibrate(pb, grids, "float64", seconds=0.01, most=32)
    assert rate.sample >= 16 and rate.seconds_per_pixel > 0 and rate.pixel_steps_per_s > 0


def test_over_an_hour_the_plan_says_what_would_help():
    grid = {"width": 1000, "height": 1000, "precision": "float64", "pixels": 10**6, "stored": 0, "tiles": 100, "key": "k"}
    job = JobCost("zoom", "big", [grid] * 20, 500, 1, "cpu", 2, (0, 1), [Rate("float64", 0.01, 64, 500)],
                  [Phase("locate", "the search", None), Phase("frames and encoding", "x", 60.0)])
    assert job.total_seconds() > HOUR
    hints = " ".join(job.suggestions())
    assert "preview" in hints and "half the size" in hints and "shards" in hints and "cuda" in hints
    lines = "\n".join(job.lines())
    assert "plus locate" in lines and "over an hour" in lines
    small = JobCost("render", "s", [dict(grid, pixels=100)], 10, 1, "cpu", 2, (0, 1), [Rate("float64", 1e-4, 64, 10)])
    assert small.suggestions() == []
