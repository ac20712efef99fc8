"""The columns of the kernel's per-pixel results, and the readout each config names.

Kept apart from the kernel so that code which only reads stored results (the
tile store, ``status``, ``assemble``) does not import numba.
"""

OUT_MEASURE, OUT_FINAL, OUT_PROBE, OUT_STEPS = 0, 1, 2, 3
N_OUT = 4

#: Column of each config ``readout``.
READOUT_COLUMN = {"measure": OUT_MEASURE, "final_loss": OUT_FINAL, "probe": OUT_PROBE}
