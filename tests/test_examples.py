"""The scripts in examples/ run as documented and print what they claim."""

import re
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[1] / "examples"


def run_example(name, monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", [name, *map(str, args)])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def number(pattern, text):
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in output:\n{text}"
    return float(match.group(1))


def test_embed_digits_writes_the_scatter_and_separates_the_classes(tmp_path, monkeypatch, capsys):
    path = tmp_path / "codes.png"
    out = run_example("embed_digits.py", monkeypatch, capsys, path)
    assert "embedding shape: (450, 2)" in out
    assert path.read_bytes().startswith(b"\x89PNG") and f"wrote {path}" in out
    assert number(r"test bound: (-?[\d.]+) nats", out) < 0
    assert number(r"5-NN accuracy on the 2-D codes: ([\d.]+)", out) > 0.6  # chance: 0.1


def test_anomaly_scores_rank_anomalies_below_digits(monkeypatch, capsys):
    out = run_example("anomaly_scores.py", monkeypatch, capsys)
    assert number(r"uniform noise: .*ROC AUC ([\d.]+)", out) > 0.99
    assert number(r"shuffled pixels: .*ROC AUC ([\d.]+)", out) > 0.9
    assert number(r"held-out digits: .*, ([\d.]+)% flagged", out) < 10
    assert number(r"shuffled pixels: .*, ([\d.]+)% flagged", out) > 50


def test_grid_search_selects_by_the_models_own_score(monkeypatch, capsys):
    out = run_example("grid_search.py", monkeypatch, capsys)
    rows = re.findall(r"^\s+(\d+)\s+(\d+)\s+(-[\d.]+)$", out, flags=re.MULTILINE)
    assert {(int(j), int(h)) for j, h, _ in rows} == {(2, 32), (2, 128), (8, 32), (8, 128)}
    best = max(rows, key=lambda row: float(row[2]))
    assert f"'aevb__n_components': {best[0]}" in out and f"({best[1]},)" in out
    assert number(r"CV bound (-[\d.]+) nats", out) == pytest.approx(float(best[2]), abs=0.006)
    assert number(r"refitted best pipeline: (-[\d.]+) nats", out) < 0
