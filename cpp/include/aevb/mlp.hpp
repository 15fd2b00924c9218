// Dense multi-layer perceptron passes on views into the flat parameter buffer; one column per datapoint.
// Hidden layers apply the activation; the last layer is linear (its output feeds a distribution's parameters).
#pragma once

#include "aevb/activations.hpp"
#include "aevb/layout.hpp"

namespace aevb {

// Per-layer outputs and output gradients, allocated once for up to `capacity` columns.
template <class S> struct MLPBuffers {
    std::vector<ColumnBuffer<S>> out;   // out[l] = f(W_l in_l + b_l), (n_out, capacity)
    std::vector<ColumnBuffer<S>> grad;  // grad[l] = dLoss / d(W_l in_l + b_l)

    void reserve(const std::vector<Dense>& layers, Index capacity) {
        out.resize(layers.size());
        grad.resize(layers.size());
        for (size_t l = 0; l < layers.size(); ++l) {
            out[l].resize(layers[l].n_out, capacity);
            grad[l].resize(layers[l].n_out, capacity);
        }
    }
    auto output(Index n) { return out.back().cols(n); }
    auto output_grad(Index n) { return grad.back().cols(n); }
};

// out[l] = f(W_l out[l-1] + b_l) for the first n columns of `input`.
template <class S>
void mlp_forward(const std::vector<Dense>& layers, const S* params, Activation f, const ConstMatrixRef<S>& input,
                 MLPBuffers<S>& buf) {
    const Index n = input.cols();
    for (size_t l = 0; l < layers.size(); ++l) {
        auto out = buf.out[l].cols(n);
        if (l == 0)
            out.noalias() = weight(params, layers[l]) * input;
        else
            out.noalias() = weight(params, layers[l]) * buf.out[l - 1].cols(n);
        out.colwise() += bias(params, layers[l]);
        if (l + 1 < layers.size()) activate(f, out.array());
    }
}

// Back-propagates buf.grad.back() (dLoss/d output, set by the caller) through the layers:
//   dW_l = G_l in_l^T,  db_l = G_l 1,  G_{l-1} = (W_l^T G_l) * f'(out_{l-1}).
// Parameter gradients are written (not accumulated) into grad_params at the layers' offsets.
// With input_grad, dLoss/d input = W_0^T G_0 is written there too.
template <class S>
void mlp_backward(const std::vector<Dense>& layers, const S* params, Activation f, const ConstMatrixRef<S>& input,
                  MLPBuffers<S>& buf, S* grad_params, MatrixRef<S>* input_grad = nullptr) {
    const Index n = input.cols();
    for (size_t l = layers.size(); l-- > 0;) {
        auto g = buf.grad[l].cols(n);
        if (l == 0)
            weight(grad_params, layers[l]).noalias() = g * input.transpose();
        else
            weight(grad_params, layers[l]).noalias() = g * buf.out[l - 1].cols(n).transpose();
        bias(grad_params, layers[l]) = g.rowwise().sum();
        if (l > 0) {
            auto below = buf.grad[l - 1].cols(n);
            below.noalias() = weight(params, layers[l]).transpose() * g;
            multiply_by_derivative(f, below.array(), buf.out[l - 1].cols(n).array());
        } else if (input_grad) {
            input_grad->leftCols(n).noalias() = weight(params, layers[l]).transpose() * g;
        }
    }
}

}  // namespace aevb
