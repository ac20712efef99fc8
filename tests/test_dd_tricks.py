"""The double-double kernel's optimizers and schedules (ddopt.py): three steps to 32 digits against Decimal,
agreement with the float64 kernel, low parts that reach the result, and the device's door (determinism:
tests/test_dd_kernel.py; residual connections and layer norm: tests/test_dd_arch.py)."""

from decimal import Decimal, localcontext

import numba
import numpy as np
import pytest

from fractaltrain.columns import OUT_MEASURE, OUT_STEPS
from fractaltrain.compute.kernel import LANES, run_pixels
from fractaltrain.compute.kernel.dd import dd_sqrt
from fractaltrain.compute.kernel.ddopt import dd_optimizer_step
from fractaltrain.compute.kernel.driver import run_pixels_dd
from fractaltrain.compute.kernel.optimizers import ADAM, ADAMW, MOMENTUM, NESTEROV
from fractaltrain.config import config_from_dict
from fractaltrain.config.hyperparams import table_columns
from fractaltrain.problem import build_problem, pixel_hyperparams


def _exact(h, l):
    return Decimal(float(h)) + Decimal(float(l))


def _dd(rng, shape, scale=1.0):
    """Random double-double numbers: a high part and a low part below half its ulp."""
    h = rng.standard_normal(shape) * scale
    return h, h * 2.0**-54 * rng.uniform(-1, 1, shape)


@numba.njit
def _sqrt_all(ah, al, out):
    for i in range(ah.shape[0]):
        out[0, i], out[1, i] = dd_sqrt(ah[i], al[i])


def test_sqrt_to_32_digits():
    rng = np.random.default_rng(3)
    h = np.abs(rng.standard_normal(400)) * 10.0 ** rng.uniform(-30, 30, 400)
    l = h * 2.0**-54 * rng.uniform(-1, 1, 400)
    out = np.empty((2, 400))
    _sqrt_all(h, l, out)
    with localcontext() as ctx:
        ctx.prec = 70
        for i in range(400):
            want = _exact(h[i], l[i]).sqrt()
            assert abs(_exact(out[0, i], out[1, i]) / want - 1) < Decimal("1e-31")
    special = np.array([0.0, np.inf])
    _sqrt_all(special, np.zeros(2), out[:, :2])
    assert out[0, 0] == 0.0 and out[0, 1] == np.inf


def _decimal_step(opt, w, g, gs, s1, s2, t, rate, st):
    """optax's rule for one weight, in 70-digit decimals: the new (w, s1, s2)."""
    g = g * gs
    if opt in (MOMENTUM, NESTEROV):
        v = g + st["momentum"] * s1
        u = v if opt == MOMENTUM else g + st["momentum"] * v
        return w - rate * u, v, s2
    b1, b2 = st["beta1"], st["beta2"]
    m = b1 * s1 + (1 - b1) * g
    v = b2 * s2 + (1 - b2) * g * g
    u = (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + st["eps"])
    if opt == ADAMW:
        u = u + st["weight_decay"] * w
    return w - rate * u, m, v


@pytest.mark.parametrize("opt", [MOMENTUM, NESTEROV, ADAM, ADAMW])
def test_three_steps_of_each_optimizer_to_32_digits(opt):
    """Three steps of the update for a one-layer block, every weight against Decimal arithmetic."""
    rng = np.random.default_rng(opt)
    L, nw = LANES, 6
    W = np.array(_dd(rng, nw * L))
    S1, S2 = np.zeros((2, nw * L)), np.zeros((2, nw * L))
    pw1, pw2 = np.zeros((2, L)), np.zeros((2, L))
    pw1[0], pw2[0] = 1.0, 1.0
    rate = np.array(_dd(rng, L, 0.3))
    rate[0] = np.abs(rate[0])
    names = ("momentum", "beta1", "beta2", "eps", "weight_decay")
    base = {"momentum": 0.9, "beta1": 0.85, "beta2": 0.995, "eps": 1e-8, "weight_decay": 0.01}
    seth = np.concatenate([base[k] * (1 + 0.05 * rng.uniform(-1, 1, L)) for k in names] + [np.zeros(2 * L)])
    setl = seth * 2.0**-54 * rng.uniform(-1, 1, seth.size)
    with localcontext() as ctx:
        ctx.prec = 70
        gscale = np.array([2.0 / 3.0, float(Decimal(2) / Decimal(3) - Decimal(2.0 / 3.0))])  # 2/3 to 32 digits
    woff, fi, fo = np.array([0]), np.array([nw]), np.array([1])
    with localcontext() as ctx:
        ctx.prec = 70
        dec = {"w": [_exact(*W[:, i]) for i in range(nw * L)], "s1": [Decimal(0)] * (nw * L),
               "s2": [Decimal(0)] * (nw * L)}
        gsd = _exact(*gscale)
        for t in (1, 2, 3):
            G = np.array(_dd(rng, nw * L))
            dd_optimizer_step(opt, W, G, gscale, S1, S2, pw1, pw2, rate, seth, setl, 1, woff, fi, fo)
            for i in range(nw * L):
                p = i % L
                st = {k: _exact(seth[j * L + p], setl[j * L + p]) for j, k in enumerate(names)}
                dec["w"][i], dec["s1"][i], dec["s2"][i] = _decimal_step(
                    opt, dec["w"][i], _exact(*G[:, i]), gsd, dec["s1"][i], dec["s2"][i], t, _exact(*rate[:, p]), st)
                assert abs(_exact(*W[:, i]) - dec["w"][i]) <= Decimal("1e-29") * (abs(dec["w"][i]) + 1), (t, i)


def _cfg(tr, **net):
    return config_from_dict({"network": {"width": 4, "depth": 2, "nonlinearity": "tanh", **net}, "data": {"size": 8},
                             "training": {"steps": 40, **tr}, "resolution": "12x12", "tile": 8})


def _table(cfg, n, lo=-2.0, hi=1.0):
    xv = 10.0 ** np.linspace(lo, hi, n)
    XX, YY = np.meshgrid(xv, xv[::-1])
    return pixel_hyperparams(cfg, XX.ravel(), YY.ravel())


TRICKS = {
    "momentum": {"optimizer": "momentum"},
    "nesterov": {"optimizer": "nesterov"},
    "adam": {"optimizer": "adam"},
    "adamw": {"optimizer": {"name": "adamw", "weight_decay": 0.01}},
    "warmup_cosine": {"schedule": {"name": "warmup_cosine", "warmup_steps": 5}},
    "adam_cosine_minibatch": {"optimizer": "adam", "schedule": "cosine", "batch": 3},
}


@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("name", sorted(TRICKS))
def test_agrees_with_float64_kernel_at_float64_values(name, depth):
    """With zero low parts the double-double run is the float64 run carried 16 digits further."""
    cfg = _cfg(TRICKS[name], depth=depth)
    pb = build_problem(cfg)
    hp = _table(cfg, 10)
    a = run_pixels(pb, hp)
    b = run_pixels_dd(pb, hp, np.zeros_like(hp))
    assert np.mean(np.sign(a[:, OUT_MEASURE]) == np.sign(b[:, OUT_MEASURE])) >= 0.97
    assert np.array_equal(a[:, OUT_STEPS], b[:, OUT_STEPS])
    rel = np.abs(a[:, OUT_MEASURE] - b[:, OUT_MEASURE]) / np.abs(a[:, OUT_MEASURE])
    assert np.median(rel) < 1e-9


def test_the_schedule_and_the_optimizer_change_the_double_double_result():
    """The tricks are trained, not ignored: each changes the run against plain steepest descent."""
    plain = _cfg({})
    hp = _table(plain, 6)
    base = run_pixels_dd(build_problem(plain), hp, np.zeros_like(hp))[:, OUT_MEASURE]
    for name in ("momentum", "adam", "warmup_cosine"):
        cfg = _cfg(TRICKS[name])
        hp = _table(cfg, 6)
        got = run_pixels_dd(build_problem(cfg), hp, np.zeros_like(hp))[:, OUT_MEASURE]
        assert np.all(np.abs(got - base) > 1e-6 * np.abs(base)), name


@pytest.mark.parametrize("param,opt", [("momentum", "momentum"), ("beta1", "adam")])
def test_low_parts_of_a_setting_axis_reach_the_result(param, opt):
    """A setting's low part, below float64's resolution, moves the measure: the setting axis zooms deep."""
    cfg = config_from_dict({"network": {"width": 4, "depth": 2}, "data": {"size": 8},
                            "training": {"steps": 40, "optimizer": opt},
                            "axes": {"x": {"param": param, "scale": "linear", "range": [0.5, 0.99]},
                                     "y": {"param": "lr", "scale": "log10", "range": [-1, 1.5]}},
                            "resolution": "8x8", "tile": 8})
    pb = build_problem(cfg)
    sv, lv = np.meshgrid(np.linspace(0.5, 0.99, 8), 10 ** np.linspace(-1, 1.5, 8))
    hp = pixel_hyperparams(cfg, sv.ravel(), lv.ravel())
    lo = np.zeros_like(hp)
    col = table_columns(param, 2)[0]
    lo[:, col] = hp[:, col] * 3e-17
    a = run_pixels_dd(pb, hp, np.zeros_like(hp))
    b = run_pixels_dd(pb, hp, lo)
    assert np.count_nonzero(a[:, OUT_MEASURE] != b[:, OUT_MEASURE]) >= 4


def test_the_device_door_trains_residual_and_layer_norm_in_double_double():
    """device.run_pixels with low parts gives the CPU double-double kernel's bits for residual connections and
    layer norm (with an optimizer too), never the plain network's."""
    from fractaltrain.compute import device

    for net, tr in (({"depth": 3, "residual": True}, {}), ({"depth": 3, "norm": "layer"}, {"optimizer": "adam"})):
        cfg = _cfg(tr, **net)
        pb = build_problem(cfg)
        hp = _table(cfg, 4)
        lo = hp * 1e-20
        got = device.run_pixels(pb, hp, lo)
        np.testing.assert_array_equal(got.view(np.int64), run_pixels_dd(pb, hp, lo).view(np.int64))
        plain = build_problem(_cfg(tr, depth=3))
        assert np.any(run_pixels_dd(plain, hp, lo) != got)
