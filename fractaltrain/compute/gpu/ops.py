"""Device arithmetic that rounds exactly like the CPU kernel: ``mul`` and ``tanh64``.

Why
---
numba-cuda compiles with NVVM's default ``-fma=1`` unless told otherwise, and
its ``jit`` has no switch to turn that off (``fastmath=False`` only leaves out
the fast-math flags); ptxas, too, fuses a ``mul.f64`` followed by an
``add.f64`` into ``fma.rn.f64`` by default.  A fused multiply-add rounds once
where the CPU kernel rounds twice, so chaotic pixels would drift apart.  The
PTX ISA guarantees that a multiply with an explicit rounding mode
(``mul.rn.f64``, libdevice's ``__dmul_rn``) is never fused, so every product
the kernel computes goes through :func:`mul`; sums need no guard.

In the simulator (``NUMBA_ENABLE_CUDASIM=1``) the device functions are plain
Python on IEEE doubles, which never fuse; ``cuda.fma`` there is ``a*b + c``
(not exact), so the exact division remainder of ``tanh64`` uses Dekker's
product, as the CPU kernel does on targets without FMA.  Both give the same
bits as the CPU kernel's ``tanh64`` (fractaltrain/compute/kernel/tanh.py), whose
method and constants this module repeats operation by operation.
"""

import math

from numba import cuda

try:  # numba-cuda >= 0.2x keeps its own config
    from numba.cuda.core import config
except ImportError:  # pragma: no cover - older numba-cuda reads numba's
    from numba.core import config

from fractaltrain.compute.kernel import tanh as _cpu_tanh

SIMULATOR = bool(config.ENABLE_CUDASIM)

# tanh64's constants, taken from the CPU module so the two cannot drift apart
_SWITCH, _CLAMP, _INV_LN2 = _cpu_tanh._SWITCH, _cpu_tanh._CLAMP, _cpu_tanh._INV_LN2
_LN2_HI, _LN2_LO, _ROUND = _cpu_tanh._LN2_HI, _cpu_tanh._LN2_LO, _cpu_tanh._ROUND
_P1, _P2 = _cpu_tanh._P1, _cpu_tanh._P2
_Q1, _Q2, _Q3 = _cpu_tanh._Q1, _cpu_tanh._Q2, _cpu_tanh._Q3
_E0, _E1, _E2, _E3, _E4 = _cpu_tanh._E0, _cpu_tanh._E1, _cpu_tanh._E2, _cpu_tanh._E3, _cpu_tanh._E4
_E5, _E6, _E7, _E8, _E9 = _cpu_tanh._E5, _cpu_tanh._E6, _cpu_tanh._E7, _cpu_tanh._E8, _cpu_tanh._E9

if SIMULATOR:

    @cuda.jit(device=True)
    def mul(a, b):
        """``a * b``, rounded (Python floats never fuse)."""
        return a * b

    @cuda.jit(device=True)
    def div_rem(n, d, q):
        """Exact ``n - q*d`` by Dekker's product (as tanh.py without FMA)."""
        split = 134217729.0
        t = split * q
        qh = t - (t - q)
        ql = q - qh
        t = split * d
        dh = t - (t - d)
        dl = d - dh
        ph = q * d
        pl = (((qh * dh - ph) + qh * dl) + ql * dh) + ql * dl
        return (n - ph) - pl

else:  # pragma: no cover - needs a GPU
    from numba.cuda import libdevice

    @cuda.jit(device=True, inline="always")
    def mul(a, b):
        """``a * b`` as ``mul.rn.f64``: never fused into an FMA by NVVM or ptxas."""
        return libdevice.dmul_rn(a, b)

    @cuda.jit(device=True, inline="always")
    def div_rem(n, d, q):
        """Exact ``n - q*d``: one ``fma.rn.f64`` (as tanh.py with FMA)."""
        return cuda.fma(-q, d, n)


@cuda.jit(device=True)
def tanh64(x):
    """The CPU kernel's ``tanh64`` (kernel/tanh.py), the same operations in the same order."""
    a = math.fabs(x)
    z = mul(a, a)
    n_small = mul(mul(a, z), 1.0 + mul(z, _P1 + mul(z, _P2)))
    d_small = 3.0 + mul(z, _Q1 + mul(z, _Q2 + mul(z, _Q3)))
    y = mul(-2.0, a if a < _CLAMP else _CLAMP)
    k = (mul(y, _INV_LN2) + _ROUND) - _ROUND
    r = (y - mul(k, _LN2_HI)) - mul(k, _LN2_LO)
    s = _E0 + mul(r, _E1 + mul(r, _E2 + mul(r, _E3 + mul(r, _E4 + mul(r, _E5 + mul(
        r, _E6 + mul(r, _E7 + mul(r, _E8 + mul(r, _E9)))))))))
    p = r + mul(mul(r, r), s)
    exp_r = 1.0 + p
    scale = math.ldexp(1.0, int(k))
    e = mul(exp_r, scale)
    e_lo = mul((1.0 - exp_r) + p, scale)
    d_big = 1.0 + e
    d_lo = (1.0 - d_big) + e
    small = not (a >= _SWITCH)
    big_a = a if small else 1.0
    q = (n_small if small else mul(2.0, e)) / (d_small if small else d_big)
    rem = div_rem(mul(2.0, e), d_big, q)
    corr = mul((rem + mul(2.0, e_lo)) - mul(q, d_lo + e_lo), 1.0 - mul(0.5, q))
    hi = big_a - q
    lo = (big_a - hi) - q
    return math.copysign(hi + (lo - (0.0 if small else corr)), x)
