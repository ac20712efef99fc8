"""numba options of every kernel function, and a disk cache keyed on all the kernel's sources.

numba's on-disk cache (``cache=True``) stamps each compiled function with the
contents of the one file that defines it.  The kernel's functions are built from
several files: ``tanh64`` is inlined from tanh.py, the vector intrinsics of
vtanh.py and matmul.py emit their IR into the callers, and the constants of
columns.py are frozen into the code.  Changing any of those would leave a stale
compiled kernel that numba still loads.  So every function compiled with
:data:`JIT` gets, instead of its own file's stamp, a hash of all the files it
can depend on (:data:`SOURCES`): editing any of them recompiles everything on
the next call.  Where the cache lives (``__pycache__`` next to the sources,
``NUMBA_CACHE_DIR``, a user-wide folder) is still decided by numba.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from numba.core import caching

_HERE = Path(__file__).resolve().parent

#: The files whose contents key the cache: every module of the kernel package,
#: and the result columns it writes.
SOURCES = tuple(sorted(_HERE.glob("*.py"))) + (_HERE.parents[1] / "columns.py",)


def sources_hash(paths=SOURCES) -> str:
    """SHA-256 over the names and contents of ``paths``, in order (about 100 kB, read each time)."""
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).name.encode() + b"\0" + Path(p).read_bytes() + b"\0")
    return h.hexdigest()


class SourcesLocator(caching._CacheLocator):
    """numba's own locator for a kernel function, with the sources hash as its stamp."""

    def __init__(self, inner):
        self._inner = inner

    def ensure_cache_path(self):
        self._inner.ensure_cache_path()

    def get_cache_path(self):
        return self._inner.get_cache_path()

    def get_disambiguator(self):
        return self._inner.get_disambiguator()

    def get_source_stamp(self):
        return ("fractaltrain-kernel-sources", sources_hash())

    @classmethod
    def from_function(cls, py_func, py_file):
        if Path(py_file).resolve().parent != _HERE:
            return None
        for other in caching.CacheImpl._locator_classes:
            if other is not cls:
                inner = other.from_function(py_func, py_file)
                if inner is not None:
                    return cls(inner)
        return None


if SourcesLocator not in caching.CacheImpl._locator_classes:
    caching.CacheImpl._locator_classes.insert(0, SourcesLocator)

#: Options of every compiled kernel function: no GIL (the driver runs threads),
#: numpy's error model (no zero-division checks), cached on disk as above.
JIT = dict(nogil=True, error_model="numpy", cache=True)
