// `exprun predict --device cuda` finds the same landmarks as `--device cpu`: a small model is
// trained on the CPU with the built exprun, then the same films are predicted on both devices
// and every coordinate compared, within 1e-3 pixels.
//
// The comparison means something only where the heatmaps are well-conditioned. A barely
// trained model's heatmaps are flat (the suite's usual two-epoch tiny run peaks at 0.006), and
// on a flat map the sub-pixel refinement turns a difference in the last bits into tenths of a
// pixel or an arg-max jump: measured on the CPU, running that model in float64 instead of
// float32 (a relative change of 4e-7 in the heatmaps) moves its predictions by up to 0.09 px.
// So the model here is fitted hard to four films without augmentation (adaptive wing, 150
// epochs), which gives peaks of about 0.38; there the same float64/float32 change moves the
// predictions by at most 5e-4 px on the 480 x 600 films, 7.5 times less (about 7e-5 px) on
// films at the model's input size. The films are therefore predicted at the input size,
// 64 x 80 (resized as the pipeline resizes), where 1e-3 px leaves room for the rounding
// differences between two correct fp32 implementations (cuDNN's algorithms against the CPU's),
// while a lower-precision path is caught: the same model with its convolution weights and
// input rounded to TF32 (10-bit mantissa) moves by 8e-3 to 2.4e-2 px at this size. Note that
// LibTorch allows TF32 in cuDNN convolutions by default; the failure message says how far the
// devices' heatmaps are apart and whether TF32 is allowed (in this process; exprun's own
// setting is what the predictions used).
#include <gtest/gtest.h>

#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cuda_test_support.hpp"
#include "plugins/registry.hpp"
#include "predict/checkpoint_model.hpp"
#include "predict/image_file.hpp"
#include "test_support.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::ProcessResult;

constexpr double kTolerancePx = 1e-3;
constexpr int kInputWidth = 64, kInputHeight = 80;
constexpr std::uint64_t kExperimentSeed = 3;
constexpr std::int64_t kTrainCount = 4;

// HRNet of width 4 fitted to 4 synthetic films, the whole split in each step, no augmentation.
std::string fitted_experiment(const fs::path& output) {
  return "[experiment]\n"
         "name = \"fitted\"\n"
         "seed = " +
         std::to_string(kExperimentSeed) +
         "\n"
         "threads = 4\n"
         "output = " +
         test::toml_quote(output.string()) +
         "\n"
         "\n"
         "[defaults]\n"
         "device = \"cpu\"\n"
         "\n"
         "[defaults.data]\n"
         "plugin = \"synthetic_ceph\"\n"
         "image_size = [" +
         std::to_string(kInputWidth) + ", " + std::to_string(kInputHeight) +
         "]\n"
         "sigma = 1.5\n"
         "workers = 0\n"
         "train_count = " +
         std::to_string(kTrainCount) +
         "\n"
         "valid_count = 1\n"
         "\n"
         "[defaults.data.augment]\n"
         "enabled = false\n"
         "\n"
         "[defaults.model]\n"
         "plugin = \"hrnet\"\n"
         "width = 4\n"
         "num_modules = [1, 1, 1]\n"
         "num_blocks = 1\n"
         "stem_blocks = 1\n"
         "\n"
         "[defaults.loss]\n"
         "plugin = \"adaptive_wing\"\n"
         "\n"
         "[defaults.memory]\n"
         "effective_batch = " +
         std::to_string(kTrainCount) + "\nmicro_batch = " + std::to_string(kTrainCount) +
         "\n"
         "\n"
         "[defaults.optimizer]\n"
         "name = \"adam\"\n"
         "lr = 5e-3\n"
         "\n"
         "[defaults.schedule]\n"
         "decay = \"constant\"\n"
         "\n"
         "[[stage]]\n"
         "name = \"train\"\n"
         "epochs = 150\n";
}

// Diagnostics for a failure: how far the two devices' heatmaps for one film are apart, relative
// to the largest heatmap value, computed in this process the way predict computes them.
std::string heatmap_difference(const fs::path& checkpoint, const fs::path& image_file) {
  try {
    const Registry& registry = test::built_plugins();
    const CheckpointModel cpu = load_checkpoint_model(checkpoint, registry, torch::kCPU);
    const CheckpointModel cuda = load_checkpoint_model(checkpoint, registry, torch::kCUDA);
    sdk::Sample sample;
    sample.image = read_image_file(image_file);
    const auto k = cpu.pipeline->spec().num_landmarks;
    sample.landmarks =
        torch::full({k, 2}, std::numeric_limits<double>::quiet_NaN(), torch::kFloat64);
    sample.mm_per_pixel = 1.0;
    sample.id = "diagnostic";
    const auto prepared = cpu.pipeline->prepare(sample, false, 0);
    torch::NoGradGuard no_grad;
    const auto on_cpu = cpu.model->forward(prepared.image.unsqueeze(0)).to(torch::kFloat32);
    const auto on_cuda =
        cuda.model->forward(prepared.image.unsqueeze(0).to(torch::kCUDA)).to(torch::kFloat32).cpu();
    const double scale = on_cpu.abs().max().item<double>();
    const double diff = (on_cpu - on_cuda).abs().max().item<double>();
    return "heatmaps of " + image_file.filename().string() + ": largest |value| " +
           std::to_string(scale) + ", largest cpu/cuda difference " + std::to_string(diff) +
           " (relative " + std::to_string(diff / std::max(scale, 1e-30)) +
           "); TF32 in cuDNN convolutions " +
           (at::globalContext().allowTF32CuDNN() ? "allowed" : "off") + " in this process";
  } catch (const std::exception& e) {
    return std::string("(no heatmap diagnostics: ") + e.what() + ")";
  }
}

TEST(PredictCuda, CudaPredictionsEqualCpuPredictionsWithinAThousandthOfAPixel) {
  EXPRUN_SKIP_WITHOUT_CUDA();
  test::TempDir dir("exprun-cuda-predict");

  const fs::path file = dir / "fitted.toml";
  test::write_text(file, fitted_experiment(dir / "results"));
  test::ProcessOptions slow;
  slow.timeout_s = 300;
  const ProcessResult trained = test::run_exprun({"run", file.string()}, slow);
  ASSERT_EQ(trained.exit_code, 0) << trained.describe();
  fs::path checkpoint;
  for (const auto& entry : fs::directory_iterator(dir / "results" / "fitted"))
    if (entry.is_directory()) checkpoint = entry.path() / "train" / "checkpoints" / "latest.pt";
  ASSERT_TRUE(fs::exists(checkpoint)) << trained.describe();

  // The training films, as the dataset hands them to the run, brought to the input size the
  // way the pipeline resizes (area averaging), as 8-bit PNG files.
  const Registry& registry = test::built_plugins();
  const auto params =
      sdk::Params::resolve(registry.schema(sdk::PluginKind::Dataset, "synthetic_ceph"),
                           {{"train_count", kTrainCount}, {"valid_count", std::int64_t{1}}});
  const auto train =
      registry.make<sdk::Dataset>("synthetic_ceph", params, {"train", kExperimentSeed});
  std::vector<fs::path> images;
  for (std::size_t i = 0; i < train->size(); ++i) {
    const sdk::Sample s = train->get(i);
    ASSERT_EQ(s.image.dim(), 2) << "expected a grey film";
    const auto pixels = s.image.contiguous();
    const cv::Mat grey(static_cast<int>(pixels.size(0)), static_cast<int>(pixels.size(1)), CV_8U,
                       pixels.data_ptr<std::uint8_t>());
    cv::Mat small;
    cv::resize(grey, small, cv::Size(kInputWidth, kInputHeight), 0, 0, cv::INTER_AREA);
    images.push_back(dir / "films" / (s.id + ".png"));
    fs::create_directories(images.back().parent_path());
    ASSERT_TRUE(cv::imwrite(images.back().string(), small));
  }

  auto predict = [&](const std::string& device) {
    std::vector<std::string> args = {"predict", "--checkpoint",          checkpoint.string(),
                                     "--out",   (dir / device).string(), "--device",
                                     device};
    for (const auto& image : images) args.push_back(image.string());
    return test::run_exprun(args);
  };
  const ProcessResult on_cpu = predict("cpu");
  ASSERT_EQ(on_cpu.exit_code, 0) << on_cpu.describe();
  const ProcessResult on_cuda = predict("cuda");
  ASSERT_EQ(on_cuda.exit_code, 0) << on_cuda.describe();
  test::expect_no_crash(on_cuda);
  // The header line names the device each ran on.
  EXPECT_CONTAINS(test::split_lines(on_cpu.out).at(0), ", cpu");
  EXPECT_CONTAINS(test::split_lines(on_cuda.out).at(0), ", cuda");

  double worst = 0;
  std::string worst_at;
  fs::path worst_image = images.front();
  for (const auto& image : images) {
    const std::string name = image.stem().string() + ".json";
    const json a = json::parse(test::read_text(dir / "cpu" / name));
    const json b = json::parse(test::read_text(dir / "cuda" / name));
    ASSERT_EQ(a["landmarks"].size(), 29u);
    ASSERT_EQ(b["landmarks"].size(), a["landmarks"].size());
    for (std::size_t j = 0; j < a["landmarks"].size(); ++j) {
      const json& p = a["landmarks"][j];
      const json& q = b["landmarks"][j];
      ASSERT_EQ(p["symbol"], q["symbol"]);
      for (const char* axis : {"x", "y"}) {
        const double u = p["value"][axis].get<double>(), v = q["value"][axis].get<double>();
        ASSERT_TRUE(std::isfinite(u) && std::isfinite(v)) << name << " " << p["symbol"];
        const double d = std::abs(u - v);
        if (d > worst) {
          worst = d;
          worst_at = name + " " + p["symbol"].get<std::string>() + "." + axis + ": cpu " +
                     std::to_string(u) + ", cuda " + std::to_string(v);
          worst_image = image;
        }
      }
    }
  }
  std::cout << "largest cpu/cuda difference: " << worst << " px"
            << (worst_at.empty() ? "" : " (" + worst_at + ")") << "\n"
            << heatmap_difference(checkpoint, worst_image) << "\n";
  EXPECT_LE(worst, kTolerancePx) << worst_at;
}

}  // namespace
}  // namespace exprun
