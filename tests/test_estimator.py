"""The AEVB estimator's behaviour: reproducibility, precision, persistence, validation, training control."""

import copy
import pickle
import signal
import threading
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from aevb import AEVB
from aevb._native import core

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.data / 16.0, data.target


def small(**kw):
    params = {"n_components": 3, "hidden_layer_sizes": (16,), "max_iter": 3, "random_state": 0}
    params.update(kw)
    return AEVB(**params)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_same_seed_same_threads_is_bit_identical(digits, dtype, likelihood):
    X = digits[0][:300]
    a = small(dtype=dtype, likelihood=likelihood, n_jobs=2).fit(X)
    b = small(dtype=dtype, likelihood=likelihood, n_jobs=2).fit(X)
    np.testing.assert_array_equal(a._params, b._params)
    assert a.loss_curve_ == b.loss_curve_
    c = small(dtype=dtype, likelihood=likelihood, n_jobs=2, random_state=1).fit(X)
    assert not np.array_equal(a._params, c._params)


def test_float32_and_float64_agree_to_float32_accuracy(digits):
    X = digits[0][:400]
    m64 = small(dtype=np.float64, max_iter=1).fit(X)
    m32 = small(dtype=np.float32, max_iter=1).fit(X)
    # Same seed: same initial weights and noise, so one epoch lands at nearly the same parameters.
    np.testing.assert_allclose(m32._params, m64._params, rtol=0, atol=2e-4)
    # The same parameters evaluated in both precisions agree to float32 rounding.
    m32._params = m64._params.astype(np.float32)
    m32._optimizer_state = m64._optimizer_state.astype(np.float32)
    np.testing.assert_allclose(m32.transform(X), m64.transform(X), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(m32.score_samples(X), m64.score_samples(X), rtol=1e-5)
    np.testing.assert_allclose(
        m32.score_samples(X, n_importance=50), m64.score_samples(X, n_importance=50), rtol=1e-5
    )


def test_outputs_keep_the_input_dtype(digits):
    X = digits[0][:50]
    model = small().fit(X)
    assert model.transform(X).dtype == np.float64
    assert model.transform(X.astype(np.float32)).dtype == np.float32
    assert model.inverse_transform(model.transform(X)).dtype == np.float64
    assert model.score_samples(X).dtype == np.float64
    assert isinstance(model.score(X), float)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pickle_copy_clone_round_trips(digits, dtype):
    X = digits[0][:200]
    model = small(dtype=dtype).fit(X)
    Z, s, s_iw = model.transform(X), model.score_samples(X), model.score_samples(X, n_importance=20)
    for other in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model), copy.copy(model)):
        np.testing.assert_array_equal(other.transform(X), Z)
        np.testing.assert_array_equal(other.score_samples(X), s)
        np.testing.assert_array_equal(other.score_samples(X, n_importance=20), s_iw)
    refit = clone(model).fit(X)
    np.testing.assert_array_equal(refit.transform(X), Z)
    np.testing.assert_array_equal(refit.score_samples(X), s)


def test_caller_data_is_never_modified(digits):
    X = digits[0][:100].copy()
    X_before = X.copy()
    model = small().fit(X)
    model.partial_fit(X)
    model.transform(X)
    model.score_samples(X, n_importance=5)
    Z = model.transform(X)
    Z_before = Z.copy()
    model.inverse_transform(Z)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(Z, Z_before)


def test_transform_and_inverse_transform_shapes(digits):
    X = digits[0][:60]
    model = small(n_components=4).fit(X)
    Z = model.transform(X)
    assert Z.shape == (60, 4)
    np.testing.assert_array_equal(model.transform(X), Z)  # deterministic: the posterior mean
    mean, log_var = model.encode(X)
    np.testing.assert_array_equal(mean, Z)
    assert log_var.shape == (60, 4) and np.all(np.isfinite(log_var))
    Xhat = model.inverse_transform(Z)
    assert Xhat.shape == (60, 64) and np.all((Xhat > 0) & (Xhat < 1))
    draws = model.sample_posterior(X[:5], n_samples=7, random_state=0)
    assert draws.shape == (5, 7, 4)
    assert model.get_feature_names_out().tolist() == [f"aevb{i}" for i in range(4)]


def test_fitted_weights_have_mlp_layout(digits):
    X = digits[0][:50]
    for likelihood, d_out in [("bernoulli", 64), ("gaussian", 128)]:
        model = small(likelihood=likelihood, hidden_layer_sizes=(16, 8), n_components=3).fit(X)
        assert [w.shape for w in model.encoder_coefs_] == [(64, 16), (16, 8), (8, 6)]
        assert [b.shape for b in model.encoder_intercepts_] == [(16,), (8,), (6,)]
        assert [w.shape for w in model.decoder_coefs_] == [(3, 8), (8, 16), (16, d_out)]
        assert [b.shape for b in model.decoder_intercepts_] == [(8,), (16,), (d_out,)]
    # The weights are the model: the posterior mean is the encoder's first J outputs.
    W, b = model.encoder_coefs_, model.encoder_intercepts_
    h = np.tanh(np.tanh(X @ W[0] + b[0]) @ W[1] + b[1])
    np.testing.assert_allclose(model.transform(X), (h @ W[2] + b[2])[:, :3], rtol=1e-4, atol=1e-5)


def test_sample_draws_from_the_generative_model(digits):
    X = digits[0][:100]
    model = small().fit(X)
    x = model.sample(16, random_state=1)
    assert x.shape == (16, 64) and set(np.unique(x)) <= {0.0, 1.0}
    np.testing.assert_array_equal(model.sample(16, random_state=1), x)
    assert not np.array_equal(model.sample(16, random_state=2), x)
    means = model.sample(16, random_state=1, noise=False)
    assert np.all((means > 0) & (means < 1))
    gaussian = small(likelihood="gaussian").fit(X)
    assert len(np.unique(gaussian.sample(4, random_state=0))) > 100  # real-valued draws


def test_score_is_mean_of_score_samples_and_importance_tightens(digits):
    X = digits[0][:300]
    model = small(max_iter=10).fit(X)
    assert model.score(X) == pytest.approx(np.mean(model.score_samples(X)))
    elbo, iw = model.score(X, n_importance=1), model.score(X, n_importance=200)
    assert iw > elbo
    assert model.score(X[:50]) == pytest.approx(np.mean(model.score_samples(X)[:50]))


def test_partial_fit_continues_optimizer_state(digits):
    X = digits[0][:200]
    model = small()
    model.partial_fit(X[:100])
    assert model.n_iter_ == 1 and model.t_ == 1  # 100 rows = one minibatch of 100
    state = model._optimizer_state.copy()
    model.partial_fit(X[100:])
    assert model.n_iter_ == 2 and model.t_ == 2
    assert not np.array_equal(state, model._optimizer_state)
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[:, :10])


def test_warm_start_continues_and_cold_start_restarts(digits):
    X = digits[0][:200]
    model = small(warm_start=True, max_iter=2).fit(X)
    model.fit(X)
    assert model.n_iter_ == 4 and len(model.loss_curve_) == 4
    cold = small(max_iter=2).fit(X)
    cold.fit(X)
    assert cold.n_iter_ == 2


def test_bound_rises_and_convergence_is_reported(digits):
    X = digits[0]
    model = small(max_iter=8, hidden_layer_sizes=(64,))
    with pytest.warns(ConvergenceWarning):
        model.fit(X)
    assert len(model.loss_curve_) == 8
    assert model.loss_curve_[-1] < model.loss_curve_[0] - 5
    assert model.best_loss_ == min(model.loss_curve_)


def test_stops_when_no_improvement(digits):
    X = digits[0][:200]
    model = small(max_iter=200, tol=1e3, n_iter_no_change=2).fit(X)
    # The first epoch improves on +inf; no later one improves by 1000 nats, and, as in MLPRegressor,
    # training stops once more than n_iter_no_change epochs in a row have not improved.
    assert model.n_iter_ == 1 + 3


def test_early_stopping_keeps_best_validated_epoch(digits):
    X = digits[0][:400]
    model = small(early_stopping=True, max_iter=6, validation_fraction=0.25).fit(X)
    assert len(model.validation_scores_) == model.n_iter_
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert small(max_iter=2).fit(X).validation_scores_ is None


def test_verbose_prints_one_line_per_epoch(digits, capsys):
    small(max_iter=2, verbose=1).fit(digits[0][:100])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[AEVB] epoch 1/2, bound -") and lines[0].endswith(" s")
    small(max_iter=2).fit(digits[0][:100])
    assert capsys.readouterr().out == ""


def test_non_finite_bound_stops_with_a_clear_error_and_keeps_finite_parameters():
    rng = np.random.default_rng(0)
    X = rng.normal(scale=1e3, size=(200, 5))
    model = AEVB(
        n_components=2,
        hidden_layer_sizes=(8,),
        likelihood="gaussian",
        solver="sgd",
        learning_rate_init=1e8,
        max_iter=5,
        random_state=0,
    )
    with pytest.raises(
        FloatingPointError, match=r"non-finite in epoch \d+ \(learning_rate_init=1"
    ) as e:
        model.fit(X)
    assert f"in epoch {model.n_iter_} (learning_rate_init=100000000.0, solver='sgd')" in str(
        e.value
    )
    assert np.all(np.isfinite(model._params))
    assert np.all(np.isfinite(model.transform(X[:3])))


@pytest.mark.parametrize(
    "X, match",
    [
        (np.array([[0.5, np.nan]]), "NaN"),
        (np.array([[0.5, np.inf]]), "infinity"),
        (np.zeros((0, 3)), "0 sample"),
        (np.array([0.1, 0.2, 0.3]), "Expected 2D"),
        (np.array([[0.1 + 1j, 0.2]]), "Complex"),
        (np.array([[0.1, "a"]], dtype=object), "could not convert|Unable to convert"),
        (np.array([[0.5, 1.5]]), r"needs X in \[0, 1\]"),
    ],
)
def test_bad_input_gets_a_clear_error(X, match):
    with pytest.raises(ValueError, match=match):
        small().fit(X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad, match", [(np.nan, "Input X contains NaN"), (np.inf, "infinity")])
@pytest.mark.parametrize("method", ["transform", "score_samples", "partial_fit"])
def test_non_finite_values_are_refused_after_fit(digits, dtype, bad, match, method):
    # Outside fit the finite check is native (aevb._core.value_range); the message is scikit-learn's.
    X = digits[0][:50].astype(dtype)
    model = small(dtype=dtype).fit(X)
    params = model._params.copy()
    for position in [0, X.size // 2, X.size - 1]:  # the first, a middle and the last value
        Y = X.copy()
        Y.flat[position] = bad
        with pytest.raises(ValueError, match=match):
            getattr(model, method)(Y)
    np.testing.assert_array_equal(model._params, params)


@pytest.mark.parametrize("method", ["fit", "transform", "score_samples"])
def test_values_beyond_the_models_precision_are_refused(digits, method):
    # 1e39 is finite in float64 but infinite once converted to a float32 model's precision: refused with
    # one clear error (and no overflow warning from the conversion before it). A value just above float32's
    # largest, which the conversion rounds down to it, passes the input check of every method alike (a fit
    # on it then stops at its non-finite bound, so only transform and score_samples run to the end).
    X = digits[0][:50]
    model = small(dtype=np.float32, likelihood="gaussian")
    if method != "fit":
        model.fit(X)
    Y = X.copy()
    Y[3, 5] = -1e39
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(
            ValueError, match=r"beyond the range of float32.*got \|x\| up to 1e\+39"
        ):
            getattr(model, method)(Y)
    Y[3, 5] = float(np.finfo(np.float32).max) * (1 + 2.0**-30)
    assert np.float32(Y[3, 5]) == np.finfo(np.float32).max
    if method == "fit":
        with pytest.raises(FloatingPointError, match="non-finite"):
            model.fit(Y)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # overflow inside the model, not in the input check
            getattr(model, method)(Y)


def test_bad_input_after_fit(digits):
    X = digits[0][:50]
    model = small().fit(X)
    with pytest.raises(ValueError, match="64 features"):
        model.transform(X[:, :10])
    with pytest.raises(ValueError, match="n_components"):
        model.inverse_transform(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="n_importance"):
        model.score_samples(X, n_importance=0)
    with pytest.raises(ValueError, match="n_samples"):
        model.sample(0)
    params = model._params.copy()
    with pytest.raises(ValueError, match=r"needs X in \[0, 1\]"):
        model.partial_fit(X * 2)
    np.testing.assert_array_equal(
        model._params, params
    )  # a rejected call leaves the model as it was


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_components": 0}, "n_components"),
        ({"activation": "gelu"}, "activation"),
        ({"likelihood": "poisson"}, "likelihood"),
        ({"solver": "lbfgs"}, "solver"),
        ({"dtype": np.int32}, "dtype"),
        ({"learning_rate_init": 0.0}, "learning_rate_init"),
        ({"n_jobs": 0}, "n_jobs"),
    ],
)
def test_bad_parameters_are_rejected_at_fit(params, match):
    model = small(**params)  # __init__ stores, fit validates
    with pytest.raises(ValueError, match=match):
        model.fit(np.full((10, 3), 0.5))


def test_not_fitted_errors():
    with pytest.raises(NotFittedError):
        small().transform(np.zeros((2, 3)))
    with pytest.raises(NotFittedError):
        small().sample(2)
    assert not hasattr(small(), "encoder_coefs_")


def test_set_output_pandas(digits):
    pd = pytest.importorskip("pandas")  # in the test extra; CI installs it
    model = small().set_output(transform="pandas").fit(digits[0][:40])
    out = model.transform(digits[0][:40])
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["aevb0", "aevb1", "aevb2"]


def test_callbacks_see_every_epoch_and_can_stop(digits):
    seen = []

    def record(model, info):
        seen.append((info["epoch"], info["bound"], info["validation_score"]))
        return info["epoch"] == 3

    model = small(max_iter=10, callbacks=[record, lambda model, info: None]).fit(digits[0][:100])
    assert model.n_iter_ == 3
    assert [e for e, _, _ in seen] == [1, 2, 3]
    assert [b for _, b, _ in seen] == [-loss for loss in model.loss_curve_]
    assert all(v is None for _, _, v in seen)


def fit_interrupted(model, X, seconds):
    """model.fit(X), with Ctrl-C after `seconds`: a timer thread sends SIGINT to this process mid-fit."""
    timer = threading.Timer(seconds, lambda: signal.raise_signal(signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(X)
    finally:
        timer.cancel()


def test_interrupt_keeps_a_usable_model(digits):
    X = digits[0]
    model = small(max_iter=10_000, n_iter_no_change=10_000, hidden_layer_sizes=(64,), batch_size=10)
    fit_interrupted(model, X, 0.5)
    assert model.n_iter_ < 10_000 and len(model.loss_curve_) == model.n_iter_
    assert model.t_ >= model.n_iter_ * (len(X) // 10)  # steps of the interrupted epoch count too
    assert np.all(np.isfinite(model._params))
    assert np.all(np.isfinite(model.transform(X[:5])))
    model.partial_fit(X)  # and training can go on


def test_a_signal_handler_sees_the_parameters_the_interrupted_fit_keeps():
    # Two threads share each step. C++ asks about signals (and so runs the handler) after a minibatch's
    # gradient, while no thread writes parameters, and stops before that minibatch's update: what the
    # handler copies is what the interrupted fit keeps. (Only the missing update can be provoked here; a
    # handler overlapping another thread's update would be a window of microseconds.)
    X = (np.random.default_rng(0).random((3000, 784)) < 0.3).astype(np.float32)
    model = AEVB(n_components=20, hidden_layer_sizes=(500,), max_iter=100, n_jobs=2, random_state=0)
    assert core.training_threads(core.Layout(784, 20, [500], "tanh", "bernoulli"), 100, 1, 2) == 2
    seen = []

    def handler(signum, frame):
        seen.append(model._params.copy())
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        fit_interrupted(model, X, 0.3)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(seen) == 1 and model.t_ > 0
    np.testing.assert_array_equal(seen[0], model._params)


def test_early_stopping_on_too_few_rows_leaves_the_model_untouched(digits):
    model = small(early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping needs at least 2 rows"):
        model.fit(digits[0][:1])
    assert not hasattr(model, "_params")


# ------------------------------------------- a refused fit changes nothing; no silent non-finite output


def assert_same_state(model, before):
    """The estimator's attributes are those of ``before`` (a deepcopy), arrays value for value."""
    assert model.__dict__.keys() == before.__dict__.keys()
    for name, value in before.__dict__.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(model.__dict__[name], value, err_msg=name)
        else:
            assert model.__dict__[name] == value, name


REFUSED_FITS = {
    # a change of parameters, then the X to fit, the error and its message
    "X out of [0, 1], other features": ({}, lambda X: X[:, :7] * 2, ValueError, r"\[0, 1\]"),
    "n_jobs=0": ({"n_jobs": 0}, lambda X: X, ValueError, "n_jobs"),
    "early stopping on one row": ({"early_stopping": True}, lambda X: X[:1], ValueError, "2 rows"),
    "a negative hidden layer": ({"hidden_layer_sizes": (-3,)}, lambda X: X, ValueError, "hidden"),
    "a fractional hidden layer": (
        {"hidden_layer_sizes": (2.5,)},
        lambda X: X,
        ValueError,
        "hidden",
    ),
    "a hidden layer as text": ({"hidden_layer_sizes": ("8",)}, lambda X: X, ValueError, "hidden"),
    "a callback that is not callable": ({"callbacks": [1]}, lambda X: X, TypeError, "callables"),
    "too many parameters": (
        {"hidden_layer_sizes": (2**31 - 1,) * 3},
        lambda X: X,
        ValueError,
        "too many",
    ),
    # These two ask for more than a 47-bit address space holds, so even an overcommitting kernel refuses.
    "no memory for the weights": (
        {"hidden_layer_sizes": (2**31 - 1, 2**17)},
        lambda X: X,
        MemoryError,
        None,
    ),
    "no memory for the samples": (
        {"n_mc_samples": 2**31 - 1, "batch_size": 1800},
        lambda X: np.tile(X, (30, 1)),
        MemoryError,
        None,
    ),
    "too many samples": ({"n_mc_samples": 2**31}, lambda X: X, ValueError, "at most 2"),
}


@pytest.mark.parametrize("case", list(REFUSED_FITS))
@pytest.mark.parametrize("fitted", [True, False], ids=["fitted", "new"])
def test_a_refused_fit_leaves_the_estimator_as_it_was(digits, tmp_path, case, fitted):
    # Each of these is found after scikit-learn's validation has recorded X's features, or after a new
    # model has replaced the old one: the estimator, fitted or not, must come out unchanged.
    change, bad_X, error, match = REFUSED_FITS[case]
    X = digits[0][:60]
    model = small(max_iter=1)
    if fitted:
        model.fit(X)
    before = copy.deepcopy(model)
    with pytest.raises(error, match=match):
        model.set_params(**change).fit(bad_X(X))
    model.set_params(**{k: v for k, v in before.get_params().items() if k in change})
    assert_same_state(model, before)
    if fitted:
        np.testing.assert_array_equal(model.transform(X), before.transform(X))
        model.save(tmp_path / "m.aevb")  # still a whole model: it saves and loads
        np.testing.assert_array_equal(AEVB.load(tmp_path / "m.aevb")._params, model._params)
    else:
        with pytest.raises(NotFittedError):
            model.transform(X)


@pytest.mark.parametrize(
    "change",
    [
        {"n_components": 4},
        {"hidden_layer_sizes": (8,)},
        {"activation": "relu"},
        {"likelihood": "gaussian"},
        {"dtype": np.float64},
    ],
    ids=lambda change: next(iter(change)),
)
@pytest.mark.parametrize("how", ["warm_start", "partial_fit"])
def test_continuing_refuses_a_parameter_that_changes_the_models_shape(digits, change, how):
    X = digits[0][:60]
    model = small(max_iter=1, warm_start=how == "warm_start").fit(X)
    before = copy.deepcopy(model)
    model.set_params(**change)
    with pytest.raises(ValueError, match=f"continues the fitted model, whose {next(iter(change))}"):
        model.fit(X) if how == "warm_start" else model.partial_fit(X)
    model.set_params(**{k: v for k, v in before.get_params().items() if k in change})
    assert_same_state(model, before)


def test_warm_start_can_turn_early_stopping_on(digits):
    X = digits[0][:200]
    model = small(max_iter=2, warm_start=True).fit(X)
    model.set_params(early_stopping=True, n_iter_no_change=100).fit(X)
    assert model.n_iter_ == 4 == len(model.loss_curve_)
    assert len(model.validation_scores_) == 2 and np.isfinite(model.best_validation_score_)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outputs_that_overflow_the_models_precision_raise(digits, dtype):
    # A model whose weights have grown beyond what its precision can carry through the layers (as one
    # that diverged in training: its largest weight is named) gives no infinity or NaN silently. Its log
    # densities are below the precision's range: -inf, as score_samples documents.
    X = digits[0][:20]
    model = small(dtype=dtype, likelihood="gaussian").fit(X)
    # Every weight and bias equal: the tanh units agree and saturate, and 16 of them times max/10 overflow.
    model._params[:] = np.finfo(dtype).max / 10
    for method, call in [
        ("encode", lambda: model.transform(X)),
        ("inverse_transform", lambda: model.inverse_transform(np.ones((2, 3)))),
        ("sample", lambda: model.sample(2, random_state=0)),
    ]:
        with pytest.raises(FloatingPointError, match=rf"AEVB.{method}: .*largest \|weight\|"):
            call()
    assert np.all(model.score_samples(X) == -np.inf)
    model._params[0] = np.nan  # a bound that is NaN, not -inf, is an error
    with pytest.raises(
        FloatingPointError, match=r"AEVB.score_samples: the bound is NaN for 20 of 20"
    ):
        model.score_samples(X)


def test_latents_beyond_the_models_precision_are_refused(digits):
    model = small().fit(digits[0][:20])
    with pytest.raises(ValueError, match=r"Z has values beyond the range of float32"):
        model.inverse_transform(np.full((1, 3), 1e300))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_density_below_the_precisions_range_scores_minus_infinity(digits, dtype):
    # A Gaussian model's log density of a value this far out overflows the precision's range: the ELBO
    # is -inf, and the importance-weighted bound, whose every weight is then 0, is -inf too (not the NaN
    # of -inf - -inf).
    X = digits[0][:60]
    model = small(dtype=dtype, likelihood="gaussian").fit(X)
    Y = X[:2].copy()
    Y[0, 0] = np.sqrt(np.finfo(dtype).max) * 1e3
    for k in (1, 5):
        scores = model.score_samples(Y, n_importance=k)
        assert scores[0] == -np.inf and np.isfinite(scores[1]), k


@pytest.mark.parametrize(
    "call",
    [
        lambda m, X: m.sample(True),
        lambda m, X: m.sample(2.0),
        lambda m, X: m.sample_posterior(X, n_samples=0),
        lambda m, X: m.sample_posterior(X, n_samples=True),
        lambda m, X: m.score_samples(X, n_importance=2**31),
        lambda m, X: m.set_params(n_jobs=2**31).transform(X),
        lambda m, X: m.set_params(dtype=None).fit(X),
    ],
    ids=[
        "sample bool",
        "sample float",
        "posterior 0",
        "posterior bool",
        "K 2**31",
        "n_jobs",
        "dtype",
    ],
)
def test_counts_and_options_out_of_range_get_a_clear_error(digits, call):
    X = digits[0][:20]
    model = small(max_iter=1).fit(X)
    with pytest.raises(ValueError, match="n_samples|n_importance|n_jobs|dtype"):
        call(model, X)


def test_a_nan_validation_score_stops_the_fit():
    # One SGD step on data of magnitude 6e7 throws this model so far that the held-out row's bound is
    # NaN while the training bound was finite: the fit must say so, not record a NaN score.
    X = np.array([[-6e7, -5e7]] * 4)
    model = AEVB(
        n_components=5, hidden_layer_sizes=(4,), activation="relu", likelihood="gaussian",
        solver="sgd", max_iter=1, random_state=2, n_jobs=1, early_stopping=True,
        validation_fraction=0.25,
    )  # fmt: skip
    with pytest.raises(FloatingPointError, match="validation score is NaN after epoch 1"):
        model.fit(X)


def test_a_refit_frees_the_old_model_and_a_refused_one_leaves_the_random_state(digits):
    import weakref

    X = digits[0][:60]
    model = small(max_iter=2).fit(X)
    old = weakref.ref(model._params)
    alive = []
    model.set_params(callbacks=[lambda m, info: alive.append(old() is not None)]).fit(X)
    assert alive == [False, False]  # not kept for a way back once an epoch has trained
    rs = np.random.RandomState(0)
    state = rs.get_state()[1].copy()
    with pytest.raises(MemoryError):
        small(random_state=rs, hidden_layer_sizes=(2**31 - 1, 2**17)).fit(X)
    np.testing.assert_array_equal(rs.get_state()[1], state)
