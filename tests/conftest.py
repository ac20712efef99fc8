import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


#: Tests that run for minutes on their own (a SLURM cluster's self-test, headless Chromium): started
#: first, so that the worker processes (pytest-xdist) share the rest of the suite while they run,
#: instead of waiting on them at the end.
LONG_FIRST = ("test_slurm.py", "test_explore_browser.py")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: Path(str(item.fspath)).name not in LONG_FIRST)
