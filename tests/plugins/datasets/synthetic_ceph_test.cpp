// The synthetic cephalograms: deterministic from the seed, landmarks inside the image and
// spread out enough that none can be placed without looking, both machines present.
#include <gtest/gtest.h>
#include <exprun/sdk/sdk.hpp>

#include <set>
#include <thread>

extern "C" const exprun::sdk::PluginInfo* exprun_plugin_info();

namespace {

using namespace exprun::sdk;

std::shared_ptr<Dataset> make(const std::string& split, std::uint64_t seed,
                              std::map<std::string, ParamValue> given = {}) {
  const auto* info = exprun_plugin_info();
  return make_plugin<Dataset>(*info, Params::resolve(info->schema(), std::move(given)),
                              DatasetContext{split, seed});
}

const std::map<std::string, ParamValue> kSmall = {{"train_count", std::int64_t{24}},
                                                  {"valid_count", std::int64_t{6}}};

TEST(SyntheticCeph, SameSeedSameSamples) {
  auto a = make("train", 5, kSmall), b = make("train", 5, kSmall);
  ASSERT_EQ(a->size(), 24u);
  for (std::size_t i : {0u, 7u, 23u}) {
    const auto sa = a->get(i), sb = b->get(i);
    EXPECT_TRUE(torch::equal(sa.image, sb.image));
    EXPECT_TRUE(torch::equal(sa.landmarks, sb.landmarks));
    EXPECT_EQ(sa.id, sb.id);
  }
}

TEST(SyntheticCeph, SeedsAndSplitsGiveDifferentSamples) {
  const auto base = make("train", 5, kSmall)->get(0);
  EXPECT_FALSE(torch::equal(base.landmarks, make("train", 6, kSmall)->get(0).landmarks));
  EXPECT_FALSE(torch::equal(base.landmarks, make("valid", 5, kSmall)->get(0).landmarks));
  // "val" is another name for "valid".
  EXPECT_TRUE(torch::equal(make("val", 5, kSmall)->get(1).landmarks,
                           make("valid", 5, kSmall)->get(1).landmarks));
  EXPECT_THROW(make("holdout", 5, kSmall), ParamError);
}

TEST(SyntheticCeph, SamplesHaveTheAarizLandmarksInsideTheImage) {
  auto data = make("train", 1, kSmall);
  ASSERT_EQ(data->landmarks().size(), 29u);
  EXPECT_EQ(data->landmarks()[10].symbol, "S");
  std::set<std::string> groups;
  for (std::size_t i = 0; i < data->size(); ++i) {
    const auto s = data->get(i);
    ASSERT_EQ(s.image.dim(), 2);
    EXPECT_EQ(s.image.scalar_type(), torch::kUInt8);
    ASSERT_EQ(s.landmarks.sizes(), (std::vector<std::int64_t>{29, 2}));
    const double w = static_cast<double>(s.image.size(1)), h = static_cast<double>(s.image.size(0));
    EXPECT_GT(s.landmarks.select(1, 0).min().item<double>(), 0.0);
    EXPECT_LT(s.landmarks.select(1, 0).max().item<double>(), w - 1);
    EXPECT_GT(s.landmarks.select(1, 1).min().item<double>(), 0.0);
    EXPECT_LT(s.landmarks.select(1, 1).max().item<double>(), h - 1);
    EXPECT_TRUE(s.mm_per_pixel == 0.4 || s.mm_per_pixel == 0.44) << s.mm_per_pixel;
    groups.insert(s.group);
    // The image is not blank: bone and teeth are much brighter than air.
    EXPECT_GT(s.image.max().item<int>() - s.image.min().item<int>(), 100);
  }
  EXPECT_EQ(groups, (std::set<std::string>{"synth_a", "synth_b"}));
}

// Guessing every landmark at its mean position must be far off: at least 3 mm on average
// for each landmark (the quickstart's detector gets close to 1 mm).
TEST(SyntheticCeph, NoLandmarkCanBePlacedWithoutLookingAtTheImage) {
  auto data = make("train", 2, {{"train_count", std::int64_t{40}}});
  std::vector<torch::Tensor> mm;
  for (std::size_t i = 0; i < data->size(); ++i) {
    const auto s = data->get(i);
    mm.push_back(s.landmarks * s.mm_per_pixel);
  }
  auto all = torch::stack(mm);             // N x 29 x 2, in mm
  auto mean = all.mean(0, true);           // 1 x 29 x 2
  auto error = (all - mean).norm(2, {2});  // N x 29
  auto per_landmark = error.mean(0);
  for (std::int64_t k = 0; k < 29; ++k) {
    EXPECT_GT(per_landmark[k].item<double>(), 3.0) << data->landmarks()[k].symbol;
  }
}

TEST(SyntheticCeph, ConcurrentReadsSeeOneSample) {
  auto data = make("train", 3, kSmall);
  std::vector<Sample> seen(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&, t] { seen[t] = data->get(9); });
  for (auto& t : threads) t.join();
  for (int t = 1; t < 4; ++t) EXPECT_TRUE(torch::equal(seen[0].image, seen[t].image));
}

// Every film is kept once drawn: a count no machine could hold was std::bad_alloc at the
// dataset's construction. Now the parameter names its bound.
TEST(SyntheticCeph, CountsAreBounded) {
  const auto* info = exprun_plugin_info();
  for (const char* key : {"train_count", "valid_count", "test_count"}) {
    try {
      Params::resolve(info->schema(), {{key, std::int64_t{100000000000}}});
      ADD_FAILURE() << key << " = 1e11 was accepted";
    } catch (const ParamError& e) {
      EXPECT_NE(std::string(e.what()).find("100000"), std::string::npos) << e.what();
    }
    EXPECT_NO_THROW(Params::resolve(info->schema(), {{key, std::int64_t{100000}}}));
  }
}

}  // namespace
