"""The optimizer updates (optimizers.hpp) against their formulas in numpy's IEEE arithmetic, and the
storing of subnormal states as zero in every 16th update: Adam's moments only where epsilon makes it
invisible in the denominator, SGD's velocity always."""

import math

import numpy as np
import pytest

from aevb import AEVB, _core
from aevb._native import core

BUILDS = pytest.mark.parametrize("build", (_core, core), ids=("baseline", "best"))
FLUSH_EVERY = 16  # optimizers.hpp's kFlushEvery
ADAM = {
    "solver": "adam", "learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8,
    "momentum": 0.9, "nesterov": True,
}  # fmt: skip


def adam_reference(p, g, m, v, t, options, dtype):
    """One Adam update in dtype, in the order optimizers.hpp computes it (no fused multiply-adds), with no
    flushing: returns the new (p, m, v)."""
    one = dtype(1)
    b1, b2, eps = dtype(options["beta_1"]), dtype(options["beta_2"]), dtype(options["epsilon"])
    step_size = dtype(options["learning_rate"]) / (one - dtype(options["beta_1"] ** t))
    inv_sqrt_correction2 = one / dtype(math.sqrt(1 - options["beta_2"] ** t))
    with np.errstate(under="ignore"):
        m = b1 * m + (one - b1) * g
        v = b2 * v + (one - b2) * g * g
        p = p - step_size * m / (np.sqrt(v) * inv_sqrt_correction2 + eps)
    return p, m, v


def adam_case(dtype, n=1000, seed=0):
    """Parameters, gradients and moments of every kind Adam meets: normal moments, moments a few steps from
    the subnormals (m decaying under a zero gradient, v under a tiny one), subnormal ones, and zeros."""
    rng = np.random.default_rng(seed)
    tiny = np.finfo(dtype).tiny
    p = rng.normal(0, 0.05, n).astype(dtype)
    g = rng.normal(0, 1e-3, n).astype(dtype)
    m = rng.normal(0, 1e-3, n).astype(dtype)
    v = np.abs(rng.normal(0, 1e-6, n)).astype(dtype)
    # within a factor 1.2 of the smallest normal: 0.9 m and 0.999 v may fall below
    near = slice(0, n // 4)
    g[near] = 0
    m[near] = (tiny * rng.uniform(-1.2, 1.2, n // 4)).astype(dtype)
    v[near] = (tiny * rng.uniform(0, 1.002, n // 4)).astype(dtype)
    sub = slice(n // 4, n // 2)  # already subnormal (as stored by an IEEE run) or zero
    g[sub] = 0
    m[sub] = (tiny * rng.uniform(-1, 1, n // 4) * rng.choice([0, 1e-3, 1], n // 4)).astype(dtype)
    v[sub] = (tiny * rng.uniform(0, 1, n // 4) * rng.choice([0, 1e-3, 1], n // 4)).astype(dtype)
    return p, g, m, v


def subnormal(x):
    return (x != 0) & (np.abs(x) < np.finfo(x.dtype).tiny)


def update(build, p, g, m, v, t, options):
    p, state = p.copy(), np.stack([m, v])
    build.optimizer_update(p, g, state, t, options)
    return p, state[0], state[1]


@BUILDS
@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("t", (1, 10, 16, 10_000))
def test_adam_with_a_tiny_epsilon_is_its_formula_bit_for_bit(build, dtype, t):
    # epsilon = 1e-30 is below where a subnormal v could be hidden by it (float32; float64's bar is 3e-136
    # at t = 1), so subnormal moments must be kept exactly, as IEEE arithmetic leaves them, in any update.
    options = dict(ADAM, epsilon=1e-30 if dtype == np.float32 else 1e-150)
    p, g, m, v = adam_case(dtype)
    got = update(build, p, g, m, v, t, options)
    expected = adam_reference(p, g, m, v, t, options, dtype)
    for name, a, b in zip("pmv", got, expected):
        np.testing.assert_array_equal(a, b, err_msg=name)
    # the case has some to keep
    assert subnormal(got[1]).sum() > 50 and subnormal(got[2]).sum() > 50


@BUILDS
@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("t", (1, 8, 15, 16, 17, 10_000))
def test_adam_stores_subnormal_moments_as_zero_every_16th_update_and_moves_no_parameter_bit(
    build, dtype, t
):
    p, g, m, v = adam_case(dtype)
    got_p, got_m, got_v = update(build, p, g, m, v, t, ADAM)
    ref_p, ref_m, ref_v = adam_reference(p, g, m, v, t, ADAM, dtype)
    assert subnormal(ref_m).sum() > 50 and subnormal(ref_v).sum() > 50  # IEEE arithmetic keeps some
    flush = t % FLUSH_EVERY == 0
    np.testing.assert_array_equal(got_m, np.where(flush & subnormal(ref_m), 0, ref_m))
    np.testing.assert_array_equal(got_v, np.where(flush & subnormal(ref_v), 0, ref_v))
    np.testing.assert_array_equal(got_p, ref_p)


@BUILDS
@pytest.mark.parametrize("t, bar", [(16, 1.155e-10), (10_000, 1.455e-11)])
def test_adam_flushes_from_its_bar_up_where_a_subnormal_v_cannot_move_the_denominator(
    build, t, bar
):
    # For float32 the bar is 16 sqrt(2^-126) c / 2^-23 with c = 1/sqrt(1 - beta_2^t): 1.155e-10 at t = 16,
    # the first update that flushes, 1.455e-11 once c is about 1 (conservative: a quarter ulp of epsilon, halved for the product's rounding).
    # From it up the largest subnormal v's term sqrt(v) c vanishes next to epsilon, and the flushed update
    # keeps every parameter bit of IEEE arithmetic's; below it the moments stay as IEEE arithmetic leaves them.
    f32 = np.float32
    c = f32(1) / f32(math.sqrt(1 - 0.999**t))
    largest_subnormal = np.nextafter(np.finfo(f32).tiny, f32(0))
    p, g, m, v = adam_case(f32)
    for eps in (bar * 1.01, bar * 10, 1e-8, 0.1):
        options = dict(ADAM, epsilon=eps)
        got_p, got_m, got_v = update(build, p, g, m, v, t, options)
        assert np.sqrt(largest_subnormal) * c + f32(eps) == f32(eps)
        assert not subnormal(got_m).any() and not subnormal(got_v).any()
        np.testing.assert_array_equal(got_p, adam_reference(p, g, m, v, t, options, f32)[0])
    for eps in (bar * 0.99, 1e-20):
        _, got_m, got_v = update(build, p, g, m, v, t, dict(ADAM, epsilon=eps))
        assert subnormal(got_m).any() and subnormal(got_v).any()


def test_training_past_a_no_longer_used_input_leaves_no_subnormal_moment():
    # Feature 0 is on in the first fit and off in the next 1,020 steps: the gradient of the encoder's weights
    # from it is then exactly 0, and their m decays by 0.9 a step into the subnormals, where IEEE arithmetic
    # leaves it (0.9 m rounds back to m). At the default epsilon those moments are stored as 0 (the fit's
    # 1,120 updates end with a 16th).
    rng = np.random.default_rng(0)
    X = (rng.random((50, 8)) < 0.5).astype(np.float32)
    for epsilon, subnormals in ((1e-30, True), (1e-8, False)):
        model = AEVB(
            n_components=2, hidden_layer_sizes=(4,), batch_size=10, max_iter=20, epsilon=epsilon,
            random_state=0, warm_start=True,
        ).fit(X)  # fmt: skip
        X_off = X.copy()
        X_off[:, 0] = 0
        model.set_params(max_iter=204, n_iter_no_change=204).fit(X_off)
        assert model.n_iter_ == 224 and model.t_ % FLUSH_EVERY == 0
        assert subnormal(model._optimizer_state).any() == subnormals, epsilon


def other_reference(p, g, s0, options, dtype):
    """One Adagrad or SGD update in dtype, as optimizers.hpp computes it, with no flushing: (p, s0)."""
    lr, eps, mom = (dtype(options[k]) for k in ("learning_rate", "epsilon", "momentum"))
    with np.errstate(under="ignore"):
        if options["solver"] == "adagrad":
            s0 = s0 + g * g
            return p - lr * g / (np.sqrt(s0) + eps), s0
        s0 = mom * s0 - lr * g
        return p + (mom * s0 - lr * g if options["nesterov"] else s0), s0


@BUILDS
@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("solver, nesterov", [("adagrad", True), ("sgd", True), ("sgd", False)])
@pytest.mark.parametrize("t", (7, 16))
def test_adagrad_and_sgd_are_their_formulas_with_subnormal_velocities_stored_as_zero(
    build, dtype, solver, nesterov, t
):
    # Adagrad's sum of squares only grows: it is its formula bit for bit. SGD's velocity decays like Adam's m
    # and is stored as 0 below the smallest normal number in every 16th update, which moves no parameter bit.
    options = dict(ADAM, solver=solver, nesterov=nesterov, learning_rate=0.01)
    p, g, s0, _ = adam_case(dtype)
    if solver == "adagrad":
        s0 = np.abs(s0)
    got_p, got_s0, got_s1 = update(build, p, g, s0, np.zeros_like(s0), t, options)
    ref_p, ref_s0 = other_reference(p, g, s0, options, dtype)
    assert solver == "adagrad" or subnormal(ref_s0).sum() > 50  # IEEE arithmetic keeps some
    flushed = subnormal(ref_s0) & (solver == "sgd" and t % FLUSH_EVERY == 0)
    np.testing.assert_array_equal(got_s0, np.where(flushed, 0, ref_s0))
    np.testing.assert_array_equal(got_s1, 0)
    np.testing.assert_array_equal(got_p, ref_p)


def test_optimizer_update_checks_its_arguments():
    p = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match=r"state must be \(2, len\(params\)\)"):
        core.optimizer_update(p, p.copy(), np.zeros((2, 3), np.float32), 1, ADAM)
    with pytest.raises(ValueError, match="step >= 1"):
        core.optimizer_update(p, p.copy(), np.zeros((2, 4), np.float32), 0, ADAM)
    with pytest.raises(ValueError, match="grad must have dtype float32"):
        core.optimizer_update(p, np.zeros(4), np.zeros((2, 4), np.float32), 1, ADAM)
