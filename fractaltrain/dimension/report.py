"""Reports of a :class:`~fractaltrain.dimension.boxcount.DimensionResult`: a text table and a log-log plot.

The table lists the per-scale box counts under the two estimates, so a reader
can see where the local slopes wander; the plot shows the same counts with the
fitted line (PNG, written atomically like every other output; drawn with
Pillow, no matplotlib).  Reading the images is :mod:`fractaltrain.dimension.inputs`'s job.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from fractaltrain.dimension.boxcount import DimensionResult
from fractaltrain.compute.files import atomic_write_bytes

# ---------------------------------------------------------------------------
# Text report
# ---------------------------------------------------------------------------


def _table_lines(header: list[str], rows: list[list[str]]) -> list[str]:
    """Right-aligned columns separated by two spaces, with a rule under the header."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def format_table(result: DimensionResult, max_columns: int = 8) -> str:
    """Per-scale box counts as a plain-text table, under the two estimates.

    One row per box size.  With up to ``max_columns`` images (all the same
    size) each image gets a column; with more, the columns summarise them
    (min, median, max count).  The last column is the median over images of
    the local slope from this size to the next larger one, and ``*`` marks
    the sizes inside the least-squares fit.
    """
    lines = [
        f"images: {result.n_images}",
        f"median local slope (paper's estimator): {result.median_local_slope:.4f}",
        f"least-squares slope: {result.fit_slope:.4f}  "
        f"95% CI [{result.fit_ci_low:.4f}, {result.fit_ci_high:.4f}]",
    ]
    same = all(np.array_equal(s, result.sizes[0]) for s in result.sizes)
    groups = [list(range(result.n_images))] if same else [[i] for i in range(result.n_images)]
    for group in groups:
        sizes = result.sizes[group[0]]
        counts = np.array([result.counts[i] for i in group])
        slopes = np.array([result.local_slopes[i] for i in group])
        in_fit = sizes <= result.fit_max_size[group[0]]
        if len(group) <= max_columns:
            names = [f"image {i}" for i in group]
            columns = [[f"{c:.1f}" for c in row] for row in counts]
        else:
            names = ["min N", "median N", "max N"]
            stats = [counts.min(0), np.median(counts, 0), counts.max(0)]
            columns = [[f"{c:.1f}" for c in stat] for stat in stats]
        slope_cells = [f"{s:.3f}" for s in np.median(slopes, axis=0)] + [""]
        rows = [
            [f"{size:.1f}" + ("*" if fit else " "), *(col[j] for col in columns), slope_cells[j]]
            for j, (size, fit) in enumerate(zip(sizes, in_fit))
        ]
        lines.append("")
        lines.extend(_table_lines(["size px", *names, "slope to next"], rows))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Log-log plot
# ---------------------------------------------------------------------------

# Margins around the plotting area, in pixels.
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 90, 30, 60, 70
_BLACK, _GREY = (0, 0, 0), (225, 225, 225)


def _dashed(draw, p0, p1, colour, width: int, dash: int) -> None:
    """A straight line drawn as stretches of ``dash`` px with gaps as long."""
    length = math.dist(p0, p1)
    for start in np.arange(0.0, length, 2 * dash):
        a, b = start / length, min(start + dash, length) / length
        draw.line([(p0[0] + t * (p1[0] - p0[0]), p0[1] + t * (p1[1] - p0[1])) for t in (a, b)],
                  fill=colour, width=width)


def _image_colour(index: int, total: int) -> tuple[int, int, int]:
    """Blue for the first image through to red for the last (zoom order)."""
    f = index / max(total - 1, 1)
    return (int(40 + 200 * f), int(90 - 30 * f), int(220 - 180 * f))


def _ticks(low: float, high: float) -> np.ndarray:
    """Log10 positions of 1, 2, 5 x 10^k inside ``[low, high]`` (decades only
    when the range spans more than three decades, to keep labels apart)."""
    mantissas = [1.0] if high - low > 3 else [1.0, 2.0, 5.0]
    values = [math.log10(m) + e for e in range(math.floor(low), math.ceil(high) + 1) for m in mantissas]
    return np.array([v for v in values if low - 1e-9 <= v <= high + 1e-9])


class _LogAxes:
    """Maps (log10 size, log10 count) to pixel positions of the plotting area."""

    def __init__(self, width, height, result: DimensionResult):
        self.left, self.right = _MARGIN_LEFT, width - _MARGIN_RIGHT
        self.top, self.bottom = _MARGIN_TOP, height - _MARGIN_BOTTOM
        ranges = []  # log10 ranges of all sizes and counts, with 5 % room on each side
        for values in (result.sizes, result.counts):
            logs = np.log10(np.concatenate(values))
            pad = 0.05 * max(float(np.ptp(logs)), 0.2)
            ranges.append((float(logs.min()) - pad, float(logs.max()) + pad))
        self.x_range, self.y_range = ranges

    def __call__(self, lx: float, ly: float) -> tuple[float, float]:
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        px = self.left + (lx - x0) / (x1 - x0) * (self.right - self.left)
        py = self.bottom - (ly - y0) / (y1 - y0) * (self.bottom - self.top)
        return px, py


def _draw_frame(draw, axes: _LogAxes, font) -> None:
    """Grid lines, axes, ticks and their labels."""
    for lx in _ticks(*axes.x_range):
        px, _ = axes(lx, axes.y_range[0])
        draw.line([(px, axes.top), (px, axes.bottom)], fill=_GREY, width=1)
        draw.line([(px, axes.bottom), (px, axes.bottom + 6)], fill=_BLACK, width=2)
        draw.text((px, axes.bottom + 10), f"{10.0 ** lx:.4g}", fill=_BLACK, font=font, anchor="mt")
    for ly in _ticks(*axes.y_range):
        _, py = axes(axes.x_range[0], ly)
        draw.line([(axes.left, py), (axes.right, py)], fill=_GREY, width=1)
        draw.line([(axes.left - 6, py), (axes.left, py)], fill=_BLACK, width=2)
        draw.text((axes.left - 10, py), f"{10.0 ** ly:.4g}", fill=_BLACK, font=font, anchor="rm")
    draw.line([(axes.left, axes.top), (axes.left, axes.bottom), (axes.right, axes.bottom)], fill=_BLACK,
              width=2, joint="curve")


def _draw_data(draw, axes: _LogAxes, result: DimensionResult) -> None:
    """One polyline with square markers per image, then the dashed fit."""
    marker = 5 if result.n_images <= 8 else 3
    for i, (sizes, counts) in enumerate(zip(result.sizes, result.counts)):
        colour = _image_colour(i, result.n_images)
        points = [axes(math.log10(s), math.log10(c)) for s, c in zip(sizes, counts)]
        draw.line(points, fill=colour, width=2, joint="curve")
        for px, py in points:
            draw.rectangle([px - marker / 2, py - marker / 2, px + marker / 2, py + marker / 2], fill=colour)
    if not math.isfinite(result.fit_slope):
        return
    # Fitted line: log N = b + D log(1/s), with b averaged over the images.
    intercept = float(np.mean(result.fit_intercepts))
    ends = [axes(math.log10(s), (intercept - result.fit_slope * math.log(s)) / math.log(10))
            for s in (min(float(s[0]) for s in result.sizes), max(result.fit_max_size))]
    _dashed(draw, *ends, _BLACK, 2, dash=8)


def _draw_legend(draw, axes: _LogAxes, n_images: int, font) -> None:
    """Colour key in the top-right corner, where N-versus-size plots are empty."""
    x1 = axes.right - 20
    x0 = x1 - 30
    entries = [(i, f"image {i}") for i in range(n_images)] if n_images <= 8 else [
        (0, "first image"), (n_images - 1, f"last image ({n_images})")]
    for row, (index, text) in enumerate(entries):
        y = axes.top + 18 + 20 * row
        draw.line([(x0, y), (x1, y)], fill=_image_colour(index, n_images), width=3)
        draw.text((x0 - 8, y), text, fill=_BLACK, font=font, anchor="rm")
    y = axes.top + 18 + 20 * len(entries)
    _dashed(draw, (x0, y), (x1, y), _BLACK, 2, dash=6)
    draw.text((x0 - 8, y), "fit", fill=_BLACK, font=font, anchor="rm")


def write_loglog_png(result: DimensionResult, path, width: int = 800, height: int = 600) -> Path:
    """Draw counts versus box size on log-log axes and save it as a PNG (atomically).

    Each image is one polyline, coloured from blue (first) to red (last); the
    dashed black line is the least-squares fit over its range, drawn with the
    mean of the per-image intercepts.  Returns the path written.
    """
    from PIL import Image, ImageDraw, ImageFont

    font, title_font = ImageFont.load_default(size=14), ImageFont.load_default(size=16)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    axes = _LogAxes(width, height, result)
    _draw_frame(draw, axes, font)
    _draw_data(draw, axes, result)
    _draw_legend(draw, axes, result.n_images, font)
    draw.text(((axes.left + axes.right) / 2, height - 25), "box size (px)", fill=_BLACK, font=font, anchor="mm")
    draw.text((12, axes.top - 25), "boxes with boundary", fill=_BLACK, font=font, anchor="lm")
    draw.text((axes.right, axes.top - 25), f"dashed: least-squares fit up to {max(result.fit_max_size):.0f} px",
              fill=_BLACK, font=font, anchor="rm")
    title = (
        f"box counting, {result.n_images} image(s): median local slope "
        f"{result.median_local_slope:.3f}, fit {result.fit_slope:.3f} "
        f"[{result.fit_ci_low:.3f}, {result.fit_ci_high:.3f}]"
    )
    draw.text((width / 2, 12), title, fill=_BLACK, font=title_font, anchor="mt")
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path
