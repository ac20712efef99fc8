"""docs/targets.md's generated table is docs/targets.json's rows, and every still it shows exists.

The rows cost CPU-hours, so they are kept in the repository (scripts/docs/target_table.py
resumes from them); this keeps the page and the record from drifting apart.
"""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def target_table():
    spec = importlib.util.spec_from_file_location("target_table", ROOT / "scripts" / "docs" / "target_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_doc_table_is_the_recorded_rows(target_table):
    record = target_table.load_record(ROOT / "docs" / "targets.json")
    text = (ROOT / "docs" / "targets.md").read_text()
    block = text[text.index(target_table.BEGIN):text.index(target_table.END) + len(target_table.END)]
    assert block == target_table.table(record["rows"])
    for r in record["rows"]:
        assert not Path(r["still"]).is_absolute(), r["still"]  # the page links it relative to docs/
        assert (ROOT / "docs" / r["still"]).is_file(), r["still"]
        assert len(r["flip_rates"]) == len(r["dimensions"])
    for g in record["gallery"]:
        assert not Path(g["still"]).is_absolute(), g["still"]
        assert (ROOT / g["still"]).is_file(), g["still"]


def test_the_record_is_written_whole_and_read_back(target_table, tmp_path):
    path = tmp_path / "rows.json"
    assert target_table.load_record(path) == {"rows": [], "gallery": []}
    record = {"rows": [{"config": "relu", "x": 0.1}], "gallery": []}
    target_table.save_record(record, path)
    assert target_table.load_record(path) == record
    assert json.loads(path.read_text()) == record
    assert [p.name for p in tmp_path.iterdir()] == ["rows.json"]
