"""scikit-learn's estimator contract: the common-check suite over both likelihoods."""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import check_estimator, parametrize_with_checks

from aevb import AEVB

RANGE_ERROR = "needs X in [0, 1]"


def _small(likelihood):
    return AEVB(
        n_components=2, hidden_layer_sizes=(8,), max_iter=5, likelihood=likelihood, random_state=0
    )


# The common checks feed Gaussian blobs and uniform data on [0, 3] and beyond; the Bernoulli likelihood
# rejects X outside [0, 1] by design, so these checks cannot pass for it. The Gaussian instance runs them
# all, and test_bernoulli_failures_are_only_the_range_check proves nothing else goes wrong.
BERNOULLI_RANGE_CHECKS = [
    "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self",
    "check_readonly_memmap_input",
    "check_n_features_in_after_fitting",
    "check_estimators_dtypes",
    "check_pipeline_consistency",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_transformer_data_not_an_array",
    "check_transformer_general",
    "check_transformer_preserve_dtypes",
    "check_transformer_n_iter",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_fit2d_1sample",
    "check_fit2d_1feature",
    "check_dict_unchanged",
    "check_fit_idempotent",
    "check_fit_check_is_fitted",
    "check_n_features_in",
    "check_fit2d_predict1d",
    "check_array_api_input",
]
REASON = "the check's data lie outside [0, 1], which likelihood='bernoulli' rejects (ValueError)"


def _expected_failures(estimator):
    if estimator.likelihood == "bernoulli":
        return {name: REASON for name in BERNOULLI_RANGE_CHECKS}
    return {}


@parametrize_with_checks(
    [_small("gaussian"), _small("bernoulli")], expected_failed_checks=_expected_failures
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _check_names(estimator):
    return [r["check_name"] for r in check_estimator(estimator, on_fail=None)]


# Checks this suite must keep running: if scikit-learn stops yielding one, we want to know.
CORE_CHECKS = {
    "check_estimators_dtypes",
    "check_estimators_pickle",
    "check_estimators_nan_inf",
    "check_estimators_empty_data_messages",
    "check_transformer_general",
    "check_transformer_preserve_dtypes",
    "check_methods_subset_invariance",
    "check_methods_sample_order_invariance",
    "check_fit_idempotent",
    "check_n_features_in",
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_get_params_invariance",
    "check_set_params",
    "check_parameters_default_constructible",
    "check_no_attributes_set_in_init",
    "check_fit2d_1sample",
    "check_fit2d_1feature",
    "check_readonly_memmap_input",
    "check_complex_data",
    "check_dtype_object",
    "check_fit_check_is_fitted",
    "check_transformers_unfitted",
    "check_fit1d",
    "check_array_api_input",
    "check_positive_only_tag_during_fit",
    "check_fit_non_negative",
}


def test_checks_do_not_silently_disappear():
    gaussian, bernoulli = _check_names(_small("gaussian")), _check_names(_small("bernoulli"))
    assert len(gaussian) >= 47 and len(bernoulli) >= 48
    assert CORE_CHECKS - {"check_fit_non_negative"} <= set(gaussian)
    assert CORE_CHECKS <= set(bernoulli)


def test_bernoulli_failures_are_only_the_range_check():
    results = check_estimator(_small("bernoulli"), on_fail=None)
    failed = {r["check_name"]: str(r["exception"]) for r in results if r["status"] == "failed"}
    assert set(failed) == set(BERNOULLI_RANGE_CHECKS)
    for name, message in failed.items():
        assert RANGE_ERROR in message, (name, message)
    assert not [r for r in results if r["status"] == "skipped"]


def test_gaussian_passes_everything_without_skips():
    results = check_estimator(_small("gaussian"), on_fail=None)
    assert {r["status"] for r in results} == {"passed"}, [
        (r["check_name"], r["status"]) for r in results if r["status"] != "passed"
    ]


def test_bernoulli_passes_the_checks_on_data_in_range():
    # What the range-bound checks exercise, on data the Bernoulli likelihood accepts.
    X = np.random.default_rng(0).uniform(size=(30, 5))
    model = _small("bernoulli").fit(X)
    assert model.transform(X).shape == (30, 2)
    assert model.transform(X.astype(np.float32)).dtype == np.float32
    np.testing.assert_array_equal(model.score_samples(X[::-1]), model.score_samples(X)[::-1])
    np.testing.assert_array_equal(model.score_samples(X[:7]), model.score_samples(X)[:7])
    with pytest.raises(ValueError, match=r"needs X in \[0, 1\]"):
        model.transform(X * 2)
