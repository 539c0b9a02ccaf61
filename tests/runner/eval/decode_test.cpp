// Heatmap decoding: DARK (distribution-aware, Zhang et al. 2020) against the arg-max with
// per-axis parabola, on exact, noisy and widened Gaussians and at the edges; and the whole way
// back from a heatmap to original-image millimetres, through the pipeline's own code.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "config/config_error.hpp"
#include "config/experiment_loader.hpp"
#include "data/heatmap.hpp"
#include "data/sample_pipeline.hpp"
#include "eval/radial_error.hpp"
#include "plugins/registry.hpp"
#include "test_support.hpp"

namespace exprun {
namespace {

torch::Tensor one_point(double x, double y) {
  return torch::tensor({x, y}, torch::kFloat64).view({1, 2});
}

double distance(const torch::Tensor& decoded, double x, double y) {
  const double dx = decoded[0][0][0].item<double>() - x;
  const double dy = decoded[0][0][1].item<double>() - y;
  return std::sqrt(dx * dx + dy * dy);
}

TEST(DecodeMethod, ParsesAndPrints) {
  EXPECT_EQ(parse_decode_method("argmax"), DecodeMethod::Argmax);
  EXPECT_EQ(parse_decode_method("dark"), DecodeMethod::Dark);
  EXPECT_EQ(to_string(DecodeMethod::Dark), "dark");
  EXPECT_EQ(to_string(DecodeMethod::Argmax), "argmax");
  EXPECT_THROW(parse_decode_method("soft"), std::invalid_argument);
}

TEST(DecodeMethod, ArgmaxChoiceIsThePlainDecode) {
  const auto maps = encode_heatmaps(one_point(7.3, 9.8), 24, 20, 2.0).unsqueeze(0);
  EXPECT_TRUE(
      torch::equal(decode_heatmaps(maps, DecodeMethod::Argmax, 2.0), decode_heatmaps(maps)));
  EXPECT_TRUE(torch::equal(decode_heatmaps(maps, DecodeMethod::Dark, 2.0),
                           decode_heatmaps_dark(maps, 2.0)));
}

// Exact Gaussians at sub-cell centres: the log of a Gaussian smoothed by a Gaussian is still a
// paraboloid, so the Newton step lands on the centre. Measured: worst error 2.0e-4 cells over
// this grid (the kernel's truncation at 3 sigma); the bound is 1e-3.
TEST(Dark, ExactGaussiansDecodeToTheirCentres) {
  double worst = 0;
  for (double sigma : {1.0, 1.5, 2.0, 3.0}) {
    for (double fx : {0.0, 0.1, 0.25, 0.4, 0.5, 0.77}) {
      for (double fy : {0.0, 0.2, 0.5, 0.63, 0.9}) {
        const double x = 30 + fx, y = 22 + fy;
        const auto maps = encode_heatmaps(one_point(x, y), 48, 64, sigma).unsqueeze(0);
        const auto decoded = decode_heatmaps_dark(maps, sigma);
        ASSERT_EQ(decoded.sizes(), (std::vector<std::int64_t>{1, 1, 2}));
        ASSERT_EQ(decoded.scalar_type(), torch::kFloat64);
        worst = std::max(worst, distance(decoded, x, y));
      }
    }
  }
  EXPECT_LT(worst, 1e-3);
  RecordProperty("worst_error_cells", std::to_string(worst));
}

// What DARK is for: maps that are not the clean Gaussian the network was trained on. Over 300
// random centres each (fixed seed), with sigma 2:
//  - noise: the target plus N(0, 0.05) per cell;
//  - widened: a Gaussian of sigma 3 (the network is unsure) plus N(0, 0.03).
// Measured mean errors (cells): noise dark 0.052 vs argmax 0.247; widened dark 0.036 vs argmax
// 0.306. The test asks DARK to be at least as good and below 0.08 cells on average.
struct NoisyCase {
  const char* name;
  double render_sigma;
  double noise;
};

class DarkOnNoisyMaps : public ::testing::TestWithParam<NoisyCase> {};

TEST_P(DarkOnNoisyMaps, IsAtLeastAsGoodAsTheParabola) {
  const auto c = GetParam();
  std::mt19937_64 rng(20200614);
  std::uniform_real_distribution<double> position(8.0, 40.0);
  double dark_sum = 0, argmax_sum = 0;
  const int trials = 300;
  for (int t = 0; t < trials; ++t) {
    const double x = position(rng), y = position(rng);
    auto maps = encode_heatmaps(one_point(x, y), 48, 48, c.render_sigma).unsqueeze(0);
    torch::manual_seed(static_cast<std::uint64_t>(t));
    maps = maps + c.noise * torch::randn_like(maps);
    const auto dark = decode_heatmaps_dark(maps, 2.0);
    const auto argmax = decode_heatmaps(maps);
    ASSERT_TRUE(torch::isfinite(dark).all().item<bool>());
    dark_sum += distance(dark, x, y);
    argmax_sum += distance(argmax, x, y);
  }
  const double dark_mean = dark_sum / trials, argmax_mean = argmax_sum / trials;
  RecordProperty("dark_mean_error_cells", std::to_string(dark_mean));
  RecordProperty("argmax_mean_error_cells", std::to_string(argmax_mean));
  std::printf("%s: mean error dark %.4f, argmax %.4f cells\n", c.name, dark_mean, argmax_mean);
  EXPECT_LE(dark_mean, argmax_mean);
  EXPECT_LT(dark_mean, 0.08);
}

INSTANTIATE_TEST_SUITE_P(Maps, DarkOnNoisyMaps,
                         ::testing::Values(NoisyCase{"noise", 2.0, 0.05},
                                           NoisyCase{"widened", 3.0, 0.03}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Dark, DecodesABatchAndScaledOrHalfPrecisionOutputs) {
  const auto a = encode_heatmaps(
      torch::tensor({5.2, 7.7, 20.5, 12.25}, torch::kFloat64).view({2, 2}), 32, 32, 2.0);
  const auto b = encode_heatmaps(
      torch::tensor({25.9, 24.1, 16.3, 8.0}, torch::kFloat64).view({2, 2}), 32, 32, 2.0);
  const auto decoded = decode_heatmaps_dark(torch::stack({a, b}) * 0.37, 2.0);
  ASSERT_EQ(decoded.sizes(), (std::vector<std::int64_t>{2, 2, 2}));
  const double expected[2][2][2] = {{{5.2, 7.7}, {20.5, 12.25}}, {{25.9, 24.1}, {16.3, 8.0}}};
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      for (int d = 0; d < 2; ++d)
        EXPECT_NEAR(decoded[i][j][d].item<double>(), expected[i][j][d], 1e-3);
  const auto half = decode_heatmaps_dark(a.unsqueeze(0).to(torch::kFloat16), 2.0);
  EXPECT_NEAR(half[0][0][0].item<double>(), 5.2, 0.05);
  EXPECT_NEAR(half[0][0][1].item<double>(), 7.7, 0.05);
}

// Peaks on and next to the border: where the smoothing kernel would reach past the border the
// Newton step is taken on the raw map (zero padding would pull it inwards by up to 1.5 cells),
// and on the border cell itself the parabola takes over; both are exact for a Gaussian.
// Measured worst error below 1e-6 cells.
TEST(Dark, BorderPeaksStayFiniteAndClose) {
  const std::vector<std::pair<double, double>> centres = {
      {0, 0}, {0.3, 23}, {47, 0.45}, {47, 31}, {1.2, 1.4}, {46.4, 30.4}, {0.6, 15.2}, {23, 30.9}};
  double worst = 0;
  for (const auto& [x, y] : centres) {
    const auto maps = encode_heatmaps(one_point(x, y), 32, 48, 2.0).unsqueeze(0);
    const auto decoded = decode_heatmaps_dark(maps, 2.0);
    ASSERT_TRUE(torch::isfinite(decoded).all().item<bool>()) << x << ", " << y;
    EXPECT_GE(decoded.min().item<double>(), -0.5);
    EXPECT_LE(decoded[0][0][0].item<double>(), 47.5);
    EXPECT_LE(decoded[0][0][1].item<double>(), 31.5);
    worst = std::max(worst, distance(decoded, x, y));
  }
  EXPECT_LT(worst, 1e-3);
  RecordProperty("worst_border_error_cells", std::to_string(worst));
}

TEST(Dark, FlatNegativeAndTinyMapsDoNotProduceNaN) {
  for (const auto& maps :
       {torch::zeros({1, 2, 16, 16}), torch::full({1, 1, 16, 16}, 0.5),
        torch::full({1, 1, 9, 9}, -1.0), torch::zeros({1, 1, 2, 2}), torch::rand({2, 3, 1, 5})}) {
    const auto decoded = decode_heatmaps_dark(maps, 2.0);
    ASSERT_TRUE(torch::isfinite(decoded).all().item<bool>()) << maps.sizes();
    EXPECT_GE(decoded.min().item<double>(), -0.5);
    EXPECT_LE(decoded.select(2, 0).max().item<double>(), maps.size(3) - 0.5);
    EXPECT_LE(decoded.select(2, 1).max().item<double>(), maps.size(2) - 0.5);
  }
  // A flat map has no peak: what the plain decode says (the first cell, moved half a cell by
  // its border rule), not NaN.
  const auto zeros = torch::zeros({1, 1, 16, 16});
  EXPECT_TRUE(torch::equal(decode_heatmaps_dark(zeros, 2.0), decode_heatmaps(zeros)));
  EXPECT_THROW(decode_heatmaps_dark(torch::zeros({4, 4}), 2.0), c10::Error);
}

// ---------------------------------------------------------------- back to original pixels

// The check: a landmark on a 1935 x 2400 ISBI-sized film at 0.1 mm/px, resized to a
// 768 x 768 input (heatmaps 192 x 192 at stride 4). The target heatmap is rendered by the
// pipeline itself (SamplePipeline::prepare, as for validation), decoded, and mapped back with
// heatmap_to_original and radial_errors_mm, the functions the evaluator uses. One heatmap cell
// is about 1 mm here, so this checks the resize and stride maps, not the decode's precision.
// Measured: worst of the five below 1e-3 mm with either decode; the bound is 0.2 mm.
TEST(BackMapping, ExactHeatmapOfAResizedIsbiFilmScoresUnderTwoTenthsOfAMillimetre) {
  const std::vector<std::array<double, 2>> truth = {
      {1000.3, 1234.7}, {967.0, 1199.5}, {250.8, 310.2}, {1800.25, 2250.6}, {12.0, 2390.0}};
  PipelineSpec spec;
  spec.input_width = 768;
  spec.input_height = 768;
  spec.stride = 4;
  spec.sigma = 2.0;
  spec.num_landmarks = static_cast<std::int64_t>(truth.size());
  const SamplePipeline pipeline(spec);
  sdk::Sample sample;
  sample.image = torch::zeros({2400, 1935}, torch::kUInt8);
  sample.landmarks = torch::empty({spec.num_landmarks, 2}, torch::kFloat64);
  for (std::size_t j = 0; j < truth.size(); ++j) {
    sample.landmarks[static_cast<std::int64_t>(j)][0] = truth[j][0];
    sample.landmarks[static_cast<std::int64_t>(j)][1] = truth[j][1];
  }
  sample.mm_per_pixel = 0.1;
  sample.id = "isbi-sized";
  const PreparedSample prepared = pipeline.prepare(sample, false, 0);
  ASSERT_EQ(prepared.heatmaps.sizes(), (std::vector<std::int64_t>{spec.num_landmarks, 192, 192}));
  EXPECT_EQ(prepared.meta.original_width, 1935);
  EXPECT_EQ(prepared.meta.original_height, 2400);

  for (auto method : {DecodeMethod::Argmax, DecodeMethod::Dark}) {
    SCOPED_TRACE(to_string(method));
    const auto cells = decode_heatmaps(prepared.heatmaps.unsqueeze(0), method, spec.sigma);
    const auto original = heatmap_to_original(cells, {prepared.meta}, 4.0);
    const auto errors = radial_errors_mm(original, {prepared.meta});
    ASSERT_EQ(errors.size(), 1u);
    double worst = 0;
    for (std::size_t j = 0; j < truth.size(); ++j) {
      EXPECT_LT(errors[0][j], 0.2) << "landmark " << j;
      worst = std::max(worst, errors[0][j]);
    }
    // The first landmark is the "known landmark" well inside the film.
    EXPECT_LT(errors[0][0], 0.05);
    std::printf("%s: worst back-mapped error %.2e mm\n", to_string(method).c_str(), worst);
  }
}

// The same map read the other way: a point in original pixels goes to the cell the pipeline
// rendered it at, and back to itself.
TEST(BackMapping, CellCentresMapBackExactly) {
  PipelineSpec spec;
  spec.input_width = 768;
  spec.input_height = 768;
  spec.num_landmarks = 1;
  const SamplePipeline pipeline(spec);
  sdk::Sample sample;
  sample.image = torch::zeros({2400, 1935}, torch::kUInt8);
  sample.landmarks = one_point(1000.3, 1234.7);
  sample.mm_per_pixel = 0.1;
  const auto prepared = pipeline.prepare(sample, false, 0);
  const double sx = 768.0 / 1935.0, sy = 768.0 / 2400.0;
  const double u = ((1000.3 + 0.5) * sx - 0.5 + 0.5) / 4 - 0.5;
  const double v = ((1234.7 + 0.5) * sy - 0.5 + 0.5) / 4 - 0.5;
  const auto back = heatmap_to_original(torch::tensor({u, v}, torch::kFloat64).view({1, 1, 2}),
                                        {prepared.meta}, 4.0);
  EXPECT_NEAR(back[0][0][0].item<double>(), 1000.3, 1e-9);
  EXPECT_NEAR(back[0][0][1].item<double>(), 1234.7, 1e-9);
}

// ---------------------------------------------------------------- eval.decode in the file

Experiment tiny_with(const std::string& stage_extra, const std::vector<std::string>& sets = {}) {
  test::TinyExperiment e;
  e.stage_extra = stage_extra;
  return parse_experiment(e.toml(), "tiny.toml", sets, test::built_plugins());
}

std::string config_error(const std::string& stage_extra) {
  try {
    tiny_with(stage_extra);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(DecodeKey, DefaultsToArgmaxAndIsResolvedInTheConfig) {
  const Experiment e = tiny_with("");
  EXPECT_EQ(e.stages[0].eval.decode, "argmax");
  EXPECT_EQ(to_json(e.stages[0])["eval"], (nlohmann::json{{"decode", "argmax"}}));
}

TEST(DecodeKey, ChosenInTheStageOrWithSet) {
  EXPECT_EQ(tiny_with("eval = { decode = \"dark\" }").stages[0].eval.decode, "dark");
  EXPECT_EQ(tiny_with("", {"eval.decode=dark"}).stages[0].eval.decode, "dark");
  EXPECT_EQ(tiny_with("", {"stages.train.eval.decode=\"dark\""}).stages[0].eval.decode, "dark");
  EXPECT_EQ(tiny_with("eval = { decode = \"dark\" }", {"eval.decode=argmax"}).stages[0].eval.decode,
            "argmax");
}

TEST(DecodeKey, BadValuesNameFileLineAndKey) {
  const std::string extra = "eval = { decode = \"darkk\" }";
  const std::string line = std::to_string(test::line_of(tiny_with("").source_text, "epochs =") + 1);
  const std::string error = config_error(extra);
  EXPECT_CONTAINS(error, "tiny.toml:" + line + ":");
  EXPECT_CONTAINS(error, "stages.train.eval.decode");
  EXPECT_CONTAINS(error, "expected one of \"argmax\", \"dark\", found \"darkk\"");
  EXPECT_CONTAINS(error, "did you mean");
  EXPECT_CONTAINS(config_error("eval = { decoder = \"dark\" }"), "decoder");
  EXPECT_CONTAINS(config_error("eval = { decode = 1 }"), "stages.train.eval.decode");
  EXPECT_CONTAINS(config_error("eval = \"dark\""), "stages.train.eval");
}

}  // namespace
}  // namespace exprun
