// Explicit instantiations of the core for float and double (declared extern in aevb/aevb.hpp).
#include "aevb/aevb.hpp"

namespace aevb {
AEVB_FOR_SCALAR(, float)
AEVB_FOR_SCALAR(, double)
}  // namespace aevb
