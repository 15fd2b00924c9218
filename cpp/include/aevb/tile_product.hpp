// The products of a training step's dense layers, C = A B (+ a bias in every column), by a register-tile
// kernel of our own rather than Eigen's product:
//   forward        out = W in + b   (A = the layer's weights, B = its input)            dense_forward
//   weight grad    dW  = G in^T     (A = dLoss/d output, B = the input, transposed)     weight_gradient
// Eigen writes the bias (or zeroes dW) in one pass, packs both operands, then adds the product into the
// output. Here each tile of C (kRows rows by up to kCols columns) is summed in registers and written once,
// with the bias added then; A's rows are packed once per block of kRows rows and up to kMaxDepth columns,
// and B is read where it lies, through two strides (a tile reads kCols scalars of B per step of the sum).
// Measured (one thread's share, hot, AVX-512): dW of the 784 x 500 layers 148 against Eigen's 156 us, of the
// encoder heads (40 x 500) 9 against 16; the forward products level with Eigen's (256 rows of the 784 -> 500
// layer: 160 against 161 us), without the bias pass. In the two-thread C++ step (bench/compare_steps.py,
// median of paired rounds): the weight gradients +1.4%, the forward passes another +1.3%. The AVX2 build's
// products are level with Eigen's (within 4%); the baseline build's (SSE2, no FMA: it runs only where AVX2 is
// missing) are 6-15% slower. Depth blocks of equal length (to a step) up to 256 steps, rather than 192 and a
// short rest (392 as 192 + 192 + 8), made the forward products 2-3% faster (hot) and the step 0.6% (paired
// rounds).
//
// Every element is one chain of multiply-adds (fused where the instruction set has FMA) over the depth in
// order, in blocks whose sums are added in order: the same result for any split of C's rows or columns
// between threads and any alignment.
#pragma once

#include <algorithm>

#include "aevb/layout.hpp"

namespace aevb {

namespace tile_product_detail {

using Eigen::internal::packet_traits;
using Eigen::internal::unpacket_traits;

template <class S> struct Shape {
    using Packet = typename packet_traits<S>::type;
    static constexpr int kWidth = unpacket_traits<Packet>::size;  // scalars per packet
    static constexpr int kPackets = 2;                            // packets of rows per tile
    static constexpr int kRows = kPackets * kWidth;
    // Accumulators kPackets x kCols, plus kPackets rows of A and one broadcast scalar of B, in the registers.
    static constexpr int kRegisters = int(EIGEN_ARCH_DEFAULT_NUMBER_OF_REGISTERS);
    static constexpr int kCols = std::min(12, (kRegisters - kPackets - 1) / kPackets);
    // Columns of A per packed block, at most: kRows x kMaxDepth scalars, 32 KB with AVX-512, which leaves room
    // in this host's 48 KB L1 (bench/RESULTS.md; not measured on CPUs with a 32 KB L1).
    static constexpr Index kMaxDepth = 256;
    static_assert(kCols >= 1, "too few vector registers for a tile");
};

// B's element (k, j) is at data[k * depth_stride + j * column_stride].
template <class S> struct StridedOperand {
    const S* data;
    Index depth_stride, column_stride;
    const S* at(Index k, Index j) const { return data + k * depth_stride + j * column_stride; }
};

// How a tile's sum reaches C: written, added to what an earlier block of the depth wrote, or added to the bias.
enum class Start { zero, output, bias };

// out[0, rows) = x (+ out or bias, by start): whole packets directly, a last partial one by lanes.
template <class S, class Packet> void store(S* out, Index rows, Packet x, Start start, const S* bias) {
    using namespace Eigen::internal;
    constexpr int W = unpacket_traits<Packet>::size;
    if (rows >= W) {
        if (start == Start::output) x = padd(ploadu<Packet>(out), x);
        if (start == Start::bias) x = padd(ploadu<Packet>(bias), x);
        pstoreu(out, x);
        return;
    }
    alignas(64) S lanes[W];
    pstore(lanes, x);
    for (Index q = 0; q < rows; ++q)
        out[q] = start == Start::output ? out[q] + lanes[q] : start == Start::bias ? bias[q] + lanes[q] : lanes[q];
}

// One tile: C's rows (the packed block A, P packets of rows per step of the sum) by C columns of B, over
// `depth` steps; B starts at the tile's first column and the block's first step.
template <class S, int P, int C>
void tile(const S* A, const StridedOperand<S>& B, Index depth, S* out, Index ld_out, Index rows, Start start,
          const S* bias) {
    using namespace Eigen::internal;
    using Packet = typename Shape<S>::Packet;
    constexpr int W = Shape<S>::kWidth;
    Packet acc[P][C];
    for (int r = 0; r < P; ++r)
        for (int c = 0; c < C; ++c) acc[r][c] = pset1<Packet>(S(0));
    const S* const b0 = B.data;
    const Index depth_stride = B.depth_stride, column_stride = B.column_stride;
    for (Index k = 0; k < depth; ++k) {
        Packet a[P];
        for (int r = 0; r < P; ++r) a[r] = pload<Packet>(A + (k * P + r) * W);
        for (int c = 0; c < C; ++c) {
            const Packet bc = pset1<Packet>(b0[k * depth_stride + c * column_stride]);
            for (int r = 0; r < P; ++r) acc[r][c] = pmadd(a[r], bc, acc[r][c]);
        }
    }
    // A whole tile writes its packets directly: through store() instead, the weight gradients measured 3-6%
    // slower (hot, one thread's share of the 784 x 500 layers).
    if (rows == P * W) {
        for (int c = 0; c < C; ++c)
            for (int r = 0; r < P; ++r) {
                S* to = out + c * ld_out + r * W;
                Packet x = acc[r][c];
                if (start == Start::output) x = padd(ploadu<Packet>(to), x);
                if (start == Start::bias) x = padd(ploadu<Packet>(bias + r * W), x);
                pstoreu(to, x);
            }
        return;
    }
    for (int c = 0; c < C; ++c)
        for (int r = 0; r < P; ++r)
            store(out + c * ld_out + r * W, rows - r * W, acc[r][c], start, bias ? bias + r * W : nullptr);
}

template <class S, int P, int C = Shape<S>::kCols>
void tile_columns(Index cols, const S* A, const StridedOperand<S>& B, Index depth, S* out, Index ld_out, Index rows,
                  Start start, const S* bias) {
    if constexpr (C > 1) {
        if (cols < C) return tile_columns<S, P, C - 1>(cols, A, B, depth, out, ld_out, rows, start, bias);
    }
    tile<S, P, C>(A, B, depth, out, ld_out, rows, start, bias);
}

// out = A B (+ bias 1^T): A is (out.rows() x depth), B (depth x out.cols()).
template <class S>
void tile_product(const ConstMatrixRef<S>& A, const StridedOperand<S>& B, MatrixRef<S> out, const S* bias) {
    using namespace Eigen::internal;
    using Packet = typename Shape<S>::Packet;
    constexpr int W = Shape<S>::kWidth;
    const Index depth = A.cols();
    if (depth == 0) {
        for (Index j = 0; j < out.cols(); ++j)
            for (Index i = 0; i < out.rows(); ++i) out(i, j) = bias ? bias[i] : S(0);
        return;
    }
    // The depth in as few blocks as fit, their lengths differing by at most one step (392: 196 + 196, not
    // 256 + 136), so that no block is short: each block writes or adds every tile of C once.
    const Index blocks = (depth + Shape<S>::kMaxDepth - 1) / Shape<S>::kMaxDepth;
    alignas(64) S packed[Shape<S>::kRows * Shape<S>::kMaxDepth];  // A's block: for each step, its rows
    for (Index b = 0, k0 = 0, steps = 0; b < blocks; ++b, k0 += steps) {
        steps = depth / blocks + (b < depth % blocks ? 1 : 0);
        const Start start = k0 > 0 ? Start::output : bias ? Start::bias : Start::zero;
        for (Index i = 0; i < out.rows(); i += Shape<S>::kRows) {
            const Index rows = std::min<Index>(Shape<S>::kRows, out.rows() - i);
            const int packets = rows > W ? Shape<S>::kPackets : 1;
            for (Index k = 0; k < steps; ++k) {
                const S* column = A.col(k0 + k).data() + i;
                S* to = packed + k * packets * W;
                for (Index r = 0; r < packets * W; r += W) {
                    if (rows - r >= W) {
                        pstore(to + r, ploadu<Packet>(column + r));
                    } else {  // the last rows, then zeros: only A's own rows are read
                        std::fill(std::copy(column + r, column + rows, to + r), to + r + W, S(0));
                    }
                }
            }
            for (Index j = 0; j < out.cols(); j += Shape<S>::kCols) {
                const Index cols = std::min<Index>(Shape<S>::kCols, out.cols() - j);
                const StridedOperand<S> tile_B{B.at(k0, j), B.depth_stride, B.column_stride};
                S* tile_out = out.col(j).data() + i;
                const S* tile_bias = bias ? bias + i : nullptr;
                if (packets == Shape<S>::kPackets)
                    tile_columns<S, Shape<S>::kPackets>(cols, packed, tile_B, steps, tile_out, out.outerStride(), rows,
                                                        start, tile_bias);
                else
                    tile_columns<S, 1>(cols, packed, tile_B, steps, tile_out, out.outerStride(), rows, start,
                                       tile_bias);
            }
        }
    }
}

}  // namespace tile_product_detail

// out = W in + b 1^T: a dense layer's pre-activations (W: n_out x n_in, in: n_in x n).
template <class S>
void dense_forward(const ConstMatrixRef<S>& W, const ConstMatrixRef<S>& in, const S* b, MatrixRef<S> out) {
    eigen_assert(W.cols() == in.rows() && out.rows() == W.rows() && out.cols() == in.cols());
    tile_product_detail::tile_product<S>(W, {in.data(), 1, in.outerStride()}, out, b);
}

// dW = G in^T, written (not accumulated): a dense layer's weight gradient (G: n_out x n, in: n_in x n).
template <class S> void weight_gradient(const ConstMatrixRef<S>& G, const ConstMatrixRef<S>& in, MatrixRef<S> dW) {
    eigen_assert(G.cols() == in.cols() && dW.rows() == G.rows() && dW.cols() == in.rows());
    tile_product_detail::tile_product<S>(G, {in.data(), in.outerStride(), 1}, dW, nullptr);
}

}  // namespace aevb
