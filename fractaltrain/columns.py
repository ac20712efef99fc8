"""What the kernels promise the rest of the package: result columns, the measure's constants, block shapes.

The columns of the per-pixel results and the readout each config names; the
constants that define the convergence measure (the CPU kernel, the CUDA kernel
and the explorer's training curve must agree on them bit for bit); and the
block shape the memory estimates need.  Each is written here once, apart from
the kernels, so code that only reads stored results or checks a config (the
tile store, ``status``, ``assemble``, the budget) does not import numba; the
CPU kernel's disk cache is keyed on this file too (``kernel/cache.py``).
"""

OUT_MEASURE, OUT_FINAL, OUT_PROBE, OUT_STEPS = 0, 1, 2, 3
N_OUT = 4

MAXV = 1e6  # clip of normalised losses and stand-in for non-finite values
TAIL = 20  # convergence is judged on the mean of the last TAIL normalised losses

LANES = 8  # pixels the CPU kernel trains in lock-step; 8 float64 = one AVX-512 register
CHUNK = 16  # data points per chunk of the CPU kernel (the depth-2 fast path and the general path's full batch)

#: Column of each config ``readout``.
READOUT_COLUMN = {"measure": OUT_MEASURE, "final_loss": OUT_FINAL, "probe": OUT_PROBE}

NORM_EPS = 1e-5  # layer norm's epsilon inside the square root (network.norm: layer; PyTorch's and Haiku's default)
