// Stochastic gradient updates over the whole flat parameter buffer; `state` holds two buffers of the same
// length (Adam: first and second moments; Adagrad: squared-gradient sum; SGD: velocity) and `step` counts
// updates, so one optimizer step updates every layer of both networks.
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

template <class S>
void optimizer_step(const OptimizerConfig& cfg, S* params_, const S* grad_, S* state_, Index n, int64_t& step) {
    Eigen::Map<Vector<S>> p(params_, n);
    Eigen::Map<const Vector<S>> g(grad_, n);
    Eigen::Map<Vector<S>> s0(state_, n), s1(state_ + n, n);
    const S lr = S(cfg.learning_rate), eps = S(cfg.epsilon);
    ++step;
    switch (cfg.solver) {
        case Solver::adam: {  // Kingma & Ba 2015, Algorithm 1, with PyTorch's placement of epsilon
            const S b1 = S(cfg.beta_1), b2 = S(cfg.beta_2);
            const S correction1 = S(1) - S(std::pow(cfg.beta_1, double(step)));
            const S correction2 = S(1) - S(std::pow(cfg.beta_2, double(step)));
            s0 = b1 * s0 + (S(1) - b1) * g;                       // m = b1 m + (1 - b1) g
            s1 = b2 * s1 + (S(1) - b2) * g.cwiseProduct(g);       // v = b2 v + (1 - b2) g^2
            p.array() -= (lr / correction1) * s0.array() / (s1.array().sqrt() / std::sqrt(correction2) + eps);
            break;
        }
        case Solver::adagrad:  // Duchi et al. 2011: p -= lr g / (sqrt(sum g^2) + eps)
            s0 += g.cwiseProduct(g);
            p.array() -= lr * g.array() / (s0.array().sqrt() + eps);
            break;
        case Solver::sgd: {  // v = momentum v - lr g; p += v, or p += momentum v - lr g (Nesterov)
            const S mom = S(cfg.momentum);
            s0 = mom * s0 - lr * g;
            if (cfg.nesterov)
                p += mom * s0 - lr * g;
            else
                p += s0;
            break;
        }
    }
}

}  // namespace aevb
