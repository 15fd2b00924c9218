"""Plots draw the model's own numbers: each test reads the data back out of the matplotlib artists.

Decoder outputs (manifold, reconstructions, samples) are compared to 1e-6 (a few float32 ulps): the
core's Bernoulli decoder varies by an ulp from call to call, so two calls are not bit-identical.
"""

import sys

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display needed

import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy.special import ndtri
from sklearn.datasets import load_digits

from aevb import AEVB, plotting

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400] / 16.0, y[:400]


@pytest.fixture(scope="module")
def model(digits):
    X, _ = digits
    return AEVB(
        n_components=2,
        hidden_layer_sizes=(16,),
        max_iter=4,
        early_stopping=True,
        random_state=0,
        n_jobs=1,
    ).fit(X)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_training_curve_plots_the_negated_loss_and_the_validation_bound(model):
    ax = plotting.plot_training_curve(model)
    train, validation = ax.get_lines()
    np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_array_equal(train.get_ydata(), -np.array(model.loss_curve_))
    np.testing.assert_array_equal(validation.get_ydata(), model.validation_scores_)
    assert ax.get_xlabel() == "epoch"


def test_training_curve_draws_into_a_given_axes(digits):
    X, _ = digits
    m = AEVB(n_components=2, hidden_layer_sizes=(16,), max_iter=3, random_state=0, n_jobs=1).fit(X)
    _, (left, right) = plt.subplots(1, 2)
    assert plotting.plot_training_curve(m, ax=right) is right
    assert len(right.get_lines()) == 1 and not left.get_lines()  # no validation without early stop


def test_latent_scatter_places_each_row_at_its_posterior_mean(model, digits):
    X, y = digits
    ax = plotting.plot_latent_scatter(model, X, y)
    points = ax.collections[0]
    np.testing.assert_allclose(points.get_offsets(), model.transform(X)[:, :2])
    np.testing.assert_array_equal(points.get_array(), y)  # the labels 0..9 are their own codes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [str(d) for d in range(10)]


def test_latent_scatter_without_labels_and_with_string_labels(model, digits):
    X, y = digits
    ax = plotting.plot_latent_scatter(model, X)
    assert ax.get_legend() is None and len(ax.collections[0].get_offsets()) == len(X)
    names = np.array(["even", "odd"])[y % 2]
    ax = plotting.plot_latent_scatter(model, X, names)
    np.testing.assert_array_equal(ax.collections[0].get_array(), y % 2)
    with pytest.raises(ValueError, match="shape"):
        plotting.plot_latent_scatter(model, X, y[:-1])


def test_manifold_tiles_the_decoder_means_over_the_normal_quantile_grid(model):
    n = 5
    ax = plotting.plot_manifold(model, n=n)
    image = np.ma.getdata(ax.images[0].get_array())
    assert image.shape == (5 * 9 - 1, 5 * 9 - 1)  # 8x8 digits, one blank pixel between them
    z = ndtri((np.arange(n) + 0.5) / n)
    for row in range(n):
        for col in range(n):
            # Top-left is the smallest z1 and the largest z2.
            expected = model.inverse_transform([[z[col], z[n - 1 - row]]]).reshape(8, 8)
            tile = image[row * 9 : row * 9 + 8, col * 9 : col * 9 + 8]
            np.testing.assert_allclose(tile, expected, rtol=1e-6)
    assert np.isnan(image[8::9, :]).all() and np.isnan(image[:, 8::9]).all()


def test_manifold_without_scipy_uses_the_standard_library(model, monkeypatch):
    expected = plotting.plot_manifold(model, n=4).images[0].get_array()
    monkeypatch.setitem(sys.modules, "scipy.special", None)  # import fails
    p = (np.arange(9) + 0.5) / 9
    np.testing.assert_allclose(plotting._normal_quantiles(p), ndtri(p), rtol=1e-12)
    np.testing.assert_allclose(
        plotting.plot_manifold(model, n=4).images[0].get_array(), expected, rtol=1e-6
    )


def test_manifold_needs_two_latents_and_a_known_image_shape(digits, model):
    X, _ = digits
    three = AEVB(n_components=3, hidden_layer_sizes=(16,), max_iter=2, random_state=0, n_jobs=1)
    with pytest.raises(ValueError, match="n_components == 2"):
        plotting.plot_manifold(three.fit(X))
    wide = AEVB(n_components=2, hidden_layer_sizes=(16,), max_iter=2, random_state=0, n_jobs=1)
    wide.fit(X[:, :60])
    with pytest.raises(ValueError, match="image_shape"):
        plotting.plot_manifold(wide)
    ax = plotting.plot_manifold(wide, n=3, image_shape=(6, 10))
    assert ax.images[0].get_array().shape == (3 * 7 - 1, 3 * 11 - 1)


def test_reconstructions_show_rows_over_their_reconstructions(model, digits):
    X, _ = digits
    fig = plotting.plot_reconstructions(model, X, n=4)
    assert len(fig.axes) == 8
    recon = model.inverse_transform(model.transform(X[:4]))
    for i in range(4):
        np.testing.assert_array_equal(fig.axes[i].images[0].get_array(), X[i].reshape(8, 8))
        reconstruction = fig.axes[4 + i].images[0].get_array()
        np.testing.assert_allclose(reconstruction, recon[i].reshape(8, 8), rtol=1e-6)
        assert fig.axes[4 + i].images[0].get_clim() == (X[:4].min(), X[:4].max())


def test_samples_are_the_models_draws(model):
    fig = plotting.plot_samples(model, n=5, random_state=3)
    image = np.ma.getdata(fig.axes[0].images[0].get_array())
    samples = model.sample(5, random_state=3, noise=False).reshape(5, 8, 8)
    assert image.shape == (2 * 9 - 1, 3 * 9 - 1)  # 3 columns, 2 rows
    for i in range(5):
        r, c = divmod(i, 3)
        tile = image[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8]
        np.testing.assert_allclose(tile, samples[i], rtol=1e-6)
    assert np.isnan(image[9:, 18:]).all()  # the sixth cell is empty
    binary = plotting.plot_samples(model, n=4, random_state=3, noise=True)
    values = np.ma.getdata(binary.axes[0].images[0].get_array())
    assert set(np.unique(values[~np.isnan(values)])) == {0.0, 1.0}


def test_a_missing_matplotlib_names_the_extra(model, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install aevb\[plot\]"):
        plotting.plot_samples(model)
