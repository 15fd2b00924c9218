"""Flag unusual rows by their log-likelihood under a model fitted to normal ones.

    python examples/anomaly_scores.py

Fits a variational auto-encoder to handwritten digits, then scores held-out digits and two kinds of
anomaly with ``score_samples`` (a lower bound on log p(x) per row, here importance-weighted with 20
samples): uniform noise images, and digits whose pixels were shuffled (the same brightness, no
stroke). Prints each group's ROC AUC (1.0: every anomaly scores below every digit) and the share
flagged by a threshold at the 1st percentile of the training scores.
"""

import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from aevb import AEVB


def main():
    rng = np.random.default_rng(0)
    X = load_digits().data / 16.0
    X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
    # One thread: a model this small spends more time synchronising threads than computing.
    model = AEVB(n_components=8, hidden_layer_sizes=(128,), max_iter=40, random_state=0, n_jobs=1)
    with warnings.catch_warnings():  # 40 epochs is a budget, not convergence
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train)

    anomalies = {
        "uniform noise": rng.random((100, X.shape[1])),
        "shuffled pixels": rng.permuted(X_test[:100], axis=1),
    }
    normal = model.score_samples(X_test, n_importance=20)
    threshold = np.percentile(model.score_samples(X_train, n_importance=20), 1)
    print(
        f"held-out digits: mean score {normal.mean():.2f} nats, "
        f"{np.mean(normal < threshold):.1%} flagged"
    )
    for name, rows in anomalies.items():
        scores = model.score_samples(rows, n_importance=20)
        # Anomalies are the positive class; a lower log-likelihood means more anomalous.
        labels = np.r_[np.zeros(normal.size), np.ones(scores.size)]
        auc = roc_auc_score(labels, -np.r_[normal, scores])
        print(
            f"{name}: mean score {scores.mean():.2f} nats, {np.mean(scores < threshold):.1%} "
            f"flagged, ROC AUC {auc:.3f}"
        )


if __name__ == "__main__":
    main()
