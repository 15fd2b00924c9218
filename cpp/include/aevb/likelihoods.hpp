// The decoder's log p(x|z), summed over features, from the decoder's last (linear) layer, one column per
// sample. Column c of `out` belongs to datapoint c / samples_per_point of X.
//   Bernoulli, from logits a:  log p = sum_i x_i a_i - softplus(a_i),   d/da = x - sigmoid(a)
//   Gaussian, rows [mu; logvar]: log p = sum_i -1/2 (log 2 pi + logvar_i + (x_i - mu_i)^2 e^-logvar_i)
//       d/dmu = (x - mu) e^-logvar,   d/dlogvar = 1/2 ((x - mu)^2 e^-logvar - 1)   (0 where logvar is clamped:
//       training adds the clamp's penalty there, see clamp_log_variance)
#pragma once

#include <algorithm>
#include <cmath>

#include "aevb/layout.hpp"

namespace aevb {

constexpr double kLog2Pi = 1.8378770664093453;

// Clamps rows [first, first + count) of out into the safe log-variance range. With `excess` (count rows, out's
// columns), also writes there what the clamp took off, e = raw - clamped: 0 inside the range.
template <class S> void clamp_log_variance(MatrixRef<S> out, Index first, Index count, MatrixRef<S>* excess = nullptr) {
    auto rows = out.middleRows(first, count);
    if (excess) *excess = rows;
    rows = rows.cwiseMax(S(kLogVarianceMin)).cwiseMin(S(kLogVarianceMax));
    if (excess) *excess -= rows;
}

// d penalty / d raw for the training loss's clamp penalty (layout.hpp), from the excess e: the penalty is |e|
// for |e| <= 1 and (e^2 + 1) / 2 beyond, so the pull is 0 inside the range, at least 1 outside it -- any
// optimizer brings the log-variance back in, not only towards the edge -- and grows with the distance.
template <class Derived> auto log_variance_pull(const Eigen::MatrixBase<Derived>& e) {
    using S = typename Derived::Scalar;
    return (e.array().sign() * e.array().abs().max(S(1))).matrix();
}

// 1 where a clamped log-variance is strictly inside the range (so it carries a gradient), else 0.
template <class Derived> auto inside_log_variance_range(const Eigen::ArrayBase<Derived>& lv) {
    using S = typename Derived::Scalar;
    return (lv > S(kLogVarianceMin) && lv < S(kLogVarianceMax)).template cast<S>();
}

// g = dLoss/d clamped log-variance lv, in place, becomes dLoss/d raw log-variance: the clamp passes g strictly
// inside the range and nothing outside it, and the training loss's penalty adds `weight` times its pull.
template <class G, class LV, class E, class S>
void through_log_variance_clamp(G&& g, const LV& lv, const E& excess, S weight) {
    g = (g.array() * inside_log_variance_range(lv.array())).matrix() + weight * log_variance_pull(excess);
}

// log1p(q) for q >= 0 from one log: u = 1 + q rounds off q's low bits, c = q - (u - 1) is what was lost, and
// log1p(q) = log u + c / u to first order in c.
template <class S, class Packet> Packet plog1p_from_log(const Packet& q) {
    using namespace Eigen::internal;
    const Packet one = pset1<Packet>(S(1)), u = padd(one, q);
    return padd(plog(u), pdiv(psub(q, psub(u, one)), u));
}

// sigmoid(a) = (a >= 0 ? 1 : e) / (1 + e) from e = e^-|a|, the exponential the log-likelihood needs too. (In
// float, Eigen's packet exp clamps its argument at -88.7, so below a = -88.7 the vector loop's sigmoid is some
// subnormal rather than the exact one: off by less than 1.2e-38.)
template <class Packet> Packet psigmoid_from(const Packet& a, const Packet& e) {
    using namespace Eigen::internal;
    const Packet one = pset1<Packet>(1);
    return pdiv(pselect(pcmp_le(pset1<Packet>(0), a), one, e), padd(one, e));
}
template <class S> S sigmoid_from(S a, S e) { return (a >= S(0) ? S(1) : e) / (S(1) + e); }

// sum_i x_i a_i - softplus(a_i) over n features, softplus(a) = max(a, 0) + log1p(e), e = e^-|a| in (0, 1],
// with one log per vector lane per kFactors vectors rather than one per feature: each lane keeps
// q = prod (1 + e_i) - 1, updated as q + e + q e, which rounds relative to q itself -- so a sum of tiny
// terms keeps its relative accuracy -- and stays below 2^kFactors. x a - max(a, 0) is summed apart (for
// x = 1 and a >> 0 it is exactly 0, where x a - softplus(a) would cancel). With kLossGradient, the same pass
// (and the same e) also writes loss_grad[i] = w (sigmoid(a_i) - x_i), the gradient of -w log p; without
// kLogLikelihood it only writes that and returns 0. Loads and stores need no alignment.
template <class S, bool kLogLikelihood, bool kLossGradient>
S bernoulli_terms(const S* x, const S* a, Index n, S* loss_grad = nullptr, S w = S(0)) {
    using namespace Eigen::internal;
    using Packet = typename packet_traits<S>::type;
    constexpr Index W = packet_traits<S>::size, kFactors = 64;
    const Packet zero = pset1<Packet>(S(0)), wv = pset1<Packet>(w);
    Packet linear = zero, logs = zero, q = zero;
    Index i = 0;
    for (Index factors = 0; i + W <= n; i += W) {
        const Packet av = ploadu<Packet>(a + i), xv = ploadu<Packet>(x + i), e = pexp(pnegate(pabs(av)));
        if constexpr (kLossGradient) pstoreu(loss_grad + i, pmul(wv, psub(psigmoid_from(av, e), xv)));
        if constexpr (kLogLikelihood) {
            linear = padd(linear, psub(pmul(xv, av), pmax(av, zero)));
            q = padd(q, padd(e, pmul(q, e)));  // (1 + q)(1 + e) - 1
            if (++factors == kFactors) {
                logs = padd(logs, plog1p_from_log<S>(q));
                q = zero;
                factors = 0;
            }
        }
    }
    S total = kLogLikelihood ? predux(linear) - predux(padd(logs, plog1p_from_log<S>(q))) : S(0);
    for (; i < n; ++i) {
        const S e = std::exp(-std::abs(a[i]));
        if constexpr (kLossGradient) loss_grad[i] = w * (sigmoid_from(a[i], e) - x[i]);
        if constexpr (kLogLikelihood) total += (x[i] * a[i] - std::max(a[i], S(0))) - std::log1p(e);
    }
    return total;
}

// grad.col(c) = -weight[c] * d loglik[c] / d out.col(c): the loss gradient of -sum_c weight[c] loglik[c],
// for features [first, first + count) (all by default).
template <class S>
void log_likelihood_loss_gradient(Likelihood kind, const ConstMatrixRef<S>& X, Index samples,
                                  const ConstMatrixRef<S>& out, const S* weight, MatrixRef<S> grad, Index first = 0,
                                  Index count = -1) {
    const Index D = X.rows(), d = count < 0 ? D : count;
    for (Index c = 0; c < out.cols(); ++c) {
        const auto x = X.col(c / samples).segment(first, d).array();
        const S w = weight[c];
        if (kind == Likelihood::bernoulli) {
            bernoulli_terms<S, false, true>(x.data(), out.col(c).data() + first, d, grad.col(c).data() + first, w);
        } else {
            const auto mu = out.col(c).segment(first, d).array();
            const auto lv = out.col(c).segment(D + first, d).array();
            const auto precision_residual = (x - mu) * (-lv).exp();
            grad.col(c).segment(first, d).array() = -w * precision_residual;
            grad.col(c).segment(D + first, d).array() =
                -w * S(0.5) * ((x - mu) * precision_residual - S(1)) * inside_log_variance_range(lv);
        }
    }
}

// loglik[c] = the terms of log p(x_{c / samples} | decoder output column c) from features [first, first + count)
// (all of them by default; a team sums its threads' shares). With loss_grad, also writes the loss gradient of
// log_likelihood_loss_gradient for the same features and `weight` (for the Bernoulli in the same pass).
template <class S>
void log_likelihood(Likelihood kind, const ConstMatrixRef<S>& X, Index samples, const ConstMatrixRef<S>& out,
                    S* loglik, Index first = 0, Index count = -1, const S* weight = nullptr,
                    MatrixRef<S>* loss_grad = nullptr) {
    const Index D = X.rows(), d = count < 0 ? D : count;
    eigen_assert(!loss_grad || weight);
    for (Index c = 0; c < out.cols(); ++c) {
        const auto x = X.col(c / samples).segment(first, d).array();
        if (kind == Likelihood::bernoulli) {
            const S* a = out.col(c).data() + first;
            loglik[c] = loss_grad ? bernoulli_terms<S, true, true>(x.data(), a, d, loss_grad->col(c).data() + first,
                                                                   weight[c])
                                  : bernoulli_terms<S, true, false>(x.data(), a, d);
        } else {
            const auto mu = out.col(c).segment(first, d).array();
            const auto lv = out.col(c).segment(D + first, d).array();
            loglik[c] = S(-0.5) * (S(kLog2Pi) * S(d) + lv.sum() + ((x - mu).square() * (-lv).exp()).sum());
        }
    }
    if (loss_grad && kind == Likelihood::gaussian)
        log_likelihood_loss_gradient<S>(kind, X, samples, out, weight, *loss_grad, first, count);
}

}  // namespace aevb
