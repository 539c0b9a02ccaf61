// MRE, SD and SDR as cephalometric papers report them, and radial errors in millimetres
// measured in each image's original pixels.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <exprun/sdk/torch_compat.hpp>

#include "data/affine.hpp"
#include "eval/evaluator.hpp"
#include "eval/metrics.hpp"
#include "eval/radial_error.hpp"
#include "fake_dataset.hpp"
#include "fake_pipeline_spec.hpp"

namespace exprun {
namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

void expect_sdr(const ErrorSummary& s, std::vector<double> expected) {
  ASSERT_EQ(s.sdr.size(), expected.size());
  for (std::size_t t = 0; t < expected.size(); ++t)
    EXPECT_NEAR(s.sdr[t], expected[t], 1e-9) << "threshold " << kSdrThresholdsMm[t];
}

TEST(Metrics, ThresholdsAreThePublishedOnes) {
  EXPECT_EQ(kSdrThresholdsMm, (std::vector<double>{2.0, 2.5, 3.0, 4.0}));
}

TEST(Metrics, SummaryByHand) {
  // Mean 2.5; deviations -1.5 -0.5 0.5 0 1.5; squares sum to 5; population variance 1.
  const ErrorSummary s = summarise({1.0, 2.0, 3.0, 2.5, 4.0});
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.mre, 2.5);
  EXPECT_DOUBLE_EQ(s.sd, 1.0);
  // Errors exactly on 2, 2.5 and 4 mm count as successes.
  expect_sdr(s, {40, 60, 80, 100});
}

TEST(Metrics, ErrorOnEveryThresholdCountsAsSuccess) {
  const ErrorSummary s = summarise({2.0, 2.5, 3.0, 4.0});
  expect_sdr(s, {25, 50, 75, 100});
  const ErrorSummary above = summarise({std::nextafter(2.0, 3.0), std::nextafter(4.0, 5.0)});
  expect_sdr(above, {0, 50, 50, 50});
}

TEST(Metrics, PopulationNotSampleStandardDeviation) {
  const ErrorSummary s = summarise({1.0, 3.0});
  EXPECT_DOUBLE_EQ(s.mre, 2.0);
  EXPECT_DOUBLE_EQ(s.sd, 1.0);  // the sample SD would be sqrt(2)
  EXPECT_DOUBLE_EQ(summarise({7.0}).sd, 0.0);
}

TEST(Metrics, MissingLandmarksAreExcluded) {
  const ErrorSummary s = summarise({kNaN, 1.0, kNaN, 5.0});
  EXPECT_EQ(s.count, 2u);
  EXPECT_DOUBLE_EQ(s.mre, 3.0);
  EXPECT_DOUBLE_EQ(s.sd, 2.0);
  expect_sdr(s, {50, 50, 50, 50});
}

TEST(Metrics, EmptySummaryIsNaNAndNullInJson) {
  const ErrorSummary s = summarise({kNaN, kNaN});
  EXPECT_EQ(s.count, 0u);
  EXPECT_TRUE(std::isnan(s.mre));
  EXPECT_TRUE(std::isnan(s.sd));
  const auto json = to_json(s);
  EXPECT_TRUE(json["mre"].is_null());
  EXPECT_TRUE(json["sd"].is_null());
  EXPECT_TRUE(json["sdr"]["2.0"].is_null());
  EXPECT_EQ(json["count"], 0);
  EXPECT_TRUE(std::isnan(summarise({}).mre));
}

// Two images (groups A and B), three landmarks; image B misses landmark 2.
//   A: 1.0  2.0  3.0
//   B: 2.5  4.0  NaN
Metrics example() { return compute_metrics({{1.0, 2.0, 3.0}, {2.5, 4.0, kNaN}}, {"A", "B"}); }

TEST(Metrics, Overall) {
  const Metrics m = example();
  EXPECT_EQ(m.overall.count, 5u);
  EXPECT_DOUBLE_EQ(m.overall.mre, 2.5);
  EXPECT_DOUBLE_EQ(m.overall.sd, 1.0);
  expect_sdr(m.overall, {40, 60, 80, 100});
}

TEST(Metrics, PerLandmark) {
  const Metrics m = example();
  ASSERT_EQ(m.per_landmark.size(), 3u);
  // Landmark 0: 1.0, 2.5
  EXPECT_EQ(m.per_landmark[0].count, 2u);
  EXPECT_DOUBLE_EQ(m.per_landmark[0].mre, 1.75);
  EXPECT_DOUBLE_EQ(m.per_landmark[0].sd, 0.75);
  expect_sdr(m.per_landmark[0], {50, 100, 100, 100});
  // Landmark 1: 2.0, 4.0
  EXPECT_DOUBLE_EQ(m.per_landmark[1].mre, 3.0);
  EXPECT_DOUBLE_EQ(m.per_landmark[1].sd, 1.0);
  expect_sdr(m.per_landmark[1], {50, 50, 50, 100});
  // Landmark 2: 3.0 alone
  EXPECT_EQ(m.per_landmark[2].count, 1u);
  EXPECT_DOUBLE_EQ(m.per_landmark[2].mre, 3.0);
  EXPECT_DOUBLE_EQ(m.per_landmark[2].sd, 0.0);
  expect_sdr(m.per_landmark[2], {0, 0, 100, 100});
}

TEST(Metrics, PerGroup) {
  const Metrics m = example();
  ASSERT_EQ(m.per_group.size(), 2u);
  const ErrorSummary& a = m.per_group.at("A");
  EXPECT_EQ(a.count, 3u);
  EXPECT_DOUBLE_EQ(a.mre, 2.0);
  EXPECT_NEAR(a.sd, std::sqrt(2.0 / 3.0), 1e-12);
  expect_sdr(a, {200.0 / 3, 200.0 / 3, 100, 100});
  const ErrorSummary& b = m.per_group.at("B");
  EXPECT_EQ(b.count, 2u);
  EXPECT_DOUBLE_EQ(b.mre, 3.25);
  EXPECT_DOUBLE_EQ(b.sd, 0.75);
  expect_sdr(b, {0, 50, 50, 100});
}

TEST(Metrics, EmptyGroupNamesAreNotAGroup) {
  const Metrics m = compute_metrics({{1.0}, {2.0}, {3.0}}, {"", "X", ""});
  ASSERT_EQ(m.per_group.size(), 1u);
  EXPECT_EQ(m.per_group.at("X").count, 1u);
  EXPECT_EQ(m.overall.count, 3u);
  const Metrics none = compute_metrics({{1.0}, {2.0}}, {});
  EXPECT_TRUE(none.per_group.empty());
  EXPECT_DOUBLE_EQ(none.overall.mre, 1.5);
}

TEST(Metrics, NoImages) {
  const Metrics m = compute_metrics({}, {});
  EXPECT_EQ(m.overall.count, 0u);
  EXPECT_TRUE(m.per_landmark.empty());
}

TEST(Metrics, JsonLayout) {
  const auto json = to_json(example(), {"S", "N", "Go"});
  EXPECT_DOUBLE_EQ(json["overall"]["mre"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(json["overall"]["sd"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(json["overall"]["sdr"]["2.0"].get<double>(), 40.0);
  EXPECT_DOUBLE_EQ(json["overall"]["sdr"]["2.5"].get<double>(), 60.0);
  EXPECT_DOUBLE_EQ(json["overall"]["sdr"]["3.0"].get<double>(), 80.0);
  EXPECT_DOUBLE_EQ(json["overall"]["sdr"]["4.0"].get<double>(), 100.0);
  EXPECT_EQ(json["overall"]["count"], 5);
  EXPECT_DOUBLE_EQ(json["per_landmark"]["N"]["mre"].get<double>(), 3.0);
  EXPECT_EQ(json["per_landmark"]["Go"]["count"], 1);
  EXPECT_DOUBLE_EQ(json["per_group"]["B"]["mre"].get<double>(), 3.25);
  // Landmarks without a symbol are keyed by index.
  const auto unnamed = to_json(example(), {"S"});
  EXPECT_TRUE(unnamed["per_landmark"].contains("1"));
  EXPECT_TRUE(unnamed["per_landmark"].contains("2"));
}

// ---------------------------------------------------------------- radial errors

SampleMeta meta(double mm_per_pixel, std::vector<std::array<double, 2>> truth,
                const Affine& input_to_original = Affine{}) {
  SampleMeta m;
  m.mm_per_pixel = mm_per_pixel;
  m.landmarks = torch::empty({static_cast<std::int64_t>(truth.size()), 2}, torch::kFloat64);
  for (std::size_t i = 0; i < truth.size(); ++i) {
    m.landmarks[static_cast<std::int64_t>(i)][0] = truth[i][0];
    m.landmarks[static_cast<std::int64_t>(i)][1] = truth[i][1];
  }
  m.input_to_original = input_to_original;
  return m;
}

TEST(RadialError, UsesEachSamplesPixelSize) {
  const std::vector<SampleMeta> metas = {meta(0.1, {{100, 100}, {50, 60}}),
                                         meta(0.25, {{10, 10}, {kNaN, kNaN}})};
  // Sample 0: (12, 16) px off = 20 px = 2.0 mm, and exact. Sample 1: (3, 4) px = 5 px = 1.25 mm.
  auto pred = torch::tensor({112.0, 116.0, 50.0, 60.0, 13.0, 14.0, 1.0, 1.0}, torch::kFloat64)
                  .view({2, 2, 2});
  const auto errors = radial_errors_mm(pred, metas);
  ASSERT_EQ(errors.size(), 2u);
  ASSERT_EQ(errors[0].size(), 2u);
  EXPECT_DOUBLE_EQ(errors[0][0], 2.0);
  EXPECT_DOUBLE_EQ(errors[0][1], 0.0);
  EXPECT_DOUBLE_EQ(errors[1][0], 1.25);
  EXPECT_TRUE(std::isnan(errors[1][1]));  // missing ground truth

  const Metrics m = compute_metrics(errors, {"", ""});
  EXPECT_EQ(m.overall.count, 3u);
  EXPECT_DOUBLE_EQ(m.overall.mre, (2.0 + 0.0 + 1.25) / 3);
  expect_sdr(m.overall, {100, 100, 100, 100});  // 2.0 mm sits on the first threshold
}

// A NaN prediction used to be dropped like a missing ground truth: a model whose heatmaps held
// NaN for a hard landmark scored better than one that placed it badly.
TEST(RadialError, APredictionThatIsNotAPointIsAnInfiniteErrorNotAMissingLandmark) {
  std::vector<SampleMeta> metas = {meta(0.1, {{100, 100}, {50, 60}, {kNaN, kNaN}})};
  metas[0].id = "c7";
  auto pred = torch::tensor({kNaN, 100.0, 50.0, 70.0, kNaN, kNaN}, torch::kFloat64).view({1, 3, 2});
  const auto errors = radial_errors_mm(pred, metas);
  EXPECT_TRUE(std::isinf(errors[0][0]) && errors[0][0] > 0);
  EXPECT_DOUBLE_EQ(errors[0][1], 1.0);
  EXPECT_TRUE(std::isnan(errors[0][2]));  // no ground truth: still left out
  const Metrics m = compute_metrics(errors, {"m"});
  EXPECT_EQ(m.overall.count, 2u);
  EXPECT_TRUE(to_json(m.overall)["mre"].is_null());
  EXPECT_TRUE(to_json(m.overall)["sd"].is_null());
  expect_sdr(m.overall, {50, 50, 50, 50});
  EXPECT_EQ(m.per_landmark[0].count, 1u);
  expect_sdr(m.per_landmark[0], {0, 0, 0, 0});
  EXPECT_DOUBLE_EQ(m.per_landmark[1].mre, 1.0);

  const Evaluation evaluation = score(pred, metas);
  EXPECT_EQ(evaluation.failed_predictions, 1u);
  const std::string note = failed_predictions_note(evaluation, {"A", "B", "C"});
  EXPECT_NE(note.find("1 predicted landmark(s) are not finite points"), std::string::npos) << note;
  EXPECT_NE(note.find("first: A of c7"), std::string::npos) << note;
  EXPECT_EQ(
      failed_predictions_note(
          score(
              torch::tensor({100.0, 100.0, 50.0, 60.0, 0.0, 0.0}, torch::kFloat64).view({1, 3, 2}),
              metas),
          {"A", "B", "C"}),
      "");
}

TEST(RadialError, AcceptsFloat32Predictions) {
  const std::vector<SampleMeta> metas = {meta(0.5, {{3, 4}})};
  const auto errors = radial_errors_mm(torch::zeros({1, 1, 2}, torch::kFloat32), metas);
  EXPECT_DOUBLE_EQ(errors[0][0], 2.5);
}

TEST(RadialError, HeatmapCoordinatesMapBackToOriginalPixels) {
  // A 1935 x 2400 film resized to 768 x 768, stride-4 heatmaps.
  const Affine to_input = resize_map(1935, 2400, 768, 768);
  const std::vector<std::array<double, 2>> truth = {{835.0, 996.0}, {1212.37, 1780.91}};
  const std::vector<SampleMeta> metas = {meta(0.1, truth, to_input.inverse())};
  auto cells = torch::empty({1, 2, 2}, torch::kFloat64);
  for (int j = 0; j < 2; ++j) {
    const auto in = to_input.apply(truth[j][0], truth[j][1]);
    cells[0][j][0] = input_to_heatmap(in[0], 4);
    cells[0][j][1] = input_to_heatmap(in[1], 4);
  }
  const auto original = heatmap_to_original(cells, metas, 4);
  ASSERT_EQ(original.sizes(), (std::vector<std::int64_t>{1, 2, 2}));
  for (int j = 0; j < 2; ++j) {
    EXPECT_NEAR(original[0][j][0].item<double>(), truth[j][0], 1e-6);
    EXPECT_NEAR(original[0][j][1].item<double>(), truth[j][1], 1e-6);
  }
  // The input is not modified.
  EXPECT_NEAR(cells[0][0][0].item<double>(), input_to_heatmap(to_input.apply(835, 996)[0], 4), 0);
  const auto errors = radial_errors_mm(original, metas);
  EXPECT_NEAR(errors[0][0], 0.0, 1e-6);
  EXPECT_NEAR(errors[0][1], 0.0, 1e-6);

  // Half a heatmap cell off in x is 2 input pixels, 2 * 1935 / 768 original pixels, in mm.
  cells[0][0][0] += 0.5;
  const auto off = radial_errors_mm(heatmap_to_original(cells, metas, 4), metas);
  EXPECT_NEAR(off[0][0], 2 * 1935.0 / 768.0 * 0.1, 1e-9);
}

// ---------------------------------------------------------------- evaluation's precision

// A memory strategy whose forward scope turns CPU autocast on, as mixed_precision's does.
class AutocastScope : public sdk::ForwardScope {
 public:
  AutocastScope() : before_(sdk::compat::autocast_state(c10::DeviceType::CPU)) {
    sdk::compat::set_autocast_state(c10::DeviceType::CPU, {true, at::kBFloat16});
  }
  ~AutocastScope() override { sdk::compat::set_autocast_state(c10::DeviceType::CPU, before_); }

 private:
  sdk::compat::AutocastState before_;
};

class AutocastStrategy : public sdk::MemoryStrategy {
 public:
  std::unique_ptr<sdk::ForwardScope> enter_forward() override {
    return std::make_unique<AutocastScope>();
  }
};

class AutocastRecordingModel : public sdk::Model {
 public:
  torch::Tensor forward(const torch::Tensor& x) override {
    autocast_seen = autocast_seen || sdk::compat::autocast_state(c10::DeviceType::CPU).enabled;
    ++forwards;
    return torch::zeros({x.size(0), 2, x.size(2) / 4, x.size(3) / 4});
  }
  std::int64_t output_stride() const override { return 4; }
  bool autocast_seen = false;
  int forwards = 0;
};

// Validation and `exprun eval` used to score a mixed-precision stage's bf16/fp16 heatmaps,
// while `exprun predict` scores the fp32 model: one checkpoint, two sets of landmarks.
TEST(Evaluate, ScoresTheFp32ModelUnderAMixedPrecisionStrategy) {
  AutocastRecordingModel model;
  const std::vector<std::shared_ptr<sdk::MemoryStrategy>> strategies = {
      std::make_shared<AutocastStrategy>()};
  SamplePipeline pipeline(test::fake_pipeline_spec());  // validation does not augment
  const auto data = std::make_shared<test::FakeDataset>(3, 128, 160);
  const Evaluation e =
      evaluate({model, strategies, pipeline, torch::kCPU, DecodeMethod::Argmax}, data, 2, 0);
  EXPECT_EQ(model.forwards, 2);
  EXPECT_FALSE(model.autocast_seen);
  EXPECT_EQ(e.metrics.overall.count, 6u);
  EXPECT_FALSE(sdk::compat::autocast_state(c10::DeviceType::CPU).enabled) << "not restored";
}

}  // namespace
}  // namespace exprun
