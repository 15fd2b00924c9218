// Dense multi-layer perceptron passes on views into the flat parameter buffer; one column per datapoint.
// Hidden layers apply the activation; the last layer is linear (its output feeds a distribution's parameters).
// A Team shares each layer (forward: output rows; backward: see mlp_backward) and meets at a barrier before
// the next layer reads the whole result.
#pragma once

#include "aevb/activations.hpp"
#include "aevb/layout.hpp"
#include "aevb/parallel.hpp"

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

// out[l] = f(W_l out[l-1] + b_l) for the first n columns of `input` (which the whole team can read).
// Returns with the team synchronized.
template <class S>
void mlp_forward(const std::vector<Dense>& layers, const S* params, Activation f, const ConstMatrixRef<S>& input,
                 MLPBuffers<S>& buf, const Team& team = {}) {
    const Index n = input.cols();
    for (size_t l = 0; l < layers.size(); ++l) {
        const auto [r0, rows] = team.share(layers[l].n_out);
        auto out = buf.out[l].cols(n).middleRows(r0, rows);
        const auto W = weight(params, layers[l]).middleRows(r0, rows);
        out.colwise() = bias(params, layers[l]).segment(r0, rows);  // then += the product: no zeroing pass
        if (l == 0)
            out.noalias() += W * input;
        else
            out.noalias() += W * buf.out[l - 1].cols(n);
        if (l + 1 < layers.size()) activate(f, out.array());
        team.sync();
    }
}

// A range [begin, begin + count) of the flat parameter buffer.
struct ParamRange {
    Index begin, count;
    bool is_weight;  // or a bias
};

// Appends the ranges that this thread's share of mlp_backward writes (below): each layer's weight columns for
// its share of the inputs, then the biases for its share of the outputs.
inline void append_backward_share(const std::vector<Dense>& layers, const Team& team, std::vector<ParamRange>& out) {
    for (const Dense& d : layers) {
        const auto [j0, inputs] = team.share(d.n_in);
        const auto [r0, outputs] = team.share(d.n_out);
        out.push_back({d.weight_offset + j0 * d.n_out, inputs * d.n_out, true});
        out.push_back({d.bias_offset + r0, outputs, false});
    }
}

// Back-propagates buf.grad.back() (dLoss/d output, set by the caller, complete for the team) through the layers:
//   dW_l = G_l in_l^T,  db_l = G_l 1,  G_{l-1} = (W_l^T G_l) * f'(out_{l-1}).
// Parameter gradients are written (not accumulated) into grad_params at the layers' offsets. Each thread
// takes a share of the layer's inputs j -- columns j of dW_l (one contiguous range of the buffer) and rows j
// of G_{l-1} -- and a share of its outputs for db_l. With input_grad, dLoss/d input = W_0^T G_0 is written
// there too. Returns, with the team synchronized, whether every parameter gradient this thread wrote is finite
// (checked right after it is written, while it is still in cache).
template <class S>
bool mlp_backward(const std::vector<Dense>& layers, const S* params, Activation f, const ConstMatrixRef<S>& input,
                  MLPBuffers<S>& buf, S* grad_params, MatrixRef<S>* input_grad = nullptr, const Team& team = {}) {
    const Index n = input.cols();
    bool finite = true;
    for (size_t l = layers.size(); l-- > 0;) {
        const auto G = buf.grad[l].cols(n);
        const auto [j0, inputs] = team.share(layers[l].n_in);
        const ConstMatrixRef<S> layer_input = l == 0 ? input : ConstMatrixRef<S>(buf.out[l - 1].cols(n));
        const auto in = layer_input.middleRows(j0, inputs);
        auto dW = weight(grad_params, layers[l]).middleCols(j0, inputs);
        dW.noalias() = G * in.transpose();
        finite = finite && all_finite(dW.data(), dW.size());
        const auto [r0, outputs] = team.share(layers[l].n_out);
        // db = G 1, each row summed in column order: Eigen's rowwise sum adds columns in a tree inside its
        // vector body but in order in its scalar edges, which depend on grad_params' alignment.
        auto db = bias(grad_params, layers[l]).segment(r0, outputs);
        db.setZero();
        for (Index c = 0; c < n; ++c) db += G.col(c).segment(r0, outputs);
        finite = finite && all_finite(db.data(), db.size());
        const auto W_t = weight(params, layers[l]).middleCols(j0, inputs).transpose();
        if (l > 0) {
            auto below = buf.grad[l - 1].cols(n).middleRows(j0, inputs);
            below.noalias() = W_t * G;
            multiply_by_derivative(f, below.array(), in.array());
        } else if (input_grad) {
            input_grad->leftCols(n).middleRows(j0, inputs).noalias() = W_t * G;
        }
        team.sync();
    }
    return finite;
}

}  // namespace aevb
