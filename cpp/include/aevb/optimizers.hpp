// Stochastic gradient updates over the flat parameter buffer (or a slice of it); the state is two buffers of
// the same length (Adam: first and second moments; Adagrad: squared-gradient sum; SGD: velocity), and `step`
// is the update's number t = 1, 2, ..., so one optimizer step updates every layer of both networks.
#pragma once

#include <cmath>
#include <cstdint>

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

// Plain loops, one pass per update, which the compiler vectorizes with exact square roots. (Eigen's fast
// packet sqrt is approximate while its scalar sqrt is exact, so an Eigen expression would round an element
// differently depending on whether the buffer's alignment puts it in the vectorized body: not reproducible.)
template <class S>
void optimizer_step(const OptimizerConfig& cfg, int64_t step, Index n, S* params, const S* grad, S* s0, S* s1) {
    const S lr = S(cfg.learning_rate), eps = S(cfg.epsilon);
    switch (cfg.solver) {
        case Solver::adam: {  // Kingma & Ba 2015, Algorithm 1, with PyTorch's placement of epsilon
            const S b1 = S(cfg.beta_1), b2 = S(cfg.beta_2);
            const S step_size = lr / (S(1) - S(std::pow(cfg.beta_1, double(step))));
            const S inv_sqrt_correction2 = S(1) / S(std::sqrt(1.0 - std::pow(cfg.beta_2, double(step))));
            for (Index i = 0; i < n; ++i) {
                const S g = grad[i];
                s0[i] = b1 * s0[i] + (S(1) - b1) * g;      // m = b1 m + (1 - b1) g
                s1[i] = b2 * s1[i] + (S(1) - b2) * g * g;  // v = b2 v + (1 - b2) g^2
                params[i] -= step_size * s0[i] / (std::sqrt(s1[i]) * inv_sqrt_correction2 + eps);
            }
            break;
        }
        case Solver::adagrad:  // Duchi et al. 2011: p -= lr g / (sqrt(sum g^2) + eps)
            for (Index i = 0; i < n; ++i) {
                s0[i] += grad[i] * grad[i];
                params[i] -= lr * grad[i] / (std::sqrt(s0[i]) + eps);
            }
            break;
        case Solver::sgd: {  // v = momentum v - lr g; p += v, or p += momentum v - lr g (Nesterov)
            const S mom = S(cfg.momentum);
            for (Index i = 0; i < n; ++i) {
                s0[i] = mom * s0[i] - lr * grad[i];
                params[i] += cfg.nesterov ? mom * s0[i] - lr * grad[i] : s0[i];
            }
            break;
        }
    }
}

}  // namespace aevb
