"""The builds of the core for each instruction set: the best one is chosen, and all agree to rounding."""

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

from aevb import _core
from aevb._native import core

SUPPORTED = [isa for isa in ("avx2", "avx512") if _core.cpu_supports()[isa]]


def _module(isa):
    return importlib.import_module({"avx2": "aevb._core_avx2", "avx512": "aevb._core_avx512"}[isa])


def run_python(code, **env):
    """`python -c code` in a fresh process with `env` added to the environment."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, **env),
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_best_supported_build_is_loaded_unless_one_is_forced():
    best = "avx512" if "avx512" in SUPPORTED else ("avx2" if SUPPORTED else "baseline")
    assert core.isa == os.environ.get("AEVB_ISA", best)
    assert _core.isa == "baseline"


@pytest.mark.parametrize("isa", SUPPORTED)
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_builds_agree_to_rounding(isa, likelihood):
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(37, 23))
    eps = rng.standard_normal((37 * 2, 4))
    results = []
    for module in (_core, _module(isa)):
        layout = module.Layout(23, 4, [17, 9], "tanh", likelihood)
        params = np.empty(layout.n_params)
        module.init_params(layout, 5, params)
        grad = np.empty_like(params)
        total, rows = module.elbo_step(layout, params, X, eps, "analytic", 2, 1.0, grad)
        scores = module.score(layout, params, X, 30, 7, 1)
        results.append((params, total, rows, grad, scores))
    (p0, t0, r0, g0, s0), (p1, t1, r1, g1, s1) = results
    np.testing.assert_array_equal(p0, p1)  # initialization is exact integer-derived arithmetic
    np.testing.assert_allclose(t1, t0, rtol=1e-12)
    np.testing.assert_allclose(r1, r0, rtol=1e-12)
    np.testing.assert_allclose(g1, g0, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(s1, s0, rtol=1e-11)


@pytest.mark.parametrize("isa", SUPPORTED)
def test_builds_draw_the_same_noise(isa):
    # Box-Muller's log, cos and sin are the core's own arithmetic (box_muller.hpp), not libm's, so every
    # build makes the same bits, in vectorized batches and one draw at a time (the odd ends of a fill).
    for stream, first, rows, cols in [
        (5, 0, 20, 100),
        (5, 3, 7, 11),
        (5, 1, 1, 1),
        (5 | 1 << 62, 7 << 33, 9, 13),
    ]:
        ours = _module(isa).normal_draws(0x0123456789ABCDEF, stream, first, rows, cols)
        np.testing.assert_array_equal(
            ours, _core.normal_draws(0x0123456789ABCDEF, stream, first, rows, cols)
        )


def test_inference_covers_every_row_when_openmp_grants_fewer_threads():
    # With OMP_THREAD_LIMIT=1 a call asking for 3 threads runs on one: every row must still be encoded,
    # checked and scored (each thread's run of rows comes from the threads granted, not those asked for).
    code = (
        "import numpy as np\n"
        "from aevb._native import core\n"
        "layout = core.Layout(6, 2, [5], 'tanh', 'gaussian')\n"
        "params = np.empty(layout.n_params)\n"
        "core.init_params(layout, 0, params)\n"
        "X = np.random.default_rng(0).standard_normal((700, 6))\n"
        "out, low, high, finite = core.encode(layout, params, X, 3)\n"
        "Y = X.copy()\n"
        "Y[-1, -1] = np.nan\n"
        "print(np.array_equal(out, core.encode(layout, params, X, 1)[0]),\n"
        "      (low, high, finite) == (X.min(), X.max(), True),\n"
        "      core.encode(layout, params, Y, 3)[3],\n"
        "      np.array_equal(core.score(layout, params, X, 2, 0, 3), core.score(layout, params, X, 2, 0, 1)))\n"
    )
    out = run_python(code, OMP_THREAD_LIMIT="1")
    assert out.stdout.strip().splitlines()[-1].split() == ["True", "True", "False", "True"], (
        out.stderr
    )


def test_aevb_isa_forces_a_build():
    code = "from aevb._native import core; print(core.isa)"
    out = run_python(code, AEVB_ISA="baseline")
    assert out.stdout.strip().splitlines()[-1] == "baseline", out.stderr
    out = run_python(code, AEVB_ISA="sse9")
    assert out.returncode != 0 and "AEVB_ISA must be one of" in out.stderr


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_value_range_is_numpys_min_max_and_isfinite(dtype, n_threads):
    rng = np.random.default_rng(0)
    for size in [1, 7, 4096, 4097, 3 * 4096 + 5, 100_003]:  # around the pieces and thread shares
        x = rng.standard_normal(size).astype(dtype)
        assert core.value_range(x, n_threads) == (x.min(), x.max(), True)
        for position in {0, size // 3, size - 1}:
            for bad in [np.nan, np.inf, -np.inf]:
                y = x.copy()
                y[position] = bad
                assert core.value_range(y, n_threads)[2] is False
    assert core.value_range(np.array([[2.0, -1.0], [0.5, 3.0]]), n_threads) == (-1.0, 3.0, True)
    with pytest.raises(ValueError, match="X must not be empty"):
        core.value_range(np.zeros(0, dtype), n_threads)
    with pytest.raises(ValueError, match="X must be C-contiguous"):
        core.value_range(np.zeros((4, 4), dtype).T, n_threads)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_encode_finds_its_inputs_value_range_in_the_same_pass(dtype, n_threads):
    # 1 row (fewer rows than threads), 300 and 1200 (a short last block, padded with copies of X's rows), and a
    # NaN at the first, a middle and the last value.
    rng = np.random.default_rng(1)
    layout = core.Layout(6, 2, [5], "tanh", "gaussian")
    params = np.empty(layout.n_params, dtype)
    core.init_params(layout, 0, params)
    for rows in [1, 300, 1200]:
        X = rng.standard_normal((rows, 6)).astype(dtype)
        out, low, high, finite = core.encode(layout, params, X, n_threads)
        assert out.shape == (rows, 4)
        assert (low, high, finite) == (X.min(), X.max(), True)
        for position in {0, X.size // 2, X.size - 1}:
            Y = X.copy()
            Y.flat[position] = np.nan
            assert core.encode(layout, params, Y, n_threads)[3] is False


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("n_features", "n_components", "hidden"), [(784, 20, [500]), (40, 5, [30, 7]), (3, 1, [2])]
)
def test_a_rows_encoding_and_decoding_do_not_depend_on_the_other_rows(
    dtype, n_features, n_components, hidden
):
    # Calls on n rows pad their last block to a whole number of 16 columns (at least 32, at most 256): each
    # row's result must be bit-identical whatever the padded width, including for layers small enough that
    # a narrow block would make Eigen switch to its lazy product (3 -> 2 -> 2).
    rng = np.random.default_rng(2)
    layout = core.Layout(n_features, n_components, hidden, "tanh", "bernoulli")
    params = np.empty(layout.n_params, dtype)
    core.init_params(layout, 1, params)
    X = rng.uniform(size=(700, n_features)).astype(dtype)
    Z = rng.standard_normal((700, n_components)).astype(dtype)
    encoded = core.encode(layout, params, X, 2)[0]
    decoded = core.decode(layout, params, Z, False, 0, 2)
    for start in [0, 123]:
        for n in [1, 2, 15, 16, 17, 31, 33, 100, 255, 256, 257, 300]:
            rows = slice(start, start + n)
            np.testing.assert_array_equal(core.encode(layout, params, X[rows], 1)[0], encoded[rows])
            np.testing.assert_array_equal(
                core.decode(layout, params, Z[rows], False, 0, 1), decoded[rows]
            )


def test_the_step_refuses_an_empty_batch():
    layout = core.Layout(5, 2, [4], "tanh", "bernoulli")
    params = np.zeros(layout.n_params)
    with pytest.raises(ValueError, match=r"X must have at least one row; got shape \(0, 5\)"):
        core.elbo_step(
            layout, params, np.zeros((0, 5)), np.zeros((0, 2)), "analytic", 1, 1.0, params.copy()
        )


@pytest.mark.skipif(
    not core.openmp or not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs OpenMP and two processors this process may run on",
)
def test_thread_round_trip_is_measured_on_two_threads():
    # bench/speed.py labels each run with this latency; it is a time, so only its sanity is asserted.
    ns = core.thread_round_trip_ns(200)
    assert 0 < ns < 1e6
    with pytest.raises(ValueError, match="round_trips must be >= 1; got 0"):
        core.thread_round_trip_ns(0)


def test_thread_round_trip_is_nan_when_openmp_grants_one_thread():
    code = "from aevb._native import core; print(core.thread_round_trip_ns(10))"
    out = run_python(code, OMP_THREAD_LIMIT="1")
    assert out.stdout.strip().splitlines()[-1] == "nan", out.stderr


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_thread_round_trip_is_nan_on_one_processor():
    # Two threads on one processor would take turns by the scheduler's time slices (milliseconds each).
    code = (
        "import os\n"
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "from aevb._native import core\n"
        "print(core.thread_round_trip_ns(10))\n"
    )
    out = run_python(code)
    assert out.stdout.strip().splitlines()[-1] == "nan", out.stderr
