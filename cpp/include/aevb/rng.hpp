// Seeded counter-based normal draws: Philox4x32-10 (Salmon et al., SC'11, "Parallel random numbers: as easy as
// 1, 2, 3"). Each draw is a pure function of (key, counter), so any element of any noise matrix can be made
// independently: results do not depend on thread count, chunking, or which other rows are in a call.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "aevb/layout.hpp"

namespace aevb {

using Philox4x32Counter = std::array<uint32_t, 4>;
using Philox4x32Key = std::array<uint32_t, 2>;

inline Philox4x32Counter philox4x32_10(Philox4x32Counter c, Philox4x32Key k) {
    for (int round = 0; round < 10; ++round) {
        const uint64_t p0 = uint64_t(0xD2511F53u) * c[0];
        const uint64_t p1 = uint64_t(0xCD9E8D57u) * c[2];
        c = {uint32_t(p1 >> 32) ^ c[1] ^ k[0], uint32_t(p1), uint32_t(p0 >> 32) ^ c[3] ^ k[1], uint32_t(p0)};
        k[0] += 0x9E3779B9u;  // the golden ratio
        k[1] += 0xBB67AE85u;  // sqrt(3) - 1
    }
    return c;
}

// splitmix64's finalizer: a bijective 64-bit mix used to derive keys from seeds and row contents.
inline uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// Counter-based random numbers: normal draw i (or uniform i) of stream `stream` under key `key`.
// Two normals come from one Philox block by Box-Muller on two 53-bit uniforms in (0, 1].
class RandomStream {
  public:
    RandomStream(uint64_t key, uint64_t stream) : key_{uint32_t(key), uint32_t(key >> 32)}, stream_(stream) {}

    // Fills the (rows, cols) column-major block: element (r, c) is draw first + c * rows + r. Draws 2p and
    // 2p + 1 share one Philox block and one radius, so they are made together.
    template <class Block> void fill(Block&& out, uint64_t first = 0) const {
        using S = typename std::decay_t<Block>::Scalar;
        const Index rows = out.rows(), total = rows * out.cols();
        const auto set = [&](Index k, double value) { out(k % rows, k / rows) = S(value); };
        Index k = 0;
        if (total > 0 && (first & 1)) set(k++, draw(first));
        for (; k + 1 < total; k += 2) {
            const auto [even, odd] = normal_pair((first + uint64_t(k)) >> 1);
            set(k, even);
            set(k + 1, odd);
        }
        if (k < total) set(k, draw(first + uint64_t(k)));
    }

    double draw(uint64_t i) const {
        const auto [even, odd] = normal_pair(i >> 1);
        return (i & 1) ? odd : even;
    }

    // Draws 2 pair and 2 pair + 1: Box-Muller on the two uniforms of Philox block `pair`.
    std::pair<double, double> normal_pair(uint64_t pair) const {
        const Philox4x32Counter bits = philox4x32_10(
            {uint32_t(pair), uint32_t(pair >> 32), uint32_t(stream_), uint32_t(stream_ >> 32)}, key_);
        const double u1 = uniform((uint64_t(bits[0]) << 32) | bits[1]);
        const double u2 = uniform((uint64_t(bits[2]) << 32) | bits[3]);
        const double radius = std::sqrt(-2.0 * std::log(u1));
        const double angle = 6.283185307179586 * u2;
        return {radius * std::cos(angle), radius * std::sin(angle)};
    }

    // A uniform in [0, 1) for shuffling: draw i of this stream.
    double uniform_at(uint64_t i) const {
        const Philox4x32Counter bits =
            philox4x32_10({uint32_t(i), uint32_t(i >> 32), uint32_t(stream_), uint32_t(stream_ >> 32)}, key_);
        return double(((uint64_t(bits[0]) << 32) | bits[1]) >> 11) * 0x1.0p-53;
    }

  private:
    static double uniform(uint64_t x) { return double((x >> 11) + 1) * 0x1.0p-53; }  // in (0, 1]
    Philox4x32Key key_;
    uint64_t stream_;
};

// A key that depends on the seed and on a row's values only (not on its position in the call). Values are
// hashed at float precision, so the same data in float32 and float64 get the same noise.
template <class S> uint64_t row_key(uint64_t seed, const S* row, Index n) {
    uint64_t h = mix64(seed);
    for (Index i = 0; i < n; ++i) {
        const float value = float(row[i]);
        uint32_t bits = 0;
        std::memcpy(&bits, &value, sizeof bits);
        h = mix64(h ^ bits);
    }
    return h;
}

}  // namespace aevb
