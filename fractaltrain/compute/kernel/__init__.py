"""The training kernel: train one network per pixel, in float64 (or double-double), with numba.

Layout.  Pixels are trained in blocks of ``LANES`` in lock-step, and every
per-pixel array keeps the pixel index innermost (``W[(q)*LANES + p]``).  The
innermost loops are then contiguous, fixed-length and free of dependencies
between lanes, so they run on vectors of LANES pixels (the hot ones written as
vector LLVM IR, since numba cannot tell LLVM that arrays do not overlap), while each pixel still performs exactly
the same operations in the same order whichever block, tile or thread it lands
in.  That is what makes results bitwise independent of thread count and tile
size.  Short final blocks are padded with copies of the last pixel, whose
results are discarded.

Gradients are analytic; no fastmath: no reassociation (it would change chaotic
pixels) and no contraction into fused multiply-adds (every product and sum is
rounded separately, as written).  The only fused multiply-add is the one
``tanh64`` itself uses to get an exact division remainder.

One job per module, callers first:

========== ==================================================================
driver     ``run_pixels``: blocks of pixels on all threads
block      ``train_block``: the steps of one block, the measure, early stop
optimizers the update of momentum, nesterov, adam and adamw (sgd's is block's)
general    forward and backward passes for any depth
layer      its products with per-lane inputs, and layer norm, as vector LLVM IR
depth2     the same for one hidden layer, bitwise equal, laid out for speed
matmul     the depth-2 matrix products and output layer as vector LLVM IR
vtanh      ``tanh64`` on vectors, as LLVM IR
tanh       ``tanh64``: an accurate, vectorisable scalar float64 tanh
ir         the LLVM-IR toolkit those intrinsics share
gradient   ``loss_and_grad`` for one set of weights (tests, explorer)
ddblock    ``train_block_dd``: block.py's steps in double-double (past float64)
ddopt      optimizers.py's updates and the schedules' rates in double-double
ddgeneral  general.py's passes in double-double
ddlayer    its layer loops as vector LLVM IR
ddnorm     its layer norm and residual sums (dd.py's scalar operations)
dd2        depth2.py in double-double: bitwise ddgeneral, laid out for speed
ddmatmul   its products and output layer as vector LLVM IR
ddvec      dd.py's arithmetic and ``dd_tanh`` on vectors, as LLVM IR
dd         double-double arithmetic and ``dd_tanh``
ddref      one reference pixel in double-double, every step recorded (perturbation)
perturb    pixels as float64 differences from that reference, glitches flagged
cache      numba options; the disk cache keyed on all these sources
========== ==================================================================

The compiled code is cached on disk and recompiled whenever any file of this
package (or columns.py) changes (cache.py).  The result columns are in
:mod:`fractaltrain.columns`, so reading stored results needs no numba.
"""

from fractaltrain.columns import N_OUT, OUT_FINAL, OUT_MEASURE, OUT_PROBE, OUT_STEPS
from fractaltrain.compute.kernel.driver import run_pixels, run_pixels_dd
from fractaltrain.compute.kernel.gradient import loss_and_grad
from fractaltrain.compute.kernel.ir import LANES

__all__ = ["LANES", "N_OUT", "OUT_FINAL", "OUT_MEASURE", "OUT_PROBE", "OUT_STEPS", "loss_and_grad", "run_pixels", "run_pixels_dd"]
