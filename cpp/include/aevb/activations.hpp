// Hidden-layer activations, applied in place, and their derivatives computed from the output h = f(a)
// alone, so the backward pass needs no stored pre-activations:
//   tanh:     f' = 1 - h^2
//   sigmoid:  f' = h (1 - h)
//   relu:     f' = [h > 0]
//   softplus: f = log(1 + e^a) (stable form max(a, 0) + log1p(e^-|a|)), f' = sigmoid(a) = 1 - e^-h
#pragma once

#include "aevb/layout.hpp"

namespace aevb {

template <class Derived> void activate(Activation f, Eigen::ArrayBase<Derived>&& a) {
    using S = typename Derived::Scalar;
    switch (f) {
        case Activation::tanh: a = a.tanh(); break;
        case Activation::sigmoid: a = S(1) / (S(1) + (-a).exp()); break;
        case Activation::relu: a = a.max(S(0)); break;
        case Activation::softplus: a = a.max(S(0)) + (-a.abs()).exp().log1p(); break;
    }
}

// g <- g * f'(a), with f'(a) written in terms of h = f(a).
template <class DerivedG, class DerivedH>
void multiply_by_derivative(Activation f, Eigen::ArrayBase<DerivedG>&& g, const Eigen::ArrayBase<DerivedH>& h) {
    using S = typename DerivedG::Scalar;
    switch (f) {
        case Activation::tanh: g *= S(1) - h.square(); break;
        case Activation::sigmoid: g *= h * (S(1) - h); break;
        case Activation::relu: g = (h > S(0)).select(g, S(0)); break;
        case Activation::softplus: g *= S(1) - (-h).exp(); break;
    }
}

}  // namespace aevb
