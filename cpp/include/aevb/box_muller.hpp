// Box-Muller on batches of Philox blocks: z0 = r cos(2 pi u2), z1 = r sin(2 pi u2), r = sqrt(-2 log u1).
// log, sin and cos are written here as plain double arithmetic without branches (not libm calls), so the
// compiler vectorizes a batch, and every build -- SSE2, AVX2, AVX-512, any libm -- gives the same bits: each
// step is one IEEE operation, as long as the compiler does not fuse a * b + c into an FMA (the build passes
// -ffp-contract=off) or reorder (no -ffast-math). Each function is within a few units in the last place of
// the exact value; tests/test_gradients.py compares the draws with libm's to 2e-15 of the radius.
#pragma once

#include <cstdint>
#include <cstring>

#ifdef __FAST_MATH__
#error "box_muller.hpp needs IEEE arithmetic: build without -ffast-math"
#endif

namespace aevb {
namespace box_muller {

inline uint64_t bits_of(double x) {
    uint64_t b;
    std::memcpy(&b, &x, sizeof b);
    return b;
}
inline double from_bits(uint64_t b) {
    double x;
    std::memcpy(&x, &b, sizeof x);
    return x;
}
constexpr double kTwoTo52 = 0x1p52;  // its bit pattern is 0x4330000000000000; its ulp is 1

// An integer below 2^52 as a double, by placing it in the mantissa of 2^52 (no int-to-double conversion,
// which SSE2 and AVX2 lack for 64-bit lanes).
inline double small_integer(uint64_t n) { return from_bits(0x4330000000000000ull | n) - kTwoTo52; }

// The uniform in (0, 1] of Box-Muller from 64 random bits: ((bits >> 11) + 1) 2^-53.
inline double uniform(uint64_t bits) {
    const uint64_t n = (bits >> 11) + 1;  // <= 2^53: both halves convert exactly, and so does their sum
    return (small_integer(n >> 32) * 4294967296.0 + small_integer(n & 0xFFFFFFFFull)) * 0x1.0p-53;
}

// log(u) for u > 0, not subnormal: u = 2^e m with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s) =
// 2 (s + s^3/3 + s^5/5 + ...), s = (m - 1)/(m + 1), |s| <= 0.172, and log 2 split in two for e log 2.
inline double log_positive(double u) {
    const uint64_t b = bits_of(u);
    const uint64_t mantissa = (b & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull;  // in [1, 2)
    const uint64_t high = from_bits(mantissa) > 1.4142135623730951;                 // then halve it
    const double m = from_bits(mantissa - (high << 52));
    const double e = small_integer((b >> 52) + high) - 1023.0;
    const double f = m - 1.0;  // exact
    const double s = f / (2.0 + f), s2 = s * s;
    // p = sum_k s^(2k) / (2k + 1), k = 0..10, by Horner: the rest is below 2^-60 of the first term
    const double coefficients[10] = {1.0 / 19, 1.0 / 17, 1.0 / 15, 1.0 / 13, 1.0 / 11,
                                     1.0 / 9,  1.0 / 7,  1.0 / 5,  1.0 / 3,  1.0};
    double p = 1.0 / 21;
    for (int k = 0; k < 10; ++k) p = p * s2 + coefficients[k];
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;  // fdlibm's
    return e * ln2_hi + (e * ln2_lo + 2.0 * s * p);
}

// cos(2 pi u) and sin(2 pi u) for u in [0, 1]: u = q/4 + t exactly, |t| <= 1/8, then the Taylor series of
// cos and sin at theta = 2 pi t (|theta| <= pi/4; the first omitted terms are below 2^-58), and the
// quarter turn q moves them: (c, s) -> (-s, c) -> (-c, -s) -> (s, -c).
inline void cos_sin_turns(double u, double& cos_out, double& sin_out) {
    const double shifted = 4.0 * u + kTwoTo52;  // rounds 4u to the integer q, held in the low mantissa bits
    const uint64_t q = bits_of(shifted) & 3;     // the quarter, mod 4
    const double t = u - (shifted - kTwoTo52) * 0.25;
    const double theta = t * 6.283185307179586, x2 = theta * theta;
    double c = 1.0 / 20922789888000.0, s = 1.0 / 355687428096000.0;  // 1/16!, 1/17!
    const double cos_coefficients[8] = {-1.0 / 87178291200, 1.0 / 479001600, -1.0 / 3628800, 1.0 / 40320,
                                        -1.0 / 720,         1.0 / 24,         -1.0 / 2,       1.0};
    const double sin_coefficients[8] = {-1.0 / 1307674368000, 1.0 / 6227020800, -1.0 / 39916800, 1.0 / 362880,
                                        -1.0 / 5040,          1.0 / 120,        -1.0 / 6,         1.0};
    for (int k = 0; k < 8; ++k) {
        c = c * x2 + cos_coefficients[k];
        s = s * x2 + sin_coefficients[k];
    }
    s *= theta;
    // Selects and signs as bit operations, which vectorize everywhere: swap for odd q, and flip the sign
    // bit of cos for q = 1, 2 and of sin for q = 2, 3.
    const uint64_t swap = 0 - (q & 1), c_bits = bits_of(c), s_bits = bits_of(s);
    cos_out = from_bits(((s_bits & swap) | (c_bits & ~swap)) ^ (((q + 1) & 2) << 62));
    sin_out = from_bits(((c_bits & swap) | (s_bits & ~swap)) ^ ((q & 2) << 62));
}

}  // namespace box_muller
}  // namespace aevb
