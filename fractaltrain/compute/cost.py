"""What a job will cost before it starts: its work, what the tile store already holds, and the time here.

Why.  A 1280×720, 10-decade zoom at 500 steps is about 3×10^10 pixel-steps:
hours on a laptop, minutes on a cluster.  A user decides in the first minute
whether to run it as it is, smaller, sharded or on a GPU, so ``render`` and
``zoom`` print this plan before any work and ``--dry-run`` prints only the plan.

The time is measured, not assumed: :func:`calibrate` trains a small,
deterministic sample of the job's own pixels (spread over every grid still to
compute, so the share of early-stopped diverged pixels is the job's) through the
same door as the job (:func:`fractaltrain.compute.device.run_pixels`), on this
machine's threads and device, and extrapolates seconds per pixel.  Double-double
grids are sampled separately (about ten times the float64 cost).  Nothing is
written: the calibration's results are thrown away.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from fractaltrain.columns import N_OUT
from fractaltrain.compute.store import Grid, TileStore

HOUR = 3600.0
CALIBRATION_SECONDS = 1.0  # aim of one calibration (per precision); it stops doubling its sample past this
MIN_SAMPLE, MAX_SAMPLE = 16, 4096  # pixels per calibration
TILE_FILE_OVERHEAD = 1520  # bytes a tile file adds to its array (zip and npy headers, key, checksum), measured
H200_PIXEL_STEPS_PER_S = 938_959  # the CUDA kernel on the tanh baseline, 256², 500 steps (docs/performance.md)
FRAME_PIXELS_PER_S = 1.8e7  # composed and encoded frame pixels per second, 2 cores (bench_frames, 1080p: ~9 fps)


def cpu_model() -> str:
    """This machine's processor, as the plan, the benchmarks and the fixtures name it."""
    import platform
    from pathlib import Path

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class Rate:
    """Seconds per pixel of one precision, measured on ``sample`` pixels (``steps`` each, early stop on)."""

    precision: str
    seconds_per_pixel: float
    sample: int
    steps: int

    @property
    def pixel_steps_per_s(self) -> float:
        return self.steps / self.seconds_per_pixel if self.seconds_per_pixel > 0 else math.inf


@dataclass(frozen=True)
class Phase:
    """One stage of the job besides training the grids (locate, the noise guard, frames), with its estimate."""

    name: str
    detail: str
    seconds: float | None  # None: not estimated (said in ``detail``)


@dataclass(frozen=True)
class JobCost:
    """The plan of one job: what it trains, what the store holds, and the time on this machine."""

    kind: str  # "render" or "zoom"
    name: str
    grids: list[dict]  # per grid: width, height, precision, pixels, stored
    steps: int
    members: int  # seed-ensemble members (1 for a plain job)
    device: str
    threads: int
    shard: tuple[int, int]
    rates: list[Rate]
    phases: list[Phase] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    machine: str = field(default_factory=cpu_model)  # the processor the estimate was measured on

    @property
    def pixels(self) -> int:
        return sum(g["pixels"] for g in self.grids)

    @property
    def stored(self) -> int:
        return sum(g["stored"] for g in self.grids)

    @property
    def to_compute(self) -> int:
        return self.pixels - self.stored

    @property
    def pixel_steps(self) -> float:
        return float(self.pixels) * self.steps

    @property
    def disk_bytes(self) -> int:
        """The tile store's files when complete (the outputs add about the same again, compressed less)."""
        tiles = sum(g["tiles"] for g in self.grids)
        return self.pixels * N_OUT * 8 + tiles * TILE_FILE_OVERHEAD

    def train_seconds(self) -> float | None:
        """Seconds to train what is missing (this shard's share), or None when no rate was measured."""
        by = {r.precision: r.seconds_per_pixel for r in self.rates}
        total = 0.0
        for g in self.grids:
            if g["pixels"] == g["stored"]:
                continue
            if g["precision"] not in by:
                return None
            todo = g["pixels"] - g["stored"]
            copied = g.get("copied", 0) * todo / g["pixels"]  # the previous keyframe's pixels are copied, not trained
            total += (todo - copied) * by[g["precision"]]
        return total / self.shard[1]

    def total_seconds(self) -> float | None:
        """Training and every estimated phase (a phase without an estimate, such as locate, is left out and
        named in :meth:`lines`); None without a training estimate."""
        train = self.train_seconds()
        if train is None:
            return None
        return train + sum(p.seconds for p in self.phases if p.seconds is not None)

    def suggestions(self) -> list[str]:
        """What would bring a job of over an hour down, each with its estimate (``zoom``'s and ``render``'s
        own options, named in words so the library never names a CLI flag)."""
        total = self.total_seconds()
        if total is None or total <= HOUR:
            return []
        train = self.train_seconds() or 0.0
        rest = total - train
        out = []
        if self.kind == "zoom":
            out.append(f"preview (320 px wide, at most 60 steps): {approx(preview_factor(self) * total)}")
        out.append(f"half the size in each direction: {approx(train / 4 + rest / 4)}")
        for n in (4, 16):
            out.append(f"{n} shards on {n} machines: {approx(train / n + rest)} each")
        if self.device != "cuda":
            todo = sum(g["pixels"] - g["stored"] - g.get("copied", 0) * (g["pixels"] - g["stored"]) / g["pixels"]
                       for g in self.grids if g["pixels"]) * self.steps / self.shard[1]
            out.append(f"device cuda on an H200: at most about {duration(todo / H200_PIXEL_STEPS_PER_S + rest)} "
                       f"(every step trained at the {H200_PIXEL_STEPS_PER_S / 1e6:.2f} million pixel-steps/s it "
                       "trained the tanh baseline at; docs/performance.md)")
        return out

    def to_dict(self) -> dict:
        return {
            "kind": self.kind, "name": self.name, "steps": self.steps, "members": self.members,
            "device": self.device, "machine": self.machine, "threads": self.threads, "shard": list(self.shard),
            "grids": self.grids, "pixels": self.pixels, "pixels_stored": self.stored,
            "pixels_to_compute": self.to_compute, "pixels_copied": sum(g.get("copied", 0) for g in self.grids), "pixel_steps": self.pixel_steps, "disk_bytes": self.disk_bytes,
            "rates": [{"precision": r.precision, "seconds_per_pixel": r.seconds_per_pixel,
                       "pixel_steps_per_s": r.pixel_steps_per_s, "sample_pixels": r.sample} for r in self.rates],
            "train_seconds": self.train_seconds(),
            "phases": [{"name": p.name, "detail": p.detail, "seconds": p.seconds} for p in self.phases],
            "total_seconds": self.total_seconds(), "suggestions": self.suggestions(), "notes": self.notes,
        }

    def lines(self) -> list[str]:
        """The plan as a few lines of text (``render``/``zoom`` print them before any work)."""
        precisions = sorted({g["precision"] for g in self.grids})
        sizes = sorted({(g["width"], g["height"]) for g in self.grids})
        shape = ", ".join(f"{w}×{h}" for w, h in sizes)
        what = f"{len(self.grids) // self.members} keyframes of {shape}" if self.kind == "zoom" else f"{shape}"
        if self.members > 1:
            what += f", {self.members} ensemble members"
        out = [f"plan: {self.kind} {self.name}: {what}; {self.pixels:,} pixels × {self.steps} steps = "
               f"{self.pixel_steps:.3g} pixel-steps; precision {', '.join(precisions)}"]
        shard = "" if self.shard[1] == 1 else f", shard {self.shard[0]}/{self.shard[1]}"
        copied = sum(g.get("copied", 0) for g in self.grids)
        if copied:
            out.append(f"  aligned keyframes: {copied:,} pixels ({percent(copied, self.pixels)}) are copied from the "
                       "keyframe before, not trained")
        out.append(f"  device {self.device} ({self.machine}), {self.threads} thread{'s' if self.threads != 1 else ''}{shard}; "
                   f"tile store holds {self.stored:,} of {self.pixels:,} pixels ({percent(self.stored, self.pixels)}); "
                   f"disk about {size_text(self.disk_bytes)}")
        for r in self.rates:
            out.append(f"  measured here: {r.pixel_steps_per_s:,.0f} pixel-steps/s in {r.precision} "
                       f"({r.sample} pixels of this job)")
        train = self.train_seconds()
        est = [f"training {duration(train) if train is not None else 'not estimated'}"]
        est += [f"{p.name} {duration(p.seconds) if p.seconds is not None else '(' + p.detail + ')'}"
                for p in self.phases]
        total = self.total_seconds()
        unknown = [p.name for p in self.phases if p.seconds is None]
        total_text = "" if total is None else f"; total {approx(total)}" + (
            f" plus {' and '.join(unknown)}" if unknown else "")
        out.append(f"  estimate: {'; '.join(est)}{total_text}")
        out += [f"  note: {n}" for n in self.notes]
        sugg = self.suggestions()
        if sugg:
            out.append("  over an hour; " + "; ".join(sugg))
        return out


def preview_factor(job: JobCost) -> float:
    """The share of a zoom's time its preview takes (320 px wide, at most 60 steps)."""
    w = max(g["width"] for g in job.grids)
    return min(1.0, (320 / w) ** 2) * min(1.0, 60 / job.steps)


def grid_entries(store: TileStore | None, grids: list[Grid], shard: tuple[int, int] = (0, 1)) -> list[dict]:
    """Per grid: size, precision, pixels this shard owns and how many of them the store holds (verified reads)."""
    from fractaltrain.compute.reuse import parents, shared_pixels

    out, pos = [], 0
    for g, parent in zip(grids, parents(grids)):
        pixels = stored = tiles = 0
        look = store is not None and store.folder(g).is_dir()  # a grid never started holds nothing: no reads
        for spec in g.tiles():
            if pos % shard[1] == shard[0]:
                pixels += spec.n_pixels
                tiles += 1
                if look and store.load(g, spec) is not None:
                    stored += spec.n_pixels
            pos += 1
        copied = 0 if parent is None else shared_pixels(g, parent) * pixels // g.n_pixels
        out.append({"width": g.width, "height": g.height, "precision": g.precision, "pixels": pixels,
                    "stored": stored, "copied": copied, "tiles": tiles, "key": g.key})
    return out


SEGMENT = 16  # sampled pixels come in runs along a row, as the kernel's lanes take a tile's pixels


def sample_table(cfg, grids: list[Grid], n: int):
    """About ``n`` pixels spread over ``grids``: (the hyperparameter table, or its (high, low) pair for
    double-double grids; the number of pixels).

    The pixels come in runs of :data:`SEGMENT` neighbours along a row, at fixed
    pseudo-random places (the same every run).  The kernel trains a block of
    lanes until its last pixel stops, so the cost of early-stopped (diverged)
    pixels depends on their neighbours: scattered single pixels would mix
    fast and slow ones in every block and overestimate the time several-fold.
    """
    from fractaltrain.compute.landscape import grid_axes
    from fractaltrain.lattice import lattice_fractions, lattice_values_at
    from fractaltrain.problem import pixel_hyperparams, pixel_hyperparams_dd

    runs = max(1, -(-n // SEGMENT))
    xs, ys = [], []
    for k, g in enumerate(grids):
        mine = np.arange(k, runs, len(grids), dtype=np.int64)  # run j samples grid j mod len(grids)
        if mine.size == 0:
            continue
        seg = min(SEGMENT, g.width)
        starts = (mine * 7919 + 104729) % g.n_pixels  # spread over the grid, not a lattice
        r, c = np.divmod(starts, g.width)
        c = np.minimum(c, g.width - seg)
        cols = (c[:, None] + np.arange(seg)[None, :]).ravel()
        rows = np.repeat(r, seg)
        if g.lattice is not None:  # only the sampled values: a whole lattice axis costs 30 µs a pixel
            cx, hx, cy, hy = lattice_fractions(g.lattice)
            xs.append(lattice_values_at(cx, hx, g.width, cols, cfg.x.scale))
            ys.append(lattice_values_at(cy, hy, g.height, rows, cfg.y.scale))
            continue
        xv, yv = grid_axes(cfg, g)
        xs.append(xv[..., cols])
        ys.append(yv[..., rows])
    x, y = np.concatenate(xs, axis=-1), np.concatenate(ys, axis=-1)
    if x.ndim == 1:
        return pixel_hyperparams(cfg, x, y), x.shape[-1]
    return pixel_hyperparams_dd(cfg, (x[0], x[1]), (y[0], y[1])), x.shape[-1]


def calibrate(problem, grids: list[Grid], precision: str, seconds: float = CALIBRATION_SECONDS,
              most: int = MAX_SAMPLE) -> Rate:
    """Seconds per pixel of ``grids`` (all of ``precision``) on this machine, from a sample of their pixels.

    A first call of one pixel loads (or compiles) the kernel and is not timed;
    then the sample doubles from MIN_SAMPLE until one run takes a quarter of
    ``seconds`` or reaches ``most`` pixels, and the last run gives the rate.
    """
    from fractaltrain.compute import device

    def run(n: int) -> tuple[float, int]:
        hp, count = sample_table(problem.config, grids, n)
        t = time.perf_counter()
        if isinstance(hp, tuple):
            device.run_pixels(problem, hp[0], hp[1])
        else:
            device.run_pixels(problem, hp)
        return time.perf_counter() - t, count

    run(1)
    most = max(most, MIN_SAMPLE)
    n = MIN_SAMPLE
    took, count = run(n)
    while took < seconds / 4 and n < most:
        n = min(2 * n, most)
        took, count = run(n)
    return Rate(precision, took / count, count, problem.config.training.steps)


def measure_rates(problem, grids: list[Grid], entries: list[dict]) -> list[Rate]:
    """One :class:`Rate` per precision among the grids with pixels still to compute."""
    rates = []
    for prec in sorted({e["precision"] for e in entries if e["pixels"] > e["stored"]}):
        pairs = [(g, e) for g, e in zip(grids, entries) if e["precision"] == prec and e["pixels"] > e["stored"]]
        missing = sum(e["pixels"] - e["stored"] for _, e in pairs)
        # a small job is not trained twice over: the sample stays under an eighth of what it will train
        rates.append(calibrate(problem, [g for g, _ in pairs], prec, most=min(MAX_SAMPLE, missing // 8)))
    return rates


def threads_in_use(device_name: str) -> int:
    if device_name == "cuda":
        return 1
    import numba

    return numba.get_num_threads()


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 1:
        return "under 1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * HOUR:
        return f"{seconds / HOUR:.1f} h"
    return f"{seconds / (24 * HOUR):.1f} days"


def approx(seconds: float) -> str:
    """``about 5 min``, or ``under 1 s``."""
    text = duration(seconds)
    return text if text.startswith("under") else f"about {text}"


def size_text(n: float) -> str:
    for unit, f in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= f:
            return f"{n / f:.3g} {unit}"
    return f"{n:.0f} B"


def percent(a: int, b: int) -> str:
    return f"{100.0 * a / b:.0f}%" if b else "100%"


def frames_phase(frames: int, width: int, height: int) -> Phase:
    """Composing and encoding ``frames`` frames of ``width × height`` (the rate bench_frames measured)."""
    secs = frames * width * height / FRAME_PIXELS_PER_S
    return Phase("frames and encoding", f"{frames} frames of {width}×{height}", secs)


__all__ = ["JobCost", "Phase", "Rate", "calibrate", "cpu_model", "duration", "frames_phase", "grid_entries", "measure_rates",
           "threads_in_use"]
