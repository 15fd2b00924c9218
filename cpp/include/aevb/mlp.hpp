// Dense multi-layer perceptron passes on views into the flat parameter buffer; one column per datapoint.
// Hidden layers apply the activation; the last layer is linear (its output feeds a distribution's parameters).
// A Team shares each layer (forward: output rows, columns for a narrow layer, or the input layer's weight
// columns, see mlp_forward; backward: see mlp_backward) and meets at a barrier before the next layer reads the
// whole result.
#pragma once

#include <algorithm>
#include <limits>
#include <numeric>
#include <utility>

#include "aevb/activations.hpp"
#include "aevb/layout.hpp"
#include "aevb/parallel.hpp"
#include "aevb/tile_product.hpp"

namespace aevb {

// Per-layer outputs and output gradients, allocated once for up to `capacity` columns. grad_bound serves a
// team of exactly `team` threads (mlp_backward checks every dW in full for any other team).
template <class S> struct MLPBuffers {
    std::vector<ColumnBuffer<S>> out;   // out[l] = f(W_l in_l + b_l), (n_out, capacity)
    std::vector<ColumnBuffer<S>> grad;  // grad[l] = dLoss / d(W_l in_l + b_l)
    // grad_bound[l * team + t]: the magnitude_bound of the part of grad[l] (l below the last layer) that
    // thread t wrote in the last mlp_backward, so that the next layer's dW can be certified finite.
    std::vector<S> grad_bound;
    // input_parts[t - 1]: thread t's part of the input layer's product, where the team splits that layer by its
    // weight columns (input_layer_by_weight_columns; thread 0 writes its part into out[0]).
    std::vector<ColumnBuffer<S>> input_parts;
    int team = 1;

    void reserve(const std::vector<Dense>& layers, Index capacity, int team_size = 1);
    auto output(Index n) { return out.back().cols(n); }
    auto output_grad(Index n) { return grad.back().cols(n); }
};

// Whether a team splits a layer side of `rows` rows (outputs in the forward pass, inputs in the backward) by
// columns -- datapoints, or samples in the decoder -- instead: with fewer than two whole 16-row vectors per
// thread, 16-row shares are far from even (40 rows: 16 and 24; 20: 16 and 4). A team of one takes everything
// either way.
inline bool split_by_columns(Index rows, const Team& team) { return rows < 2 * kColumnAlign * team.size; }

// A range [begin, begin + count) of the flat parameter buffer.
struct ParamRange {
    Index begin, count;
    bool is_weight;  // or a bias
};

// A thread's share of one layer in mlp_backward: db for outputs [r0, r0 + outputs), dW's columns
// [w0, w0 + weight_columns) and the rows [j0, j0 + inputs) of the gradient passed down (G_{l-1}, or
// input_grad) -- or, for a layer with few inputs (by_columns), dW's rows [r0, r0 + outputs) of every column
// (weight_columns is then all n_in columns, of which the thread writes those rows only) and a share of the
// gradient's columns.
struct LayerShare {
    bool by_columns;
    Index r0, outputs, w0, weight_columns, j0, inputs;
};

// dW's columns need no vector alignment (each is a column of the product's output), so they are split
// finer than rows: on multiples of 4 columns that also span whole 16-scalar vectors of the layer's weights,
// so that no cache line holds two threads' columns (where the weights start on a line). The shares, and
// the optimizer's work that follows them, balance to within 4 columns where n_out is a multiple of 4 (784:
// 392 and 392, where 16-column shares give 400 and 384).
inline Index weight_column_granule(Index n_out) {
    return std::max<Index>(4, kColumnAlign / std::gcd(n_out, kColumnAlign));
}

inline LayerShare backward_share(const Dense& d, const Team& team) {
    const bool by_columns = split_by_columns(d.n_in, team);
    const auto [r0, outputs] = team.share(d.n_out);
    if (by_columns) return {true, r0, outputs, 0, d.n_in, 0, d.n_in};
    const auto [w0, weight_columns] = team.share(d.n_in, weight_column_granule(d.n_out));
    const auto [j0, inputs] = team.share(d.n_in);
    return {false, r0, outputs, w0, weight_columns, j0, inputs};
}

// Whether a team splits the input layer's product by the weight columns each thread updates (its
// backward_share) rather than by outputs: each thread multiplies its columns of W by its rows of the input,
// and the next layer's phase adds the parts for its own datapoints. No thread then reads weights that the
// other updates, nor the other's rows of the input. On the shared host of bench/RESULTS.md, writing lines
// the other core has read is what slows a step most in its slow phases; this split made such steps 6.5%
// faster and left calm ones level (medians of paired rounds). It needs a next layer split by columns
// (datapoints), whose phase adds the parts.
inline bool input_layer_by_weight_columns(const std::vector<Dense>& layers, const Team& team) {
    return team.size > 1 && layers.size() > 1 && !split_by_columns(layers[0].n_in, team) &&
           split_by_columns(layers[1].n_out, team);
}

template <class S> void MLPBuffers<S>::reserve(const std::vector<Dense>& layers, Index capacity, int team_size) {
    out.resize(layers.size());
    grad.resize(layers.size());
    for (size_t l = 0; l < layers.size(); ++l) {
        out[l].resize(layers[l].n_out, capacity);
        grad[l].resize(layers[l].n_out, capacity);
    }
    team = team_size;
    grad_bound.assign(layers.size() * size_t(team_size), std::numeric_limits<S>::infinity());
    input_parts.resize(input_layer_by_weight_columns(layers, Team{0, team_size}) ? size_t(team_size - 1) : 0);
    for (auto& part : input_parts) part.resize(layers[0].n_out, capacity);
}

// out[l] = f(W_l out[l-1] + b_l) for the first n columns of `input` (which the whole team can read).
// Returns with the team synchronized.
template <class S>
void mlp_forward(const std::vector<Dense>& layers, const S* params, Activation f, const ConstMatrixRef<S>& input,
                 MLPBuffers<S>& buf, const Team& team = {}) {
    const Index n = input.cols();
    const bool by_parts = input_layer_by_weight_columns(layers, team) && buf.team == team.size;
    for (size_t l = 0; l < layers.size(); ++l) {
        if (l == 0 && by_parts) {  // this thread's part: b (thread 0 only) + W[:, its columns] input[its rows]
            const LayerShare s = backward_share(layers[0], team);
            auto part = team.leader() ? buf.out[0].cols(n) : buf.input_parts[size_t(team.index - 1)].cols(n);
            dense_forward<S>(weight(params, layers[0]).middleCols(s.w0, s.weight_columns),
                             input.middleRows(s.w0, s.weight_columns),
                             team.leader() ? bias(params, layers[0]).data() : nullptr, part);
            team.sync();
            continue;
        }
        const bool by_columns = split_by_columns(layers[l].n_out, team);
        const auto [r0, rows] = by_columns ? std::pair<Index, Index>{0, layers[l].n_out} : team.share(layers[l].n_out);
        const auto [c0, cols] = by_columns ? team.share(n) : std::pair<Index, Index>{0, n};
        if (l == 1 && by_parts) {  // the input layer's output for this thread's columns: the parts, in order
            auto h = buf.out[0].cols(n).middleCols(c0, cols);
            for (auto& part : buf.input_parts) h += part.cols(n).middleCols(c0, cols);
            activate(f, h.array());
        }
        auto out = buf.out[l].cols(n).block(r0, c0, rows, cols);
        const auto W = weight(params, layers[l]).middleRows(r0, rows);
        const ConstMatrixRef<S> in = l == 0 ? input : ConstMatrixRef<S>(buf.out[l - 1].cols(n));
        dense_forward<S>(W, in.middleCols(c0, cols), bias(params, layers[l]).data() + r0, out);
        if (l + 1 < layers.size()) activate(f, out.array());
        team.sync();
    }
}

// Appends the ranges of the flat parameter buffer that this thread's share of mlp_backward writes: each
// layer's weights (whole columns: one range; rows of every column: one range per column), then its biases.
inline void append_backward_share(const std::vector<Dense>& layers, const Team& team, std::vector<ParamRange>& out) {
    for (const Dense& d : layers) {
        const LayerShare s = backward_share(d, team);
        if (!s.by_columns || s.outputs == d.n_out) {
            if (s.weight_columns > 0)
                out.push_back({d.weight_offset + s.w0 * d.n_out, s.weight_columns * d.n_out, true});
        } else if (s.outputs > 0) {
            for (Index j = 0; j < d.n_in; ++j) out.push_back({d.weight_offset + j * d.n_out + s.r0, s.outputs, true});
        }
        if (s.outputs > 0) out.push_back({d.bias_offset + s.r0, s.outputs, false});
    }
}

// Whether G in^T, a sum of n products, is finite whatever its elements and summation order, given bounds
// g, h >= 0 with |G| <= g and |in| <= h: every product and partial sum is at most n g h (1 + u)^(n + 1) <
// 2 n g h, which n g h <= max / 2 keeps finite (while n u <= 1/4; u is the unit roundoff). An inf or NaN
// bound certifies nothing.
template <class S> bool certified_finite_product(Index n, S g, S h) {
    const double u = double(std::numeric_limits<S>::epsilon()) / 2;
    return double(n) * u <= 0.25 && double(n) * double(g) * double(h) <= double(std::numeric_limits<S>::max()) / 2;
}

// Back-propagates buf.grad.back() (dLoss/d output, set by the caller, complete for the team) through the layers:
//   dW_l = G_l in_l^T,  db_l = G_l 1,  G_{l-1} = (W_l^T G_l) * f'(out_{l-1}).
// Parameter gradients are written (not accumulated) into grad_params at the layers' offsets; each thread takes
// its backward_share of every layer. With input_grad, dLoss/d input = W_0^T G_0 is written there too, shared like
// G_{l-1}. Returns whether every parameter gradient this thread wrote is finite: checked right after it is
// written, while it is still in cache -- or, for the wide layers (not split_by_columns), certified from bounds on
// |G| and on the thread's inputs (certified_finite_product), which spares reading its share of dW back (6.6 us
// per thread for a 784 x 500 layer, 3.5% of its backward pass). The bound on G for the last layer is the
// caller's, output_grad_bound: it must bound all of buf.grad.back(), every thread's part (inf: unknown, so dW is
// checked). Each thread records the bound of the part of G_{l-1} it writes in buf.grad_bound, and each layer
// takes the largest over the team. Returns with the team synchronized -- or, with last_barrier = false, without
// the barrier after the first layer: the caller meets the team before any thread reads what another wrote in that
// layer.
template <class S>
bool mlp_backward(const std::vector<Dense>& layers, const S* params, Activation f, const ConstMatrixRef<S>& input,
                  MLPBuffers<S>& buf, S* grad_params, MatrixRef<S>* input_grad = nullptr, const Team& team = {},
                  S output_grad_bound = std::numeric_limits<S>::infinity(), bool last_barrier = true) {
    const Index n = input.cols();
    const bool bounds = buf.team == team.size;  // grad_bound has one slot per thread of this team
    const auto grad_bound = [&](size_t l) {     // of all of G_l
        if (l + 1 == layers.size()) return output_grad_bound;
        if (!bounds) return std::numeric_limits<S>::infinity();
        const auto first = buf.grad_bound.begin() + std::ptrdiff_t(l) * team.size;
        return *std::max_element(first, first + team.size);
    };
    bool finite = true;
    for (size_t l = layers.size(); l-- > 0;) {
        const Dense& d = layers[l];
        const auto G = buf.grad[l].cols(n);
        const ConstMatrixRef<S> layer_input = l == 0 ? input : ConstMatrixRef<S>(buf.out[l - 1].cols(n));
        const auto [by_columns, r0, outputs, w0, weight_columns, j0, inputs] = backward_share(d, team);
        const auto [c0, cols] = by_columns ? team.share(n) : std::pair<Index, Index>{0, n};
        if (by_columns) {
            auto dW = weight(grad_params, d).middleRows(r0, outputs);
            weight_gradient<S>(G.middleRows(r0, outputs), layer_input, dW);
            finite = finite && magnitude_bound(dW) < std::numeric_limits<S>::infinity();  // rows of every column
        } else {
            auto dW = weight(grad_params, d).middleCols(w0, weight_columns);
            const auto share_input = layer_input.middleRows(w0, weight_columns);
            weight_gradient<S>(G, share_input, dW);
            const S g = grad_bound(l);
            const bool certified = g < std::numeric_limits<S>::infinity() &&
                                   certified_finite_product(n, g, magnitude_bound(share_input));
            if (!certified) finite = finite && all_finite(dW.data(), dW.size());
        }
        // db = G 1, each row summed in column order: Eigen's rowwise sum adds columns in a tree inside its
        // vector body but in order in its scalar edges, which depend on grad_params' alignment.
        auto db = bias(grad_params, d).segment(r0, outputs);
        db.setZero();
        for (Index c = 0; c < n; ++c) db += G.col(c).segment(r0, outputs);
        finite = finite && all_finite(db.data(), db.size());
        const auto W_t = weight(params, d).middleCols(j0, inputs).transpose();
        if (l > 0) {
            auto below = buf.grad[l - 1].cols(n).block(j0, c0, inputs, cols);
            below.noalias() = W_t * G.middleCols(c0, cols);
            multiply_by_derivative(f, below.array(), layer_input.block(j0, c0, inputs, cols).array());
            if (bounds) buf.grad_bound[(l - 1) * size_t(team.size) + size_t(team.index)] = magnitude_bound(below);
        } else if (input_grad) {
            input_grad->leftCols(n).block(j0, c0, inputs, cols).noalias() = W_t * G.middleCols(c0, cols);
        }
        if (l > 0 || last_barrier) team.sync();
    }
    return finite;
}

}  // namespace aevb
