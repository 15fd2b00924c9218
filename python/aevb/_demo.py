"""``aevb demo``: fit the digits that ship with scikit-learn and write what a new user wants to see.

The bound per epoch goes to stdout; the directory receives the model file, ``summary.txt`` (the
split, the test bound, the K=1000 log-likelihood estimate, the fit time) and, with matplotlib, five
figures.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

SUMMARY_SPLIT = "train_test_split(digits / 16, test_size=0.2, random_state=SEED)"


def run_demo(out, epochs=30, n_components=10, seed=0, n_jobs=1):
    """Fit, report, and write the model, a summary and the figures to ``out``.

    Parameters
    ----------
    out : str or os.PathLike
        Directory, created if needed.
    epochs : int
        Epochs, all run (no early stop), so the timing and the curve are comparable between runs.
    n_components : int
        Latent size of the main model. The latent map and manifold come from a second model with
        2 latents and the same settings, as a 2-D picture of a 10-D code would show little.
    seed : int
        Seeds the split and both models.
    n_jobs : int
        Threads; for models this small, one is fastest.
    """
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from aevb import AEVB
    from aevb._model_file import save_model

    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    X, y = load_digits(return_X_y=True)
    X_train, X_test, _, y_test = train_test_split(X / 16.0, y, test_size=0.2, random_state=seed)
    settings = {
        "hidden_layer_sizes": (256,),
        "max_iter": epochs,
        "tol": 0.0,
        "n_iter_no_change": epochs,
        "random_state": seed,
        "n_jobs": n_jobs,
    }
    model = AEVB(n_components=n_components, verbose=1, **settings)
    start = time.perf_counter()
    with warnings.catch_warnings():  # a fixed number of epochs, by design
        warnings.simplefilter("ignore", category=UserWarning)
        model.fit(X_train)
    seconds = time.perf_counter() - start
    bound = model.score(X_test)
    loglik = model.score(X_test, n_importance=1000)
    print(f"[AEVB] digits: {len(X_train)} train / {len(X_test)} test rows, 64 pixels in [0, 1]")
    print(f"[AEVB] test bound (ELBO):           {bound:.2f} nats")
    print(f"[AEVB] test log-likelihood, K=1000: {loglik:.2f} nats")
    print(f"[AEVB] fit time {seconds:.1f} s; embedding shape {np.shape(model.transform(X_test))}")

    save_model(model, os.path.join(out, "model.aevb"))
    with open(os.path.join(out, "summary.txt"), "w", encoding="utf-8") as f:
        f.write(
            f"# aevb demo: model.aevb on {SUMMARY_SPLIT.replace('SEED', str(seed))}\n"
            f"train_rows: {len(X_train)}\ntest_rows: {len(X_test)}\n"
            f"epochs: {model.n_iter_}\nn_components: {n_components}\nseed: {seed}\n"
            f"test_bound_nats: {bound:.6f}\ntest_loglik_k1000_nats: {loglik:.6f}\n"
            f"fit_seconds: {seconds:.3f}\n"
        )
    written = ["model.aevb", "summary.txt"]
    try:
        written += _figures(out, model, X_train, X_test, y_test, settings)
    except ImportError:
        print("aevb: matplotlib is not installed; skipping the figures (pip install aevb[plot])")
    print(f"[AEVB] wrote {', '.join(written)} to {out}{os.sep}")


def _figures(out, model, X_train, X_test, y_test, settings):
    """The demo's PNGs; a second model with 2 latents draws the latent map and the manifold."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")  # files only; a session that already chose a backend keeps it
    import matplotlib.pyplot as plt

    from aevb import AEVB, plotting

    def save(fig, name):
        fig.savefig(os.path.join(out, name), dpi=100, bbox_inches="tight")
        plt.close(fig)
        return name

    names = [
        save(plotting.plot_training_curve(model).figure, "training_curve.png"),
        save(plotting.plot_reconstructions(model, X_test, n=10), "reconstructions.png"),
        save(plotting.plot_samples(model, n=64, random_state=0), "samples.png"),
    ]
    print("[AEVB] fitting a second model with 2 latents for the latent map")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        model_2d = AEVB(n_components=2, **settings).fit(X_train)
    scatter = plotting.plot_latent_scatter(model_2d, X_test, y_test)
    names.append(save(scatter.figure, "latent_map.png"))
    names.append(save(plotting.plot_manifold(model_2d, n=15).figure, "manifold.png"))
    return names
