"""Keyframes: their grids, their values and colours for the frames, and the keyframe files.

A zoom's keyframes are the grids it trains (:func:`keyframe_grids`); frames are
composed from them through :class:`KeyframeCache`, and each is also written as
an npz beside the video (:func:`save_keyframes`), the same arrays ``render``
writes, so ``dimension`` and a person can read them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import numpy as np

from fractaltrain.compute.files import DamagedFile, folder_inside, read_verified_npz
from fractaltrain.compute.landscape import assemble, grid_axes, make_grid
from fractaltrain.compute.store import Grid, TileStore
from fractaltrain.errors import OutputError, output_file
from fractaltrain.lattice import lattice_strings
from fractaltrain.problem import Problem
from fractaltrain.render import colour
from fractaltrain.render import ensemble as ens
from fractaltrain.render.outputs import readout_values, save_raw_npz
from fractaltrain.zoom.plan import ZoomPlan


def keyframe_grids(problem: Problem, plan: ZoomPlan, dd_from: int | None = None) -> list[Grid]:
    """The keyframes' grids, at the config's precision; from keyframe ``dd_from`` on, in double-double.

    ``dd_from`` is where the noise guard found float64's rounding deciding the
    signs (:func:`fractaltrain.zoom.guards.settle_keyframes`), which under
    ``auto`` precision moves the keyframes from there on to double-double.
    """
    kw, kh = plan.keyframe_size
    grids = [make_grid(problem, plan.keyframe_window(k), kw, kh, problem.config.tile,
                       precision="double-double" if dd_from is not None and k >= dd_from else None)
             for k in range(plan.n_keyframes)]
    if plan.aligned:  # float64 keyframes take the lattice's values (double-double ones its exact window's)
        grids = [g if g.double_double else replace(g, exact_values=False,
                                                   lattice=lattice_strings(*plan.keyframe_lattice(k)))
                 for k, g in enumerate(grids)]
    return grids


def keyframe_layout(problem: Problem, plan: ZoomPlan, outdir: Path | None,
                    expect_grids: list[str] | None = None) -> ZoomPlan:
    """``plan`` with aligned keyframes (:mod:`fractaltrain.lattice`) wherever they can be, else as it is.

    Aligned keyframes need a power-of-two factor.  A zoom made before them keeps
    its own keyframes so it resumes as it is: when ``expect_grids`` (a job
    manifest's grid keys) or a zoom manifest of this config's name in ``outdir``
    holds the unaligned first keyframe's key, the plan stays unaligned.
    """
    from fractaltrain.lattice import power_of_two

    if plan.aligned or power_of_two(plan.factor) is None:
        return plan
    kw, kh = plan.keyframe_size
    old_key = make_grid(problem, plan.keyframe_window(0), kw, kh, problem.config.tile).key
    if expect_grids is not None:
        recorded = set(expect_grids)
    else:
        from fractaltrain.compute.jobs import read_manifests

        recorded = {key for _, m in (read_manifests(outdir) if outdir is not None and outdir.is_dir() else [])
                    if m.kind == "zoom" and m.name == problem.config.name for key in m.grids}
    return plan if old_key in recorded else replace(plan, aligned=True)


class KeyframeCache:
    """Keyframe values and colour references, assembled from tiles on demand (LRU).

    One draw: the keyframe's readout values, coloured by rank.  A seed ensemble
    (``member_grids`` holds every member's keyframe grids): ``½ − P(converge)``,
    coloured linearly in P (:func:`fractaltrain.render.ensemble.probability_reference`).
    """

    def __init__(self, store: TileStore, member_grids: list[list[Grid]], readout: str, keep: int = 4):
        self.store, self.member_grids, self.readout, self.keep = store, member_grids, readout, keep
        self._values: OrderedDict[int, np.ndarray] = OrderedDict()
        self._refs: dict[int, colour.Reference] = {}

    @property
    def ensemble(self) -> bool:
        return len(self.member_grids) > 1

    def values(self, k: int) -> np.ndarray:
        if k in self._values:
            self._values.move_to_end(k)
            return self._values[k]
        if self.ensemble:
            stack = ens.member_stack(self.store, [grids[k] for grids in self.member_grids])
            v = ens.signed_field(ens.p_converged(stack))
        else:
            v = readout_values(assemble(self.store, self.member_grids[0][k]), self.readout)
        self._values[k] = v
        while len(self._values) > self.keep:
            self._values.popitem(last=False)
        return v

    def reference(self, k: int) -> colour.Reference:
        if k not in self._refs:
            self._refs[k] = ens.probability_reference() if self.ensemble else colour.make_reference(self.values(k))
        return self._refs[k]

    def poster(self, k: int, palette: str) -> np.ndarray:
        """RGB image of keyframe ``k`` as ``render`` would show it."""
        if self.ensemble:
            return ens.probability_image(0.5 - self.values(k), palette)
        return colour.to_image(self.values(k), palette=palette)


def save_keyframes(outdir: Path, problems: list[Problem], member_grids: list[list[Grid]], store: TileStore) -> None:
    """One npz per keyframe, kept when already written for the same grids.

    One draw: the raw arrays ``render`` writes; a seed ensemble (``member_grids``
    holds each member's keyframe grids): the ensemble npz (``p_converged``,
    ``members``, ...).  An existing file is kept only if every array matches its
    checksum and it records this keyframe's grid keys; a damaged one is
    rewritten from the tiles; an intact keyframe of other grids belongs to
    another zoom of the same name and is refused.
    """
    cfg = problems[0].config
    ensemble = cfg.ensemble is not None
    folder = folder_inside(outdir, outdir / "keyframes")
    for k in range(len(member_grids[0])):
        grids = [mg[k] for mg in member_grids]
        path = output_file(folder, cfg.name, f"_kf{k:03d}.npz")
        if path.exists():
            try:
                stored = read_verified_npz(path)
            except DamagedFile:
                stored = None  # damaged, not a file, or from an older version: rewrite it
            if stored is not None:
                keys = ([str(x) for x in np.atleast_1d(stored.get("member_grid_keys", []))] if ensemble
                        else [str(stored.get("grid_key"))])
                if keys == [g.key for g in grids]:
                    continue
                raise OutputError(
                    f"{path} holds a keyframe of another zoom named {cfg.name}; give the config another 'name:', "
                    "use another output folder, or delete the old keyframes first"
                )
        if ensemble:
            ens.save_ensemble_npz(path, cfg, grids, ens.member_stack(store, grids), grid_key=grids[0].key)
        else:
            raw = assemble(store, grids[0])
            xv, yv = grid_axes(cfg, grids[0])
            save_raw_npz(path, problems[0], grids[0], raw, xv, yv, grid_key=grids[0].key)
