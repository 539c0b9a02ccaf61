#include "util/fp32_precision.hpp"

#include <ATen/Context.h>

namespace exprun {

void use_full_fp32_on_cuda() {
  at::globalContext().setAllowTF32CuDNN(false);
  at::globalContext().setAllowTF32CuBLAS(false);
}

}  // namespace exprun
