"""A zoom's plan before any work (:mod:`fractaltrain.compute.cost`): keyframes, store, time on this machine.

It settles what :func:`fractaltrain.zoom.pipeline.plan_zoom` settles before
training (preview settings, the target when it is known without a search, the
keyframe windows and their precisions), but writes nothing and runs neither the
target search nor the noise guard: it estimates them.  Where the target is still
to be located, the keyframe sizes and counts are known and the windows are not,
so the store's holdings are counted from the opening view's centre (the usual
case then: a new output folder, nothing stored).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fractaltrain.compute import cost
from fractaltrain.compute.landscape import Shard
from fractaltrain.compute.store import TileStore
from fractaltrain.config import Config
from fractaltrain.precision import AUTO
from fractaltrain.problem import build_problem
from fractaltrain.search import noise
from fractaltrain.window import config_window
from fractaltrain.zoom.guards import check_depth
from fractaltrain.zoom.keyframes import keyframe_grids, keyframe_layout
from fractaltrain.zoom.options import ZoomOptions
from fractaltrain.zoom.plan import ZoomPlan, outer_window


def zoom_cost(cfg: Config, outdir: str | Path, opts: ZoomOptions, shard: Shard = Shard(), device_name: str = "cpu",
              measure: bool = True) -> cost.JobCost:
    """The plan of ``zoom(cfg, outdir, opts)``: what it trains, what ``outdir`` holds, and the time here.

    ``measure=False`` leaves out the calibration (no training at all; no time estimate).
    """
    from fractaltrain.render import ensemble as ens
    from fractaltrain.zoom.pipeline import preview_settings, resolve_target

    if opts.preview:
        cfg, opts = preview_settings(cfg, opts)
    outdir = Path(outdir)
    problem = build_problem(cfg)
    outer = outer_window(config_window(cfg), cfg.resolution, opts.size)
    opts = resolve_target(cfg, opts, outer)
    located = opts.center is not None
    plan = ZoomPlan(outer, opts.center or outer.center, opts.depth, opts.frames, opts.size, opts.factor)
    plan = keyframe_layout(problem, plan, outdir if located else None)
    check_depth(plan, cfg)
    grids = keyframe_grids(problem, plan)
    members = 1 if cfg.ensemble is None else cfg.ensemble.members
    member_grids = [grids] + [keyframe_grids(ens.member_problem(cfg, k), plan) for k in range(1, members)]
    all_grids = [g for mg in member_grids for g in mg]
    store = TileStore(outdir / "tiles") if located and not opts.recolor else None
    entries = cost.grid_entries(store, all_grids, (shard.index, shard.count))
    if opts.recolor:  # recolor never trains
        entries = [dict(e, stored=e["pixels"]) for e in entries]
    rates = cost.measure_rates(problem, all_grids, entries) if measure else []
    phases, notes = [], []
    if not located:
        phases.append(cost.Phase("locate", "the target search runs first, with its own progress bar", None))
    by = {r.precision: r.seconds_per_pixel for r in rates}
    if not opts.recolor and not opts.allow_noise:
        known = noise.load_rates(outdir / "noise.json") if located else {}
        todo = [g for g in grids if g.key not in known]
        secs = sum(2 * noise.SAMPLE ** 2 * by.get(g.precision, 0.0) for g in todo) if rates or not todo else None
        phases.append(cost.Phase("noise guard", f"{len(todo)} of {len(grids)} keyframes to test, "
                                 f"{noise.SAMPLE}² pixels twice each", secs))
        if cfg.precision == AUTO:
            notes.append("under auto precision the noise guard may move deep keyframes to double-double "
                         "(about ten times the cost per pixel)")
    if opts.video and shard.count == 1:
        a, b = opts.frame_range or (0, opts.frames)
        phases.append(cost.frames_phase(b - a, *opts.size))
    if not located:
        notes.append("keyframe windows follow the located target; the tile store is counted once it is known")
    return cost.JobCost("zoom", cfg.name, entries, cfg.training.steps, members, device_name,
                        cost.threads_in_use(device_name), (shard.index, shard.count), rates, phases, notes)
