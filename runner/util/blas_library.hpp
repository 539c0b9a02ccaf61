// The BLAS that LibTorch calls, and its thread count.
//
// Debian's LibTorch 1.13 calls the system's libblas.so.3, which is whichever BLAS
// update-alternatives chose: the reference implementation (libblas3) or an OpenBLAS build. It
// matters at `threads = 1`, where LibTorch 1.13 runs small batches' 1 x 1 convolutions on BLAS
// (3-4x slower on the reference one; docs/benchmarks.md). OpenBLAS's pthread build, the one
// Debian's recommends bring, keeps a thread pool of its own sized to the machine, which
// at::set_num_threads does not reach; its OpenMP build follows OpenMP's count. The wheel's
// LibTorch carries its BLAS inside and exports no OpenBLAS symbols; there this does nothing.
#pragma once

#include <string>

namespace exprun {

// Gives OpenBLAS the same thread count as LibTorch where LibTorch's BLAS is OpenBLAS (found by
// name in the process); returns whether it was.
bool set_blas_threads(int count);

// For `exprun version`: the library that provides the single-precision matrix product
// LibTorch calls, with OpenBLAS's build and threading where it is OpenBLAS.
std::string blas_library();

}  // namespace exprun
