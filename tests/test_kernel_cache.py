"""The kernel's disk cache is keyed on every source the compiled code depends on."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import fractaltrain
from fractaltrain.compute.kernel import cache

PACKAGE = Path(fractaltrain.__file__).parent

# Calls the general path's activation (tanh64 inlined from tanh.py) and reports
# the result and whether the compiled code came from the disk cache.
PROBE = """
import json, sys
import numpy as np
from fractaltrain.compute.kernel import general
x = np.array([0.1, 0.7, -2.0, 30.0] * 2)
a, d = np.empty_like(x), np.empty_like(x)
general._activate(x, a, d, x.size, 0)
st = general._activate.stats
print(json.dumps({"a": a.tolist(), "hits": sum(st.cache_hits.values()), "misses": sum(st.cache_misses.values())}))
"""


def test_sources_are_the_whole_kernel_package_and_the_columns():
    names = {p.name for p in cache.SOURCES}
    assert {"tanh.py", "vtanh.py", "matmul.py", "general.py", "depth2.py", "block.py", "driver.py", "ir.py"} <= names
    assert (PACKAGE / "columns.py") in cache.SOURCES
    assert {p.name for p in (PACKAGE / "compute" / "kernel").glob("*.py")} <= names


def test_hash_changes_with_any_source(tmp_path):
    copies = []
    for p in cache.SOURCES:
        copies.append(tmp_path / p.name)
        shutil.copyfile(p, copies[-1])
    before = cache.sources_hash(tuple(copies))
    assert before == cache.sources_hash(cache.SOURCES)
    tanh = tmp_path / "tanh.py"
    tanh.write_text(tanh.read_text() + "\n")
    assert cache.sources_hash(tuple(copies)) != before


def _probe(root: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("NUMBA_DISABLE_JIT", None)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_editing_tanh_recompiles_code_that_inlines_it(tmp_path):
    """numba alone stamps a function with its own file only: general.py is unchanged, yet its code must be rebuilt."""
    shutil.copytree(PACKAGE, tmp_path / "fractaltrain", ignore=shutil.ignore_patterns("__pycache__"))
    first = _probe(tmp_path)
    assert first["misses"] == 1
    again = _probe(tmp_path)
    assert again == {**first, "hits": 1, "misses": 0}  # loaded from the disk cache

    tanh = tmp_path / "fractaltrain" / "compute" / "kernel" / "tanh.py"
    text = tanh.read_text()
    line = "    return math.copysign(hi + (lo - (0.0 if small else corr)), x)"
    assert line in text
    tanh.write_text(text.replace(line, "    return 2.0 * math.copysign(hi + (lo - (0.0 if small else corr)), x)"))
    edited = _probe(tmp_path)
    assert edited["misses"] == 1 and edited["hits"] == 0
    assert edited["a"] == [2.0 * v for v in first["a"]]
