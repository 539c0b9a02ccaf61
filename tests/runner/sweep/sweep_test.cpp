// Experiment sweeps (docs/experiment-file.md "[sweep]", docs/cli.md, docs/report.md
// "sweep.json"): reading [sweep] and expanding it into trials; loading each trial through the
// experiment loader with errors that name the trial; and, through the built exprun, a tiny
// sweep whose middle trial fails when its stage is built, plus `exprun plan` on a sweep.
#include <gtest/gtest.h>

#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <regex>
#include <string>
#include <variant>
#include <vector>

#include "config/config_error.hpp"
#include "config/experiment_loader.hpp"
#include "plugins/registry.hpp"
#include "sweep/sweep_loader.hpp"
#include "sweep/sweep_report.hpp"
#include "sweep/sweep_spec.hpp"
#include "sweep/toml_value.hpp"
#include "test_support.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kFile = "s.toml";

SweepSpec parse(const std::string& text) {
  const auto spec = read_sweep(toml::parse(text, kFile));
  if (!spec) throw std::runtime_error("no [sweep] in\n" + text);
  return *spec;
}

// The ConfigError message read_sweep throws for `text` ("" if it throws none).
std::string error_of(const std::string& text) {
  try {
    read_sweep(toml::parse(text, kFile));
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError for\n" << text;
  return "";
}

// "s.toml:LINE:COLUMN" of the first occurrence of `needle` in `text`.
std::string position(const std::string& text, const std::string& needle,
                     const std::string& file = kFile) {
  const auto lines = test::split_lines(text);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto column = lines[i].find(needle);
    if (column != std::string::npos)
      return file + ":" + std::to_string(i + 1) + ":" + std::to_string(column + 1);
  }
  ADD_FAILURE() << needle << " not in\n" << text;
  return "";
}

// The position of the value written right after `prefix` (e.g. "warmup_epochs = ").
std::string value_position(const std::string& text, const std::string& prefix,
                           const std::string& file) {
  const std::string at = position(text, prefix, file);
  const auto colon = at.rfind(':');
  return at.substr(0, colon + 1) + std::to_string(std::stoul(at.substr(colon + 1)) + prefix.size());
}

// Each trial as its --set arguments joined by spaces.
std::vector<std::string> trial_texts(const SweepSpec& spec) {
  std::vector<std::string> out;
  for (const auto& trial : spec.trials()) {
    std::string text;
    for (const auto& argument : trial.set_arguments()) text += (text.empty() ? "" : " ") + argument;
    out.push_back(text);
  }
  return out;
}

// ---------------------------------------------------------------- expansion

TEST(SweepSpec, NoSweepTableIsNothing) {
  EXPECT_FALSE(read_sweep(toml::parse("[experiment]\nname = \"x\"\n")).has_value());
}

TEST(SweepSpec, GridIsEveryCombinationFirstKeySlowest) {
  const SweepSpec spec = parse(
      "[sweep.grid]\n"
      "\"optimizer.lr\" = [1, 2]\n"
      "epochs = [10, 20, 30]\n");
  EXPECT_EQ(spec.mode(), "grid");
  EXPECT_EQ(spec.keys(), (std::vector<std::string>{"optimizer.lr", "epochs"}));
  EXPECT_EQ(spec.trial_count(), 6u);
  EXPECT_EQ(trial_texts(spec),
            (std::vector<std::string>{"optimizer.lr=1 epochs=10", "optimizer.lr=1 epochs=20",
                                      "optimizer.lr=1 epochs=30", "optimizer.lr=2 epochs=10",
                                      "optimizer.lr=2 epochs=20", "optimizer.lr=2 epochs=30"}));
  const auto trials = spec.trials();
  for (std::size_t i = 0; i < trials.size(); ++i) EXPECT_EQ(trials[i].index, i);
}

TEST(SweepSpec, ZipWalksTheListsTogether) {
  const SweepSpec spec = parse(
      "[sweep.zip]\n"
      "\"memory.micro_batch\" = [4, 2, 1]\n"
      "\"memory.strategies\" = [[], [\"gradient_accumulation\"], [\"gradient_accumulation\"]]\n");
  EXPECT_EQ(spec.mode(), "zip");
  EXPECT_EQ(spec.trial_count(), 3u);
  EXPECT_EQ(trial_texts(spec),
            (std::vector<std::string>{
                "memory.micro_batch=4 memory.strategies=[]",
                "memory.micro_batch=2 memory.strategies=[\"gradient_accumulation\"]",
                "memory.micro_batch=1 memory.strategies=[\"gradient_accumulation\"]"}));
}

TEST(SweepSpec, ZipRowsTimesGridCombinations) {
  // The zip keys come first in every trial, whatever the order of the tables in the file.
  const SweepSpec spec = parse(
      "[sweep.grid]\n"
      "\"experiment.seed\" = [1, 2]\n"
      "[sweep.zip]\n"
      "\"memory.micro_batch\" = [4, 2]\n"
      "\"optimizer.lr\" = [0.004, 0.002]\n");
  EXPECT_EQ(spec.mode(), "zip x grid");
  EXPECT_EQ(spec.keys(),
            (std::vector<std::string>{"memory.micro_batch", "optimizer.lr", "experiment.seed"}));
  EXPECT_EQ(spec.trial_count(), 4u);
  EXPECT_EQ(trial_texts(spec), (std::vector<std::string>{
                                   "memory.micro_batch=4 optimizer.lr=0.004 experiment.seed=1",
                                   "memory.micro_batch=4 optimizer.lr=0.004 experiment.seed=2",
                                   "memory.micro_batch=2 optimizer.lr=0.002 experiment.seed=1",
                                   "memory.micro_batch=2 optimizer.lr=0.002 experiment.seed=2"}));
}

TEST(SweepSpec, NestedAndQuotedKeysAreTheSameKeys) {
  const std::vector<std::string> spellings = {
      "[sweep.grid]\n\"optimizer.lr\" = [0.1, 0.2]\n\"stages.train.epochs\" = [3]\n",
      "[sweep.grid]\noptimizer.lr = [0.1, 0.2]\nstages.train.epochs = [3]\n",
      "[sweep.grid]\noptimizer = { lr = [0.1, 0.2] }\nstages = { train = { epochs = [3] } }\n",
      "[sweep.grid.optimizer]\nlr = [0.1, 0.2]\n[sweep.grid.stages.train]\nepochs = [3]\n",
      "[sweep.grid]\n\"optimizer\".lr = [0.1, 0.2]\n[sweep.grid.stages]\n\"train.epochs\" = [3]\n",
  };
  for (const auto& text : spellings) {
    SCOPED_TRACE(text);
    const SweepSpec spec = parse(text);
    EXPECT_EQ(spec.keys(), (std::vector<std::string>{"optimizer.lr", "stages.train.epochs"}));
    EXPECT_EQ(trial_texts(spec),
              (std::vector<std::string>{"optimizer.lr=0.1 stages.train.epochs=3",
                                        "optimizer.lr=0.2 stages.train.epochs=3"}));
  }
}

TEST(SweepSpec, KeysKeepTheFileOrderNotTheAlphabet) {
  const SweepSpec spec = parse(
      "[sweep.grid]\n"
      "zeta = [1]\n"
      "\"defaults.memory.effective_batch\" = [8]\n"
      "alpha = [2]\n");
  EXPECT_EQ(spec.keys(),
            (std::vector<std::string>{"zeta", "defaults.memory.effective_batch", "alpha"}));
}

TEST(SweepSpec, ValuesMayBeListsAndTablesAndKeepTheirType) {
  const SweepSpec spec = parse(
      "[sweep.grid]\n"
      "\"data.image_size\" = [[128, 160], [256, 320]]\n"
      "\"stages.train.optimizer\" = [{ name = \"sgd\", lr = 0.1 }, { name = \"adam\", \"lr\" = "
      "1e-3 }]\n"
      "\"optimizer.weight_decay\" = [2.0, 1e-5, -0.5, 1.5e20, 1e-300]\n"
      "\"experiment.description\" = [\"say \\\"hi\\\"\", 'true']\n"
      "\"data.augment\" = [false]\n");
  ASSERT_EQ(spec.grid.size(), 5u);
  EXPECT_EQ(spec.grid[0].values, (std::vector<std::string>{"[128, 160]", "[256, 320]"}));
  EXPECT_EQ(spec.grid[1].values, (std::vector<std::string>{"{ lr = 0.1, name = \"sgd\" }",
                                                           "{ lr = 0.001, name = \"adam\" }"}));
  // 2.0 stays a float: written as 2 it would read back as an integer.
  EXPECT_EQ(spec.grid[2].values,
            (std::vector<std::string>{"2.0", "0.00001", "-0.5", "1.5e+20", "1e-300"}));
  EXPECT_EQ(spec.grid[3].values, (std::vector<std::string>{"\"say \\\"hi\\\"\"", "\"true\""}));
  EXPECT_EQ(spec.grid[4].values, (std::vector<std::string>{"false"}));
  EXPECT_EQ(spec.trial_count(), 2u * 2 * 5 * 2 * 1);
  // Every value reads back as the TOML it was written as.
  for (const auto& axis : spec.grid) {
    for (const auto& value : axis.values) {
      const toml::table doc = toml::parse("v = " + value);
      EXPECT_EQ(toml_value_text(*doc.get("v")), value);
    }
  }
  EXPECT_EQ(toml_text_json("{ lr = 0.1, name = \"sgd\" }"), json({{"lr", 0.1}, {"name", "sgd"}}));
  EXPECT_EQ(toml_text_json("[128, 160]"), json::array({128, 160}));
}

TEST(SweepSpec, ValuesRememberWhereTheyWereWritten) {
  const std::string text = "[sweep.zip]\n\"memory.micro_batch\" = [4,  2]\n";
  const SweepSpec spec = parse(text);
  EXPECT_EQ(spec.zip[0].where, position(text, "[4,"));
  const auto trials = spec.trials();
  EXPECT_EQ(trials[0].values[0].where, position(text, "4,"));
  EXPECT_EQ(trials[1].values[0].where, position(text, "2]"));
}

// ---------------------------------------------------------------- errors in [sweep]

TEST(SweepSpec, LeafThatIsNotAList) {
  const std::string text = "[sweep.grid]\n\"optimizer.lr\" = 0.001\n";
  EXPECT_EQ(error_of(text), position(text, "0.001") +
                                ": sweep.grid.optimizer.lr: expected a list of values to sweep, "
                                "e.g. [0.001, ...], found number 0.001");
}

TEST(SweepSpec, EmptyList) {
  const std::string text = "[sweep.zip]\nmemory = { micro_batch = [] }\n";
  EXPECT_EQ(error_of(text), position(text, "[]") +
                                ": sweep.zip.memory.micro_batch: expected a non-empty list of "
                                "values to sweep, found []");
}

TEST(SweepSpec, EmptyNestedTable) {
  const std::string text = "[sweep.grid]\noptimizer = {}\n";
  EXPECT_EQ(error_of(text), position(text, "{}") +
                                ": sweep.grid.optimizer: expected a list of values to sweep, "
                                "found an empty table");
}

TEST(SweepSpec, ZipListsOfUnequalLength) {
  const std::string text =
      "[sweep.zip]\n"
      "\"memory.micro_batch\" = [4, 2, 1]\n"
      "\"optimizer.lr\" = [0.1, 0.2]\n";
  EXPECT_EQ(error_of(text), position(text, "[0.1") +
                                ": sweep.zip.optimizer.lr: [sweep.zip] lists are walked together "
                                "and must have the same length: memory.micro_batch has 3 values, "
                                "optimizer.lr has 2");
}

// Training is deterministic for a configuration: a repeated value only repeats trials.
TEST(SweepSpec, AGridValueListedTwiceIsAnError) {
  const std::string text =
      "[sweep.grid]\n"
      "epochs = [1, 2]\n"
      "\"optimizer.lr\" = [1e-3, 0.01, 0.001]\n";
  EXPECT_EQ(error_of(text),
            value_position(text, "[1e-3, 0.01, ", kFile) +
                ": sweep.grid.optimizer.lr: 0.001 is listed twice (also at " +
                value_position(text, "\"optimizer.lr\" = [", kFile) +
                "); its trials would repeat others (to repeat a configuration, sweep "
                "experiment.seed)");
}

TEST(SweepSpec, AZipRowListedTwiceIsAnErrorButARepeatedValueIsNot) {
  const std::string text =
      "[sweep.zip]\n"
      "\"optimizer.lr\" = [1e-3, 1e-3, 1e-3]\n"
      "epochs = [1, 2, 1]\n";
  EXPECT_EQ(error_of(text), value_position(text, "[1e-3, 1e-3, ", kFile) +
                                ": sweep.zip: row 3 (optimizer.lr=0.001, epochs=1) repeats row 1; "
                                "its trials would repeat others (to repeat a configuration, sweep "
                                "experiment.seed)");
  EXPECT_EQ(parse("[sweep.zip]\n\"optimizer.lr\" = [1e-3, 1e-3]\nepochs = [1, 2]\n").trial_count(),
            2u);
}

TEST(SweepSpec, UnknownKeyInSweep) {
  const std::string text = "[sweep]\nlr = [1e-3, 1e-4]\n";
  EXPECT_EQ(error_of(text), position(text, "[1e-3") +
                                ": sweep.lr: unknown key 'lr' in [sweep]: swept keys go in "
                                "[sweep.grid] (every combination) or [sweep.zip] (lists walked "
                                "together)");
  EXPECT_NE(error_of("[sweep.gird]\na = [1]\n").find("did you mean 'grid'?"), std::string::npos);
}

TEST(SweepSpec, NothingToSweep) {
  for (const std::string text : {"[sweep]\n", "[sweep]\n[sweep.grid]\n[sweep.zip]\n"}) {
    EXPECT_EQ(error_of(text), kFile +
                                  ":1:1: sweep: nothing to sweep: add [sweep.grid] (every "
                                  "combination) or [sweep.zip] (lists walked together) with at "
                                  "least one key = [values, ...]");
  }
}

TEST(SweepSpec, SweepOrGridThatIsNotATable) {
  std::string text = "sweep = [1, 2]\n";
  EXPECT_EQ(error_of(text), position(text, "[1") +
                                ": sweep: expected a table [sweep] holding [sweep.grid] and/or "
                                "[sweep.zip], found array [ 1, 2 ]");
  text = "[sweep]\ngrid = 3\n";
  EXPECT_EQ(error_of(text), position(text, "3") +
                                ": sweep.grid: expected a table [sweep.grid] of key = [values, "
                                "...], found integer 3");
}

TEST(SweepSpec, KeySweptTwice) {
  const std::string text =
      "[sweep.grid]\n"
      "\"optimizer.lr\" = [0.1]\n"
      "[sweep.zip]\n"
      "optimizer = { lr = [0.2] }\n";
  EXPECT_EQ(error_of(text), position(text, "[0.1]") +
                                ": sweep.grid.optimizer.lr: swept twice (also "
                                "sweep.zip.optimizer.lr at " +
                                position(text, "[0.2]") + "); sweep each setting once");
}

TEST(SweepSpec, KeysThatOverlap) {
  const std::string text =
      "[sweep.grid]\n"
      "optimizer = [{ lr = 0.1 }]\n"
      "\"optimizer.lr\" = [0.2]\n";
  EXPECT_EQ(error_of(text), position(text, "[0.2]") +
                                ": sweep.grid.optimizer.lr: overlaps the swept key "
                                "sweep.grid.optimizer at " +
                                position(text, "[{") + "; sweep each setting once");
}

TEST(SweepSpec, NameAndOutputCannotBeSwept) {
  for (const std::string key : {"\"experiment.name\"", "\"experiment.output\"", "experiment"}) {
    const std::string text = "[sweep.grid]\n" + key + " = [\"a\"]\n";
    const std::string message = error_of(text);
    EXPECT_EQ(message.rfind(position(text, "[\"a\"]") + ": sweep.grid.experiment", 0), 0u)
        << message;
    EXPECT_NE(message.find("cannot be swept: every trial runs in the sweep's one folder"),
              std::string::npos)
        << message;
  }
}

TEST(SweepSpec, TooManyTrials) {
  const std::string text =
      "[sweep.grid]\n"
      "a = [1,2,3,4,5,6,7,8,9,10]\nb = [1,2,3,4,5,6,7,8,9,10]\n"
      "c = [1,2,3,4,5,6,7,8,9,10]\nd = [1,2,3,4,5,6,7,8,9,10]\ne = [1, 2]\n";
  EXPECT_NE(error_of(text).find("sweep: expands to more than 10000 trials"), std::string::npos);
}

TEST(SweepSpec, SweptKeyAlsoGivenBySet) {
  const std::string text = "[sweep.grid]\n\"optimizer.lr\" = [0.1, 0.2]\n";
  const SweepSpec spec = parse(text);
  EXPECT_NO_THROW(check_sweep_against_overrides(spec, {"epochs=2", "stages.train.optimizer.lr=1"}));
  for (const std::string argument : {"optimizer.lr=0.3", "optimizer = {lr=0.3}", "optimizer=x"}) {
    try {
      check_sweep_against_overrides(spec, {"epochs=2", argument});
      ADD_FAILURE() << argument;
    } catch (const ConfigError& e) {
      EXPECT_EQ(std::string(e.what()),
                position(text, "[0.1") + ": sweep.grid.optimizer.lr: also given by --set " +
                    argument +
                    "; a swept key cannot be overridden as well (remove the --set, or the key "
                    "from [sweep.grid]; exprun run --trial N runs chosen trials)");
    }
  }
}

TEST(SweepReport, TrialFoldersAreNumberedWithThreeDigits) {
  EXPECT_EQ(trial_dir_name(0), "trial-000");
  EXPECT_EQ(trial_dir_name(42), "trial-042");
  EXPECT_EQ(trial_dir_name(1234), "trial-1234");
}

// ---------------------------------------------------------------- trials through the loader

const Registry& registry() { return test::built_plugins(); }

class SweepLoadTest : public ::testing::Test {
 protected:
  test::TempDir dir_{"exprun-sweep"};
  fs::path file_ = dir_ / "s.toml";

  std::string write(const std::string& sweep, const std::string& stage_extra = "") {
    test::TinyExperiment e;
    e.stage_extra = stage_extra;
    const std::string text = e.toml() + "\n" + sweep;
    test::write_text(file_, text);
    return text;
  }
  std::string at(const std::string& text, const std::string& needle) {
    return position(text, needle, file_.string());
  }
  std::string load_error(const std::vector<std::size_t>& chosen = {},
                         const std::vector<std::string>& overrides = {}) {
    try {
      load_trials(read_sweep_file(file_.string()), chosen, overrides, registry());
    } catch (const ConfigError& e) {
      return e.what();
    }
    ADD_FAILURE() << "no ConfigError";
    return "";
  }
};

TEST_F(SweepLoadTest, EachTrialIsTheFileWithItsValuesAsOverrides) {
  write("[sweep.grid]\n\"optimizer.lr\" = [1e-3, 3e-4]\n\"stages.train.epochs\" = [1, 3]\n");
  const auto trials =
      load_trials(read_sweep_file(file_.string()), {}, {"data.train_count=12"}, registry());
  ASSERT_EQ(trials.size(), 4u);
  EXPECT_DOUBLE_EQ(trials[1].experiment.stages[0].optimizer.lr, 1e-3);
  EXPECT_EQ(trials[1].experiment.stages[0].epochs, 3);
  EXPECT_DOUBLE_EQ(trials[2].experiment.stages[0].optimizer.lr, 3e-4);
  EXPECT_EQ(trials[2].experiment.stages[0].epochs, 1);
  // The user's --set come first, then the trial's values, as report.json records them.
  EXPECT_EQ(trials[2].experiment.overrides,
            (std::vector<std::string>{"data.train_count=12", "optimizer.lr=0.0003",
                                      "stages.train.epochs=1"}));
  // Untouched keys keep the file's values; the user's --set still applies.
  EXPECT_EQ(trials[3].experiment.stages[0].memory.micro_batch, 2);
  EXPECT_EQ(std::get<std::int64_t>(
                trials[3].experiment.stages[0].data.reader.params.values().at("train_count")),
            12);
}

TEST_F(SweepLoadTest, ChosenTrialsRunInIndexOrderOnce) {
  write("[sweep.grid]\n\"optimizer.lr\" = [0.001, 0.002, 0.003]\n");
  const auto trials = load_trials(read_sweep_file(file_.string()), {2, 0, 2}, {}, registry());
  ASSERT_EQ(trials.size(), 2u);
  EXPECT_EQ(trials[0].trial.index, 0u);
  EXPECT_EQ(trials[1].trial.index, 2u);
  EXPECT_EQ(load_error({3}), "--trial 3: " + file_.string() + " sweeps 3 trials, numbered 0 to 2");
}

TEST_F(SweepLoadTest, TheLoaderIgnoresTheSweep) {
  write("[sweep.grid]\n\"optimizer.lr\" = [0.5]\n");
  const Experiment e = load_experiment(file_.string(), {}, registry());
  EXPECT_DOUBLE_EQ(e.stages[0].optimizer.lr, 2e-3);
}

TEST_F(SweepLoadTest, FirstTrialForSingleConfigurationCommands) {
  write("[sweep.zip]\n\"memory.micro_batch\" = [1, 4]\n\"optimizer.lr\" = [0.01, 0.02]\n");
  bool swept = false;
  Experiment e = load_first_trial(file_.string(), {}, registry(), &swept);
  EXPECT_TRUE(swept);
  EXPECT_EQ(e.stages[0].memory.micro_batch, 1);
  EXPECT_DOUBLE_EQ(e.stages[0].optimizer.lr, 0.01);
  // There, --set beats the swept value.
  e = load_first_trial(file_.string(), {"memory.micro_batch=4"}, registry(), &swept);
  EXPECT_EQ(e.stages[0].memory.micro_batch, 4);
  write("");
  e = load_first_trial(file_.string(), {}, registry(), &swept);
  EXPECT_FALSE(swept);
  EXPECT_EQ(e.stages[0].memory.micro_batch, 2);
}

TEST_F(SweepLoadTest, InvalidSweptValueNamesTheTrialAndTheValue) {
  const std::string text = write("[sweep.grid]\n\"optimizer.lr\" = [1e-3, -1.0]\n");
  EXPECT_EQ(load_error(), "sweep trial 1 (optimizer.lr=-1.0): " + at(text, "-1.0") +
                              ": stages.train.optimizer.lr: expected a number in [0, 10], found "
                              "number -1");
}

TEST_F(SweepLoadTest, SweptKeyThatIsNotAnExperimentKey) {
  const std::string text = write("[sweep.zip]\n\"optimizer.lrr\" = [0.1]\n");
  const std::string message = load_error();
  EXPECT_EQ(message.rfind("sweep trial 0 (optimizer.lrr=0.1): " + at(text, "0.1]") +
                              ": stages.train.optimizer.lrr: unknown key 'lrr'",
                          0),
            0u)
      << message;
  EXPECT_NE(message.find("did you mean 'lr'?"), std::string::npos) << message;
}

TEST_F(SweepLoadTest, SweptStageThatDoesNotExist) {
  const std::string text = write("[sweep.grid]\n\"stages.trian.epochs\" = [1]\n");
  EXPECT_EQ(load_error(), "sweep trial 0 (stages.trian.epochs=1): " +
                              value_position(text, "\"stages.trian.epochs\" = [", file_.string()) +
                              ": no stage is named \"trian\"; did you mean 'train'?");
}

TEST_F(SweepLoadTest, ErrorOfACombinationNamesEveryValueOfTheTrial) {
  // Each value is valid; trial 1's epochs are fewer than the file's warm-up epochs.
  const std::string text =
      write("[sweep.grid]\n\"stages.train.epochs\" = [2, 1]\n\"optimizer.lr\" = [0.01]\n",
            "schedule.warmup_epochs = 2");
  EXPECT_EQ(load_error(), "sweep trial 1 (stages.train.epochs=1, optimizer.lr=0.01): " +
                              value_position(text, "schedule.warmup_epochs = ", file_.string()) +
                              ": stages.train.schedule.warmup_epochs: expected at most the "
                              "stage's 1 epochs, found 2");
}

TEST_F(SweepLoadTest, SetOfASweptKeyIsAnError) {
  write("[sweep.grid]\n\"memory.micro_batch\" = [1, 2]\n");
  EXPECT_NE(load_error({}, {"memory.micro_batch=4"})
                .find("sweep.grid.memory.micro_batch: also given by --set memory.micro_batch=4"),
            std::string::npos);
}

// Each of these ran trials that differed only in the list's values and reported those values,
// while every trial trained with the same one.
TEST_F(SweepLoadTest, SweptKeyThatAMoreSpecificKeyOverridesEverywhereChangesNothing) {
  const std::string nothing =
      "sweep.grid.optimizer.lr: changes nothing: trial 0 with optimizer.lr=0.005 in place of "
      "0.001 resolves to the same configuration";
  // Swept as well for the only stage.
  std::string text = write(
      "[sweep.grid]\n\"optimizer.lr\" = [1e-3, 5e-3]\n\"stages.train.optimizer.lr\" = [2e-3]\n");
  EXPECT_EQ(load_error().rfind(at(text, "[1e-3") + ": " + nothing, 0), 0u) << load_error();
  // Given by --set for the only stage.
  write("[sweep.grid]\n\"optimizer.lr\" = [1e-3, 5e-3]\n");
  EXPECT_CONTAINS(load_error({}, {"stages.train.optimizer.lr=0.5"}), nothing);
  EXPECT_CONTAINS(load_error({1}, {"stages.train.optimizer.lr=0.5"}), nothing);
  // A defaults key under the stage's own value.
  write("[sweep.grid]\n\"defaults.optimizer.lr\" = [1e-3, 5e-3]\n", "optimizer.lr = 0.002");
  EXPECT_CONTAINS(load_error(), "sweep.grid.defaults.optimizer.lr: changes nothing");
  // Zip keys are changed one at a time too.
  write("[sweep.zip]\n\"optimizer.lr\" = [1e-3, 5e-3]\n\"stages.train.epochs\" = [1, 2]\n",
        "optimizer.lr = 0.002");
  EXPECT_CONTAINS(load_error({}, {"stages.train.optimizer.lr=0.5"}),
                  "sweep.zip.optimizer.lr: changes nothing");
}

TEST_F(SweepLoadTest, SweptKeyThatSomeStageTakesIsFine) {
  // The stage's own --set wins there (documented precedence), but a second stage takes the
  // swept value, so the trials differ.
  write(
      "[sweep.grid]\n\"optimizer.lr\" = [1e-3, 5e-3]\n"
      "[[stage]]\nname = \"second\"\nepochs = 1\n");
  const auto trials = load_trials(read_sweep_file(file_.string()), {},
                                  {"stages.train.optimizer.lr=0.5"}, registry());
  ASSERT_EQ(trials.size(), 2u);
  EXPECT_DOUBLE_EQ(trials[1].experiment.stages[1].optimizer.lr, 5e-3);
  // A zip list of one value, however often listed, has nothing to compare.
  write("[sweep.zip]\n\"optimizer.lr\" = [1e-3, 1e-3]\nepochs = [1, 2]\n");
  EXPECT_EQ(load_trials(read_sweep_file(file_.string()), {}, {"stages.train.optimizer.lr=0.5"},
                        registry())
                .size(),
            2u);
}

// ---------------------------------------------------------------- through the built exprun

test::ProcessResult exprun(std::vector<std::string> args, const fs::path& cwd) {
  test::ProcessOptions options;
  options.cwd = cwd;
  options.timeout_s = 300;  // three tiny trials; the machine may be shared
  return test::run_exprun(std::move(args), std::move(options));
}

// The one error line of a failed command, without "exprun: error: ".
std::string error_line(const test::ProcessResult& r) {
  const auto lines = test::split_lines(r.err);
  EXPECT_FALSE(lines.empty()) << r.describe();
  if (lines.empty()) return "";
  const std::string& last = lines.back();
  const std::string prefix = "exprun: error: ";
  EXPECT_EQ(last.rfind(prefix, 0), 0u) << r.describe();
  return last.substr(std::min(prefix.size(), last.size()));
}

class SweepCliTest : public ::testing::Test {
 protected:
  test::TempDir dir_{"exprun-sweep-cli"};
  fs::path file_ = dir_ / "tiny.toml";
  fs::path results_ = dir_ / "results";

  // Three trials of the tiny experiment; the middle one asks the batch tuner to choose on the
  // CPU without a memory budget, so its stage fails when it is built (a run-time failure, not
  // a config error).
  std::string write_three_trials() {
    test::TinyExperiment e;
    e.output = results_;
    const std::string text = e.toml() +
                             "\n[sweep.zip]\n"
                             "\"memory.micro_batch\" = [4, \"auto\", 2]\n"
                             "\"memory.strategies\" = [[\"gradient_accumulation\"], [], "
                             "[\"gradient_accumulation\"]]\n";
    test::write_text(file_, text);
    return text;
  }
};

TEST_F(SweepCliTest, FailingTrialIsRecordedAndTheOthersRun) {
  const std::string text = write_three_trials();
  const auto r = exprun({"run", file_.string(), "--set", "epochs=1"}, dir_.path());
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  test::expect_no_crash(r);

  // The sweep directory: a run id like any run's, the file, sweep.json, one folder per trial.
  std::vector<fs::path> made;
  for (const auto& entry : fs::directory_iterator(results_ / "tiny")) made.push_back(entry.path());
  ASSERT_EQ(made.size(), 1u);
  const fs::path sweep_dir = made[0];
  EXPECT_TRUE(std::regex_match(sweep_dir.filename().string(), std::regex(R"(\d{8}-\d{6})")));
  EXPECT_EQ(test::read_text(sweep_dir / "experiment.toml"),
            "# " + file_.string() + " as given, --set epochs=1\n" + text);
  for (const char* trial : {"trial-000", "trial-001", "trial-002"}) {
    EXPECT_TRUE(fs::is_regular_file(sweep_dir / trial / "report.json")) << trial;
  }
  EXPECT_TRUE(fs::is_regular_file(sweep_dir / "trial-000/train/checkpoints/best.pt"));

  // stdout: the headline, the table, the failed trial's error.
  const auto out = test::split_lines(r.out);
  ASSERT_EQ(out.size(), 6u) << r.out;
  EXPECT_EQ(out[0],
            "sweep FAILED (1 of 3 trial(s) failed): " + (sweep_dir / "sweep.json").string());
  EXPECT_EQ(out[1].rfind("trial  memory.micro_batch  memory.strategies  ", 0), 0u) << out[1];
  EXPECT_TRUE(std::regex_search(
      out[2],
      std::regex(R"(^0 +4 +\["gradient_accumulation"\] +completed +\d+\.\d{3} mm +\d+\.\d%)")))
      << out[2];
  EXPECT_TRUE(std::regex_search(out[3], std::regex(R"(^1 +"auto" +\[\] +failed +- +- +- +- )")))
      << out[3];
  EXPECT_TRUE(
      std::regex_search(out[4], std::regex(R"(^2 +2 +\["gradient_accumulation"\] +completed )")))
      << out[4];
  EXPECT_EQ(out[5].rfind("trial 1 failed: stage train: ", 0), 0u) << out[5];
  EXPECT_CONTAINS(out[5], "micro_batch = \"auto\" on cpu needs a memory budget");

  // sweep.json, field by field as docs/report.md lists them.
  const json sweep = json::parse(test::read_text(sweep_dir / "sweep.json"));
  EXPECT_EQ(sweep["schema_version"], 1);
  EXPECT_EQ(sweep["kind"], "sweep");
  EXPECT_EQ(sweep["experiment"], "tiny");
  EXPECT_EQ(sweep["sweep_id"], sweep_dir.filename().string());
  EXPECT_EQ(sweep["source_file"], file_.string());
  EXPECT_EQ(sweep["overrides"], json::array({"epochs=1"}));
  EXPECT_EQ(sweep["mode"], "zip");
  EXPECT_EQ(sweep["keys"], json::array({"memory.micro_batch", "memory.strategies"}));
  EXPECT_EQ(sweep["trial_count"], 3);
  EXPECT_EQ(sweep["status"], "failed");
  ASSERT_TRUE(sweep["started_at"].is_string());
  // The sweep id is the start time: one clock reading names the folder and fills started_at.
  const std::string started = sweep["started_at"].get<std::string>();
  EXPECT_EQ(sweep_dir.filename().string().substr(0, 15),
            started.substr(0, 4) + started.substr(5, 2) + started.substr(8, 2) + "-" +
                started.substr(11, 2) + started.substr(14, 2) + started.substr(17, 2));
  EXPECT_TRUE(sweep["finished_at"].is_string());
  EXPECT_GT(sweep["wall_time_s"].get<double>(), 0.0);
  ASSERT_EQ(sweep["trials"].size(), 3u);
  const std::vector<json> micro = {4, "auto", 2};
  const std::vector<std::string> micro_set = {"4", "\"auto\"", "2"};
  for (std::size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE("trial " + std::to_string(i));
    const json t = sweep["trials"][i];
    EXPECT_EQ(t["index"], i);
    EXPECT_EQ(t["run_dir"], "trial-00" + std::to_string(i));
    EXPECT_EQ(t["values"]["memory.micro_batch"], micro[i]);
    EXPECT_EQ(t["set"][0], "memory.micro_batch=" + micro_set[i]);
    EXPECT_GT(t["wall_time_s"].get<double>(), 0.0);
    ASSERT_EQ(t["stages"].size(), 1u);
    const json s = t["stages"][0];
    EXPECT_EQ(s["name"], "train");
    // The trial's own report records the user's --set and then the swept values.
    const json report =
        json::parse(test::read_text(sweep_dir / t["run_dir"].get<std::string>() / "report.json"));
    EXPECT_EQ(report["run_id"], t["run_dir"]);
    json overrides = json::array({"epochs=1"});
    for (const auto& a : t["set"]) overrides.push_back(a);
    EXPECT_EQ(report["config"]["overrides"], overrides);
    if (i == 1) {
      EXPECT_EQ(t["values"]["memory.strategies"], json::array());
      EXPECT_EQ(t["status"], "failed");
      EXPECT_EQ(t["error"], report["error"]);
      EXPECT_CONTAINS(t["error"].get<std::string>(), "needs a memory budget");
      EXPECT_EQ(s["status"], "failed");
      EXPECT_FALSE(s.contains("best_val_mre_mm"));
      continue;
    }
    EXPECT_EQ(t["values"]["memory.strategies"], json::array({"gradient_accumulation"}));
    EXPECT_EQ(t["status"], "completed");
    EXPECT_TRUE(t["error"].is_null());
    EXPECT_EQ(s["status"], "completed");
    EXPECT_EQ(s["epochs_completed"], 1);
    EXPECT_EQ(s["best_epoch"], report["stages"][0]["best_epoch"]);
    EXPECT_EQ(s["best_val_mre_mm"], report["stages"][0]["best"]["overall"]["mre"]);
    EXPECT_EQ(s["best_val_sd_mm"], report["stages"][0]["best"]["overall"]["sd"]);
    EXPECT_EQ(s["best_val_sdr"], report["stages"][0]["best"]["overall"]["sdr"]);
    EXPECT_EQ(s["baseline_mre_mm"], report["stages"][0]["mean_shape_baseline"]["overall"]["mre"]);
    EXPECT_TRUE(s["peak_memory_bytes"].is_number_integer()) << s;
    EXPECT_TRUE(s["train_images_per_second"].is_number()) << s;
    EXPECT_EQ(s["batch_plan"], json({{"effective_batch", 4},
                                     {"micro_batch", micro[i]},
                                     {"accumulation_steps", 4 / micro[i].get<int>()},
                                     {"chosen_by", "config"}}));
  }
}

TEST_F(SweepCliTest, TrialOptionRunsOnlyTheChosenTrial) {
  write_three_trials();
  // Trial 1 fails as soon as its stage is built, so this trains nothing.
  const auto r = exprun({"run", file_.string(), "--trial", "1"}, dir_.path());
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  std::vector<fs::path> made;
  for (const auto& entry : fs::directory_iterator(results_ / "tiny")) made.push_back(entry.path());
  ASSERT_EQ(made.size(), 1u);
  EXPECT_FALSE(fs::exists(made[0] / "trial-000"));
  EXPECT_TRUE(fs::is_directory(made[0] / "trial-001"));
  const json sweep = json::parse(test::read_text(made[0] / "sweep.json"));
  EXPECT_EQ(sweep["trial_count"], 3);
  ASSERT_EQ(sweep["trials"].size(), 1u);
  EXPECT_EQ(sweep["trials"][0]["index"], 1);
  EXPECT_EQ(sweep["trials"][0]["status"], "failed");
}

TEST_F(SweepCliTest, ConfigErrorInAnyTrialStopsBeforeAnythingRuns) {
  test::TinyExperiment e;
  e.output = results_;
  const std::string text = e.toml() + "\n[sweep.grid]\n\"memory.micro_batch\" = [2, 8]\n";
  test::write_text(file_, text);
  for (const std::string command : {"run", "plan"}) {
    const auto r = exprun({command, file_.string()}, dir_.path());
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_EQ(error_line(r),
              "sweep trial 1 (memory.micro_batch=8): " + position(text, "8]", file_.string()) +
                  ": stages.train.memory.micro_batch: expected an integer in [1, 4], "
                  "found integer 8");
    EXPECT_FALSE(fs::exists(results_)) << "nothing may be written";
  }
}

TEST_F(SweepCliTest, UsageErrors) {
  write_three_trials();
  auto r = exprun({"run", file_.string(), "--set", "memory.micro_batch=1"}, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(error_line(r),
                  "sweep.zip.memory.micro_batch: also given by --set memory.micro_batch=1");
  r = exprun({"run", file_.string(), "--trial", "7"}, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_EQ(error_line(r), "--trial 7: " + file_.string() + " sweeps 3 trials, numbered 0 to 2");
  r = exprun({"plan", file_.string(), "--trial", "x"}, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(error_line(r), "--trial x: expected a trial number");
  EXPECT_FALSE(fs::exists(results_));

  test::TinyExperiment plain;
  plain.output = results_;
  test::write_text(file_, plain.toml());
  r = exprun({"plan", file_.string(), "--trial", "0"}, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_EQ(error_line(r), "--trial 0: " + file_.string() +
                               " has no [sweep] table; --trial picks trials of a sweep");
}

TEST_F(SweepCliTest, PlanListsTheTrialsAndBuildsThem) {
  const std::string text = write_three_trials();
  // Three trials: plan builds each, and trial 1 cannot be built.
  auto r = exprun({"plan", file_.string()}, dir_.path());
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  test::expect_no_crash(r);
  const auto out = test::split_lines(r.out);
  ASSERT_GE(out.size(), 6u) << r.out;
  EXPECT_EQ(out[0], "launch      single process") << "once, above the trials";
  EXPECT_EQ(out[1], "sweep  (" + position(text, "[sweep.zip]", file_.string()) +
                        "): 3 trial(s), zip of memory.micro_batch, memory.strategies");
  EXPECT_EQ(out[2],
            "  trial 0    --set memory.micro_batch=4 --set "
            "'memory.strategies=[\"gradient_accumulation\"]'");
  EXPECT_EQ(out[3],
            "  trial 1    --set 'memory.micro_batch=\"auto\"' --set 'memory.strategies=[]'");
  EXPECT_EQ(out[4],
            "  trial 2    --set memory.micro_batch=2 --set "
            "'memory.strategies=[\"gradient_accumulation\"]'");
  EXPECT_EQ(out[5], "every trial's configuration is valid");
  EXPECT_CONTAINS(
      r.out, "\ntrial 0: memory.micro_batch=4, memory.strategies=[\"gradient_accumulation\"]\n");
  EXPECT_CONTAINS(r.out, "micro-batch 4 x 1 accumulation");
  EXPECT_EQ(error_line(r).rfind(
                "sweep trial 1 (memory.micro_batch=\"auto\", memory.strategies=[]): " +
                    position(text, "[[stage]]", file_.string()) +
                    ": stages.train.memory.budget: micro_batch = \"auto\" on cpu needs a memory "
                    "budget",
                0),
            0u)
      << r.err;

  // --trial builds only the trials named.
  r = exprun({"plan", file_.string(), "--trial", "0,2"}, dir_.path());
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_CONTAINS(r.out, "the configuration of each chosen trial is valid\n");
  EXPECT_CONTAINS(r.out, "\ntrial 0: memory.micro_batch=4, ");
  EXPECT_CONTAINS(r.out, "\ntrial 2: memory.micro_batch=2, ");
  EXPECT_NOT_CONTAINS(r.out, "\ntrial 1: ");
  EXPECT_CONTAINS(r.out, "micro-batch 2 x 2 accumulation");
  EXPECT_CONTAINS(r.out, "\nplan OK: 3 trial(s) of 1 stage(s); built: trial 0, 2\n");
  EXPECT_FALSE(fs::exists(results_)) << "plan writes nothing";
}

}  // namespace
}  // namespace exprun
