"""Double-double results at float64 cost: perturbation from one reference pixel, glitches retrained.

:func:`run_pixels_perturbed` takes a double-double pixel table (a tile of a
window below float64's floor), trains its centre pixel in double-double with
every step recorded (kernel/ddref.py), trains every pixel's difference from it
in float64 (kernel/perturb.py), and retrains in double-double
(``kernel.run_pixels_dd``) the pixels the difference could not follow
("glitches"), so no result is worse than the double-double kernel's.  Returns
the results and the glitched fraction.  One hidden layer only; other networks
go straight to the double-double kernel.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

from fractaltrain.columns import LANES, N_OUT


def applies(problem) -> bool:
    """Whether perturbation can train this problem (one hidden layer)."""
    return problem.depth == 2 and problem.config.plain_training


def reference_records(problem, hph: np.ndarray, hpl: np.ndarray):
    """Train the reference pixel (rows ``hph``, ``hpl`` of one pixel) in double-double; its records."""
    from fractaltrain.compute.kernel.ddref import train_reference_dd
    from fractaltrain.compute.kernel.driver import gradient_scale_dd

    w0, fi, fo, _ = problem.flat_weights()
    X, Y = np.ascontiguousarray(problem.X), np.ascontiguousarray(problem.Y)
    n, m = Y.shape
    nh = int(fo[0])
    steps = int(problem.config.training.steps)
    bidx = problem.batch_indices if problem.batch_indices is not None else np.zeros((0, 0), np.int64)
    rec = dict(Wr=np.zeros((steps, w0.size)), Ur=np.zeros((steps, n, nh)), Ar=np.zeros((steps, n, nh)),
               Dr=np.zeros((steps, n, nh)), Rr=np.zeros((steps, n, m)), Lr=np.zeros(steps),
               Gr=np.zeros((steps, w0.size)), Wend=np.zeros(w0.size))
    alive = train_reference_dd(np.ascontiguousarray(hph), np.ascontiguousarray(hpl), X, Y, w0, nh,
                               problem.alphas_dd(), gradient_scale_dd(problem), problem.nonlin_code, steps,
                               np.ascontiguousarray(bidx, dtype=np.int64), **rec)
    return int(alive), rec


MAX_REFERENCES = 4  # references tried, each on the pixels the ones before could not follow


def run_pixels_perturbed(problem, hp_hi: np.ndarray, hp_lo: np.ndarray, *, retrain: bool = True,
                         tau: float | None = None, max_references: int = MAX_REFERENCES):
    """``(results, glitched fraction)`` for pixels ``hp_hi + hp_lo``, as ``run_pixels_dd`` would give them.

    The first reference is the middle pixel; the pixels it cannot follow (a
    reference that diverges cannot lead the pixels that converge) get the
    middle one of them as the next reference, up to ``max_references``; what
    is left is retrained in double-double.  The glitched fraction counts those.
    ``retrain=False`` leaves their perturbation results in place and ``tau``
    replaces the glitch threshold (tests and studies).
    """
    from fractaltrain.compute.kernel import run_pixels_dd

    if not applies(problem):
        raise ValueError("perturbation trains one hidden layer with plain steepest descent only (training.optimizer "
                         "sgd, schedule constant, no residual or layer norm)")
    hph = np.ascontiguousarray(hp_hi, dtype=np.float64)
    hpl = np.ascontiguousarray(hp_lo, dtype=np.float64)
    npix = hph.shape[0]
    out = np.empty((npix, N_OUT))
    if npix == 0:
        return out, 0.0
    todo = np.arange(npix)
    for _ in range(max_references):
        alive, rec, r = _longest_lived(problem, hph, hpl, todo)
        res, glitch = _follow(problem, hph[todo], hpl[todo], hph[r], hpl[r], alive, rec, tau)
        out[todo] = res
        todo = todo[glitch]
        if todo.size == 0:
            break
    if retrain and todo.size:
        out[todo] = run_pixels_dd(problem, hph[todo], hpl[todo])
    return out, todo.size / npix


CANDIDATES = 9  # pixels tried as a reference, evenly spread; the first that trains every step is taken


def _longest_lived(problem, hph, hpl, todo):
    """``(steps alive, records, row)`` of a reference for pixels ``todo``: one that trains every step if any
    of up to CANDIDATES evenly spread ones does (a reference that diverges cannot lead the pixels that
    outlive it), else the longest-lived of them."""
    steps = int(problem.config.training.steps)
    best = None
    picks = dict.fromkeys(int(todo[k]) for k in np.linspace(0, len(todo) - 1, min(CANDIDATES, len(todo)))
                          .round().astype(int)[np.argsort(np.abs(np.linspace(-1, 1, min(CANDIDATES, len(todo)))),
                                                          kind="stable")])
    for r in picks:
        alive, rec = reference_records(problem, hph[r], hpl[r])
        if best is None or alive > best[0]:
            best = (alive, rec, r)
        if alive >= steps:
            break
    return best


def _follow(problem, hph, hpl, ref_hi, ref_lo, alive, rec, tau):
    """Perturbation results and glitch flags of pixels ``hph + hpl`` around the reference ``ref_hi + ref_lo``
    (``alive`` steps and records from :func:`reference_records`)."""
    from fractaltrain.compute.kernel.perturb import TAU, perturb_block

    npix = hph.shape[0]
    out = np.empty((npix, N_OUT))
    dhp = (hph - ref_hi) + (hpl - ref_lo)  # differences of nearby double-doubles, rounded once
    w0, fi, fo, _ = problem.flat_weights()
    X, Y = np.ascontiguousarray(problem.X), np.ascontiguousarray(problem.Y)
    probe = np.ascontiguousarray(problem.probe)
    alphas = np.ascontiguousarray(problem.alphas)
    steps = int(problem.config.training.steps)
    bidx = np.ascontiguousarray(problem.batch_indices if problem.batch_indices is not None
                                else np.zeros((0, 0), np.int64), dtype=np.int64)
    n, m = Y.shape
    gs = 2.0 / ((n if problem.batch_indices is None else bidx.shape[1]) * m)
    glitch = np.zeros(npix, dtype=np.bool_)
    nblocks = (npix + LANES - 1) // LANES
    threads = max(1, min(nb.get_num_threads(), nblocks))

    def work(first: int) -> None:
        ob = np.empty((LANES, N_OUT))
        gb = np.zeros(LANES, dtype=np.bool_)
        for b in range(first, nblocks, threads):
            rows = np.minimum(np.arange(b * LANES, b * LANES + LANES), npix - 1)
            perturb_block(np.ascontiguousarray(dhp[rows]), np.ascontiguousarray(hph[rows]), X, Y, probe, w0,
                          int(fo[0]), alphas, gs, problem.nonlin_code, steps, bidx, alive, rec["Wr"], rec["Ur"],
                          rec["Ar"], rec["Dr"], rec["Rr"], rec["Lr"], rec["Gr"], rec["Wend"], ob, gb,
                          TAU if tau is None else tau)
            k = min(LANES, npix - b * LANES)
            out[b * LANES : b * LANES + k] = ob[:k]
            glitch[b * LANES : b * LANES + k] = gb[:k]

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    return out, glitch
