// One training epoch in C++ (Algorithm 1): shuffle, gather each minibatch, draw its noise, take the fused
// step, add the weight prior, update. All buffers are allocated once per call; nothing is allocated per step.
#pragma once

#include <algorithm>
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

// The parameters a thread owns in a shared step, in both networks: what its share of mlp_backward writes. The
// thread checks, adds the prior to and updates exactly these, while they are still in its cache.
inline std::vector<ParamRange> owned_params(const Layout& layout, const Team& team) {
    std::vector<ParamRange> ranges;
    for (const auto* net : {&layout.encoder, &layout.decoder}) append_backward_share(*net, team, ranges);
    return ranges;
}

// The prior's gradient (alpha / N) W added to the gradient's owned weights; returns whether the owned
// gradient is finite.
template <class S>
bool add_prior_and_check(S* grad, const S* params, const std::vector<ParamRange>& owned, S prior) {
    bool finite = true;
    for (const auto& [begin, count, is_weight] : owned) {
        if (is_weight)
            for (Index i = begin; i < begin + count; ++i) grad[i] += prior * params[i];
        finite = finite && all_finite(grad + begin, count);
    }
    return finite;
}

// Threads for a training step: up to n_threads, but each with at least kMinFlopsPerThread of matrix work per
// step, since the barriers between layers cost more than they save on small networks.
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
// whenever interrupt_requested() returns true: asked on the calling thread after each minibatch's gradient,
// while no thread writes parameters, and answered before that minibatch's update.
//
// With T threads (training_threads), a team shares each step: each thread gathers its share (Team::share) of
// the minibatch's features and draws the noise of its share of the datapoints (column c takes draws c L J ..
// of the step's stream, whatever T is); the step (elbo_step or wake_sleep_step) splits every layer and checks,
// per thread, that the gradient it wrote is finite; with a prior, each thread instead adds it to the gradient
// it wrote and checks that. No thread updates unless all are finite; then each updates the parameters whose
// gradient it wrote (owned_params). Results are bit-identical for the same seed, build and team size -- T
// unless OpenMP grants fewer threads (OMP_DYNAMIC, OMP_THREAD_LIMIT) -- and agree to rounding across team sizes.
template <class S>
EpochReport train_epoch(const Layout& layout, S* params, S* state, int64_t& step, const ConstMatrixRef<S>& X,
                        std::vector<int64_t> rows, uint64_t epoch, const TrainOptions& opt,
                        const std::function<bool()>& interrupt_requested) {
    const Index n = Index(rows.size()), J = layout.n_components, L = opt.step.n_samples, P = layout.n_params;
    const Index M = std::min<Index>(opt.batch_size, n);
    const int T = training_threads(layout, M, L, opt.n_threads);
    if (opt.shuffle) shuffle_rows(rows, opt.seed, epoch);

    Workspace<S> ws;
    ws.reserve(layout, M, L, T);
    SleepBuffers<S> sleep;
    if (opt.algorithm == Algorithm::wake_sleep) sleep.reserve(layout, M);
    ColumnBuffer<S> batch;
    batch.resize(layout.n_features, M);
    Vector<S> grad(P);
    const uint64_t noise_key = training_noise_key(opt.seed);
    const S prior = S(opt.alpha / opt.n_total);
    Eigen::setNbThreads(1);  // the threads here are the only parallelism: Eigen's products run inside them

    EpochReport report;
    bool stop = false;
    const int64_t first_step = step;
#pragma omp parallel num_threads(T)
    {
        const Team team = Team::of_parallel_region();
        int64_t updates = 0;  // this thread's count of updates; only the leader writes `step`
        const std::vector<ParamRange> owned = owned_params(layout, team);
        for (Index start = 0; start < n; start += M) {
            // Each thread gathers its share of the minibatch's features -- the rows of x that its share of the
            // likelihood reads, and most of those that its dW columns of the input layer read (unless that
            // layer is split by columns, mlp.hpp), so they stay in its cache -- and draws the noise of its
            // share of the datapoints.
            const Index m = std::min(M, n - start);
            const auto [f0, features] = team.share(layout.n_features);
            auto x = batch.cols(m);
            for (Index k = 0; k < m; ++k)
                x.col(k).segment(f0, features) = X.col(rows[size_t(start + k)]).segment(f0, features);
            const auto [c0, columns] = team.share(m);
            auto eps = ws.eps.cols(m * L);
            const int64_t t = first_step + updates;
            const RandomStream noise(noise_key, uint64_t(t));  // a fresh stream per optimizer step
            noise.fill(eps.middleCols(c0 * L, columns * L), uint64_t(c0 * L * J));
            team.sync();

            const double bound =
                opt.algorithm == Algorithm::wake_sleep
                    ? wake_sleep_step<S>(layout, params, x, eps, RandomStream(noise_key, uint64_t(t) | kSleepStream),
                                         RandomStream(noise_key, uint64_t(t) | kDreamStream), ws, sleep,
                                         grad.data(), team)
                    : elbo_step<S>(layout, params, x, eps, opt.step, ws, grad.data(), team);
            // Asked here, where no thread writes parameters, since a signal handler may run inside.
            if (team.leader() && interrupt_requested && interrupt_requested()) {
                report.status = TrainStatus::interrupted;
                stop = true;
            }
            // The step has checked what each thread wrote; a prior changes every weight's gradient, so check again.
            char& finite = ws.grad_finite[size_t(team.index)];
            if (prior != S(0)) finite = add_prior_and_check(grad.data(), params, owned, prior);
            team.sync();
            if (stop) break;
            const auto all = ws.grad_finite.begin();
            if (std::count(all, all + team.size, 0) > 0 || !std::isfinite(bound)) {
                if (team.leader()) report.status = TrainStatus::non_finite;
                break;
            }
            const OptimizerStep<S> update(opt.optimizer, t + 1);
            for (const ParamRange& r : owned)
                update.apply(r.count, params + r.begin, grad.data() + r.begin, state + r.begin, state + P + r.begin);
            // No barrier here: the next minibatch's gather writes only x and the noise, which no thread reads
            // after the barrier above, and the next step reads parameters only after the gather's barrier.
            ++updates;
            if (team.leader()) {
                report.bound_sum += bound;
                report.n_seen += m;
                step = t + 1;
            }
        }
    }
    return report;
}

}  // namespace aevb
