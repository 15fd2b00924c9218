// Threads: OpenMP where the compiler has it, one thread otherwise; the Team that shares a training step; and
// checks over data that give the same result whatever the thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "aevb/layout.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace aevb {

#ifdef AEVB_PROFILE_BARRIERS
// Defined by bench/step_profile.cpp, which times a training step barrier by barrier.
void profile_barrier_arrive(int thread);
void profile_barrier_leave(int thread);
#endif

inline int thread_index() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

// The threads that share one piece of work (a training step): each takes its share of every layer (rows or
// columns, see mlp.hpp) and of the datapoints, and they meet at barriers between layers. A step's result is
// bit-identical for the same team size and build; other team sizes agree to rounding (Eigen's products that
// remain, such as the gradient passed down, may round a share's rows differently, and partial sums are
// split differently). The default, a team of one, works alone: its barriers are no-ops, so the same code
// runs inside other parallel loops.
struct Team {
    int index = 0, size = 1;

    // The calling thread's place in the enclosing OpenMP parallel region.
    static Team of_parallel_region() {
#ifdef _OPENMP
        return {omp_get_thread_num(), omp_get_num_threads()};
#else
        return {};
#endif
    }
    bool leader() const { return index == 0; }
    void sync() const {
        if (size > 1) {
#ifdef AEVB_PROFILE_BARRIERS
            profile_barrier_arrive(index);
#endif
#pragma omp barrier
#ifdef AEVB_PROFILE_BARRIERS
            profile_barrier_leave(index);
#endif
        }
    }
    // This thread's rows [first, first + count) of n. Boundaries fall on multiples of `granule` (rounded to the
    // nearest, balancing the shares); the default, kColumnAlign, makes each share of a ColumnBuffer start on a
    // whole vector.
    std::pair<Index, Index> share(Index n, Index granule = kColumnAlign) const {
        const auto boundary = [&](int t) {
            return t == size ? n : std::min(n, (n * t / size + granule / 2) / granule * granule);
        };
        const Index first = boundary(index);
        return {first, boundary(index + 1) - first};
    }
};

// The largest magnitude in a block of columns, or +inf if an element is inf or NaN. An integer max over the
// bits with the sign shifted out, which vectorizes (an isfinite loop over floats does not) and orders finite
// magnitudes as numbers, with inf and NaN above them all.
template <class Block> auto magnitude_bound(const Block& block) {
    using S = typename Block::Scalar;
    static_assert(!(Block::Flags & Eigen::RowMajorBit) && Block::InnerStrideAtCompileTime == 1 &&
                      std::numeric_limits<S>::is_iec559 && (sizeof(S) == 4 || sizeof(S) == 8),
                  "magnitude_bound reads contiguous columns of IEEE float or double");
    using Bits = std::conditional_t<sizeof(S) == 4, uint32_t, uint64_t>;
    constexpr Bits shifted_inf = (sizeof(S) == 4 ? Bits(0x7F800000u) : Bits(0x7FF0000000000000ull)) << 1;
    Bits top = 0;
    for (Index c = 0; c < block.cols(); ++c) {
        const S* x = block.col(c).data();
        for (Index i = 0; i < block.rows(); ++i) {
            Bits bits;
            std::memcpy(&bits, x + i, sizeof bits);
            top = std::max(top, Bits(bits << 1));
        }
    }
    if (top >= shifted_inf) return std::numeric_limits<S>::infinity();
    const Bits magnitude = top >> 1;
    S out;
    std::memcpy(&out, &magnitude, sizeof out);
    return out;
}

// True when no element of x[0, n) is inf or NaN: one vectorized pass, cheap enough per optimizer step.
template <class S> bool all_finite(const S* x, Index n) {
    return magnitude_bound(Eigen::Map<const Vector<S>>(x, n)) < std::numeric_limits<S>::infinity();
}

// The smallest and largest element and whether all are finite: the input check of every call that reads a
// data set (min and max are exact in any order, so any split of the work gives the same answer).
template <class S> struct ValueRange {
    S min, max;
    bool finite;

    static ValueRange of(const S* x, Index n) {  // n >= 1
        constexpr Index kPiece = 4096;  // three passes per piece, the second and third from L1
        ValueRange r{x[0], x[0], true};
        for (Index p = 0; p < n; p += kPiece) {
            const Eigen::Map<const Eigen::Array<S, Eigen::Dynamic, 1>> piece(x + p, std::min(kPiece, n - p));
            r.min = std::min(r.min, piece.minCoeff());
            r.max = std::max(r.max, piece.maxCoeff());
            r.finite = r.finite && all_finite(piece.data(), piece.size());
        }
        return r;
    }
    void merge(const ValueRange& other) {
        min = std::min(min, other.min);
        max = std::max(max, other.max);
        finite = finite && other.finite;
    }
};

// ValueRange of x (n >= 1 elements) in one pass spread over `threads` threads.
template <class S> ValueRange<S> value_range(const S* x, Index n, int threads) {
    threads = int(std::max<Index>(1, std::min<Index>(threads, n)));
    std::vector<ValueRange<S>> parts(static_cast<size_t>(threads));
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int t = 0; t < threads; ++t) {
        const Index begin = n * t / threads, end = n * (t + 1) / threads;
        parts[size_t(t)] = ValueRange<S>::of(x + begin, end - begin);
    }
    for (const auto& part : parts) parts[0].merge(part);
    return parts[0];
}

}  // namespace aevb
