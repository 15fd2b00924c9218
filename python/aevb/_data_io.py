"""Data files for the command line: .npy, .npz, CSV and IDX (MNIST-style) in, .npy and .csv out.

The format is recognised from the file's first bytes, not its name, and gzip-compressed files of any
of them are read transparently. Every loader refuses pickled objects: reading data never runs code.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import zlib

import numpy as np

# IDX type codes (LeCun's MNIST page): the element type of the big-endian data after the dims.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_GZIP_MAGIC = b"\x1f\x8b"


class DataError(ValueError):
    """A data file that cannot be used: unreadable, of an unknown format, or of the wrong shape."""


def load_data(path, *, key=None, label_column=None, scale=True):
    """Read a data matrix, one row per datapoint.

    Parameters
    ----------
    path : str or os.PathLike
        A .npy or .npz file (pickled objects are refused), a CSV file (numbers, an optional header
        line, detected when the first line is not all numbers; ``#`` starts a comment), or an IDX
        file as the MNIST sets ship (magic 0x0801, 0x0803, ...). Any of them may be gzip-compressed.
    key : str, optional
        The array to read from a .npz file; default: its first array.
    label_column : int or str, optional
        A column to drop (e.g. the class label), by index (negative counts from the end) or, for a
        CSV file with a header, by name.
    scale : bool, default=True
        Divide uint8 data (images) by 255, to [0, 1] as the Bernoulli likelihood needs.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        float32 for scaled uint8 data, the file's float dtype for float data, float64 otherwise.
        Arrays of 3 or more dimensions (images) are flattened to one row per first index.

    Raises
    ------
    DataError
        A ValueError naming the file and the problem.
    OSError
        If the file cannot be read.
    """
    name = os.fspath(path)
    with open(name, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{name}: corrupt gzip data ({exc})") from None
    if key is not None and raw[:4] != _ZIP_MAGIC:
        raise DataError(f"{name}: a key selects an array of a .npz file; this is not one")
    names = None
    if raw[:6] == _NPY_MAGIC:
        X = _load_numpy(raw, name, key=None)
    elif raw[:4] == _ZIP_MAGIC:
        X = _load_numpy(raw, name, key=key)
    elif _looks_like_idx(raw):
        X = read_idx(raw, name)
    else:
        X, names = _load_csv(raw, name)
    return _as_matrix(X, name, label_column=label_column, names=names, scale=scale)


def read_idx(raw, name="<idx>"):
    """Parse IDX bytes: two zero bytes, a type code, the number of dims, uint32 dims, then data.

    Everything is big-endian, as in the MNIST files.

    Parameters
    ----------
    raw : bytes
    name : str
        For messages.

    Returns
    -------
    array : ndarray of shape dims, in native byte order
    """
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{name}: not an IDX file (magic {raw[:4].hex()})")
    ndim = raw[3]
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise DataError(f"{name}: truncated IDX header ({len(raw)} bytes for {ndim} dims)")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    nbytes = math.prod(dims) * dtype.itemsize
    if len(raw) - start != nbytes:
        raise DataError(
            f"{name}: IDX header declares dims {dims} of {dtype.name} ({nbytes} bytes), but the "
            f"file holds {len(raw) - start} data bytes"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=start, count=math.prod(dims))
    return data.reshape(dims).astype(dtype.newbyteorder("="))


def save_array(path, array, header=None):
    """Write an array as .npy or .csv, chosen by the file name's extension.

    Parameters
    ----------
    path : str or os.PathLike
        Ends in ``.npy`` or ``.csv``.
    array : ndarray of shape (n_rows,) or (n_rows, n_columns)
    header : list of str, optional
        Column names for the CSV's first line.
    """
    name = os.fspath(path)
    extension = os.path.splitext(name)[1].lower()
    if extension == ".npy":
        np.save(name, array)
    elif extension == ".csv":
        array = np.asarray(array)
        table = array.reshape(-1, 1) if array.ndim == 1 else array
        # Enough digits to read back the exact value of the array's precision.
        fmt = "%.9g" if array.dtype == np.float32 else "%.17g"
        np.savetxt(
            name,
            table,
            fmt=fmt,
            delimiter=",",
            comments="",
            header=",".join(header) if header else "",
        )
    else:
        raise DataError(f"{name}: the output file must end in .npy or .csv")


def check_writable(path):
    """Fail before the work, not after it, when an output file cannot be created."""
    name = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(name))
    if not os.path.isdir(directory):
        raise DataError(f"{name}: directory {directory} does not exist")
    if os.path.isdir(name):
        raise DataError(f"{name}: is a directory")


# --------------------------------------------------------------------------- loaders


def _load_numpy(raw, name, key):
    try:
        loaded = np.load(io.BytesIO(raw), allow_pickle=False)
    except ValueError as exc:  # object arrays, damaged headers
        raise DataError(f"{name}: cannot read the numpy file ({exc})") from None
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        if not loaded.files:
            raise DataError(f"{name}: the .npz archive holds no arrays")
        if key is None:
            key = loaded.files[0]
        elif key not in loaded.files:
            raise DataError(f"{name}: no array {key!r} in the archive; it holds {loaded.files}")
        try:
            return loaded[key]
        except ValueError as exc:
            raise DataError(f"{name}: cannot read array {key!r} ({exc})") from None


def _looks_like_idx(raw):
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        return False
    return len(raw) >= 4 + 4 * raw[3]


def _load_csv(raw, name):
    """Numbers separated by commas, tabs, semicolons or whitespace; a header line if not numeric."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(
            f"{name}: not a recognised data file (expected .npy, .npz, CSV or IDX)"
        ) from None
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise DataError(f"{name}: no data rows")
    first = lines[0]
    delimiter = next((d for d in (",", "\t", ";") if d in first), None)

    def split(line):
        if delimiter is None:
            return line.split()
        return [cell.strip() for cell in next(csv.reader([line], delimiter=delimiter))]

    cells = split(first)
    names = None
    if not all(_is_number(cell) for cell in cells):
        names, lines = cells, lines[1:]
        if not lines:
            raise DataError(f"{name}: a header line but no data rows")
    try:
        X = np.loadtxt(lines, delimiter=delimiter, ndmin=2, dtype=np.float64, quotechar='"')
    except ValueError as exc:
        detail = " ".join(str(exc).split()).split("; use `usecols`")[0]
        raise DataError(f"{name}: {detail}") from None
    if names is not None and len(names) != X.shape[1]:
        raise DataError(
            f"{name}: the header names {len(names)} columns, the rows have {X.shape[1]}"
        )
    return X, names


def _is_number(cell):
    try:
        float(cell.strip('"'))
    except ValueError:
        return False
    return True


def _as_matrix(X, name, label_column, names, scale):
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise DataError(f"{name}: needs numbers; got an array of dtype {X.dtype}")
    if X.ndim < 2:
        raise DataError(
            f"{name}: needs a 2-D array, one row per datapoint; got shape {X.shape} (a label file?)"
        )
    if X.ndim > 2:  # images: one row per image
        X = X.reshape(X.shape[0], -1)
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{name}: no data (shape {X.shape})")
    if label_column is not None:
        X = np.delete(X, _column_index(label_column, X.shape[1], names, name), axis=1)
        if X.shape[1] == 0:
            raise DataError(f"{name}: no columns left after dropping the label column")
    if X.dtype == np.uint8 and scale:
        return X.astype(np.float32) / np.float32(255)
    if X.dtype.kind != "f" or X.dtype == np.float16:
        return X.astype(np.float64)
    return X


def _column_index(label_column, n_columns, names, name):
    if isinstance(label_column, str) and not label_column.lstrip("-").isdigit():
        if names is None or label_column not in names:
            known = f"; the header has {names}" if names else " (the file has no header)"
            raise DataError(f"{name}: no column named {label_column!r}{known}")
        return names.index(label_column)
    index = int(label_column)
    if not -n_columns <= index < n_columns:
        raise DataError(f"{name}: label column {index} is out of range for {n_columns} columns")
    return index % n_columns
