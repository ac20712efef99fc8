"""Output folders made before the training tricks (issue 32) resume: their tile keys are pinned.

Every grid's tiles live in ``tiles/<key>``, the key a hash of everything that affects the pixels.  New
features add fields to that identity only where they are used, so a config that sets none of them keeps
the key it had and an earlier folder resumes with nothing recomputed.  The keys below are the folder
names that commit 764601c (before issue 32's optimizers, schedules and architectures, and before the
double-double gradient-factor revision) wrote for the same commands; a change that moves them would
silently make every user's earlier folder train again.

A zoom started today places its keyframes on a lattice and so has new grids; a zoom folder made
before keeps its own grids through its sidecar (tests/test_reuse.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fractaltrain.cli import app

SMALL = """\
name: small
network: {width: 8, depth: 2, nonlinearity: tanh, output_dim: 1, seed: 0}
data: {size: 64, seed: 1}
training: {steps: 60, batch: full, seed: 2}
axes:
  x: {param: lr_input, scale: log10, range: [-3, 6]}
  y: {param: lr_output, scale: log10, range: [-3, 6]}
readout: measure
resolution: 64x64
"""

CASES = {
    "render": ([], {"42d11ef0016d2db61056"}),
    # 64 points: a power of two, so the double-double factor did not change and the key stays.
    "double-double": (["--window", "1.2,1.20000000000001,2.1,2.10000000000001"], {"43d60a44b98d169bdd51"}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_config_without_tricks_keeps_the_tile_keys_it_had_before(tmp_path: Path, case: str):
    cfg = tmp_path / "small.yaml"
    cfg.write_text(SMALL)
    args, keys = CASES[case]
    r = CliRunner().invoke(app, ["render", str(cfg), "--out", str(tmp_path / "out"), "--threads", "1", *args])
    assert r.exit_code == 0, r.output
    assert {p.name for p in (tmp_path / "out" / "tiles").iterdir()} == keys


def test_the_new_keys_at_their_defaults_keep_the_key_too(tmp_path: Path):
    """Writing out what the defaults are (sgd, a constant rate, no residual, no norm) trains the same
    bits, so it is the same grid."""
    cfg = tmp_path / "small.yaml"
    cfg.write_text(SMALL.replace("batch: full, seed: 2}", "batch: full, seed: 2, optimizer: sgd, schedule: constant}")
                   .replace("output_dim: 1, seed: 0}", "output_dim: 1, seed: 0, residual: false, norm: none}"))
    r = CliRunner().invoke(app, ["render", str(cfg), "--out", str(tmp_path / "out"), "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert {p.name for p in (tmp_path / "out" / "tiles").iterdir()} == CASES["render"][1]
