// The wake-sleep algorithm (Hinton, Dayan, Frey & Neal 1995), the paper's baseline, on the same two networks.
//   wake:  z ~ q(z|x) for the data; the decoder ascends log p(x|z) (+ log p(z), which has no parameters).
//          This is exactly the decoder part of the SGVB gradient, so the wake phase is elbo_step's decoder
//          gradient -- and the bound it reports is the same ELBO that AEVB reports, for a like-for-like figure.
//   sleep: z ~ p(z) = N(0, I), x ~ p(x|z) (a "dream"); the encoder ascends log q(z|x):
//          d/dmu = (z - mu) e^-logvar,  d/dlogvar = ((z - mu)^2 e^-logvar - 1) / 2.
#pragma once

#include "aevb/elbo.hpp"
#include "aevb/rng.hpp"

namespace aevb {

// Buffers for the sleep phase, allocated once for `batch` dreams.
template <class S> struct SleepBuffers {
    ColumnBuffer<S> z, dream;
    MLPBuffers<S> decoder;

    void reserve(const Layout& layout, Index batch) {
        z.resize(layout.n_components, batch);
        dream.resize(layout.n_features, batch);
        decoder.reserve(layout.decoder, batch);
    }
};

// One wake-sleep step on minibatch X with wake noise eps (J, M); the sleep phase dreams M samples: dream c
// takes draws c J .. c J + J - 1 of stream dream_z for its z, and c D .. c D + D - 1 of dream_x (uniforms or
// normals) for its x. Writes the decoder gradient (wake) and the encoder gradient (sleep) of the loss, scaled
// by 1/M, into grad, and returns the sum of the wake batch's bounds (estimator B). A team shares the step as
// in elbo_step; ws.grad_finite covers the wake and the sleep gradients.
template <class S>
double wake_sleep_step(const Layout& layout, const S* params, const ConstMatrixRef<S>& X,
                       const ConstMatrixRef<S>& eps, const RandomStream& dream_z, const RandomStream& dream_x,
                       Workspace<S>& ws, SleepBuffers<S>& sleep, S* grad, const Team& team = {}) {
    const Index M = X.cols(), J = layout.n_components, D = layout.n_features;
    const Activation f = layout.activation;
    const StepOptions wake;  // estimator B, L = 1: its decoder gradient is the wake-phase gradient
    const double bound = elbo_step<S>(layout, params, X, eps, wake, ws, grad, team);

    // Dream: z ~ N(0, I), x ~ p(x|z).
    auto z = sleep.z.cols(M);
    auto x = sleep.dream.cols(M);
    const auto [i0, n] = team.share(M);  // this thread's dreams
    dream_z.fill(z.middleCols(i0, n), uint64_t(i0 * J));
    team.sync();
    mlp_forward<S>(layout.decoder, params, f, z, sleep.decoder, team);
    auto dec = sleep.decoder.output(M);
    const auto [d0, features] = team.share(D);
    for (Index c = 0; c < M; ++c)
        for (Index r = d0; r < d0 + features; ++r) {
            const uint64_t i = uint64_t(c * D + r);
            if (layout.likelihood == Likelihood::bernoulli)  // x = [u < sigmoid(a)]
                x(r, c) = S(dream_x.uniform_at(i) < 1.0 / (1.0 + std::exp(-double(dec(r, c)))));
            else {
                const S lv = std::min(std::max(dec(D + r, c), S(kLogVarianceMin)), S(kLogVarianceMax));
                x(r, c) = dec(r, c) + std::exp(S(0.5) * lv) * S(dream_x.draw(i));
            }
        }
    team.sync();

    // Sleep: the encoder's gradient of -(1/M) sum log q(z|x_dream), written over elbo_step's encoder part.
    mlp_forward<S>(layout.encoder, params, f, x, ws.encoder, team);
    auto enc = ws.encoder.output(M).middleCols(i0, n);
    MatrixRef<S> excess = ws.encoder_excess.cols(M).middleCols(i0, n);
    clamp_log_variance<S>(enc, J, J, &excess);
    const auto mu = enc.topRows(J).array();
    const auto logvar = enc.bottomRows(J).array();
    const auto z_mine = z.middleCols(i0, n).array();
    auto g = ws.encoder.output_grad(M).middleCols(i0, n);
    const S inv_m = S(1) / S(M);
    const auto precision_residual = (z_mine - mu) * (-logvar).exp();
    g.topRows(J) = (-inv_m * precision_residual).matrix();
    g.bottomRows(J) = (-inv_m * S(0.5) * ((z_mine - mu) * precision_residual - S(1))).matrix();
    through_log_variance_clamp(g.bottomRows(J), enc.bottomRows(J), excess, inv_m);
    team.sync();
    const bool finite = mlp_backward<S>(layout.encoder, params, f, x, ws.encoder, grad, nullptr, team);
    ws.grad_finite[size_t(team.index)] = ws.grad_finite[size_t(team.index)] && finite;  // wake and sleep parts
    return bound;
}

}  // namespace aevb
