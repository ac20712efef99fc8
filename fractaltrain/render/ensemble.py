"""Seed ensembles: train every pixel under K random draws and map the probability of convergence.

Why.  Every pixel of a render trains from the same initial weights and data, so
a reader may ask whether the fractal is an artefact of that one draw.  An
ensemble answers it with data: member k trains the same grid from the k-th
draw of the varied sources, and ``p_converged`` (the fraction of members whose
measure is negative) is a landscape of its own whose ½ level can be measured
like any sign boundary.

Members.  Member 0 is the config's own draws, bit for bit, so it shares its
tiles with a plain render.  Member k > 0 replaces the root of every source in
``ensemble.vary`` (``weights``, ``data``, ``minibatch``) and keeps the config's
draw of the others:

- ``rng: pcg64``: the source's stream is seeded with
  ``SeedSequence(seed, spawn_key=(k - 1,))``, i.e. the k-th child of
  ``SeedSequence(seed).spawn(...)`` (numpy's documented way to derive
  independent streams; member 0's ``default_rng(seed)`` is
  ``SeedSequence(seed)`` itself).
- ``rng: notebook``: the source's root key ``PRNGKey(seed)`` is replaced by
  ``fold_in(PRNGKey(seed), k)`` (JAX's definition: ``threefry_2x32(key,
  [0, k])``), and the notebook's own splits follow from that key.

With pcg64 the probe input is drawn from the data stream, so it varies with
``data``; with the notebook generator it has its own fixed key.

Storage.  Each member is its own :class:`~fractaltrain.problem.Problem` whose
key hashes its drawn arrays, so each member is a grid in the tile store like
any render: resumable, and sharded with one tile numbering over all members
(:func:`~fractaltrain.compute.landscape.fill_grids`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fractaltrain.problem import threefry as tf
from fractaltrain.columns import OUT_MEASURE, OUT_STEPS
from fractaltrain.config import Config, ConfigError, parse_ensemble
from fractaltrain.errors import check_name, output_file
from fractaltrain.compute.landscape import Progress, Shard, assemble, grid_axes, make_grid
from fractaltrain.render.job import fill_job, settle_grids, timing
from fractaltrain.render.outputs import claim, save_json, save_png, sidecar
from fractaltrain.problem import Problem, build_problem
from fractaltrain.compute.files import atomic_save_npz
from fractaltrain.compute.store import Grid, TileStore

BAND = 0.05  # palette positions within BAND of the centre are left out, so the ½ level is a visible jump


def with_ensemble(cfg: Config, members: int | None) -> Config:
    """``cfg`` with ``members`` draws (the CLI's ``--ensemble``), keeping the config's ``vary``.

    Errors name the option ``ensemble`` (see :class:`~fractaltrain.errors.InputError`).
    """
    if members is None:
        return cfg
    vary = list(cfg.ensemble.vary) if cfg.ensemble is not None else None
    raw = {"members": members} if vary is None else {"members": members, "vary": vary}
    try:
        ens = parse_ensemble(raw, cfg.batch_size is not None)
    except ConfigError as exc:
        raise ConfigError("ensemble:" + str(exc).split(":", 1)[1], option="ensemble") from None
    cfg = dataclasses.replace(cfg, ensemble=ens)
    from fractaltrain.config import budget

    budget.check(cfg)
    return cfg


def check_member(cfg: Config, member: int) -> int:
    """Refuse a member index the config's ensemble does not have."""
    if cfg.ensemble is None:
        raise ConfigError("member: needs an ensemble (ensemble: K in the config, or K members asked for)",
                          option="member")
    if not 0 <= member < cfg.ensemble.members:
        raise ConfigError(f"member: must be between 0 and {cfg.ensemble.members - 1} (the ensemble has "
                          f"{cfg.ensemble.members} members), got {member}", option="member")
    return member


def fold_in(key: np.ndarray, data: int) -> np.ndarray:
    """``jax.random.fold_in(key, data)`` for the threefry key: ``threefry_2x32(key, [0, data])``."""
    return tf.threefry_2x32(np.asarray(key, dtype=np.uint32), np.array([0, data], dtype=np.uint32))


def member_roots(cfg: Config, k: int) -> dict:
    """The replaced source roots of member ``k`` (empty for member 0: the config's own draws)."""
    if k == 0:
        return {}
    seeds = {"weights": cfg.network.seed, "data": cfg.data.seed, "minibatch": cfg.training.seed}
    vary = cfg.ensemble.vary if cfg.ensemble is not None else ()
    if cfg.rng == "notebook":
        return {s: fold_in(tf.prng_key(seeds[s]), k) for s in vary}
    return {s: np.random.SeedSequence(seeds[s], spawn_key=(k - 1,)) for s in vary}


def member_problem(cfg: Config, k: int) -> Problem:
    """The problem member ``k`` trains (member 0 is ``build_problem(cfg)``)."""
    return build_problem(cfg, member_roots(cfg, k))


def derivation(cfg: Config) -> str:
    """One line saying how members k > 0 are drawn, for sidecars."""
    if cfg.rng == "notebook":
        return "member k>0: root key of each varied source = fold_in(PRNGKey(seed), k)"
    return "member k>0: each varied source seeded with SeedSequence(seed, spawn_key=(k-1,))"


def summarise(members: np.ndarray) -> dict[str, np.ndarray]:
    """``p_converged``, ``measure_mean`` and ``measure_std`` of a (K, rows, cols) measure stack.

    Converged means a negative measure, as everywhere else; ``p_converged`` is
    ``count / K`` in float64, so it is exactly a multiple of 1/K.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        return {
            "p_converged": p_converged(members),
            "measure_mean": members.mean(axis=0),
            "measure_std": members.std(axis=0),
        }


def p_converged(members: np.ndarray) -> np.ndarray:
    """Fraction of the K members (axis 0) with a negative measure: exactly a multiple of 1/K, float64."""
    return np.count_nonzero(members < 0, axis=0).astype(np.float64) / members.shape[0]


def signed_field(p_converged: np.ndarray) -> np.ndarray:
    """``½ − p``: negative where most members converge, so its sign boundary is the ½ level."""
    return 0.5 - np.asarray(p_converged, dtype=np.float64)


def probability_image(p: np.ndarray, palette: str = "spectral") -> np.ndarray:
    """RGB image (y upwards) of P(converge) in a diverging palette, linear in p.

    p < ½ takes the palette's diverged half and p > ½ its converged half (blue
    for Spectral, as converged pixels of a render), each stopping ``BAND`` short
    of the centre, so crossing the ½ level is a visible jump in hue; p = ½
    exactly is the palette's centre.
    """
    from fractaltrain.render.colour import palette_table

    table = palette_table(palette)
    p = np.asarray(p, dtype=np.float64)
    t = np.where(p < 0.5, p * (1 - 2 * BAND), 0.5 + BAND + (p - 0.5) * (1 - 2 * BAND))
    t = np.where(p == 0.5, 0.5, t)
    idx = np.clip(np.round(t * (len(table) - 1)), 0, len(table) - 1).astype(np.int64)
    return np.ascontiguousarray(table[idx][::-1])


@dataclass(frozen=True)
class EnsembleResult:
    """Paths written (None when only a shard was computed), the member grids and what the fill did."""

    grids: list[Grid]
    png: Path | None
    npz: Path | None
    json: Path | None
    progress: Progress


def render_ensemble(
    cfg: Config,
    outdir: str | Path,
    *,
    quiet: bool = True,
    shard: Shard = Shard(),
    palette: str = "spectral",
    compute: bool = True,
    expect_grids: list[str] | None = None,
) -> EnsembleResult:
    """Compute (or resume) every member of ``cfg.ensemble`` and write NAME.png/.npz/.json.

    As :func:`fractaltrain.render.still.render`, but the npz holds ``p_converged``,
    ``measure_mean``, ``measure_std`` and ``members`` (K × rows × cols), and the
    PNG shows P(converge) (:func:`probability_image`).
    """
    from fractaltrain.window import config_window

    outdir = Path(outdir)
    check_name(cfg.name)
    if cfg.ensemble is None:
        raise ConfigError("ensemble: this config has no ensemble; add 'ensemble: K'")
    problems = [member_problem(cfg, k) for k in range(cfg.ensemble.members)]
    window = config_window(cfg)
    grids = [make_grid(p, window, cfg.resolution[0], cfg.resolution[1], cfg.tile) for p in problems]
    grids = settle_grids(problems, window, grids, outdir, expect_grids)  # auto: double-double where rounding decides
    keys = [g.key for g in grids]
    t0 = time.perf_counter()
    store, prog = fill_job("ensemble", cfg, outdir, problems, grids, {"palette": palette}, shard=shard,
                           compute=compute, quiet=quiet, expect_grids=expect_grids)
    if shard.count > 1 and compute:
        return EnsembleResult(grids, None, None, None, prog)
    raws = [assemble(store, g) for g in grids]
    members = np.stack([r[..., OUT_MEASURE] for r in raws])
    summary = summarise(members)
    png, npz, js = (output_file(outdir, cfg.name, sfx) for sfx in (".png", ".npz", ".json"))
    claim(js, "ensemble", grids)
    save_json(js, sidecar(
        problems[0], grids[0], kind="ensemble", palette=palette, member_grid_keys=keys,
        member_problem_keys=[g.problem_key for g in grids],
        ensemble={"members": len(grids), "vary": list(cfg.ensemble.vary), "derivation": derivation(cfg)},
        timing=timing(t0, prog),
        stats={"mean_p_converged": float(summary["p_converged"].mean()),
               "member_converged_fraction": [float(np.mean(m < 0)) for m in members],
               "mean_steps_trained": float(np.mean([r[..., OUT_STEPS].mean() for r in raws]))},
    ))
    save_ensemble_npz(npz, cfg, grids, members)
    save_png(png, probability_image(summary["p_converged"], palette))
    return EnsembleResult(grids, png, npz, js, prog)


def member_stack(store: TileStore, grids: list[Grid]) -> np.ndarray:
    """The members' measures of one window (K × rows × cols), assembled one member at a time."""
    first = assemble(store, grids[0])[..., OUT_MEASURE]
    stack = np.empty((len(grids),) + first.shape)
    stack[0] = first
    for k, g in enumerate(grids[1:], start=1):
        stack[k] = assemble(store, g)[..., OUT_MEASURE]
    return stack


def probability_reference():
    """A colour reference under which :func:`signed_field` is coloured linearly in P(converge).

    Zoom videos colour frames by rank against a reference (:mod:`fractaltrain.render.colour`).
    With this one, the same for every keyframe, ``½ − p`` maps linearly onto each
    half of the palette: p = 1 to the converged end, p just above ½ to the
    converged side's palest colour, p ≤ ½ likewise on the diverged side (p = ½
    exactly counts as not converged), with the palette's gap marking the ½ level.
    """
    from fractaltrain.render.colour import QUANTILES, Reference

    return Reference(neg=np.linspace(-0.5, 0.0, QUANTILES), pos=np.linspace(0.0, 0.5, QUANTILES))


def save_ensemble_npz(path: Path, cfg: Config, grids: list[Grid], members: np.ndarray, **extra) -> None:
    """An ensemble's arrays for one window, as ``render`` writes them (see :func:`render_ensemble`)."""
    xv, yv = grid_axes(cfg, grids[0])
    atomic_save_npz(path, **summarise(members), members=members, x_values=xv, y_values=yv,
                    window=np.array(grids[0].window.as_list()), vary=np.array(list(cfg.ensemble.vary)),
                    member_grid_keys=np.array([g.key for g in grids]), config=np.array(cfg.to_json()),
                    **{k: np.asarray(v) for k, v in extra.items()})
