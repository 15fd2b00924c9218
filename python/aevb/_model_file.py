"""Model files: a versioned, self-describing binary format for fitted AEVB models.

Loading a model file never executes code (unlike pickle): it is parsed as JSON and raw numbers,
checked, and only then turned into an estimator.

Format, version 1 (all integers little-endian)::

    offset  size  content
    0       8     magic b"AEVBMODL"
    8       4     uint32 format version (1)
    12      8     uint64 header length H
    20      H     header: a UTF-8 JSON object (below)
    ...     pad   zero bytes up to the next multiple of 64
    D       B     data section: the arrays' raw little-endian C-order bytes, each at a
                  64-byte-aligned offset from D; B is the header's "data_nbytes"
    D+B     32    SHA-256 of every byte before it

The header holds ``aevb_version`` (the library that wrote the file), ``class`` ("AEVB"),
``params`` (``get_params()``), ``attributes`` (the fitted state: every instance attribute that is
not a parameter, such as ``_params``, ``_optimizer_state``, ``_architecture``, ``loss_curve_``),
``arrays`` (a table of ``{"dtype", "shape", "offset", "nbytes"}``, dtype as a name such as
"float32", offset from the start of the data section) and ``data_nbytes``.
Values that plain JSON cannot hold (arrays, tuples, non-finite floats, numpy scalars and dtypes) are
objects tagged by a ``"$type"`` key, described in ``aevb._model_values``. New fitted attributes
round-trip without a format change, as long as they are built from these values. Parameters that
hold code (callbacks) are not stored: the loaded model gets their default.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import struct
import warnings

import numpy as np

from aevb._model_values import ARRAY_DTYPES, MAX_DEPTH, decode, depth, encode

MAGIC = b"AEVBMODL"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sIQ")  # magic, format version, header length
_DIGEST_SIZE = 32  # SHA-256
_ALIGN = 64
_REQUIRED_ATTRIBUTES = (
    "_params", "_optimizer_state", "_architecture", "_seed", "t_", "n_iter_", "n_features_in_",
    "loss_curve_", "best_loss_", "_last_best_loss", "_no_improvement_count", "validation_scores_",
    "best_validation_score_",
)  # fmt: skip
_MAX_DIM = 2**31 - 1  # the core indexes with int; a larger architecture is corrupt, not big


class ModelFileError(ValueError):
    """Not a readable AEVB model file: foreign, truncated, corrupted or inconsistent."""


def save_model(model, path):
    """Write a fitted AEVB to a model file (format described in this module's docstring).

    The bytes go to a temporary name that is then renamed into place, so a failure leaves no partial
    file.

    Parameters
    ----------
    model : AEVB
        A fitted estimator.
    path : str, os.PathLike or binary file object
        Destination. A file object receives the bytes at its current position.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``model`` is not fitted.
    TypeError
        If ``model`` is not an AEVB (subclasses included: their code is not data), or holds an
        attribute this format cannot represent.
    """
    from sklearn.utils.validation import check_is_fitted

    from aevb._estimator import AEVB

    if type(model) is not AEVB:  # a subclass's code could not be restored from data
        raise TypeError(
            f"save_model stores AEVB models; got {type(model).__name__} (pickle it instead)"
        )
    check_is_fitted(model)
    blob = _serialize(model)
    if hasattr(path, "write"):
        path.write(blob)
        return
    path = os.fspath(path)
    tmp = f"{path}.{secrets.token_hex(4)}.tmp"  # same directory, so the rename is atomic
    try:
        with open(tmp, "xb") as f:  # permissions follow the umask, as for any new file
            f.write(blob)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_model(path):
    """Read a model file written by ``save_model`` and return the fitted AEVB.

    Every declared length, shape and dtype is checked against the file before it is used, so a
    damaged or hostile file raises ModelFileError (a ValueError) rather than allocating, crashing or
    running code.

    Parameters
    ----------
    path : str, os.PathLike or binary file object

    Returns
    -------
    model : AEVB
        Predicts, scores, samples and continues training (``partial_fit``) exactly as the saved one.

    Raises
    ------
    ModelFileError
        A ValueError: the file is not an AEVB model file, is truncated or corrupted, was written in
        a newer format version, or declares inconsistent contents. The message names the problem.
    OSError
        If the file cannot be read.
    """
    header, data, where = _read(path)
    return _build_model(header, data, where)


def read_model_header(path):
    """The checked header of a model file, without building the model.

    Parameters
    ----------
    path : str, os.PathLike or binary file object

    Returns
    -------
    header : dict
        The JSON header, plus ``"format_version"`` and ``"file_size"`` (bytes).

    Raises
    ------
    ModelFileError
        As ``load_model``, for the framing, the checksum and the header's syntax.
    """
    header, _, _ = _read(path)
    return header


def _read(path):
    """Check the framing, checksum and header syntax; return (header, data section, file name)."""
    if hasattr(path, "read"):
        name = getattr(path, "name", "<file object>")
        try:
            blob = path.read()
        except UnicodeDecodeError:
            blob = ""
        if isinstance(blob, str):
            raise ModelFileError(
                f"{name}: opened in text mode; a model file is binary (open it 'rb')"
            )
    else:
        name = os.fspath(path)
        with open(name, "rb") as f:
            blob = f.read()
    blob = memoryview(blob).toreadonly()
    size = len(blob)
    where = str(name)
    if size < len(MAGIC):
        if bytes(blob) == MAGIC[:size]:
            raise ModelFileError(f"{where}: truncated model file ({size} bytes)")
        raise ModelFileError(f"{where}: not an aevb model file (too short: {size} bytes)")
    if bytes(blob[: len(MAGIC)]) != MAGIC:
        raise ModelFileError(
            f"{where}: not an aevb model file (starts with {bytes(blob[:8])!r}, expected {MAGIC!r})"
        )
    if size < _PREFIX.size:
        raise ModelFileError(f"{where}: truncated model file ({size} bytes)")
    _, version, header_len = _PREFIX.unpack_from(blob)
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{where}: written in model format version {version}, newer than this aevb reads "
            f"({FORMAT_VERSION}); upgrade aevb"
        )
    if version < 1:
        raise ModelFileError(f"{where}: unknown model format version {version}")
    header_end = _PREFIX.size + header_len
    if header_end + _DIGEST_SIZE > size:
        raise ModelFileError(
            f"{where}: truncated or corrupt model file: declares a {header_len}-byte header, "
            f"but the file has {size} bytes"
        )
    digest = hashlib.sha256(blob[: size - _DIGEST_SIZE]).digest()
    if digest != bytes(blob[size - _DIGEST_SIZE :]):
        expected = _expected_size(blob[_PREFIX.size : header_end], header_end)
        if expected is not None and expected > size:
            raise ModelFileError(
                f"{where}: truncated model file: expected {expected} bytes, found {size}"
            )
        if expected is not None and expected < size:
            raise ModelFileError(
                f"{where}: {size - expected} trailing bytes after the end of the model file "
                f"({expected} bytes)"
            )
        raise ModelFileError(f"{where}: checksum mismatch: the model file is corrupted")
    header = _parse_header(blob[_PREFIX.size : header_end], where)
    data_nbytes = _check_int(header.get("data_nbytes"), "data_nbytes", where)
    data_start = _aligned(header_end)
    expected = data_start + data_nbytes + _DIGEST_SIZE
    if expected != size:
        raise ModelFileError(
            f"{where}: inconsistent model file: its header declares {data_nbytes} data bytes, "
            f"so {expected} bytes in all, but the file has {size}"
        )
    header["format_version"] = version
    header["file_size"] = size
    return header, blob[data_start : data_start + data_nbytes], where


# --------------------------------------------------------------------------- writing


def _serialize(model):
    """The complete file as bytes."""
    from aevb import __version__

    arrays, chunks, offset = [], [], 0

    def add_array(value):
        nonlocal offset
        dtype = value.dtype
        if dtype.name not in ARRAY_DTYPES:
            raise TypeError(f"cannot store an array of dtype {dtype} in a model file")
        raw = np.ascontiguousarray(value, dtype=dtype.newbyteorder("<")).tobytes()
        pad = _aligned(offset) - offset
        chunks.append(b"\0" * pad)
        offset += pad
        arrays.append(
            {"dtype": dtype.name, "shape": list(value.shape), "offset": offset, "nbytes": len(raw)}
        )
        chunks.append(raw)
        offset += len(raw)
        return {"$type": "array", "index": len(arrays) - 1}

    params = model.get_params(deep=False)
    defaults = type(model)().get_params(deep=False)
    stored = {}
    for name, value in params.items():
        try:
            stored[name] = encode(value, add_array, f"parameter {name!r}")
        except TypeError:
            # Code (e.g. callbacks) is never stored; the loaded model gets the default and refits
            # exactly like the saved one unless that code steered the fit.
            warnings.warn(
                f"save_model: parameter {name}={value!r} is not data and is not stored; the "
                f"loaded model gets the default {defaults[name]!r}",
                UserWarning,
                stacklevel=3,
            )
            stored[name] = encode(defaults[name], add_array, f"parameter {name!r}")
    attributes = {k: v for k, v in vars(model).items() if k not in params}
    header = {
        "aevb_version": __version__,
        "class": type(model).__name__,
        "params": stored,
        "attributes": {k: encode(v, add_array, f"attribute {k!r}") for k, v in attributes.items()},
        "arrays": arrays,
        "data_nbytes": offset,
    }
    if depth(header) > MAX_DEPTH:
        raise TypeError(f"cannot store attributes nested deeper than {MAX_DEPTH} levels")
    text = json.dumps(header, allow_nan=False, separators=(",", ":")).encode("utf-8")
    head = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(text)) + text
    body = head + b"\0" * (_aligned(len(head)) - len(head)) + b"".join(chunks)
    return body + hashlib.sha256(body).digest()


# --------------------------------------------------------------------------- reading


def _aligned(n):
    return -(-n // _ALIGN) * _ALIGN


def _expected_size(raw_header, header_end):
    """The file size a (possibly damaged) header implies, or None if it does not parse."""
    try:
        n = json.loads(bytes(raw_header).decode("utf-8"))["data_nbytes"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    return _aligned(header_end) + n + _DIGEST_SIZE if isinstance(n, int) and n >= 0 else None


def _reject_constant(name):
    raise ModelFileError(f"non-standard JSON constant {name}")


def _parse_header(raw, where):
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFileError(f"{where}: model header is not valid UTF-8 ({exc.reason})") from None
    try:
        header = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ModelFileError(
            f"{where}: model header is not valid JSON (nested too deeply)"
        ) from None
    except ValueError as exc:
        raise ModelFileError(f"{where}: model header is not valid JSON ({exc})") from None
    if depth(header) > MAX_DEPTH:  # the decoder recurses; refuse before it could overflow
        raise ModelFileError(f"{where}: model header nests values deeper than {MAX_DEPTH} levels")
    if not isinstance(header, dict):
        raise ModelFileError(
            f"{where}: model header must be a JSON object, got {type(header).__name__}"
        )
    for key, kind in (("params", dict), ("attributes", dict), ("arrays", list), ("class", str)):
        if not isinstance(header.get(key), kind):
            raise ModelFileError(f"{where}: model header lacks a valid {key!r} entry")
    return header


def _check_int(value, what, where, low=0, high=None):
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f" in [{low}, {high}]" if high is not None else f" >= {low}"
        raise ModelFileError(f"{where}: {what} must be an integer{bound}; got {value!r}")
    return value


def _check_arrays(table, data, where):
    """The declared arrays, each checked, then copied out of the data section."""
    arrays = []
    for i, entry in enumerate(table):
        what = f"array {i}"
        if not isinstance(entry, dict):
            raise ModelFileError(f"{where}: {what} is not described by an object")
        dtype_name = entry.get("dtype")
        if dtype_name not in ARRAY_DTYPES:
            raise ModelFileError(f"{where}: {what} has unsupported dtype {dtype_name!r}")
        shape = entry.get("shape")
        if not isinstance(shape, list) or len(shape) > 32:
            raise ModelFileError(f"{where}: {what} has an invalid shape {shape!r}")
        for d in shape:
            _check_int(d, f"{what}'s shape entries", where, 0, 2**62)
        dtype = np.dtype(dtype_name).newbyteorder("<")
        count = math.prod(shape)  # exact: Python integers, no overflow
        nbytes = count * dtype.itemsize
        offset = _check_int(entry.get("offset"), f"{what}'s offset", where)
        if entry.get("nbytes") != nbytes or offset + nbytes > len(data):
            raise ModelFileError(
                f"{where}: {what} declares shape {shape} of {dtype_name} ({nbytes} bytes at offset "
                f"{offset}), which does not fit the {len(data)}-byte data section"
            )
        values = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape)
        arrays.append(values.astype(dtype.newbyteorder("="), copy=True))  # writeable, native order
    return arrays


def _check_architecture(arch, where):
    """The core's layout for arch, with every field checked first; returns the parameter count."""
    from aevb import _core
    from aevb._estimator import _parameter_count

    if not isinstance(arch, dict):
        raise ModelFileError(f"{where}: _architecture must be a dict; got {type(arch).__name__}")
    n_features = _check_int(arch.get("n_features"), "n_features", where, 1, _MAX_DIM)
    n_components = _check_int(arch.get("n_components"), "n_components", where, 1, _MAX_DIM)
    hidden = arch.get("hidden")
    if not isinstance(hidden, list) or len(hidden) > 1024:
        raise ModelFileError(f"{where}: hidden layer sizes must be a list; got {hidden!r}")
    for h in hidden:
        _check_int(h, "hidden layer sizes", where, 1, _MAX_DIM)
    activation, likelihood = arch.get("activation"), arch.get("likelihood")
    if not isinstance(activation, str) or not isinstance(likelihood, str):
        raise ModelFileError(f"{where}: activation and likelihood must be strings")
    if _parameter_count(n_features, n_components, hidden, likelihood) >= 2**62:
        raise ModelFileError(f"{where}: the architecture {arch} has too many parameters to be real")
    try:
        layout = _core.Layout(n_features, n_components, hidden, activation, likelihood)
    except (ValueError, TypeError, RuntimeError, OverflowError) as exc:
        raise ModelFileError(f"{where}: invalid architecture {arch} ({exc})") from None
    return layout.n_params


def _decode_all(values, arrays, where):
    decoded = {}
    for name, value in values.items():
        try:
            decoded[name] = decode(value, arrays)
        except ValueError as exc:
            raise ModelFileError(f"{where}: {name!r} in the model header: {exc}") from None
    return decoded


def _build_model(header, data, where):
    from aevb._estimator import AEVB

    if header["class"] != AEVB.__name__:
        raise ModelFileError(f"{where}: holds a {header['class']!r}, not an AEVB")
    arrays = _check_arrays(header["arrays"], data, where)
    known = AEVB().get_params(deep=False)
    unknown = sorted(set(header["params"]) - set(known))
    if unknown:
        raise ModelFileError(
            f"{where}: unknown parameters {unknown} (file written by aevb "
            f"{header.get('aevb_version')!r}); upgrade aevb"
        )
    params = _decode_all(header["params"], arrays, where)
    model = AEVB(**params)
    try:
        model._validate_params()
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"{where}: invalid parameters in the model file ({exc})") from None

    attributes = header["attributes"]
    missing = [k for k in _REQUIRED_ATTRIBUTES if k not in attributes]
    if missing:
        raise ModelFileError(f"{where}: model file lacks the fitted attributes {missing}")
    for name in attributes:
        # Only plain data attributes: never a parameter, a method, a property or a dunder.
        if not name.isidentifier() or name.startswith("__") or name in known or hasattr(AEVB, name):
            raise ModelFileError(f"{where}: model file sets a forbidden attribute {name!r}")
    state = _decode_all(attributes, arrays, where)

    n_params = _check_architecture(state["_architecture"], where)
    theta, opt = state["_params"], state["_optimizer_state"]
    if (
        not isinstance(theta, np.ndarray)
        or theta.dtype not in (np.float32, np.float64)
        or (theta.ndim != 1)
    ):
        raise ModelFileError(f"{where}: _params must be a 1-D float32 or float64 array")
    if theta.shape[0] != n_params:
        raise ModelFileError(
            f"{where}: _params has {theta.shape[0]} values, but the architecture "
            f"{state['_architecture']} needs {n_params}"
        )
    if not isinstance(opt, np.ndarray) or opt.dtype != theta.dtype or opt.shape != (2, n_params):
        shape = getattr(opt, "shape", None)
        raise ModelFileError(
            f"{where}: _optimizer_state must be a {theta.dtype} array of shape (2, {n_params}); "
            f"got {shape}"
        )
    for name in ("_seed", "t_", "n_iter_"):  # t_ and n_iter_ count on: headroom below 2**63
        _check_int(state[name], name, where, 0, 2**63 - 1 if name == "_seed" else 2**62)
    _check_int(state["_no_improvement_count"], "_no_improvement_count", where)
    if state["n_features_in_"] != state["_architecture"]["n_features"]:
        raise ModelFileError(
            f"{where}: n_features_in_ is {state['n_features_in_']!r}, but the architecture has "
            f"{state['_architecture']['n_features']} features"
        )
    _check_history(state, where)
    for name, value in state.items():
        setattr(model, name, value)
    # Parameters set after fitting (set_params) may no longer describe the model: the architecture wins,
    # as it is what the arrays hold.
    while mismatch := model._shape_mismatch():
        name, fitted, _ = mismatch
        model.set_params(**{name: np.dtype(fitted).type if name == "dtype" else fitted})
    return model


def _check_history(state, where):
    """The training history that partial_fit continues: numbers and lists of numbers."""

    def is_real(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    checks = {
        "loss_curve_": isinstance(state["loss_curve_"], list)
        and all(is_real(x) for x in state["loss_curve_"]),
        "best_loss_": is_real(state["best_loss_"]),
        "_last_best_loss": is_real(state["_last_best_loss"]),
        "validation_scores_": state["validation_scores_"] is None
        or (
            isinstance(state["validation_scores_"], list)
            and all(is_real(x) for x in state["validation_scores_"])
        ),
        "best_validation_score_": state["best_validation_score_"] is None
        or is_real(state["best_validation_score_"]),
    }
    for name, ok in checks.items():
        if not ok:
            raise ModelFileError(
                f"{where}: {name} must be a number, or a list of numbers; got {state[name]!r}"
            )
