"""The ``aevb`` command, run in-process: each subcommand's output is checked against the Python API,
each data format against the array it holds, and each user mistake gives one line and a non-zero
status, never a traceback."""

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from aevb import AEVB
from aevb._cli import _FIT_OPTIONS, _build_parser, _estimator_params, main
from aevb._data_io import DataError, load_data, read_idx
from aevb._model_file import load_model

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FIT = [
    "--n-components",
    "2",
    "--hidden-layer-sizes",
    "16",
    "--max-iter",
    "3",
    "--random-state",
    "0",
    "--n-jobs",
    "1",
    "--verbose",
    "0",
]


@pytest.fixture(scope="module")
def X():
    return load_digits().data[:200] / 16.0


@pytest.fixture(scope="module")
def files(tmp_path_factory, X):
    """A data file and a model fitted on it by the command line."""
    root = tmp_path_factory.mktemp("cli")
    data, model = root / "X.npy", root / "model.aevb"
    np.save(data, X)
    assert main(["fit", str(data), "--out", str(model), *FIT]) == 0
    return {"root": root, "data": data, "model": model}


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def idx_bytes(array, code):
    dims = b"".join(struct.pack(">I", d) for d in array.shape)
    big = array.astype(array.dtype.newbyteorder(">"))
    return bytes([0, 0, code, array.ndim]) + dims + big.tobytes()


# ------------------------------------------------------------------------------------ subcommands


def test_fit_passes_the_options_to_the_estimator(files, X, capsys):
    model = load_model(files["model"])
    expected = AEVB(
        n_components=2, hidden_layer_sizes=(16,), max_iter=3, random_state=0, n_jobs=1, verbose=0
    ).get_params()
    assert model.get_params() == expected
    assert model.n_features_in_ == 64 and model.n_iter_ == 3
    out_path = files["root"] / "f64.aevb"
    status, out, err = run(
        capsys,
        "fit",
        files["data"],
        "--out",
        out_path,
        *FIT,
        "--dtype",
        "float64",
        "--likelihood",
        "gaussian",
        "--early-stopping",
    )
    assert status == 0 and err == ""
    m64 = load_model(out_path)
    assert m64._params.dtype == np.float64 and m64.likelihood == "gaussian" and m64.early_stopping
    assert len(m64.validation_scores_) == 3
    assert out.startswith("aevb: fitted 200 rows x 64 features, 3 epochs")


def test_every_fit_option_reaches_its_estimator_parameter():
    values = {
        "--hidden-layer-sizes": "32,8",
        "--activation": "relu",
        "--likelihood": "gaussian",
        "--kl": "sampled",
        "--algorithm": "wake-sleep",
        "--solver": "sgd",
        "--dtype": "float64",
    }
    argv = ["fit", "DATA", "--out", "M"]
    for option, _, keywords in _FIT_OPTIONS:
        if keywords.get("action") == "store_const":
            argv.append(option)
        else:
            argv += [option, values.get(option, "0.5" if keywords.get("type") is float else "3")]
    params = _estimator_params(_build_parser().parse_args(argv))
    assert set(params) == {name for _, name, _ in _FIT_OPTIONS}
    assert set(params) <= set(AEVB().get_params())  # no option for a parameter that is gone
    assert params["hidden_layer_sizes"] == (32, 8) and params["dtype"] is np.float64
    assert params["shuffle"] is False and params["nesterovs_momentum"] is False
    assert params["early_stopping"] is True and params["n_components"] == 3
    assert params["beta_1"] == 0.5 and params["activation"] == "relu"
    AEVB(**params)._validate_params()  # every value has the estimator's type
    assert _estimator_params(_build_parser().parse_args(["fit", "D", "--out", "M"])) == {
        "verbose": 1
    }


def test_fit_reports_each_epoch_by_default(files, capsys):
    argv = [
        "fit",
        files["data"],
        "--out",
        files["root"] / "v.aevb",
        "--max-iter",
        "2",
        "--hidden-layer-sizes",
        "8",
        "--n-jobs",
        "1",
    ]
    status, out, _ = run(capsys, *argv)
    assert status == 0
    assert "[AEVB] epoch 1/2, bound" in out and "[AEVB] epoch 2/2, bound" in out


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_transform_writes_the_posterior_means(files, X, capsys, suffix):
    out_path = files["root"] / f"Z{suffix}"
    status, out, err = run(capsys, "transform", files["model"], files["data"], "--out", out_path)
    assert status == 0 and err == ""
    expected = load_model(files["model"]).transform(X)
    if suffix == ".npy":
        np.testing.assert_array_equal(np.load(out_path), expected)
    else:
        assert out_path.read_text().splitlines()[0] == "aevb0,aevb1"
        np.testing.assert_array_equal(np.loadtxt(out_path, delimiter=",", skiprows=1), expected)
    assert f"wrote 200 x 2 posterior means to {out_path}" in out


def test_sample_writes_the_models_draws(files, capsys):
    model = load_model(files["model"])
    out_path = files["root"] / "S.npy"
    assert run(capsys, "sample", files["model"], 7, "--out", out_path, "--seed", 4)[0] == 0
    draws = np.load(out_path)
    assert draws.shape == (7, 64) and set(np.unique(draws)) <= {0.0, 1.0}
    np.testing.assert_array_equal(draws, model.sample(7, random_state=4))
    assert (
        run(capsys, "sample", files["model"], 3, "--out", out_path, "--seed", 4, "--mean")[0] == 0
    )
    # Decoder means agree to float32 ulps (the core's sigmoid varies by an ulp between calls).
    np.testing.assert_allclose(
        np.load(out_path), model.sample(3, random_state=4, noise=False), rtol=1e-6
    )


@pytest.mark.parametrize("k", [1, 5])
def test_score_prints_the_mean_and_writes_each_row(files, X, capsys, k):
    model = load_model(files["model"])
    out_path = files["root"] / f"scores{k}.npy"
    status, out, _ = run(
        capsys, "score", files["model"], files["data"], "--n-importance", k, "--out", out_path
    )
    assert status == 0
    expected = model.score_samples(X, n_importance=k)
    np.testing.assert_array_equal(np.load(out_path), expected)
    assert out.startswith(f"mean {np.mean(expected):.6f} nats per row over 200 rows")


def test_info_describes_the_model_file(files, capsys):
    model = load_model(files["model"])
    status, out, _ = run(capsys, "info", files["model"])
    assert status == 0
    assert f"({files['model'].stat().st_size} bytes), model format version 1" in out
    assert "written by aevb 0.1.0" in out
    assert "encoder 64 -> 16 -> 2, decoder mirrored; tanh hidden units, bernoulli likelihood" in out
    assert f"parameters: {model._params.size} (float32)" in out
    assert f"training: 3 epochs, {model.t_} steps" in out
    assert f"last bound: {-model.loss_curve_[-1]:.4f}" in out
    assert "hidden_layer_sizes=(16,)" in out and "dtype=float32" in out


# ------------------------------------------------------------------------------------ data formats


def test_each_data_format_reads_the_same_rows(tmp_path, X):
    np.save(tmp_path / "a.npy", X)
    np.savez(tmp_path / "b.npz", first=X, second=X[:5])
    header = ",".join(f"p{i}" for i in range(64))
    np.savetxt(tmp_path / "c.csv", X, delimiter=",", fmt="%.17g", header=header, comments="")
    np.savetxt(tmp_path / "d.csv", X, delimiter=",", fmt="%.17g")
    np.savetxt(tmp_path / "e.txt", X, delimiter="\t", fmt="%.17g")
    with_label = np.column_stack([np.arange(len(X)), X])
    np.savetxt(
        tmp_path / "f.csv",
        with_label,
        delimiter=";",
        fmt="%.17g",
        header="label;" + header.replace(",", ";"),
        comments="",
    )
    (tmp_path / "g.csv.gz").write_bytes(gzip.compress((tmp_path / "d.csv").read_bytes()))
    for name in ("a.npy", "b.npz", "c.csv", "d.csv", "e.txt", "g.csv.gz"):
        np.testing.assert_array_equal(load_data(tmp_path / name), X, err_msg=name)
    np.testing.assert_array_equal(load_data(tmp_path / "b.npz", key="second"), X[:5])
    np.testing.assert_array_equal(load_data(tmp_path / "f.csv", label_column="label"), X)
    np.testing.assert_array_equal(load_data(tmp_path / "f.csv", label_column="0"), X)
    np.testing.assert_array_equal(load_data(tmp_path / "a.npy", label_column=-1), X[:, :-1])


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_idx_images_are_flattened_and_scaled(tmp_path, compress):
    images = np.random.default_rng(0).integers(0, 256, size=(12, 8, 8), dtype=np.uint8)
    raw = idx_bytes(images, 0x08)
    assert raw[:4] == b"\x00\x00\x08\x03"  # MNIST's image magic, 0x00000803
    path = tmp_path / ("images-idx3-ubyte" + (".gz" if compress else ""))
    path.write_bytes(gzip.compress(raw) if compress else raw)
    X = load_data(path)
    assert X.dtype == np.float32 and X.shape == (12, 64)
    np.testing.assert_array_equal(X, images.reshape(12, 64).astype(np.float32) / 255)
    np.testing.assert_array_equal(load_data(path, scale=False), images.reshape(12, 64))


def test_idx_other_types_and_labels(tmp_path):
    values = np.random.default_rng(1).standard_normal((3, 2, 5))
    np.testing.assert_array_equal(read_idx(idx_bytes(values, 0x0E)), values)  # float64
    shorts = np.arange(-6, 6, dtype=np.int16).reshape(4, 3)
    np.testing.assert_array_equal(read_idx(idx_bytes(shorts, 0x0B)), shorts)
    labels = np.arange(10, dtype=np.uint8)
    (tmp_path / "labels-idx1-ubyte").write_bytes(idx_bytes(labels, 0x08))  # magic 0x0801
    with pytest.raises(DataError, match="needs a 2-D array"):
        load_data(tmp_path / "labels-idx1-ubyte")


def test_transform_reads_an_idx_file(files, tmp_path, capsys):
    images = np.random.default_rng(2).integers(0, 256, size=(6, 8, 8), dtype=np.uint8)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(images, 0x08)))
    out_path = tmp_path / "Z.npy"
    assert run(capsys, "transform", files["model"], path, "--out", out_path)[0] == 0
    expected = load_model(files["model"]).transform(images.reshape(6, 64) / np.float32(255))
    np.testing.assert_array_equal(np.load(out_path), expected)


# ------------------------------------------------------------------------------------ mistakes


def bad_files(root, X):
    """Data files with one mistake each."""
    np.save(root / "wide.npy", np.zeros((4, 10)))
    np.save(root / "counts.npy", X * 16)
    np.save(root / "vector.npy", np.zeros(5))
    np.save(root / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    (root / "words.csv").write_text("a,b\n1,2\n3,x\n")
    (root / "ragged.csv").write_text("1,2,3\n4,5\n")
    (root / "noise.bin").write_bytes(bytes(range(128, 256)) * 3)
    images = np.zeros((2, 8, 8), dtype=np.uint8)
    (root / "short-idx3-ubyte").write_bytes(idx_bytes(images, 0x08)[:-5])
    (root / "bytes-idx3-ubyte").write_bytes(idx_bytes(images + 200, 0x08))
    (root / "broken.gz").write_bytes(gzip.compress(b"1,2\n")[:-6])
    (root / "empty.csv").write_text("# nothing\n")
    corrupt = bytearray((root.parent / "model.aevb").read_bytes())
    corrupt[500] ^= 0xFF
    (root / "corrupt.aevb").write_bytes(bytes(corrupt))
    np.save(root / "model.npy", np.zeros(3))


MISTAKES = {
    "missing data": (
        ["transform", "{model}", "{root}/nope.npy", "--out", "{root}/z.npy"],
        "no such file",
    ),
    "missing model": (["info", "{root}/nope.aevb"], "no such file"),
    "corrupt model": (["info", "{root}/corrupt.aevb"], "checksum mismatch"),
    "not a model": (["info", "{root}/model.npy"], "not an aevb model file"),
    "wrong width": (
        ["transform", "{model}", "{root}/wide.npy", "--out", "{root}/z.npy"],
        "10 features",
    ),
    "counts for bernoulli": (["fit", "{root}/counts.npy", "--out", "{root}/m.aevb"], "[0, 1]"),
    "unscaled idx": (
        ["fit", "{root}/bytes-idx3-ubyte", "--out", "{root}/m.aevb", "--no-scale"],
        "[0, 1]",
    ),
    "1-D data": (["score", "{model}", "{root}/vector.npy"], "needs a 2-D array"),
    "pickled npy": (["score", "{model}", "{root}/objects.npy"], "allow_pickle=False"),
    "text cell": (["score", "{model}", "{root}/words.csv"], "could not convert"),
    "ragged csv": (["score", "{model}", "{root}/ragged.csv"], "number of columns changed"),
    "binary noise": (["score", "{model}", "{root}/noise.bin"], "not a recognised data file"),
    "truncated idx": (["score", "{model}", "{root}/short-idx3-ubyte"], "IDX header declares"),
    "broken gzip": (["score", "{model}", "{root}/broken.gz"], "corrupt gzip"),
    "empty csv": (["score", "{model}", "{root}/empty.csv"], "no data rows"),
    "key on npy": (["score", "{model}", "{root}/vector.npy", "--key", "x"], "not one"),
    "label out of range": (["score", "{model}", "{data}", "--label-column", "64"], "out of range"),
    "label by name": (["score", "{model}", "{data}", "--label-column", "px"], "no column named"),
    "output extension": (
        ["transform", "{model}", "{data}", "--out", "{root}/z.txt"],
        ".npy or .csv",
    ),
    "output directory": (
        ["transform", "{model}", "{data}", "--out", "{root}/no/z.npy"],
        "does not exist",
    ),
    "invalid value": (
        ["fit", "{data}", "--out", "{root}/m.aevb", "--n-components", "0"],
        "n_components",
    ),
    "bad importance": (["score", "{model}", "{data}", "--n-importance", "0"], "n_importance"),
    "zero samples": (["sample", "{model}", "0", "--out", "{root}/s.npy"], "n_samples"),
    "too many samples": (
        ["sample", "{model}", "10000000000000", "--out", "{root}/s.npy"],
        "out of memory",
    ),
    "too many threads": (
        ["fit", "{data}", "--out", "{root}/m.aevb", "--n-jobs", "99999999999"],
        "n_jobs",
    ),
    "too many importance samples": (
        ["score", "{model}", "{data}", "--n-importance", "99999999999999999999"],
        "n_importance",
    ),
    "too wide a layer": (
        ["fit", "{data}", "--out", "{root}/m.aevb", "--hidden-layer-sizes", "3000000000000"],
        "hidden_layer_sizes",
    ),
}
USAGE = {
    "no command": ([], "required"),
    "unknown command": (["train"], "invalid choice"),
    "unknown option": (["fit", "{data}", "--out", "m", "--bogus"], "unrecognized arguments"),
    "bad choice": (["fit", "{data}", "--out", "m", "--activation", "bogus"], "invalid choice"),
    "bad widths": (["fit", "{data}", "--out", "m", "--hidden-layer-sizes", "a,b"], "500,200"),
    "missing out": (["fit", "{data}"], "--out"),
    "not a number": (["sample", "{model}", "many", "--out", "s.npy"], "invalid int value"),
}


@pytest.fixture(scope="module")
def bad(files, X):
    root = files["root"] / "bad"
    root.mkdir()
    bad_files(root, X)
    return {"root": root, "model": files["model"], "data": files["data"]}


def check_one_line_error(capsys, bad, argv):
    status, out, err = run(capsys, *[a.format(**bad) for a in argv])
    assert "Traceback" not in err and "Traceback" not in out
    assert err.count("\n") == 1 and err.startswith("aevb: error: "), err
    return status, err


@pytest.mark.parametrize("case", list(MISTAKES))
def test_a_user_mistake_is_one_line_and_status_1(capsys, bad, case):
    argv, expected = MISTAKES[case]
    status, err = check_one_line_error(capsys, bad, argv)
    assert status == 1 and expected in err


@pytest.mark.parametrize("case", list(USAGE))
def test_a_bad_command_line_is_one_line_and_status_2(capsys, bad, case):
    argv, expected = USAGE[case]
    status, err = check_one_line_error(capsys, bad, argv)
    assert status == 2 and expected in err and "--help" in err


def test_help_and_version_return_0(capsys):
    status, out, _ = run(capsys, "--help")
    assert status == 0 and "usage: aevb" in out
    for command in ("demo", "fit", "transform", "sample", "score", "info"):
        assert command in out
    status, out, _ = run(capsys, "fit", "--help")
    assert status == 0 and "--hidden-layer-sizes" in out and "--label-column" in out
    assert run(capsys, "--version") == (0, "aevb 0.1.0\n", "")


def test_python_dash_m_runs_the_command():
    result = subprocess.run(
        [sys.executable, "-m", "aevb", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and "usage: aevb" in result.stdout
    assert "demo" in result.stdout and "Traceback" not in result.stderr


def test_the_console_script_is_declared():
    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # older Pythons: the line as written
        assert '[project.scripts]\naevb = "aevb._cli:main"' in text
    else:
        assert tomllib.loads(text)["project"]["scripts"] == {"aevb": "aevb._cli:main"}
    module, _, name = "aevb._cli:main".partition(":")
    assert getattr(__import__(module, fromlist=[name]), name) is main


# ------------------------------------------------------------------------------------ demo


def read_summary(path):
    lines = path.read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if not line.startswith("#"))


def test_demo_writes_what_it_reports(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    status, out, _ = run(capsys, "demo", "--out", out_dir, "--epochs", 3, "--seed", 1)
    assert status == 0
    epochs = [line.split(",")[0] for line in out.splitlines() if line.startswith("[AEVB] epoch")]
    assert epochs == ["[AEVB] epoch 1/3", "[AEVB] epoch 2/3", "[AEVB] epoch 3/3"]  # one line each
    for name in ("training_curve", "reconstructions", "samples", "latent_map", "manifold"):
        png = (out_dir / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 2000, name

    # The summary's numbers are the saved model's scores on the documented split.
    summary = read_summary(out_dir / "summary.txt")
    model = load_model(out_dir / "model.aevb")
    X_train, X_test = train_test_split(load_digits().data / 16.0, test_size=0.2, random_state=1)
    assert int(summary["train_rows"]) == len(X_train) and int(summary["test_rows"]) == len(X_test)
    assert int(summary["epochs"]) == model.n_iter_ == 3
    assert summary["test_bound_nats"] == f"{model.score(X_test):.6f}"
    assert summary["test_loglik_k1000_nats"] == f"{model.score(X_test, n_importance=1000):.6f}"
    assert float(summary["fit_seconds"]) > 0
    assert f"test bound (ELBO):           {float(summary['test_bound_nats']):.2f} nats" in out


def test_demo_without_matplotlib_still_writes_the_model(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    out_dir = tmp_path / "demo"
    status, out, _ = run(capsys, "demo", "--out", out_dir, "--epochs", 1, "--n-components", 2)
    assert status == 0 and "pip install aevb[plot]" in out
    assert sorted(os.listdir(out_dir)) == ["model.aevb", "summary.txt"]
    assert load_model(out_dir / "model.aevb").n_components == 2
