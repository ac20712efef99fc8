"""Box-counting fractal dimension of the converge/diverge boundary.

A rendered image holds one raw convergence value (``measure``) per pixel:
negative where training converged, positive where it diverged.  The
boundary between the two regions is what the paper calls fractal, and its
box-counting dimension is the number the paper reports for each condition
(1.66 for the tanh baseline, and so on).

The pipeline is

1. :func:`boundary_mask` -- pixels whose 2x2 neighbourhood changes sign;
2. :func:`box_counts` -- for box sizes log-spaced from ``min_size`` up to the
   image size, how many boxes contain boundary;
3. two estimators of the slope of ``log N`` against ``log(1/size)``:

   * :func:`median_local_slope` -- the paper's figure: the slope between
     every pair of consecutive sizes, pooled over all images, and their
     median.  Report it to compare with the paper's numbers;
   * :func:`~fractaltrain.dimension.fit.fit_common_slope` -- a least-squares line over the scaling range
     (sizes up to ``fit_max_fraction`` of the image), one slope shared by all
     images, with a 95 % confidence interval from the t distribution.  This
     is the headline estimate: the median also takes in the largest boxes,
     where a boundary that crosses the whole image occupies every box and
     the local slope tends to 2, which pulls the median up (by 0.05-0.2 on
     zero sets of fractional Brownian surfaces, see ``docs/dimension.md``).

:func:`estimate` runs the whole pipeline on a list of images.  The rest of
the job lives next door, one job per module: the least-squares fit and its
Student-t interval in :mod:`fractaltrain.dimension.fit`, reading renders and
masks in :mod:`fractaltrain.dimension.inputs`, and reporting the result
(table, log-log plot) in :mod:`fractaltrain.dimension.report`.

How the boxes are laid out (and why)
------------------------------------
A box size ``s`` that does not divide the image leaves a strip of partial
boxes at the edge.  Counting them as whole boxes inflates the count for a
boundary that fills the image, cropping them loses data, and both make the
count a staircase in ``s`` that throws the local slopes about.  Instead,
for every size the image is cut into exactly ``k x k`` boxes, ``k`` an
integer, whose edges are ``round(i * n / k)``: boxes are ``floor(n/k)`` or
``ceil(n/k)`` pixels wide, tile the image exactly, and the nominal size is
``s = n / k``.  An image whose boundary is everywhere then gives exactly
``N = k**2`` (dimension 2.000), and a line from corner to corner exactly
``N = k``.  Non-square images are padded with empty pixels to a square.

Self-similar sets (Koch curve, Sierpinski triangle) give counts that
oscillate with the phase of the grid (lacunarity); where the range of sizes
does not hold a whole number of periods, that oscillation biases the slope.
Averaging the count over a few grid positions damps it: the mask is shifted
cyclically by a few fixed offsets (the first offset is zero, i.e. the plain
aligned grid) and the counts are averaged.  Cyclic shifting keeps the exact
tiling; its cost is a seam where opposite edges meet, which adds a box or
so at the largest sizes -- one more reason the fit stops at
``fit_max_fraction`` of the image.

Defaults
--------
``min_size = 10`` px, as in the paper; ``n_sizes = 20`` log-spaced sizes
(fewer remain after rounding ``k`` to integers); ``n_offsets = 4`` grid
positions; ``fit_max_fraction = 1/8``.  With these the validation shapes in
``tests/test_dimension.py`` (straight lines, circle, Koch curve, Sierpinski
triangle, random signs; at 4096 x 4096 like the paper's keyframes and at
1024 x 1024) come out within 0.05 of their true dimension with both
estimators; see ``docs/dimension.md`` for the measured values and for how
much they move when the shapes are placed differently.  A 1024 px image
leaves under seven octaves between 10 px and the image size, and its
estimates are clearly noisier than at 4096 px.

Everything here is plain numpy; importing the module has no side effects.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from fractaltrain.boundary import boundary_mask, box_sums, integral_image  # noqa: F401 (boundary_mask: part of this module's API)
from fractaltrain.dimension.fit import SlopeFit, fit_common_slope, student_t_quantile  # noqa: F401  (part of this API)
from fractaltrain.dimension.fit import frozen_array as _frozen_array

DEFAULT_MIN_SIZE = 10
"""Smallest box side in pixels (the paper's 10 px)."""

DEFAULT_N_SIZES = 20
"""Number of log-spaced sizes requested before rounding to whole boxes."""

DEFAULT_N_OFFSETS = 4
"""Grid positions the counts are averaged over (1 = aligned grid only)."""

DEFAULT_FIT_MAX_FRACTION = 1 / 8
"""Largest box used by the least-squares fit, as a fraction of the image."""


# ---------------------------------------------------------------------------
# Result types
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BoxCounts:
    """Box counts of one boundary mask.

    Attributes
    ----------
    sizes : ndarray of float, increasing
        Nominal box side ``n / k`` in pixels.
    counts : ndarray of float
        Boxes containing boundary, averaged over the grid offsets (so not
        necessarily whole numbers).
    boxes_per_side : ndarray of int, decreasing
        ``k``: the image is cut into ``k x k`` boxes for the matching size.
    image_size : int
        Side ``n`` of the (square-padded) mask.
    """

    sizes: np.ndarray
    counts: np.ndarray
    boxes_per_side: np.ndarray
    image_size: int


@dataclass(frozen=True)
class DimensionResult:
    """Everything :func:`estimate` measured.

    Attributes
    ----------
    median_local_slope : float
        The paper's estimator: median of all local slopes of all images.
    fit_slope, fit_ci_low, fit_ci_high : float
        Least-squares slope over the scaling range and its 95 % interval.
    sizes : tuple of ndarray
        Box sizes per image (identical for images of the same shape).
    counts : tuple of ndarray
        Box counts per image, matching ``sizes``.
    local_slopes : tuple of ndarray
        Per image, the slope between each pair of consecutive sizes.
    n_images : int
        Number of images.
    fit_max_size : tuple of float
        Per image, the largest box size that entered the fit.
    fit_intercepts : ndarray of float
        Intercepts of the fit, one per image that had at least two sizes in
        the scaling range; used to draw the fitted line.
    """

    median_local_slope: float
    fit_slope: float
    fit_ci_low: float
    fit_ci_high: float
    sizes: tuple
    counts: tuple
    local_slopes: tuple
    n_images: int
    fit_max_size: tuple
    fit_intercepts: np.ndarray


# ---------------------------------------------------------------------------
# Boundary and box counting
# ---------------------------------------------------------------------------


def boxes_per_side(image_size: int, min_size: float, n_sizes: int) -> np.ndarray:
    """Boxes per side ``k`` for sizes log-spaced from ``min_size`` to the image.

    Sizes are ``image_size / k`` with integer ``k`` so that boxes tile the
    image exactly (see the module notes); rounding merges some of the
    ``n_sizes`` requested sizes at the large end, where consecutive ``k`` are
    far apart in log scale.

    Returns
    -------
    ndarray of int, decreasing (so the sizes increase)
    """
    if min_size <= 0 or n_sizes < 2:
        raise ValueError("min_size must be positive and n_sizes at least 2")
    k_max = max(1, math.floor(image_size / min_size))  # smallest box >= min_size
    ks = np.unique(np.rint(np.geomspace(1.0, k_max, n_sizes)).astype(np.int64))
    return ks[::-1]


def grid_offsets(image_size: int, n_offsets: int) -> list[tuple[int, int]]:
    """Cyclic shifts ``(dy, dx)`` of the mask, the first being ``(0, 0)``.

    The shifts follow a two-dimensional low-discrepancy (R2) sequence in
    fractions of the image, so for every box size the grid phases
    ``shift mod size`` are spread out rather than repeated.
    """
    if n_offsets < 1:
        raise ValueError("n_offsets must be at least 1")
    golden2 = 1.324717957244746  # plastic number, root of x**3 = x + 1
    a1, a2 = 1 / golden2, 1 / golden2**2
    return [
        (int((j * a1) % 1.0 * image_size), int((j * a2) % 1.0 * image_size))
        for j in range(n_offsets)
    ]


def _square_mask(mask: np.ndarray) -> np.ndarray:
    """Pad a boolean mask with empty pixels at the bottom/right to a square."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"need a non-empty 2-D mask, got shape {mask.shape}")
    height, width = mask.shape
    side = max(height, width)
    if height == width:
        return mask
    padded = np.zeros((side, side), dtype=bool)
    padded[:height, :width] = mask
    return padded


def _occupied_boxes(table: np.ndarray, k: int) -> int:
    """Number of the ``k x k`` tiling boxes that hold at least one pixel."""
    side = table.shape[0] - 1
    edges = np.rint(np.linspace(0, side, k + 1)).astype(np.int64)
    lo, hi = edges[:-1], edges[1:]
    sums = box_sums(table, lo[:, None], hi[:, None], lo[None, :], hi[None, :])
    return int(np.count_nonzero(sums))


def box_counts(
    mask: np.ndarray,
    min_size: float = DEFAULT_MIN_SIZE,
    n_sizes: int = DEFAULT_N_SIZES,
    n_offsets: int = DEFAULT_N_OFFSETS,
) -> BoxCounts:
    """Count boxes that contain boundary, for log-spaced box sizes.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
        Boundary pixels.  Non-square masks are padded to a square.
    min_size : float
        Smallest box side in pixels.  Below ~10 px the count mostly reflects
        how the boundary was rasterised rather than its geometry.
    n_sizes : int
        Sizes requested between ``min_size`` and the image size.
    n_offsets : int
        Grid positions to average over (see :func:`grid_offsets`).

    Returns
    -------
    BoxCounts
    """
    square = _square_mask(mask)
    if not square.any():
        raise ValueError("mask has no boundary pixels; its dimension is undefined")
    side = square.shape[0]
    ks = boxes_per_side(side, min_size, n_sizes)
    if len(ks) < 2:
        raise ValueError(f"a {side} px image holds fewer than two box sizes >= {min_size} px")
    totals = np.zeros(len(ks))
    offsets = grid_offsets(side, n_offsets)
    for dy, dx in offsets:
        table = integral_image(np.roll(square, (dy, dx), axis=(0, 1)))
        totals += [_occupied_boxes(table, int(k)) for k in ks]
    return BoxCounts(
        sizes=_frozen_array(side / ks),
        counts=_frozen_array(totals / len(offsets)),
        boxes_per_side=_frozen_array(ks, dtype=np.int64),
        image_size=side,
    )


# ---------------------------------------------------------------------------
# Estimators
# ---------------------------------------------------------------------------


def local_slopes(counts: BoxCounts) -> np.ndarray:
    """Slope of ``log N`` versus ``log(1/size)`` between consecutive sizes."""
    log_n = np.log(counts.counts)
    log_inv_size = -np.log(counts.sizes)
    return np.diff(log_n) / np.diff(log_inv_size)


def median_local_slope(all_counts: Sequence[BoxCounts]) -> float:
    """The paper's estimator: median of every local slope of every image.

    The median shrugs off the few wild slopes at the largest sizes, where a
    count of a handful of boxes changes by whole boxes.
    """
    slopes = np.concatenate([local_slopes(c) for c in all_counts])
    return float(np.median(slopes))


def _fit_points(counts: BoxCounts, max_size: float) -> tuple[np.ndarray, np.ndarray]:
    """``(log(1/size), log N)`` for the sizes inside the scaling range."""
    keep = counts.sizes <= max_size
    return -np.log(counts.sizes[keep]), np.log(counts.counts[keep])


def _as_mask(image: np.ndarray) -> np.ndarray:
    """Boolean input is already a boundary; anything else is raw values."""
    image = np.asarray(image)
    return image if image.dtype == bool else boundary_mask(image)


def estimate(
    images,
    min_size: float = DEFAULT_MIN_SIZE,
    n_sizes: int = DEFAULT_N_SIZES,
    n_offsets: int = DEFAULT_N_OFFSETS,
    fit_max_fraction: float = DEFAULT_FIT_MAX_FRACTION,
    labels: Sequence[str] | None = None,
) -> DimensionResult:
    """Box-counting dimension of the boundary in one or more images.

    Parameters
    ----------
    images : ndarray or sequence of ndarray
        Boolean arrays are used directly as boundary masks; other arrays are
        raw ``measure`` values and go through :func:`boundary_mask` first.
        Typically all keyframes of one zoom sequence.
    min_size, n_sizes, n_offsets
        Passed to :func:`box_counts`.
    labels : sequence of str, optional
        A name per image (e.g. its file) for error messages; default ``image N``.
    fit_max_fraction : float
        The least-squares fit uses sizes up to this fraction of the image;
        larger boxes number only a handful and mostly measure the image's
        own finite extent.  The median of local slopes uses all sizes, as
        the paper does.

    Returns
    -------
    DimensionResult
    """
    if isinstance(images, np.ndarray) and images.ndim == 2:
        images = [images]
    all_counts = []
    for index, image in enumerate(images):
        try:
            all_counts.append(box_counts(_as_mask(image), min_size, n_sizes, n_offsets))
        except ValueError as error:
            name = labels[index] if labels is not None and index < len(labels) else f"image {index}"
            raise ValueError(f"{name}: {error}") from error
    if not all_counts:
        raise ValueError("no images given")
    max_sizes = tuple(fit_max_fraction * c.image_size for c in all_counts)
    fit = fit_common_slope([_fit_points(c, m) for c, m in zip(all_counts, max_sizes)])
    return DimensionResult(
        median_local_slope=median_local_slope(all_counts),
        fit_slope=fit.slope,
        fit_ci_low=fit.ci_low,
        fit_ci_high=fit.ci_high,
        sizes=tuple(c.sizes for c in all_counts),
        counts=tuple(c.counts for c in all_counts),
        local_slopes=tuple(_frozen_array(local_slopes(c)) for c in all_counts),
        n_images=len(all_counts),
        fit_max_size=max_sizes,
        fit_intercepts=fit.intercepts,
    )


def subsample(measures: Iterable[np.ndarray], stride: int) -> Iterator[np.ndarray]:
    """Every ``stride``-th pixel of each image, in both directions.

    The result samples the same windows at 1/``stride`` of the resolution
    (pixel centres shifted by less than one coarse pixel), so comparing the
    estimate at strides 1, 2, 4 shows how far the box-counting figure drifts
    with resolution without training anything again (PAPER.md quotes such a
    drift: 1.51 at 128², 1.63 at 256², 1.69 at 512²).
    """
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be a whole number >= 1, got {stride!r}")
    for m in measures:
        yield m[::stride, ::stride]
