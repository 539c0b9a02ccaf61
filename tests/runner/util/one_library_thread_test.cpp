// OneLibraryThread: LibTorch's ops on the calling thread alone inside the scope, the previous
// count back after it, other threads untouched.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <thread>

#include "util/one_library_thread.hpp"

namespace exprun {
namespace {

// Debian's and the wheel's LibTorch both use OpenMP; another build may not, and then the
// scope changes nothing (and says so by leaving the count alone).
bool library_uses_openmp() { return at::get_parallel_info().find("OpenMP") != std::string::npos; }

class OneLibraryThreadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_ = at::get_num_threads();
    at::set_num_threads(2);
  }
  void TearDown() override { at::set_num_threads(previous_); }

 private:
  int previous_ = 1;
};

TEST_F(OneLibraryThreadTest, OneThreadInsideAndTheCountBackAfter) {
  ASSERT_EQ(at::get_num_threads(), 2);
  {
    const OneLibraryThread one;
    EXPECT_EQ(at::get_num_threads(), library_uses_openmp() ? 1 : 2);
    {
      const OneLibraryThread nested;  // already one: nothing to change or to restore
      EXPECT_EQ(at::get_num_threads(), library_uses_openmp() ? 1 : 2);
    }
    EXPECT_EQ(at::get_num_threads(), library_uses_openmp() ? 1 : 2);
  }
  EXPECT_EQ(at::get_num_threads(), 2);
}

TEST_F(OneLibraryThreadTest, OtherThreadsKeepTheirCount) {
  const OneLibraryThread one;
  int seen_elsewhere = 0;
  std::thread other([&] { seen_elsewhere = at::get_num_threads(); });
  other.join();
  EXPECT_EQ(seen_elsewhere, 2);
}

TEST_F(OneLibraryThreadTest, ResultsAreTheSameToTheBit) {
  const auto a = torch::rand({3, 300, 300}, torch::TensorOptions().dtype(torch::kFloat32));
  const auto expected = torch::stack({a * 0.5f + 0.25f, a.clamp(0.1, 0.9)});
  torch::Tensor inside;
  {
    const OneLibraryThread one;
    inside = torch::stack({a * 0.5f + 0.25f, a.clamp(0.1, 0.9)});
  }
  EXPECT_TRUE(torch::equal(inside, expected));
}

}  // namespace
}  // namespace exprun
