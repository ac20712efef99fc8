"""Tests of fractaltrain.dimension.boxcount: box counting on sets of known dimension.

Run with ``pytest -s tests/test_dimension.py`` to see the measured values.
The validation shapes are drawn at 4096 x 4096 (the paper's keyframe size)
and at 1024 x 1024, placed off the pixel grid so that no box size lines up
with them by luck; both estimators must land within 0.05 of the truth with
the module's default parameters.
"""

from __future__ import annotations

import functools
import math

import imageio.v3 as iio
import numpy as np
import pytest

from fractaltrain.dimension import boxcount as dim
from fractaltrain.dimension import inputs as di
from fractaltrain.dimension import report as dio
from fractaltrain.errors import DataError

TOLERANCE = 0.05

TRUE_DIMENSION = {
    "line": 1.0,
    "diagonal": 1.0,
    "circle": 1.0,
    "koch": math.log(4) / math.log(3),
    "sierpinski": math.log(3) / math.log(2),
    "random_signs": 2.0,
}


# ---------------------------------------------------------------------------
# Shapes of known dimension
# ---------------------------------------------------------------------------


def _plot(points: np.ndarray, n: int) -> np.ndarray:
    """Boolean n x n image with the pixel nearest to each (x, y) point set."""
    mask = np.zeros((n, n), dtype=bool)
    pixels = np.rint(points).astype(np.int64)
    mask[pixels[:, 1], pixels[:, 0]] = True
    return mask


def _densify(vertices: np.ndarray, step: float = 0.5) -> np.ndarray:
    """Points along a polyline no more than ``step`` px apart."""
    starts, ends = vertices[:-1], vertices[1:]
    per_segment = int(np.ceil(np.linalg.norm(ends - starts, axis=1).max() / step))
    t = (np.arange(per_segment) / per_segment)[None, :, None]
    points = starts[:, None, :] + t * (ends - starts)[:, None, :]
    return np.vstack([points.reshape(-1, 2), vertices[-1:]])


def _line(n: int) -> np.ndarray:
    """A segment at an odd angle, ending inside the image."""
    return _plot(_densify(np.array([[0.05, 0.1], [0.95, 0.8]]) * (n - 1)), n)


def _diagonal(n: int) -> np.ndarray:
    """Corner to corner: crosses the image like a boundary does."""
    return _plot(_densify(np.array([[0.0, 0.0], [1.0, 1.0]]) * (n - 1)), n)


def _circle(n: int) -> np.ndarray:
    theta = np.linspace(0.0, 2 * np.pi, 20 * n)
    centre = 0.5 * (n - 1) + np.array([0.3, 0.7])
    return _plot(centre + 0.4 * n * np.stack([np.cos(theta), np.sin(theta)], axis=1), n)


def _koch_vertices(level: int) -> np.ndarray:
    """Vertices of the Koch curve from (0, 0) to (1, 0) after ``level`` steps."""
    cos60, sin60 = 0.5, math.sqrt(3) / 2
    turn = np.array([[cos60, -sin60], [sin60, cos60]])
    vertices = np.array([[0.0, 0.0], [1.0, 0.0]])
    for _ in range(level):
        a, third = vertices[:-1], (vertices[1:] - vertices[:-1]) / 3
        peaks = a + third + third @ turn.T
        refined = np.stack([a, a + third, peaks, a + 2 * third], axis=1).reshape(-1, 2)
        vertices = np.vstack([refined, vertices[-1:]])
    return vertices


def _koch(n: int) -> np.ndarray:
    """Koch curve 0.9 n wide, refined until its segments are under 1 px."""
    width = 0.9 * n
    level = math.ceil(math.log(width) / math.log(3))
    origin = np.array([0.05 * n + 0.3, 0.35 * n + 0.2])
    return _plot(_densify(_koch_vertices(level) * width + origin), n)


def _sierpinski(n: int) -> np.ndarray:
    """Equilateral Sierpinski triangle of side 0.9 n, down to sub-pixel cells."""
    side = 0.9 * n
    level = math.ceil(math.log2(side))
    corners = np.array([[0.0, 0.0], [side, 0.0], [side / 2, side * math.sqrt(3) / 2]])
    corners += np.array([0.05 * n + 0.3, 0.08 * n + 0.6])
    points = corners.mean(axis=0, keepdims=True)
    for _ in range(level):
        points = ((points[None, :, :] + corners[:, None, :]) / 2).reshape(-1, 2)
    return _plot(points, n)


def _random_signs(n: int) -> np.ndarray:
    """Raw values, not a mask: i.i.d. +-1, so sign changes are everywhere."""
    rng = np.random.default_rng(12345)
    return np.where(rng.random((n, n)) < 0.5, -1.0, 1.0)


SHAPES = {
    "line": _line,
    "diagonal": _diagonal,
    "circle": _circle,
    "koch": _koch,
    "sierpinski": _sierpinski,
    "random_signs": _random_signs,
}


@functools.lru_cache(maxsize=None)
def _measured(shape: str, n: int) -> dim.DimensionResult:
    return dim.estimate([SHAPES[shape](n)])


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [pytest.param(4096, marks=pytest.mark.slow), 1024])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_known_dimension(shape, n):
    result = _measured(shape, n)
    true = TRUE_DIMENSION[shape]
    print(
        f"\n{shape:>12} {n}^2  true {true:.4f}  median local slope "
        f"{result.median_local_slope:.4f} ({result.median_local_slope - true:+.4f})  "
        f"fit {result.fit_slope:.4f} ({result.fit_slope - true:+.4f}) "
        f"CI [{result.fit_ci_low:.4f}, {result.fit_ci_high:.4f}]"
    )
    assert abs(result.median_local_slope - true) <= TOLERANCE
    assert abs(result.fit_slope - true) <= TOLERANCE
    assert result.fit_ci_low <= result.fit_slope <= result.fit_ci_high


def test_random_signs_mark_nearly_every_block():
    mask = dim.boundary_mask(_random_signs(256))
    # A 2x2 block of independent fair signs is all-equal with probability 1/8.
    assert mask.shape == (255, 255)
    assert abs(mask.mean() - 7 / 8) < 0.01


# ---------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------


def test_boundary_mask_hand_made():
    values = np.array(
        [
            [-1.0, -2.0, 3.0],
            [-1.0, -5.0, -4.0],
            [-3.0, 0.0, 0.0],
        ]
    )
    expected = np.array(
        [
            [False, True],  # left block all negative; right block holds a 3
            [False, False],  # zero is neither sign: negatives and zeros only
        ]
    )
    np.testing.assert_array_equal(dim.boundary_mask(values), expected)


def test_boundary_mask_matches_notebook_rule():
    rng = np.random.default_rng(3)
    values = rng.standard_normal((300, 300))
    values[rng.random(values.shape) < 0.05] = 0.0
    values[rng.random(values.shape) < 0.02] = np.nan
    blocks = np.lib.stride_tricks.sliding_window_view(values, (2, 2))
    with np.errstate(invalid="ignore"):
        notebook = np.sign(blocks.max(axis=(2, 3)) * blocks.min(axis=(2, 3))) < 0
    np.testing.assert_array_equal(dim.boundary_mask(values), notebook)


def test_boundary_mask_ignores_nan_and_huge_values():
    values = np.array([[1e300, -1e300], [np.nan, -1.0]])
    assert dim.boundary_mask(values).tolist() == [[False]]
    values = np.array([[1e300, -1e300], [1.0, -1.0]])
    assert dim.boundary_mask(values).tolist() == [[True]]


def test_box_counts_tile_exactly():
    full = np.ones((1000, 1000), dtype=bool)
    counts = dim.box_counts(full)
    np.testing.assert_array_equal(counts.counts, counts.boxes_per_side.astype(float) ** 2)
    assert counts.sizes[0] >= dim.DEFAULT_MIN_SIZE
    assert counts.sizes[-1] == 1000
    assert np.all(np.diff(counts.sizes) > 0)


def test_box_counts_pad_non_square_and_reject_empty():
    counts = dim.box_counts(np.ones((50, 200), dtype=bool), min_size=10, n_offsets=1)
    assert counts.image_size == 200
    # Only the top quarter of the padded square holds pixels.
    k = counts.boxes_per_side
    assert counts.counts[k == 20][0] == 20 * 5
    with pytest.raises(ValueError, match="no boundary"):
        dim.box_counts(np.zeros((64, 64), dtype=bool))


def test_student_t_quantile_matches_tables():
    table = {1: 12.706, 2: 4.303, 5: 2.571, 10: 2.228, 30: 2.042, 120: 1.980}
    for dof, value in table.items():
        assert dim.student_t_quantile(0.975, dof) == pytest.approx(value, abs=1e-3)
    assert dim.student_t_quantile(0.95, 10) == pytest.approx(1.812, abs=1e-3)


def test_common_slope_ignores_per_image_offsets():
    x = np.linspace(-6, -2, 9)
    points = [(x, 1.5 * x + 3.0), (x, 1.5 * x + 7.0), (x[:5], 1.5 * x[:5] - 1.0)]
    fit = dim.fit_common_slope(points)
    assert fit.slope == pytest.approx(1.5)
    np.testing.assert_allclose(fit.intercepts, [3.0, 7.0, -1.0])
    assert fit.dof == 23 - 3 - 1
    assert fit.ci_low == pytest.approx(1.5) and fit.ci_high == pytest.approx(1.5)


def test_estimate_pools_images_and_accepts_values():
    values = _random_signs(512)
    result = dim.estimate([values, values > 0, _diagonal(512)], n_offsets=1)
    assert result.n_images == 3
    assert len(result.counts) == len(result.sizes) == len(result.local_slopes) == 3
    assert len(result.local_slopes[0]) == len(result.sizes[0]) - 1
    # Two of the three images are at dimension 2 and one at 1.
    assert result.median_local_slope == pytest.approx(2.0, abs=1e-9)
    assert 1.0 < result.fit_slope < 2.0


def test_inputs_folder_and_files(tmp_path):
    folder = tmp_path / "zoom"
    (folder / "sub").mkdir(parents=True)
    for index in [10, 2, 1]:
        np.savez(folder / f"keyframe_{index}.npz", measure=np.full((4, 5), float(index)))
    np.savez(folder / "sub" / "keyframe_30.npz", measure=np.zeros((4, 5), dtype=np.float32))
    (folder / "notes.txt").write_text("not an image")
    single = tmp_path / "single.npz"
    np.savez(single, measure=-np.ones((3, 3)), extra=np.arange(3))

    measures = list(di.iter_images(di.find_inputs(folder)))
    assert [m[0, 0] for m in measures] == [1.0, 2.0, 10.0, 0.0]
    assert all(m.dtype == np.float64 and m.shape == (4, 5) for m in measures)

    mixed = list(di.iter_images(di.find_inputs([single, str(folder / "keyframe_2.npz")])))
    assert [m.shape for m in mixed] == [(3, 3), (4, 5)]

    np.savez(tmp_path / "bad.npz", values=np.zeros((2, 2)))
    with pytest.raises(DataError, match="measure"):
        list(di.iter_images(di.find_inputs(tmp_path / "bad.npz")))
    with pytest.raises(DataError, match="no such file"):
        di.find_inputs(tmp_path / "missing")


def test_format_table_lists_every_size():
    result = _measured("circle", 1024)
    table = dio.format_table(result)
    print("\n" + table)
    assert f"{result.median_local_slope:.4f}" in table
    for size in result.sizes[0]:
        assert f"{size:.1f}" in table
    many = dim.estimate([_diagonal(256)] * 10, n_offsets=1)
    assert "median N" in dio.format_table(many)


def test_write_loglog_png(tmp_path):
    result = dim.estimate([_koch(1024), _circle(1024), _sierpinski(1024)])
    path = dio.write_loglog_png(result, tmp_path / "loglog.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = iio.imread(path)
    assert image.shape == (600, 800, 3) and image.dtype == np.uint8
    # Something besides the white background was drawn, in colour as well.
    assert (image < 250).any(axis=2).mean() > 0.01
    assert (np.ptp(image.astype(int), axis=2) > 60).any()


def test_small_image_keeps_median_when_fit_range_is_empty(tmp_path):
    result = dim.estimate(_diagonal(64))
    assert result.median_local_slope == pytest.approx(1.0)
    assert math.isnan(result.fit_slope) and math.isnan(result.fit_ci_low)
    dio.format_table(result)
    dio.write_loglog_png(result, tmp_path / "small.png")
    with pytest.raises(ValueError, match="fewer than two box sizes"):
        dim.estimate(_diagonal(15))


def _filled_disc(n: int) -> np.ndarray:
    """Signed values, -1 inside a disc and +1 outside: a boundary that survives subsampling."""
    yy, xx = np.mgrid[0:n, 0:n] + 0.37
    r = np.hypot(xx - 0.5 * n, yy - 0.5 * n)
    return np.where(r < 0.4 * n, -1.0, 1.0)


def test_subsample_keeps_the_dimension_of_a_smooth_boundary():
    values = _filled_disc(2048)
    for stride in (1, 2, 4):
        (sub,) = list(dim.subsample([values], stride))
        assert sub.shape == (2048 // stride, 2048 // stride)
        result = dim.estimate([sub])
        print(f"\ndisc 2048^2 / stride {stride}: median {result.median_local_slope:.4f} fit {result.fit_slope:.4f}")
        assert abs(result.median_local_slope - 1.0) <= TOLERANCE
        assert abs(result.fit_slope - 1.0) <= TOLERANCE
    (same,) = list(dim.subsample([values], 1))
    assert same is values or np.array_equal(same, values)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_subsample_rejects_bad_stride(bad):
    with pytest.raises(ValueError, match="stride"):
        list(dim.subsample([np.zeros((4, 4))], bad))


def test_cli_stride(tmp_path):
    import json
    import subprocess
    import sys

    f = tmp_path / "disc.npz"
    np.savez(f, measure=_filled_disc(512))
    run = [sys.executable, "-m", "fractaltrain", "dimension", str(f)]
    r = subprocess.run(run + ["--stride", "2", "--json", str(tmp_path / "d.json")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rec = json.loads((tmp_path / "d.json").read_text())
    assert rec["stride"] == 2 and abs(rec["fit_slope"] - 1.0) < 0.1
    r = subprocess.run(run + ["--stride", "0"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().startswith("error: dimension: --stride")
    assert "Traceback" not in r.stderr
