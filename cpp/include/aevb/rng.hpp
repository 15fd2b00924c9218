// Seeded counter-based normal draws: Philox4x32-10 (Salmon et al., SC'11, "Parallel random numbers: as easy as
// 1, 2, 3"). Each draw is a pure function of (key, counter), so any element of any noise matrix can be made
// independently: results do not depend on thread count, chunking, or which other rows are in a call.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "aevb/box_muller.hpp"
#include "aevb/layout.hpp"

namespace aevb {

using Philox4x32Counter = std::array<uint32_t, 4>;
using Philox4x32Key = std::array<uint32_t, 2>;

// Philox4x32-10 on N blocks at once, block p's four words in c0[p], c1[p], c2[p], c3[p] (the loops vectorize).
template <int N> void philox4x32_10(uint32_t* c0, uint32_t* c1, uint32_t* c2, uint32_t* c3, Philox4x32Key k) {
    for (int round = 0; round < 10; ++round) {
        for (int p = 0; p < N; ++p) {
            const uint64_t p0 = uint64_t(0xD2511F53u) * c0[p];
            const uint64_t p1 = uint64_t(0xCD9E8D57u) * c2[p];
            c0[p] = uint32_t(p1 >> 32) ^ c1[p] ^ k[0];
            c2[p] = uint32_t(p0 >> 32) ^ c3[p] ^ k[1];
            c1[p] = uint32_t(p1);
            c3[p] = uint32_t(p0);
        }
        k[0] += 0x9E3779B9u;  // the golden ratio
        k[1] += 0xBB67AE85u;  // sqrt(3) - 1
    }
}

inline Philox4x32Counter philox4x32_10(Philox4x32Counter c, Philox4x32Key k) {
    philox4x32_10<1>(&c[0], &c[1], &c[2], &c[3], k);
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
    // 2p + 1 share one Philox block and one radius, so they are made together, kBatch pairs at a time.
    template <class Block> void fill(Block&& out, uint64_t first = 0) const {
        using S = typename std::decay_t<Block>::Scalar;
        const Index rows = out.rows(), total = rows * out.cols();
        Index k = 0, r = 0, c = 0;  // the next element, draw first + k, is out(r, c)
        const auto put = [&](double value) {
            out(r, c) = S(value);
            if (++r == rows) {
                r = 0;
                ++c;
            }
            ++k;
        };
        if (total > 0 && (first & 1)) put(draw(first));
        double even[kBatch], odd[kBatch];
        while (k + 1 < total) {
            const Index pairs = std::min<Index>(kBatch, (total - k) / 2);
            normal_pairs<kBatch>((first + uint64_t(k)) >> 1, even, odd);
            for (Index p = 0; p < pairs; ++p) {
                put(even[p]);
                put(odd[p]);
            }
        }
        if (k < total) put(draw(first + uint64_t(k)));
    }

    double draw(uint64_t i) const {
        double even, odd;
        normal_pairs<1>(i >> 1, &even, &odd);
        return (i & 1) ? odd : even;
    }

    // For p < N, writes draws 2 (first_pair + p) and 2 (first_pair + p) + 1 to even[p] and odd[p]: Box-Muller
    // (box_muller.hpp) on the two uniforms of Philox block {first_pair + p, stream}. Every lane does the same
    // arithmetic, so a draw has the same bits whatever N, and the loops vectorize.
    template <int N> void normal_pairs(uint64_t first_pair, double* even, double* odd) const {
        uint32_t c0[N], c1[N], c2[N], c3[N];
        for (int p = 0; p < N; ++p) {
            const uint64_t pair = first_pair + uint64_t(p);
            c0[p] = uint32_t(pair);
            c1[p] = uint32_t(pair >> 32);
            c2[p] = uint32_t(stream_);
            c3[p] = uint32_t(stream_ >> 32);
        }
        philox4x32_10<N>(c0, c1, c2, c3, key_);
        for (int p = 0; p < N; ++p) {
            const double u1 = box_muller::uniform((uint64_t(c0[p]) << 32) | c1[p]);
            const double u2 = box_muller::uniform((uint64_t(c2[p]) << 32) | c3[p]);
            const double radius = std::sqrt(-2.0 * box_muller::log_positive(u1));
            double cos_angle, sin_angle;
            box_muller::cos_sin_turns(u2, cos_angle, sin_angle);  // of the angle 2 pi u2
            even[p] = radius * cos_angle;
            odd[p] = radius * sin_angle;
        }
    }

    // A uniform in [0, 1) for shuffling: draw i of this stream.
    double uniform_at(uint64_t i) const {
        const Philox4x32Counter bits =
            philox4x32_10({uint32_t(i), uint32_t(i >> 32), uint32_t(stream_), uint32_t(stream_ >> 32)}, key_);
        return double(((uint64_t(bits[0]) << 32) | bits[1]) >> 11) * 0x1.0p-53;
    }

  private:
    static constexpr int kBatch = 16;
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
