"""Speed: aevb against the same VAE written in PyTorch, on this CPU, in one run.

The workload is the paper's MNIST setting on real Fashion-MNIST (60,000 training images, binarized at 0.5):
784 -> 500 tanh -> 20 latents -> 500 tanh -> 784 Bernoulli logits, analytic KL, L = 1, M = 100, Adam,
float32, all cores. Every figure is the median of several repeats with the range beside it, and the two
sides alternate repeat by repeat so that a noisy neighbour hurts both alike. Achieved GFLOP/s count the
matrix products only (2 n_in n_out per layer and datapoint forward; backward the same again for the weight
gradients and for every input gradient except the data's), and are set against the machine's float32 GEMM
rate measured in the same run.

    python bench/speed.py                    # the full comparison (about 15 minutes), writes bench/RESULTS.md
    python bench/speed.py --quick            # a smoke run on less data (a minute or two)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from datasets import binarize, load_fashion_mnist
from machine import machine

D, J = 784, 20

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError:  # pragma: no cover - the message is the point
    sys.exit("bench/speed.py compares against PyTorch: pip install torch==2.13.0")

import aevb
from aevb import AEVB
from aevb._native import core

# ---------------------------------------------------------------- the FLOP count


def train_flops(hidden):
    """Matrix-product FLOPs per datapoint of one training step (forward + backward)."""
    enc = [D, hidden, 2 * J]
    dec = [J, hidden, D]
    forward = sum(2 * a * b for net in (enc, dec) for a, b in zip(net, net[1:]))
    weight_grads = forward
    input_grads = forward - 2 * D * hidden  # no gradient with respect to the data
    return forward + weight_grads + input_grads


def encoder_flops(hidden):
    return 2 * (D * hidden + hidden * 2 * J)


def decoder_flops(hidden):
    return 2 * (J * hidden + hidden * D)


# ------------------------------------------------------------ the PyTorch side


class TorchVAE(nn.Module):
    """The same model as a PyTorch user writes it (nn.Linear, randn_like, BCE with logits, Adam)."""

    def __init__(self, hidden):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(D, hidden), nn.Tanh(), nn.Linear(hidden, 2 * J))
        self.dec = nn.Sequential(nn.Linear(J, hidden), nn.Tanh(), nn.Linear(hidden, D))

    def encode(self, x):
        mu, logvar = self.enc(x).chunk(2, dim=-1)
        return mu, logvar.clamp(*core.log_variance_range)

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        rec = F.binary_cross_entropy_with_logits(self.dec(z), x, reduction="sum")
        kl = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum()
        return (rec + kl) / len(x)

    @torch.no_grad()
    def log_likelihood(self, x, k, rows_per_chunk=8):
        """Batched importance-weighted bound log (1/K) sum_k p(x, z_k) / q(z_k|x), per row."""
        out = []
        for xs in x.split(rows_per_chunk):
            mu, logvar = self.encode(xs)
            std = torch.exp(0.5 * logvar)
            eps = torch.randn(k, *mu.shape)
            z = mu + std * eps  # (K, rows, J)
            logits = self.dec(z)
            loglik = -F.binary_cross_entropy_with_logits(
                logits, xs.expand_as(logits), reduction="none"
            ).sum(-1)
            log_prior_ratio = 0.5 * (logvar + eps.square() - z.square()).sum(-1)
            out.append(torch.logsumexp(loglik + log_prior_ratio, 0) - np.log(k))
        return torch.cat(out)


def torch_epoch(vae, opt, data, batch):
    start = time.perf_counter()
    for idx in torch.randperm(len(data)).split(batch):
        loss = vae(data[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start


# ------------------------------------------------------------------ measuring


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def summary(seconds, work):
    """Median rate (work per second) and its range over the repeats."""
    rates = sorted(work / s for s in seconds)
    return {"median": statistics.median(rates), "min": rates[0], "max": rates[-1], "n": len(rates)}


def gemm_rates(threads, n=4096, repeats=5):
    """The machine's float32 GEMM rate, GFLOP/s: numpy (its BLAS) and torch.mm on n x n products.

    numpy runs in a child process without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which this workplace
    sets for old processors and which slow a current OpenBLAS, so that the reference is the best numpy
    can do here.
    """
    code = (
        "import numpy as np, time, threadpoolctl\n"
        f"threadpoolctl.threadpool_limits({threads})\n"
        f"a = np.random.default_rng(0).standard_normal(({n}, {n}), dtype=np.float32)\n"
        "a @ a\n"
        "best = 0.0\n"
        f"for _ in range({repeats}):\n"
        "    t = time.perf_counter(); a @ a; best = max(best, 1 / (time.perf_counter() - t))\n"
        f"print(2 * {n}**3 * best / 1e9)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True
    )
    numpy_rate = float(out.stdout.strip()) if out.returncode == 0 else float("nan")
    a = torch.randn(n, n)
    a @ a
    torch_rate = max(2 * n**3 / timed(lambda: a @ a) for _ in range(repeats)) / 1e9
    return {
        "numpy": numpy_rate,
        "torch": torch_rate,
        "eigen": core.eigen_gemm_gflops(n, threads),
        "peak": max(numpy_rate, torch_rate),
    }


def compare_training(X, threads, hidden, batch, repeats, round_trips=None):
    """Datapoints per second over whole epochs, both sides alternating, same data and threads. With a list
    `round_trips`, appends the threads' cache-line round trip (ns) measured before each of aevb's epochs."""
    torch.set_num_threads(threads)
    model = AEVB(
        n_components=J,
        hidden_layer_sizes=(hidden,),
        batch_size=batch,
        max_iter=1,
        tol=0,
        n_jobs=threads,
        random_state=0,
        warm_start=True,
    )
    vae = TorchVAE(hidden)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)
    data = torch.from_numpy(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)  # warm-up: allocation, first touch
        torch_epoch(vae, opt, data, batch)
        ours, theirs = [], []
        for _ in range(repeats):
            if round_trips is not None:
                ns = core.thread_round_trip_ns()  # NaN with one thread or processor: stored as null
                round_trips.append(ns if math.isfinite(ns) else None)
            ours.append(timed(lambda: model.fit(X)))
            theirs.append(timed(lambda: torch_epoch(vae, opt, data, batch)))
    return summary(ours, len(X)), summary(theirs, len(X))


def compare_transform(model, vae, X, repeats):
    ours, theirs = [], []
    data = torch.from_numpy(X)
    model.transform(X)
    with torch.no_grad():
        vae.encode(data)
        for _ in range(repeats):
            ours.append(timed(lambda: model.transform(X)))
            theirs.append(timed(lambda: vae.encode(data)))
    return summary(ours, len(X)), summary(theirs, len(X))


def compare_scoring(model, vae, X, k, repeats):
    ours, theirs = [], []
    data = torch.from_numpy(X)
    for _ in range(repeats):
        ours.append(timed(lambda: model.score_samples(X, n_importance=k)))
        theirs.append(timed(lambda: vae.log_likelihood(data, k)))
    return summary(ours, len(X)), summary(theirs, len(X))


def fit_memory(n_rows, threads):
    """Peak RSS while fitting one epoch on n_rows, against the RSS just before: in a child process.

    X is built in chunks so that making it leaves no transient peak, and the RSS before the fit is the
    current one (from /proc), so the difference is what fit itself allocates. The peak is VmHWM, which
    starts afresh at exec (ru_maxrss would carry over this large parent's peak through fork).
    """
    code = (
        "import os, numpy as np, warnings\n"
        "from aevb import AEVB\n"
        f"X = np.empty(({n_rows}, {D}), dtype=np.float32)\n"
        "rng = np.random.default_rng(0)\n"
        "for i in range(0, len(X), 1000):\n"
        "    X[i:i + 1000] = rng.random((len(X[i:i + 1000]), X.shape[1])) < 0.3\n"
        "rss = lambda: int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE')\n"
        "before = rss()\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('ignore')\n"
        f"    AEVB(n_components=20, hidden_layer_sizes=(500,), max_iter=1, random_state=0, "
        f"n_jobs={threads}).fit(X)\n"
        "status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
        "peak = int(status.split()[0]) * 1024\n"
        "print(before, peak, X.nbytes)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, peak, x_bytes = (int(v) for v in out.stdout.strip().splitlines()[-1].split())
    return {
        "rows": n_rows,
        "X_MiB": x_bytes / 2**20,
        "rss_before_fit_MiB": before / 2**20,
        "peak_rss_MiB": peak / 2**20,
        "fit_extra_MiB": (peak - before) / 2**20,
    }


# -------------------------------------------------------------------- reporting


def environment():
    return {
        **machine(),
        "aevb": aevb.__version__,
        "aevb_build": core.isa,
        "aevb_simd": core.simd,
        "aevb_flags": "-O3 -fno-math-errno -ffp-contract=off + the build's ISA flags; OpenMP",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "load_average_at_end": os.getloadavg(),
    }


def row(name, ours, theirs, flops_per_item, gemm):
    gflops = ours["median"] * flops_per_item / 1e9
    return {
        "measure": name,
        "aevb_per_s": ours,
        "torch_per_s": theirs,
        "ratio": ours["median"] / theirs["median"],
        "aevb_gflops": gflops,
        "torch_gflops": theirs["median"] * flops_per_item / 1e9,
        "percent_of_gemm_peak": 100 * gflops / gemm["peak"],
        "percent_of_eigen_gemm": 100 * gflops / gemm["eigen"],
    }


def markdown(results):
    m, peak = results["machine"], results["gemm"]["peak"]
    runs = kept_runs(results)
    lines = [
        "## Speed: aevb against PyTorch on this CPU",
        "",
        (
            f"Measured {results['date']} with `{results['command']}` in {results['seconds']:.0f} s. "
            f"Machine: {m['cpu']}, {m['cores']} cores; aevb {m['aevb']} ({m['aevb_build']} build: "
            f"{m['aevb_simd']}; {m['aevb_flags']}), PyTorch {m['torch']}, numpy {m['numpy']}, "
            f"Python {m['python']}, git {m['git']}. Load average at the end: "
            f"{', '.join(f'{v:.2f}' for v in m['load_average_at_end'])}."
        ),
        "",
        (
            f"float32 GEMM rate ({results['threads']} threads, 4096^2): numpy {results['gemm']['numpy']:.0f}"
            f" GFLOP/s, torch.mm {results['gemm']['torch']:.0f} GFLOP/s; the peak used below is the larger,"
            f" {peak:.0f} GFLOP/s. Eigen's product as aevb compiles and threads it (`eigen_gemm_gflops`):"
            f" {results['gemm']['eigen']:.0f} GFLOP/s, the last column."
        ),
        "",
        "Rates are medians over the repeats, with the range in brackets.",
        "",
        targets(results),
        "",
        (
            "The two sides alternate within a run, so ratios compare like with like; on a shared machine"
            " (this one is a virtual machine) absolute rates and the % of peak move with the load from"
            " run to run (the compute-bound GEMM peak moves least). Every full run is"
            " kept in bench/results/speed_*.json, with the commit it measured; the last three columns"
            " are % of that run's GEMM peak. The round trip is how long a cache line takes to go from"
            " one of the two threads to the other and back, measured before each of the main training"
            " figure's repeats (`thread_round_trip_ns`). On the machine of these results it is about"
            " 75-155 ns in the host's calm phases and 340-445 ns in its slow ones, where a training step,"
            " which passes every layer between its threads, slows by about a third:"
        ),
        "",
        *history(runs),
        "",
        tally(runs),
        "",
        "The last run in full:",
        "",
        "| measure | aevb | PyTorch | ratio | aevb GFLOP/s | % of GEMM peak | % of Eigen GEMM |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        a, t = r["aevb_per_s"], r["torch_per_s"]
        lines.append(
            f"| {r['measure']} | {a['median']:,.0f} [{a['min']:,.0f}-{a['max']:,.0f}] "
            f"| {t['median']:,.0f} [{t['min']:,.0f}-{t['max']:,.0f}] | {r['ratio']:.2f}x "
            f"| {r['aevb_gflops']:.0f} | {r['percent_of_gemm_peak']:.1f}% "
            f"| {r['percent_of_eigen_gemm']:.0f}% |"
        )
    mem = results["memory"]
    lines += [
        "",
        (
            f"Memory: fitting one epoch on {mem['rows']:,} rows of 784 float32 features (X is "
            f"{mem['X_MiB']:.0f} MiB) raised the peak RSS from {mem['rss_before_fit_MiB']:.0f} MiB to "
            f"{mem['peak_rss_MiB']:.0f} MiB: {mem['fit_extra_MiB']:.0f} MiB for the model, its optimizer "
            "state and buffers, and no copy of X (it is float32 already)."
        ),
        "",
    ]
    return "\n".join(lines)


def headline_rows(results):
    """The run's main training, transform and scoring rows."""
    rows = results["rows"]
    return (
        rows[0],
        next(r for r in rows if r["measure"].startswith("transform")),
        next(r for r in rows if r["measure"].startswith("score_samples")),
    )


# A round trip below this is a calm host phase; the slow phases measure 340-445 ns.
CALM_ROUND_TRIP_NS = 200


def kept_runs(results, directory=HERE / "results"):
    """The kept full runs (this one included), oldest first."""
    runs = [json.loads(p.read_text()) for p in sorted(directory.glob("speed_*.json"))]
    return runs if any(r["date"] == results["date"] for r in runs) else [*runs, results]


def round_trips(run):
    """The run's round trips (ns): recorded since 2026-11-24 10:00 UTC; null where not measurable."""
    return [t for t in run.get("round_trip_ns") or [] if t is not None]


def host_phase(run):
    """' in a calm host phase, round trip ...' (or a slow one), for the targets line; '' if not recorded."""
    if not (trips := round_trips(run)):
        return ""
    calm = max(trips) < CALM_ROUND_TRIP_NS
    return (
        f" in {'a calm host phase' if calm else 'a slow host phase in some repeat'},"
        f" round trip {min(trips):.0f}-{max(trips):.0f} ns"
    )


def tally(runs):
    """How often the main training figure met 75% of the GEMM peak, in the runs whose every round trip
    was calm and in those with a slow one."""
    calm, slow = [], []
    for r in runs:
        if trips := round_trips(r):
            percent = r["rows"][0]["percent_of_gemm_peak"]
            (calm if max(trips) < CALM_ROUND_TRIP_NS else slow).append(percent)

    def met(percents, which):
        if not percents:
            return f"no run {which}"
        return (
            f"{sum(p >= 75 for p in percents)} of the {len(percents)} runs {which}"
            f" ({min(percents):.1f}% to {max(percents):.1f}%)"
        )

    return (
        "Of the runs that recorded the round trip, training reached 75% of the GEMM peak in "
        + met(calm, f"whose every round trip was calm, below {CALM_ROUND_TRIP_NS} ns")
        + ", and in "
        + met(slow, "with a slower one")
        + "."
    )


def history(runs):
    """A table of the runs, oldest first."""
    lines = [
        "| run | git | GEMM peak | round trip | train datapoints/s | vs PyTorch | % of peak | transform | scoring |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        train, transform, scoring = headline_rows(r)
        trips = round_trips(r)
        trip = f"{min(trips):.0f}-{max(trips):.0f} ns" if trips else "-"
        lines.append(
            f"| {r['date']} | {r['machine']['git']} | {r['gemm']['peak']:.0f} GFLOP/s | {trip} "
            f"| {train['aevb_per_s']['median']:,.0f} "
            f"| {train['ratio']:.2f}x | {train['percent_of_gemm_peak']:.1f}% "
            f"| {transform['percent_of_gemm_peak']:.1f}% | {scoring['percent_of_gemm_peak']:.1f}% |"
        )
    return lines


def targets(results):
    """The speed issue's targets, each with its measured figure and whether it is met."""
    train, transform, scoring = headline_rows(results)
    mem = results["memory"]
    checks = [
        ("training >= 2x PyTorch", f"{train['ratio']:.2f}x", train["ratio"] >= 2),
        (
            "training >= 75% of the GEMM peak",
            f"{train['percent_of_gemm_peak']:.1f}% ({train['percent_of_eigen_gemm']:.1f}% of Eigen's)"
            + host_phase(results),
            train["percent_of_gemm_peak"] >= 75,
        ),
        (
            "transform >= 80% of the GEMM peak",
            f"{transform['percent_of_gemm_peak']:.1f}%",
            transform["percent_of_gemm_peak"] >= 80,
        ),
        (
            "scoring >= 75% of the GEMM peak and >= 1.5x PyTorch",
            f"{scoring['percent_of_gemm_peak']:.1f}%, {scoring['ratio']:.2f}x",
            scoring["percent_of_gemm_peak"] >= 75 and scoring["ratio"] >= 1.5,
        ),
        (
            "fit holds no copy of X",
            f"{mem['fit_extra_MiB']:.0f} MiB beyond X ({mem['X_MiB']:.0f} MiB)",
            mem["fit_extra_MiB"] < mem["X_MiB"],
        ),
    ]
    return (
        "Targets: "
        + "; ".join(
            f"{name}: {figure}, {'met' if ok else 'NOT met'}" for name, figure, ok in checks
        )
        + "."
    )


def write_section(path, text, heading="## Speed"):
    """Replace this script's section of RESULTS.md (from its heading to the next '## '), or append it."""
    old = path.read_text() if path.exists() else "# Results\n"
    start = old.find(heading)
    if start < 0:
        path.write_text(old.rstrip() + "\n\n" + text)
        return
    end = old.find("\n## ", start + 1)
    path.write_text(
        old[:start] + text.rstrip("\n") + "\n" + ("" if end < 0 else "\n" + old[end + 1 :])
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run on 6,000 rows")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, help="default: bench/results (bench/out/speed with --quick)")
    p.add_argument("--results-md", type=Path, default=HERE / "RESULTS.md")
    args = p.parse_args()
    started = time.perf_counter()
    threads, repeats = args.threads, (2 if args.quick else args.repeats)
    X_all, _ = load_fashion_mnist("train")
    X = binarize(X_all[: 6000 if args.quick else None])
    scale_rows = 6000 if args.quick else 20000

    gemm = gemm_rates(threads)
    rows = []
    round_trips = []  # the host's state while the main figure is measured
    ours, theirs = compare_training(X, threads, 500, 100, repeats, round_trips)
    rows.append(row("train, datapoints/s (main setting)", ours, theirs, train_flops(500), gemm))
    for t in sorted({1, threads}):
        o, th = compare_training(X[:scale_rows], t, 500, 100, max(2, repeats - 2))
        rows.append(row(f"train, {t} thread(s)", o, th, train_flops(500), gemm))
    for batch in (32, 256, 1000):
        o, th = compare_training(X[:scale_rows], threads, 500, batch, max(2, repeats - 2))
        rows.append(row(f"train, batch {batch}", o, th, train_flops(500), gemm))
    for hidden in (200, 1000):
        o, th = compare_training(X[:scale_rows], threads, hidden, 100, max(2, repeats - 2))
        rows.append(row(f"train, hidden {hidden}", o, th, train_flops(hidden), gemm))

    model = AEVB(
        n_components=J, hidden_layer_sizes=(500,), max_iter=1, n_jobs=threads, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X[:2000])
    vae = TorchVAE(500)
    torch.set_num_threads(threads)
    X_test = binarize(load_fashion_mnist("test")[0])
    o, th = compare_transform(model, vae, X_test[:10000], repeats)
    rows.append(row("transform 10,000 rows, rows/s", o, th, encoder_flops(500), gemm))
    n_rows, k = (100, 200) if args.quick else (1000, 1000)
    o, th = compare_scoring(model, vae, X_test[:n_rows], k, max(2, repeats - 2))
    rows.append(
        row(
            f"score_samples K={k} on {n_rows} rows, rows/s",
            o,
            th,
            k * decoder_flops(500),
            gemm,
        )
    )

    results = {
        "command": "python bench/speed.py" + (" --quick" if args.quick else ""),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "threads": threads,
        "gemm": gemm,
        "round_trip_ns": round_trips,
        "rows": rows,
        "memory": fit_memory(6000 if args.quick else 60000, threads),
        "machine": environment(),
        "peak_rss_MiB_this_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    results["seconds"] = time.perf_counter() - started
    out = args.out or (HERE / "out" / "speed" if args.quick else HERE / "results")
    out.mkdir(parents=True, exist_ok=True)
    name = "speed.json" if args.quick else time.strftime("speed_%Y%m%d_%H%M.json", time.gmtime())
    (out / name).write_text(json.dumps(results, indent=2))
    text = markdown(results)
    print(text)
    if not args.quick:
        write_section(args.results_md, text)


if __name__ == "__main__":
    main()
