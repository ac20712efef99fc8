"""The convergence measure of PAPER.md, as a plain numpy function.

The kernel computes the same quantity on the fly while it trains (it never
stores loss histories); this module is the readable statement of the rule, used
by tests and by anyone who has loss curves of their own:

1. ``v_t = l_t / l_0``, where a non-finite loss counts as ``1e6``; then ``v_t`` is
   clipped at ``1e6``.
2. converged if the mean of the last 20 ``v_t`` is below 1.
3. value ``= -Σ v_t`` if converged, else ``+Σ 1/v_t``.

Sums run in time order, left to right, as in the kernel.
"""

from __future__ import annotations

import numpy as np

MAXV = 1e6
TAIL = 20


def normalised_losses(losses) -> np.ndarray:
    """``v_t`` of step 1 above."""
    l = np.array(losses, dtype=np.float64)
    l[~np.isfinite(l)] = MAXV
    return np.minimum(l / l[0], MAXV)


def convergence_measure(losses) -> float:
    """Signed measure of one loss curve: negative converged, positive diverged."""
    v = normalised_losses(losses)
    tail = v[-TAIL:]
    tsum = 0.0
    for x in tail:
        tsum += x
    converged = tsum / len(tail) < 1.0
    total = 0.0
    if converged:
        for x in v:
            total += x
        return -total
    for x in v:
        total += 1.0 / x
    return total


def final_loss_readout(losses) -> float:
    """log10 of the last normalised loss (negative: the loss fell)."""
    return float(np.log10(normalised_losses(losses)[-1]))
