// The sample pipeline: resize, augmentation and heatmap targets, and the map back to original
// pixels that every prediction goes through.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include "data/heatmap.hpp"
#include "data/sample_pipeline.hpp"
#include "eval/radial_error.hpp"
#include "fake_dataset.hpp"

namespace exprun {
namespace {

constexpr std::int64_t kWidth = 400, kHeight = 500;

PipelineSpec spec(bool augment = false) {
  PipelineSpec s;
  s.input_width = 128;
  s.input_height = 160;
  s.stride = 4;
  s.num_landmarks = 2;
  s.sigma = 1.5;
  s.augment.enabled = augment;
  return s;
}

// Decodes the sample's own heatmap targets and maps them back to original pixels.
torch::Tensor decoded_original(const PreparedSample& p, double stride) {
  const auto cells = decode_heatmaps(p.heatmaps.unsqueeze(0));
  return heatmap_to_original(cells, {p.meta}, stride)[0];
}

TEST(SamplePipeline, InputSizeMustBeAMultipleOfTheStride) {
  PipelineSpec s = spec();
  s.input_width = 130;
  EXPECT_THROW(SamplePipeline{s}, std::runtime_error);
  s.input_width = 128;
  EXPECT_NO_THROW(SamplePipeline{s});
}

TEST(SamplePipeline, PreparesImageTargetsAndMeta) {
  const test::FakeDataset data(3, kWidth, kHeight);
  const SamplePipeline pipeline(spec());
  EXPECT_EQ(pipeline.heatmap_width(), 32);
  EXPECT_EQ(pipeline.heatmap_height(), 40);
  const PreparedSample p = pipeline.prepare(data.get(1), false, 0);
  EXPECT_EQ(p.image.sizes(), (std::vector<std::int64_t>{1, 160, 128}));
  EXPECT_EQ(p.image.scalar_type(), torch::kFloat32);
  EXPECT_GE(p.image.min().item<float>(), 0.0f);
  EXPECT_LE(p.image.max().item<float>(), 1.0f);
  EXPECT_EQ(p.heatmaps.sizes(), (std::vector<std::int64_t>{2, 40, 32}));
  EXPECT_NEAR(p.heatmaps.max().item<float>(), 1.0f, 0.2f);
  EXPECT_EQ(p.meta.id, "s1");
  EXPECT_EQ(p.meta.group, "odd");
  EXPECT_DOUBLE_EQ(p.meta.mm_per_pixel, 0.1);
  EXPECT_EQ(p.meta.original_width, kWidth);
  EXPECT_EQ(p.meta.original_height, kHeight);
  EXPECT_EQ(p.meta.landmarks.scalar_type(), torch::kFloat64);
  EXPECT_TRUE(torch::equal(p.meta.landmarks, data.get(1).landmarks));
}

TEST(SamplePipeline, TargetsMapBackToTheOriginalLandmarks) {
  const test::FakeDataset data(5, kWidth, kHeight);
  const SamplePipeline pipeline(spec());
  for (std::size_t i = 0; i < data.size(); ++i) {
    const auto sample = data.get(i);
    const auto back = decoded_original(pipeline.prepare(sample, false, 0), 4);
    // One heatmap cell is 12.5 original pixels here; the decode is exact to float rounding.
    EXPECT_TRUE(torch::allclose(back, sample.landmarks, 0, 1e-2)) << "sample " << i << "\n"
                                                                  << back << sample.landmarks;
  }
}

TEST(SamplePipeline, ThreeChannelsRepeatTheGreyImage) {
  PipelineSpec s = spec();
  s.channels = 3;
  const test::FakeDataset data(1, kWidth, kHeight);
  const auto p = SamplePipeline(s).prepare(data.get(0), false, 0);
  ASSERT_EQ(p.image.sizes(), (std::vector<std::int64_t>{3, 160, 128}));
  EXPECT_TRUE(torch::equal(p.image[0], p.image[1]));
  EXPECT_TRUE(torch::equal(p.image[0], p.image[2]));
}

TEST(SamplePipeline, RejectsBadSamples) {
  const test::FakeDataset data(1, kWidth, kHeight);
  const SamplePipeline pipeline(spec());
  auto wrong_count = data.get(0);
  wrong_count.landmarks = torch::zeros({3, 2}, torch::kFloat64);
  EXPECT_THROW(pipeline.prepare(wrong_count, false, 0), std::runtime_error);
  auto no_scale = data.get(0);
  no_scale.mm_per_pixel = 0;
  EXPECT_THROW(pipeline.prepare(no_scale, false, 0), std::runtime_error);
  auto bad_image = data.get(0);
  bad_image.image = torch::zeros({4}, torch::kUInt8);
  EXPECT_THROW(pipeline.prepare(bad_image, false, 0), std::runtime_error);
}

TEST(SamplePipeline, MissingLandmarkHasAnEmptyTarget) {
  const test::FakeDataset data(1, kWidth, kHeight);
  auto sample = data.get(0);
  sample.landmarks[1][0] = std::nan("");
  sample.landmarks[1][1] = std::nan("");
  const auto p = SamplePipeline(spec()).prepare(sample, false, 0);
  EXPECT_EQ(p.heatmaps[1].abs().sum().item<float>(), 0.0f);
  EXPECT_GT(p.heatmaps[0].max().item<float>(), 0.8f);
}

TEST(SamplePipeline, AugmentationIsAFunctionOfTheSeed) {
  const test::FakeDataset data(1, kWidth, kHeight);
  const SamplePipeline pipeline(spec(true));
  const auto sample = data.get(0);
  const auto a = pipeline.prepare(sample, true, 11);
  const auto b = pipeline.prepare(sample, true, 11);
  const auto c = pipeline.prepare(sample, true, 12);
  EXPECT_TRUE(torch::equal(a.image, b.image));
  EXPECT_TRUE(torch::equal(a.heatmaps, b.heatmaps));
  EXPECT_FALSE(torch::equal(a.image, c.image));
  // Without augmentation the seed does not matter.
  EXPECT_TRUE(torch::equal(pipeline.prepare(sample, false, 11).image,
                           pipeline.prepare(sample, false, 12).image));
  // Disabled in the spec: no augmentation even when asked for.
  const SamplePipeline off(spec(false));
  EXPECT_TRUE(
      torch::equal(off.prepare(sample, true, 11).image, off.prepare(sample, false, 0).image));
}

// The image and the landmarks go through the same warp: the blob drawn on landmark 0 lands
// where the landmark's target says, and the targets still map back to the original landmarks.
TEST(SamplePipeline, AugmentedImageAndTargetsAgree) {
  PipelineSpec s = spec(true);
  s.augment.rotation_deg = 30;
  s.augment.scale = 0.1;
  s.augment.shift = 0.05;
  s.augment.brightness = 0;  // keep the background black so the blob's centroid is clean
  s.augment.contrast = 0;
  const SamplePipeline pipeline(s);
  const test::FakeDataset data(1, kWidth, kHeight);
  const auto sample = data.get(0);
  const double lx = sample.landmarks[0][0].item<double>(),
               ly = sample.landmarks[0][1].item<double>();
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    const auto p = pipeline.prepare(sample, true, seed);
    const auto where = p.meta.input_to_original.inverse().apply(lx, ly);
    const auto image = p.image[0].to(torch::kFloat64);
    const double mass = image.sum().item<double>();
    const auto xs = torch::arange(128, torch::kFloat64).view({1, 128});
    const auto ys = torch::arange(160, torch::kFloat64).view({160, 1});
    const double cx = (image * xs).sum().item<double>() / mass;
    const double cy = (image * ys).sum().item<double>() / mass;
    EXPECT_NEAR(cx, where[0], 0.3) << "seed " << seed;
    EXPECT_NEAR(cy, where[1], 0.3) << "seed " << seed;
    const auto back = decoded_original(p, 4);
    EXPECT_TRUE(torch::allclose(back, sample.landmarks, 0, 2e-2)) << "seed " << seed << "\n"
                                                                  << back;
  }
}

TEST(SamplePipeline, CollateStacksInOrder) {
  const test::FakeDataset data(3, kWidth, kHeight);
  const SamplePipeline pipeline(spec());
  std::vector<PreparedSample> samples;
  for (std::size_t i = 0; i < 3; ++i) samples.push_back(pipeline.prepare(data.get(i), false, 0));
  const auto first_image = samples[0].image.clone();
  const Batch batch = SamplePipeline::collate(std::move(samples));
  EXPECT_EQ(batch.size(), 3);
  EXPECT_EQ(batch.images.sizes(), (std::vector<std::int64_t>{3, 1, 160, 128}));
  EXPECT_EQ(batch.heatmaps.sizes(), (std::vector<std::int64_t>{3, 2, 40, 32}));
  ASSERT_EQ(batch.meta.size(), 3u);
  EXPECT_EQ(batch.meta[2].id, "s2");
  EXPECT_TRUE(torch::equal(batch.images[0], first_image));
}

TEST(MixSeed, DeterministicAndSpread) {
  EXPECT_EQ(mix_seed(1, 2, 3), mix_seed(1, 2, 3));
  EXPECT_NE(mix_seed(1, 2, 3), mix_seed(1, 2, 4));
  EXPECT_NE(mix_seed(1, 2), mix_seed(2, 1));
  EXPECT_NE(mix_seed(0, 0), 0u);
}

}  // namespace
}  // namespace exprun

namespace exprun {
namespace {

// Photometric augmentation only: no warp, no brightness or contrast change.
PipelineSpec photometric_spec() {
  PipelineSpec s = spec(true);
  s.augment.rotation_deg = 0;
  s.augment.scale = 0;
  s.augment.shift = 0;
  s.augment.brightness = 0;
  s.augment.contrast = 0;
  return s;
}

TEST(SamplePipeline, GammaRaisesEveryPixelToOnePower) {
  const test::FakeDataset data(1, kWidth, kHeight);
  const auto sample = data.get(0);
  const auto plain = SamplePipeline(spec()).prepare(sample, false, 0);
  PipelineSpec s = photometric_spec();
  s.augment.gamma = 0.5;
  const auto a = SamplePipeline(s).prepare(sample, true, 21);
  // Recover the drawn exponent from one mid-grey pixel, then check every pixel obeys it.
  const auto x = plain.image.to(torch::kFloat64), y = a.image.to(torch::kFloat64);
  const auto mid = ((x > 0.2) & (x < 0.8)).nonzero();
  ASSERT_GT(mid.size(0), 0);
  const auto at = mid[0];
  const double g = std::log(y.index({at[0], at[1], at[2]}).item<double>()) /
                   std::log(x.index({at[0], at[1], at[2]}).item<double>());
  EXPECT_GE(g, 0.5);
  EXPECT_LE(g, 1.5);
  EXPECT_NE(g, 1.0);
  EXPECT_TRUE(torch::allclose(y, x.pow(g), 1e-4, 1e-5));
  // Geometry is untouched: the targets are the unaugmented ones.
  EXPECT_TRUE(torch::equal(a.heatmaps, plain.heatmaps));
}

TEST(SamplePipeline, ClaheIsAppliedWithItsProbabilityAndKeepsTheTargets) {
  const test::FakeDataset data(1, kWidth, kHeight);
  const auto sample = data.get(0);
  const auto plain = SamplePipeline(spec()).prepare(sample, false, 0);
  PipelineSpec always = photometric_spec();
  always.augment.clahe = 1.0;
  const auto a = SamplePipeline(always).prepare(sample, true, 5);
  EXPECT_FALSE(torch::allclose(a.image, plain.image, 1e-3, 1e-3)) << "CLAHE changed nothing";
  EXPECT_TRUE(torch::equal(a.heatmaps, plain.heatmaps));
  EXPECT_GE(a.image.min().item<float>(), 0.0f);
  EXPECT_LE(a.image.max().item<float>(), 1.0f);
  // Probability 0 (the default) never applies it: only the 8-bit round trip could differ.
  PipelineSpec never = photometric_spec();
  const auto b = SamplePipeline(never).prepare(sample, true, 5);
  EXPECT_TRUE(torch::equal(b.image, plain.image));
  // In between, some seeds apply it and some do not.
  PipelineSpec half = photometric_spec();
  half.augment.clahe = 0.5;
  int applied = 0;
  for (std::uint64_t seed = 0; seed < 40; ++seed)
    applied +=
        torch::equal(SamplePipeline(half).prepare(sample, true, seed).image, plain.image) ? 0 : 1;
  EXPECT_GT(applied, 8);
  EXPECT_LT(applied, 32);
}

// The clip limit is a multiple of the mean bin count of 256 bins. On OpenCV's 16-bit CLAHE
// (65536 bins) no clip limit up to 100 clipped anything at training sizes, so every
// clahe_clip gave the same image.
TEST(SamplePipeline, ClaheClipLimitsTheEqualisation) {
  // A dim, low-contrast film (values 100 to 131 of 255): CLAHE's histograms are narrow, and the
  // clip limit decides how far it stretches them.
  sdk::Sample sample = test::FakeDataset(1, kWidth, kHeight).get(0);
  torch::manual_seed(3);
  sample.image = (torch::randint(0, 32, {kHeight, kWidth}) + 100).to(torch::kUInt8);
  PipelineSpec s = photometric_spec();
  s.augment.clahe = 1.0;
  s.augment.gamma = 0;
  // OpenCV's limit per bin is int(clip x tile pixels / 256), at least 1: with 16 x 20-pixel
  // tiles, clip 1 allows 1 and clip 100 allows 125.
  auto spread = [&](double clip) {
    s.augment.clahe_clip = clip;
    return SamplePipeline(s)
        .prepare(sample, true, 5)
        .image.to(torch::kFloat64)
        .std()
        .item<double>();
  };
  const double plain = SamplePipeline(spec())
                           .prepare(sample, false, 0)
                           .image.to(torch::kFloat64)
                           .std()
                           .item<double>();
  const double gentle = spread(1.0), medium = spread(8.0), strong = spread(100.0);
  EXPECT_GT(gentle, plain);
  EXPECT_GT(medium, gentle * 1.2) << "a larger clip limit must equalise more";
  EXPECT_GT(strong, medium * 1.2) << "a larger clip limit must equalise more";
}

}  // namespace
}  // namespace exprun
