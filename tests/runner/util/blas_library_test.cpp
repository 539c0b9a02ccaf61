// The BLAS under LibTorch gets exprun's thread count, and `exprun version` names it. OpenBLAS is
// what scripts/setup.sh installs for Debian's LibTorch; the wheel's LibTorch has its BLAS
// inside, and there the OpenBLAS cases skip, saying why.
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <torch/version.h>

#include <string>

#include "run/experiment_run.hpp"
#include "util/blas_library.hpp"

namespace exprun {
namespace {

using GetThreads = int (*)();

GetThreads openblas_get_num_threads() {
  return reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
}

class BlasLibraryTest : public ::testing::Test {
 protected:
  void SetUp() override { previous_ = at::get_num_threads(); }
  void TearDown() override { apply_thread_count(previous_); }

 private:
  int previous_ = 1;
};

TEST_F(BlasLibraryTest, OpenBlasGetsTheRunnersThreadCount) {
  const GetThreads get = openblas_get_num_threads();
  if (!get) GTEST_SKIP() << "LibTorch's BLAS here is not OpenBLAS: " << blas_library();
  for (const int threads : {1, 2, 1}) {
    EXPECT_EQ(apply_thread_count(threads), threads);
    EXPECT_EQ(at::get_num_threads(), threads);
    EXPECT_EQ(get(), threads);
  }
  EXPECT_TRUE(set_blas_threads(2));
  EXPECT_EQ(get(), 2);
}

TEST_F(BlasLibraryTest, WithoutOpenBlasNothingIsSet) {
  if (openblas_get_num_threads()) GTEST_SKIP() << "OpenBLAS is here: " << blas_library();
  EXPECT_FALSE(set_blas_threads(2));
  EXPECT_EQ(apply_thread_count(2), 2);
  EXPECT_EQ(at::get_num_threads(), 2);
}

TEST_F(BlasLibraryTest, NamesTheLibraryOfTheMatrixProduct) {
  const std::string text = blas_library();
  if (!dlsym(RTLD_DEFAULT, "sgemm_")) {
    EXPECT_EQ(text, "none exported (LibTorch's own, if any)");
    return;
  }
  EXPECT_EQ(text.front(), '/') << text;  // the path the dynamic linker loaded it from
#if TORCH_VERSION_MAJOR < 2
  // Debian's LibTorch calls the alternatives' libblas.so.3.
  EXPECT_NE(text.find("libblas.so.3"), std::string::npos) << text;
#endif
  // OpenBLAS is named only for the library that is or loads it. The alternatives for
  // libblas.so.3 and liblapack.so.3 are chosen apart, so an OpenBLAS that came with LAPACK may
  // sit beside the reference BLAS, as one that OpenCV loads sits beside the wheel's LibTorch
  // (libtorch_cpu.so). Debian's OpenBLAS builds live in openblas-* folders.
  const bool openblas_file = text.find("/openblas") != std::string::npos;
  EXPECT_EQ(text.find(" (OpenBLAS ") != std::string::npos, openblas_file) << text;
  if (openblas_file) EXPECT_NE(text.find(" build)"), std::string::npos) << text;
}

}  // namespace
}  // namespace exprun
