// Using a trained model: encode (posterior means and log-variances), decode (E[x|z]), generate (x ~ p(x|z)),
// and score (the bound on log p(x), or its importance-weighted tightening). All work in column chunks so
// memory is bounded by the chunk size, never by the number of rows or of importance samples.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "aevb/elbo.hpp"
#include "aevb/parallel.hpp"
#include "aevb/rng.hpp"

namespace aevb {

// Columns per network pass in chunked work. A row's arithmetic -- the products' blocking and summation order --
// does not depend on the pass's width or on the row's place in it: Eigen blocks a product's depth by the depth
// alone and computes each column on its own (in register groups of 4 or 8 or alone, which sum in the same
// order), and the elementwise work is per column. Passes are at least kMinBlockColumns wide, so Eigen's switch
// to a lazy product below 20 columns + rows + depth stays out of reach for encode and decode. So results are
// subset-, order- and thread-count-invariant bit for bit (tests/test_native.py and tests/test_gradients.py
// check it for every width class on the build under test), and encoding a few rows costs a few rows.
// 256 columns (a 784 x 256 float block is 800 KB, one L2's worth) encoded 5% faster than 512 or 1024 and far
// faster than 128 on the benchmark's 784-500 encoder (Zen 5, 1 MB L2), at equal scoring speed.
constexpr Index kBlockColumns = 256;
constexpr Index kMinBlockColumns = 32;

// Calls fn(thread, block, first, n) for consecutive chunks of X's columns. Each of up to `threads` threads
// (thread is 0 .. threads - 1, for per-thread buffers; OpenMP may grant fewer) takes an equal run of columns,
// in chunks of `width` columns and a last, shorter one. block has n columns of X, first .. first + n - 1: a
// view of X for a full chunk, else a copy padded with its first column to a whole number of kColumnAlign
// columns (at least kMinBlockColumns; at most `width`). X's alignment does not matter: products pack it or
// broadcast its values, the Bernoulli likelihood loads it unaligned from index 0, and Eigen starts its sums
// over compound expressions at index 0 (a plain sum over a view of X would peel by alignment -- keep X out of
// those). Chunks are independent: results do not depend on the thread count.
template <class S, class F> void for_each_block(const ConstMatrixRef<S>& X, Index width, int threads, F&& fn) {
    threads = int(std::max<Index>(1, std::min<Index>(threads, X.cols())));
    std::vector<ColumnBuffer<S>> buffers(static_cast<size_t>(threads));
    for (auto& b : buffers) b.resize(X.rows(), width);
    Eigen::setNbThreads(1);  // the threads here are the only parallelism
#pragma omp parallel num_threads(threads)
    {
        const Team team = Team::of_parallel_region();  // the threads granted, not those asked for
        const int t = team.index;
        const Index end = X.cols() * (t + 1) / team.size;
        for (Index first = X.cols() * t / team.size; first < end; first += width) {
            const Index n = std::min(width, end - first);
            if (n == width) {
                fn(t, ConstMatrixRef<S>(X.middleCols(first, width)), first, n);
                continue;
            }
            const Index whole = (n + kColumnAlign - 1) / kColumnAlign * kColumnAlign;
            const Index padded = std::min(width, std::max(whole, kMinBlockColumns));
            auto block = buffers[size_t(t)].cols(padded);
            block.leftCols(n) = X.middleCols(first, n);
            block.rightCols(padded - n) = X.col(first).replicate(1, padded - n);
            fn(t, ConstMatrixRef<S>(block), first, n);
        }
    }
}

// out (2J, n) = [mu; logvar] of q(z|x) for each column of X, log-variances clamped. Returns X's ValueRange,
// found block by block just before each block is encoded: the check of X's values costs no pass over memory
// of its own, and the block is then in cache for the product.
template <class S>
ValueRange<S> encode(const Layout& layout, const S* params, const ConstMatrixRef<S>& X, MatrixRef<S> out,
                     int threads) {
    if (X.size() == 0) return {S(0), S(0), true};
    std::vector<MLPBuffers<S>> bufs(static_cast<size_t>(threads));
    for (auto& b : bufs) b.reserve(layout.encoder, kBlockColumns);
    std::vector<ValueRange<S>> ranges(static_cast<size_t>(threads), ValueRange<S>::of(X.data(), 1));
    for_each_block<S>(X, kBlockColumns, threads, [&](int t, const ConstMatrixRef<S>& block, Index first, Index n) {
        auto range = ValueRange<S>::of(X.col(first).data(), X.rows());  // X's own columns, merged once per block
        for (Index c = first + 1; c < first + n; ++c) range.merge(ValueRange<S>::of(X.col(c).data(), X.rows()));
        ranges[size_t(t)].merge(range);
        auto& buf = bufs[size_t(t)];
        mlp_forward<S>(layout.encoder, params, layout.activation, block, buf);
        auto enc = buf.output(block.cols());
        clamp_log_variance<S>(enc, layout.n_components, layout.n_components);
        out.middleCols(first, n) = enc.leftCols(n);
    });
    for (const auto& r : ranges) ranges[0].merge(r);
    return ranges[0];
}

// out (D, n): E[x|z] for each column of Z -- sigmoid(logits) (Bernoulli) or mu (Gaussian); with `draw`,
// a sample x ~ p(x|z) instead, from the counter-based streams under `key`.
template <class S>
void decode(const Layout& layout, const S* params, const ConstMatrixRef<S>& Z, MatrixRef<S> out, int threads,
            bool draw = false, uint64_t key = 0) {
    const Index D = layout.n_features;
    std::vector<MLPBuffers<S>> bufs(static_cast<size_t>(threads));
    for (auto& b : bufs) b.reserve(layout.decoder, kBlockColumns);
    const RandomStream noise(key, 1), uniforms(key, 2);
    for_each_block<S>(Z, kBlockColumns, threads, [&](int t, const ConstMatrixRef<S>& block, Index first, Index n) {
        auto& buf = bufs[size_t(t)];
        mlp_forward<S>(layout.decoder, params, layout.activation, block, buf);
        auto dec = buf.output(block.cols());
        auto x = out.middleCols(first, n);
        if (layout.likelihood == Likelihood::bernoulli) {
            // sigmoid(logits), computed in the aligned buffer and then copied: computed straight into the
            // caller's array, an element's rounding would depend on that array's alignment.
            dec.array() = S(1) / (S(1) + (-dec.array()).exp());
            x = dec.leftCols(n);
            if (draw)
                for (Index c = 0; c < n; ++c)
                    for (Index r = 0; r < D; ++r)
                        x(r, c) = S(uniforms.uniform_at(uint64_t((first + c) * D + r)) < double(x(r, c)));
        } else {
            clamp_log_variance<S>(dec, D, D);
            x = dec.topRows(D).leftCols(n);
            if (draw)
                for (Index c = 0; c < n; ++c)
                    for (Index r = 0; r < D; ++r)  // x = mu + sigma * eps
                        x(r, c) += std::exp(S(0.5) * dec(D + r, c)) * S(noise.draw(uint64_t((first + c) * D + r)));
        }
    });
}

// out (D, n): n draws z ~ p(z) = N(0, I) decoded as in `decode` (means, or with `draw` samples x ~ p(x|z)).
template <class S>
void generate(const Layout& layout, const S* params, uint64_t seed, bool draw, MatrixRef<S> out, int threads) {
    Matrix<S> z(layout.n_components, out.cols());
    RandomStream(mix64(seed), 0).fill(z);
    decode<S>(layout, params, z, out, threads, draw, mix64(seed + 1));
}

inline uint64_t scoring_key(uint64_t seed) { return mix64(seed ^ 0x73636F72696E6721ull); }

// out[i] = a stochastic lower bound on log p(x_i), nats, for each column of X:
//   n_importance == 1: the ELBO with the analytic KL (estimator B), one draw;
//   n_importance == K: log (1/K) sum_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x) (Burda et al. 2015), accumulated
//   over chunks of samples with a streaming log-sum-exp.
// Each row's noise is keyed by the seed and the row's own values, so a row's score does not depend on which
// other rows are in the call or where.
template <class S>
void score(const Layout& layout, const S* params, const ConstMatrixRef<S>& X, Index n_importance, uint64_t seed,
           double* out, int threads) {
    const Index J = layout.n_components;
    const Index samples = std::min(n_importance, kBlockColumns);  // per elbo_step call
    const Index rows_per_block = std::max<Index>(1, kBlockColumns / samples);
    StepOptions opt;
    opt.objective = n_importance == 1 ? Objective::elbo_analytic_kl : Objective::importance_weighted;
    struct PerThread {
        Workspace<S> ws;
        std::vector<uint64_t> row_keys;
        std::vector<double> acc;
    };
    std::vector<PerThread> per(static_cast<size_t>(threads));
    for (auto& p : per) {
        p.ws.reserve(layout, rows_per_block, samples);
        p.row_keys.resize(size_t(rows_per_block));
        p.acc.resize(size_t(rows_per_block));
    }
    const uint64_t key = scoring_key(seed);
    for_each_block<S>(X, rows_per_block, threads, [&](int t, const ConstMatrixRef<S>& block, Index first, Index n) {
        auto& [ws, row_keys, acc] = per[size_t(t)];
        const Index rows = block.cols();
        for (Index i = 0; i < rows; ++i) row_keys[size_t(i)] = row_key(key, block.col(i).data(), block.rows());
        std::fill(acc.begin(), acc.end(), -std::numeric_limits<double>::infinity());
        StepOptions chunk = opt;
        for (Index k0 = 0; k0 < n_importance; k0 += samples) {
            const Index k = std::min(samples, n_importance - k0);
            chunk.n_samples = k;
            auto eps = ws.eps.cols(rows * k);
            for (Index i = 0; i < rows; ++i)  // draws k0*J .. of row i's own stream
                RandomStream(row_keys[size_t(i)], 0).fill(eps.middleCols(i * k, k), uint64_t(k0 * J));
            elbo_step<S>(layout, params, block, eps, chunk, ws, nullptr);
            for (Index i = 0; i < n; ++i) {  // log sum over the chunk = bound + log k; combine by log-add-exp
                const double a = acc[size_t(i)], b = double(ws.bound[i]) + std::log(double(k));
                const double hi = std::max(a, b);  // a NaN in b propagates
                acc[size_t(i)] = std::isinf(a) ? b : hi + std::log(std::exp(a - hi) + std::exp(b - hi));
            }
        }
        for (Index i = 0; i < n; ++i) out[first + i] = acc[size_t(i)] - std::log(double(n_importance));
    });
}

}  // namespace aevb
