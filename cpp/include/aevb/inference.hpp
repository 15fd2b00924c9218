// Using a trained model: encode (posterior means and log-variances), decode (E[x|z]), generate (x ~ p(x|z)),
// and score (the bound on log p(x), or its importance-weighted tightening). All work in column chunks so
// memory is bounded by the chunk size, never by the number of rows or of importance samples.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "aevb/elbo.hpp"
#include "aevb/rng.hpp"

namespace aevb {

// Columns per decoder pass in chunked work: bounds the buffers at about (widest layer) x 4096 scalars.
constexpr Index kChunkColumns = 4096;

// out (2J, n) = [mu; logvar] of q(z|x) for each column of X, log-variances clamped.
template <class S>
void encode(const Layout& layout, const S* params, const ConstMatrixRef<S>& X, MatrixRef<S> out) {
    MLPBuffers<S> buf;
    buf.reserve(layout.encoder, std::min<Index>(X.cols(), kChunkColumns));
    for (Index s = 0; s < X.cols(); s += kChunkColumns) {
        const Index n = std::min(kChunkColumns, X.cols() - s);
        mlp_forward<S>(layout.encoder, params, layout.activation, X.middleCols(s, n), buf);
        auto enc = buf.output(n);
        clamp_log_variance<S>(enc, layout.n_components, layout.n_components);
        out.middleCols(s, n) = enc;
    }
}

// out (D, n): E[x|z] for each column of Z -- sigmoid(logits) (Bernoulli) or mu (Gaussian); with `draw`,
// a sample x ~ p(x|z) instead, from the counter-based stream (key, stream).
template <class S>
void decode(const Layout& layout, const S* params, const ConstMatrixRef<S>& Z, MatrixRef<S> out, bool draw = false,
            uint64_t key = 0) {
    const Index D = layout.n_features;
    MLPBuffers<S> buf;
    buf.reserve(layout.decoder, std::min<Index>(Z.cols(), kChunkColumns));
    const NormalStream noise(key, 1), uniforms(key, 2);
    for (Index s = 0; s < Z.cols(); s += kChunkColumns) {
        const Index n = std::min(kChunkColumns, Z.cols() - s);
        mlp_forward<S>(layout.decoder, params, layout.activation, Z.middleCols(s, n), buf);
        auto dec = buf.output(n);
        auto x = out.middleCols(s, n);
        if (layout.likelihood == Likelihood::bernoulli) {
            x = (S(1) / (S(1) + (-dec.array()).exp())).matrix();  // sigmoid(logits)
            if (draw)
                for (Index c = 0; c < n; ++c)
                    for (Index r = 0; r < D; ++r)
                        x(r, c) = S(uniforms.uniform_at(uint64_t((s + c) * D + r)) < double(x(r, c)));
        } else {
            clamp_log_variance<S>(dec, D, D);
            x = dec.topRows(D);
            if (draw)
                for (Index c = 0; c < n; ++c)
                    for (Index r = 0; r < D; ++r)  // x = mu + sigma * eps
                        x(r, c) += std::exp(S(0.5) * dec(D + r, c)) * S(noise.draw(uint64_t((s + c) * D + r)));
        }
    }
}

// out (D, n): n draws z ~ p(z) = N(0, I) decoded as in `decode` (means, or with `draw` samples x ~ p(x|z)).
template <class S>
void generate(const Layout& layout, const S* params, uint64_t seed, bool draw, MatrixRef<S> out) {
    Matrix<S> z(layout.n_components, out.cols());
    NormalStream(mix64(seed), 0).fill(z);
    decode<S>(layout, params, z, out, draw, mix64(seed + 1));
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
           double* out) {
    const Index J = layout.n_components, n = X.cols();
    const Index samples = std::min(n_importance, kChunkColumns);  // per elbo_step call
    const Index rows = std::max<Index>(1, std::min(n, kChunkColumns / samples));
    StepOptions opt;
    opt.objective = n_importance == 1 ? Objective::elbo_analytic_kl : Objective::importance_weighted;
    Workspace<S> ws;
    ws.reserve(layout, rows, samples);
    const uint64_t key = scoring_key(seed);
    std::vector<uint64_t> row_keys(static_cast<size_t>(rows));
    std::vector<double> acc(static_cast<size_t>(rows));
    for (Index r0 = 0; r0 < n; r0 += rows) {
        const Index m = std::min(rows, n - r0);
        const auto x = X.middleCols(r0, m);
        for (Index i = 0; i < m; ++i) row_keys[size_t(i)] = row_key(key, X.col(r0 + i).data(), X.rows());
        std::fill(acc.begin(), acc.end(), -std::numeric_limits<double>::infinity());
        for (Index k0 = 0; k0 < n_importance; k0 += samples) {
            const Index k = std::min(samples, n_importance - k0);
            opt.n_samples = k;
            auto eps = ws.eps.leftCols(m * k);
            for (Index i = 0; i < m; ++i)  // draws k0*J .. of row i's own stream
                NormalStream(row_keys[size_t(i)], 0).fill(eps.middleCols(i * k, k), uint64_t(k0 * J));
            elbo_step<S>(layout, params, x, eps, opt, ws, nullptr);
            for (Index i = 0; i < m; ++i) {  // log sum over the chunk = bound + log k; combine by log-add-exp
                const double a = acc[size_t(i)], b = double(ws.bound[i]) + std::log(double(k));
                const double hi = std::max(a, b);  // a NaN in b propagates
                acc[size_t(i)] = std::isinf(a) ? b : hi + std::log(std::exp(a - hi) + std::exp(b - hi));
            }
        }
        for (Index i = 0; i < m; ++i) out[r0 + i] = acc[size_t(i)] - std::log(double(n_importance));
    }
}

}  // namespace aevb
