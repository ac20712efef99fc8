"""The double-double kernel: its arithmetic, its tanh, agreement with the float64 kernel, determinism, the fast path."""

from decimal import Decimal, localcontext

import numba
import numpy as np
import pytest

from fractaltrain.columns import OUT_MEASURE, OUT_STEPS
from fractaltrain.compute.kernel import LANES, run_pixels
from fractaltrain.compute.kernel.dd import dd_add, dd_add_d, dd_div, dd_mul, dd_mul_d, dd_tanh
from fractaltrain.compute.kernel.dd2 import dd2_scratch, loss_grad_dd2
from fractaltrain.compute.kernel.ddgeneral import arch_scratch_dd, general_scratch_dd, loss_grad_dd
from fractaltrain.compute.kernel.ddvec import tanh_act_dd
from fractaltrain.compute.kernel.driver import run_pixels_dd
from fractaltrain.config import config_from_dict
from fractaltrain.problem import build_problem, pixel_hyperparams


@numba.njit
def _tanh_all(xh, xl, oh, ol):
    for i in range(xh.shape[0]):
        oh[i], ol[i] = dd_tanh(xh[i], xl[i])


@numba.njit
def _mul_div(ah, al, bh, bl, out):
    for i in range(ah.shape[0]):
        out[0, i], out[1, i] = dd_mul(ah[i], al[i], bh[i], bl[i])
        out[2, i], out[3, i] = dd_div(ah[i], al[i], bh[i], bl[i])


@numba.njit
def _tanh_act_scalar(xh, xl, out):
    for i in range(xh.shape[0]):
        ah, al = dd_tanh(xh[i], xl[i])
        sh, sl = dd_mul(ah, al, ah, al)
        dh, dl = dd_add_d(-sh, -sl, 1.0)
        out[0, i], out[1, i], out[2, i], out[3, i] = ah, al, dh, dl


@numba.njit
def _tanh_act_vector(zh, zl, ah, al, dh, dl):
    tanh_act_dd(zh, zl, ah, al, dh, dl, zh.shape[0])


def _dd_values(rng, n, spread):
    hi = rng.standard_normal(n) * 10.0 ** rng.uniform(-spread, spread, n)
    lo = hi * 2.0**-53 * rng.uniform(-0.5, 0.5, n)
    s = hi + lo
    return s, (hi - s) + lo


def _exact(h, l):
    return Decimal(float(h)) + Decimal(float(l))


def _dec_tanh(x: Decimal) -> Decimal:
    if abs(x) > 60:
        return Decimal(1).copy_sign(x)
    e = (2 * x).exp()
    return (e - 1) / (e + 1)


def test_tanh_relative_error_below_2e_31():
    rng = np.random.default_rng(3)
    xh, xl = _dd_values(rng, 3000, 0)
    th, tl = _dd_values(rng, 1000, 30)
    xh, xl = np.concatenate([xh * 4, th]), np.concatenate([xl * 4, tl])
    oh, ol = np.empty_like(xh), np.empty_like(xh)
    _tanh_all(xh, xl, oh, ol)
    worst = Decimal(0)
    with localcontext() as ctx:
        ctx.prec = 70
        for i in range(len(xh)):
            ref = _dec_tanh(_exact(xh[i], xl[i]))
            worst = max(worst, abs((_exact(oh[i], ol[i]) - ref) / ref))
    assert worst < Decimal("2e-31")


def test_tanh_special_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 45.0, -1e-300])
    oh, ol = np.empty_like(x), np.empty_like(x)
    _tanh_all(x, np.zeros_like(x), oh, ol)
    assert oh[0] == 0.0 and np.signbit(oh[1])
    assert (oh[2], oh[3], oh[5]) == (1.0, -1.0, 1.0)
    assert np.isnan(oh[4]) and oh[6] == -1e-300


def test_vector_tanh_is_bitwise_the_scalar_one():
    """ddvec's vector dd_tanh (and 1 - tanh²), used by both kernel paths, is dd.dd_tanh bit for bit."""
    rng = np.random.default_rng(5)
    parts = [_dd_values(rng, 4000, s) for s in (0, 1, 2, 30)]
    xh = np.concatenate([p[0] for p in parts] + [rng.uniform(-45, 45, 4000)])
    xl = np.concatenate([p[1] for p in parts] + [np.zeros(4000)])
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 40.0, -40.0, np.nextafter(40.0, 0), 1e-17, -1e-17,
                        np.nextafter(1e-17, 1), 5e-324, 1e-300, 1e300, -1e308, 0.5, 2.0])
    sl = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1e-16, -1e-16, 0.0, 1e-34, 0.0, 0.0, 0.0, -1e-317, 1e283, 0.0, 1e-17, -1e-16])
    idx = rng.integers(0, special.size, 4000)
    xh, xl = np.concatenate([xh, special[idx]]), np.concatenate([xl, sl[idx]])
    n = xh.size // 8 * 8
    xh, xl = xh[:n].copy(), xl[:n].copy()
    ref = np.empty((4, n))
    _tanh_act_scalar(xh, xl, ref)
    vec = np.empty((4, n))
    _tanh_act_vector(xh, xl, *vec)
    np.testing.assert_array_equal(ref.view(np.int64), vec.view(np.int64))
    zh, zl = xh.copy(), xl.copy()
    _tanh_act_vector(zh, zl, zh, zl, vec[2], vec[3])  # in place: A is Z
    np.testing.assert_array_equal(ref[:2].view(np.int64), np.stack([zh, zl]).view(np.int64))


def test_mul_and_div_to_32_digits():
    rng = np.random.default_rng(4)
    ah, al = _dd_values(rng, 500, 20)
    bh, bl = _dd_values(rng, 500, 20)
    out = np.empty((4, 500))
    _mul_div(ah, al, bh, bl, out)
    with localcontext() as ctx:
        ctx.prec = 70
        for i in range(500):
            a, b = _exact(ah[i], al[i]), _exact(bh[i], bl[i])
            assert abs(_exact(out[0, i], out[1, i]) / (a * b) - 1) < Decimal("1e-31")
            assert abs(_exact(out[2, i], out[3, i]) / (a / b) - 1) < Decimal("1e-31")


def _cfg(**over):
    raw = {"network": {"width": 4, "depth": 2, "nonlinearity": "tanh"}, "data": {"size": 8},
           "training": {"steps": 40}, "resolution": "12x12", "tile": 8}
    for k, v in over.items():
        raw.setdefault(k, {}).update(v)
    return config_from_dict(raw)


def _table(cfg, n):
    xv = 10.0 ** np.linspace(-1, 1.5, n)
    XX, YY = np.meshgrid(xv, xv[::-1])
    return pixel_hyperparams(cfg, XX.ravel(), YY.ravel())


@pytest.mark.parametrize("over", [
    {},
    {"network": {"nonlinearity": "relu"}},
    {"network": {"nonlinearity": "identity"}},
    {"network": {"depth": 3, "output_dim": 2}},
    {"training": {"batch": 3}},
])
def test_agrees_with_float64_kernel_at_float64_values(over):
    """With zero low parts the double-double run is the float64 run, carried 16 digits further."""
    cfg = _cfg(**over)
    pb = build_problem(cfg)
    hp = _table(cfg, 12)
    a = run_pixels(pb, hp)
    b = run_pixels_dd(pb, hp, np.zeros_like(hp))
    agree = np.mean(np.sign(a[:, OUT_MEASURE]) == np.sign(b[:, OUT_MEASURE]))
    assert agree >= 0.97
    assert np.array_equal(a[:, OUT_STEPS], b[:, OUT_STEPS]) or agree < 1.0
    rel = np.abs(a[:, OUT_MEASURE] - b[:, OUT_MEASURE]) / np.abs(a[:, OUT_MEASURE])
    assert np.median(rel) < 1e-9


@pytest.mark.parametrize("over", [{}, {"training": {"optimizer": "adam", "schedule": {"name": "warmup", "warmup_steps": 4}}}])
def test_bits_do_not_depend_on_threads_or_position(over):
    """Also with an optimizer and a schedule (ddopt.py)."""
    cfg = _cfg(**over)
    pb = build_problem(cfg)
    hp = _table(cfg, 7)
    lo = hp * 1e-20
    whole = run_pixels_dd(pb, hp, lo)
    numba.set_num_threads(1)
    try:
        one = run_pixels_dd(pb, hp, lo)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    parts = np.concatenate([run_pixels_dd(pb, hp[k : k + 5], lo[k : k + 5]) for k in range(0, len(hp), 5)])
    assert np.array_equal(whole, one, equal_nan=True)
    assert np.array_equal(whole, parts, equal_nan=True)


def test_low_parts_move_the_result():
    """A low part below float64's resolution (3e-17 relative) reaches the measure."""
    cfg = _cfg()
    pb = build_problem(cfg)
    hp = _table(cfg, 6)
    a = run_pixels_dd(pb, hp, np.zeros_like(hp))
    b = run_pixels_dd(pb, hp, hp * 3e-17)
    assert not np.array_equal(a[:, OUT_MEASURE], b[:, OUT_MEASURE])


FAST_CASES = {
    "tanh": {},
    "tanh8": {"network": {"width": 8}, "data": {"size": "paper"}},
    "tanh16": {"network": {"width": 16}, "data": {"size": "paper"}},
    "odd_width": {"network": {"width": 5}, "data": {"size": 37}},
    "relu": {"network": {"nonlinearity": "relu", "width": 6}},
    "identity": {"network": {"nonlinearity": "identity"}, "data": {"size": 19}},
    "outputs2": {"network": {"width": 7, "output_dim": 2}, "data": {"size": 9}},
    "minibatch": {"training": {"batch": 3}},
    "minibatch_outputs2": {"network": {"width": 9, "output_dim": 2, "nonlinearity": "relu"}, "data": {"size": 21},
                           "training": {"batch": 5}},
    "one_point": {"network": {"width": 16}, "data": {"size": 1}},
}


@pytest.mark.parametrize("case", sorted(FAST_CASES))
def test_fast_path_is_bitwise_the_general_path(case):
    """The depth-2 fast path (dd2.py) gives the general path's bits, with and without early stop."""
    over = {k: dict(v) for k, v in FAST_CASES[case].items()}
    over.setdefault("training", {})["steps"] = 25
    cfg = _cfg(**over)
    pb = build_problem(cfg)
    hp = _table(cfg, 5)
    lo = hp * 1e-20
    for early_stop in (True, False):
        a = run_pixels_dd(pb, hp, lo, early_stop)
        b = run_pixels_dd(pb, hp, lo, early_stop, fast_path=False)
        np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(a[:, OUT_MEASURE]))


@numba.njit
def _ref_point(p, x, W, G, fi, fo, woff, alphas, nonlin, acts, dacts, delta, y, loss, add_loss, grad):
    """One data point for lane ``p``, one scalar double-double operation at a time (ddgeneral.py's order)."""
    L = LANES
    depth = fi.shape[0]
    for l in range(depth):
        for j in range(fo[l]):
            sh, sl = 0.0, 0.0
            for k in range(fi[l]):
                w = (woff[l] + k * fo[l] + j) * L + p
                if l == 0:
                    ph, pl = dd_mul_d(W[0, w], W[1, w], x[k])
                else:
                    ph, pl = dd_mul(acts[l - 1, 0, k], acts[l - 1, 1, k], W[0, w], W[1, w])
                sh, sl = dd_add(sh, sl, ph, pl)
            zh, zl = dd_mul(sh, sl, alphas[0, l], alphas[1, l])
            if l == depth - 1:
                zh, zl = dd_add_d(zh, zl, -y[j])
                delta[0, j], delta[1, j] = zh, zl
                if add_loss:
                    qh, ql = dd_mul(zh, zl, zh, zl)
                    loss[0, p], loss[1, p] = dd_add(loss[0, p], loss[1, p], qh, ql)
                continue
            if nonlin == 0:
                ah, al = dd_tanh(zh, zl)
                qh, ql = dd_mul(ah, al, ah, al)
                dh, dl = dd_add_d(-qh, -ql, 1.0)
            elif nonlin == 1:
                ah, al, dh, dl = (zh, zl, 1.0, 0.0) if zh > 0.0 else (0.0, 0.0, 0.0, 0.0)
            else:
                ah, al, dh, dl = zh, zl, 1.0, 0.0
            acts[l, 0, j], acts[l, 1, j], dacts[l, 0, j], dacts[l, 1, j] = ah, al, dh, dl
    if not grad:
        return
    for l in range(depth - 1, -1, -1):
        for j in range(fo[l]):
            delta[0, j], delta[1, j] = dd_mul(delta[0, j], delta[1, j], alphas[0, l], alphas[1, l])
        for k in range(fi[l]):
            nh, nl = 0.0, 0.0
            for j in range(fo[l]):
                w = (woff[l] + k * fo[l] + j) * L + p
                if l == 0:
                    ph, pl = dd_mul_d(delta[0, j], delta[1, j], x[k])
                else:
                    ph, pl = dd_mul(acts[l - 1, 0, k], acts[l - 1, 1, k], delta[0, j], delta[1, j])
                    qh, ql = dd_mul(delta[0, j], delta[1, j], W[0, w], W[1, w])
                    nh, nl = dd_add(nh, nl, qh, ql)
                G[0, w], G[1, w] = dd_add(G[0, w], G[1, w], ph, pl)
            if l > 0:
                acts[depth - 1, 0, k], acts[depth - 1, 1, k] = dd_mul(nh, nl, dacts[l - 1, 0, k], dacts[l - 1, 1, k])
        if l > 0:
            for k in range(fi[l]):
                delta[0, k], delta[1, k] = acts[depth - 1, 0, k], acts[depth - 1, 1, k]


@numba.njit
def _ref_loss_grad(t, X, Y, W, G, loss, fi, fo, woff, alphas, nonlin, batch_idx):
    """``loss_grad_dd`` written lane by lane with dd.py's scalar functions: the plain reference."""
    wmax = max(fi.max(), fo.max())
    acts = np.zeros((fi.shape[0], 2, wmax))  # the last slot is scratch for the next delta
    dacts = np.zeros((fi.shape[0], 2, wmax))
    delta = np.zeros((2, wmax))
    full = batch_idx.shape[1] == 0
    G[:, :] = 0.0
    loss[:, :] = 0.0
    for p in range(LANES):
        for i in range(X.shape[0]):
            _ref_point(p, X[i], W, G, fi, fo, woff, alphas, nonlin, acts, dacts, delta, Y[i], loss, True, full)
        for b in range(batch_idx.shape[1]):
            i = batch_idx[t, b]
            _ref_point(p, X[i], W, G, fi, fo, woff, alphas, nonlin, acts, dacts, delta, Y[i], loss, False, True)


@pytest.mark.parametrize("over", [
    {},
    {"network": {"nonlinearity": "relu", "width": 6}, "training": {"batch": 3}},
    {"network": {"nonlinearity": "identity", "output_dim": 2}},
    {"network": {"depth": 3, "width": 5, "output_dim": 2}, "data": {"size": 11}},
    {"network": {"depth": 4, "width": 3, "nonlinearity": "relu"}, "training": {"batch": 4}},
])
def test_both_paths_are_bitwise_a_plain_lane_by_lane_reference(over):
    """The general path (ddgeneral, ddlayer) and the fast path (dd2) against scalar loops over dd.py."""
    cfg = _cfg(**over)
    pb = build_problem(cfg)
    w0, fi, fo, woff = pb.flat_weights()
    rng = np.random.default_rng(6)
    W = np.empty((2, w0.size * LANES))
    W[0] = np.repeat(w0, LANES) * (1.0 + 0.3 * rng.standard_normal(W.shape[1]))
    W[1] = W[0] * 2.0**-53 * rng.uniform(-0.5, 0.5, W.shape[1])
    bidx = pb.batch_indices if pb.batch_indices is not None else np.zeros((0, 0), np.int64)
    args = (pb.X, pb.Y, W)
    m = pb.Y.shape[1]
    for t in (0, 1):
        ref = (np.empty_like(W), np.empty((2, LANES)))
        _ref_loss_grad(t, *args, *ref, fi, fo, woff, pb.alphas_dd(), pb.nonlin_code, bidx)
        gen = (np.empty_like(W), np.empty((2, LANES)))
        loss_grad_dd(t, *args, *gen, fi, fo, woff, pb.alphas_dd(), pb.nonlin_code, bidx, *general_scratch_dd(fi, fo, m),
                     np.zeros(2, np.int64), *arch_scratch_dd(fi, fo))
        results = [gen]
        if fi.size == 2:
            fast = (np.empty_like(W), np.empty((2, LANES)))
            loss_grad_dd2(t, *args, *fast, pb.alphas_dd(), pb.nonlin_code, bidx, *dd2_scratch(fi, fo, m, bidx.shape[1], True))
            results.append(fast)
        for got in results:
            for a, b in zip(ref, got):
                np.testing.assert_array_equal(a.view(np.int64), b.view(np.int64))
