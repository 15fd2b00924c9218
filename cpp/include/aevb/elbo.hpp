// The fused SGVB step (Kingma & Welling 2013, Algorithm 1): encode, reparameterize, decode, the bound, and
// the full gradient of the minibatch loss  -(1/M) sum_i objective_i  in one call.
//
// Per datapoint x_i with encoder output [mu_i; logvar_i] and noise eps_il ~ N(0, I), l = 1..L:
//   z_il = mu_i + sigma_i * eps_il,  sigma_i = exp(logvar_i / 2)                        (§2.4)
//   log w_il = log p(x_i|z_il) + beta (log p(z_il) - log q(z_il|x_i)),
//   log p(z) - log q(z|x) = 1/2 sum_j (logvar_j + eps_j^2 - z_j^2)                        (constants cancel)
// Objectives:
//   elbo_analytic_kl    estimator B (eq. 7):  (1/L) sum_l log p(x|z_il) - beta KL(q || p),
//                       KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - logvar_j)                  (Appendix B)
//   elbo_sampled_kl     estimator A (eq. 6):  (1/L) sum_l log w_il
//   importance_weighted the IWAE bound (Burda et al. 2015): log (1/L) sum_l w_il; its gradient is
//                       sum_l w~_il grad log w_il with normalized weights w~ = softmax(log w)
// The reported bound always uses beta = 1, so it is the paper's bound whatever the KL weight in training. The
// gradient also carries the log-variance clamp's penalty (layout.hpp), zero while log-variances stay in range.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "aevb/likelihoods.hpp"
#include "aevb/mlp.hpp"

namespace aevb {

enum class Objective { elbo_analytic_kl, elbo_sampled_kl, importance_weighted };

struct StepOptions {
    Objective objective = Objective::elbo_analytic_kl;
    Index n_samples = 1;  // L
    double beta = 1.0;    // weight of the KL term in the gradient
};

// Every buffer the step needs, allocated once for `batch` datapoints and `samples` draws each.
template <class S> struct Workspace {
    MLPBuffers<S> encoder, decoder;
    ColumnBuffer<S> z, grad_z;  // (J, batch * samples), column i * samples + l
    ColumnBuffer<S> sigma;      // (J, batch)
    // What the clamps took off the log-variances, raw - clamped (see clamp_log_variance), in training:
    ColumnBuffer<S> encoder_excess;  // (J, batch)
    ColumnBuffer<S> decoder_excess;  // (D, batch * samples), Gaussian decoder only
    Vector<S> loglik;      // log p(x_i | z_il)
    Matrix<S> loglik_part; // (batch * samples, team size): each thread's share of the features of loglik
    Vector<S> log_weight;  // log w_il
    Vector<S> weight;      // (1/L, or w~_il) per sample
    Vector<S> scaled;      // weight / M
    Matrix<S> grad_z_i;    // (J, team size): one sample's dLoss/dz, per thread
    Vector<S> bound;       // the bound per datapoint, nats
    std::vector<double> bound_exact;  // the same before rounding to S, summed for the step's total
    std::vector<char> grad_finite;    // per thread: whether the gradient it wrote in the last step is finite
    std::vector<S> loss_grad_bound;   // per thread: magnitude_bound of its rows of dLoss/d(decoder output)
    ColumnBuffer<S> eps;   // noise, for callers that draw it here
    Index batch = 0, samples = 0;

    void reserve(const Layout& layout, Index batch_, Index samples_, int team_size = 1) {
        batch = batch_;
        samples = samples_;
        const Index columns = batch * samples;
        encoder.reserve(layout.encoder, batch, team_size);
        decoder.reserve(layout.decoder, columns, team_size);
        z.resize(layout.n_components, columns);
        grad_z.resize(layout.n_components, columns);
        eps.resize(layout.n_components, columns);
        sigma.resize(layout.n_components, batch);
        encoder_excess.resize(layout.n_components, batch);
        decoder_excess.resize(layout.likelihood == Likelihood::gaussian ? layout.n_features : 0, columns);
        loglik.resize(columns);
        loglik_part.resize(columns, team_size);
        log_weight.resize(columns);
        weight.resize(columns);
        scaled.resize(columns);
        grad_z_i.resize(layout.n_components, team_size);
        bound.resize(batch);
        bound_exact.resize(size_t(batch));
        grad_finite.resize(size_t(team_size));
        loss_grad_bound.resize(size_t(team_size));
    }
};

// Between the decoder's forward and backward passes, for datapoints [i0, i0 + n): loglik from the team's
// parts, the bound (ws.bound, and ws.bound_exact for the step's total) and each sample's gradient weight.
template <class S, class Heads, class Sigma, class Eps, class Z>
void bounds_and_weights(const StepOptions& opt, Index L, int team_size, Index i0, Index n, const Heads& mu,
                        const Heads& logvar, const Sigma& sigma, const Eps& eps, const Z& z, Workspace<S>& ws) {
    auto loglik_all = ws.loglik.segment(i0 * L, n * L);
    loglik_all = ws.loglik_part.col(0).segment(i0 * L, n * L);
    for (Index t = 1; t < team_size; ++t) loglik_all += ws.loglik_part.col(t).segment(i0 * L, n * L);
    for (Index i = i0; i < i0 + n; ++i) {
        // Reductions over a row's samples are plain loops: Eigen's vectorized sums would split a segment
        // according to its alignment, i.e. its position in the batch.
        const S* loglik = ws.loglik.data() + i * L;
        S* weight = ws.weight.data() + i * L;
        double bound = 0.0;
        if (opt.objective == Objective::elbo_analytic_kl) {
            const S kl = S(0.5) * (mu.col(i).array().square() + sigma.col(i).array().square() - S(1) -
                                   logvar.col(i).array()).sum();
            for (Index l = 0; l < L; ++l) bound += double(loglik[l]);
            bound = bound / double(L) - double(kl);
            std::fill(weight, weight + L, S(1) / S(L));
        } else {
            // log p(z) - log q(z|x) per sample; the bound uses weight 1 on it, the gradient weight beta.
            S* log_prior_ratio = ws.log_weight.data() + i * L;
            for (Index l = 0; l < L; ++l) {
                const Index c = i * L + l;
                log_prior_ratio[l] = S(0.5) * (logvar.col(i).array() + eps.col(c).array().square() -
                                               z.col(c).array().square()).sum();
                bound += double(loglik[l]) + double(log_prior_ratio[l]);
            }
            if (opt.objective == Objective::elbo_sampled_kl) {
                bound /= double(L);
                std::fill(weight, weight + L, S(1) / S(L));
            } else {  // log (1/L) sum_l w_l = m + log sum_l e^(log w_l - m) - log L, m = max_l log w_l
                double m = -std::numeric_limits<double>::infinity(), m_beta = m;
                for (Index l = 0; l < L; ++l) {
                    m = std::max(m, double(loglik[l]) + double(log_prior_ratio[l]));
                    m_beta = std::max(m_beta, double(loglik[l]) + opt.beta * double(log_prior_ratio[l]));
                }
                if (m == -std::numeric_limits<double>::infinity()) {
                    // No w_l above 0: the bound is -inf (NaN if a log w_l is), not the NaN of -inf - (-inf).
                    bound = m;
                    for (Index l = 0; l < L; ++l) bound += double(loglik[l]) + double(log_prior_ratio[l]);
                    std::fill(weight, weight + L, S(1) / S(L));
                } else {
                    double sum = 0.0, sum_beta = 0.0;
                    for (Index l = 0; l < L; ++l) {
                        sum += std::exp(double(loglik[l]) + double(log_prior_ratio[l]) - m);
                        const double w =
                            std::exp(double(loglik[l]) + opt.beta * double(log_prior_ratio[l]) - m_beta);
                        weight[l] = S(w);
                        sum_beta += w;
                    }
                    for (Index l = 0; l < L; ++l) weight[l] = S(double(weight[l]) / sum_beta);  // softmax(log w)
                    bound = m + std::log(sum) - std::log(double(L));
                }
            }
        }
        ws.bound[i] = S(bound);
        ws.bound_exact[size_t(i)] = bound;
    }
}

// Between the two backward passes, for datapoints [i0, i0 + n): dLoss/d[mu; logvar] from dLoss/dz and the
// KL or log-prior-ratio terms, through z = mu + sigma * eps:  dz/dmu = 1,  dz/dlogvar = sigma * eps / 2.
template <class S, class Heads, class Sigma, class Eps, class Z, class GradZ>
void encoder_heads_gradient(const StepOptions& opt, Index L, S inv_m, Index i0, Index n, int thread,
                            const Heads& mu, const Heads& logvar, const Sigma& sigma, const Eps& eps, const Z& z,
                            const GradZ& grad_z, Workspace<S>& ws) {
    const Index J = mu.rows();
    auto grad_enc = ws.encoder.output_grad(mu.cols());
    auto g = ws.grad_z_i.col(thread);
    const S beta = S(opt.beta);
    for (Index i = i0; i < i0 + n; ++i) {
        auto grad_mu = grad_enc.col(i).head(J);
        auto grad_logvar = grad_enc.col(i).tail(J);
        grad_mu.setZero();
        grad_logvar.setZero();
        for (Index l = 0; l < L; ++l) {
            const Index c = i * L + l;
            g = grad_z.col(c);
            if (opt.objective != Objective::elbo_analytic_kl)
                g += (beta * ws.weight[c] * inv_m) * z.col(c);  // -beta w log p(z): d/dz = beta w z
            grad_mu += g;
            grad_logvar += g.cwiseProduct(eps.col(c));
        }
        grad_logvar = (grad_logvar.array() * S(0.5) * sigma.col(i).array()).matrix();
        if (opt.objective == Objective::elbo_analytic_kl) {  // + beta dKL: d/dmu = mu, d/dlogvar = (sigma^2 - 1)/2
            grad_mu += (beta * inv_m) * mu.col(i);
            grad_logvar.array() += (beta * inv_m * S(0.5)) * (sigma.col(i).array().square() - S(1));
        } else {  // +beta w log q(z|x) = -beta w logvar / 2 + const:  d/dlogvar = -beta w / 2, summed over l
            double weight_sum = 0.0;  // 1 up to rounding
            for (Index l = 0; l < L; ++l) weight_sum += double(ws.weight[i * L + l]);
            grad_logvar.array() -= beta * inv_m * S(0.5) * S(weight_sum);
        }
        through_log_variance_clamp(grad_logvar, logvar.col(i), ws.encoder_excess.cols(mu.cols()).col(i), inv_m);
    }
}

// Returns sum_i bound_i over the M = X.cols() datapoints (ws.bound holds each). With grad != nullptr, writes
// d/dparams of -(1/M) sum_i objective_i into grad (every parameter is written), and whether the part this
// thread wrote is finite into ws.grad_finite[thread], and then returns without a barrier: the caller meets the
// team before any thread reads another's gradient or flag. eps is (J, M * L).
// A team (ws reserved for its size) shares the step: each layer is split as in mlp.hpp, the likelihood by
// features and the per-datapoint work between the passes by datapoints.
template <class S>
double elbo_step(const Layout& layout, const S* params, const ConstMatrixRef<S>& X, const ConstMatrixRef<S>& eps,
                 const StepOptions& opt, Workspace<S>& ws, S* grad, const Team& team = {}) {
    const Index M = X.cols(), L = opt.n_samples, J = layout.n_components, C = M * L;
    const Activation f = layout.activation;
    const S inv_m = S(1) / S(M);
    // The ELBO weighs every sample 1/L, known before the bound; the IWAE weights come with the bound.
    const bool weights_known = opt.objective != Objective::importance_weighted;
    const std::pair<Index, Index> datapoints = team.share(M), features = team.share(layout.n_features);
    const Index i0 = datapoints.first, n = datapoints.second;    // this thread's datapoints
    const Index d0 = features.first, d = features.second;        // and its features of the likelihood
    eigen_assert(ws.batch >= M && ws.samples >= L && ws.loglik_part.cols() >= team.size);

    mlp_forward<S>(layout.encoder, params, f, X, ws.encoder, team);
    auto enc = ws.encoder.output(M);
    const auto mu = enc.topRows(J);
    const auto logvar = enc.bottomRows(J);
    auto sigma = ws.sigma.cols(M);
    auto z = ws.z.cols(C);
    MatrixRef<S> encoder_excess = ws.encoder_excess.cols(M).middleCols(i0, n);
    clamp_log_variance<S>(enc.middleCols(i0, n), J, J, grad ? &encoder_excess : nullptr);
    sigma.middleCols(i0, n) = (S(0.5) * logvar.middleCols(i0, n).array()).exp().matrix();
    for (Index i = i0; i < i0 + n; ++i)
        for (Index l = 0; l < L; ++l)  // z = mu + sigma * eps (§2.4)
            z.col(i * L + l) = mu.col(i) + sigma.col(i).cwiseProduct(eps.col(i * L + l));
    if (grad && weights_known) ws.scaled.segment(i0 * L, n * L).setConstant(S(1) / S(L) * inv_m);  // weight / M
    team.sync();

    // Decoder; for the ELBO, dLoss/d out_c = -(1/(L M)) d log p(x|z_c) / d out_c in the same phase.
    mlp_forward<S>(layout.decoder, params, f, z, ws.decoder, team);
    auto dec = ws.decoder.output(C);
    const bool gaussian = layout.likelihood == Likelihood::gaussian;
    MatrixRef<S> decoder_excess = ws.decoder_excess.cols(C).middleRows(gaussian ? d0 : 0, gaussian ? d : 0);
    if (gaussian) clamp_log_variance<S>(dec, layout.n_features + d0, d, grad ? &decoder_excess : nullptr);
    MatrixRef<S> dec_grad = ws.decoder.output_grad(C);
    // The ELBO's loss gradient comes with the likelihood (for the Bernoulli, in the same pass); the IWAE's once
    // the weights are known.
    log_likelihood<S>(layout.likelihood, X, L, dec, ws.loglik_part.col(team.index).data(), d0, d, ws.scaled.data(),
                      grad && weights_known ? &dec_grad : nullptr);
    const auto finish_loss_gradient = [&] {  // the clamp's penalty and the bound that certifies dW
        S bound = magnitude_bound(dec_grad.middleRows(d0, d));
        if (gaussian) {  // the clamp's penalty, weighted 1/(L M) per sample whatever the objective
            dec_grad.middleRows(layout.n_features + d0, d) += (inv_m / S(L)) * log_variance_pull(decoder_excess);
            bound = std::max(bound, magnitude_bound(dec_grad.middleRows(layout.n_features + d0, d)));
        }
        ws.loss_grad_bound[size_t(team.index)] = bound;
    };
    if (grad && weights_known) finish_loss_gradient();
    team.sync();
    bounds_and_weights(opt, L, team.size, i0, n, mu, logvar, sigma, eps, z, ws);
    if (grad && !weights_known) {  // IWAE: dLoss/d out_c = -(w~_c / M) d log p(x|z_c) / d out_c
        ws.scaled.segment(i0 * L, n * L) = ws.weight.segment(i0 * L, n * L) * inv_m;
        team.sync();
        log_likelihood_loss_gradient<S>(layout.likelihood, X, L, dec, ws.scaled.data(), dec_grad, d0, d);
        finish_loss_gradient();
        team.sync();
    }
    bool finite = true;
    if (grad) {
        MatrixRef<S> grad_z = ws.grad_z.cols(C);
        const auto bounds = ws.loss_grad_bound.begin();
        finite = mlp_backward<S>(layout.decoder, params, f, z, ws.decoder, grad, &grad_z, team,
                                 *std::max_element(bounds, bounds + team.size));
        encoder_heads_gradient(opt, L, inv_m, i0, n, team.index, mu, logvar, sigma, eps, z, grad_z, ws);
    }
    team.sync();
    if (grad) {  // no bound on the encoder's output gradient (inf), and no barrier after its last layer
        const bool encoder_finite = mlp_backward<S>(layout.encoder, params, f, X, ws.encoder, grad, nullptr, team,
                                                    std::numeric_limits<S>::infinity(), false);
        ws.grad_finite[size_t(team.index)] = encoder_finite && finite;
    }
    double total = 0.0;  // every thread sums all the bounds, in order, once they are all written
    for (Index i = 0; i < M; ++i) total += ws.bound_exact[size_t(i)];
    return total;
}

}  // namespace aevb
