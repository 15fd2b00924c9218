// Stochastic gradient updates over the flat parameter buffer (or a slice of it); the state is two buffers of
// the same length (Adam: first and second moments; Adagrad: squared-gradient sum; SGD: velocity), and `step`
// is the update's number t = 1, 2, ..., so one optimizer step updates every layer of both networks.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "aevb/layout.hpp"

namespace aevb {

enum class Solver { adam, adagrad, sgd };

struct OptimizerConfig {
    Solver solver = Solver::adam;
    double learning_rate = 1e-3;
    double beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-8;  // Adam; epsilon also Adagrad's
    double momentum = 0.9;                                // SGD
    bool nesterov = true;
};

// Every kFlushEvery-th update stores the decaying state's subnormal values as 0 (Adam's moments where epsilon
// allows it, see adam_flushes_subnormals; SGD's velocity). Why: where a pixel is almost never on, its weights'
// Adam m decays by beta_1 into the subnormals and stays there (0.9 m rounds back to m), and every operation on
// a subnormal costs a microcode assist: thousands of them slow Adam by a third. Not every update, since the
// compare and select slow each update they are in by 5-10%; every 16th, no subnormal lingers for long.
constexpr int64_t kFlushEvery = 16;

// One optimizer update, number t = step: its step-dependent constants (Adam's bias corrections) are computed
// once, then apply() updates any slice of the flat buffers -- a team calls it on every range it owns.
// Plain loops, one pass per update, which the compiler vectorizes with exact square roots. (Eigen's fast
// packet sqrt is approximate while its scalar sqrt is exact, so an Eigen expression would round an element
// differently depending on whether the buffer's alignment puts it in the vectorized body: not reproducible.)
template <class S> class OptimizerStep {
  public:
    OptimizerStep(const OptimizerConfig& cfg, int64_t step)
        : cfg_(cfg),
          step_size_(S(cfg.learning_rate) / (S(1) - S(std::pow(cfg.beta_1, double(step))))),
          inv_sqrt_correction2_(S(1) / S(std::sqrt(1.0 - std::pow(cfg.beta_2, double(step))))),
          flush_(step % kFlushEvery == 0),
          adam_flush_(flush_ && adam_flushes_subnormals(cfg, inv_sqrt_correction2_)) {}

    // Whether Adam may store a moment below the smallest normal number 2^-e as 0: only when epsilon is large
    // enough that no subnormal v can move the denominator. sqrt(v) c < 2^(-e/2) c, c = 1/sqrt(1 - beta_2^t),
    // must stay under a quarter of epsilon's ulp, so that sqrt(v) c + eps rounds to eps either way (float32,
    // beta_2 = 0.999: epsilon >= 1.2e-10 at t = 16, 1.5e-11 once c is about 1; the default is 1e-8). A flushed
    // m changes an update by at most step_size 2^-e / eps (1e-32 at the defaults), below the rounding of any
    // parameter larger than about 1e-24 in magnitude. A flushed v leaves this update as it is; through the
    // next v it can move a later denominator by an ulp, and so that update by one part in 10^7.
    static bool adam_flushes_subnormals(const OptimizerConfig& cfg, S inv_sqrt_correction2) {
        const double smallest_sqrt = std::sqrt(double(std::numeric_limits<S>::min()));
        const double quarter_ulp = cfg.epsilon * double(std::numeric_limits<S>::epsilon()) / 8;
        return 2 * smallest_sqrt * double(inv_sqrt_correction2) <= quarter_ulp;  // 2: the product's rounding
    }

    void apply(Index n, S* params, const S* grad, S* s0, S* s1) const {
        switch (cfg_.solver) {
            case Solver::adam:
                return adam_flush_ ? adam<true>(n, params, grad, s0, s1) : adam<false>(n, params, grad, s0, s1);
            case Solver::adagrad: {  // Duchi et al. 2011: p -= lr g / (sqrt(sum g^2) + eps)
                const S lr = S(cfg_.learning_rate), eps = S(cfg_.epsilon);
                for (Index i = 0; i < n; ++i) {
                    s0[i] += grad[i] * grad[i];
                    params[i] -= lr * grad[i] / (std::sqrt(s0[i]) + eps);
                }
                return;
            }
            case Solver::sgd:
                return flush_ ? sgd<true>(n, params, grad, s0) : sgd<false>(n, params, grad, s0);
        }
    }

  private:
    // Kingma & Ba 2015, Algorithm 1, with PyTorch's placement of epsilon; the flush is a select, so the loop
    // stays vectorized.
    template <bool flush> void adam(Index n, S* params, const S* grad, S* s0, S* s1) const {
        const S b1 = S(cfg_.beta_1), b2 = S(cfg_.beta_2), eps = S(cfg_.epsilon);
        for (Index i = 0; i < n; ++i) {
            const S g = grad[i];
            if constexpr (flush) {  // (written apart: either body in the other's form is slower, measured)
                const S m = b1 * s0[i] + (S(1) - b1) * g, v = b2 * s1[i] + (S(1) - b2) * g * g;
                s0[i] = std::abs(m) < std::numeric_limits<S>::min() ? S(0) : m;
                s1[i] = v < std::numeric_limits<S>::min() ? S(0) : v;
            } else {
                s0[i] = b1 * s0[i] + (S(1) - b1) * g;      // m = b1 m + (1 - b1) g
                s1[i] = b2 * s1[i] + (S(1) - b2) * g * g;  // v = b2 v + (1 - b2) g^2
            }
            params[i] -= step_size_ * s0[i] / (std::sqrt(s1[i]) * inv_sqrt_correction2_ + eps);
        }
    }

    // v = momentum v - lr g; p += v, or p += momentum v - lr g (Nesterov). A flushed velocity changes a
    // parameter by less than the smallest normal number: no bit of one larger than about 4e-31 in magnitude.
    template <bool flush> void sgd(Index n, S* params, const S* grad, S* s0) const {
        const S lr = S(cfg_.learning_rate), mom = S(cfg_.momentum);
        for (Index i = 0; i < n; ++i) {
            if constexpr (flush) {
                const S v = mom * s0[i] - lr * grad[i];
                s0[i] = std::abs(v) < std::numeric_limits<S>::min() ? S(0) : v;
            } else {
                s0[i] = mom * s0[i] - lr * grad[i];
            }
            params[i] += cfg_.nesterov ? mom * s0[i] - lr * grad[i] : s0[i];
        }
    }

    OptimizerConfig cfg_;
    S step_size_, inv_sqrt_correction2_;  // Adam: lr / (1 - beta_1^t) and 1 / sqrt(1 - beta_2^t)
    bool flush_;                          // whether this update stores subnormal state as 0 (t % kFlushEvery == 0)
    bool adam_flush_;                     // and, for Adam, whether epsilon allows it
};

}  // namespace aevb
