"""Embed scikit-learn's handwritten digits in two dimensions and plot the codes.

    python examples/embed_digits.py [OUTPUT.png]

Fits a variational auto-encoder with 2 latents to 75% of the digits, reports the test bound and how
well the 2-D codes separate the classes (5-nearest-neighbour accuracy; chance is 0.1), and writes a
scatter of the test digits' posterior means coloured by class (default: a temporary directory).
"""

import os
import sys
import tempfile
import warnings

import matplotlib

matplotlib.use("Agg")  # writes a file; no display needed

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from aevb import AEVB
from aevb.plotting import plot_latent_scatter


def main(path):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)
    # One thread: a model this small spends more time synchronising threads than computing.
    model = AEVB(
        n_components=2,
        hidden_layer_sizes=(64,),
        batch_size=50,
        learning_rate_init=3e-3,
        max_iter=100,
        random_state=0,
        n_jobs=1,
    )
    with warnings.catch_warnings():  # 100 epochs is a budget, not convergence
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train)

    Z_test = model.transform(X_test)  # posterior means, (n_test, 2)
    knn = KNeighborsClassifier(n_neighbors=5).fit(model.transform(X_train), y_train)
    print(f"embedding shape: {Z_test.shape}")
    print(f"test bound: {model.score(X_test):.2f} nats per digit")
    print(f"5-NN accuracy on the 2-D codes: {knn.score(Z_test, y_test):.3f}")

    ax = plot_latent_scatter(model, X_test, y_test)
    ax.set_title("digits: posterior means of a 2-D AEVB")
    ax.figure.savefig(path, dpi=120, bbox_inches="tight")
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.mkdtemp(), "digits_2d.png"))
