"""Writing results: raw-value npz, coloured PNG and JSON sidecars, all atomically.

Every output carries what is needed to reproduce or re-analyse it: the npz
holds the raw values with their axes, the initial weights, the data and the
resolved config; the JSON sidecar holds the config, the window at full
precision, seeds, versions and timings.
"""

from __future__ import annotations

import io
import json
import platform
from pathlib import Path

import numpy as np

import fractaltrain
from fractaltrain.columns import OUT_FINAL, OUT_MEASURE, OUT_PROBE, OUT_STEPS, READOUT_COLUMN
from fractaltrain.problem import Problem
from fractaltrain.compute.files import atomic_save_npz, atomic_write_bytes, read_json
from fractaltrain.compute.store import Grid


def readout_values(raw: np.ndarray, readout: str) -> np.ndarray:
    """The (height, width) array the config's readout selects from kernel results."""
    return np.ascontiguousarray(raw[..., READOUT_COLUMN[readout]])


def window_record(grid: Grid) -> dict:
    """Window in axis units, as floats and as exact strings (decimals of any length), and the precision."""
    w = grid.window
    s = w.strings()
    return {
        "x": [w.x0, w.x1],
        "y": [w.y0, w.y1],
        "exact": {"x": s[:2], "y": s[2:]},
        "precision": grid.precision,
    }


def versions() -> dict:
    import numba

    return {
        "fractaltrain": fractaltrain.__version__,
        "numpy": np.__version__,
        "numba": numba.__version__,
        "python": platform.python_version(),
    }


def save_raw_npz(
    path: Path, problem: Problem, grid: Grid, raw: np.ndarray, xv: np.ndarray, yv: np.ndarray, **extra
) -> None:
    """Raw results in a self-describing npz (rows = y ascending, columns = x ascending).

    ``extra`` arrays (e.g. a keyframe's grid key) are stored alongside.  Axes
    given as double-double (2, n) pairs are stored as ``x_values`` (the float64
    parts) and ``x_values_lo`` (the trailing parts), likewise for y.
    """
    cfg = problem.config
    lows = {}
    if np.ndim(xv) == 2:
        xv, yv, lows = xv[0], yv[0], {"x_values_lo": xv[1], "y_values_lo": yv[1]}
    arrays = {
        "measure": np.ascontiguousarray(raw[..., OUT_MEASURE]),
        "final_loss": np.ascontiguousarray(raw[..., OUT_FINAL]),
        "probe": np.ascontiguousarray(raw[..., OUT_PROBE]),
        "steps_trained": raw[..., OUT_STEPS].astype(np.int32),
        "readout": readout_values(raw, cfg.readout),
        "x_values": xv,
        "y_values": yv,
        "window": np.array(grid.window.as_list()),
        "window_exact": np.array(grid.window.strings()),
        "precision": np.array(grid.precision),
        **lows,
        "X": problem.X,
        "Y": problem.Y,
        "probe_input": problem.probe,
        "config": np.array(cfg.to_json()),
    }
    for k, w in enumerate(problem.weights):
        arrays[f"w{k}"] = w
    if problem.batch_indices is not None:
        arrays["batch_indices"] = problem.batch_indices
    arrays.update({k: np.asarray(v) for k, v in extra.items()})
    atomic_save_npz(path, **arrays)


def save_png(path: Path, rgb: np.ndarray) -> None:
    import imageio.v3 as iio

    buf = io.BytesIO()
    iio.imwrite(buf, rgb, extension=".png")
    atomic_write_bytes(path, buf.getvalue())


def save_json(path: Path, record: dict) -> None:
    atomic_write_bytes(path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())


def claim(path: Path, kind: str, grids: list[Grid]) -> None:
    """Refuse to overwrite ``path`` (a JSON sidecar) when it belongs to another job.

    Outputs are named after the config's name, so two different jobs with the
    same name in one folder would overwrite each other.  A job is "the same" when
    its kind matches and its raw values do: the grid key of a render, the
    keyframe grid keys of a zoom (one a prefix of the other, so a zoom can be
    made deeper), the member grid keys of an ensemble (so it can grow).  Presentation (palette, readout, frames, fps, codec, overlay)
    may change and is rewritten in place.  Anything else at ``path`` is refused.
    A job made before pixel values were exact (``Grid.earlier_key``) is this
    job too: its outputs are rewritten at the right values.
    """
    from fractaltrain.errors import OutputError

    path = Path(path)
    if not path.exists():
        return
    how = ("give the config another 'name:', use another output folder, or delete the old "
           f"{path.stem}.* files first")
    try:
        rec = read_json(path)
        old_kind = rec.get("kind")
        old_keys = ([rec["grid_key"]] if old_kind == "render"
                    else list(rec.get("member_grid_keys") or rec.get("keyframe_grid_keys") or []))
    except (OSError, ValueError, AttributeError, KeyError, TypeError, RecursionError):
        raise OutputError(f"{path} exists and is not a fractaltrain sidecar; {how}") from None
    if old_kind != kind:
        raise OutputError(f"{path} holds a {str(old_kind)[:20]} job, not a {kind} of this config; {how}")
    m = min(len(old_keys), len(grids))
    if m == 0 or (old_keys[:m] != [g.key for g in grids[:m]] and old_keys[:m] != [g.earlier_key for g in grids[:m]]):
        raise OutputError(
            f"{path} holds another {kind} named {rec.get('name', path.stem)!s:.40} (different config, window, "
            f"resolution or target); {how}"
        )


def sidecar(problem: Problem, grid: Grid, **extra) -> dict:
    """The common part of every JSON sidecar."""
    cfg = problem.config
    rec = {
        "name": cfg.name,
        "config": cfg.to_dict(),
        "window": window_record(grid),
        "resolution": [grid.width, grid.height],
        "axes": {"x": cfg.x.param, "y": cfg.y.param, "x_scale": cfg.x.scale, "y_scale": cfg.y.scale},
        "seeds": {"network": cfg.network.seed, "data": cfg.data.seed, "training": cfg.training.seed},
        "data_size": cfg.data_size,
        "problem_key": grid.problem_key,
        "grid_key": grid.key,
        "versions": versions(),
    }
    rec.update(extra)
    return rec
