"""An independent arbitrary-precision trainer: the reference for checking kernels past float64.

Deep zooms (windows 1e-16 to 1e-26 decades wide) need pixel values that
float64 cannot hold, so a kernel with more digits (double-double, about 32)
has to be checked against something that is right to far more digits than it
claims.  This module is that something: the same training as
``fractaltrain/compute/kernel/block.py`` (PAPER.md, "The iterated map",
"Baseline experiment", "Convergence measure"), written again from the maths in
pure Python with :mod:`decimal` at a chosen working precision (80 significant
digits by default).  It imports nothing from ``fractaltrain.compute`` and no
numba, so a bug there cannot hide in both; it takes from the package only the
config parser, the drawn arrays (:func:`fractaltrain.problem.build_problem`),
the hyperparameter names and the result-column layout.

Every constant is exact mathematics rounded once at the working precision, not
a float64 rounding:

* ``alpha_l = sqrt(g / fan_in)`` (``g = 2`` for tanh and ReLU, 1 for the
  identity) for the hidden layers and ``1/width`` for the output layer, from the
  config and the weight shapes (never ``problem.alphas``, which are float64);
* the drawn float64 weights, inputs, targets and probe, converted exactly with
  ``Decimal(float)``;
* the pixel's hyperparameters, ``10**u`` (or ``u``) at the exact rational
  pixel-centre coordinate ``u`` of a window given as decimal strings of any
  length (:func:`axis_decimal_values`); fixed values from the config are
  ``Decimal(float)`` of the config's float;
* ``tanh`` from ``exp(-2|x|)`` with guard digits, so it keeps its relative
  precision near 0 and its derivative ``sech² = 4e/(1+e)²`` keeps it when the
  unit saturates;
* with ``network.norm: layer``, each hidden layer's pre-activations normalised
  over its units with epsilon exactly 1e-5 (:func:`layer_norm`), and with
  ``network.residual``, every hidden-to-hidden layer's input added to its output.

Steepest descent only (the optimizers have their own 32-digit checks,
tests/test_dd_tricks.py).  One step ``t`` is, in the kernel's order: add the per-step drift to every W0
entry; the full-batch loss ``l_t = mean((ŷ - y)²)`` over points and outputs;
the gradient of the full batch (factor ``2/(points·outputs)``) or of the rows
``batch_indices[t]`` (factor ``2/(batch·outputs)``); ``W_l ← W_l - lr_l·grad_l``.
The measure follows block.py: ``v_t = min(l_t/l_0, 1e6)``, a non-finite loss
counts as a loss of 1e6 and kills the run (its ``v`` repeats to the end);
converged when the mean of the last ``min(20, steps)`` values is below 1;
``measure = -Σv`` if converged, else ``Σ1/v``; ``final = log10(v_last)``;
``probe`` is the output at ``problem.probe`` after the last step (1e6 for a
dead run); ``steps`` is the steps trained (the step of death, else all).
"Non-finite" is float64's: the arithmetic overflows to ±Infinity and NaN as
IEEE does (:func:`working_context`), at float64's exact threshold for the
loss, weights, gradients and pre-activations and from 1e309 for the other
intermediates, so a run dies at the step where the float64 loss is inf or
NaN.  In a 16x16 check (width 4, 200 steps) a fixed loss threshold (1e300)
gave the float64 kernel's step of death in 27% of the dying pixels, this in
54% and within two steps in 83% (the rest part as float64's rounding steers a
diverging run: its tanh saturates to exactly ±1 and its derivative to 0);
trapping every overflow killed runs that float64 keeps (a ReLU layer whose
pre-activations overflow to -inf is 0).  Only the ``steps`` column (and the
measure by about 1e-6, when ``l_0 > 1``) feels the step of death.  The sums of
the measure are kept in Decimal too and rounded to float64 once.

How many digits are enough.  Near the boundary training is chaotic and a
trajectory loses its digits at a steady rate: one 200-step pixel of a width-4
network lost about a third of a digit per step (its 40-digit run parted from
the 140-digit one at step 101, the 60-digit run at step 164; 80 digits held to
the end).  No fixed precision therefore serves
every pixel and step count; ``--verify-digits`` trains again at more digits
and stores which pixels the two agree on (``settled``), the ones the reference
vouches for.  A kernel with ~32 digits parts from the truth on such pixels
too: compare it by signs there, and by values on settled pixels away from it.

Usage::

    python scripts/deep_reference.py configs/demo.yaml --window=-3,6,-3,6 --size 16x16 \\
        [--digits 80] [--verify-digits 120] [--steps N] [--processes P] --out ref.npz

writes ``values`` (height, width, 4: measure, final, probe, steps as
:mod:`fractaltrain.columns`), the window strings and each axis's values as
strings (and ``values_verify``, ``settled``), and prints one JSON line.  As a
module (``sys.path.insert(0, "scripts")``): :func:`train_pixel`,
:func:`axis_decimal_values`, :func:`render_reference`.  It is slow, pure
Python: per pixel-step about 1 ms for width 4 and 8 points, 25 ms for the demo
(width 8, 72 points), 250 ms for the paper's tanh baseline (width 16, 272
points; half of it in ``exp``), 60 ms for its ReLU; pixels run in a process pool.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, localcontext
from fractions import Fraction
from operator import mul
from pathlib import Path

import numpy as np

DEFAULT_DIGITS = 80
MAXV = Decimal(1000000)  # PAPER.md: clip of v_t and the loss a non-finite loss counts as
TAIL = 20  # PAPER.md: converged := mean of the last 20 v_t < 1
FLOAT64_OVERFLOW = Decimal(2**1024 - 2**970)  # exact: the least value float64 rounds to inf (max + half an ulp)
EMAX = 308  # Decimal overflows from 1e309 up: float64's range, within a factor 5.6 (float64 overflows at 1.8e308)
GAIN = {"tanh": 2, "relu": 2, "identity": 1}  # PAPER.md: alpha = sqrt(g / fan_in)
TANH_GUARD = 15  # guard digits of exp inside tanh (libmpdec's exp is also fastest just past 80 + 15)
POW_GUARD = 20  # guard digits of 10**u before it is rounded to the working precision
EXP_UNDERFLOW = Decimal(2000000)  # 2|x| beyond which exp(-2|x|) is below the smallest Decimal: tanh = ±1, sech² = 0
# the kernel's result columns (fractaltrain.columns); the layout only, no numerics
OUT_MEASURE, OUT_FINAL, OUT_PROBE, OUT_STEPS = 0, 1, 2, 3
N_OUT = 4


def working_context(digits: int) -> Context:
    """The context every training operation runs in.

    IEEE semantics at float64's top end, because the kernels this checks
    (float64, double-double) have float64's exponents: overflow and invalid
    operations do not trap but give ±Infinity and NaN, which then propagate as
    in float64 (``inf·0`` and ``inf - inf`` are NaN, ReLU of NaN or ``-inf`` is
    0, tanh of ``±inf`` is ±1), and ``Emax`` is :data:`EMAX`, so a result from
    1e309 up is infinite.  Values that reach float64's exact threshold
    (:func:`f64_range`) are made infinite where it is cheap: pre-activations,
    gradients, weights and the loss.  A run whose weights overflow but whose
    loss stays finite (dead ReLUs, saturated tanh) therefore trains on, as in
    float64; an unbounded exponent would train a different run, and trapping
    would kill runs the kernels keep.  The small end keeps Decimal's range:
    float64 rounds to 0 only terms too small to matter.
    """
    return Context(prec=digits, rounding=ROUND_HALF_EVEN, Emax=EMAX, Emin=-999999, traps=[DivisionByZero])


INF = Decimal("Infinity")


def f64_range(x: Decimal) -> Decimal:
    """``x``, or ±Infinity where float64 would round it to ±inf (``|x| >= 2^1024 - 2^970``)."""
    if x.is_finite() and abs(x) >= FLOAT64_OVERFLOW:
        return INF.copy_sign(x)
    return x


# --------------------------------------------------------------------------- the problem in Decimal


@dataclass(frozen=True)
class DecimalProblem:
    """A :class:`fractaltrain.problem.Problem` converted exactly, with exact constants.

    Attributes
    ----------
    weights : per layer, the initial weights as columns ``[j][k]`` (output unit
        ``j``, input unit ``k``), each entry the exact value of the float64 draw.
        Columns because the forward pass takes dot products along ``k``.
    X, Y : rows of inputs and targets, exact.
    probe : the probe input, exact.
    batches : per step, the minibatch's row indices, or None for full batch.
    alphas : per layer, ``sqrt(g/fan_in)`` for hidden layers and ``1/width`` for
        the output layer, each correctly rounded to ``digits``.
    nonlin : ``tanh``, ``relu`` or ``identity``.
    steps, depth, digits : as named.
    residual, norm : the config's ``network.residual`` and ``network.norm == "layer"``.
    """

    weights: tuple
    X: tuple
    Y: tuple
    probe: tuple
    batches: tuple | None
    alphas: tuple
    nonlin: str
    steps: int
    depth: int
    digits: int
    residual: bool = False
    norm: bool = False


def exact_alphas(network, fan_ins, digits: int) -> tuple[Decimal, ...]:
    """``sqrt(g/fan_in)`` per hidden layer and ``1/width`` last, each rounded once to ``digits``.

    The quotient and its square root are taken at ``digits + 10`` (Decimal's
    sqrt is correctly rounded) and the result rounded once more to ``digits``:
    its error is below 0.5 ulp plus 1e-10 ulp, so it is the correctly rounded
    value except with probability about 1e-10, and then one ulp away.
    ``1/width`` is a single correctly rounded division (exact for widths
    2^a·5^b).
    """
    g = Decimal(GAIN[network.nonlinearity])
    guard = Context(prec=digits + 10)
    out = Context(prec=digits)
    alphas = [out.plus(guard.sqrt(guard.divide(g, Decimal(int(fi))))) for fi in fan_ins[:-1]]
    alphas.append(out.divide(Decimal(1), Decimal(int(network.width))))
    return tuple(alphas)


def decimal_problem(problem, digits: int = DEFAULT_DIGITS) -> DecimalProblem:
    """Convert ``problem``'s float64 arrays exactly and compute its constants in Decimal.

    ``Decimal(float)`` is the exact binary value, so the reference trains the
    very network the float64 kernel trains, and only the arithmetic differs.
    """
    cfg = problem.config
    def exact(a):
        return [Decimal(float(x)) for x in np.asarray(a, dtype=np.float64).ravel()]
    weights = tuple(tuple(tuple(exact(w[:, j])) for j in range(w.shape[1])) for w in problem.weights)
    X = tuple(tuple(exact(row)) for row in problem.X)
    Y = tuple(tuple(exact(row)) for row in problem.Y)
    probe = tuple(exact(problem.probe))
    batches = None
    if problem.batch_indices is not None:
        batches = tuple(tuple(int(i) for i in row) for row in problem.batch_indices)
    fan_ins = [w.shape[0] for w in problem.weights]
    return DecimalProblem(weights, X, Y, probe, batches, exact_alphas(cfg.network, fan_ins, digits),
                          cfg.network.nonlinearity, int(cfg.training.steps), len(problem.weights), digits,
                          bool(cfg.network.residual), cfg.network.norm == "layer")


_CACHE: list = []  # [(problem, digits, DecimalProblem)]: one entry; a Problem holds arrays and is unhashable


def _cached(problem, digits: int) -> DecimalProblem:
    """The converted problem, reused while the same Problem object and digits are asked for."""
    if _CACHE and _CACHE[0][0] is problem and _CACHE[0][1] == digits:
        return _CACHE[0][2]
    dp = decimal_problem(problem, digits)
    _CACHE[:] = [(problem, digits, dp)]
    return dp


# --------------------------------------------------------------------------- hyperparameters


def to_decimal(value) -> Decimal:
    """A hyperparameter as an exact Decimal: Decimal as is, int and float exactly, str as written."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"not a hyperparameter value: {value!r}")
    if isinstance(value, (int, np.integer)):
        return Decimal(int(value))
    if isinstance(value, (float, np.floating)):
        return Decimal(float(value))
    if isinstance(value, str):
        return Decimal(value.strip())
    raise TypeError(f"not a hyperparameter value: {value!r}")


def base_row(cfg) -> list[Decimal]:
    """The table row before the axes: ``training.learning_rate``, then ``fixed`` (``lr`` first).

    The precedence of :func:`fractaltrain.problem.pixel_hyperparams`; values
    are ``Decimal(float)`` of the config's floats, the values the float64
    kernel trains at.  Columns: per-layer learning rates, drift, offset, scale.
    """
    from fractaltrain.config.hyperparams import table_columns

    depth = cfg.network.depth
    row = [Decimal(float(cfg.training.learning_rate))] * depth + [Decimal(0), Decimal(0), Decimal(1)]
    for name, value in sorted(cfg.fixed, key=lambda kv: kv[0] != "lr"):
        for col in table_columns(name, depth):
            row[col] = Decimal(float(value))
    return row


def hp_row(cfg, hp) -> list[Decimal]:
    """The per-pixel table row for ``hp``.

    ``hp`` is either the full row (a sequence of ``depth + 3`` values in
    :func:`~fractaltrain.problem.pixel_hyperparams`' column order), or a dict
    from hyperparameter names (``lr``, ``lr_input``, ``lr_output``,
    ``lr_layer_K``, ``offset_drift``, ``offset_init``, ``init_scale``) to
    values, applied over :func:`base_row` with ``lr`` first and the rest in
    the dict's order, as the config's axes are.
    """
    from fractaltrain.config.hyperparams import table_columns

    depth = cfg.network.depth
    if isinstance(hp, dict):
        row = base_row(cfg)
        for name, value in sorted(hp.items(), key=lambda kv: kv[0] != "lr"):
            for col in table_columns(name, depth):
                row[col] = to_decimal(value)
        return row
    row = [to_decimal(v) for v in hp]
    if len(row) != depth + 3:
        raise ValueError(f"a table row has {depth + 3} columns (lr of {depth} layers, drift, offset, scale), got {len(row)}")
    return row


def pixel_row(cfg, xv: Decimal, yv: Decimal) -> list[Decimal]:
    """The row of the pixel at axis values ``xv``, ``yv``: x then y over :func:`base_row`, as pixel_hyperparams."""
    from fractaltrain.config.hyperparams import table_columns

    depth = cfg.network.depth
    row = base_row(cfg)
    for axis, value in ((cfg.x, xv), (cfg.y, yv)):
        for col in table_columns(axis.param, depth):
            row[col] = value
    return row


def _fraction_to_decimal(q: Fraction, ctx: Context) -> Decimal:
    """``q`` correctly rounded in ``ctx`` (one division of exact integers)."""
    return ctx.divide(Decimal(q.numerator), Decimal(q.denominator))


def axis_value(u: Fraction, scale: str, digits: int = DEFAULT_DIGITS) -> Decimal:
    """The hyperparameter at exact axis coordinate ``u``: ``10**u`` (log10) or ``u`` (linear), to ``digits``.

    ``10**u = 10**f · 10**q`` with ``q = floor(u)`` and ``f = u - q`` in [0, 1):
    the fractional power is taken at ``digits + POW_GUARD`` from ``f`` rounded
    there (an absolute error in the exponent is a relative one in the power,
    and ``f`` has no integer digits to spend precision on), the integer power
    is an exact shift, and the product is rounded once to ``digits``.
    """
    out = Context(prec=digits)
    if scale == "linear":
        return _fraction_to_decimal(u, out)
    if scale != "log10":
        raise ValueError(f"unknown axis scale {scale!r}")
    q = math.floor(u)
    f = u - q
    guard = Context(prec=digits + POW_GUARD, Emax=999999999, Emin=-999999999)
    p = Decimal(1) if f == 0 else guard.power(Decimal(10), _fraction_to_decimal(f, guard))
    return out.plus(p.scaleb(q, guard))


def axis_decimal_values(lo, hi, n: int, scale: str, digits: int = DEFAULT_DIGITS) -> list[Decimal]:
    """Hyperparameter value at each of ``n`` pixel centres of ``[lo, hi]``, exact to ``digits``.

    ``lo`` and ``hi`` are decimal strings of any length (or anything
    :class:`fractions.Fraction` takes exactly: int, float, Decimal); pixel ``i``
    sits at ``u = lo + (i + 1/2)(hi - lo)/n``, computed as a fraction, so no
    window is too narrow for its pixels to stay apart.
    """
    lo_q, hi_q = Fraction(lo), Fraction(hi)
    if not lo_q < hi_q:
        raise ValueError(f"need lo < hi, got {lo!r}, {hi!r}")
    return [axis_value(lo_q + Fraction(2 * i + 1, 2 * n) * (hi_q - lo_q), scale, digits) for i in range(n)]


# --------------------------------------------------------------------------- the network


_GUARD_CTX: dict[int, Context] = {}


def _guard_ctx(prec: int) -> Context:
    ctx = _GUARD_CTX.get(prec)
    if ctx is None:
        ctx = _GUARD_CTX[prec] = Context(prec=prec, rounding=ROUND_HALF_EVEN, Emax=999999, Emin=-999999,
                                         traps=[InvalidOperation, DivisionByZero])
    return ctx


def tanh_pair(x: Decimal, ctx: Context) -> tuple[Decimal, Decimal]:
    """``tanh(x)`` and ``1 - tanh(x)²``, each to ``ctx.prec`` digits with their relative precision.

    With ``e = exp(-2|x|)``: ``tanh|x| = (1 - e)/(1 + e)`` and
    ``sech² x = 4e/(1 + e)²``.  ``1 - e`` cancels for small ``|x|``, so the
    guard grows by the digits lost (``-log10|x|``); the derivative is from
    ``e`` directly, not ``1 - tanh²``, which would keep only the absolute
    precision of a saturated unit.  Beyond ``2|x| > 2e6`` ``e`` is below
    Decimal's smallest number: tanh is ±1 and its derivative 0 at any precision.
    """
    if x.is_nan():
        return x, x
    if not x:
        return Decimal(0), Decimal(1)
    ax = abs(x)
    if 2 * ax > EXP_UNDERFLOW:
        return (Decimal(1) if x > 0 else Decimal(-1)), Decimal(0)
    g = _guard_ctx(ctx.prec + TANH_GUARD + max(0, -ax.adjusted()))
    e = g.exp(g.multiply(ax, Decimal(-2)))
    one_e = g.add(1, e)
    a = ctx.plus(g.divide(g.subtract(1, e), one_e))
    d = ctx.plus(g.divide(g.multiply(4, e), g.multiply(one_e, one_e)))
    return (a if x > 0 else -a), d


def activate(P, nonlin: str, ctx: Context):
    """``σ(P)`` and ``σ'(P)`` elementwise for rows ``P``; ReLU's derivative at 0 is 0, as the kernel's."""
    if nonlin == "tanh":
        A, D = [], []
        for prow in P:
            pairs = [tanh_pair(z, ctx) for z in prow]
            A.append([a for a, _ in pairs])
            D.append([d for _, d in pairs])
        return A, D
    zero, one = Decimal(0), Decimal(1)
    if nonlin == "relu":
        return ([[z if z > 0 else zero for z in prow] for prow in P],
                [[one if z > 0 else zero for z in prow] for prow in P])
    if nonlin == "identity":
        return [list(prow) for prow in P], [[one] * len(prow) for prow in P]
    raise ValueError(f"unknown nonlinearity {nonlin!r}")


NORM_EPS = Decimal("1e-5")  # layer norm's epsilon (PyTorch's default), exact


def layer_norm(prow, ctx: Context):
    """One point's pre-activations normalised over its units: ``((z - mean)·inv, inv)``.

    ``mean`` and ``var`` are over the units (population variance), ``inv = 1/sqrt(var + 1e-5)``; no
    learned gain or bias.  The two sums overflow where float64's do (:func:`f64_range`, before the
    division by the width): an infinite sum of squares makes the variance inf and inv 0, as in the
    kernels, and an infinite sum of the units makes the normalised values NaN.
    """
    n = Decimal(len(prow))
    mean = f64_range(sum(prow)) / n
    ssq = f64_range(sum((z - mean) * (z - mean) for z in prow))
    if ssq.is_infinite():
        inv = Decimal(0)
    else:
        inv = 1 / ctx.sqrt(ssq / n + NORM_EPS)
    return [(z - mean) * inv for z in prow], inv


def forward(dp: DecimalProblem, W, rows, ctx: Context):
    """Forward pass of input ``rows``: (activations per layer, derivatives per layer, outputs, norms).

    Layer ``l`` computes ``alpha_l · Σ_k a_k W_l[k, j]`` (sum first, then the
    scale, as the kernel); hidden layers apply σ, after layer norm of each point's
    pre-activations when the network has it, and a residual layer (hidden to
    hidden) adds its input to its output.  ``acts[0]`` is the input rows
    themselves; ``dacts[l]`` is σ' at layer ``l - 1``'s (normalised)
    pre-activation; ``norms[l]`` the normalised values and inverse deviations
    of that layer, per row (None without layer norm).
    """
    acts, dacts, norms = [rows], [None], [None]
    A = rows
    for l in range(dp.depth):
        alpha = dp.alphas[l]
        P = [[f64_range(alpha * sum(map(mul, arow, col))) for col in W[l]] for arow in A]
        if l == dp.depth - 1:
            return acts, dacts, P, norms
        nl = None
        if dp.norm:
            nl = [layer_norm(prow, ctx) for prow in P]
            P = [n for n, _ in nl]
        H, D = activate(P, dp.nonlin, ctx)
        if dp.residual and l > 0:
            H = [[h + a for h, a in zip(hrow, arow)] for hrow, arow in zip(H, A)]
        A = H
        acts.append(A)
        dacts.append(D)
        norms.append(nl)
    raise AssertionError("a network has at least one layer")


def norm_backward(d, nrow, inv):
    """dL/dz from dL/dn through :func:`layer_norm`: ``inv·((d − mean(d)) − n·mean(d·n))``."""
    k = Decimal(len(d))
    m1 = sum(d) / k
    m2 = sum(a * b for a, b in zip(d, nrow)) / k
    return [inv * ((a - m1) - b * m2) for a, b in zip(d, nrow)]


def gradient(dp: DecimalProblem, W, acts, dacts, R, rows, norms=None):
    """Σ over ``rows`` (repeats count) of the gradient of ``Σ_o r_o²/2``, per layer as columns ``[j][k]``.

    Backpropagation as the kernel: at layer ``l`` the upstream derivative is
    scaled by ``alpha_l``, the layer's gradient is ``A_lᵀ δ``, and the next
    derivative is ``(δ W_lᵀ) ⊙ σ'`` with the weights before this step's update;
    with residual connections dL/dA of the layer above is added before σ' where
    layer ``l`` is a residual one, and with layer norm the derivative goes back
    through it.  The caller applies the ``2/(rows·outputs)`` factor.
    """
    depth = dp.depth
    alpha = dp.alphas[depth - 1]
    delta = [[alpha * r for r in R[i]] for i in rows]
    grads = [None] * depth
    ga = None
    for l in range(depth - 1, -1, -1):
        a_rows = [acts[l][i] for i in rows]
        a_cols = list(zip(*a_rows))
        d_cols = list(zip(*delta))
        grads[l] = [[f64_range(sum(map(mul, a_col, d_col))) for a_col in a_cols] for d_col in d_cols]
        if l > 0:
            w_rows = list(zip(*W[l]))  # [k][j]
            alpha = dp.alphas[l - 1]
            da = [[sum(map(mul, drow, w_row)) for w_row in w_rows] for drow in delta]  # dL/dA_l
            if dp.residual and l <= depth - 2:
                da = [[a + b for a, b in zip(arow, grow)] for arow, grow in zip(da, ga)]
            ga = da
            dz = [[a * s for a, s in zip(arow, dacts[l][i])] for arow, i in zip(da, rows)]
            if dp.norm:
                dz = [norm_backward(drow, *norms[l][i]) for drow, i in zip(dz, rows)]
            delta = [[alpha * v for v in drow] for drow in dz]
    return grads


# --------------------------------------------------------------------------- one pixel


def _train(dp: DecimalProblem, row: list[Decimal], ctx: Context, trace: bool) -> dict:
    """Train one pixel in the current context ``ctx``; see :func:`train_pixel`."""
    depth, steps = dp.depth, dp.steps
    lr = row[:depth]
    drift, offset, scale = row[depth], row[depth + 1], row[depth + 2]
    n, m = len(dp.X), len(dp.Y[0])
    nm = Decimal(n * m)
    full_rows = tuple(range(n))
    W = [[[scale * w for w in col] for col in layer] for layer in dp.weights]
    if offset:
        W[0] = [[w + offset for w in col] for col in W[0]]
    vs: list[Decimal] = []
    l0 = None
    alive, trained = True, steps
    for t in range(steps):
        if drift:
            W[0] = [[f64_range(w + drift) for w in col] for col in W[0]]
        acts, dacts, out, norms = forward(dp, W, dp.X, ctx)
        R = [[o - y for o, y in zip(orow, yrow)] for orow, yrow in zip(out, dp.Y)]
        loss = sum(r * r for rrow in R for r in rrow)
        # the kernel's float64 sum of squares is inf or NaN (a NaN compares False, as in float64)
        finite = loss.is_finite() and loss < FLOAT64_OVERFLOW
        lt = loss / nm
        if not finite:
            lt = MAXV
        if t == 0:
            l0 = lt
        v = min(lt / l0, MAXV)
        vs.append(v)
        if not finite:  # dead: the same v to the end, no more training (block.py's early stop)
            alive, trained = False, t
            vs.extend([v] * (steps - t - 1))
            break
        rows = full_rows if dp.batches is None else dp.batches[t]
        grads = gradient(dp, W, acts, dacts, R, rows, norms)
        gs = Decimal(2) / Decimal(len(rows) * m)
        W = [[[f64_range(w - lr_l * (g * gs)) for w, g in zip(col, gcol)] for col, gcol in zip(layer, glayer)]
             for layer, glayer, lr_l in zip(W, grads, lr)]

    probe_f = float(MAXV)
    if alive:
        _, _, out, _ = forward(dp, W, [dp.probe], ctx)
        probe_f = float(out[0][0])  # inf or nan where float64's is
    if not (alive and math.isfinite(probe_f)):
        probe_f = float(MAXV)

    k = min(TAIL, steps)
    converged = sum(vs[steps - k:]) / k < 1
    if converged:
        measure = float(-sum(vs))
    else:
        measure = math.inf if any(v == 0 for v in vs) else float(sum(1 / v for v in vs))
    final = float(vs[-1].log10()) if vs[-1] > 0 else -math.inf
    result = {"measure": measure, "final": final, "probe": probe_f, "steps": int(trained)}
    if trace:
        result["v"] = [float(v) for v in vs]
    return result


def train_pixel(problem, hp, digits: int = DEFAULT_DIGITS, *, trace: bool = False) -> dict:
    """Train one pixel of ``problem`` in Decimal at ``digits`` significant digits.

    Parameters
    ----------
    problem : fractaltrain.problem.Problem
        The drawn weights, data, probe and minibatch sequence; its config gives
        the network (nonlinearity, width) and the number of steps.
    hp : dict or sequence
        The pixel's hyperparameters: a full table row (per-layer learning rates,
        drift, offset, scale) or a dict of named values over the config's base
        row (see :func:`hp_row`).  Give Decimals (or strings) for exact values;
        floats are taken exactly as binary values.
    digits : int
        Working precision of everything in the trajectory.
    trace : bool
        Also return ``v``, every step's normalised loss as float, to locate
        where another kernel parts from this one.

    Returns
    -------
    dict
        ``measure``, ``final``, ``probe`` (floats) and ``steps`` (int), the
        kernel's four result columns.
    """
    dp = _cached(problem, digits)
    row = hp_row(problem.config, hp)
    ctx = working_context(digits)
    with localcontext(ctx):
        row = [+v for v in row]  # hyperparameters enter at the working precision, as everything else
        return _train(dp, row, ctx, trace)


# --------------------------------------------------------------------------- a window


_WORKER: dict = {}


def _init_worker(problem, digits: int) -> None:
    """Pool initializer: the problem once per worker, converted once."""
    _WORKER["problem"] = problem
    _WORKER["digits"] = digits
    _cached(problem, digits)


def _work(task):
    r, c, row = task
    res = train_pixel(_WORKER["problem"], row, _WORKER["digits"])
    return r, c, res


def _load(config, steps: int | None):
    """The config (a path or a Config) with its step count overridden, and its problem.

    The minibatch sequence is drawn for the overridden count, as a render with
    ``--steps`` draws it (the notebook's sequence depends on the count).
    """
    from fractaltrain.config import load_config, with_overrides
    from fractaltrain.problem import build_problem

    cfg = load_config(config) if isinstance(config, (str, Path)) else config
    if steps is not None:
        cfg = with_overrides(cfg, steps=steps)
    return cfg, build_problem(cfg)


def render_reference(config_path, window, width: int, height: int, digits: int = DEFAULT_DIGITS,
                     steps: int | None = None, processes: int | None = None) -> np.ndarray:
    """Train every pixel of ``window`` in Decimal; returns (height, width, 4) float64.

    Parameters
    ----------
    config_path : str, Path or Config
    window : (x0, x1, y0, y1)
        Axis coordinates as decimal strings of any length (decades on a log10
        axis); row ``r`` of the result is y pixel ``r`` (row 0 at ``y0``),
        column ``c`` is x pixel ``c``.
    width, height : pixels.
    digits : working precision.
    steps : overrides ``training.steps``.
    processes : pool size, default ``os.cpu_count()``; 1 trains in this
        process.  The pool's tasks are single pixels, so a row of quickly dead
        pixels does not leave a worker idle while another trains a whole row.
    """
    cfg, problem = _load(config_path, steps)
    x0, x1, y0, y1 = window
    xs = axis_decimal_values(x0, x1, width, cfg.x.scale, digits)
    ys = axis_decimal_values(y0, y1, height, cfg.y.scale, digits)
    tasks = [(r, c, pixel_row(cfg, xs[c], ys[r])) for r in range(height) for c in range(width)]
    values = np.empty((height, width, N_OUT), dtype=np.float64)

    def put(r, c, res):
        values[r, c, OUT_MEASURE] = res["measure"]
        values[r, c, OUT_FINAL] = res["final"]
        values[r, c, OUT_PROBE] = res["probe"]
        values[r, c, OUT_STEPS] = res["steps"]

    processes = (os.cpu_count() or 1) if processes is None else processes
    if processes <= 1 or len(tasks) <= 1:
        for r, c, row in tasks:
            put(r, c, train_pixel(problem, row, digits))
        return values
    import multiprocessing

    with multiprocessing.Pool(min(processes, len(tasks)), initializer=_init_worker, initargs=(problem, digits)) as pool:
        for r, c, res in pool.imap_unordered(_work, tasks, chunksize=1):
            put(r, c, res)
    return values


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--window", default=None,
                    help="X0,X1,Y0,Y1 in axis units, decimal strings of any length; write --window=X0,... when X0 is "
                         "negative (default: the config's axes)")
    ap.add_argument("--size", default="16x16", help="WxH pixels")
    ap.add_argument("--digits", type=int, default=DEFAULT_DIGITS)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--processes", type=int, default=None, help="default: os.cpu_count()")
    ap.add_argument("--verify-digits", type=int, default=None,
                    help="train again at this many digits and mark the pixels whose four values agree as settled")
    ap.add_argument("--out", required=True, help="an .npz file")
    args = ap.parse_args(argv)

    from fractaltrain.config import load_config

    cfg = load_config(args.config)
    if args.window is None:
        window = tuple(repr(float(v)) for v in (*cfg.x.range, *cfg.y.range))
    else:
        window = tuple(p.strip() for p in args.window.split(","))
        if len(window) != 4:
            ap.error(f"--window: expected X0,X1,Y0,Y1, got {args.window!r}")
    try:
        w, h = (int(p) for p in args.size.lower().split("x"))
    except ValueError:
        ap.error(f"--size: expected WxH, got {args.size!r}")
    if args.digits < 20:
        ap.error("--digits: at least 20 (the reference must be far past the kernels it checks)")
    if args.verify_digits is not None and args.verify_digits <= args.digits:
        ap.error("--verify-digits: more than --digits")
    steps = args.steps if args.steps is not None else cfg.training.steps
    t0 = time.perf_counter()
    values = render_reference(args.config, window, w, h, args.digits, args.steps, args.processes)
    seconds = time.perf_counter() - t0
    xs = axis_decimal_values(window[0], window[1], w, cfg.x.scale, args.digits)
    ys = axis_decimal_values(window[2], window[3], h, cfg.y.scale, args.digits)
    extra, summary = {}, {}
    if args.verify_digits is not None:
        # A chaotic pixel loses digits at a steady rate per step (a third of a digit per step was
        # seen near the boundary), so no fixed precision is enough for every pixel and step count:
        # the pixels two precisions agree on are the ones the reference vouches for.
        check = render_reference(args.config, window, w, h, args.verify_digits, args.steps, args.processes)
        settled = np.all(check == values, axis=-1)
        extra = {"values_verify": check, "settled": settled, "verify_digits": args.verify_digits}
        summary = {"verify_digits": args.verify_digits, "settled_share": float(settled.mean())}
    np.savez(args.out, values=values, window=np.array(window), x_values=np.array([str(v) for v in xs]),
             y_values=np.array([str(v) for v in ys]), digits=args.digits, steps=steps, **extra)
    trained = float(values[..., OUT_STEPS].sum())
    print(json.dumps({
        "config": str(args.config), "window": list(window), "size": f"{w}x{h}", "digits": args.digits,
        "steps": steps, "diverged_share": float(np.mean(values[..., OUT_MEASURE] > 0)),
        "seconds": round(seconds, 2), "pixel_steps_trained": trained,
        "wall_seconds_per_pixel_step": round(seconds / max(trained, 1.0), 6), **summary, "out": args.out,
    }))


if __name__ == "__main__":
    sys.exit(main())
