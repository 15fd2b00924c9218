// Where each weight and bias sits in the one flat parameter buffer.
//
// A dense layer maps n_in -> n_out. Its weight is stored as an (n_in, n_out) C-order block -- the layout of
// scikit-learn's MLP `coefs_` -- which is exactly an (n_out, n_in) column-major Eigen matrix, followed by its
// n_out biases. Data are column-major too: a numpy (n, d) C-order array is an Eigen (d, n) matrix, one column
// per datapoint, so `out = W * in + b` needs no transposes and no copies at the boundary.
#pragma once

#include <Eigen/Dense>

#include <cstdint>
#include <stdexcept>
#include <vector>

namespace aevb {

using Index = Eigen::Index;
template <class S> using Matrix = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;
template <class S> using Vector = Eigen::Matrix<S, Eigen::Dynamic, 1>;
template <class S> using MatrixRef = Eigen::Ref<Matrix<S>>;
template <class S> using ConstMatrixRef = Eigen::Ref<const Matrix<S>>;

enum class Activation { tanh, relu, softplus, sigmoid };
enum class Likelihood { bernoulli, gaussian };

struct Dense {
    Index n_in, n_out;
    Index weight_offset, bias_offset;
};

// Log-variances (encoder and Gaussian decoder heads) are clamped to this range: sigma^2 in [3e-7, 3.3e6]. It
// keeps exp(+-logvar) finite in float32. Outside it the bound is flat, as with torch.clamp, so training adds a
// penalty on e = raw - clamped per log-variance to the loss (weighted like its datapoint or sample): |e| for
// |e| <= 1, (e^2 + 1) / 2 beyond. It is zero inside the range, so the bound and its gradient there are
// untouched, and outside it pulls back into range, without which a log-variance thrown out by a large step
// would never return.
constexpr double kLogVarianceMin = -15.0;
constexpr double kLogVarianceMax = 15.0;

// The variational auto-encoder's two networks in one buffer: the encoder first, then the decoder.
//   encoder: n_features -> hidden[0] -> ... -> hidden[k-1] -> 2 * n_components  (means, then log-variances)
//   decoder: n_components -> hidden[k-1] -> ... -> hidden[0] -> n_features      (Bernoulli logits)
//                                                             -> 2 * n_features  (Gaussian means, log-variances)
struct Layout {
    Index n_features, n_components;
    std::vector<Index> hidden;
    Activation activation;
    Likelihood likelihood;
    std::vector<Dense> encoder, decoder;
    Index n_params = 0;

    Layout(Index n_features_, Index n_components_, std::vector<Index> hidden_, Activation activation_,
           Likelihood likelihood_)
        : n_features(n_features_), n_components(n_components_), hidden(std::move(hidden_)),
          activation(activation_), likelihood(likelihood_) {
        if (n_features < 1 || n_components < 1) throw std::invalid_argument("n_features and n_components must be >= 1");
        for (Index h : hidden)
            if (h < 1) throw std::invalid_argument("hidden layer sizes must be >= 1");
        std::vector<Index> enc{n_features};
        enc.insert(enc.end(), hidden.begin(), hidden.end());
        enc.push_back(2 * n_components);
        std::vector<Index> dec{n_components};
        dec.insert(dec.end(), hidden.rbegin(), hidden.rend());
        dec.push_back(decoder_outputs());
        encoder = stack(enc);
        decoder = stack(dec);
    }

    Index decoder_outputs() const { return likelihood == Likelihood::gaussian ? 2 * n_features : n_features; }

  private:
    std::vector<Dense> stack(const std::vector<Index>& sizes) {
        std::vector<Dense> layers;
        for (size_t i = 0; i + 1 < sizes.size(); ++i) {
            Dense d{sizes[i], sizes[i + 1], n_params, n_params + sizes[i] * sizes[i + 1]};
            n_params = d.bias_offset + d.n_out;
            layers.push_back(d);
        }
        return layers;
    }
};

// A (rows, capacity) work buffer whose columns start at multiples of kColumnAlign scalars. Eigen peels the
// first and last elements of a column off its vector loop according to alignment, and those take a scalar path
// that rounds differently; with every column aligned alike, a column's arithmetic never depends on its position.
constexpr Index kColumnAlign = 16;

template <class S> struct ColumnBuffer {
    Matrix<S> storage;
    Index rows = 0;

    void resize(Index rows_, Index capacity) {
        rows = rows_;
        storage.resize((rows + kColumnAlign - 1) / kColumnAlign * kColumnAlign, capacity);
    }
    Index capacity() const { return storage.cols(); }
    auto cols(Index n) { return storage.topRows(rows).leftCols(n); }
    auto cols(Index n) const { return storage.topRows(rows).leftCols(n); }
};

template <class S> Eigen::Map<const Matrix<S>> weight(const S* params, const Dense& d) {
    return {params + d.weight_offset, d.n_out, d.n_in};
}
template <class S> Eigen::Map<Matrix<S>> weight(S* params, const Dense& d) {
    return {params + d.weight_offset, d.n_out, d.n_in};
}
template <class S> Eigen::Map<const Vector<S>> bias(const S* params, const Dense& d) {
    return {params + d.bias_offset, d.n_out};
}
template <class S> Eigen::Map<Vector<S>> bias(S* params, const Dense& d) { return {params + d.bias_offset, d.n_out}; }

}  // namespace aevb
