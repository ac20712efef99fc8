"""A still render's plan before any work (:mod:`fractaltrain.compute.cost`): pixels, store, time on this machine.

The grids are the ones :func:`fractaltrain.render.still.render` fills (every
member's for a seed ensemble), before the rounding test that ``auto`` precision
takes near float64's floor: that test trains a sample and may move the image to
double-double, so the plan says so instead of running it.  Nothing is written.
"""

from __future__ import annotations

from pathlib import Path

from fractaltrain.compute import cost
from fractaltrain.compute.landscape import Shard, make_grid
from fractaltrain.compute.store import TileStore
from fractaltrain.config import Config
from fractaltrain.precision import AUTO
from fractaltrain.problem import build_problem
from fractaltrain.search.noise import NEAR_FLOOR_ULPS
from fractaltrain.window import config_window, min_relative_spacing


def render_cost(cfg: Config, outdir: str | Path, shard: Shard = Shard(), member: int | None = None,
                device_name: str = "cpu", measure: bool = True) -> cost.JobCost:
    """The plan of ``render(cfg, outdir, shard=shard, member=member)``; ``measure=False``: no calibration."""
    from fractaltrain.render.ensemble import check_member, member_problem

    if member is not None:
        problems = [member_problem(cfg, check_member(cfg, member))]
    elif cfg.ensemble is not None:
        problems = [member_problem(cfg, k) for k in range(cfg.ensemble.members)]
    else:
        problems = [build_problem(cfg)]
    window = config_window(cfg)
    grids = [make_grid(p, window, cfg.resolution[0], cfg.resolution[1], cfg.tile) for p in problems]
    entries = cost.grid_entries(TileStore(Path(outdir) / "tiles"), grids, (shard.index, shard.count))
    rates = cost.measure_rates(problems[0], grids, entries) if measure else []
    notes = []
    w = grids[0].window
    near = min(min_relative_spacing(w.x0, w.x1, grids[0].width, cfg.x.scale),
               min_relative_spacing(w.y0, w.y1, grids[0].height, cfg.y.scale)) < NEAR_FLOOR_ULPS
    if cfg.precision == AUTO and not grids[0].double_double and near:
        notes.append("this window is near float64's floor: under auto precision a rounding test runs first and may "
                     "train it in double-double (about ten times the cost per pixel)")
    return cost.JobCost("render", cfg.name, entries, cfg.training.steps, len(problems), device_name,
                        cost.threads_in_use(device_name), (shard.index, shard.count), rates, [], notes)
