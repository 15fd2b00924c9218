// Initial parameters: weights ~ U(-b, b) with Glorot & Bengio's b = sqrt(6 / (n_in + n_out)) (scikit-learn's
// MLP uses the same, with sqrt(2 / ...) for sigmoid units), biases 0. Drawn from the counter-based stream, so
// a seed gives the same network on every machine.
#pragma once

#include <cmath>

#include "aevb/layout.hpp"
#include "aevb/rng.hpp"

namespace aevb {

template <class S> void init_params(const Layout& layout, uint64_t seed, S* params) {
    const RandomStream uniforms(mix64(seed ^ 0x696E697469616C21ull), 0);
    const double gain = layout.activation == Activation::sigmoid ? 2.0 : 6.0;
    for (const auto* net : {&layout.encoder, &layout.decoder})
        for (const Dense& d : *net) {
            const double b = std::sqrt(gain / double(d.n_in + d.n_out));
            auto w = weight(params, d);
            for (Index i = 0; i < w.size(); ++i)
                w.data()[i] = S(b * (2.0 * uniforms.uniform_at(uint64_t(d.weight_offset + i)) - 1.0));
            bias(params, d).setZero();
        }
}

}  // namespace aevb
