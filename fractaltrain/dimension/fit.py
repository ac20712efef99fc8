"""The least-squares slope that :mod:`fractaltrain.dimension.boxcount` reports, with its 95 % interval.

Kept apart from box counting because it is plain statistics: one slope shared
by several images (each with its own intercept) and a Student-t confidence
interval computed in closed form, so the package needs no scipy.  Everything
here is plain numpy; importing the module has no side effects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def frozen_array(values, dtype=float) -> np.ndarray:
    """Return a read-only copy, so results stay immutable like their dataclass."""
    array = np.array(values, dtype=dtype)
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class SlopeFit:
    """Least-squares slope of ``log N`` on ``log(1/size)``, shared by images.

    Attributes
    ----------
    slope : float
        The dimension estimate.
    ci_low, ci_high : float
        Two-sided 95 % confidence interval (NaN if there are too few points).
    stderr : float
        Standard error of the slope.
    intercepts : ndarray of float
        One intercept per image that entered the fit (each keyframe has its
        own amount of boundary).
    dof : int
        Residual degrees of freedom, ``points - images - 1``.
    n_points : int
        Number of (size, count) points used.
    """

    slope: float
    ci_low: float
    ci_high: float
    stderr: float
    intercepts: np.ndarray
    dof: int
    n_points: int


def _student_t_coverage(t: float, dof: int) -> float:
    """``P(|T| <= t)`` for Student's t with integer ``dof`` (closed form).

    Abramowitz & Stegun 26.7.3: with ``theta = atan(t / sqrt(dof))`` the
    probability is a finite cosine series, so no special functions (and no
    scipy) are needed.
    """
    theta = math.atan(t / math.sqrt(dof))
    sin_t, cos2 = math.sin(theta), math.cos(theta) ** 2
    if dof % 2 == 0:
        term, total = 1.0, 1.0
        for j in range(1, dof // 2):
            term *= cos2 * (2 * j - 1) / (2 * j)
            total += term
        return sin_t * total
    if dof == 1:
        return 2 * theta / math.pi
    term = math.cos(theta)
    total = term
    for j in range(1, (dof - 1) // 2):
        term *= cos2 * (2 * j) / (2 * j + 1)
        total += term
    return 2 / math.pi * (theta + sin_t * total)


def student_t_quantile(probability: float, dof: int) -> float:
    """Upper quantile ``t`` with ``P(T <= t) = probability`` (probability > 0.5).

    Solved by bisection on the closed-form CDF; e.g. ``0.975`` with 10
    degrees of freedom gives 2.228.
    """
    if not 0.5 < probability < 1 or dof < 1:
        raise ValueError("need 0.5 < probability < 1 and dof >= 1")
    coverage = 2 * probability - 1
    low, high = 0.0, 1.0
    while _student_t_coverage(high, dof) < coverage:
        low, high = high, high * 2
    for _ in range(100):
        mid = 0.5 * (low + high)
        if _student_t_coverage(mid, dof) < coverage:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def fit_common_slope(points: Sequence[tuple[np.ndarray, np.ndarray]]) -> SlopeFit:
    """Least squares with one slope for all images and one intercept each.

    Keyframes of a zoom hold different amounts of boundary, so their lines
    are parallel but offset; pooling them under a single intercept would tilt
    the slope.  Centring each image's points on its own mean removes the
    intercepts; the slope and its standard error then come from the pooled
    centred points, with ``points - images - 1`` residual degrees of
    freedom.  The interval assumes independent residuals, which box counts
    at neighbouring sizes are not, so read it as a lower bound on the
    uncertainty.

    Parameters
    ----------
    points : sequence of (x, y) arrays
        Per image, ``x = log(1/size)`` and ``y = log N``.  Images with fewer
        than two points carry no slope information and are left out.

    Returns
    -------
    SlopeFit
        All NaN (``dof = 0``) when no image has two points, so that a small
        image still gets its median local slope from :func:`estimate`.
    """
    points = [(np.asarray(x, float), np.asarray(y, float)) for x, y in points if len(x) >= 2]
    if not points:
        return SlopeFit(math.nan, math.nan, math.nan, math.nan, frozen_array([]), 0, 0)
    sxx = sum(float(np.sum((x - x.mean()) ** 2)) for x, _ in points)
    sxy = sum(float(np.sum((x - x.mean()) * (y - y.mean()))) for x, y in points)
    slope = sxy / sxx
    intercepts = np.array([y.mean() - slope * x.mean() for x, y in points])
    rss = sum(
        float(np.sum((y - b - slope * x) ** 2)) for (x, y), b in zip(points, intercepts)
    )
    n_points = sum(len(x) for x, _ in points)
    dof = n_points - len(points) - 1
    if dof < 1:
        stderr = ci_low = ci_high = math.nan
    else:
        stderr = math.sqrt(rss / dof / sxx)
        half = student_t_quantile(0.975, dof) * stderr
        ci_low, ci_high = slope - half, slope + half
    return SlopeFit(slope, ci_low, ci_high, stderr, frozen_array(intercepts), dof, n_points)
