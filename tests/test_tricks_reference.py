"""scripts/tricks_reference.py, the numpy reference for issue 32's training tricks, checked itself.

The reference is what the kernels' optimizers, schedules, residual
connections and layer norm will be compared with, so it must first be right:
with no tricks it trains exactly what the kernel trains (the same maths in
another order, so the measures agree to float64's rounding on non-chaotic
pixels); its hand-written backprop through the residual sum and the layer norm
matches central finite differences; its update rules meet the closed forms
they must (adam's first step, momentum's and Nesterov's first two steps, β = 0
is sgd); its schedule factors are the ones the module's docstring states; and,
where JAX and optax are installed (optional), one pixel per optimizer agrees
with jax.grad and optax's own optimizers and schedules.  Tiny problems
(width 4, 12 points, tens of steps) keep the file to a few seconds.
"""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import tricks_reference as tr  # noqa: E402
from fractaltrain.columns import OUT_FINAL, OUT_MEASURE, OUT_PROBE, OUT_STEPS  # noqa: E402
from fractaltrain.compute.kernel import run_pixels  # noqa: E402
from fractaltrain.config import config_from_dict  # noqa: E402
from fractaltrain.problem import build_problem, pixel_hyperparams  # noqa: E402
from measure_reference import convergence_measure, final_loss_readout  # noqa: E402

T = tr.TrainingTricks


def small_cfg(**over):
    raw = {
        "network": {"width": 4, "depth": 2, "nonlinearity": "tanh"},
        "data": {"size": 12},
        "training": {"steps": 30},
        "resolution": "16x16",
        "tile": 8,
    }
    for k, v in over.items():
        raw.setdefault(k, {})
        raw[k].update(v)
    return config_from_dict(raw)


def problem(**over):
    return build_problem(small_cfg(**over))


def hp_row(pb, lrs, drift=0.0, offset=0.0, scale=1.0):
    """One row of the per-pixel table: per-layer rates, drift, offset, scale."""
    depth = len(pb.weights)
    lrs = [lrs] * depth if np.isscalar(lrs) else list(lrs)
    return np.array(lrs + [drift, offset, scale], dtype=np.float64)


def grid(cfg, n=9, lo=-3, hi=3):
    v = 10.0 ** np.linspace(lo, hi, n)
    XX, YY = np.meshgrid(v, v)
    return pixel_hyperparams(cfg, XX.ravel(), YY.ravel())


# --------------------------------------------------------------------------- sgd is the kernel


SGD_CASES = {
    "tanh": {},
    "depth3": {"network": {"depth": 3}},
    "relu": {"network": {"nonlinearity": "relu"}},
    "identity": {"network": {"nonlinearity": "identity"}},
    "minibatch": {"training": {"batch": 4}},
    "outputs2": {"network": {"output_dim": 2}},
    "drift": {"axes": {"x": {"param": "offset_drift", "scale": "linear", "range": [-1, 1]}, "y": {"param": "lr"}}},
    "offset_scale": {"axes": {"x": {"param": "offset_init", "scale": "linear", "range": [-1, 1]},
                              "y": {"param": "init_scale", "scale": "linear", "range": [0.2, 2]}},
                     "fixed": {"lr": 0.3}},
}


@pytest.mark.parametrize("case", sorted(SGD_CASES))
def test_sgd_without_tricks_is_the_kernel(case):
    cfg = small_cfg(**SGD_CASES[case])
    pb = build_problem(cfg)
    if cfg.x.scale == "linear":
        a = np.linspace(cfg.x.range[0], cfg.x.range[1], 9)
        b = np.linspace(cfg.y.range[0], cfg.y.range[1], 9) if cfg.y.scale == "linear" else 10.0 ** np.linspace(-3, 1, 9)
        XX, YY = np.meshgrid(a, b)
        hp = pixel_hyperparams(cfg, XX.ravel(), YY.ravel())
    else:
        hp = grid(cfg)  # 1e-3 .. 1e3: converged, boundary and dead pixels
    ours = tr.train(pb, hp, T())
    kern = run_pixels(pb, hp)
    np.testing.assert_array_equal(np.sign(ours["measure"]), np.sign(kern[:, OUT_MEASURE]))
    np.testing.assert_array_equal(ours["steps"], kern[:, OUT_STEPS])
    rel = np.abs(ours["measure"] - kern[:, OUT_MEASURE]) / np.abs(kern[:, OUT_MEASURE])
    # the same maths in another order: float64 rounding, grown a little near the boundary by chaos
    assert np.mean(rel < 1e-12) >= 0.95, np.sort(rel)[-5:]
    assert rel.max() < 1e-9
    conv = kern[:, OUT_MEASURE] < 0
    assert conv.sum() >= 10
    np.testing.assert_allclose(ours["final"][conv], kern[conv, OUT_FINAL], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours["probe"][conv], kern[conv, OUT_PROBE], rtol=1e-8, atol=1e-10)
    dead = kern[:, OUT_STEPS] < 30
    assert np.all(ours["probe"][dead] == 1e6)


def test_one_pixel_gives_scalars_and_losses_give_the_measure():
    pb = problem(network={"depth": 3})
    hp = hp_row(pb, [0.5, 0.1, 0.3])
    r = tr.train(pb, hp, T(optimizer="adam", norm="layer"))
    assert isinstance(r["measure"], float) and isinstance(r["steps"], int)
    curve = tr.losses(pb, hp, T(optimizer="adam", norm="layer"))
    assert curve.shape == (30,)
    assert r["measure"] == convergence_measure(curve)
    assert math.isclose(r["final"], final_loss_readout(curve), rel_tol=1e-15)


def test_a_dead_run_stops_and_its_curve_repeats_the_non_finite_loss():
    pb = problem()
    hp = np.array([hp_row(pb, 0.1), hp_row(pb, [1.0, 1e8])])
    r = tr.train(pb, hp, T(optimizer="momentum"))
    assert r["steps"][0] == 30 and r["steps"][1] < 30
    assert r["probe"][1] == 1e6 and r["measure"][1] > 0
    curves = tr.losses(pb, hp, T(optimizer="momentum"))
    assert not np.isfinite(curves[1, -1])
    assert [convergence_measure(c) for c in curves] == list(r["measure"])


# --------------------------------------------------------------------------- gradients


def finite_differences(pb, weights, tricks, rows=None, h=1e-6):
    fd = []
    for l, w in enumerate(weights):
        g = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            wp = [x.copy() for x in weights]
            wm = [x.copy() for x in weights]
            wp[l][idx] += h
            wm[l][idx] -= h
            g[idx] = (tr.loss_only(pb, wp, tricks, rows) - tr.loss_only(pb, wm, tricks, rows)) / (2 * h)
        fd.append(g)
    return fd


@pytest.mark.parametrize("depth", [3, 4])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "identity"])
@pytest.mark.parametrize("arch", ["residual", "layer", "residual+layer"])
def test_gradient_matches_finite_differences(depth, nonlinearity, arch):
    pb = problem(network={"depth": depth, "nonlinearity": nonlinearity, "output_dim": 2})
    tricks = T(residual="residual" in arch, norm="layer" if "layer" in arch else "none")
    rng = np.random.default_rng(5)
    weights = [w + 0.1 * rng.standard_normal(w.shape) for w in pb.weights]
    rows = np.array([0, 3, 3, 7, 11])  # a minibatch with a repeated point
    for r in (None, rows):
        loss, grads = tr.loss_and_gradient(pb, weights, tricks, r)
        assert loss == tr.loss_only(pb, weights, tricks, r)
        for g, f in zip(grads, finite_differences(pb, weights, tricks, r)):
            np.testing.assert_allclose(g, f, rtol=1e-5, atol=1e-8)


def test_plain_network_gradient_is_numpy_references():
    import numpy_reference as ref

    pb = problem(network={"depth": 3})
    loss, grads = tr.loss_and_gradient(pb, list(pb.weights), T())
    assert math.isclose(loss, ref.loss(list(pb.weights), pb.X, pb.Y, pb.alphas, "tanh"), rel_tol=1e-14)
    for g, e in zip(grads, ref.grad(list(pb.weights), pb.X, pb.Y, pb.alphas, "tanh")):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-16)


def test_architecture_properties():
    pb = problem(network={"depth": 4})
    w = [x.copy() for x in pb.weights]
    # a residual layer with zero weights passes its input on (tanh(0) = 0): the network is depth 3's
    w0 = [w[0], w[1], np.zeros_like(w[2]), w[3]]
    net = tr._Net(pb, T(residual=True))
    out0, _ = net.forward([x[None] for x in w0], pb.X)
    manual = np.tanh(pb.alphas[0] * (pb.X @ w[0]))
    manual = manual + np.tanh(pb.alphas[1] * (manual @ w[1]))
    np.testing.assert_allclose(out0[0], pb.alphas[-1] * (manual @ w[3]), rtol=1e-14)
    # layer norm makes each hidden layer blind to the scale of its weights (up to norm_eps)
    net = tr._Net(pb, T(norm="layer", norm_eps=0.0))
    a, _ = net.forward([x[None] for x in w], pb.X)
    b, _ = net.forward([x[None] * c for x, c in zip(w, (3.0, 0.5, 7.0, 1.0))], pb.X)
    np.testing.assert_allclose(a, b, rtol=1e-12)
    with pytest.raises(ValueError, match="depth >= 3"):
        tr.train(problem(), hp_row(problem(), 0.1), T(residual=True))


# --------------------------------------------------------------------------- update rules


def test_adam_and_adamw_first_steps_have_closed_forms():
    pb = problem(network={"depth": 3})
    hp = hp_row(pb, [0.3, 0.05, 0.2])
    _, g = tr.loss_and_gradient(pb, list(pb.weights), T())
    for tricks in (T(optimizer="adam"), T(optimizer="adam", eps=1e-3), T(optimizer="adamw", weight_decay=0.01)):
        W1 = tr.weights_after(pb, hp, tricks, 1)
        for k in range(3):
            # m̂ = g, v̂ = g²: u = g/(|g| + eps) = sign(g)/(1 + eps/|g|)
            u = np.sign(g[k]) * (1.0 / (1.0 + tricks.eps / np.abs(g[k])))
            if tricks.optimizer == "adamw":
                u = u + tricks.weight_decay * pb.weights[k]
            np.testing.assert_allclose(W1[k], pb.weights[k] - hp[k] * u, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
def test_momentum_and_nesterov_two_steps_by_hand(name):
    pb = problem(network={"depth": 3}, training={"batch": 5})
    hp = hp_row(pb, [0.3, 0.05, 0.2], drift=0.01)
    beta = 0.7
    rows = pb.batch_indices
    W0 = [w.copy() for w in pb.weights]
    W0[0] = W0[0] + 0.01
    _, g0 = tr.loss_and_gradient(pb, W0, T(), rows[0])
    v = g0
    u = v if name == "momentum" else [a + beta * b for a, b in zip(g0, v)]
    W1 = [w - lr * x for w, lr, x in zip(W0, hp, u)]
    W1[0] = W1[0] + 0.01
    _, g1 = tr.loss_and_gradient(pb, W1, T(), rows[1])
    v = [a + beta * b for a, b in zip(g1, v)]
    u = v if name == "momentum" else [a + beta * b for a, b in zip(g1, v)]
    W2 = [w - lr * x for w, lr, x in zip(W1, hp, u)]
    got = tr.weights_after(pb, hp, T(optimizer=name, momentum=beta), 2)
    for a, b in zip(got, W2):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
def test_beta_zero_is_sgd(name):
    pb = problem(network={"depth": 3})
    hp = grid(small_cfg(network={"depth": 3}), n=5)
    a = tr.train(pb, hp, T())
    b = tr.train(pb, hp, T(optimizer=name, momentum=0.0))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_per_pixel_settings_are_each_pixel_trained_alone():
    pb = problem(network={"depth": 3})
    hp = np.array([hp_row(pb, [0.3, 0.1, 0.2])] * 3)
    settings = {"beta1": np.array([0.5, 0.8, 0.95]), "warmup_steps": np.array([0, 3, 7])}
    tricks = T(optimizer="adamw", schedule="warmup_cosine", final_fraction=0.2, residual=True)
    batch = tr.train(pb, hp, tricks, settings)
    for i in range(3):
        one = tr.train(pb, hp[i], tricks.replace(beta1=settings["beta1"][i], warmup_steps=settings["warmup_steps"][i]))
        assert one == {k: (int(v[i]) if k == "steps" else float(v[i])) for k, v in batch.items()}
    with pytest.raises(ValueError, match="beta1"):
        tr.train(pb, hp, tricks, {"beta1": np.array([0.5, 1.0, 0.9])})


def test_table_settings_read_the_columns_after_the_init_scale():
    pb = problem()
    hp = np.array([list(hp_row(pb, 0.1)) + [0.5, 0.8, 0.99, 1e-6, 0.01, 3.0, 0.2]])
    s = tr.table_settings(pb, hp)
    assert {k: float(v[0]) for k, v in s.items()} == {"momentum": 0.5, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6,
                                                      "weight_decay": 0.01, "warmup_steps": 3.0, "final_fraction": 0.2}
    assert tr.table_settings(pb, hp[:, :5]) == {}
    a = tr.train(pb, hp, T(optimizer="adam", schedule="warmup_cosine"), settings="table")
    b = tr.train(pb, hp[:, :5], T(optimizer="adam", beta1=0.8, beta2=0.99, eps=1e-6, schedule="warmup_cosine",
                                  warmup_steps=3, final_fraction=0.2))
    assert a["measure"][0] == b["measure"][0]


# --------------------------------------------------------------------------- schedules


def test_schedule_factors_at_chosen_steps():
    f = tr.schedule_factor
    # warmup W = 4: step t gets t/W (optax.linear_schedule(0, 1, 4) at update count t), so step 0 does not move
    assert [f(T(schedule="warmup", warmup_steps=4), t, 10) for t in (0, 1, 2, 3, 4, 9)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert f(T(schedule="warmup", warmup_steps=0), 0, 10) == 1.0  # no warmup
    assert f(T(schedule="constant"), 7, 10) == 1.0
    # cosine over T = 10 steps to a = 0.1: 1 at 0, the midpoint at 5, just above a at the last step
    c = T(schedule="cosine", final_fraction=0.1)
    assert f(c, 0, 10) == 1.0
    assert math.isclose(f(c, 5, 10), 0.55, rel_tol=1e-15)
    assert math.isclose(f(c, 9, 10), 0.1 + 0.9 * 0.5 * (1 + math.cos(0.9 * math.pi)), rel_tol=1e-15)
    assert f(c, 10, 10) == pytest.approx(0.1, rel=1e-15)
    # warmup 4 then cosine over the remaining 6 steps
    wc = T(schedule="warmup_cosine", warmup_steps=4, final_fraction=0.0)
    assert f(wc, 2, 10) == 0.5 and f(wc, 4, 10) == 1.0
    assert math.isclose(f(wc, 7, 10), 0.5, rel_tol=1e-15)
    # per-pixel warmup lengths, vectorised
    np.testing.assert_array_equal(f(T(schedule="warmup"), 2, 10, {"warmup_steps": np.array([0.0, 2.0, 4.0])}), [1.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="warmup_steps"):
        f(T(schedule="warmup_cosine", warmup_steps=10), 0, 10)


def test_warmup_first_step_leaves_the_weights():
    pb = problem()
    hp = hp_row(pb, 0.3)
    W1 = tr.weights_after(pb, hp, T(schedule="warmup", warmup_steps=5, optimizer="nesterov"), 1)
    for a, b in zip(W1, pb.weights):
        np.testing.assert_array_equal(a, b)


def test_tricks_from_the_issues_schema():
    raw = {"training": {"optimizer": {"name": "adam", "beta1": 0.8}, "schedule": {"name": "warmup", "warmup_steps": 10}},
           "network": {"residual": True, "norm": "layer", "depth": 3}}
    t = T.from_raw(raw)
    assert (t.optimizer, t.beta1, t.beta2, t.schedule, t.warmup_steps, t.residual, t.norm) == \
        ("adam", 0.8, 0.999, "warmup", 10.0, True, "layer")
    assert T.from_raw({"training": {"optimizer": "sgd"}}) == T()
    with pytest.raises(ValueError, match="optimizer"):
        T(optimizer="rmsprop")
    with pytest.raises(ValueError, match="unknown setting"):
        T.from_raw({"training": {"optimizer": {"name": "adam", "momentum_typo": 1}}})


# --------------------------------------------------------------------------- optax (optional)


needs_optax = pytest.mark.skipif(not tr.optax_available(), reason="JAX and optax are optional (pip install jax optax)")

OPTAX_CASES = [
    T(),
    T(optimizer="momentum"),
    T(optimizer="nesterov", momentum=0.5, schedule="cosine", final_fraction=0.1),
    T(optimizer="adam", schedule="warmup_cosine", warmup_steps=5, final_fraction=0.1),
    T(optimizer="adamw", weight_decay=0.01, schedule="warmup", warmup_steps=4, residual=True, norm="layer"),
    T(optimizer="adam", beta1=0.5, beta2=0.9, eps=1e-4, residual=True),
]


@needs_optax
@pytest.mark.parametrize("k", range(len(OPTAX_CASES)))
def test_one_pixel_agrees_with_jax_grad_and_optax(k):
    tricks = OPTAX_CASES[k]
    pb = problem(network={"depth": 3}, training={"batch": 6})
    hp = hp_row(pb, [0.2, 0.1, 0.15], drift=1e-3, offset=0.05, scale=0.9)
    ref, first_grad = tr.optax_losses(pb, hp, tricks)
    ours = tr.losses(pb, hp, tricks)
    assert ours[-1] < ours[0], "a converging pixel (not chaotic)"
    np.testing.assert_allclose(ours, ref, rtol=1e-11)
    W0 = [0.9 * w for w in pb.weights]
    W0[0] = W0[0] + 0.05 + 1e-3
    _, g = tr.loss_and_gradient(pb, W0, tricks, pb.batch_indices[0])
    for a, b in zip(g, first_grad):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-16)


@needs_optax
def test_schedule_factors_are_optaxs():
    for tricks in (T(schedule="warmup", warmup_steps=7), T(schedule="cosine", final_fraction=0.25),
                   T(schedule="warmup_cosine", warmup_steps=3, final_fraction=0.05), T(schedule="warmup_cosine")):
        np.testing.assert_array_equal(tr.schedule_factor(tricks, np.arange(20), 20), tr.optax_schedule_factors(tricks, 20))
