"""Kernel correctness: gradients, measure, agreement with numpy, early stop, determinism."""

import math

import numba
import numpy as np
import pytest

import numpy_reference as ref
from fractaltrain.config import config_from_dict
from fractaltrain.columns import OUT_FINAL, OUT_MEASURE, OUT_PROBE, OUT_STEPS
from fractaltrain.compute.kernel import run_pixels
from fractaltrain.compute.kernel import loss_and_grad
from measure_reference import convergence_measure, final_loss_readout
from fractaltrain.problem import build_problem, pixel_hyperparams


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
        if isinstance(v, dict):
            raw[k].update(v)
        else:
            raw[k] = v
    return config_from_dict(raw)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "identity"])
@pytest.mark.parametrize("depth", [2, 3])
def test_gradient_matches_finite_differences(nonlinearity, depth):
    cfg = small_cfg(network={"nonlinearity": nonlinearity, "depth": depth, "output_dim": 2})
    pb = build_problem(cfg)
    rng = np.random.default_rng(5)
    weights = [w + 0.1 * rng.standard_normal(w.shape) for w in pb.weights]
    loss, grads = loss_and_grad(pb, weights)
    assert math.isclose(loss, ref.loss(weights, pb.X, pb.Y, pb.alphas, nonlinearity), rel_tol=1e-12)
    h = 1e-6
    for l, w in enumerate(weights):
        fd = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            wp = [x.copy() for x in weights]
            wm = [x.copy() for x in weights]
            wp[l][idx] += h
            wm[l][idx] -= h
            fd[idx] = (ref.loss(wp, pb.X, pb.Y, pb.alphas, nonlinearity) - ref.loss(wm, pb.X, pb.Y, pb.alphas, nonlinearity)) / (2 * h)
        np.testing.assert_allclose(grads[l], fd, rtol=1e-5, atol=1e-8)


def test_minibatch_gradient_is_of_the_minibatch():
    cfg = small_cfg(training={"batch": 5})
    pb = build_problem(cfg)
    step = 3
    loss, grads = loss_and_grad(pb, list(pb.weights), step)
    idx = pb.batch_indices[step]
    expect = ref.grad(list(pb.weights), pb.X[idx], pb.Y[idx], pb.alphas, "tanh")
    assert math.isclose(loss, ref.loss(list(pb.weights), pb.X, pb.Y, pb.alphas, "tanh"), rel_tol=1e-12)
    for g, e in zip(grads, expect):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-14)


# --------------------------------------------------------------------------- the measure


def test_measure_converged_by_hand():
    # v = [1, .5, .25]: converged (tail mean .583 < 1), value -(1 + .5 + .25)
    assert convergence_measure([4.0, 2.0, 1.0]) == -1.75


def test_measure_diverged_by_hand():
    # v = [1, 2, 4]: diverged, value 1 + 1/2 + 1/4
    assert convergence_measure([1.0, 2.0, 4.0]) == 1.75


def test_measure_nan_counts_as_1e6_and_clips():
    # l0 = 0.5: a NaN loss counts as 1e6 -> v = 2e6, clipped to 1e6
    v = convergence_measure([0.5, np.nan, np.inf])
    assert v == 1.0 + 1e-6 + 1e-6


def test_measure_oscillating_judged_on_tail_mean():
    # alternating 0.5, 1.4: tail mean 0.95 < 1 -> converged
    losses = [1.0] + [0.5, 1.4] * 15
    assert convergence_measure(losses) < 0
    # alternating 0.5, 1.6: tail mean 1.05 -> diverged
    losses = [1.0] + [0.5, 1.6] * 15
    assert convergence_measure(losses) > 0


def test_measure_tail_is_last_twenty():
    # first 20 steps huge, last 20 tiny: converged even though the sum is large
    losses = [1.0] + [1e3] * 20 + [1e-3] * 20
    assert math.isclose(convergence_measure(losses), -(1.0 + 20 * 1e3 + 20 * 1e-3), rel_tol=1e-14)
    assert final_loss_readout([10.0, 1.0]) == -1.0


# --------------------------------------------------------------------------- agreement with numpy


CASES = {
    "tanh": ({}, (0.5, 0.3), {}),
    "relu": ({"network": {"nonlinearity": "relu"}}, (0.2, 0.4), {}),
    "identity": ({"network": {"nonlinearity": "identity"}, "data": {"size": "paper"}}, (0.1, 0.2), {}),
    "minibatch": ({"training": {"batch": 4}}, (0.3, 0.3), {}),
    "depth3": ({"network": {"depth": 3}}, (0.3, 0.2), {}),
    "drift": ({"axes": {"x": {"param": "offset_drift", "scale": "linear", "range": [-1, 1]}, "y": {"param": "lr"}}}, None, {"drift": 1e-3}),
    "offset": ({"axes": {"x": {"param": "offset_init", "scale": "linear", "range": [-1, 1]}, "y": {"param": "lr"}}}, None, {"offset": 0.2}),
    "scale": ({"axes": {"x": {"param": "init_scale", "scale": "linear", "range": [0, 2]}, "y": {"param": "lr"}}}, None, {"scale": 0.7}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_pixel_matches_numpy_reference(case):
    over, lrs, extra = CASES[case]
    cfg = small_cfg(**over)
    pb = build_problem(cfg)
    depth = cfg.network.depth
    if lrs is None:  # x is the extra hyperparameter, y the shared learning rate 0.3
        xv = np.array([list(extra.values())[0]])
        yv = np.array([0.3])
        lr_list = [0.3] * depth
    else:
        xv, yv = np.array([lrs[0]]), np.array([lrs[1]])
        lr_list = [lrs[0]] + [cfg.training.learning_rate] * (depth - 2) + [lrs[1]]
    hp = pixel_hyperparams(cfg, xv, yv)
    out = run_pixels(pb, hp)[0]
    losses, probe = ref.train(pb, lr_list, **extra)
    assert np.all(np.isfinite(losses))
    expect = convergence_measure(losses)
    assert expect < 0, "reference case should converge (not chaotic)"
    assert math.isclose(out[OUT_MEASURE], expect, rel_tol=1e-9)
    assert math.isclose(out[OUT_FINAL], final_loss_readout(losses), rel_tol=1e-7, abs_tol=1e-9)
    assert math.isclose(out[OUT_PROBE], probe, rel_tol=1e-8, abs_tol=1e-12)
    assert out[OUT_STEPS] == cfg.training.steps


def test_tiny_rates_converge_slowly_huge_output_rate_diverges():
    cfg = small_cfg(training={"steps": 50})
    pb = build_problem(cfg)
    hp = pixel_hyperparams(cfg, np.array([1e-6, 1e-2, 1.0]), np.array([1e-6, 1e6, 1e8]))
    out = run_pixels(pb, hp)
    tiny, big1, big2 = out[:, OUT_MEASURE]
    assert -50.0 < tiny < -49.9  # every v_t just below 1
    assert big1 > 0 and big2 > 0
    assert out[2, OUT_STEPS] < 50  # stopped early


def grid_hp(cfg, n=24, lo=-3, hi=6):
    v = 10.0 ** np.linspace(lo, hi, n)
    XX, YY = np.meshgrid(v, v)
    return pixel_hyperparams(cfg, XX.ravel(), YY.ravel())


@pytest.mark.parametrize("batch", ["full", 4])
def test_early_stop_is_bitwise_identical_to_full_run(batch):
    cfg = small_cfg(training={"steps": 60, "batch": batch})
    pb = build_problem(cfg)
    hp = grid_hp(cfg)
    a = run_pixels(pb, hp, early_stop=True)
    b = run_pixels(pb, hp, early_stop=False)
    assert np.sum(a[:, OUT_STEPS] < 60) > 50, "the grid must contain early-stopped pixels"
    np.testing.assert_array_equal(a[:, :OUT_PROBE], b[:, :OUT_PROBE])
    dead = a[:, OUT_STEPS] < 60
    assert np.all(a[dead, OUT_PROBE] == 1e6)


def test_results_do_not_depend_on_pixel_order_or_threads():
    cfg = small_cfg(training={"steps": 40})
    pb = build_problem(cfg)
    hp = grid_hp(cfg, 21)  # 441 pixels: not a multiple of the lane count
    a = run_pixels(pb, hp)
    perm = np.random.default_rng(0).permutation(len(hp))
    b = run_pixels(pb, hp[perm])
    np.testing.assert_array_equal(a[perm], b)
    c = run_pixels(pb, hp[:7])
    np.testing.assert_array_equal(a[:7], c)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        d = run_pixels(pb, hp)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(a, d)


# --------------------------------------------------------------------------- depth-2 fast path


FAST_CASES = {
    "tanh": {},
    "tanh16": {"network": {"width": 16}, "data": {"size": "paper"}},
    "tanh8": {"network": {"width": 8}, "data": {"size": "paper"}},
    "odd_width": {"network": {"width": 5}, "data": {"size": 13}},
    "relu": {"network": {"nonlinearity": "relu", "width": 6}},
    "identity": {"network": {"nonlinearity": "identity"}, "data": {"size": "paper"}},
    "outputs3": {"network": {"width": 7, "output_dim": 3}, "data": {"size": 9}},
    "minibatch": {"training": {"batch": 4}},
    "minibatch_outputs2": {"network": {"width": 9, "output_dim": 2}, "data": {"size": 21}, "training": {"batch": 5}},
    "one_point": {"network": {"width": 16}, "data": {"size": 1}},
    "drift": {"axes": {"x": {"param": "offset_drift", "scale": "linear", "range": [-1, 1]}, "y": {"param": "lr"}}},
}


@pytest.mark.parametrize("case", sorted(FAST_CASES))
def test_fast_path_is_bitwise_the_general_path(case):
    over = {k: dict(v) for k, v in FAST_CASES[case].items()}
    over.setdefault("training", {})["steps"] = 40
    cfg = small_cfg(**over)
    pb = build_problem(cfg)
    hp = grid_hp(cfg, 20)
    if cfg.x.param == "offset_drift":
        hp[:, cfg.network.depth] = np.linspace(-1, 1, len(hp))
    for early_stop in (True, False):
        a = run_pixels(pb, hp, early_stop=early_stop)
        b = run_pixels(pb, hp, early_stop=early_stop, fast_path=False)
        np.testing.assert_array_equal(a, b)
    assert np.any(a[:, OUT_MEASURE] < 0) and np.any(a[:, OUT_MEASURE] > 0)


def test_vector_tanh_is_bitwise_tanh64():
    from fractaltrain.compute.kernel.tanh import tanh64
    from fractaltrain.compute.kernel.vtanh import _activate_tanh, tanh_scratch_size

    @numba.njit
    def ref(z, a, d):
        for q in range(z.shape[0]):
            t = tanh64(z[q])
            a[q] = t
            d[q] = 1.0 - t * t

    @numba.njit
    def vec(z, a, d, lists):
        _activate_tanh(z, a, d, z.shape[0], lists)

    rng = np.random.default_rng(3)
    near = np.nextafter(0.55, 0.0)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e-300, 0.55, -0.55, near, -near,
                        19.06, 20.0, 25.0, 1e308, -1e308, 0.549, 0.551, 3.0])
    parts = [rng.standard_normal(40000) * s for s in (0.05, 0.3, 1.0, 3.0, 30.0)]
    parts += [rng.uniform(-0.55, 0.55, 40000), rng.choice([-1.0, 1.0], 40000) * rng.uniform(0.55, 25.0, 40000)]
    parts += [rng.permutation(np.tile(special, 200)), rng.choice([-near, near, -0.55, 0.55], 4000)]
    # saturated vectors (|x| >= 19.1 in all lanes), and the edge of saturation
    sat = np.concatenate([rng.uniform(19.1, 19.2, 8000), rng.uniform(18.9, 30.0, 8000), 10 ** rng.uniform(1.3, 308, 8000)])
    parts += [rng.choice([-1.0, 1.0], sat.size) * sat, np.full(800, 19.1), np.full(800, -np.inf)]
    z = np.concatenate(parts)
    z = z[: z.size // 8 * 8]
    a1, d1 = np.empty_like(z), np.empty_like(z)
    ref(z, a1, d1)
    a2, d2 = np.empty_like(z), np.empty_like(z)
    vec(z, a2, d2, np.empty(tanh_scratch_size(z.size), np.int64))
    np.testing.assert_array_equal(a1.view(np.int64), a2.view(np.int64))
    np.testing.assert_array_equal(d1.view(np.int64), d2.view(np.int64))
    inplace = z.copy()
    vec(inplace, inplace, d2, np.empty(tanh_scratch_size(z.size), np.int64))
    np.testing.assert_array_equal(a1.view(np.int64), inplace.view(np.int64))


def test_tanh64_is_exactly_one_where_the_kernel_assumes_it():
    """The vector tanh returns ±1 without computing for |x| >= 19.1 (vtanh._SATURATE)."""
    from fractaltrain.compute.kernel.tanh import tanh64
    from fractaltrain.compute.kernel.vtanh import _SATURATE

    @numba.njit
    def tanh_all(x, out):
        for i in range(x.shape[0]):
            out[i] = tanh64(x[i])

    rng = np.random.default_rng(4)
    x = np.concatenate([
        np.array([_SATURATE, 19.5, 20.0, 20.000000000000004, 1e308, np.inf]),
        _SATURATE + rng.uniform(0.0, 1e-3, 200000),
        rng.uniform(_SATURATE, 21.0, 200000),
        10 ** rng.uniform(1.29, 308, 100000),
    ])
    x = np.concatenate([x, -x])
    out = np.empty_like(x)
    tanh_all(x, out)
    np.testing.assert_array_equal(out, np.sign(x))


# --------------------------------------------------------------------------- optimizers (issue 32)

OPTIMIZERS = {
    "momentum": {"name": "momentum", "momentum": 0.7},
    "nesterov": {"name": "nesterov", "momentum": 0.6},
    "adam": {"name": "adam", "beta1": 0.8, "beta2": 0.99, "eps": 1e-6},
    "adamw": {"name": "adamw", "weight_decay": 0.01},
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("over", [{}, {"training": {"batch": 4}}, {"network": {"depth": 3}}])
def test_optimizers_match_numpy_reference(name, over):
    opt = OPTIMIZERS[name]
    lrs = (0.05, 0.02) if name.startswith("adam") else (0.3, 0.2)
    cfg = small_cfg(training={**over.get("training", {}), "optimizer": opt}, **{k: v for k, v in over.items()
                                                                               if k != "training"})
    pb = build_problem(cfg)
    depth = cfg.network.depth
    hp = pixel_hyperparams(cfg, np.array([lrs[0]]), np.array([lrs[1]]))
    out = run_pixels(pb, hp)[0]
    general = run_pixels(pb, hp, fast_path=False)[0]
    assert np.array_equal(out, general)  # the fast path's optimizer step is block.py's
    lr_list = [lrs[0]] + [cfg.training.learning_rate] * (depth - 2) + [lrs[1]]
    losses, probe = ref.train(pb, lr_list, optimizer=opt)
    assert np.all(np.isfinite(losses))
    expect = convergence_measure(losses)
    assert math.isclose(out[OUT_MEASURE], expect, rel_tol=1e-8)
    assert math.isclose(out[OUT_PROBE], probe, rel_tol=1e-7, abs_tol=1e-10)


def test_optimizer_settings_as_axes_and_sgd_unchanged():
    """A setting on an axis trains each pixel with its own value; sgd configs keep their tables and keys."""
    cfg = small_cfg(training={"optimizer": "momentum"},
                    axes={"x": {"param": "momentum", "scale": "linear", "range": [0.0, 0.9]}, "y": {"param": "lr"}})
    pb = build_problem(cfg)
    hp = pixel_hyperparams(cfg, np.array([0.0, 0.5]), np.array([0.3, 0.3]))
    out = run_pixels(pb, hp)
    sgd = small_cfg(axes={"x": {"param": "lr_input"}, "y": {"param": "lr_output"}})
    plain = run_pixels(build_problem(sgd), pixel_hyperparams(sgd, np.array([0.3]), np.array([0.3])))
    assert out[0, OUT_MEASURE] == plain[0, OUT_MEASURE]  # momentum 0 is steepest descent, bit for bit
    assert out[1, OUT_MEASURE] != out[0, OUT_MEASURE]
    assert pixel_hyperparams(sgd, np.array([0.3]), np.array([0.3])).shape[1] == cfg.network.depth + 3
    assert "optimizer" not in build_problem(sgd).config.to_dict()["training"]
    assert build_problem(cfg).key() != build_problem(small_cfg(
        axes={"x": {"param": "offset_drift", "scale": "linear", "range": [0.0, 0.9]}, "y": {"param": "lr"}})).key()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_explorer_curve_trains_the_optimizer_bit_for_bit(name):
    from fractaltrain.compute.curve import loss_curve, measure_from_curve

    cfg = small_cfg(training={"optimizer": OPTIMIZERS[name]})
    pb = build_problem(cfg)
    hp = pixel_hyperparams(cfg, np.array([0.05, 3.0]), np.array([0.02, 5.0]))
    out = run_pixels(pb, hp)
    for k in range(2):
        assert measure_from_curve(loss_curve(pb, hp[k])) == out[k, OUT_MEASURE]


def test_a_deep_window_of_residual_and_layer_norm_renders_in_double_double(tmp_path):
    """Past float64's floor a residual, layer-norm network trains in double-double (tests/test_dd_arch.py checks
    the kernel), end to end: the render's raw values are the double-double kernel's for its grid."""
    import yaml

    from fractaltrain.compute.kernel import run_pixels_dd
    from test_hard_input import cli

    deep = "1.0000000000000000000001,1.0000000000000000000002,1.0000000000000000000001,1.0000000000000000000002"
    raw = {"name": "deep", "network": {"width": 4, "depth": 3, "residual": True, "norm": "layer"},
           "data": {"size": 6}, "training": {"steps": 20}, "resolution": "8x8", "tile": 8}
    path = tmp_path / "deep.yaml"
    path.write_text(yaml.safe_dump(raw))
    code, _, err = cli("render", path, "--window", deep, "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    with np.load(tmp_path / "out" / "deep.npz") as z:
        assert str(z["precision"]) == "double-double"
        measure = z["measure"]
        hp = np.stack(np.meshgrid(z["x_values"], z["y_values"]), -1).reshape(-1, 2)
        lo = np.stack(np.meshgrid(z["x_values_lo"], z["y_values_lo"]), -1).reshape(-1, 2)
    from fractaltrain.config import load_config

    cfg = load_config(path)
    pb = build_problem(cfg)
    hph = pixel_hyperparams(cfg, hp[:, 0], hp[:, 1])
    hpl = np.zeros_like(hph)
    hpl[:, :2] = lo  # lr_input and lr_output are the axes
    want = run_pixels_dd(pb, hph, hpl)[:, OUT_MEASURE].reshape(measure.shape)
    np.testing.assert_array_equal(measure, want)


def _optax_factor(name, steps, W=0.0, a=0.0):
    """optax's schedules written from their definitions (linear_schedule, cosine_decay_schedule, joined)."""
    def warmup(t):
        return min(t, W) / W if W > 0 else 1.0

    def cosine(t, T):
        return (1 - a) * 0.5 * (1 + np.cos(np.pi * min(t, T) / T)) + a

    return {"warmup": warmup, "cosine": lambda t: cosine(t, steps),
            "warmup_cosine": lambda t: warmup(t) if t < W else cosine(t - W, steps - W)}[name]


@pytest.mark.parametrize("schedule", [{"name": "warmup", "warmup_steps": 7}, {"name": "cosine", "final_fraction": 0.1},
                                      {"name": "warmup_cosine", "warmup_steps": 5, "final_fraction": 0.2}])
@pytest.mark.parametrize("optimizer", [None, OPTIMIZERS["momentum"], OPTIMIZERS["adam"]])
def test_schedules_match_numpy_reference(schedule, optimizer):
    training = {"schedule": schedule} | ({} if optimizer is None else {"optimizer": optimizer})
    cfg = small_cfg(training=training)
    pb = build_problem(cfg)
    lrs = (0.05, 0.02) if optimizer and optimizer["name"].startswith("adam") else (0.3, 0.2)
    hp = pixel_hyperparams(cfg, np.array([lrs[0]]), np.array([lrs[1]]))
    out = run_pixels(pb, hp)[0]
    f = _optax_factor(schedule["name"], cfg.training.steps, schedule.get("warmup_steps", 0.0),
                      schedule.get("final_fraction", 0.0))
    losses, probe = ref.train(pb, list(lrs), optimizer=optimizer, factor=f)
    assert math.isclose(out[OUT_MEASURE], convergence_measure(losses), rel_tol=1e-8)
    from fractaltrain.compute.curve import loss_curve, measure_from_curve

    assert measure_from_curve(loss_curve(pb, hp[0])) == out[OUT_MEASURE]  # the explorer's curve, bit for bit


def test_warmup_steps_as_an_axis():
    cfg = small_cfg(training={"schedule": "warmup"},
                    axes={"x": {"param": "warmup_steps", "scale": "linear", "range": [0, 20]}, "y": {"param": "lr"}})
    pb = build_problem(cfg)
    out = run_pixels(pb, pixel_hyperparams(cfg, np.array([0.0, 10.0]), np.array([0.3, 0.3])))
    sgd = small_cfg(axes={"x": {"param": "lr_input"}, "y": {"param": "lr_output"}})
    plain = run_pixels(build_problem(sgd), pixel_hyperparams(sgd, np.array([0.3]), np.array([0.3])))
    assert out[0, OUT_MEASURE] == plain[0, OUT_MEASURE]  # no warmup: steepest descent, bit for bit
    assert out[1, OUT_MEASURE] != out[0, OUT_MEASURE]
