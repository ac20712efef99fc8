"""One stable hash for every key (problem, grid, job manifest)."""

from __future__ import annotations

import hashlib
import json


def stable_hash(*parts, length: int = 16) -> str:
    """Leading ``length`` hex digits of the SHA-256 of ``parts``, in order.

    A ``bytes`` part is hashed as it is; anything else as its JSON with sorted
    keys, so equal values give equal keys in every process and on every machine.
    """
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True).encode())
    return h.hexdigest()[:length]
