"""The ``aevb`` command: fit, transform, sample, score and inspect models, and a demo.

User mistakes (a missing file, a bad option, data of the wrong shape, a corrupt model file) end with
one line on stderr, ``aevb: error: ...``, and exit status 1 (2 for a bad command line); never with a
traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

_DESCRIPTION = (
    "Auto-Encoding Variational Bayes (Kingma & Welling, 2013): fit a variational auto-encoder, "
    "embed, generate and score data. DATA is a .npy, .npz, CSV or IDX (MNIST-style) file, "
    "gzipped or not; MODEL is a file written by 'aevb fit'."
)


def _int_tuple(text):
    if text.strip().lower() in ("", "none", "()"):
        return ()
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected widths such as 500 or 500,200; got {text!r}"
        ) from None
    return sizes


# (option, estimator parameter, argparse keywords): the estimator's parameters on the command line.
# Only options given are passed on, so the estimator's own defaults apply to the rest.
_FIT_OPTIONS = [
    ("--n-components", "n_components", {"type": int, "help": "latent dimension J (default 10)"}),
    (
        "--hidden-layer-sizes",
        "hidden_layer_sizes",
        {
            "type": _int_tuple,
            "metavar": "N[,N...]",
            "help": "encoder hidden widths, e.g. 500 or 500,200; 'none' for linear (default 500)",
        },
    ),
    ("--activation", "activation", {"choices": ["tanh", "relu", "softplus", "sigmoid"]}),
    (
        "--likelihood",
        "likelihood",
        {"choices": ["bernoulli", "gaussian"], "help": "p(x|z); bernoulli needs data in [0, 1]"},
    ),
    (
        "--kl",
        "kl",
        {"choices": ["analytic", "sampled"], "help": "estimator B (eq. 7) or A (eq. 6)"},
    ),
    ("--n-mc-samples", "n_mc_samples", {"type": int, "help": "L, draws of z per datapoint"}),
    ("--n-importance", "n_importance", {"type": int, "help": "train on the K-sample IWAE bound"}),
    ("--beta", "beta", {"type": float, "help": "weight of the KL term (beta-VAE)"}),
    ("--kl-warmup", "kl_warmup", {"type": int, "help": "epochs of linear KL annealing"}),
    ("--algorithm", "algorithm", {"choices": ["aevb", "wake-sleep"]}),
    ("--batch-size", "batch_size", {"type": int, "help": "M, the minibatch size (default 100)"}),
    ("--solver", "solver", {"choices": ["adam", "adagrad", "sgd"]}),
    ("--learning-rate-init", "learning_rate_init", {"type": float, "help": "step size"}),
    ("--alpha", "alpha", {"type": float, "help": "precision of a N(0, 1/alpha) weight prior"}),
    ("--max-iter", "max_iter", {"type": int, "help": "maximum epochs (default 200)"}),
    ("--tol", "tol", {"type": float, "help": "improvement needed to go on, in nats"}),
    ("--n-iter-no-change", "n_iter_no_change", {"type": int}),
    (
        "--early-stopping",
        "early_stopping",
        {"action": "store_const", "const": True, "help": "stop on a held-out bound, keep the best"},
    ),
    ("--validation-fraction", "validation_fraction", {"type": float}),
    ("--no-shuffle", "shuffle", {"action": "store_const", "const": False}),
    ("--random-state", "random_state", {"type": int, "metavar": "SEED"}),
    ("--verbose", "verbose", {"type": int, "help": "1 (the default here): one line per epoch"}),
    ("--n-jobs", "n_jobs", {"type": int, "help": "threads (default: all cores)"}),
    ("--dtype", "dtype", {"choices": ["float32", "float64"], "help": "compute precision"}),
    ("--beta-1", "beta_1", {"type": float}),
    ("--beta-2", "beta_2", {"type": float}),
    ("--epsilon", "epsilon", {"type": float}),
    ("--momentum", "momentum", {"type": float}),
    ("--no-nesterovs-momentum", "nesterovs_momentum", {"action": "store_const", "const": False}),
]


class _UsageError(Exception):
    """A bad command line; argparse would otherwise print its usage and exit."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def main(argv=None):
    """Run the ``aevb`` command.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 1 for a failed command, 2 for a bad command line, 130 if interrupted.
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        return _fail(exc, status=2)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return args.run(args) or 0
        except (ValueError, OSError, FloatingPointError) as exc:
            return _fail(exc)
        except MemoryError as exc:  # numpy names the size; the core's std::bad_alloc does not
            return _fail(f"out of memory: {exc}" if str(exc) else "out of memory")
        except KeyboardInterrupt:
            return _fail("interrupted", status=130)


def _fail(message, status=1):
    text = " ".join(str(message).split())  # one line, whatever the exception said
    if isinstance(message, FileNotFoundError) and message.filename:
        text = f"no such file: {message.filename}"
    print(f"aevb: error: {text}", file=sys.stderr)
    return status


def _show_warning(message, category, filename, lineno, file=None, line=None):
    text = " ".join(str(message).split())
    print(f"aevb: warning: {text}", file=sys.stderr)


# --------------------------------------------------------------------------- the parser


def _build_parser():
    from aevb import __version__

    parser = _Parser(prog="aevb", description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"aevb {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "demo",
        help="fit scikit-learn's digits, print the bound per epoch, write "
        "figures, the model and a summary",
    )
    p.add_argument("--out", default="aevb-demo", metavar="DIR", help="default: aevb-demo/")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--n-components", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--n-jobs",
        type=int,
        default=1,
        help="threads (default 1: for models this small, more threads are slower)",
    )
    p.set_defaults(run=_demo)

    p = sub.add_parser("fit", help="fit a model to DATA and save it")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--out", required=True, metavar="MODEL", help="model file to write")
    _data_options(p)
    group = p.add_argument_group("estimator parameters (see help(aevb.AEVB))")
    for option, name, keywords in _FIT_OPTIONS:
        group.add_argument(option, dest=name, default=argparse.SUPPRESS, **keywords)
    p.set_defaults(run=_fit)

    p = sub.add_parser("transform", help="posterior means of DATA's rows (the embedding)")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--out", required=True, metavar="FILE", help=".npy or .csv")
    _data_options(p)
    p.set_defaults(run=_transform)

    p = sub.add_parser("sample", help="generate N rows from the model")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("n", metavar="N", type=int)
    p.add_argument("--out", required=True, metavar="FILE", help=".npy or .csv")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--mean",
        action="store_true",
        help="write the decoder means E[x|z] instead of draws x ~ p(x|z)",
    )
    p.set_defaults(run=_sample)

    p = sub.add_parser("score", help="lower bound on log p(x) per row of DATA, in nats")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("data", metavar="DATA")
    p.add_argument(
        "--n-importance",
        type=int,
        default=1,
        metavar="K",
        help="importance samples (1: the ELBO; 1000 or more: close to log p(x))",
    )
    p.add_argument("--out", metavar="FILE", help="write the per-row scores (.npy or .csv)")
    _data_options(p)
    p.set_defaults(run=_score)

    p = sub.add_parser("info", help="describe a model file")
    p.add_argument("model", metavar="MODEL")
    p.set_defaults(run=_info)
    return parser


def _data_options(p):
    group = p.add_argument_group("reading DATA")
    group.add_argument("--key", help="the array to read from a .npz file (default: the first)")
    group.add_argument(
        "--label-column", metavar="COLUMN", help="drop this column (index, or name in a CSV header)"
    )
    group.add_argument(
        "--no-scale",
        dest="scale",
        action="store_false",
        help="keep uint8 data (images) as 0..255 instead of dividing by 255",
    )


# --------------------------------------------------------------------------- commands


def _load_data(args):
    from aevb._data_io import load_data

    return load_data(args.data, key=args.key, label_column=args.label_column, scale=args.scale)


def _fit(args):
    from aevb import AEVB
    from aevb._data_io import check_writable
    from aevb._model_file import save_model

    check_writable(args.out)
    X = _load_data(args)
    model = AEVB(**_estimator_params(args))
    start = time.perf_counter()
    model.fit(X)
    seconds = time.perf_counter() - start
    save_model(model, args.out)
    print(
        f"aevb: fitted {X.shape[0]} rows x {X.shape[1]} features, {model.n_iter_} epochs in "
        f"{seconds:.1f} s, final bound {-model.loss_curve_[-1]:.2f} nats; saved {args.out}"
    )


def _estimator_params(args):
    """The estimator parameters given on the command line; verbose defaults to 1 here."""
    import numpy as np

    params = {name: getattr(args, name) for _, name, _ in _FIT_OPTIONS if hasattr(args, name)}
    params.setdefault("verbose", 1)
    if "dtype" in params:
        params["dtype"] = np.dtype(params["dtype"]).type
    return params


def _transform(args):
    from aevb._data_io import check_writable, save_array
    from aevb._model_file import load_model

    check_writable(args.out)
    model = load_model(args.model)
    Z = model.transform(_load_data(args))
    save_array(args.out, Z, header=[str(name) for name in model.get_feature_names_out()])
    print(f"aevb: wrote {Z.shape[0]} x {Z.shape[1]} posterior means to {args.out}")


def _sample(args):
    from aevb._data_io import check_writable, save_array
    from aevb._model_file import load_model

    check_writable(args.out)
    model = load_model(args.model)
    X = model.sample(args.n, random_state=args.seed, noise=not args.mean)
    save_array(args.out, X)
    print(f"aevb: wrote {X.shape[0]} samples of {X.shape[1]} features to {args.out}")


def _score(args):
    import numpy as np

    from aevb._data_io import check_writable, save_array
    from aevb._model_file import load_model

    if args.out is not None:
        check_writable(args.out)
    model = load_model(args.model)
    scores = model.score_samples(_load_data(args), n_importance=args.n_importance)
    if args.out is not None:
        save_array(args.out, scores, header=["score"])
    bound = (
        "ELBO" if args.n_importance == 1 else f"importance-weighted bound, K={args.n_importance}"
    )
    print(f"mean {np.mean(scores):.6f} nats per row over {scores.size} rows ({bound})")


def _info(args):
    from aevb._model_file import load_model, read_model_header

    header = read_model_header(args.model)
    model = load_model(args.model)
    a = model._architecture
    widths = " -> ".join(str(w) for w in [a["n_features"], *a["hidden"], a["n_components"]])
    lines = [
        (
            f"file: {args.model} ({header['file_size']} bytes), model format version "
            f"{header['format_version']}, written by aevb {header['aevb_version']}"
        ),
        (
            f"architecture: encoder {widths}, decoder mirrored; {a['activation']} hidden units, "
            f"{a['likelihood']} likelihood"
        ),
        f"parameters: {model._params.size} ({model._params.dtype})",
        f"training: {model.n_iter_} epochs, {model.t_} steps",
    ]
    if model.loss_curve_:
        lines.append(f"last bound: {-model.loss_curve_[-1]:.4f} nats per datapoint (training)")
    if model.validation_scores_:
        lines.append(f"best validation bound: {model.best_validation_score_:.4f} nats")
    params = model.get_params(deep=False)
    lines.append("params: " + ", ".join(f"{k}={_show(v)}" for k, v in sorted(params.items())))
    print("\n".join(lines))


def _show(value):
    import numpy as np

    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value).name
    return repr(value)


def _demo(args):
    from aevb._demo import run_demo

    run_demo(
        args.out,
        epochs=args.epochs,
        n_components=args.n_components,
        seed=args.seed,
        n_jobs=args.n_jobs,
    )
