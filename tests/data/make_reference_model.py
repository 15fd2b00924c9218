"""Writes the reference model file and its expected outputs; run once per format version.

    python tests/data/make_reference_model.py

The files it writes are committed, and ``tests/test_model_file.py`` loads them forever after, so a
change that stops this library from reading files it once wrote fails a test. Do not regenerate them
to make that test pass: a new format version gets new files beside the old ones.
"""

import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

import aevb
from aevb._model_file import FORMAT_VERSION, save_model

HERE = Path(__file__).parent
MODEL = HERE / f"aevb-{aevb.__version__}-tiny.aevb"
EXPECTED = HERE / f"aevb-{aevb.__version__}-tiny-expected.npz"


def main():
    X = load_digits().data / 16.0
    with warnings.catch_warnings():  # 5 epochs, by design
        warnings.simplefilter("ignore")
        model = aevb.AEVB(
            n_components=2,
            hidden_layer_sizes=(8,),
            max_iter=5,
            dtype=np.float32,
            random_state=0,
            n_jobs=1,
        ).fit(X)
    save_model(model, MODEL)
    rows = X[:5]
    np.savez(
        EXPECTED,
        X=rows,
        transform=model.transform(rows),
        score=model.score_samples(rows),
        loss_curve=np.array(model.loss_curve_),
        format_version=FORMAT_VERSION,
    )
    print(f"wrote {MODEL} ({MODEL.stat().st_size} bytes) and {EXPECTED}")


if __name__ == "__main__":
    main()
