// Threads: OpenMP where the compiler has it, one thread otherwise, and helpers for loops that must give the
// same result whatever the thread count.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "aevb/layout.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace aevb {

inline int thread_index() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

// True when no element is inf or NaN. Tests the exponent bits with integer operations, which vectorize
// (an isfinite loop over floats does not), so the check costs little per optimizer step.
template <class S> bool all_finite(const S* x, Index n) {
    using Bits = std::conditional_t<sizeof(S) == 4, uint32_t, uint64_t>;
    constexpr Bits exponent = sizeof(S) == 4 ? Bits(0x7F800000u) : Bits(0x7FF0000000000000ull);
    Bits bad = 0;
    for (Index i = 0; i < n; ++i) {
        Bits bits;
        std::memcpy(&bits, x + i, sizeof bits);
        bad |= Bits((bits & exponent) == exponent);
    }
    return bad == 0;
}

}  // namespace aevb
