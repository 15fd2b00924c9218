"""Command line: ``python -m aevb demo`` fits the digits shipped with scikit-learn and reports the bound."""

import argparse
import sys
import time
import warnings


def demo(args):
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from aevb import AEVB

    X, y = load_digits(return_X_y=True)
    X_train, X_test = train_test_split(X / 16.0, test_size=0.2, random_state=args.seed)
    model = AEVB(n_components=args.n_components, hidden_layer_sizes=(256,), max_iter=args.epochs,
                 tol=0.0, n_iter_no_change=args.epochs, verbose=1, random_state=args.seed)
    start = time.perf_counter()
    with warnings.catch_warnings():  # a fixed number of epochs, by design
        warnings.simplefilter("ignore", category=UserWarning)
        model.fit(X_train)
    seconds = time.perf_counter() - start
    print(f"[AEVB] digits: {X_train.shape[0]} train / {X_test.shape[0]} test rows, 64 pixels in [0, 1]")
    print(f"[AEVB] test bound (ELBO):           {model.score(X_test):.2f} nats")
    print(f"[AEVB] test log-likelihood, K=1000: {model.score(X_test, n_importance=1000):.2f} nats")
    print(f"[AEVB] fit time {seconds:.1f} s; embedding shape {np.shape(model.transform(X_test))}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="aevb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="fit scikit-learn's digits and print the bound per epoch")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--n-components", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=demo)
    args = parser.parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
