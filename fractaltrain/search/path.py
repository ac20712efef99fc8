"""What the target search (:mod:`fractaltrain.search.targets`) finds: a chosen point per level, and the path of them.

Kept apart from the search so the records (what ``locate`` prints and the
zoom's sidecar keeps) can be read without the search's machinery.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fractaltrain.search.score import ACCEPT


@dataclass(frozen=True)
class Candidate:
    """A boundary point at one level and what its window looks like."""

    x: float
    y: float
    depth: float
    score: float
    boundary: float  # fraction of 2x2 blocks with a sign change in the scored window
    minority: float  # fraction of pixels of the rarer phase
    flip: float | None = None  # rounding-flip rate of a window subsample

    def to_dict(self) -> dict:
        return {"depth": self.depth, "x": self.x, "y": self.y, "score": _r(self.score),
                "boundary": _r(self.boundary), "minority": _r(self.minority),
                "flip": None if self.flip is None else _r(self.flip)}


@dataclass(frozen=True)
class Deferred:
    """A start path's level-1 point whose record is not computed yet.

    Why: the scan's starts (:func:`fractaltrain.search.starts.sampled_starts`)
    each carry a level-1 candidate whose statistics only fill the record (the
    search descends from level 2, and nothing ranks a level shallower than the
    first judged one).  Rendering all of them up front cost a 64×64 image per
    start: 17% of the pixels of the tanh baseline's 6-decade search.  The search resolves one only when
    a target it returns holds it (:meth:`fractaltrain.search.targets.Search.resolved`).
    """

    x: float
    y: float
    depth: float


def _r(v: float) -> float | None:
    return round(float(v), 4) if math.isfinite(v) else None


@dataclass(frozen=True)
class Target:
    """A found target: the path of chosen points, one per level (the last is the target)."""

    path: tuple[Candidate, ...]
    strict: bool  # every level from ``strict_from`` on scored at least ``accept``
    strict_from: float = 0.0
    accept: float = ACCEPT
    scan: str = "sampled"  # how the first judged level's starting points were found (see TIERS)

    @property
    def x(self) -> float:
        return self.path[-1].x

    @property
    def y(self) -> float:
        return self.path[-1].y

    @property
    def score(self) -> float:
        """The worst score of the levels from ``strict_from`` on (all but the opening view if none)."""
        inner = [c for c in self.path[1:] if c.depth >= self.strict_from] or list(self.path[1:] or self.path)
        return min(c.score for c in inner)

    @property
    def flip(self) -> float:
        rates = [c.flip for c in self.path if c.flip is not None]
        return max(rates) if rates else 0.0
