"""Threads sharing a training step: each layer is split between them; results match one thread's to rounding."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from aevb import AEVB
from aevb._native import core

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

OBJECTIVES = [("analytic", 1), ("sampled", 2), ("importance", 3)]


def step(layout, params, X, eps, objective, n_samples, n_threads):
    grad = np.empty_like(params)
    total, rows = core.elbo_step(
        layout, params, X, eps, objective, n_samples, 1.0, grad, n_threads=n_threads
    )
    return total, rows, grad


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize(("objective", "n_samples"), OBJECTIVES)
def test_a_shared_step_agrees_with_the_one_thread_step(dtype, likelihood, objective, n_samples):
    # Layers of 100, 37, 10, 70 and 140 rows and 53 datapoints (106 decoder columns with L = 2): row
    # shares such as 48/52 and 32/32/36 where a layer has at least 32 rows per thread, and dW column
    # shares on multiples of 4, 8 or 16 (by the layer's outputs) such as 36/34, 24/24/22 and 52/48;
    # otherwise (split_by_columns) column shares such as 32/21 and 16/16/21, and row shares of dW and db
    # such as 0/10 and 0/0/10 (empty) in the narrow layers.
    rng = np.random.default_rng(0)
    layout = core.Layout(70, 5, [100, 37], "tanh", likelihood)
    X = rng.uniform(size=(53, 70)).astype(dtype)
    eps = rng.standard_normal((53 * n_samples, 5)).astype(dtype)
    params = np.empty(layout.n_params, dtype)
    core.init_params(layout, 3, params)
    t1, rows1, g1 = step(layout, params, X, eps, objective, n_samples, 1)
    # float32 sums of 53-140 terms of O(1): a few ulps of the largest partial sums
    rtol, atol = (1e-12, 1e-14) if dtype == np.float64 else (2e-5, 1e-6)
    for n_threads in (2, 3, 4):
        total, rows, grad = step(layout, params, X, eps, objective, n_samples, n_threads)
        np.testing.assert_allclose(total, t1, rtol=rtol)
        np.testing.assert_allclose(rows, rows1, rtol=rtol)
        np.testing.assert_allclose(grad, g1, rtol=rtol, atol=atol)
        again = step(layout, params, X, eps, objective, n_samples, n_threads)
        assert again[0] == total
        np.testing.assert_array_equal(again[2], grad)


@pytest.mark.parametrize("n_threads", [5, 8])
def test_more_threads_than_a_layer_has_shares(n_threads):
    # Layers of 12, 13 and 6 rows and 21 datapoints split 5 or 8 ways (by columns, as the layers are
    # narrow; dW and db by rows): most threads get nothing, none a negative count.
    rng = np.random.default_rng(1)
    layout = core.Layout(13, 3, [12], "tanh", "gaussian")
    X = rng.uniform(size=(21, 13))
    eps = rng.standard_normal((21 * 2, 3))
    params = np.empty(layout.n_params)
    core.init_params(layout, 4, params)
    t1, rows1, g1 = step(layout, params, X, eps, "importance", 2, 1)
    total, rows, grad = step(layout, params, X, eps, "importance", 2, n_threads)
    np.testing.assert_allclose(total, t1, rtol=1e-12)
    np.testing.assert_allclose(rows, rows1, rtol=1e-12)
    np.testing.assert_allclose(grad, g1, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("algorithm", ["aevb", "wake-sleep"])
def test_a_two_thread_fit_is_reproducible_and_agrees_with_one_thread(algorithm):
    X = load_digits().data[:512] / 16.0
    options = {
        "n_components": 8,
        "hidden_layer_sizes": (512,),
        "batch_size": 256,
        "max_iter": 2,
        "random_state": 0,
        "algorithm": algorithm,
        "tol": 0,
        "n_iter_no_change": 3,
    }
    model = AEVB(**options, n_jobs=2).fit(X)
    layout = core.Layout(64, 8, [512], "tanh", "bernoulli")
    assert core.training_threads(layout, 256, 1, 2) == 2  # so the fit above did use a team of two
    again = AEVB(**options, n_jobs=2).fit(X)
    np.testing.assert_array_equal(again._params, model._params)
    one = AEVB(**options, n_jobs=1).fit(X)
    # Four updates from the same start and noise: the teams' rounding differences stay at rounding level.
    np.testing.assert_allclose(one._params, model._params, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(one.loss_curve_, model.loss_curve_, rtol=1e-5)


def test_small_networks_train_on_one_thread():
    layout = core.Layout(64, 3, [16], "tanh", "bernoulli")
    assert core.training_threads(layout, 200, 1, 2) == 1
    big = core.Layout(784, 20, [500], "tanh", "bernoulli")
    assert core.training_threads(big, 100, 1, 2) == 2
    assert core.training_threads(big, 100, 1, 1) == 1
    with pytest.raises(ValueError, match="n_threads must be >= 1; got 0"):
        core.training_threads(big, 100, 1, 0)


@pytest.mark.parametrize("team_size", range(1, 9))
@pytest.mark.parametrize(
    ("n_features", "n_components", "hidden", "likelihood"),
    [
        (784, 20, [500], "bernoulli"),  # the paper's MNIST network
        (70, 5, [100, 37], "gaussian"),  # n_out 37, 10, 140: dW column granules 16, 8, 4
        (13, 3, [12], "gaussian"),  # every layer narrow: split by columns, dW by rows
        (33, 7, [129, 64, 17], "bernoulli"),
    ],
)
def test_the_team_owns_every_parameter_exactly_once(
    team_size, n_features, n_components, hidden, likelihood
):
    # What each thread checks, adds the prior to and updates (owned_params): together exactly the whole
    # buffer, once, with weights flagged as weights. A parameter owned twice would be updated twice; one
    # owned by nobody would never train.
    layout = core.Layout(n_features, n_components, hidden, "tanh", likelihood)
    owners = np.zeros(layout.n_params, int)
    is_weight = np.zeros(layout.n_params, bool)
    for n_in, n_out, weight_offset, _ in layout.encoder + layout.decoder:
        is_weight[weight_offset : weight_offset + n_in * n_out] = True
    teams = core.owned_params(layout, team_size)
    assert len(teams) == team_size
    for ranges in teams:
        for begin, count, weight in ranges:
            assert count > 0
            owners[begin : begin + count] += 1
            assert np.all(is_weight[begin : begin + count] == weight)
    np.testing.assert_array_equal(owners, 1)


def test_two_threads_own_the_large_layers_in_halves():
    # The optimizer's work follows dW's column shares: 392 and 392 of the 784 inputs of the encoder's first
    # layer, 252 and 248 of the 500 inputs of the decoder's last (multiples of 4 columns).
    layout = core.Layout(784, 20, [500], "tanh", "bernoulli")
    first = layout.encoder[0]
    last = layout.decoder[-1]
    for layer, shares in ((first, (392, 392)), (last, (252, 248))):
        n_in, n_out, weight_offset, bias_offset = layer
        assert sum(shares) == n_in
        owned = [
            sum(c for b, c, w in ranges if w and weight_offset <= b < bias_offset)
            for ranges in core.owned_params(layout, 2)
        ]
        assert owned == [s * n_out for s in shares]
    with pytest.raises(ValueError, match="team_size must be >= 1; got 0"):
        core.owned_params(layout, 0)
