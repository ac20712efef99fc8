"""The CUDA backend: train pixels on an NVIDIA GPU with numba-cuda (``fractaltrain[cuda]``).

Nothing here is imported unless the ``cuda`` device is asked for, and numba-cuda
is optional: :func:`fractaltrain.compute.device.select` (through
:func:`~fractaltrain.compute.device.cuda_missing`) says what is missing, in one line,
before anything is compiled.

========== ==================================================================
run        ``run_pixels``: host side (transfers, launch, log10 on the host)
kernel     the kernel factory: one persistent thread per pixel at a time
ops        ``mul`` (never fused) and ``tanh64`` as device functions
========== ==================================================================

Bits.  The kernel performs the CPU kernel's operations (fractaltrain/compute/kernel/
general.py and block.py) in the same order, with every product rounded on its
own (``__dmul_rn``, which neither NVVM nor ptxas fuses into an FMA), the same
``tanh64`` and a correctly rounded division, and takes ``log10`` of the final
loss on the host with the same libm as the CPU kernel.  It is therefore
designed to give the CPU kernel's bits, and in numba-cuda's simulator it does
(tests/test_gpu.py).  On real hardware this is not yet verified
(scripts/gpu_check.py checks it); see docs/performance.md.
"""
