"""The CUDA backend: train pixels on an NVIDIA GPU with numba-cuda (``fractaltrain[cuda]``).

Nothing here is imported unless the ``cuda`` device is asked for, and numba-cuda
is optional: :func:`fractaltrain.compute.device.select` (through
:func:`~fractaltrain.compute.device.cuda_missing`) says what is missing, in one line,
before anything is compiled.

========== ==================================================================
run        ``run_pixels`` and ``run_pixels_dd``: host side (transfers, launch,
           log10 on the host)
kernel     the kernel factory: one persistent thread per pixel at a time,
           one variant per optimizer, schedule flag and architecture
tricks     issue 32's optimizer steps and layer norm as device functions,
           and the schedule's factor table (built on the host by the CPU code)
ops        ``mul`` (never fused) and ``tanh64`` as device functions
ddkernel   the double-double kernel: kernel.py's design, ddblock.py's steps,
           one variant per optimizer, schedule flag and architecture
ddpasses   its forward and backward passes (ddgeneral.py's, residual
           connections and layer norm built in per variant)
ddtricks   the optimizers' step in double-double (kernel/ddopt.py's twin)
ddops      double-double arithmetic and ``dd_tanh`` (kernel/dd.py's twins)
compare    CUDA vs CPU kernel on small configs (tests, gpu_check)
ddcompare  the same for double-double, and its arithmetic
========== ==================================================================

Bits.  The kernel performs the CPU kernel's operations (fractaltrain/compute/kernel/
general.py and block.py) in the same order, with every product rounded on its
own (``__dmul_rn``, which neither NVVM nor ptxas fuses into an FMA), the same
``tanh64`` and a correctly rounded division, and takes ``log10`` of the final
loss on the host with the same libm as the CPU kernel.  It is therefore
designed to give the CPU kernel's bits, and in numba-cuda's simulator it does
(tests/test_gpu.py, tests/test_gpu_tricks.py).  On an H200 (2026-12-04) the
plain kernel and its trick variants gave them on every case scripts/gpu_check.py
compares; see docs/performance.md.

The double-double kernel (``run_pixels_dd``) does the same for the CPU
double-double kernel (kernel/ddgeneral.py, ddblock.py, dd.py): its general
path's operations in its order, every product unfused, and the one exact
product error of each double-double product an explicit ``fma.rn.f64``
(ddops.py).  In the simulator it gives that kernel's bits
(tests/test_gpu_dd.py, tests/test_gpu_tricks.py); on an H200 the plain sgd kernel
did on the cases scripts/gpu_check.py compared on 2026-12-04.  Its optimizer,
schedule and architecture variants (ddtricks.py, ddpasses.py) have run in the
simulator only so far; gpu_check.py compares them (``ddcompare.DD_TRICK_CASES``)
where a GPU is lent.
"""
