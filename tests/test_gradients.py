"""Tests of the C++ core (``aevb._core``) against the plain-numpy reference in ``reference.py``.

Covers the fused SGVB step (bound and gradient, all objectives, likelihoods, activations and
depths, float64 and float32), the KL weight ``beta``, the Philox4x32-10 generator (Random123
known answers), ``score`` (row independence, determinism, importance weighting, the exact
log-likelihood of a linear Gaussian model) and ``encode`` / ``decode`` / ``generate``.
"""

import itertools
import math
import zlib

import numpy as np
import pytest
from scipy.special import expit

import reference as ref
from aevb import _core
from aevb._native import core

LIKELIHOODS = ("bernoulli", "gaussian")
ACTIVATIONS = ("tanh", "relu", "softplus", "sigmoid")
HIDDEN = ((), (5,), (5, 3))
OBJECTIVES = ("analytic", "sampled", "importance")
N_FEATURES, N_COMPONENTS, N_ROWS = 4, 2, 3

GRADIENT_RTOL = 1e-5  # per block, see block_errors
BOUND_RTOL_64 = 1e-10  # core float64 vs reference, per row
BOUND_RTOL_32 = 1e-4  # core float32 vs reference float64, per row
TINY = 1e-300


def rng_for(*key):
    """A generator seeded by the test case, so each case is reproducible in isolation."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def make_params(layout, rng, scale=0.1, dtype=np.float64):
    """Glorot-initialized parameters plus N(0, scale^2) noise (so biases are not zero)."""
    params = np.zeros(layout.n_params)
    _core.init_params(layout, int(rng.integers(2**32)), params)
    return (params + scale * rng.standard_normal(layout.n_params)).astype(dtype)


def make_data(data, rng, n=N_ROWS, d=N_FEATURES):
    """``'unit'``: X ~ U[0, 1]; ``'binary'``: X in {0, 1}."""
    X = rng.random((n, d))
    return (X < 0.5).astype(np.float64) if data == "binary" else X


def core_step(layout, params, X, eps, objective, n_samples, beta=1.0):
    """``(total, per-row bounds, gradient)`` from the core; the gradient buffer starts as NaN."""
    grad = np.full(layout.n_params, np.nan, dtype=params.dtype)
    total, rows = _core.elbo_step(layout, params, X, eps, objective, n_samples, beta, grad)
    return total, rows, grad


def block_errors(layout, num, ana):
    """Relative error per parameter block: ``max|num - ana| / scale``.

    ``scale = max(max|num_block|, 1e-3 max|num|)``: the block's own size, floored at 1e-3 of the
    whole gradient's so that a block whose true gradient is exactly zero (e.g. behind dead ReLU
    units) is judged against the finite-difference rounding noise (~1e-11) in absolute terms,
    1e-8 of the gradient's scale, instead of against itself.
    """
    floor = max(1e-3 * np.max(np.abs(num)), TINY)
    return {
        name: np.max(np.abs(num[s] - ana[s])) / max(np.max(np.abs(num[s])), floor)
        for name, s in ref.blocks(layout).items()
    }


def failing_blocks(layout, num, ana, rtol):
    """Blocks whose relative error exceeds ``rtol`` (NaN counts as a failure)."""
    return {k: e for k, e in block_errors(layout, num, ana).items() if not e <= rtol}


def fd_step(activation):
    """Finite-difference step: ReLU is piecewise linear, so use a step small enough not to
    cross a kink (the O(h^4) stencil is exact on linear pieces; rounding error stays ~1e-9)."""
    return 1e-6 if activation == "relu" else 1e-4


# ---------------------------------------------------------------------------------------------
# The SGVB step: gradient and bound
# ---------------------------------------------------------------------------------------------

CASES = [
    (lik, data, act, hidden, obj, L)
    for lik, data in (("bernoulli", "unit"), ("bernoulli", "binary"), ("gaussian", "unit"))
    for act, hidden, obj, L in itertools.product(ACTIVATIONS, HIDDEN, OBJECTIVES, (1, 3))
]


def make_case(lik, data, act, hidden, obj, L):
    rng = rng_for(lik, data, act, hidden, obj, L)
    layout = _core.Layout(N_FEATURES, N_COMPONENTS, list(hidden), act, lik)
    params = make_params(layout, rng)
    X = make_data(data, rng)
    eps = rng.standard_normal((N_ROWS * L, N_COMPONENTS))
    return layout, params, X, eps


@pytest.mark.parametrize("lik,data,act,hidden,obj,L", CASES)
def test_gradient(lik, data, act, hidden, obj, L):
    """The core's gradient of -(1/n) sum_i objective_i matches central differences, per block,
    of both the core's own bound and the independent numpy reference."""
    layout, params, X, eps = make_case(lik, data, act, hidden, obj, L)
    total, rows, grad = core_step(layout, params, X, eps, obj, L)
    assert np.all(np.isfinite(grad)), "the core left some gradient entries unwritten"
    assert total == pytest.approx(rows.sum(), rel=1e-14, abs=1e-14)
    h = fd_step(act)

    def core_loss(p):
        return -_core.elbo_step(layout, p, X, eps, obj, L, 1.0, None)[0] / N_ROWS

    bad = failing_blocks(layout, ref.numerical_gradient(core_loss, params, h), grad, GRADIENT_RTOL)
    assert not bad, f"gradient vs finite differences of the core's bound: {bad}"
    num = ref.gradient(layout, act, lik, params, X, eps, obj, h=h)
    bad = failing_blocks(layout, num, grad, GRADIENT_RTOL)
    assert not bad, f"gradient vs finite differences of the reference bound: {bad}"


@pytest.mark.parametrize("lik,data,act,hidden,obj,L", CASES)
def test_bound_matches_reference(lik, data, act, hidden, obj, L):
    """Per-row bounds: float64 core to 1e-10 and float32 core to 1e-4 of the float64 reference;
    the float32 gradient to 1e-4 (per block) of the float64 gradient."""
    layout, params, X, eps = make_case(lik, data, act, hidden, obj, L)
    expected = ref.bound(layout, act, lik, params, X, eps, obj)
    _, rows, _ = core_step(layout, params, X, eps, obj, L)
    np.testing.assert_allclose(rows, expected, rtol=BOUND_RTOL_64, atol=0)

    p32, X32, eps32 = (a.astype(np.float32) for a in (params, X, eps))
    expected32 = ref.bound(layout, act, lik, p32, X32, eps32, obj)  # same (rounded) inputs
    total32, rows32, grad32 = core_step(layout, p32, X32, eps32, obj, L)
    assert rows32.dtype == np.float64 and grad32.dtype == np.float32
    np.testing.assert_allclose(rows32, expected32, rtol=BOUND_RTOL_32, atol=0)
    assert total32 == pytest.approx(rows32.sum(), rel=1e-6)
    _, _, grad64 = core_step(layout, *(a.astype(np.float64) for a in (p32, X32, eps32)), obj, L)
    bad = failing_blocks(layout, grad64, grad32.astype(np.float64), BOUND_RTOL_32)
    assert not bad, f"float32 gradient vs float64 gradient: {bad}"


def test_gradient_check_can_fail():
    """The block check detects a 1e-4 relative error in one block, and a NaN, and names them."""
    layout, params, X, eps = make_case("gaussian", "unit", "tanh", (5,), "importance", 3)
    _, _, grad = core_step(layout, params, X, eps, "importance", 3)
    num = ref.gradient(layout, "tanh", "gaussian", params, X, eps, "importance")
    assert not failing_blocks(layout, num, grad, GRADIENT_RTOL)
    blocks = ref.blocks(layout)
    for name in blocks:
        wrong = grad.copy()
        wrong[blocks[name]] *= 1.0 + 10 * GRADIENT_RTOL
        assert set(failing_blocks(layout, num, wrong, GRADIENT_RTOL)) == {name}
        wrong = grad.copy()
        wrong[blocks[name].start] = np.nan
        assert set(failing_blocks(layout, num, wrong, GRADIENT_RTOL)) == {name}


@pytest.mark.parametrize("lik", LIKELIHOODS)
@pytest.mark.parametrize("hidden", ((), (5,)))
@pytest.mark.parametrize("obj", OBJECTIVES)
@pytest.mark.parametrize("beta", (0.3, 2.0))
def test_beta(lik, hidden, obj, beta):
    """With KL weight beta the gradient is that of the beta-weighted objective
    (analytic: -(1/n) sum [E log p(x|z) - beta KL]; sampled/importance: log w_l with
    beta (log p(z_l) - log q(z_l|x)), as documented in elbo.hpp), while the reported bound
    stays the beta = 1 bound."""
    L = 3
    layout, params, X, eps = make_case(lik, "unit", "tanh", hidden, obj, L)
    _, rows, grad = core_step(layout, params, X, eps, obj, L, beta)
    np.testing.assert_allclose(
        rows, ref.bound(layout, "tanh", lik, params, X, eps, obj), rtol=BOUND_RTOL_64, atol=0
    )
    num = ref.gradient(layout, "tanh", lik, params, X, eps, obj, beta)
    num_beta1 = ref.gradient(layout, "tanh", lik, params, X, eps, obj, 1.0)
    assert failing_blocks(layout, num_beta1, num, GRADIENT_RTOL), "beta should change the gradient"
    bad = failing_blocks(layout, num, grad, GRADIENT_RTOL)
    assert not bad, f"gradient with beta={beta} vs finite differences: {bad}"


@pytest.mark.parametrize("lik", LIKELIHOODS)
@pytest.mark.parametrize("obj", OBJECTIVES)
def test_clamped_log_variance(lik, obj):
    """Log-variances far outside the range are clamped to it: the bound uses the clamped value,
    and the clamped head's gradient is only the penalty's, (raw - clamped) averaged over the
    datapoints (encoder) or samples (Gaussian decoder), pulling it back into range. Finite
    differences of the loss with the penalty agree."""
    layout, params, X, eps = make_case(lik, "unit", "tanh", (5,), obj, 3)
    lo, hi = _core.log_variance_range
    assert (lo, hi) == ref.LOG_VARIANCE_RANGE == (-15.0, 15.0)
    J, D = N_COMPONENTS, N_FEATURES
    *_, b_enc = layout.encoder[-1]
    params[b_enc + J] = -40.0  # first latent: log sigma^2 -> clamped to -15
    *_, b_dec = layout.decoder[-1]
    if lik == "gaussian":
        params[b_dec + D] = 40.0  # first feature: log variance -> clamped to +15
    enc = _core.encode(layout, params, X, 1)[0]
    assert np.all(enc[:, J] == lo)
    _, rows, grad = core_step(layout, params, X, eps, obj, 3)
    np.testing.assert_allclose(
        rows, ref.bound(layout, "tanh", lik, params, X, eps, obj), rtol=BOUND_RTOL_64, atol=0
    )
    raw = ref.mlp(layout.encoder, params, "tanh", X)[:, J]  # about -40
    # the penalty's pull, alone: (raw - clamped) averaged over the datapoints
    assert grad[b_enc + J] == pytest.approx(np.mean(raw - lo), rel=1e-12)
    if lik == "gaussian":
        assert grad[b_dec + D] > 20.0  # about 40 - 15: a descent step lowers it towards the range
    num = ref.gradient(layout, "tanh", lik, params, X, eps, obj)
    bad = failing_blocks(layout, num, grad, GRADIENT_RTOL)
    assert not bad, f"gradient with clamped log-variances: {bad}"


# ---------------------------------------------------------------------------------------------
# Philox4x32-10 (Salmon et al. 2011), known answers from Random123's kat_vectors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "counter,key,expected",
    [
        ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
        ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
        (
            [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
            [0xA4093822, 0x299F31D0],
            [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
        ),
    ],
)
def test_philox_known_answers(counter, key, expected):
    assert list(_core.philox4x32_10(counter, key)) == expected


# ---------------------------------------------------------------------------------------------
# score: per-row log-likelihood bounds
# ---------------------------------------------------------------------------------------------


def small_model(dtype=np.float64, lik="bernoulli", n=40, d=6, seed=0):
    """A random one-hidden-layer model and data for the scoring tests."""
    rng = rng_for("score", lik, n, d, seed)
    layout = _core.Layout(d, 2, [4], "tanh", lik)
    params = make_params(layout, rng, scale=0.3, dtype=dtype)
    X = make_data("binary" if lik == "bernoulli" else "unit", rng, n=n, d=d).astype(dtype)
    return layout, params, X


@pytest.mark.parametrize("dtype", (np.float64, np.float32))
@pytest.mark.parametrize("K", (1, 7, 300))
def test_score_deterministic_and_seeded(dtype, K):
    """Same seed: identical scores (also across thread counts); another seed: other scores."""
    layout, params, X = small_model(dtype)
    s = _core.score(layout, params, X, K, 5, 1)
    assert s.dtype == np.float64 and s.shape == (X.shape[0],) and np.all(np.isfinite(s))
    np.testing.assert_array_equal(s, _core.score(layout, params, X, K, 5, 1))
    np.testing.assert_array_equal(s, _core.score(layout, params, X, K, 5, 1))
    np.testing.assert_array_equal(s, _core.score(layout, params, X, K, 5, 2))
    assert np.all(s != _core.score(layout, params, X, K, 6, 1))


def _row_scores(layout, params, X, K, seed, n_threads=1):
    """(whole call, one call per row, permuted call mapped back to the original order); the whole
    and permuted calls on n_threads threads, the single rows on one."""
    whole = _core.score(layout, params, X, K, seed, n_threads)
    alone = np.array([_core.score(layout, params, X[[i]], K, seed, 1)[0] for i in range(len(X))])
    perm = rng_for("perm", len(X)).permutation(len(X))
    permuted = np.empty_like(whole)
    permuted[perm] = _core.score(layout, params, X[perm], K, seed, n_threads)
    return whole, alone, permuted


ROW_KS = (1, 2, 3, 6, 7, 100)  # odd K, and K not a multiple of 4, included on purpose


@pytest.mark.parametrize("dtype", (np.float64, np.float32))
@pytest.mark.parametrize("K", ROW_KS)
def test_score_rows_independent(dtype, K):
    """A row's score does not depend on the other rows in the call: its noise is keyed by the
    seed and the row's values. Agreement to rounding (64 ulp); a different noise draw would
    move a score by ~1e-4 nats or more (see test_score_deterministic_and_seeded)."""
    layout, params, X = small_model(dtype, n=120)
    whole, alone, permuted = _row_scores(layout, params, X, K, 11)
    rtol = 64 * np.finfo(dtype).eps
    np.testing.assert_allclose(alone, whole, rtol=rtol, atol=0)
    np.testing.assert_allclose(permuted, whole, rtol=rtol, atol=0)


@pytest.mark.parametrize("dtype", (np.float64, np.float32))
@pytest.mark.parametrize("K", ROW_KS)
@pytest.mark.parametrize("n_threads", (1, 2))
def test_score_rows_bitwise_independent(dtype, K, n_threads):
    """score(X)[i] == score(X[[i]])[0] exactly, and likewise under a row permutation and with two
    threads (a row's arithmetic does not depend on the width of the block it lands in or its place
    there; see kBlockColumns in inference.hpp)."""
    layout, params, X = small_model(dtype, n=120)
    whole, alone, permuted = _row_scores(layout, params, X, K, 11, n_threads)
    np.testing.assert_array_equal(alone, whole)
    np.testing.assert_array_equal(permuted, whole)


@pytest.mark.parametrize("K", (1, 100))
def test_score_float32_matches_float64(K):
    """Rows are keyed at float precision, so float32 and float64 scoring of the same (float32
    representable) data and parameters use the same noise and agree to float32 accuracy."""
    layout, params, X = small_model(np.float32, lik="gaussian", n=50)
    s32 = _core.score(layout, params, X, K, 4, 1)
    s64 = _core.score(layout, params.astype(np.float64), X.astype(np.float64), K, 4, 1)
    np.testing.assert_allclose(s32, s64, rtol=1e-4)
    assert np.all(
        s64 != _core.score(layout, params.astype(np.float64), X.astype(np.float64), K, 5, 1)
    )


def test_score_expectation_matches_reference():
    """Over seeds, the mean of score(x, K=1) is the ELBO E[analytic bound] and the mean of
    score(x, K=5) is E[log (1/5) sum_k w_k], both estimated independently with the reference.
    Tolerance: 5 standard errors of the difference of the two Monte Carlo means."""
    layout, params, X = small_model(n=1, d=6, seed=3)
    rng = rng_for("expectation")
    n_seeds, n_ref = 1500, 100_000
    for K, objective in ((1, "analytic"), (5, "importance")):
        core = np.array([_core.score(layout, params, X, K, seed, 1)[0] for seed in range(n_seeds)])
        eps = rng.standard_normal((n_ref * K, layout.n_components))
        reference = ref.bound(
            layout, "tanh", "bernoulli", params, np.repeat(X, n_ref, 0), eps, objective
        )
        se = np.sqrt(core.var() / n_seeds + reference.var() / n_ref)
        assert abs(core.mean() - reference.mean()) < 5 * se, (K, core.mean(), reference.mean(), se)
        if K == 1:
            elbo, elbo_se = reference.mean(), se
    # The two expectations are far apart, so the check above tells K=1 and K=5 apart.
    assert reference.mean() - elbo > 10 * max(se, elbo_se)


def test_importance_bound_increases_with_k():
    """The IW bound tightens with K: mean over rows of K=10 < K=100 < K=1000. K's draws are a
    prefix of the larger K's draws (same row stream), so differences are paired; each mean
    difference must exceed 5 of its standard errors."""
    layout, params, X = small_model(n=300, d=8, seed=1)
    s = {K: _core.score(layout, params, X, K, 0, 1) for K in (10, 100, 1000)}
    for small, large in ((10, 100), (100, 1000)):
        d = s[large] - s[small]
        assert d.mean() > 5 * d.std(ddof=1) / np.sqrt(d.size), (small, large, d.mean(), d.std())


# ---------------------------------------------------------------------------------------------
# score on a linear Gaussian model: exact log p(x)
# ---------------------------------------------------------------------------------------------


def linear_gaussian(dtype=np.float64, mean_scale=1.0, var_scale=1.0, n=20, seed=0):
    """A linear Gaussian model (no hidden layer) whose log p(x) and posterior are exact.

    Decoder: x = z A + b + sqrt(v) * noise, z ~ N(0, I), so x ~ N(b, A^T A + diag v).
    With A = diag(s) U^T diag(sqrt v) (U: D x J, orthonormal columns), A diag(1/v) A^T = diag(s^2),
    so the posterior p(z|x) = N((x - b) diag(1/v) A^T S, S) has the DIAGONAL covariance
    S = diag(1 / (1 + s^2)), which the encoder represents exactly (mean linear in x, log-variance
    from the bias). The encoder is set to q = N(mean_scale * posterior mean, var_scale * S).

    Returns
    -------
    layout, params, X, info : dict with exact ``logp`` (n,), posterior ``mean_p`` (n, J),
        ``var_p`` (J,), and q's ``mean_q`` (n, J), ``var_q`` (J,).
    """
    D, J = 5, 2
    rng = rng_for("linear", seed)
    layout = _core.Layout(D, J, [], "tanh", "gaussian")
    s = np.array([1.5, 0.8])
    v = np.exp(rng.uniform(-1.0, 0.5, D))
    U = np.linalg.qr(rng.standard_normal((D, J)))[0]
    A = s[:, None] * U.T * np.sqrt(v)  # (J, D)
    b = rng.standard_normal(D)
    var_p = 1.0 / (1.0 + s**2)
    Wp = (A / v).T * var_p  # (D, J): posterior mean = (x - b) @ Wp

    params = np.zeros(layout.n_params)
    ((n_in, n_out, w, bb),) = layout.decoder
    W = np.zeros((J, 2 * D))
    W[:, :D] = A  # the log-variance head's weights stay zero: constant variance v
    params[w : w + n_in * n_out] = W.ravel()
    params[bb : bb + D], params[bb + D : bb + 2 * D] = b, np.log(v)
    ((n_in, n_out, w, bb),) = layout.encoder
    W = np.zeros((D, 2 * J))
    W[:, :J] = mean_scale * Wp
    params[w : w + n_in * n_out] = W.ravel()
    params[bb : bb + J] = -mean_scale * (b @ Wp)
    params[bb + J : bb + 2 * J] = np.log(var_scale * var_p)

    X = rng.standard_normal((n, J)) @ A + b + np.sqrt(v) * rng.standard_normal((n, D))
    # Exact log N(x; b, C), C = A^T A + diag v = R R^T (Cholesky): -1/2 (D log 2 pi
    # + log det C + |R^-1 (x - b)|^2), log det C = 2 sum log diag R.
    R = np.linalg.cholesky(A.T @ A + np.diag(v))
    r = np.linalg.solve(R, (X - b).T)
    logp = -0.5 * (D * ref.LOG_2PI + 2 * np.log(np.diag(R)).sum() + (r**2).sum(axis=0))
    mean_p = (X - b) @ Wp
    info = {
        "logp": logp,
        "mean_p": mean_p,
        "var_p": var_p,
        "mean_q": mean_scale * mean_p,
        "var_q": var_scale * var_p,
    }
    return layout, params.astype(dtype), X.astype(dtype), info


def test_linear_gaussian_construction():
    """The construction above, checked with the reference: q is the exact posterior, so
    estimator A's log w = log p(x, z) - log q(z|x) equals log p(x) for any z."""
    layout, params, X, info = linear_gaussian()
    mu, logvar = ref.encode(layout, "tanh", params, X)
    np.testing.assert_allclose(mu, info["mean_p"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.exp(logvar), np.tile(info["var_p"], (len(X), 1)), rtol=1e-12)
    eps = rng_for("construction").standard_normal((len(X), 2))
    log_w = ref.bound(layout, "tanh", "gaussian", params, X, eps, "sampled")
    np.testing.assert_allclose(log_w, info["logp"], rtol=1e-12)


@pytest.mark.parametrize("dtype,rtol", ((np.float64, 1e-12), (np.float32, 1e-5)))
def test_score_exact_posterior(dtype, rtol):
    """With q = p(z|x) every importance weight equals p(x): the IW bound is exact at any K >= 2
    (to rounding). K = 1 is estimator B (analytic KL), unbiased but not zero-variance."""
    layout, params, X, info = linear_gaussian(dtype, n=200)
    logp = info["logp"]
    for K in (2, 5000):
        np.testing.assert_allclose(_core.score(layout, params, X, K, 0, 1), logp, rtol=rtol)
    resid = _core.score(layout, params, X, 1, 0, 1) - logp
    se = resid.std(ddof=1) / np.sqrt(resid.size)
    assert resid.std() > 0.01  # estimator B: noisy even at the true posterior
    assert abs(resid.mean()) < 5 * se


@pytest.mark.parametrize("dtype", (np.float64, np.float32))
def test_score_loose_posterior(dtype):
    """With q off the posterior (mean scaled by 0.8, variance x 2.5), K = 1 is visibly loose
    (its expectation, the ELBO log p(x) - KL(q || p(z|x)), is in closed form here), and
    K = 5000 closes the gap to within 0.05 nats on average over 20 rows.

    Per row, by the delta method the K-sample IW estimate has standard deviation
    sqrt(chi2 / K) and bias -chi2 / (2K), where chi2 = E_q[(p(z|x)/q(z|x))^2] - 1 is closed form
    for diagonal Gaussians (var_q > var_p / 2):
    prod_j c / sqrt(a (2c - a)) exp((m_p - m_q)^2 / (2c - a)) - 1, a = var_p, c = var_q.
    Each row must lie within 5 standard deviations plus the bias.
    """
    layout, params, X, info = linear_gaussian(dtype, mean_scale=0.8, var_scale=2.5, n=200)
    logp, a, c = info["logp"], info["var_p"], info["var_q"]
    dm2 = (info["mean_p"] - info["mean_q"]) ** 2
    kl = 0.5 * np.sum(c / a + dm2 / a - 1.0 - np.log(c / a), axis=1)  # KL(q || p(z|x))
    elbo = logp - kl
    assert kl.mean() > 0.5  # the bound is visibly loose at K = 1 ...

    s1 = _core.score(layout, params, X, 1, 0, 1)
    resid = s1 - elbo  # ... and K = 1 estimates the ELBO (unbiased)
    assert abs(resid.mean()) < 5 * resid.std(ddof=1) / np.sqrt(resid.size)
    assert np.mean(logp - s1) > 0.4

    K, rows = 5000, slice(0, 20)
    chi2 = np.prod(c / np.sqrt(a * (2 * c - a)) * np.exp(dm2 / (2 * c - a)), axis=1) - 1.0
    sd, bias = np.sqrt(chi2 / K), chi2 / (2 * K)
    sK = _core.score(layout, params, X[rows], K, 0, 1)
    err = sK - logp[rows]
    assert abs(err.mean()) < 0.05
    assert np.all(np.abs(err) < 5 * sd[rows] + bias[rows]), (err, sd[rows])


# ---------------------------------------------------------------------------------------------
# encode, decode, generate
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype,rtol", ((np.float64, 1e-12), (np.float32, 1e-5)))
@pytest.mark.parametrize("lik", LIKELIHOODS)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_encode_decode_match_reference(dtype, rtol, lik, act):
    """encode = [mu, clamped logvar]; decode = sigmoid(logits) (Bernoulli) or the mean."""
    rng = rng_for("codec", lik, act)
    layout = _core.Layout(N_FEATURES, N_COMPONENTS, [5, 3], act, lik)
    params = make_params(layout, rng, scale=0.3, dtype=dtype)
    X = make_data("unit", rng, n=7).astype(dtype)
    enc = _core.encode(layout, params, X, 1)[0]
    assert enc.shape == (7, 2 * N_COMPONENTS) and enc.dtype == dtype
    mu, logvar = ref.encode(layout, act, params, X)
    np.testing.assert_allclose(enc, np.hstack([mu, logvar]), rtol=rtol, atol=rtol)

    Z = rng.standard_normal((9, N_COMPONENTS)).astype(dtype)
    dec = _core.decode(layout, params, Z, False, 0, 1)
    assert dec.shape == (9, N_FEATURES) and dec.dtype == dtype
    out = ref.mlp(layout.decoder, params.astype(np.float64), act, Z.astype(np.float64))
    if lik == "bernoulli":
        assert np.all((dec > 0) & (dec < 1))
        expected = 1.0 / (1.0 + np.exp(-out))
    else:
        expected = out[:, :N_FEATURES]
    np.testing.assert_allclose(dec, expected, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", (np.float64, np.float32))
def test_decode_draws_bernoulli(dtype):
    """decode(draw=True): 0/1 values, reproducible per seed, with frequencies sigmoid(logits)
    (each feature's frequency within 5 binomial standard errors)."""
    rng = rng_for("draw-bernoulli")
    layout = _core.Layout(N_FEATURES, N_COMPONENTS, [5], "tanh", "bernoulli")
    params = make_params(layout, rng, scale=0.5, dtype=dtype)
    n = 20_000
    Z = np.repeat(rng.standard_normal((1, N_COMPONENTS)), n, axis=0).astype(dtype)
    p = _core.decode(layout, params, Z[:1], False, 0, 1)[0].astype(np.float64)
    x = _core.decode(layout, params, Z, True, 3, 1)
    assert x.shape == (n, N_FEATURES) and x.dtype == dtype
    assert set(np.unique(x)) <= {0.0, 1.0}
    np.testing.assert_array_equal(x, _core.decode(layout, params, Z, True, 3, 1))
    assert np.any(x != _core.decode(layout, params, Z, True, 4, 1))
    assert np.all(np.abs(x.mean(axis=0) - p) < 5 * np.sqrt(p * (1 - p) / n))


@pytest.mark.parametrize("dtype", (np.float64, np.float32))
def test_generate(dtype):
    """generate: shapes, 0/1 draws (Bernoulli) or means in (0, 1) without draws, seeds."""
    rng = rng_for("generate")
    layout = _core.Layout(N_FEATURES, N_COMPONENTS, [5], "tanh", "bernoulli")
    params = make_params(layout, rng, dtype=dtype)
    x = _core.generate(layout, params, 50, 1, True, 1)
    assert x.shape == (50, N_FEATURES) and x.dtype == dtype
    assert set(np.unique(x)) == {0.0, 1.0}
    np.testing.assert_array_equal(x, _core.generate(layout, params, 50, 1, True, 1))
    np.testing.assert_array_equal(x, _core.generate(layout, params, 50, 1, True, 2))
    assert np.any(x != _core.generate(layout, params, 50, 2, True, 1))
    means = _core.generate(layout, params, 50, 1, False, 1)
    assert np.all((means > 0) & (means < 1)) and len(np.unique(means)) > 50
    np.testing.assert_array_equal(means, _core.generate(layout, params, 50, 1, False, 1))
    assert _core.generate(layout, params, 0, 1, True, 1).shape == (0, N_FEATURES)


@pytest.mark.parametrize("dtype", (np.float64, np.float32))
@pytest.mark.parametrize("draw", (False, True))
def test_generate_linear_gaussian_moments(dtype, draw):
    """On the linear Gaussian model, generate gives x with mean b and covariance A^T A
    (means of p(x|z), z ~ N(0, I)) or A^T A + diag v (draws). Each mean and covariance entry
    is within 5 standard errors: var(mean_d) = C_dd / n, var(C^_de) ~ (C_dd C_ee + C_de^2) / n."""
    layout, params, _, _ = linear_gaussian(dtype)
    ((_, _, w, bb),) = layout.decoder
    D = layout.n_features
    p64 = params.astype(np.float64)
    A = p64[w : w + 2 * D * layout.n_components].reshape(layout.n_components, 2 * D)[:, :D]
    b, v = p64[bb : bb + D], np.exp(p64[bb + D : bb + 2 * D])
    C = A.T @ A + (np.diag(v) if draw else 0.0)
    n = 20_000
    x = _core.generate(layout, params, n, 7, draw, 1).astype(np.float64)
    assert x.shape == (n, D)
    assert np.all(np.abs(x.mean(axis=0) - b) < 5 * np.sqrt(np.diag(C) / n))
    se = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / n)
    assert np.all(np.abs(np.cov(x, rowvar=False) - C) < 5 * se)


def fixed_logit_model(module, dtype, logits, rng):
    """A Bernoulli model whose decoder ignores z and outputs the logits b (as the dtype holds them), with
    three rows x = [b > 0], [b < 0] and coin flips, and their noise: (layout, params, b, X, eps)."""
    layout = module.Layout(len(logits), 1, [1], "tanh", "bernoulli")
    params = np.zeros(layout.n_params, dtype)
    _, n_out, _, bias_offset = layout.decoder[-1]
    params[bias_offset : bias_offset + n_out] = logits
    b = params[bias_offset : bias_offset + n_out].astype(np.float64)
    X = np.stack([b > 0, b < 0, rng.random(len(logits)) < 0.5]).astype(dtype)
    return layout, params, b, X, rng.standard_normal((3, 1)).astype(dtype)


@pytest.mark.parametrize("module", [_core, core], ids=["baseline", "best"])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-14), (np.float32, 1e-6)])
@pytest.mark.parametrize("logit_range", ["wide", "large"])
def test_bernoulli_log_likelihood_is_accurate_for_any_logits(module, dtype, rtol, logit_range):
    # A model whose decoder ignores z and outputs fixed logits b, and whose posterior is the prior: the
    # bound is exactly log p(x) = sum_i x_i b_i - softplus(b_i). With x_i = [b_i > 0] each term is
    # -log1p(e^-|b_i|); with every |b_i| in [5, 60] ('large') that row's sum is a sum of terms from 7e-3
    # down to 1e-26, accurate only if each one is. 1,125 features cover the vector loop (its product of
    # 1 + e^-|b| restarts every 64 vectors) and a scalar tail in every build.
    rng = rng_for("extreme logits", dtype, logit_range)
    n_features = 16 * 70 + 5
    if logit_range == "wide":
        parts = [rng.uniform(-90, 90, 600), rng.uniform(-1e-3, 1e-3, 300), rng.standard_normal(225)]
        logits = np.concatenate(parts)
    else:
        logits = rng.uniform(5, 60, n_features) * rng.choice([-1.0, 1.0], n_features)
    rng.shuffle(logits)
    layout, params, b, X, eps = fixed_logit_model(module, dtype, logits, rng)
    _, rows = module.elbo_step(layout, params, X, eps, "analytic", 1)
    # x b - softplus(b) = (x b - max(b, 0)) - log1p(e^-|b|), summed exactly: np.logaddexp would cancel.
    terms = X.astype(np.float64) * b - np.maximum(b, 0.0) - np.log1p(np.exp(-np.abs(b)))
    exact = [math.fsum(row) for row in terms]
    np.testing.assert_allclose(rows, exact, rtol=rtol)


@pytest.mark.parametrize("module", [_core, core], ids=["baseline", "best"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("tail_order", [1, -1])
def test_bernoulli_loss_gradient_is_accurate_for_any_logits_in_both_passes(
    module, dtype, n_threads, tail_order
):
    # The model above (fixed logits b): the decoder's output bias gradient is (1/M) sum_c sigmoid(b) - x_c.
    # The ELBO writes it in the likelihood's pass, the IWAE in a pass of its own once the weights are known;
    # with L = 1 both weigh each sample 1/M, so the two must agree bit for bit. With x = 0 it is sigmoid(b),
    # checked to a few ulps of itself wherever that is a normal number; with x = [b > 0] it cancels to a few
    # ulps of 1. 1,125 features run the vector loop and a scalar tail of 1 to 5 in every build, and the
    # logits end in +-90, +-17, +-1e-3 and 0, in either order, so that the tail meets both branches.
    rng = rng_for("extreme logits gradient", dtype)
    body = [rng.uniform(-90, 90, 600), rng.uniform(-1e-3, 1e-3, 300), rng.standard_normal(210)]
    tail = np.array([60, -60, 30, -30, 5, -5, 1, -1, 0, 1e-3, -1e-3, 17, -17, 90, -90])[
        ::tail_order
    ]
    layout, params, b, X, eps = fixed_logit_model(module, dtype, np.concatenate([*body, tail]), rng)
    _, n_out, _, bias_offset = layout.decoder[-1]

    def bias_gradient(params, rows, objective):
        grad = np.zeros_like(params)
        module.elbo_step(layout, params, rows, eps, objective, 1, 1.0, grad, n_threads=n_threads)
        return grad[bias_offset : bias_offset + n_out]

    tol = 4 * np.finfo(dtype).eps
    for rows in (np.zeros_like(X), X):
        db = bias_gradient(params, rows, "analytic")
        np.testing.assert_array_equal(db, bias_gradient(params, rows, "importance"))
        # scipy's sigmoid, an independent reference for the kernel's select form
        exact = (expit(b) - rows.astype(np.float64)).mean(axis=0)
        normal = np.abs(exact) >= np.finfo(dtype).tiny
        atol = tol if rows.any() else 0.0  # sigmoid(b) - 1 cancels; sigmoid(b) alone must not
        np.testing.assert_allclose(db[normal], exact[normal], rtol=tol, atol=atol)
    # A NaN logit, in the vector loop and in the tail, gives a NaN gradient there and nowhere else.
    params[bias_offset + np.array([7, n_out - 1])] = np.nan
    nan = np.isnan(bias_gradient(params, X, "analytic"))
    assert np.flatnonzero(nan).tolist() == [7, n_out - 1]


def test_normal_draws_are_box_muller_on_philox_pairs():
    # Draws 2p and 2p + 1 are r cos(2 pi u2) and r sin(2 pi u2), r = sqrt(-2 log u1), from the two
    # 64-bit uniforms in (0, 1] of Philox block {p, stream}; a fill from any offset gives the same draws.
    # The core computes log, cos and sin itself (box_muller.hpp); against libm the draws agree to a few
    # units in the last place of r (this reference rounds the angle 2 pi u2 first, so near a zero of cos
    # or sin only the error relative to r is small). The second stream and offset set the counters' high
    # words, as the sleep phase's streams (1 << 62) do.
    key = 0x0123456789ABCDEF

    def uniform(hi, lo):
        return float((((int(hi) << 32) | int(lo)) >> 11) + 1) * 2.0**-53

    for stream, first_pair, n_pairs in [(7, 0, 4000), (7 | 1 << 62, 3 << 32, 500)]:
        expected, radii = [], []
        for pair in range(first_pair, first_pair + n_pairs):
            counter = [pair & 0xFFFFFFFF, pair >> 32, stream & 0xFFFFFFFF, stream >> 32]
            bits = _core.philox4x32_10(counter, [key & 0xFFFFFFFF, key >> 32])
            radius = math.sqrt(-2.0 * math.log(uniform(bits[0], bits[1])))
            angle = 2.0 * math.pi * uniform(bits[2], bits[3])
            expected += [radius * math.cos(angle), radius * math.sin(angle)]
            radii += [radius, radius]
        draws = _core.normal_draws(key, stream, 2 * first_pair, 2 * n_pairs, 1).ravel()
        error = np.abs(draws - np.array(expected))
        assert np.all(error <= 2e-15 * np.array(radii)), np.max(error / np.array(radii))
    whole = _core.normal_draws(key, 7, 0, 1, 40).ravel()
    for first, rows, cols in [(5, 3, 7), (4, 3, 7), (1, 1, 1), (2, 5, 2), (3, 2, 3)]:
        part = _core.normal_draws(key, 7, first, rows, cols)
        assert part.shape == (cols, rows)
        np.testing.assert_array_equal(part.ravel(), whole[first : first + rows * cols])


# ---------------------------------------------------------------- the trainer's finiteness guard


def adam_epoch_options(batch_size, n_threads):
    """core.train_epoch's options: one epoch of the ELBO with Adam over the rows in order, no prior."""
    return {
        "algorithm": "aevb", "objective": "analytic", "n_samples": 1, "beta": 1.0, "solver": "adam",
        "learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8, "momentum": 0.9,
        "nesterov": True, "batch_size": batch_size, "alpha": 0.0, "n_total": float(batch_size),
        "shuffle": False, "seed": 0, "n_threads": n_threads,
    }  # fmt: skip


def check_guarded_epoch(layout, params, X, n_threads, status):
    """One epoch of ``X`` as a single minibatch must end with ``status``: "non_finite" leaves ``params``
    and the optimizer state untouched, and the gradient the step computed (returned) comes with a finite
    bound; "completed" takes one finite step."""
    n = X.shape[0]
    state = np.zeros((2, layout.n_params), params.dtype)
    before = params.copy()
    options = adam_epoch_options(batch_size=n, n_threads=n_threads)
    bound_sum, n_seen, step, got, _ = core.train_epoch(
        layout, params, state, 0, X, np.arange(n), 0, options
    )
    assert got == status
    if status == "completed":
        assert (n_seen, step) == (n, 1) and np.isfinite(bound_sum)
        assert np.all(np.isfinite(params)) and not np.array_equal(params, before)
        return None
    assert (n_seen, step) == (0, 0)
    np.testing.assert_array_equal(params, before)
    np.testing.assert_array_equal(state, 0)
    grad = np.empty_like(params)
    eps = np.zeros((n, layout.n_components), params.dtype)
    total, _ = core.elbo_step(layout, params, X, eps, grad=grad, n_threads=n_threads)
    assert np.isfinite(total)
    return grad


@pytest.mark.parametrize("x_value, status", [(5e15, "non_finite"), (1.0, "completed")])
def test_an_overflowing_weight_gradient_stops_training_before_any_update(x_value, status):
    # The decoder's output layer (64 -> 4, Gaussian) gets a finite gradient G (at most 1e38 here) and finite
    # inputs (relu units held at 1e10), whose product dW overflows: a step may skip reading dW back only
    # when bounds on G and on its inputs certify it finite, so this one must be read, found infinite, and
    # stop the epoch with parameters and optimizer state untouched. With data of 1.0 the same step is
    # finite and trains.
    layout = core.Layout(2, 2, [64], "relu", "gaussian")
    params = np.zeros(layout.n_params, np.float32)
    hidden_bias = layout.decoder[0][3]
    params[hidden_bias : hidden_bias + 64] = 1e10
    output_bias = layout.decoder[1][3]
    params[output_bias + 2 : output_bias + 4] = -14.0  # log-variances: precision e^14
    X = np.full((8, 2), x_value, np.float32)
    grad = check_guarded_epoch(layout, params, X, 1, status)
    if status == "non_finite":
        assert np.isinf(grad).any()


@pytest.mark.parametrize("n_threads", (1, 2))
@pytest.mark.parametrize("x_value, status", [(5e13, "non_finite"), (1.0, "completed")])
def test_an_overflowing_narrow_layer_weight_gradient_stops_training(x_value, status, n_threads):
    # Decoder 2 -> 256 -> 256 -> 128 (Gaussian, 64 features, relu units at about 1 and 3.6). Its first layer
    # has 2 inputs, too few to split dW by columns: each thread writes some rows of every column and reads
    # them back (no certificate). Its inputs, the latents z ~ 1e17 (the mean head's bias), and its output
    # gradient G_0 ~ 2.4e20 (from a loss gradient of 9.4e17 in feature 0's rows, already divided by the 64
    # datapoints, through W_2 = 100 and W_1 = 0.01) are finite, as is the loss (about 7e35), but dW = G_0 z^T,
    # 64 terms of 2.4e37, overflows: the epoch must stop with parameters and optimizer state untouched.
    # With data of 1.0 the step is finite (dW about 3e30) and trains.
    layout = core.Layout(64, 2, [256, 256], "relu", "gaussian")
    assert core.training_threads(layout, 64, 1, n_threads) == n_threads
    mean_head_bias = layout.encoder[-1][3]
    (_, _, first_weight, b0), (_, _, w1, b1), (_, n_out2, w2, b2) = layout.decoder
    params = np.zeros(layout.n_params, np.float32)
    params[mean_head_bias : mean_head_bias + 2] = 1e17  # z = 1e17 + noise; KL about 5e33 per latent
    params[b0 : b0 + 256] = 1.0  # H_0 = 1 (W_0 = 0)
    params[w1:b1] = 0.01  # H_1 = 3.56
    params[b1 : b1 + 256] = 1.0
    params[w2 : w2 + 256 * n_out2 : n_out2] = 100.0  # feature 0's mean row
    params[b2 + 64 : b2 + 128] = -14.0  # log-variances: precision e^14
    X = np.zeros((64, 64), np.float32)
    X[:, 0] = x_value
    grad = check_guarded_epoch(layout, params, X, n_threads, status)
    if status == "non_finite":  # infinite in the first layer's dW only
        assert np.isinf(grad[first_weight:b0]).all()
        assert np.isfinite(np.delete(grad, np.s_[first_weight:b0])).all()


def test_a_team_certifies_a_hidden_layer_only_by_every_thread_s_bound():
    # Decoder 2 -> 256 -> 256 -> 128 (Gaussian, 64 features, relu) shared by two threads. The middle
    # layer's dW = G_1 H_0^T overflows in the first thread's columns: G_1 is large only in the rows the
    # second thread writes (W_2 is nonzero only in those columns) and H_0 is huge only in the inputs whose dW
    # columns the first thread computes. The first thread's own part of G_1 is 0, so only the team's
    # largest bound keeps it from certifying an infinite dW: the epoch must stop before any update.
    layout = core.Layout(64, 2, [256, 256], "relu", "gaussian")
    assert core.training_threads(layout, 64, 1, 2) == 2
    (_, _, _, b0), (_, _, _, b1), (_, n_out2, w2, b2) = layout.decoder
    params = np.zeros(layout.n_params, np.float32)
    params[b0 : b0 + 128] = 1e20  # H_0: huge in the first thread's dW columns of the middle layer
    params[b0 + 128 : b0 + 256] = 1.0
    params[b1 : b1 + 256] = 1.0  # H_1 = 1 (W_1 = 0)
    for j in range(
        128, 256
    ):  # W_2: feature 0's log-variance row, from the second thread's units only
        params[w2 + j * n_out2 + 64] = 1e-10
    params[b2 + 64 : b2 + 128] = -14.0  # log-variances: precision e^14
    X = np.zeros((64, 64), np.float32)
    X[:, 0] = 5e15  # a finite bound, and a loss gradient of about 2e35 in feature 0's rows
    grad = check_guarded_epoch(layout, params, X, 2, "non_finite")
    assert np.isinf(grad).any()


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_magnitude_bound_is_the_largest_magnitude_or_inf(dtype):
    rng = rng_for("magnitude", dtype)
    info = np.finfo(dtype)
    # magnitudes from subnormal to near the largest, both signs, and signed zeros
    exponents = rng.uniform(np.log10(info.smallest_subnormal) + 1, np.log10(info.max) - 1, 500)
    x = (rng.choice([-1, 1], 500) * 10.0**exponents).astype(dtype)
    x[:3] = [0.0, -0.0, info.smallest_subnormal]
    x = x.reshape(50, 10)
    for first, count in (
        (0, 10),
        (3, 4),
        (9, 1),
        (5, 0),
    ):  # blocks of rows of the (10, 50) column view
        expected = np.abs(x[:, first : first + count]).max() if count else 0.0
        assert core.magnitude_bound(x, first, count) == expected
    assert core.magnitude_bound(np.zeros((0, 3), dtype), 0, 3) == 0.0
    assert core.magnitude_bound(-np.zeros((7, 2), dtype), 0, 2) == 0.0
    assert core.magnitude_bound(np.array([[-info.max]], dtype), 0, 1) == info.max
    int_type = np.int64 if dtype == np.float64 else np.int32
    all_bits_set = np.array([-1], int_type).view(dtype)[0]  # a NaN with its sign set
    for bad in [np.inf, -np.inf, np.nan, -np.nan, all_bits_set]:
        for row, col in ((0, 0), (25, 4), (49, 9)):
            y = x.copy()
            y[row, col] = bad
            assert core.magnitude_bound(y, 0, 10) == np.inf
            assert core.magnitude_bound(y, col, 1) == np.inf
            assert core.magnitude_bound(y, (col + 1) % 10, 1) < np.inf  # a column without it


# The kernel of tile_product.hpp in the baseline build (4 floats a packet, 6-column tiles) and in the best
# one this CPU runs (16 and 12 with AVX-512).
KERNEL_BUILDS = pytest.mark.parametrize("build", (_core, core), ids=("baseline", "best"))


def gamma_bound(terms, magnitudes, dtype):
    """gamma_terms * magnitudes: how far any order of the sums of `terms` products may round (Higham 3.1),
    doubled for float64, whose reference rounds too."""
    u = np.finfo(dtype).eps / 2
    bound = terms * u / (1 - terms * u) * magnitudes
    return 2 * bound if dtype == np.float64 else bound


@KERNEL_BUILDS
@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_weight_gradient_kernel_matches_the_product_and_any_split(build, dtype):
    """dW = G in^T by the step's own kernel: within the rounding bound of an n-term dot product, written only
    inside its block, and bitwise the same for any block of columns (a thread's share) or output stride."""
    rng = rng_for("weight gradient", dtype)
    # rows around the kernel's packets, columns around its tile widths, depths around its blocks of at most
    # 256 (split evenly: 257 as 129 + 128, 600 as 200 x 3)
    for n_out, n_in, n in (
        (1, 1, 1),
        (7, 3, 5),
        (16, 12, 100),
        (17, 13, 100),
        (33, 25, 255),
        (40, 30, 256),
        (47, 12, 257),
        (100, 29, 600),
    ):
        g = rng.standard_normal((n, n_out)).astype(dtype)
        x = rng.standard_normal((n, n_in)).astype(dtype)
        whole = build.weight_gradient(g, x, 0, n_in, 0)
        exact = x.astype(np.float64).T @ g.astype(np.float64)
        magnitudes = np.abs(x).astype(np.float64).T @ np.abs(g).astype(np.float64)
        assert np.all(np.abs(whole - exact) <= gamma_bound(n, magnitudes, dtype)), (n_out, n_in, n)
        for first, count, margin in (
            (0, n_in, 3),
            (n_in // 3, n_in - n_in // 3, 1),
            (n_in - 1, 1, 0),
        ):
            block = build.weight_gradient(g, x, first, count, margin)
            assert np.array_equal(block[:, margin : margin + n_out], whole[first : first + count])
            assert np.all(block[:, :margin] == 7) and np.all(block[:, margin + n_out :] == 7)
    assert np.array_equal(
        build.weight_gradient(np.zeros((0, 4), dtype), np.zeros((0, 3), dtype), 0, 3, 0),
        np.zeros((3, 4)),
    )


@KERNEL_BUILDS
@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_dense_forward_kernel_matches_the_product_and_any_split(build, dtype):
    """out = W in + b by the step's own kernel, on strided blocks of W, in and out: within the rounding bound
    of an (n_in + 1)-term sum, written only inside its block, and bitwise the same for any share of the
    outputs (rows of W) or of the datapoints (columns of in)."""
    rng = rng_for("dense forward", dtype)
    for n_out, n_in, n in ((1, 1, 1), (17, 5, 13), (40, 256, 50), (47, 257, 100), (100, 600, 29)):
        w = rng.standard_normal((n_in, n_out)).astype(dtype)  # W (n_out x n_in), column-major
        # in: rows 2 .. n_in + 1 of its columns
        x = rng.standard_normal((n, n_in + 5)).astype(dtype)
        b = rng.standard_normal(n_out).astype(dtype)
        out = build.dense_forward(w, x, b, 0, n_out, 2, 0)
        x_in = x[:, 2 : 2 + n_in].astype(np.float64)
        exact = x_in @ w.astype(np.float64) + b
        magnitudes = np.abs(x_in) @ np.abs(w).astype(np.float64) + np.abs(b)
        assert np.all(np.abs(out - exact) <= gamma_bound(n_in + 1, magnitudes, dtype)), (
            n_out,
            n_in,
            n,
        )
        for first, count, margin in (
            (0, 1, 2),
            (n_out // 3, n_out - n_out // 3, 1),
            (n_out - 1, 1, 0),
        ):
            block = build.dense_forward(w, x, b, first, count, 2, margin)
            assert np.array_equal(block[:, margin : margin + count], out[:, first : first + count])
            assert np.all(block[:, :margin] == 7) and np.all(block[:, margin + count :] == 7)
        for first, count in ((0, 1), (n // 2, n - n // 2)):
            part = build.dense_forward(w, x[first : first + count], b, 0, n_out, 2, 0)
            assert np.array_equal(part, out[first : first + count])


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_certified_products_are_finite_and_the_certificate_is_not_loose(dtype):
    info = np.finfo(dtype)
    f32 = dtype == np.float32
    n, g = 100, 1.0
    h = float(np.nextafter(dtype(float(info.max) / 2 / n), dtype(0)))  # n g h just below max / 2
    assert core.certified_finite_product(n, g, h, f32)
    assert not core.certified_finite_product(n, g, h * 1.01, f32)
    assert not core.certified_finite_product(n, np.inf, 1.0, f32)
    assert not core.certified_finite_product(n, 0.0, np.inf, f32)
    unit_roundoff = float(info.eps) / 2
    assert core.certified_finite_product(int(0.25 / unit_roundoff), 1.0, 1.0, f32)
    assert not core.certified_finite_product(int(0.25 / unit_roundoff) + 1, 1.0, 1.0, f32)
    # The worst case for a certified bound: every term at the bound and of one sign, summed in numpy's BLAS
    # order; and 2.02 times that bound overflows, so the certificate is within a factor of about 2 of the
    # truth.
    G = np.full((3, n), g, dtype)
    H = np.full((4, n), dtype(h))
    assert np.all(np.isfinite(G @ H.T))
    with np.errstate(over="ignore"):
        assert np.all(np.isinf(G @ (dtype(2.02) * H).T))
