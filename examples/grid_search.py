"""Choose the latent size and hidden width by cross-validated log-likelihood bound.

    python examples/grid_search.py

AEVB is a scikit-learn estimator whose ``score`` is the mean bound on log p(x) (higher is better),
so ``GridSearchCV`` selects by held-out likelihood with no scorer to write. A ``MinMaxScaler`` in
front maps the raw pixels (0..16) to [0, 1] for the Bernoulli likelihood; ``clip=True`` keeps the
validation folds inside [0, 1] too, where a pixel may exceed the training fold's maximum.
"""

import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from aevb import AEVB


def main():
    X_train, X_test = train_test_split(load_digits().data, test_size=0.25, random_state=0)
    pipeline = Pipeline(
        [
            ("scale", MinMaxScaler(clip=True)),
            ("aevb", AEVB(max_iter=15, random_state=0, n_jobs=1)),  # small: one thread is fastest
        ]
    )
    grid = {"aevb__n_components": [2, 8], "aevb__hidden_layer_sizes": [(32,), (128,)]}
    search = GridSearchCV(pipeline, grid, cv=3)
    with warnings.catch_warnings():  # 15 epochs per fit is a budget, not convergence
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X_train)

    results = search.cv_results_
    print("n_components  hidden  mean CV bound (nats)")
    for params, score in zip(results["params"], results["mean_test_score"]):
        hidden = params["aevb__hidden_layer_sizes"]
        print(f"{params['aevb__n_components']:>12}  {hidden[0]:>6}  {score:.2f}")
    print(f"best: {search.best_params_}, CV bound {search.best_score_:.2f} nats")
    print(f"test bound of the refitted best pipeline: {search.score(X_test):.2f} nats")


if __name__ == "__main__":
    main()
