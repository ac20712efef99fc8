"""The zoom-target search: where a zoom should head so that the boundary stays busy and resolved.

:mod:`.locate` (the entry point), :mod:`.targets` (the depth-first search),
:mod:`.starts` (its scans of the opening view), :mod:`.scan` (every window of a
level), :mod:`.score` (block scores), :mod:`.path` (the records),
:mod:`.settings`, and :mod:`.noise`, the one rounding test that zoom and explore use too.
"""
