// The whole core; its float and double templates are compiled once, in cpp/src/instantiate.cpp.
#pragma once

#include "aevb/elbo.hpp"
#include "aevb/inference.hpp"
#include "aevb/init.hpp"
#include "aevb/trainer.hpp"

#define AEVB_FOR_SCALAR(EXTERN, S)                                                                             \
    EXTERN template double elbo_step<S>(const Layout&, const S*, const ConstMatrixRef<S>&,                     \
                                        const ConstMatrixRef<S>&, const StepOptions&, Workspace<S>&, S*,       \
                                        const Team&);                                                          \
    EXTERN template EpochReport train_epoch<S>(const Layout&, S*, S*, int64_t&, const ConstMatrixRef<S>&,      \
                                               std::vector<int64_t>, uint64_t, const TrainOptions&,            \
                                               const std::function<bool()>&);                                  \
    EXTERN template ValueRange<S> encode<S>(const Layout&, const S*, const ConstMatrixRef<S>&, MatrixRef<S>, \
                                            int);                                                              \
    EXTERN template void decode<S>(const Layout&, const S*, const ConstMatrixRef<S>&, MatrixRef<S>, int, bool, \
                                   uint64_t);                                                                  \
    EXTERN template void generate<S>(const Layout&, const S*, uint64_t, bool, MatrixRef<S>, int);              \
    EXTERN template void score<S>(const Layout&, const S*, const ConstMatrixRef<S>&, Index, uint64_t,          \
                                  double*, int);                                                               \
    EXTERN template void init_params<S>(const Layout&, uint64_t, S*);

namespace aevb {
AEVB_FOR_SCALAR(extern, float)
AEVB_FOR_SCALAR(extern, double)
}  // namespace aevb
