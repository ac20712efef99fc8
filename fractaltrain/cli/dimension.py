"""``fractaltrain dimension``: box-counting dimension of the converge/diverge boundary."""

from __future__ import annotations

from typing import Optional

import typer

from fractaltrain.cli.common import UsageError, guarded, out_file
from fractaltrain.errors import InputError


@guarded
def dimension(
    paths: list[str] = typer.Argument(
        ..., help="render .npz files, zoom output folders (all keyframes), or boundary masks (.npy or PNG, "
        "non-zero = boundary)."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Write the log-log box-count plot (PNG) here."),
    min_size: float = typer.Option(10.0, "--min-size", help="Smallest box edge in pixels (the paper uses 10)."),
    json_out: Optional[str] = typer.Option(None, "--json", help="Also write the result as JSON here."),
    stride: int = typer.Option(
        1, "--stride", help="Use every STRIDE-th pixel: the same windows at 1/STRIDE resolution, "
        "to see how the estimate drifts with resolution."),
    member: Optional[int] = typer.Option(
        None, "--member", help="For ensemble renders: the sign boundary of member K instead of the "
        "P(converge) = 1/2 level."),
) -> None:
    """Box-counting fractal dimension of the converge/diverge boundary.

    Boundary pixels are 2x2 neighbourhoods whose measure changes sign (or the non-zero pixels
    of a mask; for an ensemble render, the 1/2 level of P(converge)).  Reports the paper's estimator (median of local slopes over all images) and a
    least-squares fit over the scaling range with a 95% interval, and prints the per-scale counts.
    """
    import json
    import math

    from fractaltrain.dimension import boxcount as dim
    from fractaltrain.dimension import inputs
    from fractaltrain.dimension import report

    if stride < 1:
        raise UsageError(f"dimension: --stride must be a whole number >= 1, got {stride}")
    if not (math.isfinite(min_size) and 1 <= min_size <= 1e6):
        raise UsageError(f"--min-size: must be a number of pixels between 1 and 1000000, got {min_size}")
    plot_path, json_path = out_file(plot, "--plot"), out_file(json_out, "--json")
    if not paths or any(not p for p in paths):
        raise UsageError("dimension: expected files or folders, got an empty name")
    files = inputs.find_inputs(paths)
    if not files:
        raise UsageError(f"dimension: no .npz files in {', '.join(paths)[:200]}")
    try:
        result = dim.estimate(dim.subsample(inputs.iter_images(files, member), stride), min_size=min_size,
                              labels=inputs.labels(files))
    except (KeyError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise UsageError(f"dimension: {exc}") from None
    typer.echo(report.format_table(result))
    if plot_path is not None:
        try:
            report.write_loglog_png(result, plot_path)  # atomic, like every other output
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(plot_path)) from None
        typer.echo(f"wrote {plot_path}")
    if json_path is not None:
        from fractaltrain.compute.files import atomic_write_bytes

        rec = {
            "files": [str(f) for f in files],
            "median_local_slope": result.median_local_slope,
            "fit_slope": result.fit_slope,
            "fit_ci95": [result.fit_ci_low, result.fit_ci_high],
            "n_images": result.n_images,
            "stride": stride,
        }
        atomic_write_bytes(json_path, (json.dumps(rec, indent=2) + "\n").encode())
