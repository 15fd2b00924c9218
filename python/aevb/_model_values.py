"""Values in a model file's JSON header: how parameters and fitted attributes become JSON and back.

Plain JSON values (null, booleans, finite numbers, strings, lists, objects with string keys) stand
for themselves. Values that JSON cannot hold are objects tagged by a ``"$type"`` key:

- ``{"$type": "array", "index": i}``: entry i of the file's array table (any numeric numpy array,
  whose bytes live in the binary data section);
- ``{"$type": "float", "value": "inf" | "-inf" | "nan"}``: a non-finite float;
- ``{"$type": "scalar", "dtype": "float32", "value": 1.5}``: a numpy scalar;
- ``{"$type": "tuple", "items": [...]}``;
- ``{"$type": "dtype", "name": "float32", "form": "type" | "dtype"}``: ``np.float32`` or
  ``np.dtype("float32")``;
- ``{"$type": "str_array", "items": [...]}``: a 1-D array of str (``feature_names_in_``);
- ``{"$type": "random_state", "keys", "pos", "has_gauss", "cached_gaussian"}``: a
  ``np.random.RandomState`` (its MT19937 state), as ``random_state`` may be.

Decoding builds only these types: nothing in a header can name a class or run code.
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np

_BITS = (8, 16, 32, 64)
# Numeric dtypes an array or scalar may declare; anything else (objects, strings) is refused.
ARRAY_DTYPES = frozenset(
    ["bool", "float32", "float64", *(f"int{b}" for b in _BITS), *(f"uint{b}" for b in _BITS)]
)
MAX_DEPTH = 64  # nesting of header values; the format itself needs 5


def encode(value, add_array, what):
    """A JSON-safe form of value.

    Parameters
    ----------
    value : object
    add_array : callable
        Takes a numeric ndarray, stores it in the data section, returns its ``"array"`` tag.
    what : str
        Names the value in error messages, e.g. "attribute 'loss_curve_'".

    Raises
    ------
    TypeError
        If value (or anything inside it) has no representation, e.g. a function.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):
        if value.dtype.name not in ARRAY_DTYPES:
            raise TypeError(f"cannot store {what} of type {type(value).__name__} in a model file")
        item = encode(value.item(), add_array, what)
        return {"$type": "scalar", "dtype": value.dtype.name, "value": item}
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$type": "float", "value": repr(value)}
    if isinstance(value, tuple):
        return {"$type": "tuple", "items": [encode(v, add_array, what) for v in value]}
    if isinstance(value, list):
        return [encode(v, add_array, what) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value) or "$type" in value:
            raise TypeError(f"cannot store {what}: a dict needs str keys other than '$type'")
        return {k: encode(v, add_array, what) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        if value.dtype == object and value.ndim == 1 and all(isinstance(v, str) for v in value):
            return {"$type": "str_array", "items": [str(v) for v in value]}
        return add_array(value)
    if isinstance(value, type) and issubclass(value, np.generic):
        return {"$type": "dtype", "name": np.dtype(value).name, "form": "type"}
    if isinstance(value, np.dtype):
        return {"$type": "dtype", "name": value.name, "form": "dtype"}
    if isinstance(value, np.random.RandomState):
        _, keys, pos, has_gauss, cached = value.get_state(legacy=True)
        return {
            "$type": "random_state",
            "keys": [int(k) for k in keys],
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        }
    raise TypeError(
        f"cannot store {what} of type {type(value).__name__} in a model file; fitted state must be "
        "numbers, strings, lists, dicts or numeric numpy arrays"
    )


def decode(value, arrays):
    """The Python value of a header value (the inverse of ``encode``).

    Parameters
    ----------
    value : object
        Parsed JSON, nested at most ``MAX_DEPTH`` deep (see ``depth``).
    arrays : list of ndarray
        The file's array table, already checked and read.

    Raises
    ------
    ValueError
        For an unknown tag or a tagged value that does not hold what its tag says.
    """
    if isinstance(value, list):
        return [decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get("$type")
    if tag is None:
        return {k: decode(v, arrays) for k, v in value.items()}
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise ValueError(f"unknown value type {tag!r}")
    try:
        return decoder(value, arrays)
    except (KeyError, TypeError, ValueError, OverflowError, IndexError) as exc:
        raise ValueError(f"invalid {tag!r} value ({exc})") from None


def depth(value):
    """How deeply lists and dicts nest in a parsed JSON value, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (list, dict)):
            deepest = max(deepest, level)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children)
    return deepest


# --------------------------------------------------------------------------- one decoder per tag


def _array(value, arrays):
    index = value["index"]
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(arrays):
        raise IndexError(f"array index {index!r} is not in the table of {len(arrays)}")
    return arrays[index]


def _float(value, arrays):
    if value["value"] not in ("inf", "-inf", "nan"):
        raise ValueError(f"{value['value']!r} is not inf, -inf or nan")
    return float(value["value"])


def _scalar(value, arrays):
    if value["dtype"] not in ARRAY_DTYPES:
        raise ValueError(f"unsupported dtype {value['dtype']!r}")
    item = decode(value["value"], arrays)
    if not isinstance(item, (int, float)):
        raise TypeError(f"{item!r} is not a number")
    return np.array(item).astype(value["dtype"])[()]


def _tuple(value, arrays):
    if not isinstance(value["items"], list):
        raise TypeError("items must be a list")
    return tuple(decode(value["items"], arrays))


def _dtype(value, arrays):
    if value["name"] not in ARRAY_DTYPES or value["form"] not in ("type", "dtype"):
        raise ValueError(f"unsupported dtype {value['name']!r}")
    dtype = np.dtype(value["name"])
    return dtype.type if value["form"] == "type" else dtype


def _str_array(value, arrays):
    items = value["items"]
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise TypeError("items must be strings")
    return np.array(items, dtype=object)


def _random_state(value, arrays):
    keys = np.array(value["keys"], dtype=np.uint32)
    state = (
        "MT19937",
        keys,
        int(value["pos"]),
        int(value["has_gauss"]),
        float(value["cached_gaussian"]),
    )
    rng = np.random.RandomState()
    rng.set_state(state)  # checks the key count
    return rng


_DECODERS = {
    "array": _array,
    "float": _float,
    "scalar": _scalar,
    "tuple": _tuple,
    "dtype": _dtype,
    "str_array": _str_array,
    "random_state": _random_state,
}
