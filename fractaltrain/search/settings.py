"""The target search's settings: window sizes, branching, the acceptance tiers and the budget.

Kept in one place, apart from the search's machinery (:mod:`fractaltrain.search.targets`),
because they are recorded beside every target (:func:`search_params`): a target
is a pure function of the config, view, depth and seed *and these*.
"""

from __future__ import annotations

from fractaltrain.search import scan as window_scan
from fractaltrain.search.score import ACCEPT, B_HI, B_LO, M_LO
from fractaltrain.search.noise import FLIP_MAX_SEARCH

CHECK = 48  # pixels across the scored window
PAD = 8  # how far (pixels) one level may move the point
LEVEL_PX = CHECK + 2 * PAD
OPEN_PX = 64  # the opening view's image
OPEN_SIZES = (16, 8)  # neighbourhoods scored in the opening image (its structure is coarse)
OPEN_CHILDREN = 8
OPEN_SEP = 6
MAX_CHILDREN = 3
SEP = 4
COARSE_CHILDREN = 4  # branches kept at a coarse level ...
COARSE_POOL = 12  # ... out of this many candidates, ranked by a look-ahead probe
COARSE_SEP = 4
COARSE_REGION = 20  # coarse candidates lie within this many pixels of the image centre
SCAN_PX = 192  # the scan's opening image, pixels across (a pixel: about half the level-2 window)
SCAN_SEP = 2  # its boundary points at least this many pixels apart ...
SCAN_POINTS = 256  # ... and at most this many, busiest first
SCAN_CONFIRM = 24  # best probes rendered again at CHECK pixels
SCAN_KEEP = 12  # branches the scan hands to the depth-first search
PROBE_PX = 24  # look-ahead probe: this many pixels across ...
PROBE_AHEAD = 2.0  # ... a window this many decades deeper than the level
# (strict_from, accept, scan) tried in turn until one yields a target within the budget: every level
# from strict_from decades below the opening view on must score >= accept.  First with the margin, then
# without it (b in [5%, 35%]: some landscapes, ReLU's, are barely busier than a line there), then from
# an exhaustive scan of every window along the boundary (some are one smooth curve for 2 decades almost
# everywhere: dataset size 1; see fractaltrain.search.scan), then judged from 3 decades.  ``scan`` says
# how the first judged level's starting points are found when the search begins with a scan:
# "sampled" (target_starts.sampled_starts) or "every" (target_starts.every_window_starts).
TIERS = ((2.0, ACCEPT, "sampled"), (2.0, 0.0, "sampled"), (2.0, 0.0, "every"), (3.0, ACCEPT, "sampled"),
         (3.0, 0.0, "sampled"))
STRICT_FROM = tuple(sorted({t[0] for t in TIERS}))
# The exhaustive scan's tier: its starting points, and each judged level's candidates, at least EVERY_SEP
# pixels apart and at most EVERY_CHILDREN per level.  Its windows sit at the band's edge, where a
# fraction of a pixel decides whether a window is in (Search.verify), so it tries more, closer candidates.
EVERY_SEP = 2
EVERY_CHILDREN = 8
FLIP_STRIDE = 2
BUDGET = 30  # level images per target (plus two per level), far below 5% of any zoom's keyframe pixels


def search_params() -> dict:
    """The settings the search ran with, recorded beside every target.

    Why: a target is a pure function of (config, view, depth, seed) *and these*;
    two runs that disagree with the same arguments ran different settings (in
    the Slurm self-test, the code was edited between the reference zoom and the
    locate job), and the record makes that visible at once.
    """
    from fractaltrain.search.noise import SEARCH_SHIFT, ULPS

    return {"check_px": CHECK, "level_px": LEVEL_PX, "pad": PAD, "band": [B_LO, B_HI, M_LO],
            "tiers": [[f, round(a, 6), scan] for f, a, scan in TIERS], "flip_max": FLIP_MAX_SEARCH,
            "flip_stride": FLIP_STRIDE, "ulps": ULPS, "shift": SEARCH_SHIFT, "budget": BUDGET, "verify": True,
            "coarse": [COARSE_POOL, COARSE_CHILDREN], "probe": [PROBE_PX, PROBE_AHEAD], "scan": [SCAN_PX, SCAN_SEP, SCAN_POINTS, SCAN_CONFIRM, SCAN_KEEP],
            "scan_every": [window_scan.CELL, window_scan.MAX_SIDE, window_scan.MAX_PIXELS, EVERY_SEP,
                           EVERY_CHILDREN]}
