"""What a job will need, estimated before anything is allocated, and refused if it cannot fit.

A config can ask for a network with a million hidden units, 10^12 data points
or 10^12 training steps; numpy would then fail with a MemoryError deep inside
the problem set-up, or the kernel would run for years.  :func:`check` estimates
memory (weights and data, per-thread kernel scratch, one tile, the assembled
image and its outputs) and work (pixel-steps and floating-point operations) and
raises :class:`~fractaltrain.errors.ResourceError` with the figures when the
memory exceeds this machine's or the work exceeds :data:`MAX_PIXEL_STEPS` /
:data:`MAX_FLOPS`.  The estimates are deliberately rough (within a factor of
two); they exist to refuse the impossible up front, not to plan a run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from fractaltrain.columns import CHUNK, LANES, N_OUT
from fractaltrain.errors import ResourceError, physical_memory

MAX_PIXEL_STEPS = 1e15  # ~100 years at 3e5 pixel-steps/s on one 2-core machine; a day on a large cluster
MAX_FLOPS = 1e19  # ~5 years at 70 GFLOP/s
BYTES_PER_IMAGE_PIXEL = 160  # raw results, npz arrays, colour equalisation and RGB


@dataclass(frozen=True)
class Estimate:
    problem_bytes: int  # weights, data, probe, minibatch index sequence
    scratch_bytes: int  # kernel scratch of every thread
    tile_bytes: int  # one tile's hyperparameter table and results
    image_bytes: int  # the largest assembled image and its outputs
    pixel_steps: float
    flops: float

    @property
    def memory(self) -> int:
        return self.problem_bytes + self.scratch_bytes + self.tile_bytes + self.image_bytes


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB"


def estimate(cfg, images: list[tuple[int, int]] | None = None) -> Estimate:
    """Memory and work of computing ``images`` (width, height) of ``cfg`` (default: its resolution)."""
    net = cfg.network
    shapes = net.layer_shapes()
    n_params = sum(a * b for a, b in shapes)
    n = cfg.data_size
    batch = cfg.batch_size
    steps = cfg.training.steps
    problem = 8 * (n_params + n * (net.inputs + net.output_dim) + net.inputs)
    if batch is not None:
        problem += 8 * steps * batch
    wmax = max(max(a, b) for a, b in shapes)
    hidden = net.width * (net.depth - 1)
    threads = os.cpu_count() or 1
    per_block = 8 * LANES * (2 * n_params + 2 * hidden + 3 * wmax + net.output_dim + 64)
    per_block += 8 * CHUNK * LANES * (net.width + net.output_dim) * 4  # depth-2 fast path chunks
    scratch = threads * per_block
    images = images or [cfg.resolution]
    tile_px = max(min(cfg.tile, w) * min(cfg.tile, h) for w, h in images)
    tile = tile_px * 8 * (net.depth + 3 + 2 + 2 * N_OUT)
    image = max(w * h for w, h in images) * BYTES_PER_IMAGE_PIXEL
    pixels = sum(w * h for w, h in images) * (1 if cfg.ensemble is None else cfg.ensemble.members)
    pixel_steps = float(pixels) * float(steps)
    eval_points = n if batch is None else batch
    flops_per_step = 2.0 * n * n_params + 4.0 * eval_points * n_params
    return Estimate(problem, scratch, tile, image, pixel_steps, pixel_steps * flops_per_step)


def check(cfg, images: list[tuple[int, int]] | None = None, what: str = "this job") -> Estimate:
    """Raise ResourceError if ``cfg`` (for ``images``) cannot fit; return the estimate otherwise."""
    est = estimate(cfg, images)
    mem = physical_memory()
    if mem is not None and est.memory > mem:
        parts = [
            ("weights and data", est.problem_bytes),
            ("training scratch", est.scratch_bytes),
            ("one tile", est.tile_bytes),
            ("the image", est.image_bytes),
        ]
        biggest = ", ".join(f"{label} {_gb(b)}" for label, b in sorted(parts, key=lambda p: -p[1])[:2])
        raise ResourceError(
            f"{what} needs about {_gb(est.memory)} of memory ({biggest}) but this machine has {_gb(mem)}; "
            "reduce network.width/input_dim, data.size, the resolution or the tile size"
        )
    if est.pixel_steps > MAX_PIXEL_STEPS:
        raise ResourceError(
            f"{what} needs {est.pixel_steps:.3g} pixel-steps (pixels x training.steps), more than the limit of "
            f"{MAX_PIXEL_STEPS:.0e} (about a century on one machine); reduce training.steps or the resolution"
        )
    if est.flops > MAX_FLOPS:
        raise ResourceError(
            f"{what} needs about {est.flops:.3g} floating-point operations ({est.pixel_steps:.3g} pixel-steps of "
            f"a {sum(a * b for a, b in cfg.network.layer_shapes())}-parameter network on {cfg.data_size} points), "
            f"more than the limit of {MAX_FLOPS:.0e}; reduce the network, the data, the steps or the resolution"
        )
    return est
