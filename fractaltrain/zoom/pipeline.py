"""``zoom``: a deep-zoom video into the converge/diverge boundary.

Pipeline: find the target (the given centre, else the centre of the config's
``zoom_target`` view, such as a published panel, else ``locate``) → plan the
keyframes and frames (:mod:`fractaltrain.zoom.plan`) → compute the keyframes'
raw values through the tile store (resumable, shardable) → colour and compose
each frame (:mod:`fractaltrain.zoom.frames`) → encode the MP4
(:mod:`fractaltrain.zoom.video`).  Raw values are stored, so ``recolor`` re-encodes
with another palette without retraining.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from fractaltrain.config import budget
from fractaltrain.search import noise
from fractaltrain.render import ensemble as ens
from fractaltrain.config import Config, ConfigError, view_window
from fractaltrain.errors import InputError, check_name, output_file
from fractaltrain.zoom.encoding import encode
from fractaltrain.zoom.options import NOT_RECORDED, ZoomOptions, recorded_center, zoom_options_from_manifest
from fractaltrain.compute.jobs import (Manifest, check_grids, check_manifest, manifest_config, require_complete,
                              write_manifest)
from fractaltrain.compute.landscape import Progress, Shard, close_at_count, fill_grids, owned_pixels, progress_bar
from fractaltrain.search.locate import LocateError, LocateResult, locate, locate_ensemble, locate_images, locate_levels
from fractaltrain.render.outputs import claim, save_json, save_png, sidecar
from fractaltrain.problem import Problem, build_problem
from fractaltrain.compute.store import Grid, TileStore
from fractaltrain.precision import AUTO, PrecisionError
from fractaltrain.window import config_window, parse_coordinate
from fractaltrain.zoom.guards import check_depth, max_depth, noise_rates
from fractaltrain.zoom.keyframes import KeyframeCache, keyframe_grids, keyframe_layout, save_keyframes
from fractaltrain.zoom.plan import ZoomPlan, even, outer_window

DEFAULT_DEPTH = 10.0  # decades, when neither the caller nor a zoom_target view sets the depth
PREVIEW_WIDTH = 320
PREVIEW_STEPS = 60


@dataclass(frozen=True)
class ZoomResult:
    plan: ZoomPlan
    mp4: Path | None
    poster: Path | None
    json: Path | None
    progress: Progress
    timing: dict  # seconds per stage (locate, noise guard, keyframes, frames), as the sidecar records them


def preview_settings(cfg: Config, opts: ZoomOptions) -> tuple[Config, ZoomOptions]:
    """Low resolution and few steps, for a quick look before the real run."""
    w, h = opts.size
    size = (PREVIEW_WIDTH, even(PREVIEW_WIDTH * h / w))
    steps = min(cfg.training.steps, PREVIEW_STEPS)
    cfg = replace(cfg, name=cfg.name + "_preview", training=replace(cfg.training, steps=steps))
    return cfg, replace(opts, size=size)


def resolve_target(cfg: Config, opts: ZoomOptions, outer) -> ZoomOptions:
    """Fill in the centre and depth the caller left open.

    A config with a ``zoom_target`` view (the six paper configs name their
    published panel) zooms into that view's centre, by default exactly as deep as
    the view, so the last frame shows the whole panel: the author's own targets.
    Otherwise, or with ``auto_center``, ``locate`` picks the target later.
    """
    center, depth = opts.center, opts.depth
    if center is None and not opts.auto_center and cfg.zoom_target is not None:
        x0, x1, y0, y1 = view_window(cfg, cfg.zoom_target)
        center = ((x0 + x1) / 2, (y0 + y1) / 2)  # exact for a view written in decimals
        if depth is None:
            depth = math.log10(min(outer.width / (x1 - x0), outer.height / (y1 - y0)))
            if not depth > 0:
                raise ConfigError(f"zoom_target: view {cfg.zoom_target!r} is no smaller than the opening view, so "
                                  "zooming to it goes nowhere; name a smaller view, or give the depth")
    return replace(opts, center=center, depth=DEFAULT_DEPTH if depth is None else depth)


def find_target(problems: list[Problem], outer, opts: ZoomOptions, store: TileStore,
                quiet: bool) -> LocateResult:
    """The given centre; else the search's target for one draw, or the ½ level's for a seed ensemble."""
    if opts.center is not None:
        return LocateResult(opts.center[0], opts.center[1], opts.depth, opts.seed)
    ensemble = len(problems) > 1
    total, unit = (locate_levels(opts.depth), "level") if ensemble else (locate_images(opts.depth), "image")
    with progress_bar(total, 0, quiet, "locate", unit) as bar:
        try:
            if ensemble:
                found = locate_ensemble(problems, outer, opts.depth, store, seed=opts.seed, bar=bar)
            else:
                found = locate(problems[0], outer, opts.depth, store, seed=opts.seed, bar=bar,
                               bounds=config_window(problems[0].config))
        except LocateError as exc:
            raise ConfigError(f"depth: {exc}", option="depth") from None
        close_at_count(bar)
        return found


@dataclass
class ZoomJob:
    """What the planning stage settles for the stages after it (see :func:`zoom`)."""

    cfg: Config
    outdir: Path
    opts: ZoomOptions
    problems: list[Problem]  # every member's (one for a plain zoom); member 0 draws as the config does
    store: TileStore
    target: LocateResult
    plan: ZoomPlan
    member_grids: list[list[Grid]]  # every member's keyframe grids
    rates: list[float]
    sidecar: Path
    frames: tuple[int, int]  # the frame range [a, b) this run encodes
    suffix: str  # "" or "_frames_A-B", for partial encodes
    preview: bool
    t0: float
    timing: dict

    @property
    def problem(self) -> Problem:
        return self.problems[0]

    @property
    def grids(self) -> list[Grid]:
        """Member 0's keyframe grids (a plain zoom's only ones)."""
        return self.member_grids[0]

    @property
    def all_grids(self) -> list[Grid]:
        return [g for grids in self.member_grids for g in grids]


def zoom(cfg: Config, outdir: str | Path, opts: ZoomOptions, *, quiet: bool = True, shard: Shard = Shard(),
         expect_grids: list[str] | None = None) -> ZoomResult:
    """Compute (or resume) the keyframes of a zoom and encode its MP4 into ``outdir``.

    The pipeline, one stage each: plan (target, keyframe windows, the float64
    and rounding-noise guards, the job manifest) → keyframes (tiles through the
    store: resumable, shardable) → outputs (keyframe npz files, poster, frames
    encoded to MP4, sidecar).  ``expect_grids`` (a job manifest's grid keys) refuses, before
    anything is written, a job whose config and options give other keyframe grids.
    """
    job = plan_zoom(cfg, Path(outdir), opts, quiet, shard, expect_grids)
    prog = compute_keyframes(job, shard, quiet)
    if shard.count > 1 and not job.opts.recolor:
        return ZoomResult(job.plan, None, None, None, prog, job.timing)
    return write_outputs(job, prog, quiet)


def plan_zoom(cfg: Config, outdir: Path, opts: ZoomOptions, quiet: bool, shard: Shard = Shard(),
              expect_grids: list[str] | None = None) -> ZoomJob:
    """Settle the target and the keyframes, check them against float64 and rounding noise, record the job."""
    was_preview = opts.preview
    if opts.preview:  # the manifest keeps the already-reduced settings
        cfg, opts = preview_settings(cfg, opts)
        opts = replace(opts, preview=False)
    check_name(cfg.name)
    t0 = time.perf_counter()
    problem = build_problem(cfg)
    problems = [problem] if cfg.ensemble is None else [problem] + [
        ens.member_problem(cfg, k) for k in range(1, cfg.ensemble.members)]
    store = TileStore(outdir / "tiles")
    outer = outer_window(config_window(cfg), cfg.resolution, opts.size)
    opts = resolve_target(cfg, opts, outer)
    if opts.center is not None:
        cx, cy = opts.center
        if not (outer.x0 <= cx <= outer.x1 and outer.y0 <= cy <= outer.y1):
            shown = ", ".join(str(v) for v in recorded_center((cx, cy)))
            raise ConfigError(f"center: ({shown}) lies outside the view {outer.as_list()}", option="center")
    probe_plan = ZoomPlan(outer, opts.center or outer.center, opts.depth, opts.frames, opts.size, opts.factor)
    check_depth(probe_plan, cfg)
    budget.check(cfg, [probe_plan.keyframe_size] * probe_plan.n_keyframes, what="this zoom")
    if opts.recolor and opts.center is None:  # recolor never trains, so never locates either
        opts = replace(opts, center=stored_target(outdir, cfg, opts))
    target = find_target(problems, outer, opts, store, quiet)
    plan = keyframe_layout(problem, ZoomPlan(outer, (target.x, target.y), opts.depth, opts.frames, opts.size,
                                             opts.factor), outdir, expect_grids)
    check_depth(plan, cfg)
    dd_from = None if expect_grids is None else recorded_dd_from(problem, plan, expect_grids)
    member_grids = [keyframe_grids(p, plan, dd_from) for p in problems]
    grids = member_grids[0]
    if expect_grids is not None:
        check_grids(expect_grids, [g for mg in member_grids for g in mg])
    t_locate = time.perf_counter() - t0

    def retrain_dd(k: int) -> list[Grid] | None:
        """Under auto precision, keyframes ``k`` on in double-double (None where it cannot resolve them)."""
        if cfg.precision != AUTO or expect_grids is not None:
            return None
        try:
            upgraded = [keyframe_grids(p, plan, k) for p in problems]
        except PrecisionError:
            return None
        member_grids[1:] = upgraded[1:]
        return upgraded[0]

    with progress_bar(plan.n_keyframes, 0, quiet or opts.recolor, "noise guard", "keyframe") as bar:  # recolor: cached
        rates = noise_rates(problem, plan, grids, outdir, opts.allow_noise or opts.recolor, retrain_dd, bar=bar)
    keys = [g.key for mg in member_grids for g in mg]
    t_noise = time.perf_counter() - t0 - t_locate

    a, b = opts.frame_range or (0, opts.frames)
    suffix = "" if (a, b) == (0, opts.frames) else f"_frames_{a}-{b}"
    js = output_file(outdir, cfg.name, f"{suffix}.json")
    claim(js, "zoom", [g for mg in member_grids for g in mg])  # before any work
    for mg in member_grids:
        for g in mg:
            store.register(g)
    job_opts = {k: v for k, v in asdict(replace(opts, center=recorded_center(plan.target))).items()
                if k not in NOT_RECORDED}
    write_manifest(outdir, Manifest("zoom", cfg.name, cfg.to_dict(), job_opts, keys, shard.count))
    timing = {"locate_seconds": t_locate, "noise_seconds": t_noise}
    return ZoomJob(cfg, outdir, opts, problems, store, target, plan, member_grids, rates, js, (a, b), suffix,
                   was_preview, t0, timing)


def compute_keyframes(job: ZoomJob, shard: Shard, quiet: bool) -> Progress:
    """Fill the keyframes' tiles this shard owns (recolor: only check that every tile is there)."""
    t1 = time.perf_counter()
    if job.opts.recolor:
        require_complete(job.store, job.all_grids, shard.count)
        prog = Progress()
    else:
        grids = job.all_grids
        problems = [p for p, mg in zip(job.problems, job.member_grids) for _ in mg]  # one per grid
        total, done = owned_pixels(job.store, grids, shard)
        label = "keyframes" if len(job.problems) == 1 else f"keyframes x{len(job.problems)}"
        with progress_bar(total, done, quiet, label) as bar:
            prog = fill_grids(problems, job.store, grids, shard, bar)
    job.timing.update(keyframe_seconds=time.perf_counter() - t1, tiles_computed=prog.tiles_computed,
                      tiles_reused=prog.tiles_reused, pixels_computed=prog.pixels_computed,
                      pixels_copied=prog.pixels_copied, pixel_steps_copied=prog.steps_copied,
                      pixel_steps_trained=prog.steps_trained, pixel_steps_saved_fraction=prog.saved_fraction())
    return prog


def write_outputs(job: ZoomJob, prog: Progress, quiet: bool) -> ZoomResult:
    """Keyframe npz files, the poster, the frames encoded to MP4, and the sidecar (written first and last)."""
    cfg, opts, plan, grids = job.cfg, job.opts, job.plan, job.grids
    cache = KeyframeCache(job.store, job.member_grids, cfg.readout)
    claim(job.sidecar, "zoom", job.all_grids)  # again: another job may have finished meanwhile
    a, b = job.frames
    job.timing["frame_seconds"] = 0.0

    def record() -> dict:
        return sidecar(
            job.problem,
            grids[0],
            kind="zoom",
            zoom=plan.to_dict(),
            target=job.target.to_dict(),
            max_depth=max_depth(plan, cfg),
            video={"fps": opts.fps, "codec": opts.codec, "crf": opts.crf, "preset": opts.preset, "frame_range": [a, b],
                   "palette": opts.palette, "overlay": opts.overlay, "preview": job.preview},
            keyframe_grid_keys=[g.key for g in grids],
            keyframe_precisions=[g.precision for g in grids],
            **({} if cfg.ensemble is None else {
                "ensemble": {"members": cfg.ensemble.members, "vary": list(cfg.ensemble.vary),
                             "derivation": ens.derivation(cfg), "frames_show": "P(converge), linear in each half"},
                "member_keyframe_grid_keys": [[g.key for g in mg] for mg in job.member_grids]}),
            noise={"flip_rates": [round(r, 4) for r in job.rates], "ulps": noise.ULPS, "sample": noise.SAMPLE,
                   "limit": noise.NOISE_MAX, "allowed": opts.allow_noise,
                   "first_noisy_keyframe": noise.first_noisy(job.rates)},
            timing={"seconds": time.perf_counter() - job.t0, **job.timing},
        )

    save_json(job.sidecar, record())  # claims the name before the other outputs are replaced (outputs.claim)
    save_keyframes(job.outdir, job.problems, job.member_grids, job.store)
    poster = output_file(job.outdir, cfg.name, "_poster.png")
    save_png(poster, cache.poster(plan.n_keyframes - 1, opts.palette))
    mp4 = output_file(job.outdir, cfg.name, f"{job.suffix}.mp4") if opts.video else None
    t1 = time.perf_counter()
    if mp4 is not None:
        encode(plan, cfg, cache, opts, mp4, range(a, b), quiet)
    job.timing["frame_seconds"] = time.perf_counter() - t1
    save_json(job.sidecar, record())
    return ZoomResult(plan, mp4, poster, job.sidecar, prog, job.timing)


def recorded_dd_from(problem: Problem, plan: ZoomPlan, expect_grids: list[str]) -> int | None:
    """The first keyframe a recorded job trained in double-double while its precision allowed float64.

    Under ``auto`` the noise guard moves keyframes to double-double where float64's
    rounding decides the signs; a job replayed from its manifest takes that
    choice from the recorded grid keys instead of measuring it again.
    """
    first = keyframe_grids(problem, plan)
    for k, g in enumerate(first):
        if k < len(expect_grids) and g.key != expect_grids[k] and not g.double_double:
            return k
    return None


def stored_target(outdir: Path, cfg: Config, opts: ZoomOptions) -> tuple[float, float]:
    """The target of an earlier zoom of ``cfg`` in ``outdir`` (from its job manifest), for recolor."""
    from fractaltrain.compute.jobs import read_manifests

    want = {"size": list(opts.size), "factor": opts.factor, "seed": opts.seed}
    for _, m in read_manifests(outdir):
        o = m.options
        if (m.kind == "zoom" and m.name == cfg.name and m.config == cfg.to_dict()
                and all(o.get(k) == v for k, v in want.items()) and isinstance(o.get("center"), list)):
            try:
                return tuple(parse_coordinate(v) if isinstance(v, str) else float(v) for v in o["center"][:2])
            except (TypeError, ValueError, IndexError):
                continue
    raise InputError(
        f"recolor: {outdir} holds no zoom of {cfg.name} with this config, size, keyframe factor and seed; "
        "recolor never trains: run the zoom without recolor first",
        option="recolor",
    )


def zoom_from_manifest(outdir: str | Path, manifest, quiet: bool = True) -> ZoomResult:
    """Finish a zoom recorded in a job manifest, without training (see :mod:`fractaltrain.compute.jobs`).

    The manifest is checked again here (:func:`fractaltrain.compute.jobs.check_manifest`), so a
    caller holding an unchecked :class:`~fractaltrain.compute.jobs.Manifest` still gets one
    :class:`InputError` before anything is written, and its grids must be the ones its
    config and options give (an edited manifest must not register grids or write noise rates).
    """
    check_manifest(asdict(manifest))
    cfg = manifest_config(manifest)
    opts = replace(zoom_options_from_manifest(manifest.options), recolor=True)
    return zoom(cfg, outdir, opts, quiet=quiet, shard=Shard(0, manifest.shards), expect_grids=list(manifest.grids))
