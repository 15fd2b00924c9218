// One training epoch in C++ (Algorithm 1): shuffle, gather each minibatch, draw its noise, take the fused
// step, add the weight prior, update. All buffers are allocated once per call; nothing is allocated per step.
#pragma once

#include <cmath>
#include <functional>
#include <vector>

#include "aevb/elbo.hpp"
#include "aevb/optimizers.hpp"
#include "aevb/parallel.hpp"
#include "aevb/rng.hpp"
#include "aevb/wake_sleep.hpp"

namespace aevb {

enum class Algorithm { aevb, wake_sleep };

struct TrainOptions {
    Algorithm algorithm = Algorithm::aevb;
    StepOptions step;  // the objective (AEVB only), L and the KL weight beta
    OptimizerConfig optimizer;
    Index batch_size = 100;  // M
    double alpha = 0.0;      // N(0, 1/alpha) prior on the weights (alpha = 1: the paper's N(0, I))
    double n_total = 1.0;    // N, the data set size that scales the prior per minibatch (eq. 8)
    bool shuffle = true;
    uint64_t seed = 0;
    int n_threads = 1;
};

enum class TrainStatus { completed, non_finite, interrupted };

struct EpochReport {
    double bound_sum = 0.0;  // sum of the per-datapoint bounds of the minibatches taken
    Index n_seen = 0;        // datapoints in those minibatches
    TrainStatus status = TrainStatus::completed;
};

// Noise keys: training draws and shuffles come from streams that never meet the scoring streams.
inline uint64_t training_noise_key(uint64_t seed) { return mix64(seed ^ 0x747261696E6E6F69ull); }
constexpr uint64_t kSleepStream = 1ull << 62;  // sleep-phase dreams: streams apart from the wake noise
constexpr uint64_t kDreamStream = 1ull << 61;
inline uint64_t shuffle_key(uint64_t seed) { return mix64(seed ^ 0x73687566666C6521ull); }

// Fisher-Yates with counter-based uniforms: the order depends only on (seed, epoch).
inline void shuffle_rows(std::vector<int64_t>& rows, uint64_t seed, uint64_t epoch) {
    const RandomStream uniforms(shuffle_key(seed), epoch);
    for (size_t i = rows.size(); i-- > 1;) {
        const size_t j = size_t(uniforms.uniform_at(i) * double(i + 1));
        std::swap(rows[i], rows[std::min(j, i)]);
    }
}

// Parameters [lo, hi) of the flat buffer that are weights (the prior applies to weights, not biases).
inline std::vector<std::pair<Index, Index>> weight_ranges(const Layout& layout) {
    std::vector<std::pair<Index, Index>> ranges;
    for (const auto* net : {&layout.encoder, &layout.decoder})
        for (const Dense& d : *net) ranges.emplace_back(d.weight_offset, d.bias_offset);
    return ranges;
}

// What one thread holds: its share of each minibatch, its buffers and its partial gradient.
template <class S> struct TrainerThread {
    Workspace<S> ws;
    SleepBuffers<S> sleep;
    ColumnBuffer<S> batch;
    Vector<S> grad;
    double bound = 0.0;
    bool finite = true;
};

// Thread slice [p0, p1) of the step's gradient, in threads[0].grad: the threads' parts summed in a fixed order,
// plus the prior's (alpha / N) W on weights. Returns whether every element of the slice is finite.
template <class S>
bool combine_gradient(std::vector<TrainerThread<S>>& threads, const std::vector<std::pair<Index, Index>>& weights,
                      const S* params, S prior, Index p0, Index p1) {
    S* g = threads[0].grad.data();
    for (size_t u = 1; u < threads.size(); ++u) {
        const S* part = threads[u].grad.data();
        for (Index i = p0; i < p1; ++i) g[i] += part[i];
    }
    if (prior != S(0))
        for (const auto& [w0, w1] : weights)
            for (Index i = std::max(w0, p0); i < std::min(w1, p1); ++i) g[i] += prior * params[i];
    return all_finite(g + p0, p1 - p0);
}

// Threads for a training step: up to n_threads, but each with at least kMinFlopsPerThread of matrix work per
// step, since three barriers per step cost more than they save on small networks.
constexpr double kMinFlopsPerThread = 25e6;

inline int training_threads(const Layout& layout, Index batch, Index samples, int n_threads) {
    double flops = 0.0;  // forward, weight gradients and input gradients: about 3 forward passes
    for (const auto* net : {&layout.encoder, &layout.decoder})
        for (const Dense& d : *net) flops += 6.0 * double(d.n_in * d.n_out);
    flops *= double(batch * samples);
    return int(std::max<double>(1, std::min<double>(n_threads, std::floor(flops / kMinFlopsPerThread))));
}

// Trains on X's columns `rows` (in minibatches of opt.batch_size) and updates params, state and step in place.
// Stops before an update whose bound or gradient is not finite (params keep their last finite values), or
// when interrupt_requested() -- asked on the calling thread -- returns true at a minibatch boundary.
//
// With T threads (training_threads), thread t takes columns [m t / T, m (t + 1) / T) of each minibatch of m and computes their
// part of the gradient of -(1/m) sum_i objective_i; the parts are then summed in a fixed order, each thread
// summing and updating its own slice of the parameters. The noise of column c is draw c of the step's stream
// whatever T is, and results are bit-identical for the same seed and T.
template <class S>
EpochReport train_epoch(const Layout& layout, S* params, S* state, int64_t& step, const ConstMatrixRef<S>& X,
                        std::vector<int64_t> rows, uint64_t epoch, const TrainOptions& opt,
                        const std::function<bool()>& interrupt_requested) {
    const Index n = Index(rows.size()), J = layout.n_components, L = opt.step.n_samples, P = layout.n_params;
    const Index M = std::min<Index>(opt.batch_size, n);
    const int T = int(std::min<Index>(training_threads(layout, M, L, opt.n_threads), M));
    if (opt.shuffle) shuffle_rows(rows, opt.seed, epoch);

    std::vector<TrainerThread<S>> threads(static_cast<size_t>(T));
    const Index share = (M + T - 1) / T;
    for (auto& th : threads) {
        th.ws.reserve(layout, share, L);
        if (opt.algorithm == Algorithm::wake_sleep) th.sleep.reserve(layout, share);
        th.batch.resize(layout.n_features, share);
        th.grad.resize(P);
    }
    const uint64_t noise_key = training_noise_key(opt.seed);
    const auto weights = weight_ranges(layout);
    const S prior = S(opt.alpha / opt.n_total);
    Eigen::setNbThreads(1);  // the threads here are the only parallelism: Eigen's products run inside them

    EpochReport report;
    bool stop = false;
#pragma omp parallel num_threads(T)
    {
        const int t = thread_index();
        TrainerThread<S>& me = threads[size_t(t)];
        for (Index start = 0; start < n; start += M) {
#pragma omp master
            if (interrupt_requested && interrupt_requested()) {
                report.status = TrainStatus::interrupted;
                stop = true;
            }
#pragma omp barrier
            if (stop) break;
            const Index m = std::min(M, n - start);
            const Index lo = m * t / T, hi = m * (t + 1) / T;
            me.bound = 0.0;
            if (hi > lo) {
                auto x = me.batch.cols(hi - lo);
                for (Index k = lo; k < hi; ++k) x.col(k - lo) = X.col(rows[size_t(start + k)]);
                auto eps = me.ws.eps.cols((hi - lo) * L);
                const RandomStream noise(noise_key, uint64_t(step));  // a fresh stream per optimizer step
                noise.fill(eps, uint64_t(lo * L * J));
                StepOptions step_opt = opt.step;
                step_opt.loss_batch = m;
                me.bound = opt.algorithm == Algorithm::wake_sleep
                               ? wake_sleep_step<S>(layout, params, x, eps,
                                                    RandomStream(noise_key, uint64_t(step) | kSleepStream),
                                                    RandomStream(noise_key, uint64_t(step) | kDreamStream), lo, m,
                                                    me.ws, me.sleep, me.grad.data())
                               : elbo_step<S>(layout, params, x, eps, step_opt, me.ws, me.grad.data());
            } else {
                me.grad.setZero();
            }
#pragma omp barrier
            const Index p0 = P * t / T, p1 = P * (t + 1) / T;
            S* g = threads[0].grad.data();
            me.finite = combine_gradient(threads, weights, params, prior, p0, p1);
#pragma omp barrier
            double bound = 0.0;
            bool all_finite = true;
            for (const auto& th : threads) {
                bound += th.bound;
                all_finite &= th.finite;
            }
            if (!all_finite || !std::isfinite(bound)) {
#pragma omp master
                report.status = TrainStatus::non_finite;
                break;
            }
            optimizer_step(opt.optimizer, step + 1, p1 - p0, params + p0, g + p0, state + p0, state + P + p0);
#pragma omp barrier
#pragma omp master
            {
                ++step;
                report.bound_sum += bound;
                report.n_seen += m;
            }
        }
    }
    return report;
}

}  // namespace aevb
