// One training epoch in C++ (Algorithm 1): shuffle, gather each minibatch, draw its noise, take the fused
// step, add the weight prior, update. All buffers are allocated once per call; nothing is allocated per step.
#pragma once

#include <functional>
#include <numeric>
#include <vector>

#include "aevb/elbo.hpp"
#include "aevb/optimizers.hpp"
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
inline uint64_t shuffle_key(uint64_t seed) { return mix64(seed ^ 0x73687566666C6521ull); }

// Fisher-Yates with counter-based uniforms: the order depends only on (seed, epoch).
inline void shuffle_rows(std::vector<int64_t>& rows, uint64_t seed, uint64_t epoch) {
    const NormalStream uniforms(shuffle_key(seed), epoch);
    for (size_t i = rows.size(); i-- > 1;) {
        const size_t j = size_t(uniforms.uniform_at(i) * double(i + 1));
        std::swap(rows[i], rows[std::min(j, i)]);
    }
}

// Adds the gradient of the per-datapoint weight prior, (alpha / N) * 1/2 ||W||^2, to every weight block.
template <class S> void add_weight_prior(const Layout& layout, const S* params, S* grad, double alpha_over_n) {
    if (alpha_over_n == 0.0) return;
    for (const auto* net : {&layout.encoder, &layout.decoder})
        for (const Dense& d : *net) weight(grad, d) += S(alpha_over_n) * weight(params, d);
}

// Trains on X's columns `rows` (in minibatches of opt.batch_size) and updates params, state and step in place.
// Stops before an update whose bound or gradient is not finite (params keep their last finite values), or
// when interrupt_requested() returns true at a minibatch boundary.
template <class S>
EpochReport train_epoch(const Layout& layout, S* params, S* state, int64_t& step, const ConstMatrixRef<S>& X,
                        std::vector<int64_t> rows, uint64_t epoch, const TrainOptions& opt,
                        const std::function<bool()>& interrupt_requested) {
    const Index n = Index(rows.size()), J = layout.n_components, L = opt.step.n_samples;
    const Index M = std::min<Index>(opt.batch_size, n);
    if (opt.shuffle) shuffle_rows(rows, opt.seed, epoch);

    Workspace<S> ws;
    ws.reserve(layout, M, L);
    SleepBuffers<S> sleep;
    if (opt.algorithm == Algorithm::wake_sleep) sleep.reserve(layout, M);
    ColumnBuffer<S> batch;
    batch.resize(layout.n_features, M);
    Vector<S> grad(layout.n_params);
    const uint64_t noise_key = training_noise_key(opt.seed);

    EpochReport report;
    for (Index start = 0; start < n; start += M) {
        if (interrupt_requested && interrupt_requested()) {
            report.status = TrainStatus::interrupted;
            break;
        }
        const Index m = std::min(M, n - start);
        auto x = batch.cols(m);
        for (Index k = 0; k < m; ++k) x.col(k) = X.col(rows[size_t(start + k)]);
        auto eps = ws.eps.cols(m * L);
        NormalStream(noise_key, uint64_t(step)).fill(eps);  // a fresh stream per optimizer step
        const double bound =
            opt.algorithm == Algorithm::wake_sleep
                ? wake_sleep_step<S>(layout, params, x, eps,
                                     NormalStream(noise_key, uint64_t(step) | kSleepStream), ws, sleep, grad.data())
                : elbo_step<S>(layout, params, x, eps, opt.step, ws, grad.data());
        add_weight_prior(layout, params, grad.data(), opt.alpha / opt.n_total);
        if (!std::isfinite(bound) || !grad.allFinite()) {
            report.status = TrainStatus::non_finite;
            break;
        }
        optimizer_step(opt.optimizer, params, grad.data(), state, layout.n_params, step);
        report.bound_sum += bound;
        report.n_seen += m;
    }
    return report;
}

}  // namespace aevb
