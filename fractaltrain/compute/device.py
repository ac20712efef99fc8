"""Which device trains the pixels: the CPU kernel (default) or the CUDA backend.

The device is chosen once per process (:func:`select`, called by the CLI from
its option or the ``FRACTALTRAIN_DEVICE`` environment variable) and read by
:func:`run_pixels`, the one call through which tiles are computed
(``landscape.compute_tile``).  A process-wide choice keeps the render, zoom
and locate call chains unchanged: the device changes how fast a tile is
computed, not what it contains (the CUDA backend is designed to give the CPU
kernel's bits, so both fill one tile store; see docs/performance.md).

Importing this module imports neither numba nor numba-cuda; asking for
``cuda`` imports numba-cuda only to check that it and a GPU are there, and
says in one line what is missing.
"""

from __future__ import annotations

import importlib.util
import os

from fractaltrain.errors import InputError, short

ENV = "FRACTALTRAIN_DEVICE"
DEVICES = ("cpu", "cuda")
INSTALL_HINT = "pip install 'fractaltrain[cuda]'"

_active = "cpu"


class DeviceError(InputError):
    """The device asked for is unknown, or cannot be used on this machine (the message says why)."""


def resolve(name: str | None = None) -> str:
    """``name``, else ``$FRACTALTRAIN_DEVICE``, else ``cpu``; lower-cased and checked to be a known device."""
    key, value = "device", name
    if value is None:
        key, value = ENV, os.environ.get(ENV) or "cpu"
    dev = value.strip().lower()
    if dev not in DEVICES:
        raise DeviceError(f"{key}: must be one of {', '.join(DEVICES)}; got {short(value)}", option="device")
    return dev


def _version(dist: str) -> str:
    """``dist VERSION`` of an installed distribution, for error lines."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return f"{dist} {version(dist)}"
    except PackageNotFoundError:
        return f"{dist} (version unknown)"


def cuda_missing() -> str | None:
    """Why the CUDA backend cannot run here (one line), or None when it can.

    True in numba-cuda's simulator (``NUMBA_ENABLE_CUDASIM=1``), which has no GPU
    but runs the kernel, slowly, in Python (tests).
    """
    if importlib.util.find_spec("numba_cuda") is None:
        return f"numba-cuda is not installed ({INSTALL_HINT})"
    try:
        from numba import cuda
        import numba.cuda.np.arrayobj  # noqa: F401  (loaded by the first kernel compile, not by the line above)
    except Exception as exc:  # broken install: missing bindings, wrong CUDA version, too new a numpy
        import numpy
        return (f"numba-cuda cannot be imported ({short(str(exc), 120)}; numpy {numpy.__version__}, "
                f"{_version('numba-cuda')})")
    try:
        if cuda.is_available():
            return None
    except Exception as exc:
        return f"no usable CUDA GPU ({short(str(exc), 120)})"
    return "no CUDA GPU or driver found (numba.cuda.is_available() is False)"


def select(name: str | None = None) -> str:
    """Resolve and check the device, and make it the one :func:`run_pixels` uses; returns its name."""
    global _active
    dev = resolve(name)
    if dev == "cuda":
        why = cuda_missing()
        if why is not None:
            raise DeviceError(f"device cuda is not available: {why}")
    _active = dev
    return dev


def active() -> str:
    """The device :func:`run_pixels` uses now."""
    return _active


def run_pixels(problem, hp, hp_lo=None):
    """Train every row of ``hp`` on the active device; (pixels, N_OUT) as ``kernel.run_pixels``.

    With ``hp_lo`` (the low parts, same shape) the pixels ``hp + hp_lo`` train in
    double-double (``kernel.run_pixels_dd``).  The float64 kernels of both devices
    train issue 32's optimizers, schedules and architectures (the CUDA kernel gives
    the CPU kernel's bits, on an H200 too), and so do the double-double kernels (their
    CUDA variants checked in numba-cuda's simulator so far).
    """
    if hp_lo is not None:
        if _active == "cuda":
            from fractaltrain.compute.gpu.run import run_pixels_dd as run_dd
        else:
            from fractaltrain.compute.kernel import run_pixels_dd as run_dd
        return run_dd(problem, hp, hp_lo)
    if _active == "cuda":
        from fractaltrain.compute.gpu.run import run_pixels as run
    else:
        from fractaltrain.compute.kernel import run_pixels as run
    return run(problem, hp)
