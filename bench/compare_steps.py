"""The C++ training step of two source trees, side by side: alternating runs of bench/step_profile.cpp.

    python bench/compare_steps.py HEAD~1 .                  # the last commit against the working tree
    python bench/compare_steps.py main my-branch --rounds 12

A tree is a git revision (exported with `git archive`) or a directory holding a checkout. Each is built
with its own CMakeLists.txt (its step_profile target, as a Release build, under build/compare/), then the
two programs run in turn, `--rounds` times each, so that the host's slow and calm phases fall on both
alike. Prints each tree's datapoints/s (median and range), the median of the rounds' ratios (each
round's two runs share a host phase, so this compares best on a shared host), and whether the two
trained to the same parameters (equal step_profile hashes mean bit-identical training).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "compare"


def run(*cmd, **kwargs):
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def source(tree):
    """(name, source directory) of a directory or a git revision (exported once per commit)."""
    if Path(tree).is_dir():
        return tree, Path(tree).resolve()
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{tree}^{{commit}}"],
        check=False, cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    if found.returncode != 0:
        sys.exit(f"{tree!r} is neither a directory nor a git revision of {ROOT}")
    commit = found.stdout.strip()
    path = BUILD / f"src-{commit[:12]}"
    if not path.exists():  # exported whole or not at all: into a scratch directory, then renamed
        scratch = path.with_name(path.name + ".partial")
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", commit], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(scratch)], input=archive, check=True)
        scratch.rename(path)
    return f"{tree} ({commit[:7]})", path


def build(name, path):
    """Builds the tree's step_profile (one build directory per source directory); returns its path."""
    if not (path / "bench" / "step_profile.cpp").exists():
        sys.exit(f"{name} has no bench/step_profile.cpp (it predates the step profiler)")
    out = BUILD / ("build-" + re.sub(r"[^A-Za-z0-9]+", "-", str(path)).strip("-"))
    pybind11_dir = run(sys.executable, "-m", "pybind11", "--cmakedir").strip()
    run(
        "cmake", "-S", str(path), "-B", str(out), "-DCMAKE_BUILD_TYPE=Release",
        f"-Dpybind11_DIR={pybind11_dir}",
    )  # fmt: skip
    run("cmake", "--build", str(out), "--target", "step_profile")
    return out / "step_profile"


def measure(program, threads, epochs, rows):
    """(datapoints/s over the epochs after the first, parameter hash) of one step_profile run."""
    text = run(str(program), str(threads), str(epochs), str(rows))
    rate = re.search(r"([\d.]+) datapoints/s over the epochs after the first", text)
    if rate is None:  # one thread prints no phase table, so take the epochs' own rates
        rate = statistics.mean(float(r) for r in re.findall(r"epoch [1-9]\d*: ([\d.]+)", text))
    else:
        rate = float(rate.group(1))
    return rate, re.search(r"parameter hash (\w+)", text).group(1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("trees", nargs=2, help="git revisions or source directories")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=3, help="per run; the first is warm-up")
    p.add_argument("--rows", type=int, default=20000)
    args = p.parse_args()
    if args.rounds < 1 or args.epochs < 2:
        p.error("--rounds must be >= 1 and --epochs >= 2")
    trees = [source(t) for t in args.trees]
    programs = [build(name, path) for name, path in trees]
    rates, hashes = [[], []], [set(), set()]
    for _ in range(args.rounds):
        for i, program in enumerate(programs):
            rate, digest = measure(program, args.threads, args.epochs, args.rows)
            rates[i].append(rate)
            hashes[i].add(digest)
    print(f"{args.rounds} alternating runs each, {args.threads} thread(s), {args.rows:,} rows:")
    for (name, _), r in zip(trees, rates):
        print(
            f"  {name}: median {statistics.median(r):,.0f} datapoints/s "
            f"[{min(r):,.0f}-{max(r):,.0f}]"
        )
    # Each round's two runs are back to back, in the same host phase: their ratio is the fairest figure.
    ratios = [b / a for a, b in zip(*rates)]
    print(
        f"  second / first, per round: median {statistics.median(ratios):.3f} "
        f"[{min(ratios):.3f}-{max(ratios):.3f}]"
    )
    # The host's calm phases apart, where both runs are within 10% of their own tree's fastest: slow phases
    # differ in kind (bench/RESULTS.md).
    calm = [b / a for a, b in zip(*rates) if a >= 0.9 * max(rates[0]) and b >= 0.9 * max(rates[1])]
    calm_median = f"median {statistics.median(calm):.3f}" if calm else "none"
    print(
        f"  in the {len(calm)} calm rounds (each run within 10% of its tree's fastest): {calm_median}"
    )
    same = hashes[0] == hashes[1] and len(hashes[0]) == 1
    print("parameters:", "bit-identical" if same else f"differ ({hashes[0]} against {hashes[1]})")


if __name__ == "__main__":
    main()
