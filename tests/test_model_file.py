"""Model files: exact round trips, a file from an earlier session that must load forever, and
damaged or hostile files that must fail with a clear ValueError (never a crash, a huge allocation
or running code)."""

import hashlib
import io
import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError

from aevb import AEVB
from aevb._model_file import (
    FORMAT_VERSION,
    ModelFileError,
    load_model,
    read_model_header,
    save_model,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def digits():
    return load_digits().data[:300] / 16.0


def fit(X, **kw):
    options = {"n_components": 2, "hidden_layer_sizes": (16,), "max_iter": 3, "random_state": 0}
    options.update(kw)
    return AEVB(n_jobs=1, **options).fit(X)


def to_bytes(model):
    buffer = io.BytesIO()
    save_model(model, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tiny_file():
    """The bytes of a very small model (6 features), small enough to damage at every offset."""
    rng = np.random.default_rng(0)
    X = (rng.random((20, 6)) < 0.5).astype(np.float64)
    return to_bytes(fit(X, hidden_layer_sizes=(4,), batch_size=10))


# The documented layout, written out independently of the library: magic, uint32 version, uint64
# header length, UTF-8 JSON header, zero padding to 64 bytes, data section, SHA-256 of the rest.


def unpack(blob):
    magic, version, n = struct.unpack_from("<8sIQ", blob)
    assert magic == b"AEVBMODL" and version == FORMAT_VERSION
    header = json.loads(blob[20 : 20 + n].decode("utf-8"))
    start = -(-(20 + n) // 64) * 64
    assert hashlib.sha256(blob[:-32]).digest() == blob[-32:]
    return header, blob[start:-32]


def pack(header, data, version=FORMAT_VERSION):
    text = header if isinstance(header, bytes) else json.dumps(header).encode("utf-8")
    head = b"AEVBMODL" + struct.pack("<IQ", version, len(text)) + text
    body = head + b"\0" * (-len(head) % 64) + data
    return body + hashlib.sha256(body).digest()


def load_bytes(blob):
    return load_model(io.BytesIO(blob))


# ------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_round_trip_reproduces_every_output(tmp_path, digits, dtype, likelihood):
    model = fit(digits, dtype=dtype, likelihood=likelihood)
    path = tmp_path / "model.aevb"
    save_model(model, path)
    loaded = load_model(path)

    assert type(loaded) is AEVB and loaded is not model
    assert loaded.get_params() == model.get_params()
    assert loaded._params.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(loaded.transform(digits), model.transform(digits))
    for k in (1, 20):
        np.testing.assert_array_equal(
            loaded.score_samples(digits, n_importance=k),
            model.score_samples(digits, n_importance=k),
        )
    np.testing.assert_array_equal(loaded._params, model._params)
    # The core's Bernoulli decoder output varies by an ulp between calls (reported), so these two
    # compare to a few ulps; the parameters above are bit-identical.
    Z = model.transform(digits[:10])
    ulps = 4 * np.finfo(dtype).eps
    np.testing.assert_allclose(loaded.inverse_transform(Z), model.inverse_transform(Z), rtol=ulps)
    np.testing.assert_allclose(
        loaded.sample(5, random_state=1), model.sample(5, random_state=1), rtol=ulps
    )
    # The optimizer state and step counter came along, so one more epoch continues the same run.
    np.testing.assert_array_equal(loaded._optimizer_state, model._optimizer_state)
    model.partial_fit(digits)
    loaded.partial_fit(digits)
    assert loaded.t_ == model.t_ and loaded.n_iter_ == model.n_iter_ == 4
    np.testing.assert_array_equal(loaded._params, model._params)


def test_every_fitted_attribute_round_trips(digits):
    import pandas as pd

    frame = pd.DataFrame(digits, columns=[f"px{i}" for i in range(digits.shape[1])])
    model = fit(frame, early_stopping=True, random_state=np.random.RandomState(3))
    # An attribute this module has never heard of (as future versions of the estimator add).
    model._extra_state_ = {
        "xs": [1, 2.5, np.inf, -np.inf],
        "arr": np.arange(6).reshape(2, 3),
        "pair": (np.float32(0.5), None),
        "flag": np.bool_(True),
    }
    state_rng = model.random_state.get_state()
    loaded = load_bytes(to_bytes(model))

    assert sorted(vars(loaded)) == sorted(vars(model))
    for name, value in vars(model).items():
        if name == "random_state":
            restored = loaded.random_state.get_state()
            assert restored[0] == state_rng[0] and restored[2:] == state_rng[2:]
            np.testing.assert_array_equal(restored[1], state_rng[1])
        elif isinstance(value, np.ndarray):
            assert loaded.__dict__[name].dtype == value.dtype
            np.testing.assert_array_equal(loaded.__dict__[name], value)
        elif name != "_extra_state_":
            assert loaded.__dict__[name] == value, name
    extra = loaded._extra_state_
    assert extra["xs"] == [1, 2.5, np.inf, -np.inf]
    np.testing.assert_array_equal(extra["arr"], np.arange(6).reshape(2, 3))
    assert extra["pair"] == (np.float32(0.5), None) and type(extra["pair"][0]) is np.float32
    assert type(extra["flag"]) is np.bool_
    assert isinstance(loaded.validation_scores_, list) and len(loaded.validation_scores_) == 3
    assert list(loaded.feature_names_in_) == list(frame.columns)
    np.testing.assert_array_equal(loaded.transform(frame), model.transform(frame))


def test_saving_overwrites_atomically_and_leaves_no_temporary_files(tmp_path, digits):
    path = tmp_path / "m.aevb"
    path.write_bytes(b"old contents")
    model = fit(digits)
    save_model(model, str(path))
    assert [p.name for p in tmp_path.iterdir()] == ["m.aevb"]
    np.testing.assert_array_equal(load_model(path).transform(digits), model.transform(digits))


def test_the_file_is_the_documented_layout(digits):
    model = fit(digits, dtype=np.float64)
    header, data = unpack(to_bytes(model))
    assert header["class"] == "AEVB" and header["aevb_version"] == "0.1.0"
    entry = header["arrays"][header["attributes"]["_params"]["index"]]
    assert entry["dtype"] == "float64" and entry["shape"] == [model._params.size]
    raw = np.frombuffer(data, dtype="<f8", count=model._params.size, offset=entry["offset"])
    np.testing.assert_array_equal(raw, model._params)
    assert header["params"]["dtype"] == {"$type": "dtype", "name": "float64", "form": "type"}
    assert header["attributes"]["_architecture"]["hidden"] == [16]


def test_the_functions_are_public_and_behind_the_estimators_methods(tmp_path, digits):
    import aevb

    assert aevb.save_model is save_model and aevb.load_model is load_model
    model = fit(digits)
    model.save(tmp_path / "m.aevb")
    loaded = AEVB.load(tmp_path / "m.aevb")
    np.testing.assert_array_equal(loaded.transform(digits), model.transform(digits))


def test_pickle_still_works(digits):
    model = fit(digits)
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.score_samples(digits), model.score_samples(digits))


def test_callbacks_are_not_stored(digits):
    model = fit(digits, callbacks=[lambda est, info: False])
    with pytest.warns(UserWarning, match="callbacks"):
        blob = to_bytes(model)
    loaded = load_bytes(blob)
    assert loaded.callbacks is None
    np.testing.assert_array_equal(loaded.transform(digits), model.transform(digits))


def test_saving_refuses_what_it_cannot_represent(digits):
    with pytest.raises(NotFittedError):
        to_bytes(AEVB())
    with pytest.raises(TypeError, match="AEVB"):
        to_bytes(object())

    class Custom(AEVB):
        pass

    with pytest.raises(TypeError, match="Custom"):
        to_bytes(Custom(hidden_layer_sizes=(4,), max_iter=1, n_jobs=1).fit(digits))
    model = fit(digits)
    model._handle_ = object()
    with pytest.raises(TypeError, match="_handle_"):
        to_bytes(model)
    del model._handle_
    model._deep_ = []
    for _ in range(70):
        model._deep_ = [model._deep_]
    with pytest.raises(TypeError, match="nested deeper than 64"):
        to_bytes(model)


def test_the_committed_reference_file_loads():
    """Written by tests/data/make_reference_model.py with aevb 0.1.0; it must load forever after."""
    expected = np.load(DATA / "aevb-0.1.0-tiny-expected.npz")
    path = DATA / "aevb-0.1.0-tiny.aevb"
    header = read_model_header(path)
    assert header["aevb_version"] == "0.1.0"
    assert header["format_version"] == int(expected["format_version"]) == 1
    model = load_model(path)
    assert model._architecture == {
        "n_features": 64,
        "n_components": 2,
        "hidden": [8],
        "activation": "tanh",
        "likelihood": "bernoulli",
    }
    assert model._params.dtype == np.float32 and model.n_iter_ == 5
    np.testing.assert_array_equal(model.loss_curve_, expected["loss_curve"])  # stored numbers
    # Recomputed numbers: the same on any build up to float32 rounding in the core.
    np.testing.assert_allclose(
        model.transform(expected["X"]), expected["transform"], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(model.score_samples(expected["X"]), expected["score"], rtol=1e-5)


# ---------------------------------------------------------------------------- damaged files


def error_of(blob):
    with pytest.raises(ModelFileError) as info:
        load_bytes(blob)
    message = str(info.value)
    assert message and "\n" not in message
    return message


def test_truncation_at_every_offset_is_reported(tiny_file):
    assert load_bytes(tiny_file).n_iter_ == 3
    for n in range(len(tiny_file)):
        assert "truncated" in error_of(tiny_file[:n]), n


@pytest.mark.parametrize("mask", [0x01, 0xFF])
def test_every_flipped_byte_is_detected(tiny_file, mask):
    for i in range(len(tiny_file)):
        damaged = bytearray(tiny_file)
        damaged[i] ^= mask
        message = error_of(bytes(damaged))
        if i < 8:
            assert "not an aevb model file" in message
        elif i < 12:
            assert "format version" in message
        else:
            assert any(w in message for w in ("checksum", "truncated", "trailing")), (i, message)


def test_appended_bytes_are_detected(tiny_file):
    assert "1 trailing bytes" in error_of(tiny_file + b"\0")


@pytest.mark.parametrize(
    "blob",
    [b"", b"\x93NUMPY\x01\x00", b"PK\x03\x04" + bytes(100), bytes(range(256)) * 4, b"x,y\n1,2\n"],
    ids=["empty", "npy-prefix", "zip", "random", "csv"],
)
def test_foreign_bytes_are_not_a_model(blob):
    message = error_of(blob)
    assert "not an aevb model file" in message or "truncated" in message


def test_a_npy_file_is_not_a_model(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((3, 3)))
    with pytest.raises(ModelFileError, match="not an aevb model file"):
        load_model(path)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.aevb")


def test_newer_and_unknown_format_versions_are_refused(tiny_file):
    header, data = unpack(tiny_file)
    assert load_bytes(pack(header, data)).n_iter_ == 3  # the test's packer is faithful
    assert "newer" in error_of(pack(header, data, version=FORMAT_VERSION + 1))
    assert "unknown model format version 0" in error_of(pack(header, data, version=0))


def test_a_header_length_beyond_the_file_is_refused(tiny_file):
    damaged = tiny_file[:12] + struct.pack("<Q", 10**15) + tiny_file[20:]
    assert "declares a 1000000000000000-byte header" in error_of(damaged)


def _params_entry(header):
    return header["arrays"][header["attributes"]["_params"]["index"]]


def _set(path, value):
    def mutate(header):
        *keys, last = path
        node = header
        for key in keys:
            node = node[key]
        node[last] = value

    return mutate


def _absurd_shape(header):
    entry = _params_entry(header)
    entry["shape"], entry["nbytes"] = [10**15], 4 * 10**15


def _shape(shape):
    def mutate(header):
        _params_entry(header)["shape"] = shape

    return mutate


def _entry(key, value):
    def mutate(header):
        _params_entry(header)[key] = value

    return mutate


def _drop_params(header):
    del header["attributes"]["_params"]


def _drop(name):
    def mutate(header):
        del header["attributes"][name]

    return mutate


def _optimizer_transposed(header):
    entry = header["arrays"][header["attributes"]["_optimizer_state"]["index"]]
    entry["shape"] = entry["shape"][::-1]


def _deep(header):
    value = 0
    for _ in range(500):  # shallow enough for the JSON parser, too deep for a recursive decoder
        value = [value]
    header["attributes"]["_deep_"] = value


CRAFTED = {
    "absurd shape": (_absurd_shape, "does not fit"),
    "negative shape": (_shape([-4]), "shape entries"),
    "fractional shape": (_shape([1.5]), "shape entries"),
    "shape not a list": (_shape("90"), "invalid shape"),
    "object dtype": (_entry("dtype", "object"), "unsupported dtype"),
    "string dtype": (_entry("dtype", "<U8"), "unsupported dtype"),
    "offset past the data": (_entry("offset", 10**9), "does not fit"),
    "wrong nbytes": (_entry("nbytes", 1), "does not fit"),
    "data_nbytes": (_set(["data_nbytes"], 10**15), "declares 1000000000000000 data bytes"),
    "features vs params": (_set(["attributes", "_architecture", "n_features"], 7), "needs"),
    "absurd features": (_set(["attributes", "_architecture", "n_features"], 10**15), "n_features"),
    "hidden not ints": (_set(["attributes", "_architecture", "hidden"], ["4"]), "hidden"),
    "bad activation": (
        _set(["attributes", "_architecture", "activation"], "bogus"),
        "architecture",
    ),
    "optimizer shape": (_optimizer_transposed, "_optimizer_state"),
    "missing params": (_drop_params, "lacks the fitted attributes"),
    "negative seed": (_set(["attributes", "_seed"], -1), "_seed"),
    "shadow a method": (_set(["attributes", "_layout"], 1), "forbidden attribute '_layout'"),
    "dunder": (_set(["attributes", "__class__"], "AEVB"), "forbidden attribute '__class__'"),
    "shadow a property": (_set(["attributes", "encoder_coefs_"], []), "forbidden attribute"),
    "attribute is a param": (_set(["attributes", "n_components"], 3), "forbidden attribute"),
    "unknown param": (_set(["params", "frobnicate"], 1), "unknown parameters ['frobnicate']"),
    "invalid param": (_set(["params", "activation"], "bogus"), "invalid parameters"),
    "unknown tag": (_set(["attributes", "t_"], {"$type": "pickle", "data": "..."}), "'pickle'"),
    "bad array index": (_set(["attributes", "_params"], {"$type": "array", "index": 99}), "index"),
    "deep nesting": (_deep, "deeper than 64 levels"),
    "an architecture of 2**64 parameters": (
        _set(
            ["attributes", "_architecture", "hidden"],
            [1326970308, 2137680573, 2039016529, 994581127, 1, 73970016, 1],
        ),
        "too many parameters",
    ),
    "features vs n_features_in_": (
        _set(["attributes", "n_features_in_"], 7),
        "n_features_in_ is 7",
    ),
    "loss curve not a list": (_set(["attributes", "loss_curve_"], "abc"), "loss_curve_ must be"),
    "best loss not a number": (_set(["attributes", "best_loss_"], "x"), "best_loss_ must be"),
    "step count at the limit": (_set(["attributes", "t_"], 2**63 - 1), "t_ must be an integer"),
    "negative count": (_set(["attributes", "_no_improvement_count"], -1), "_no_improvement_count"),
    "missing history": (_drop("loss_curve_"), "lacks the fitted attributes ['loss_curve_']"),
    "other class": (_set(["class"], "MLPRegressor"), "'MLPRegressor'"),
    "no attributes": (_set(["attributes"], []), "'attributes'"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_a_crafted_header_with_a_valid_checksum_is_refused(tiny_file, case):
    mutate, expected = CRAFTED[case]
    header, data = unpack(tiny_file)
    mutate(header)
    assert expected in error_of(pack(header, data))


@pytest.mark.parametrize(
    "text, expected",
    [
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b'{"params": ', "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"x": NaN}', "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
    ids=["utf8", "json", "list", "nan", "deep"],
)
def test_an_unreadable_header_with_a_valid_checksum_is_refused(tiny_file, text, expected):
    _, data = unpack(tiny_file)
    assert expected in error_of(pack(text, data))


def test_a_file_opened_in_text_mode_is_refused(tmp_path, tiny_file):
    path = tmp_path / "m.aevb"
    path.write_bytes(tiny_file)
    with open(path, encoding="latin-1") as f, pytest.raises(ModelFileError, match="text mode"):
        load_model(f)


def test_parameters_changed_after_fitting_load_as_the_fitted_model(tmp_path, digits):
    # set_params after fit leaves parameters that no longer describe the arrays; the file still loads,
    # with the parameters the model was fitted with.
    model = fit(digits)
    fitted = model.get_params()
    model.set_params(n_components=model.n_components + 1, activation="relu", dtype=np.float64)
    model.save(tmp_path / "m.aevb")
    loaded = load_model(tmp_path / "m.aevb")
    for name in ("n_components", "activation"):
        assert loaded.get_params()[name] == fitted[name]
    assert np.dtype(loaded.dtype) == np.dtype(fitted["dtype"])
    np.testing.assert_array_equal(loaded.transform(digits), model.transform(digits))
