// pybind11 bindings: convert arrays, check shapes and dtypes, release the GIL, call the core. No numerics here.
// A numpy (n, d) C-order array is viewed as an Eigen (d, n) column-major matrix without a copy.
#include <Python.h>
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <string>

#include "aevb/aevb.hpp"

namespace py = pybind11;
using namespace aevb;

namespace {

template <class T> T parse(const std::string& name, const std::string& value, std::initializer_list<std::pair<const char*, T>> options) {
    std::string expected;
    for (const auto& [key, v] : options) {
        if (value == key) return v;
        expected += (expected.empty() ? "'" : ", '") + std::string(key) + "'";
    }
    throw py::value_error(name + " must be one of " + expected + "; got '" + value + "'");
}

Activation parse_activation(const std::string& s) {
    return parse<Activation>("activation", s, {{"tanh", Activation::tanh}, {"relu", Activation::relu},
                                               {"softplus", Activation::softplus}, {"sigmoid", Activation::sigmoid}});
}
Likelihood parse_likelihood(const std::string& s) {
    return parse<Likelihood>("likelihood", s, {{"bernoulli", Likelihood::bernoulli}, {"gaussian", Likelihood::gaussian}});
}
Objective parse_objective(const std::string& s) {
    return parse<Objective>("objective", s, {{"analytic", Objective::elbo_analytic_kl},
                                             {"sampled", Objective::elbo_sampled_kl},
                                             {"importance", Objective::importance_weighted}});
}
Solver parse_solver(const std::string& s) {
    return parse<Solver>("solver", s, {{"adam", Solver::adam}, {"adagrad", Solver::adagrad}, {"sgd", Solver::sgd}});
}

// Native-endian floating point of S's width (dtype objects compare by value, not identity: unpickled
// arrays carry equal but distinct dtype instances).
template <class S> bool has_dtype(const py::array& a) {
    const py::dtype d = a.dtype();
    return d.kind() == 'f' && d.itemsize() == py::ssize_t(sizeof(S)) && d.byteorder() != '>';
}
bool is_float32(const py::array& a) { return has_dtype<float>(a); }

// A C-contiguous array of scalar S, checked.
template <class S> py::array_t<S> checked(const py::array& a, const char* name, py::ssize_t ndim) {
    if (!has_dtype<S>(a))
        throw py::value_error(std::string(name) + " must have dtype " + std::string(py::str(py::dtype::of<S>())) +
                              "; got " + std::string(py::str(a.dtype())));
    if (!(a.flags() & py::array::c_style))
        throw py::value_error(std::string(name) + " must be C-contiguous");
    if (a.ndim() != ndim)
        throw py::value_error(std::string(name) + " must be " + std::to_string(ndim) + "-D; got " +
                              std::to_string(a.ndim()) + "-D");
    return py::array_t<S>::ensure(a);
}

void expect(bool ok, const std::string& what) {
    if (!ok) throw py::value_error(what);
}
std::string shape_of(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

// (n, d) C-order -> (d, n) column-major view.
template <class S> Eigen::Map<const Matrix<S>> columns(const py::array_t<S>& a) {
    return {a.data(), Index(a.shape(1)), Index(a.shape(0))};
}
template <class S> Eigen::Map<Matrix<S>> columns_mut(py::array_t<S>& a) {
    return {a.mutable_data(), Index(a.shape(1)), Index(a.shape(0))};
}

template <class S> py::array_t<S> params_of(const Layout& layout, const py::array& params) {
    auto p = checked<S>(params, "params", 1);
    expect(p.shape(0) == layout.n_params, "params must have " + std::to_string(layout.n_params) + " elements; got " +
                                              std::to_string(p.shape(0)));
    return p;
}

template <class S> py::array_t<S> data_of(const Layout& layout, const py::array& X, Index d, const char* name) {
    auto x = checked<S>(X, name, 2);
    expect(x.shape(1) == d, std::string(name) + " must have " + std::to_string(d) + " columns; got shape " + shape_of(X));
    return x;
}

int threads_of(int n_threads) {
    if (n_threads < 1) throw py::value_error("n_threads must be >= 1; got " + std::to_string(n_threads));
    return n_threads;
}

py::list layer_table(const std::vector<Dense>& layers) {
    py::list out;
    for (const Dense& d : layers) out.append(py::make_tuple(d.n_in, d.n_out, d.weight_offset, d.bias_offset));
    return out;
}

template <class S> void init_impl(const Layout& layout, uint64_t seed, py::array params) {
    auto p = params_of<S>(layout, params);
    init_params<S>(layout, seed, p.mutable_data());
}

template <class S>
py::tuple elbo_step_impl(const Layout& layout, const py::array& params, const py::array& X, const py::array& eps,
                         const std::string& objective, Index n_samples, double beta, py::object grad,
                         int n_threads) {
    auto p = params_of<S>(layout, params);
    auto x = data_of<S>(layout, X, layout.n_features, "X");
    auto e = data_of<S>(layout, eps, layout.n_components, "eps");
    expect(x.shape(0) >= 1, "X must have at least one row; got shape " + shape_of(X));
    expect(n_samples >= 1, "n_samples must be >= 1");
    expect(e.shape(0) == x.shape(0) * n_samples, "eps must have n_samples * X.shape[0] = " +
                                                     std::to_string(x.shape(0) * n_samples) + " rows; got " + shape_of(eps));
    StepOptions opt{parse_objective(objective), n_samples, beta};
    S* g = nullptr;
    py::array_t<S> gbuf;
    if (!grad.is_none()) {
        gbuf = params_of<S>(layout, grad.cast<py::array>());
        g = gbuf.mutable_data();
    }
    const int team_size = threads_of(n_threads);
    Workspace<S> ws;
    ws.reserve(layout, x.shape(0), n_samples, team_size);
    double total = 0.0;
    {
        py::gil_scoped_release release;
#pragma omp parallel num_threads(team_size)
        {
            const double team_total = elbo_step<S>(layout, p.data(), columns(x), columns(e), opt, ws, g,
                                                   Team::of_parallel_region());
            if (thread_index() == 0) total = team_total;
        }
    }
    py::array_t<double> per_row(x.shape(0));
    for (py::ssize_t i = 0; i < x.shape(0); ++i) per_row.mutable_at(i) = double(ws.bound[i]);
    return py::make_tuple(total, per_row);
}

OptimizerConfig optimizer_config(const py::dict& o) {
    OptimizerConfig cfg;
    cfg.solver = parse_solver(o["solver"].cast<std::string>());
    cfg.learning_rate = o["learning_rate"].cast<double>();
    cfg.beta_1 = o["beta_1"].cast<double>();
    cfg.beta_2 = o["beta_2"].cast<double>();
    cfg.epsilon = o["epsilon"].cast<double>();
    cfg.momentum = o["momentum"].cast<double>();
    cfg.nesterov = o["nesterov"].cast<bool>();
    return cfg;
}

template <class S>
py::tuple train_epoch_impl(const Layout& layout, py::array params, py::array state, int64_t step, const py::array& X,
                           const py::array_t<int64_t, py::array::c_style>& rows, uint64_t epoch, const py::dict& o) {
    auto p = params_of<S>(layout, params);
    auto st = checked<S>(state, "state", 2);
    expect(st.shape(0) == 2 && st.shape(1) == layout.n_params,
           "state must have shape (2, " + std::to_string(layout.n_params) + "); got " + shape_of(state));
    auto x = data_of<S>(layout, X, layout.n_features, "X");
    std::vector<int64_t> row_list(rows.data(), rows.data() + rows.size());
    for (int64_t r : row_list) expect(r >= 0 && r < x.shape(0), "row index out of range");
    expect(!row_list.empty(), "at least one row is needed to train");

    TrainOptions opt;
    opt.algorithm = parse<Algorithm>("algorithm", o["algorithm"].cast<std::string>(),
                                     {{"aevb", Algorithm::aevb}, {"wake-sleep", Algorithm::wake_sleep}});
    opt.step = {parse_objective(o["objective"].cast<std::string>()), o["n_samples"].cast<Index>(), o["beta"].cast<double>()};
    opt.optimizer = optimizer_config(o);
    opt.batch_size = o["batch_size"].cast<Index>();
    opt.alpha = o["alpha"].cast<double>();
    opt.n_total = o["n_total"].cast<double>();
    opt.shuffle = o["shuffle"].cast<bool>();
    opt.seed = o["seed"].cast<uint64_t>();
    opt.n_threads = threads_of(o["n_threads"].cast<int>());
    expect(opt.batch_size >= 1 && opt.step.n_samples >= 1 && opt.n_total > 0, "batch_size, n_samples, n_total must be positive");

    // Ctrl-C: the loop asks at each minibatch boundary; the Python error stays set and is raised below.
    bool interrupted_by_signal = false;
    auto interrupt_requested = [&]() {
        py::gil_scoped_acquire acquire;
        interrupted_by_signal = PyErr_CheckSignals() != 0;
        return interrupted_by_signal;
    };
    EpochReport report;
    {
        py::gil_scoped_release release;
        report = train_epoch<S>(layout, p.mutable_data(), st.mutable_data(), step, columns(x), std::move(row_list),
                                epoch, opt, interrupt_requested);
    }
    // A signal handler's exception (KeyboardInterrupt) is handed back, for Python to raise once it has
    // recorded the steps taken.
    py::object raised = py::none();
    if (interrupted_by_signal) raised = py::error_already_set().value();
    const char* status = report.status == TrainStatus::completed ? "completed"
                         : report.status == TrainStatus::non_finite ? "non_finite" : "interrupted";
    return py::make_tuple(report.bound_sum, report.n_seen, step, status, raised);
}

template <class S> py::array_t<double> score_impl(const Layout& layout, const py::array& params, const py::array& X,
                                                   Index n_importance, uint64_t seed, int n_threads) {
    auto p = params_of<S>(layout, params);
    n_threads = threads_of(n_threads);
    auto x = data_of<S>(layout, X, layout.n_features, "X");
    expect(n_importance >= 1, "n_importance must be >= 1; got " + std::to_string(n_importance));
    py::array_t<double> out(x.shape(0));
    double* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        score<S>(layout, p.data(), columns(x), n_importance, seed, o, n_threads);
    }
    return out;
}

template <class S> py::tuple encode_impl(const Layout& layout, const py::array& params, const py::array& X, int n_threads) {
    auto p = params_of<S>(layout, params);
    n_threads = threads_of(n_threads);
    auto x = data_of<S>(layout, X, layout.n_features, "X");
    py::array_t<S> out({x.shape(0), py::ssize_t(2 * layout.n_components)});
    auto o = columns_mut(out);
    ValueRange<S> range;
    {
        py::gil_scoped_release release;
        range = encode<S>(layout, p.data(), columns(x), o, n_threads);
    }
    return py::make_tuple(out, double(range.min), double(range.max), range.finite);
}

template <class S> py::array_t<S> decode_impl(const Layout& layout, const py::array& params, const py::array& Z,
                                              bool draw, uint64_t seed, int n_threads) {
    auto p = params_of<S>(layout, params);
    n_threads = threads_of(n_threads);
    auto z = data_of<S>(layout, Z, layout.n_components, "Z");
    py::array_t<S> out({z.shape(0), py::ssize_t(layout.n_features)});
    auto o = columns_mut(out);
    {
        py::gil_scoped_release release;
        decode<S>(layout, p.data(), columns(z), o, n_threads, draw, mix64(seed));
    }
    return out;
}

template <class S> py::array_t<S> generate_impl(const Layout& layout, const py::array& params, Index n, uint64_t seed,
                                                bool draw, int n_threads) {
    auto p = params_of<S>(layout, params);
    n_threads = threads_of(n_threads);
    expect(n >= 0, "the number of samples must be >= 0");
    py::array_t<S> out({py::ssize_t(n), py::ssize_t(layout.n_features)});
    auto o = columns_mut(out);
    {
        py::gil_scoped_release release;
        generate<S>(layout, p.data(), seed, draw, o, n_threads);
    }
    return out;
}

// Dispatch on the parameter buffer's dtype: float32 or float64.
template <class F32, class F64> auto by_dtype(const py::array& params, F32 f32, F64 f64) {
    if (is_float32(params)) return f32();
    if (has_dtype<double>(params)) return f64();
    throw py::value_error("params must be float32 or float64; got " + std::string(py::str(params.dtype())));
}

}  // namespace

// Which CPU features this machine has, for choosing among the builds (x86-64; elsewhere only the baseline).
py::dict cpu_supports() {
    py::dict out;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    out["avx2"] = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    out["avx512"] = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                    __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    out["avx2"] = false;
    out["avx512"] = false;
#endif
    return out;
}

#ifndef AEVB_MODULE
#define AEVB_MODULE _core
#define AEVB_ISA "baseline"
#endif

PYBIND11_MODULE(AEVB_MODULE, m) {
    m.doc() = "aevb's C++/Eigen core: fused SGVB step, epochs, scoring (private; use aevb.AEVB)";
    m.attr("isa") = AEVB_ISA;
    Eigen::setNbThreads(1);  // aevb's own threads are the only parallelism: Eigen's products run inside them
    m.attr("simd") = Eigen::SimdInstructionSetsInUse();
    m.def("cpu_supports", &cpu_supports, "{'avx2': bool, 'avx512': bool}: the instruction sets this CPU runs.");

    py::class_<Layout>(m, "Layout", py::module_local())  // each build has its own Layout type
        .def(py::init([](Index n_features, Index n_components, std::vector<Index> hidden, const std::string& activation,
                         const std::string& likelihood) {
                 try {
                     return Layout(n_features, n_components, std::move(hidden), parse_activation(activation),
                                   parse_likelihood(likelihood));
                 } catch (const std::invalid_argument& e) {
                     throw py::value_error(e.what());
                 }
             }),
             py::arg("n_features"), py::arg("n_components"), py::arg("hidden"), py::arg("activation"), py::arg("likelihood"))
        .def_readonly("n_params", &Layout::n_params)
        .def_readonly("n_features", &Layout::n_features)
        .def_readonly("n_components", &Layout::n_components)
        .def_property_readonly("encoder", [](const Layout& l) { return layer_table(l.encoder); },
                               "[(n_in, n_out, weight_offset, bias_offset)] per encoder layer")
        .def_property_readonly("decoder", [](const Layout& l) { return layer_table(l.decoder); },
                               "[(n_in, n_out, weight_offset, bias_offset)] per decoder layer");

    m.def("init_params", [](const Layout& l, uint64_t seed, py::array params) {
        by_dtype(params, [&] { init_impl<float>(l, seed, params); }, [&] { init_impl<double>(l, seed, params); });
    }, py::arg("layout"), py::arg("seed"), py::arg("params"));

    m.def("elbo_step", [](const Layout& l, const py::array& params, const py::array& X, const py::array& eps,
                          const std::string& objective, Index n_samples, double beta, py::object grad, int n_threads) {
        return by_dtype(params,
                        [&] { return elbo_step_impl<float>(l, params, X, eps, objective, n_samples, beta, grad, n_threads); },
                        [&] { return elbo_step_impl<double>(l, params, X, eps, objective, n_samples, beta, grad, n_threads); });
    }, py::arg("layout"), py::arg("params"), py::arg("X"), py::arg("eps"), py::arg("objective") = "analytic",
       py::arg("n_samples") = 1, py::arg("beta") = 1.0, py::arg("grad") = py::none(), py::arg("n_threads") = 1,
       "Fused step with explicit noise eps (n * n_samples, J), row i * n_samples + l. Returns (sum of bounds, "
       "per-row bounds); writes the gradient of -(1/n) sum objective into grad when given. n_threads share the "
       "step as in training (each layer split by rows).");

    m.def("training_threads", [](const Layout& l, Index batch_size, Index n_samples, int n_threads) {
        return training_threads(l, batch_size, n_samples, threads_of(n_threads));
    }, py::arg("layout"), py::arg("batch_size"), py::arg("n_samples"), py::arg("n_threads"),
       "Threads a training step of this size uses, of n_threads: each needs enough matrix work per step.");

    m.def("owned_params", [](const Layout& l, int team_size) {
        expect(team_size >= 1, "team_size must be >= 1; got " + std::to_string(team_size));
        py::list teams;
        for (int t = 0; t < team_size; ++t) {
            py::list ranges;
            for (const auto& [begin, count, is_weight] : owned_params(l, Team{t, team_size}))
                ranges.append(py::make_tuple(begin, count, is_weight));
            teams.append(ranges);
        }
        return teams;
    }, py::arg("layout"), py::arg("team_size"),
       "Per thread of a training team, the (begin, count, is_weight) ranges of the parameter buffer it checks, "
       "adds the prior to and updates: the parameters whose gradient its share of the step writes.");

    m.def("train_epoch", [](const Layout& l, py::array params, py::array state, int64_t step, const py::array& X,
                            const py::array_t<int64_t, py::array::c_style>& rows, uint64_t epoch, const py::dict& options) {
        return by_dtype(params, [&] { return train_epoch_impl<float>(l, params, state, step, X, rows, epoch, options); },
                        [&] { return train_epoch_impl<double>(l, params, state, step, X, rows, epoch, options); });
    }, py::arg("layout"), py::arg("params"), py::arg("state"), py::arg("step"), py::arg("X"), py::arg("rows"),
       py::arg("epoch"), py::arg("options"),
       "One epoch over X[rows]; returns (bound_sum, n_seen, step, status, exception raised by a signal "
       "handler or None).");

    m.def("score", [](const Layout& l, const py::array& params, const py::array& X, Index n_importance, uint64_t seed, int n_threads) {
        return by_dtype(params, [&] { return score_impl<float>(l, params, X, n_importance, seed, n_threads); },
                        [&] { return score_impl<double>(l, params, X, n_importance, seed, n_threads); });
    }, py::arg("layout"), py::arg("params"), py::arg("X"), py::arg("n_importance"), py::arg("seed"), py::arg("n_threads") = 1);

    m.def("value_range", [](const py::array& X, int n_threads) {
        const auto range = [&](auto scalar) {
            using S = decltype(scalar);
            const auto x = checked<S>(X, "X", X.ndim());
            expect(x.size() > 0, "X must not be empty");
            const int threads = threads_of(n_threads);
            ValueRange<S> r;
            {
                py::gil_scoped_release release;
                r = value_range<S>(x.data(), Index(x.size()), threads);
            }
            return py::make_tuple(double(r.min), double(r.max), r.finite);
        };
        return is_float32(X) ? range(float()) : range(double());
    }, py::arg("X"), py::arg("n_threads") = 1,
       "(min, max, all finite) of a C-contiguous float array, in one parallel pass.");

    m.def("encode", [](const Layout& l, const py::array& params, const py::array& X, int n_threads) {
        return by_dtype(params, [&] { return encode_impl<float>(l, params, X, n_threads); },
                        [&] { return encode_impl<double>(l, params, X, n_threads); });
    }, py::arg("layout"), py::arg("params"), py::arg("X"), py::arg("n_threads") = 1,
       "([mu, log_var] per row, then X's min, max and whether all are finite, found in the same pass).");

    m.def("decode", [](const Layout& l, const py::array& params, const py::array& Z, bool draw, uint64_t seed, int n_threads) {
        return by_dtype(params, [&] { return py::array(decode_impl<float>(l, params, Z, draw, seed, n_threads)); },
                        [&] { return py::array(decode_impl<double>(l, params, Z, draw, seed, n_threads)); });
    }, py::arg("layout"), py::arg("params"), py::arg("Z"), py::arg("draw") = false, py::arg("seed") = 0,
       py::arg("n_threads") = 1);

    m.def("generate", [](const Layout& l, const py::array& params, Index n, uint64_t seed, bool draw, int n_threads) {
        return by_dtype(params, [&] { return py::array(generate_impl<float>(l, params, n, seed, draw, n_threads)); },
                        [&] { return py::array(generate_impl<double>(l, params, n, seed, draw, n_threads)); });
    }, py::arg("layout"), py::arg("params"), py::arg("n"), py::arg("seed"), py::arg("draw") = true, py::arg("n_threads") = 1);

    m.def("eigen_gemm_gflops", [](Index n, int n_threads) {
        expect(n >= 1, "n must be >= 1; got " + std::to_string(n));
        const int threads = threads_of(n_threads);
        py::gil_scoped_release release;
        const Matrix<float> A = Matrix<float>::Ones(n, n), B = Matrix<float>::Ones(n, n);
        Matrix<float> C(n, n);
        const auto product = [&] {
#pragma omp parallel num_threads(threads)
            {
                const auto [first, count] = Team::of_parallel_region().share(n);
                C.middleCols(first, count).noalias() = A * B.middleCols(first, count);
            }
        };
        product();
        double best = 0.0;
        for (int r = 0; r < 3; ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            product();
            best = std::max(best, 1.0 / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        return 2.0 * double(n) * double(n) * double(n) * best / 1e9;
    }, py::arg("n"), py::arg("n_threads"),
       "GFLOP/s of the float32 product this build compiles: the best of 3 (n, n) x (n, n) products, each thread "
       "taking a share of the columns with Eigen's one-thread kernels, as aevb's own passes do.");

    m.def("thread_round_trip_ns", [](Index round_trips) {
        expect(round_trips >= 1, "round_trips must be >= 1; got " + std::to_string(round_trips));
        py::gil_scoped_release release;
        double ns = std::numeric_limits<double>::quiet_NaN();
#ifdef _OPENMP
        if (omp_get_num_procs() < 2) return ns;  // one processor available: turns would be time slices
#endif
        alignas(64) std::atomic<Index> turn{0};  // thread 0 moves on even values, thread 1 on odd ones
        std::atomic<bool> gave_up{false};        // after a second: the threads share one processor after all
#pragma omp parallel num_threads(2)
        {
            const Team team = Team::of_parallel_region();
            if (team.size == 2) {
                team.sync();  // both awake before the clock starts
                const auto t0 = std::chrono::steady_clock::now(), deadline = t0 + std::chrono::seconds(1);
                const auto wait_for = [&](Index value) {
                    for (unsigned spins = 1; turn.load(std::memory_order_acquire) != value; ++spins) {
                        if (gave_up.load(std::memory_order_relaxed)) return false;
                        if (spins % 1024 == 0 && std::chrono::steady_clock::now() > deadline) {
                            gave_up.store(true, std::memory_order_relaxed);
                            return false;
                        }
                    }
                    return true;
                };
                bool done = true;
                for (Index i = 0; i < round_trips && done; ++i) {
                    done = wait_for(2 * i + team.index);
                    if (done) turn.store(2 * i + team.index + 1, std::memory_order_release);
                }
                if (team.leader() && done && wait_for(2 * round_trips))
                    ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
                         double(round_trips);
            }
        }
        return ns;
    }, py::arg("round_trips") = 20000,
       "Nanoseconds for a cache line to pass from one thread to the other and back (two OpenMP threads taking "
       "turns on a counter), the price of each barrier and each layer two training threads share; NaN where "
       "OpenMP grants one thread, one processor is available, or the turns take over a second in all "
       "(bench/speed.py records it with every run).");

    m.def("normal_draws", [](uint64_t key, uint64_t stream, uint64_t first, Index rows, Index cols) {
        expect(rows >= 0 && cols >= 0, "rows and cols must be >= 0");
        py::array_t<double> out({py::ssize_t(cols), py::ssize_t(rows)});
        RandomStream(key, stream).fill(columns_mut(out), first);
        return out;
    }, py::arg("key"), py::arg("stream"), py::arg("first"), py::arg("rows"), py::arg("cols"),
       "Normal draws first .. first + rows * cols - 1 of a stream, as RandomStream::fill writes a (rows, cols) "
       "block: returned as (cols, rows), so that .ravel() lists them in order.");

    m.def("philox4x32_10", [](std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key) {
        return philox4x32_10(counter, key);
    }, py::arg("counter"), py::arg("key"), "The raw Philox4x32-10 block function (for known-answer tests).");

    m.def("magnitude_bound", [](const py::array& x, Index first, Index count) {
        const auto bound = [&](auto scalar) {
            using S = decltype(scalar);
            const auto a = checked<S>(x, "x", 2);
            expect(first >= 0 && count >= 0 && first + count <= a.shape(1), "columns out of range");
            return double(magnitude_bound(columns(a).middleRows(first, count)));
        };
        return is_float32(x) ? bound(float()) : bound(double());
    }, py::arg("x"), py::arg("first"), py::arg("count"),
       "The largest |x[:, first:first + count]| of a 2-D float array, or inf if one is inf or NaN: a strided "
       "block, as a training step bounds its part of G.");

    m.def("weight_gradient", [](const py::array& g, const py::array& x, Index first, Index count, Index margin) {
        const auto product = [&](auto scalar) -> py::array {
            using S = decltype(scalar);
            const auto G = checked<S>(g, "g", 2), in = checked<S>(x, "x", 2);
            expect(G.shape(0) == in.shape(0), "g and x must have the same number of rows");
            expect(first >= 0 && count >= 0 && first + count <= in.shape(1) && margin >= 0, "columns out of range");
            const Index n_out = Index(G.shape(1));
            py::array_t<S> out({py::ssize_t(count), py::ssize_t(n_out + 2 * margin)});
            auto all = columns_mut(out);
            all.setConstant(S(7));
            weight_gradient<S>(columns(G), columns(in).middleRows(first, count), all.middleRows(margin, n_out));
            return out;
        };
        return is_float32(g) ? product(float()) : product(double());
    }, py::arg("g"), py::arg("x"), py::arg("first"), py::arg("count"), py::arg("margin"),
       "x[:, first:first + count].T @ g as a layer's weight gradient dW = G in^T is computed (tile_product.hpp), "
       "written between `margin` columns of 7s on either side (an output with an outer stride).");

    m.def("dense_forward", [](const py::array& w, const py::array& x, const py::array& b, Index first, Index count,
                              Index x_first, Index margin) {
        const auto product = [&](auto scalar) -> py::array {
            using S = decltype(scalar);
            const auto W = checked<S>(w, "w", 2), in = checked<S>(x, "x", 2);
            const auto bias = checked<S>(b, "b", 1);
            const Index n_in = Index(W.shape(0));
            expect(bias.shape(0) == W.shape(1) && first >= 0 && count >= 0 && first + count <= W.shape(1) &&
                       x_first >= 0 && x_first + n_in <= in.shape(1) && margin >= 0,
                   "shapes or ranges out of range");
            py::array_t<S> out({py::ssize_t(in.shape(0)), py::ssize_t(count + 2 * margin)});
            auto all = columns_mut(out);
            all.setConstant(S(7));
            dense_forward<S>(columns(W).middleRows(first, count), columns(in).middleRows(x_first, n_in),
                             bias.data() + first, all.middleRows(margin, count));
            return out;
        };
        return is_float32(w) ? product(float()) : product(double());
    }, py::arg("w"), py::arg("x"), py::arg("b"), py::arg("first"), py::arg("count"), py::arg("x_first"),
       py::arg("margin"),
       "x[:, x_first:x_first + n_in] @ w[:, first:first + count] + b[first:first + count] (n_in = w.shape[0]) as a "
       "layer's forward pass computes W in + b (tile_product.hpp): strided blocks of W and in, written between "
       "`margin` columns of 7s on either side.");

    m.def("optimizer_update", [](py::array params, const py::array& grad, py::array state, int64_t step,
                                 const py::dict& options) {
        const auto update = [&](auto scalar) {
            using S = decltype(scalar);
            auto p = checked<S>(params, "params", 1);
            const auto g = checked<S>(grad, "grad", 1);
            auto st = checked<S>(state, "state", 2);
            const Index n = Index(p.shape(0));
            expect(g.shape(0) == n && st.shape(0) == 2 && st.shape(1) == n && step >= 1,
                   "grad must match params, state must be (2, len(params)), step >= 1");
            OptimizerStep<S>(optimizer_config(options), step)
                .apply(n, p.mutable_data(), g.data(), st.mutable_data(), st.mutable_data() + n);
        };
        by_dtype(params, [&] { update(float()); }, [&] { update(double()); });
    }, py::arg("params"), py::arg("grad"), py::arg("state"), py::arg("step"), py::arg("options"),
       "One optimizer update, number `step`, of params and state (the moments, as train_epoch's state) in place, "
       "from grad: what a training step applies to each range it owns (optimizers.hpp).");

    m.def("certified_finite_product", [](Index n, double g, double h, bool float32) {
        return float32 ? certified_finite_product<float>(n, float(g), float(h)) : certified_finite_product<double>(n, g, h);
    }, py::arg("n"), py::arg("g"), py::arg("h"), py::arg("float32"),
       "Whether a product of n terms with |G| <= g and |in| <= h is certified finite (mlp.hpp).");

    m.attr("log_variance_range") = py::make_tuple(kLogVarianceMin, kLogVarianceMax);
    m.attr("openmp") = py::bool_(
#ifdef _OPENMP
        true
#else
        false
#endif
    );
}
