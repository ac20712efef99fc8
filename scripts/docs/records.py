"""What the docs scripts share: a timestamped log line and their JSON records, written atomically.

The studies (``deep_study.py``, the ``tricks_*.py`` scripts) run for hours and
resume from their records, so a record is replaced in one step (never left
half-written by a killed run) and a missing one reads as ``default``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from fractaltrain.compute.files import atomic_write_bytes


def log(*args) -> None:
    """One progress line on stderr, prefixed with the wall-clock time."""
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


def read_json(path: Path, default):
    """The record at ``path``, or ``default`` when there is none yet."""
    return json.loads(path.read_text()) if path.exists() else default


def write_json(path: Path, record) -> None:
    """Replace the record at ``path`` atomically (sorted keys, one-space indent)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(record, indent=1, sort_keys=True) + "\n").encode())
