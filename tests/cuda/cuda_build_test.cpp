// What a build says about CUDA, checked on every machine, with or without a GPU: a CUDA
// LibTorch's hooks answer without a device and `exprun version` names the CUDA runtime; and a
// stage asking for device = "cuda" where none is visible stops `exprun plan` with the runner's
// one-line error (stage_builder.cpp, resolve_device) instead of a crash, with a CPU LibTorch
// as with a CUDA one. The child processes are started with CUDA_VISIBLE_DEVICES="" so that they
// see no device on a GPU machine either.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "cuda_test_support.hpp"
#include "test_support.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using test::ProcessOptions;
using test::ProcessResult;

// The child sees no CUDA device, whatever this machine has.
ProcessOptions without_devices() {
  ProcessOptions options;
  options.env["CUDA_VISIBLE_DEVICES"] = "";
  return options;
}

// The "cuda:" line of `exprun version`.
std::string cuda_line(const ProcessResult& r) {
  for (const auto& line : test::split_lines(r.out))
    if (line.rfind("cuda:", 0) == 0) return line;
  ADD_FAILURE() << "no cuda line\n" << r.describe();
  return "";
}

TEST(CudaBuild, VersionNamesTheCudaRuntimeWithoutADevice) {
  const ProcessResult r = test::run_exprun({"version"}, without_devices());
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  test::expect_no_crash(r);
  const std::string line = cuda_line(r);
#if EXPRUN_WITH_CUDA
  EXPECT_NE(test::split_lines(r.out).at(0).find("CUDA code compiled"), std::string::npos) << r.out;
  // The runtime version LibTorch was built with, e.g. "13.0", read in this process through the
  // same hooks, and no device.
  const long v = at::detail::getCUDAHooks().versionCUDART();
  const std::string version = std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
  EXPECT_EQ(line, "cuda:                   " + version + " (0 devices visible)") << r.out;
  EXPECT_TRUE(std::regex_match(line, std::regex(R"(cuda: +[0-9]+\.[0-9]+ \(0 devices visible\))")))
      << line;
#else
  EXPECT_NE(test::split_lines(r.out).at(0).find("CUDA code not compiled"), std::string::npos)
      << r.out;
  EXPECT_EQ(line, "cuda:                   not compiled");
#endif
}

TEST(CudaBuild, VersionCountsTheDevicesThisProcessSees) {
  // Without the override the child sees what this process sees.
  const ProcessResult r = test::run_exprun({"version"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
#if EXPRUN_WITH_CUDA
  const auto n = torch::cuda::device_count();
  EXPECT_NE(
      cuda_line(r).find("(" + std::to_string(n) + (n == 1 ? " device" : " devices") + " visible)"),
      std::string::npos)
      << r.out;
#else
  EXPECT_EQ(cuda_line(r), "cuda:                   not compiled");
#endif
}

#if EXPRUN_WITH_CUDA
// libtorch_cuda registers its hooks when it is loaded, device or not: they answer here (a CPU
// LibTorch's default hooks would throw), and LibTorch reports no device where none is visible.
TEST(CudaBuild, CudaHooksAnswerWithOrWithoutADevice) {
  const auto& hooks = at::detail::getCUDAHooks();
  EXPECT_GT(hooks.versionCUDART(), 0);
  EXPECT_EQ(hooks.hasCUDA(), torch::cuda::is_available());
  if (torch::cuda::device_count() == 0) {
    EXPECT_FALSE(torch::cuda::is_available());
    EXPECT_FALSE(torch::cuda::cudnn_is_available());
  }
}
#endif

class CudaBuildPlan : public ::testing::Test {
 protected:
  // The tiny experiment with its stage on `device`; the text as written.
  std::string write(const std::string& device) {
    test::TinyExperiment e;
    e.output = dir_ / "results";
    e.stage_extra = "device = " + test::toml_quote(device);
    const std::string text = e.toml();
    test::write_text(file_, text);
    return text;
  }

  test::TempDir dir_{"exprun-cuda-build"};
  fs::path file_ = dir_ / "tiny.toml";
};

TEST_F(CudaBuildPlan, CudaWithoutADeviceIsTheRunnersClearError) {
  for (const std::string device : {"cuda", "cuda:0"}) {
    SCOPED_TRACE(device);
    const std::string text = write(device);
    const ProcessResult r = test::run_exprun({"plan", file_.string()}, without_devices());
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    test::expect_no_crash(r);
    // One line: where the stage is, the key, and resolve_device's message.
    const auto lines = test::split_lines(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.describe();
    const std::string& message = lines[0];
    EXPECT_EQ(message.rfind("exprun: error: " + file_.string() + ":" +
                                std::to_string(test::line_of(text, "[[stage]]")) + ":",
                            0),
              0u)
        << message;
    EXPECT_CONTAINS(message, "stages.train.device: device \"" + device +
                                 "\" was asked for, but this LibTorch sees no CUDA device "
                                 "(use device = \"auto\" or \"cpu\")");
    EXPECT_FALSE(fs::exists(dir_ / "results")) << "plan writes nothing";
  }
}

// Nothing about CUDA breaks the ordinary case: "auto" falls back to the CPU.
TEST_F(CudaBuildPlan, AutoFallsBackToTheCpuWithoutADevice) {
  write("auto");
  const ProcessResult r = test::run_exprun({"plan", file_.string()}, without_devices());
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_CONTAINS(r.out, "device      cpu (asked: auto)");
  EXPECT_CONTAINS(r.out, "plan OK: 1 stage(s)");
}

}  // namespace
}  // namespace exprun
