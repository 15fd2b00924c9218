"""The scikit-learn estimator: validates, delegates to the C++ core, keeps the fitted state as numpy arrays."""

from __future__ import annotations

import os
import time
import warnings
from contextlib import contextmanager
from numbers import Integral, Real
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import assert_all_finite, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from aevb._native import core as _core
from aevb._progress import EpochReporter

_SEED_HIGH = np.iinfo(np.int64).max
_INT32_MAX = 2**31 - 1  # counts the core takes as C ints: threads, importance samples


def _parameter_count(n_features, n_components, hidden, likelihood):
    """The model's weights and biases, counted exactly (the core counts in 64-bit integers)."""
    outputs = 2 * n_features if likelihood == "gaussian" else n_features
    encoder = [n_features, *hidden, 2 * n_components]
    decoder = [n_components, *hidden[::-1], outputs]
    return sum((a + 1) * b for net in (encoder, decoder) for a, b in zip(net, net[1:]))


def _check_count(name, value, high=None):
    """A count argument: a positive integer (not a bool), at most ``high``."""
    if (
        not isinstance(value, Integral)
        or isinstance(value, bool)
        or value < 1
        or (high is not None and value > high)
    ):
        limit = f" up to {high}" if high is not None else ""
        raise ValueError(f"{name} must be a positive integer{limit}; got {value!r}")


class AEVB(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Variational auto-encoder trained by Auto-Encoding Variational Bayes (Kingma & Welling, 2013).

    A recognition model q(z|x) = N(mu(x), diag sigma^2(x)) (the encoder) and a generative model
    p(z) p(x|z), with p(z) = N(0, I) (the decoder), are trained jointly by stochastic gradient ascent on
    the reparameterized variational lower bound (SGVB, Algorithm 1). The minibatch step -- forward passes,
    the reparameterized draw z = mu + sigma * eps, the bound and its full gradient -- runs fused in C++,
    and whole epochs run there with the GIL released.

    Parameters
    ----------
    n_components : int, default=10
        Dimension J of the latent variable z.
    hidden_layer_sizes : tuple of int, default=(500,)
        Hidden layer widths of the encoder; the decoder mirrors them. ``()`` gives linear networks.
    activation : {'tanh', 'relu', 'softplus', 'sigmoid'}, default='tanh'
        Hidden-layer activation; the paper uses tanh.
    likelihood : {'bernoulli', 'gaussian'}, default='bernoulli'
        p(x|z): Bernoulli (X in [0, 1]; eq. 11) or Gaussian with a per-feature learned variance (eq. 12).
    kl : {'analytic', 'sampled'}, default='analytic'
        SGVB estimator: 'analytic' is estimator B (eq. 7, closed-form KL); 'sampled' is estimator A
        (eq. 6, Monte Carlo log p(x, z) - log q(z|x)).
    n_mc_samples : int, default=1
        L, the number of draws of z per datapoint and step.
    n_importance : int, default=1
        With K > 1, train on the importance-weighted bound log (1/K) sum_k p(x, z_k) / q(z_k|x)
        (Burda et al. 2015) instead of the ELBO; ``kl`` and ``n_mc_samples`` then do not apply.
    beta : float, default=1.0
        Weight of the KL term (or of log p(z) - log q(z|x) with ``kl='sampled'``) in the training
        objective. 1 is the paper's bound; other values train a beta-VAE (Higgins et al. 2017).
    kl_warmup : int, default=0
        Epochs of linear KL annealing: the KL weight is ``beta * min(1, epoch / kl_warmup)``, from 0 in
        the first epoch to ``beta`` (Bowman et al. 2016; Sonderby et al. 2016). 0 switches it off.
        ``loss_curve_`` always reports the paper's bound (weight 1), whatever the training weight.
    algorithm : {'aevb', 'wake-sleep'}, default='aevb'
        'aevb' is the paper's method. 'wake-sleep' (Hinton et al. 1995) is its baseline on the same
        networks: the decoder learns from encoder samples of the data (wake), the encoder from the
        decoder's dreams (sleep). ``loss_curve_`` reports the same ELBO for both.
    batch_size : int, default=100
        M, the minibatch size (eq. 8). Clipped to the number of training rows.
    solver : {'adam', 'adagrad', 'sgd'}, default='adam'
        Adam, Adagrad (the paper's), or SGD with momentum.
    learning_rate_init : float, default=1e-3
        Step size.
    alpha : float, default=0.0
        Precision of a Gaussian prior N(0, 1/alpha) on all weights (not biases): the objective per
        datapoint gains -alpha/(2N) ||W||^2, so ``alpha=1`` is the paper's N(0, I) MAP prior scaled per
        minibatch by M/N (eq. 8), with N the number of rows passed to ``fit`` or ``partial_fit``.
    max_iter : int, default=200
        Maximum number of epochs per call to ``fit``.
    tol : float, default=1e-4
        Training stops when the loss (or, with early stopping, the validation bound) has not improved by
        at least ``tol`` nats for ``n_iter_no_change`` consecutive epochs.
    n_iter_no_change : int, default=10
        See ``tol``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows, score them each epoch, stop when that bound stops
        improving, and keep the parameters of the best epoch.
    validation_fraction : float, default=0.1
        Fraction of rows held out when ``early_stopping`` is True.
    shuffle : bool, default=True
        Shuffle the rows each epoch.
    warm_start : bool, default=False
        Continue from the fitted parameters and optimizer state instead of re-initializing. The
        parameters that shape the model (n_components, hidden_layer_sizes, activation, likelihood,
        dtype) must be those it was fitted with, as for ``partial_fit``.
    random_state : int, RandomState instance or None, default=None
        Seeds initialization, shuffling, the noise of training and the noise of scoring. The same
        integer gives a bit-identical fit for the same ``n_jobs``.
    verbose : int, default=0
        Print one line per epoch (``[AEVB] epoch 3/50, bound -104.21, 0.85 s``), with a tqdm progress
        bar where stderr is a terminal and tqdm is installed.
    callbacks : list of callable or None, default=None
        Each is called after every epoch as ``callback(model, info)`` with ``info`` a dict of
        ``epoch``, ``bound``, ``validation_score`` (or None) and ``seconds``; returning True stops
        training, as XGBoost's and LightGBM's callbacks do.
    n_jobs : int or None, default=None
        Threads. A training step is shared by splitting each layer between them (small networks,
        with too little work per step, use fewer); inference spreads blocks of rows. None means all
        available cores (as numpy's BLAS does); -1 as well; other negatives count back from the
        core count, as in joblib. A fit is bit-identical for the same seed and thread count, and
        agrees to rounding across thread counts.
    dtype : {np.float32, np.float64}, default=np.float32
        Compute precision. Outputs keep the input's floating dtype.
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's moment decay rates and denominator constant (epsilon is Adagrad's too). In every
        16th update, where epsilon is large enough that they cannot move the denominator -- for
        float32, from 1.2e-10 at the 16th update down to 1.5e-11 once the bias correction fades;
        for float64, from about 1e-136 -- Adam stores moments below the smallest normal number
        as 0: arithmetic on such subnormal numbers is many times slower, and a weight whose
        gradient stays 0 would keep one for good.
    momentum : float, default=0.9
        SGD momentum. Every 16th update stores velocities below the smallest normal number as
        0, for the same reason as Adam's moments.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum with SGD.

    Attributes
    ----------
    encoder_coefs_ : list of ndarray
        Encoder weights, layer by layer, each (n_in, n_out); the last has 2 * n_components outputs,
        the means first, then the log-variances. Views into the model's parameter buffer.
    encoder_intercepts_ : list of ndarray
        Encoder biases, each (n_out,).
    decoder_coefs_ : list of ndarray
        Decoder weights, each (n_in, n_out); the last has n_features_in_ outputs (Bernoulli logits) or
        2 * n_features_in_ (Gaussian means, then log-variances).
    decoder_intercepts_ : list of ndarray
        Decoder biases, each (n_out,).
    loss_curve_ : list of float
        Per epoch, the negative of the mean minibatch bound, in nats per datapoint.
    validation_scores_ : list of float or None
        Per epoch, the bound on the validation rows (``score`` of them) with early stopping, else None.
    best_loss_ : float
        Minimum of ``loss_curve_``.
    best_validation_score_ : float or None
        Maximum of ``validation_scores_``.
    n_iter_ : int
        Epochs trained, over all calls.
    t_ : int
        Optimizer steps taken, over all calls.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when X has string column names.

    References
    ----------
    D. P. Kingma and M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014, arXiv:1312.6114.
    Y. Burda, R. Grosse and R. Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from aevb import AEVB
    >>> X = load_digits().data / 16.0
    >>> model = AEVB(n_components=2, hidden_layer_sizes=(64,), max_iter=5, random_state=0).fit(X)
    >>> model.transform(X).shape
    (1797, 2)
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"tanh", "relu", "softplus", "sigmoid"})],
        "likelihood": [StrOptions({"bernoulli", "gaussian"})],
        "kl": [StrOptions({"analytic", "sampled"})],
        "n_mc_samples": [Interval(Integral, 1, None, closed="left")],
        "n_importance": [Interval(Integral, 1, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="left")],
        "kl_warmup": [Interval(Integral, 0, None, closed="left")],
        "algorithm": [StrOptions({"aevb", "wake-sleep"})],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "solver": [StrOptions({"adam", "adagrad", "sgd"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "shuffle": ["boolean"],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [list, None],
        "n_jobs": [Integral, None],
        "dtype": "no_validation",  # checked in _compute_dtype, which accepts dtype-likes
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
    }

    def __init__(
        self,
        n_components=10,
        *,
        hidden_layer_sizes=(500,),
        activation="tanh",
        likelihood="bernoulli",
        kl="analytic",
        n_mc_samples=1,
        n_importance=1,
        beta=1.0,
        kl_warmup=0,
        algorithm="aevb",
        batch_size=100,
        solver="adam",
        learning_rate_init=1e-3,
        alpha=0.0,
        max_iter=200,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
        shuffle=True,
        warm_start=False,
        random_state=None,
        verbose=0,
        callbacks=None,
        n_jobs=None,
        dtype=np.float32,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        momentum=0.9,
        nesterovs_momentum=True,
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.likelihood = likelihood
        self.kl = kl
        self.n_mc_samples = n_mc_samples
        self.n_importance = n_importance
        self.beta = beta
        self.kl_warmup = kl_warmup
        self.algorithm = algorithm
        self.batch_size = batch_size
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.n_jobs = n_jobs
        self.dtype = dtype
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum

    # ------------------------------------------------------------------ fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model by AEVB (Algorithm 1) for up to ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; in [0, 1] for the Bernoulli likelihood.
        y : None
            Ignored.

        Returns
        -------
        self : AEVB
        """
        reset = not (self.warm_start and hasattr(self, "_params"))
        with self._unchanged_unless_trained() as progress:
            self._check_params(continuing="warm_start=True" if not reset else None)
            X = self._validate_X(X, reset=reset)
            self._fit_epochs(X, self.max_iter, reset, incremental=False, progress=progress)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """One epoch over X, continuing from the current parameters and optimizer state.

        The first call initializes the model from X's shape. The weight prior is scaled by X's rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : AEVB
        """
        first = not hasattr(self, "_params")
        with self._unchanged_unless_trained() as progress:
            self._check_params(continuing=None if first else "partial_fit")
            X = self._validate_X(X, reset=first)
            self._fit_epochs(X, 1, first, incremental=True, progress=progress)
        return self

    @contextmanager
    def _unchanged_unless_trained(self):
        """A fit that raises before its first epoch has trained -- a refused X, a parameter found wrong
        only now, no memory for a new model -- puts every attribute back as it was, n_features_in_ and a
        fitted model included. Once an epoch has run, the snapshot is dropped (it would hold a second copy
        of the model), and an exception keeps the model as trained so far: a step is whole or not taken."""
        progress = SimpleNamespace(before=dict(self.__dict__))  # None once an epoch has trained
        try:
            yield progress
        except BaseException:
            if progress.before is not None:
                self.__dict__.clear()
                self.__dict__.update(progress.before)
            raise

    def _fit_epochs(self, X, max_epochs, reset, incremental, progress):
        n = X.shape[0]
        holdout = self.early_stopping and not incremental
        n_val = max(1, round(self.validation_fraction * n))
        if holdout and n_val >= n:  # rejected before the model changes
            raise ValueError(
                f"early_stopping needs at least 2 rows; got {n} with "
                f"validation_fraction={self.validation_fraction}"
            )
        if reset:
            self._initialize(X.shape[1])
        X = self._as_compute(X)
        rows = np.arange(n, dtype=np.int64)
        X_val = None
        if holdout:
            order = np.random.default_rng(self._seed + self.n_iter_).permutation(n)
            rows, X_val = np.sort(order[n_val:]), X[np.sort(order[:n_val])]
            if reset or self.validation_scores_ is None:  # also where warm_start turns it on
                self.validation_scores_, self.best_validation_score_ = [], -np.inf
        elif reset:
            self.validation_scores_ = None
        options = self._train_options(n_total=len(rows))
        layout = self._layout()
        best_params = None
        reporter = EpochReporter(self.verbose, max_epochs)
        try:
            for _ in range(max_epochs):
                start = time.perf_counter()
                options["beta"] = self._kl_weight(self.n_iter_)
                bound_sum, n_seen, self.t_, status, interrupt = _core.train_epoch(
                    layout,
                    self._params,
                    self._optimizer_state,
                    self.t_,
                    X,
                    rows,
                    self.n_iter_,
                    options,
                )
                progress.before = None  # trained: no way back, and no old model kept alive
                if (
                    interrupt is not None
                ):  # Ctrl-C: parameters hold the last complete minibatch step
                    raise interrupt
                self.n_iter_ += 1
                if status == "non_finite":
                    raise FloatingPointError(
                        f"[AEVB] the bound or its gradient became non-finite in epoch {self.n_iter_} "
                        f"(learning_rate_init={self.learning_rate_init}, solver={self.solver!r}); the "
                        "model keeps its last finite parameters. Lower learning_rate_init or scale X."
                    )
                validation = None if X_val is None else float(np.mean(self._score(X_val, 1)))
                if validation is not None and np.isnan(validation):
                    # Recorded, so that n_iter_ and loss_curve_ agree; then early stopping's promise,
                    # the best validated epoch, where there is one.
                    self._record_epoch(-bound_sum / n_seen, validation)
                    kept = ""
                    if best_params is not None:
                        self._params[:], self._optimizer_state[:] = best_params
                        kept = ", and keeps its best validated epoch"
                    raise FloatingPointError(
                        f"[AEVB] the validation score is NaN after epoch {self.n_iter_}: the model "
                        f"overflows on held-out rows{kept}. Lower learning_rate_init or scale X."
                    )
                if validation is not None and validation > self.best_validation_score_:
                    best_params = (self._params.copy(), self._optimizer_state.copy())
                self._record_epoch(-bound_sum / n_seen, validation)
                seconds = time.perf_counter() - start
                reporter.epoch(self.n_iter_, max_epochs, -self.loss_curve_[-1], validation, seconds)
                if self._callbacks_say_stop(validation, seconds):
                    reporter.message("stopped by a callback")
                    break
                if incremental:
                    break
                if self._no_improvement_count > self.n_iter_no_change:
                    reporter.message(
                        f"no improvement of {self.tol} for {self.n_iter_no_change} epochs; stopping"
                    )
                    break
            else:
                warnings.warn(
                    f"AEVB: max_iter={self.max_iter} epochs reached and the bound is still improving; "
                    "consider raising max_iter.",
                    ConvergenceWarning,
                )
        finally:
            reporter.close()
        if best_params is not None:  # early stopping keeps the best validated epoch
            self._params[:], self._optimizer_state[:] = best_params

    def _record_epoch(self, loss, validation):
        """History and MLPRegressor's stopping rule: count epochs that improve by less than tol."""
        self.loss_curve_.append(loss)
        self.best_loss_ = min(self.best_loss_, loss)
        if validation is not None:
            self.validation_scores_.append(validation)
            improved = validation >= self.best_validation_score_ + self.tol
            self.best_validation_score_ = max(self.best_validation_score_, validation)
        else:
            improved = loss <= self._last_best_loss - self.tol
        self._last_best_loss = min(self._last_best_loss, loss)
        self._no_improvement_count = 0 if improved else self._no_improvement_count + 1

    def _callbacks_say_stop(self, validation, seconds):
        info = {
            "epoch": self.n_iter_,
            "bound": -self.loss_curve_[-1],
            "validation_score": validation,
            "seconds": seconds,
        }
        # Every callback sees every epoch; any one returning True stops training.
        answers = [callback(self, info) for callback in self.callbacks or ()]
        return any(bool(answer) for answer in answers)

    def _initialize(self, n_features):
        hidden = [int(h) for h in np.atleast_1d(self.hidden_layer_sizes)]
        n_params = _parameter_count(n_features, int(self.n_components), hidden, self.likelihood)
        if n_params >= 2**62:  # the core counts parameters in 64-bit integers
            raise ValueError(
                f"n_components={self.n_components} and hidden_layer_sizes={self.hidden_layer_sizes!r} "
                f"make a model of {n_params:.3g} parameters, too many to allocate"
            )
        self._architecture = {
            "n_features": n_features,
            "n_components": int(self.n_components),
            "hidden": hidden,
            "activation": self.activation,
            "likelihood": self.likelihood,
        }
        layout = self._layout()
        self._params = np.empty(layout.n_params, dtype=self._compute_dtype())
        self._optimizer_state = np.zeros((2, layout.n_params), dtype=self._params.dtype)
        # Drawn once the memory is there, so that a fit refused for the lack of it leaves a RandomState
        # passed as random_state where it was.
        self._seed = int(
            check_random_state(self.random_state).randint(0, _SEED_HIGH, dtype=np.int64)
        )
        _core.init_params(layout, self._seed, self._params)
        self.t_ = 0
        self.n_iter_ = 0
        self.loss_curve_ = []
        self.best_loss_ = np.inf
        self.best_validation_score_ = -np.inf if self.early_stopping else None
        self._last_best_loss = np.inf
        self._no_improvement_count = 0

    def _kl_weight(self, epoch):
        """beta, linearly annealed from 0 over the first kl_warmup epochs."""
        if self.kl_warmup == 0:
            return float(self.beta)
        return float(self.beta) * min(1.0, epoch / self.kl_warmup)

    def _shape_mismatch(self):
        """(name, fitted value, parameter value) of the first parameter that no longer describes the
        fitted model's shape, or None."""
        fitted = {
            "n_components": self._architecture["n_components"],
            "hidden_layer_sizes": tuple(self._architecture["hidden"]),
            "activation": self._architecture["activation"],
            "likelihood": self._architecture["likelihood"],
            "dtype": self._params.dtype.name,
        }
        now = {
            "n_components": self.n_components,
            "hidden_layer_sizes": tuple(int(h) for h in np.atleast_1d(self.hidden_layer_sizes)),
            "activation": self.activation,
            "likelihood": self.likelihood,
            "dtype": self._compute_dtype().name,
        }
        return next(((k, fitted[k], v) for k, v in now.items() if v != fitted[k]), None)

    def _check_params(self, continuing=None):
        """What scikit-learn's constraints do not express, rejected before anything changes: the hidden
        layer sizes and callbacks one by one, options that exclude each other, and -- for a fit that
        continues the fitted model (``continuing`` names how) -- parameters that would change its shape."""
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes, dtype=object))
        if sizes.ndim != 1 or not all(
            isinstance(h, Integral) and not isinstance(h, bool) and 1 <= h <= _INT32_MAX
            for h in sizes
        ):
            raise ValueError(
                "hidden_layer_sizes must be a positive integer up to 2**31 - 1, or a sequence of them; "
                f"got {self.hidden_layer_sizes!r}"
            )
        # Widths and sample counts that the core multiplies by the batch in 64-bit integers.
        for name in ("n_components", "n_mc_samples", "n_importance"):
            if getattr(self, name) > _INT32_MAX:
                raise ValueError(f"{name} must be at most 2**31 - 1; got {getattr(self, name)}")
        for callback in self.callbacks or ():
            if not callable(callback):
                raise TypeError(
                    f"callbacks must be callables callback(model, info); got {callback!r}"
                )
        if continuing is not None and (mismatch := self._shape_mismatch()):
            name, fitted, value = mismatch
            raise ValueError(
                f"{continuing} continues the fitted model, whose {name} is {fitted!r}; got "
                f"{name}={value!r}. Fit a new model (warm_start=False or a new estimator) to change it."
            )
        if self.n_importance > 1 and self.n_mc_samples > 1:
            raise ValueError(
                f"n_importance={self.n_importance} trains on the importance-weighted bound, which draws "
                f"its own samples; n_mc_samples must be 1, got {self.n_mc_samples}"
            )
        if self.n_importance > 1 and (self.beta != 1 or self.kl_warmup):
            raise ValueError(
                "beta and kl_warmup weight the ELBO's KL term; the importance-weighted "
                f"bound (n_importance={self.n_importance}) has none to weight"
            )
        if self.algorithm == "wake-sleep" and (
            self.n_importance > 1
            or self.n_mc_samples > 1
            or self.beta != 1
            or self.kl_warmup
            or self.kl != "analytic"
        ):
            raise ValueError(
                "algorithm='wake-sleep' has no variational bound to reweight: "
                "n_importance, n_mc_samples, beta, kl_warmup and kl keep their defaults"
            )

    def _train_options(self, n_total):
        importance = self.n_importance > 1
        return {
            "algorithm": self.algorithm,
            "objective": "importance" if importance else self.kl,
            "n_samples": int(self.n_importance if importance else self.n_mc_samples),
            "beta": float(self.beta),
            "solver": self.solver,
            "learning_rate": float(self.learning_rate_init),
            "beta_1": float(self.beta_1),
            "beta_2": float(self.beta_2),
            "epsilon": float(self.epsilon),
            "momentum": float(self.momentum),
            "nesterov": bool(self.nesterovs_momentum),
            "batch_size": int(self.batch_size),
            "alpha": float(self.alpha),
            "n_total": float(n_total),
            "shuffle": bool(self.shuffle),
            "seed": self._seed,
            "n_threads": self._n_threads(),
        }

    # ---------------------------------------------------------------- inference

    def transform(self, X):
        """Posterior means E_q[z|x] = mu(x): the deterministic embedding.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            In X's floating dtype.
        """
        return self.encode(X)[0]

    def encode(self, X):
        """Parameters of q(z|x) = N(mu, diag exp(log_var)) for each row (the recognition model).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        mean : ndarray of shape (n_samples, n_components)
        log_var : ndarray of shape (n_samples, n_components)
            Clamped to ``aevb._core.log_variance_range``.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False, check_values=False)
        out, *value_range = _core.encode(
            self._layout(), self._params, self._as_compute(X), self._n_threads()
        )
        self._check_values(X, *value_range)  # found in the same pass over X as the encoding
        out = self._finite(out, "encode").astype(X.dtype, copy=False)
        J = self._architecture["n_components"]
        return out[:, :J], out[:, J:]

    def sample_posterior(self, X, n_samples=1, random_state=None):
        """Draws z ~ q(z|x) = N(mu(x), diag sigma^2(x)) for each row.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
        n_samples : int, default=1
        random_state : int, RandomState instance or None

        Returns
        -------
        Z : ndarray of shape (n_rows, n_samples, n_components)
        """
        _check_count("n_samples", n_samples)
        mean, log_var = self.encode(X)
        rng = check_random_state(random_state)
        eps = rng.standard_normal((mean.shape[0], n_samples, mean.shape[1])).astype(mean.dtype)
        return mean[:, None, :] + np.exp(0.5 * log_var)[:, None, :] * eps

    def inverse_transform(self, X):
        """Decoder means E[x|z]: sigmoid of the logits (Bernoulli) or the Gaussian mean.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Latent codes z.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
        """
        check_is_fitted(self)
        Z = self._check_latent(X)
        Z_compute = self._as_compute(Z)
        if not np.all(np.isfinite(Z_compute)):
            raise ValueError(
                f"Z has values beyond the range of {Z_compute.dtype.name}, the model's precision "
                f"(|z| <= {np.finfo(Z_compute.dtype).max:.7g}); got |z| up to {np.max(np.abs(Z)):.7g}."
            )
        out = _core.decode(self._layout(), self._params, Z_compute, False, 0, self._n_threads())
        return self._finite(out, "inverse_transform").astype(Z.dtype, copy=False)

    def sample(self, n_samples=1, random_state=None, noise=True):
        """Generate data from the model: z ~ p(z) = N(0, I), then x ~ p(x|z).

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None
            Seeds the draws.
        noise : bool, default=True
            Draw x ~ p(x|z) (binary for Bernoulli). With False, return E[x|z] for each drawn z.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features_in_)
        """
        check_is_fitted(self)
        _check_count("n_samples", n_samples, high=2**62)
        seed = int(check_random_state(random_state).randint(0, _SEED_HIGH, dtype=np.int64))
        out = _core.generate(
            self._layout(), self._params, int(n_samples), seed, bool(noise), self._n_threads()
        )
        return self._finite(out, "sample")

    def score_samples(self, X, n_importance=1):
        """A stochastic lower bound on log p(x) per row, in nats.

        With ``n_importance=1``, the evidence lower bound L(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z))
        (eqs. 3, 7) from one draw of z with the analytic KL. With K > 1, the importance-weighted bound
        log (1/K) sum_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x) (Burda et al. 2015), which tightens towards
        log p(x) as K grows; K = 5000 is the standard evaluation. It is computed in chunks with a
        streaming log-sum-exp, so memory does not grow with K.

        Each row's noise is derived from the model's seed and the row's own values, so the result is
        deterministic and does not depend on the other rows in the call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        n_importance : int, default=1
            K, the number of importance samples per row.

        Returns
        -------
        scores : ndarray of shape (n_samples,), float64
            -inf for a row whose log density lies below the model's precision (a Gaussian model's
            density of a value far outside its data).

        Raises
        ------
        FloatingPointError
            If a row's bound is NaN: the model overflows its precision on it (it diverged in training).
        """
        check_is_fitted(self)
        _check_count("n_importance", n_importance, high=_INT32_MAX)
        X = self._validate_X(X, reset=False)
        scores = self._score(self._as_compute(X), int(n_importance))
        if np.isnan(scores).any():
            raise FloatingPointError(
                f"AEVB.score_samples: the bound is NaN for {np.count_nonzero(np.isnan(scores))} of "
                f"{len(scores)} rows: the model overflows its precision on them"
                f"{self._overflow_causes()}"
            )
        return scores

    def score(self, X, y=None, n_importance=1):
        """Mean of ``score_samples``: the average bound on log p(x), nats per datapoint; higher is better.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.
        n_importance : int, default=1

        Returns
        -------
        score : float
        """
        return float(np.mean(self.score_samples(X, n_importance=n_importance)))

    # ------------------------------------------------------------ model files

    def save(self, path):
        """Write the fitted model to a versioned, checksummed file that loads without running code.

        See ``aevb._model_file`` for the format. Pickle works too, for checkpoints within one version.

        Parameters
        ----------
        path : str, os.PathLike or binary file object
        """
        from aevb._model_file import save_model

        save_model(self, path)

    @classmethod
    def load(cls, path):
        """Read a model written by ``save``; a damaged or foreign file raises ValueError.

        Parameters
        ----------
        path : str, os.PathLike or binary file object

        Returns
        -------
        model : AEVB
        """
        from aevb._model_file import load_model

        return load_model(path)

    # ---------------------------------------------------------- fitted weights

    def _blocks(self, net, kind):
        check_is_fitted(self)
        layout = self._layout()
        table = layout.encoder if net == "encoder" else layout.decoder
        if kind == "coefs":
            return [self._params[w : w + i * o].reshape(i, o) for i, o, w, _ in table]
        return [self._params[b : b + o] for _, o, _, b in table]

    @property
    def encoder_coefs_(self):
        return self._blocks("encoder", "coefs")

    @property
    def encoder_intercepts_(self):
        return self._blocks("encoder", "intercepts")

    @property
    def decoder_coefs_(self):
        return self._blocks("decoder", "coefs")

    @property
    def decoder_intercepts_(self):
        return self._blocks("decoder", "intercepts")

    @property
    def _n_features_out(self):
        return self._architecture["n_components"]

    # ------------------------------------------------------------------ helpers

    def _layout(self):
        a = self._architecture
        return _core.Layout(
            a["n_features"], a["n_components"], a["hidden"], a["activation"], a["likelihood"]
        )

    def _compute_dtype(self):
        # None is refused: np.dtype(None) would quietly be float64.
        dtype = np.dtype(self.dtype) if self.dtype is not None else None
        if dtype is None or dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be np.float32 or np.float64; got {self.dtype!r}")
        return dtype

    def _as_compute(self, X):
        """X in the fitted model's precision (a copy only when the dtype differs). Values that overflow
        become infinite quietly: `_check_values` refuses them with its own message."""
        with np.errstate(over="ignore"):
            return np.ascontiguousarray(X, dtype=self._params.dtype)

    def _validate_X(self, X, reset, check_values=True):
        """scikit-learn's validation, then the values' range. X itself is never modified.

        Outside fit, finiteness is checked natively, in the one parallel pass that also finds X's range
        (scikit-learn's own check and numpy's min and max would be three). Fit keeps scikit-learn's check,
        which runs before validate_data records n_features_in_, so a refused X changes nothing. With
        ``check_values=False`` the caller checks the values (`_check_values`) from a range it finds itself.
        """
        if reset:
            self._compute_dtype()  # a bad dtype fails before anything else
        X = validate_data(
            self, X, reset=reset, dtype=[np.float64, np.float32], order="C", ensure_all_finite=reset
        )
        if check_values:
            self._check_values(X, *_core.value_range(X, self._n_threads()), reset=reset)
        return X

    def _check_values(self, X, low, high, finite, reset=False):
        """X's values against what the model takes, from (low, high, finite): X's range, or that of X
        converted to the model's precision (`encode` finds it while it encodes).

        Values must be finite, representable in the model's precision, and in [0, 1] for a Bernoulli
        likelihood.
        """
        if not finite:  # NaN or infinity in X itself: scikit-learn's message
            assert_all_finite(X, input_name="X", estimator_name=type(self).__name__)
        dtype = np.dtype(self._compute_dtype() if reset else self._params.dtype)
        with np.errstate(over="ignore"):  # whether converting to the model's precision overflows
            overflows = not (
                finite and np.isfinite(dtype.type(low)) and np.isfinite(dtype.type(high))
            )
        if overflows:
            raise ValueError(
                f"X has values beyond the range of {dtype.name}, the model's precision (|x| <= "
                f"{np.finfo(dtype).max:.7g}); got |x| up to {np.max(np.abs(X)):.7g}."
            )
        likelihood = self.likelihood if reset else self._architecture["likelihood"]
        if likelihood == "bernoulli" and (low < 0 or high > 1):
            negative = "Negative values in data passed to AEVB: " if low < 0 else ""
            raise ValueError(
                f"{negative}likelihood='bernoulli' needs X in [0, 1]; got values in "
                f"[{low:.4g}, {high:.4g}]. Scale X (e.g. MinMaxScaler) or use "
                "likelihood='gaussian'."
            )

    def _check_latent(self, Z):
        from sklearn.utils import check_array

        Z = check_array(Z, dtype=[np.float64, np.float32], order="C")
        J = self._architecture["n_components"]
        if Z.shape[1] != J:
            raise ValueError(f"Z has {Z.shape[1]} features, but AEVB expects {J} (n_components)")
        return Z

    def _finite(self, out, method):
        """out, unless a value is not finite: where the model overflows its precision, that is an error,
        not a silent infinity or NaN."""
        if not np.all(np.isfinite(out)):
            raise FloatingPointError(
                f"AEVB.{method}: {np.count_nonzero(~np.isfinite(out))} of {out.size} values overflow "
                f"{self._params.dtype.name}{self._overflow_causes()}"
            )
        return out

    def _overflow_causes(self):
        largest = float(np.max(np.abs(self._params))) if self._params.size else 0.0
        return (
            f" (the model's largest |weight| is {largest:.3g}). A model that diverged in training "
            "(lower learning_rate_init or scale X), or inputs far outside what it was fitted on, do this."
        )

    def _score(self, X, n_importance):
        return _core.score(
            self._layout(), self._params, X, n_importance, self._seed, self._n_threads()
        )

    def _n_threads(self):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        if self.n_jobs is None:
            return cores
        if self.n_jobs < 0:
            return max(1, cores + 1 + self.n_jobs)
        if self.n_jobs == 0 or self.n_jobs > _INT32_MAX:
            raise ValueError(
                "n_jobs must be None, a negative count (-1: every core) or a positive one up to "
                f"2**31 - 1; got {self.n_jobs}"
            )
        return int(self.n_jobs)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.positive_only = self.likelihood == "bernoulli"
        return tags
