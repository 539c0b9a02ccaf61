// Every experiment file shipped in experiments/ loads against the plugins this build made.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "config/config_error.hpp"
#include "config/experiment_loader.hpp"
#include "plugins/registry.hpp"
#include "sweep/sweep_loader.hpp"
#include "test_support.hpp"

namespace exprun {
namespace {
namespace fs = std::filesystem;

const Registry& registry() { return test::built_plugins(); }

std::vector<fs::path> experiment_files() {
  std::vector<fs::path> out;
  for (const auto& entry :
       fs::recursive_directory_iterator(fs::path(EXPRUN_SOURCE_DIR) / "experiments"))
    if (entry.is_regular_file() && entry.path().extension() == ".toml") out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ShippedExperiments, EveryFileLoads) {
  const auto files = experiment_files();
  ASSERT_FALSE(files.empty());
  for (const auto& file : files) {
    try {
      const Experiment e = load_experiment(file.string(), {}, registry());
      EXPECT_FALSE(e.stages.empty()) << file;
    } catch (const ConfigError& error) {
      ADD_FAILURE() << error.what();
    }
  }
}

TEST(ShippedExperiments, EverySweepTrialLoads) {
  for (const auto& file : experiment_files()) {
    try {
      const SweepFile sweep = read_sweep_file(file.string());
      if (!sweep.spec) continue;
      const auto trials = load_trials(sweep, {}, {}, registry());
      EXPECT_EQ(trials.size(), sweep.spec->trial_count()) << file;
    } catch (const ConfigError& error) {
      ADD_FAILURE() << error.what();
    }
  }
}

TEST(ShippedExperiments, QuickstartRunsOnSyntheticData) {
  const auto path = fs::path(EXPRUN_SOURCE_DIR) / "experiments" / "quickstart.toml";
  const Experiment e = load_experiment(path.string(), {"epochs=1"}, registry());
  ASSERT_FALSE(e.stages.empty());
  EXPECT_EQ(e.name, "quickstart");
  EXPECT_EQ(e.stages[0].data.reader.name, "synthetic_ceph");
  EXPECT_EQ(e.stages[0].model.name, "hrnet");
  EXPECT_EQ(e.stages[0].loss.name, "adaptive_wing");
  EXPECT_EQ(e.stages[0].epochs, 1);
}

// The quickstart promises a model that finds the landmarks: after a quarter of its epochs the
// validation MRE is already well below the mean shape's. With the reference code's batch-norm
// momentum (0.01) its running statistics lagged the network so far that validation stayed
// above the mean shape for all 16 epochs while the training loss fell.
TEST(ShippedExperiments, QuickstartBeatsTheMeanShapeWithinFourEpochs) {
  const test::TempDir dir;
  const auto path = fs::path(EXPRUN_SOURCE_DIR) / "experiments" / "quickstart.toml";
  // About 30 s on two idle cores; every core's threads slow down far more than that when
  // another test shares them.
  test::ProcessOptions options;
  options.timeout_s = 600;
  const auto r = test::run_exprun(
      {path.string(), "--output", dir.path().string(), "--set", "stages.train.epochs=4"},
      std::move(options));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  std::vector<fs::path> reports;
  for (const auto& entry : fs::recursive_directory_iterator(dir.path()))
    if (entry.path().filename() == "report.json") reports.push_back(entry.path());
  ASSERT_EQ(reports.size(), 1u) << r.describe();
  const auto report = nlohmann::json::parse(test::read_text(reports[0]));
  const auto& stage = report.at("stages").at(0);
  const double best = stage.at("best").at("overall").at("mre").get<double>();
  const double mean_shape = stage.at("mean_shape_baseline").at("overall").at("mre").get<double>();
  EXPECT_LT(best, 0.5 * mean_shape)
      << "best validation MRE " << best << " mm, mean shape " << mean_shape << " mm";
}

TEST(ShippedExperiments, UnknownPluginMessageFromTheRegistry) {
  const auto path = fs::path(EXPRUN_SOURCE_DIR) / "experiments" / "quickstart.toml";
  try {
    load_experiment(path.string(), {"loss.plugin=adaptive_wingg"}, registry());
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("--set loss.plugin=adaptive_wingg: stages."), std::string::npos)
        << message;
    EXPECT_NE(message.find("no losses plugin named \"adaptive_wingg\"; did you mean "
                           "'adaptive_wing'?"),
              std::string::npos)
        << message;
  }
}

}  // namespace
}  // namespace exprun
