// The experiment loader: TOML syntax, the runner's own keys, plugin schemas, key-by-key
// inheritance from [defaults], and --set overrides. Plugin schemas come from a fake
// SchemaSource, so these tests load no plugin library.
#include <gtest/gtest.h>

#include <exprun/sdk/params.hpp>
#include <exprun/sdk/plugin.hpp>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "config/config_error.hpp"
#include "config/experiment_loader.hpp"
#include "test_support.hpp"
#include "train/stage_builder.hpp"
#include "util/text.hpp"

namespace exprun {
namespace {

using sdk::ParamSchema;
using sdk::PluginKind;

// Two or three plugins of each kind, with the kinds of parameters real plugins declare.
class FakePlugins : public SchemaSource {
 public:
  FakePlugins() {
    add(PluginKind::Dataset, "synthetic",
        ParamSchema()
            .add_int("train_count", 32, "images in the training split")
            .min(1)
            .add_int("valid_count", 8, "images in the validation split")
            .min(1)
            .add_float("noise", 0.0, "noise amplitude")
            .min(0)
            .max(1));
    add(PluginKind::Dataset, "aariz",
        ParamSchema()
            .add_string("root", std::nullopt, "the dataset folder")
            .add_string("annotator", "mean", "whose annotations")
            .choices({"senior", "junior", "mean"}));
    add(PluginKind::Model, "hrnet",
        ParamSchema()
            .add_int("width", 32, "channels of the highest-resolution branch")
            .min(1)
            .add_int_list("num_modules", std::vector<std::int64_t>{1, 1, 1}, "modules per stage")
            .length(3)
            .min(1)
            .add_bool("pretrained", false, "start from ImageNet weights"));
    add(PluginKind::Loss, "adaptive_wing",
        ParamSchema()
            .add_float("alpha", 2.1, "exponent")
            .min(0)
            .add_float("omega", 14.0, "scale")
            .min(0)
            .add_float_map("emphasis", std::map<std::string, double>{}, "extra weight per landmark")
            .min(0));
    add(PluginKind::Loss, "mse", ParamSchema());
    add(PluginKind::Memory, "mixed_precision",
        ParamSchema().add_string("dtype", "auto", "half type").choices({"auto", "fp16", "bf16"}));
    add(PluginKind::Memory, "gradient_accumulation", ParamSchema());
  }

  sdk::ParamSchema schema(PluginKind kind, const std::string& name) const override {
    auto it = schemas_.find({kind, name});
    if (it != schemas_.end()) return it->second;
    std::vector<std::string> names;
    for (const auto& [key, schema] : schemas_)
      if (key.first == kind) names.push_back(key.second);
    throw std::runtime_error("no " + std::string(sdk::kind_folder(kind)) + " plugin named \"" +
                             name + "\"" + did_you_mean(name, names));
  }

 private:
  void add(PluginKind kind, const std::string& name, ParamSchema schema) {
    schemas_[{kind, name}] = std::move(schema);
  }
  std::map<std::pair<PluginKind, std::string>, ParamSchema> schemas_;
};

// A complete, valid experiment: two stages inheriting everything else from [defaults].
const std::string kBase = R"([experiment]
name = "unit"
seed = 3

[defaults]
device = "cpu"

[defaults.data]
plugin = "synthetic"
image_size = [128, 160]
sigma = 1.5
train_count = 40

[defaults.model]
plugin = "hrnet"
width = 8

[defaults.loss]
plugin = "adaptive_wing"

[defaults.memory]
effective_batch = 8

[defaults.optimizer]
name = "adamw"
lr = 1e-3
weight_decay = 0.05

[defaults.schedule]
warmup_epochs = 1

[[stage]]
name = "pretrain"
epochs = 10

[[stage]]
name = "finetune"
epochs = 4
)";

// 1-based line of the first line containing `needle`.
int line_of(const std::string& text, const std::string& needle) {
  const auto pos = text.find(needle);
  EXPECT_NE(pos, std::string::npos) << "test text lacks " << needle;
  int line = 1;
  for (std::size_t i = 0; i < pos; ++i)
    if (text[i] == '\n') ++line;
  return line;
}

// Replaces the one occurrence of `from` in `text`.
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << "test text lacks " << from;
  if (pos != std::string::npos) text.replace(pos, from.size(), to);
  return text;
}

// The base experiment with `extra` added at the end of the stage named `stage`.
std::string with_stage_lines(const std::string& stage, const std::string& extra) {
  if (stage == "finetune") return kBase + extra;
  return replaced(kBase, "epochs = 10\n", "epochs = 10\n" + extra);
}

Experiment parse(const std::string& text, const std::vector<std::string>& overrides = {}) {
  static const FakePlugins plugins;
  return parse_experiment(text, "unit.toml", overrides, plugins);
}

// The ConfigError message parsing `text` raises; fails the test when it parses.
std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    parse(text, overrides);
  } catch (const ConfigError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected ConfigError, got another exception: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected a ConfigError, but the experiment parsed";
  return "";
}

std::string at_line(int line) { return "unit.toml:" + std::to_string(line) + ":"; }

const StageConfig& stage_named(const Experiment& e, const std::string& name) {
  for (const auto& s : e.stages)
    if (s.name == name) return s;
  throw std::runtime_error("no stage " + name);
}

// ---------------------------------------------------------------- a valid file

TEST(ConfigLoad, ValidExperimentResolvesEveryDefault) {
  const Experiment e = parse(kBase);
  EXPECT_EQ(e.name, "unit");
  EXPECT_EQ(e.seed, 3u);
  EXPECT_EQ(e.threads, 0);
  EXPECT_EQ(e.output_dir, "results");
  EXPECT_EQ(e.source_file, "unit.toml");
  EXPECT_EQ(e.source_text, kBase);
  ASSERT_EQ(e.stages.size(), 2u);

  const StageConfig& s = e.stages[0];
  EXPECT_EQ(s.name, "pretrain");
  EXPECT_EQ(s.epochs, 10);
  EXPECT_EQ(s.device, "cpu");
  EXPECT_EQ(s.where, at_line(line_of(kBase, "[[stage]]")) + "1");

  EXPECT_EQ(s.data.input_width, 128);
  EXPECT_EQ(s.data.input_height, 160);
  EXPECT_DOUBLE_EQ(s.data.sigma, 1.5);
  EXPECT_TRUE(s.data.workers_auto);
  EXPECT_EQ(s.data.channels, 1);
  EXPECT_EQ(s.data.train_split, "train");
  EXPECT_EQ(s.data.val_split, "valid");
  EXPECT_TRUE(s.data.augment.enabled);
  EXPECT_DOUBLE_EQ(s.data.augment.rotation_deg, 10.0);

  EXPECT_EQ(s.data.reader.kind, PluginKind::Dataset);
  EXPECT_EQ(s.data.reader.name, "synthetic");
  EXPECT_EQ(s.data.reader.params.get_int("train_count"), 40);
  EXPECT_EQ(s.data.reader.params.get_int("valid_count"), 8);  // schema default
  EXPECT_DOUBLE_EQ(s.data.reader.params.get_float("noise"), 0.0);
  // Runner keys are not handed to the plugin.
  EXPECT_FALSE(s.data.reader.params.has("sigma"));
  EXPECT_FALSE(s.data.reader.params.has("plugin"));

  EXPECT_EQ(s.model.name, "hrnet");
  EXPECT_EQ(s.model.params.get_int("width"), 8);
  EXPECT_EQ(s.model.params.get_int_list("num_modules"), (std::vector<std::int64_t>{1, 1, 1}));
  EXPECT_FALSE(s.model.params.get_bool("pretrained"));
  EXPECT_EQ(s.loss.name, "adaptive_wing");
  EXPECT_DOUBLE_EQ(s.loss.params.get_float("alpha"), 2.1);
  EXPECT_DOUBLE_EQ(s.loss.params.get_float("omega"), 14.0);
  EXPECT_TRUE(s.loss.params.get_float_map("emphasis").empty());

  EXPECT_TRUE(s.memory.strategies.empty());
  EXPECT_EQ(s.memory.effective_batch, 8);
  EXPECT_EQ(s.memory.micro_batch, 8);  // defaults to the effective batch

  EXPECT_EQ(s.optimizer.name, "adamw");
  EXPECT_DOUBLE_EQ(s.optimizer.lr, 1e-3);
  EXPECT_DOUBLE_EQ(s.optimizer.weight_decay, 0.05);
  EXPECT_EQ(s.optimizer.betas, (std::vector<double>{0.9, 0.999}));
  EXPECT_DOUBLE_EQ(s.schedule.warmup_epochs, 1.0);
  EXPECT_EQ(s.schedule.decay, "cosine");
  EXPECT_DOUBLE_EQ(s.schedule.min_lr, 0.0);

  EXPECT_EQ(e.stages[1].name, "finetune");
  EXPECT_EQ(e.stages[1].epochs, 4);
}

TEST(ConfigLoad, LoadExperimentReadsTheFile) {
  test::TempDir dir;
  const auto path = dir / "exp.toml";
  test::write_text(path, kBase);
  const FakePlugins plugins;
  const Experiment e = load_experiment(path.string(), {}, plugins);
  EXPECT_EQ(e.source_file, path.string());
  EXPECT_EQ(e.source_text, kBase);
  ASSERT_EQ(e.stages.size(), 2u);
  EXPECT_EQ(e.stages[0].where,
            path.string() + ":" + std::to_string(line_of(kBase, "[[stage]]")) + ":1");
}

TEST(ConfigLoad, MissingFileIsAConfigError) {
  test::TempDir dir;
  const FakePlugins plugins;
  const std::string path = (dir / "absent.toml").string();
  try {
    load_experiment(path, {}, plugins);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": cannot open the experiment file");
  }
}

// A folder used to read as an empty file: "missing required table [experiment]".
TEST(ConfigLoad, AFolderIsNotAnExperimentFile) {
  test::TempDir dir;
  const FakePlugins plugins;
  try {
    load_experiment(dir.path().string(), {}, plugins);
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              dir.path().string() + ": is a folder; expected an experiment file (.toml)");
  }
}

TEST(ConfigLoad, AdamDefaultsDifferFromAdamw) {
  const auto e = parse(replaced(replaced(kBase, "name = \"adamw\"", "name = \"adam\""),
                                "weight_decay = 0.05\n", ""));
  EXPECT_EQ(e.stages[0].optimizer.name, "adam");
  EXPECT_DOUBLE_EQ(e.stages[0].optimizer.weight_decay, 0.0);
  const auto w = parse(replaced(kBase, "weight_decay = 0.05\n", ""));
  EXPECT_DOUBLE_EQ(w.stages[0].optimizer.weight_decay, 1e-2);  // adamw's own default
}

TEST(ConfigLoad, AdamAndAdamwStepFusedUnlessTurnedOff) {
  const auto e = parse(with_stage_lines("finetune", "optimizer.fused = false\n"));
  EXPECT_TRUE(e.stages[0].optimizer.fused);
  EXPECT_FALSE(e.stages[1].optimizer.fused);
  EXPECT_EQ(to_json(e)["stages"][1]["optimizer"]["fused"], false);
}

TEST(ConfigLoad, FusedWithSgdNamesWhoseKeyItIs) {
  const std::string text = replaced(replaced(kBase, "name = \"adamw\"", "name = \"sgd\""),
                                    "weight_decay = 0.05\n", "fused = true\n");
  const std::string message = error_of(text);
  EXPECT_NE(message.find("'fused' is a setting of adam and adamw, but optimizer.name is \"sgd\""),
            std::string::npos)
      << message;
  EXPECT_NE(message.find(at_line(line_of(text, "fused = true"))), std::string::npos) << message;
}

TEST(ConfigLoad, ResolvedJsonHoldsTheDefaults) {
  const auto json = to_json(parse(kBase));
  EXPECT_EQ(json["experiment"]["name"], "unit");
  EXPECT_EQ(json["experiment"]["seed"], 3);
  ASSERT_EQ(json["stages"].size(), 2u);
  const auto& s = json["stages"][1];
  EXPECT_EQ(s["name"], "finetune");
  EXPECT_EQ(s["data"]["plugin"], "synthetic");
  EXPECT_EQ(s["data"]["image_size"], nlohmann::json({128, 160}));
  EXPECT_EQ(s["data"]["valid_count"], 8);
  EXPECT_EQ(s["model"]["num_modules"], nlohmann::json({1, 1, 1}));
  EXPECT_DOUBLE_EQ(s["loss"]["alpha"].get<double>(), 2.1);
  EXPECT_EQ(s["optimizer"]["name"], "adamw");
  EXPECT_EQ(s["memory"]["micro_batch"], 8);
}

// ---------------------------------------------------------------- syntax

TEST(ConfigSyntax, SyntaxErrorReportsFileLineAndColumn) {
  test::TempDir dir;
  const auto path = dir / "broken.toml";
  const std::string text = "[experiment]\nname = \"x\"\nseed = = 3\n";
  test::write_text(path, text);
  const FakePlugins plugins;
  try {
    load_experiment(path.string(), {}, plugins);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(path.string() + ":3:8: TOML syntax error: ", 0), 0u) << message;
  }
}

TEST(ConfigSyntax, UnterminatedStringPointsAtItsLine) {
  const std::string text = replaced(kBase, "name = \"finetune\"", "name = \"finetune");
  const std::string message = error_of(text);
  EXPECT_NE(message.find(at_line(line_of(text, "name = \"finetune"))), std::string::npos)
      << message;
  EXPECT_NE(message.find("TOML syntax error"), std::string::npos) << message;
}

// ---------------------------------------------------------------- types

TEST(ConfigTypes, WrongTypeNamesKeyPathExpectedFoundAndLine) {
  const std::string text = replaced(kBase, "epochs = 4", "epochs = \"ten\"");
  const std::string message = error_of(text);
  const int line = line_of(text, "epochs = \"ten\"");
  EXPECT_EQ(message, at_line(line) +
                         "10: stages.finetune.epochs: expected an integer in [1, 1e+06], found "
                         "string \"ten\"");
}

TEST(ConfigTypes, WrongTypeInDefaultsPointsAtTheDefaultsLine) {
  const std::string text = replaced(kBase, "sigma = 1.5", "sigma = \"wide\"");
  const std::string message = error_of(text);
  EXPECT_NE(message.find(at_line(line_of(text, "sigma = \"wide\""))), std::string::npos) << message;
  EXPECT_NE(message.find("data.sigma: expected a number in [0.1, 64], found string \"wide\""),
            std::string::npos)
      << message;
}

TEST(ConfigTypes, WorkersAreACountOrAuto) {
  const Experiment counted = parse(with_stage_lines("pretrain", "data.workers = 3\n"));
  EXPECT_FALSE(counted.stages[0].data.workers_auto);
  EXPECT_EQ(counted.stages[0].data.workers, 3);
  const Experiment automatic = parse(with_stage_lines("pretrain", "data.workers = \"auto\"\n"));
  EXPECT_TRUE(automatic.stages[0].data.workers_auto);
  EXPECT_EQ(to_json(automatic)["stages"][0]["data"]["workers"], "auto");
  EXPECT_EQ(to_json(counted)["stages"][0]["data"]["workers"], 3);
  const std::string message = error_of(with_stage_lines("pretrain", "data.workers = \"many\"\n"));
  EXPECT_NE(message.find("stages.pretrain.data.workers: expected \"auto\" or an integer in [0, "
                         "64], found string \"many\""),
            std::string::npos)
      << message;
}

TEST(ConfigTypes, FloatWhereIntegerExpected) {
  const std::string message = error_of(with_stage_lines("pretrain", "data.workers = 1.5\n"));
  EXPECT_NE(message.find("stages.pretrain.data.workers: expected an integer in [0, 64], found "
                         "number 1.5"),
            std::string::npos)
      << message;
}

TEST(ConfigTypes, IntegerWhereNumberExpectedIsAccepted) {
  const auto e = parse(replaced(kBase, "sigma = 1.5", "sigma = 3"));
  EXPECT_DOUBLE_EQ(e.stages[0].data.sigma, 3.0);
}

TEST(ConfigTypes, ImageSizeMustBeTwoIntegers) {
  const std::string text = replaced(kBase, "image_size = [128, 160]", "image_size = [128]");
  const std::string message = error_of(text);
  EXPECT_NE(message.find(at_line(line_of(text, "image_size"))), std::string::npos) << message;
  EXPECT_NE(message.find("data.image_size: expected a list of 2 integers in [16, 8192]"),
            std::string::npos)
      << message;
}

TEST(ConfigTypes, StageMustBeAnArrayOfTables) {
  const std::string text = "[experiment]\nname = \"x\"\n[stage]\nname = \"a\"\n";
  const std::string message = error_of(text);
  EXPECT_NE(message.find("stage: expected one or more [[stage]] tables, found table"),
            std::string::npos)
      << message;
}

// ---------------------------------------------------------------- unknown keys and plugins

TEST(ConfigUnknown, UnknownStageKeySuggestsTheCloseName) {
  const std::string text = with_stage_lines("finetune", "devcie = \"cpu\"\n");
  const std::string message = error_of(text);
  EXPECT_EQ(message, at_line(line_of(text, "devcie")) +
                         "10: stages.finetune.devcie: unknown key 'devcie' in 'stages.finetune'; "
                         "did you mean 'device'?");
}

TEST(ConfigUnknown, UnknownDefaultsKeySuggestsTheCloseName) {
  const std::string text = replaced(kBase, "device = \"cpu\"\n", "device = \"cpu\"\nepoch = 3\n");
  const std::string message = error_of(text);
  EXPECT_NE(message.find(at_line(line_of(text, "epoch = 3"))), std::string::npos) << message;
  EXPECT_NE(message.find("unknown key 'epoch' in 'defaults'; did you mean 'epochs'?"),
            std::string::npos)
      << message;
}

TEST(ConfigUnknown, UnknownExperimentKeySuggestsTheCloseName) {
  const std::string text = replaced(kBase, "seed = 3", "sede = 3");
  const std::string message = error_of(text);
  EXPECT_NE(message.find("experiment.sede: unknown key 'sede' in 'experiment'; did you mean "
                         "'seed'?"),
            std::string::npos)
      << message;
}

TEST(ConfigUnknown, UnknownTopLevelTable) {
  const std::string message = error_of(kBase + "[sweeep]\nx = 1\n");
  EXPECT_NE(message.find("unknown key 'sweeep' in the top level"), std::string::npos) << message;
}

TEST(ConfigUnknown, MisspeltRunnerDataKeySuggestsIt) {
  // Unknown keys in data go through the dataset plugin's schema, whose candidates include the
  // runner's own data keys.
  const std::string text = with_stage_lines("pretrain", "data.sigmma = 2.0\n");
  const std::string message = error_of(text);
  EXPECT_NE(message.find(at_line(line_of(text, "data.sigmma"))), std::string::npos) << message;
  EXPECT_NE(message.find("stages.pretrain.data.sigmma: unknown key 'sigmma': datasets/synthetic "
                         "has no such parameter; did you mean 'sigma'?"),
            std::string::npos)
      << message;
}

TEST(ConfigUnknown, MisspeltPluginParamSuggestsIt) {
  const std::string text = with_stage_lines("finetune", "loss.omgea = 10\n");
  const std::string message = error_of(text);
  EXPECT_NE(message.find("stages.finetune.loss.omgea: unknown key 'omgea': losses/adaptive_wing "
                         "has no such parameter; did you mean 'omega'?"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("exprun describe losses/adaptive_wing"), std::string::npos) << message;
}

TEST(ConfigUnknown, UnknownOptimizerKeySuggestsIt) {
  const std::string message =
      error_of(with_stage_lines("finetune", "optimizer.weight_decai = 0.1\n"));
  EXPECT_NE(message.find("unknown key 'weight_decai' in 'stages.finetune.optimizer'; did you mean "
                         "'weight_decay'?"),
            std::string::npos)
      << message;
}

TEST(ConfigUnknown, UnknownPluginNameListsCloseOnes) {
  const std::string text =
      replaced(kBase, "plugin = \"adaptive_wing\"", "plugin = \"adaptive_wingg\"");
  const std::string message = error_of(text);
  EXPECT_EQ(message, at_line(line_of(text, "adaptive_wingg")) +
                         "10: stages.pretrain.loss.plugin: no losses plugin named "
                         "\"adaptive_wingg\"; did you mean 'adaptive_wing'?");
}

TEST(ConfigUnknown, UnknownMemoryStrategyListsCloseOnes) {
  const std::string text = replaced(kBase, "effective_batch = 8",
                                    "effective_batch = 8\nstrategies = [\"mixed_precison\"]");
  const std::string message = error_of(text);
  EXPECT_NE(message.find(at_line(line_of(text, "strategies ="))), std::string::npos) << message;
  EXPECT_NE(message.find("memory.strategies: no memory plugin named \"mixed_precison\"; did you "
                         "mean 'mixed_precision'?"),
            std::string::npos)
      << message;
}

TEST(ConfigUnknown, StrategyTableWithoutListingIsRejected) {
  const std::string message = error_of(replaced(
      kBase, "effective_batch = 8", "effective_batch = 8\nmixed_precision = { dtype = \"fp16\" }"));
  EXPECT_NE(message.find("memory.mixed_precision: configures a strategy that memory.strategies "
                         "does not list"),
            std::string::npos)
      << message;
}

TEST(ConfigUnknown, StrategyParamsAreResolved) {
  const auto e = parse(replaced(
      kBase, "effective_batch = 8",
      "effective_batch = 8\nstrategies = [\"mixed_precision\", \"gradient_accumulation\"]\n"
      "mixed_precision = { dtype = \"bf16\" }"));
  const auto& strategies = e.stages[0].memory.strategies;
  ASSERT_EQ(strategies.size(), 2u);
  EXPECT_EQ(strategies[0].name, "mixed_precision");
  EXPECT_EQ(strategies[0].kind, PluginKind::Memory);
  EXPECT_EQ(strategies[0].params.get_string("dtype"), "bf16");
  EXPECT_EQ(strategies[1].name, "gradient_accumulation");
  EXPECT_TRUE(strategies[1].params.values().empty());
}

// ---------------------------------------------------------------- required keys

TEST(ConfigRequired, MissingEpochsPointsAtTheStage) {
  const std::string text = replaced(kBase, "epochs = 4\n", "");
  const std::string message = error_of(text);
  const auto header = text.rfind("[[stage]]");
  const int line = line_of(text.substr(0, header) + "@@", "@@");
  EXPECT_EQ(message, at_line(line) +
                         "1: stages.finetune.epochs: missing required key (an integer in [1, "
                         "1e+06])");
}

TEST(ConfigRequired, MissingStageName) {
  const std::string message = error_of(replaced(kBase, "name = \"finetune\"\n", ""));
  // Without a name the stage is named by its position in the file, as TOML paths write it.
  EXPECT_NE(message.find("stage[1].name: missing required key (a string)"), std::string::npos)
      << message;
}

TEST(ConfigRequired, MissingExperimentTable) {
  const std::string message =
      error_of(replaced(kBase, "[experiment]\nname = \"unit\"\nseed = 3\n", ""));
  EXPECT_NE(message.find("experiment: missing required table [experiment]"), std::string::npos)
      << message;
}

TEST(ConfigRequired, MissingStages) {
  const std::string message = error_of("[experiment]\nname = \"x\"\n");
  EXPECT_NE(message.find("missing [[stage]]: an experiment needs at least one stage"),
            std::string::npos)
      << message;
}

TEST(ConfigRequired, MissingLearningRate) {
  const std::string message = error_of(replaced(kBase, "lr = 1e-3\n", ""));
  EXPECT_NE(
      message.find("stages.pretrain.optimizer.lr: missing required key (a number in [0, 10])"),
      std::string::npos)
      << message;
}

TEST(ConfigRequired, MissingRequiredPluginParamNamesItAndThePlugin) {
  const std::string text = replaced(kBase, "plugin = \"synthetic\"\n", "plugin = \"aariz\"\n");
  const std::string no_count = replaced(text, "train_count = 40\n", "");
  const std::string message = error_of(no_count);
  EXPECT_NE(message.find(at_line(line_of(no_count, "[defaults.data]"))), std::string::npos)
      << message;
  EXPECT_NE(message.find("stages.pretrain.data: missing required parameter 'root' of "
                         "datasets/aariz (string: the dataset folder)"),
            std::string::npos)
      << message;
  const auto e = parse(no_count, {"data.root=/data/Aariz"});
  EXPECT_EQ(e.stages[0].data.reader.params.get_string("root"), "/data/Aariz");
  EXPECT_EQ(e.stages[0].data.reader.params.get_string("annotator"), "mean");
}

TEST(ConfigRequired, MissingDataTablePointsAtTheStage) {
  const std::string text =
      "[experiment]\nname = \"x\"\n\n[[stage]]\nname = \"a\"\nepochs = 1\n"
      "model = { plugin = \"hrnet\" }\nloss = { plugin = \"mse\" }\noptimizer = { lr = 0.1 }\n";
  const std::string message = error_of(text);
  EXPECT_NE(message.find("stages.a.data: missing required table (needs at least plugin = \"...\"; "
                         "`exprun plugins datasets` lists the choices)"),
            std::string::npos)
      << message;
}

// A table absent from every layer has no position of its own: the error points at the stage
// (here its [[stage]] header, line 4), never at "<input>:0:0".
TEST(ConfigRequired, MissingDataTableErrorHasTheStageLocation) {
  const std::string text =
      "[experiment]\nname = \"x\"\n\n[[stage]]\nname = \"a\"\nepochs = 1\n"
      "model = { plugin = \"hrnet\" }\nloss = { plugin = \"mse\" }\noptimizer = { lr = 0.1 }\n";
  const std::string message = error_of(text);
  EXPECT_EQ(message.rfind("unit.toml:4:1: stages.a.data: missing required table", 0), 0u)
      << message;
}

TEST(ConfigRequired, MissingPluginKey) {
  const std::string message = error_of(replaced(kBase, "plugin = \"hrnet\"\n", ""));
  EXPECT_NE(message.find("stages.pretrain.model.plugin: missing required key (a string)"),
            std::string::npos)
      << message;
}

// ---------------------------------------------------------------- ranges and choices

TEST(ConfigRange, OutOfRangeNumber) {
  const std::string text = replaced(kBase, "sigma = 1.5", "sigma = 100");
  const std::string message = error_of(text);
  EXPECT_EQ(message, at_line(line_of(text, "sigma = 100")) +
                         "9: stages.pretrain.data.sigma: expected a number in [0.1, 64], found "
                         "integer 100");
}

TEST(ConfigRange, NegativeWorkers) {
  const std::string message = error_of(with_stage_lines("pretrain", "data.workers = -1\n"));
  EXPECT_NE(message.find("stages.pretrain.data.workers: expected an integer in [0, 64], found "
                         "integer -1"),
            std::string::npos)
      << message;
}

TEST(ConfigRange, TwoChannelsRejected) {
  const std::string message = error_of(with_stage_lines("pretrain", "data.channels = 2\n"));
  EXPECT_NE(message.find("expected 1 (grey) or 3 (grey repeated), found 2"), std::string::npos)
      << message;
}

TEST(ConfigRange, MicroBatchAboveEffectiveBatch) {
  const std::string message = error_of(with_stage_lines("pretrain", "memory.micro_batch = 9\n"));
  EXPECT_NE(message.find("stages.pretrain.memory.micro_batch: expected an integer in [1, 8], "
                         "found integer 9"),
            std::string::npos)
      << message;
  const auto e = parse(with_stage_lines("pretrain", "memory.micro_batch = 2\n"));
  EXPECT_EQ(e.stages[0].memory.micro_batch, 2);
  EXPECT_EQ(e.stages[0].memory.effective_batch, 8);
}

TEST(ConfigMemory, AutoMicroBatchWithBudgetAndMargin) {
  const auto e = parse(with_stage_lines(
      "pretrain",
      "memory.micro_batch = \"auto\"\nmemory.budget = \"6GiB\"\nmemory.margin = 0.2\n"));
  const auto& m = e.stages[0].memory;
  EXPECT_TRUE(m.micro_batch_auto);
  EXPECT_EQ(m.micro_batch, 8);  // the effective batch until tuned
  EXPECT_EQ(m.budget_bytes, std::int64_t{6} << 30);
  EXPECT_DOUBLE_EQ(m.margin, 0.2);
  const auto json = to_json(e)["stages"][0]["memory"];
  EXPECT_EQ(json["micro_batch"], "auto");
  EXPECT_EQ(json["budget"], std::int64_t{6} << 30);
  EXPECT_EQ(json["margin"], 0.2);
  EXPECT_EQ(json["speed_tolerance"], 0.05);
  // The finetune stage keeps its integer micro-batch and has no budget.
  EXPECT_FALSE(e.stages[1].memory.micro_batch_auto);
  EXPECT_FALSE(e.stages[1].memory.budget_bytes);
}

TEST(ConfigMemory, MicroBatchStringOtherThanAuto) {
  const std::string message =
      error_of(with_stage_lines("pretrain", "memory.micro_batch = \"max\"\n"));
  EXPECT_NE(message.find("stages.pretrain.memory.micro_batch: expected \"auto\" or an integer "
                         "between 1 and memory.effective_batch, found string \"max\""),
            std::string::npos)
      << message;
}

TEST(ConfigMemory, BadBudget) {
  const std::string message = error_of(with_stage_lines(
      "pretrain", "memory.micro_batch = \"auto\"\nmemory.budget = \"six gigs\"\n"));
  EXPECT_NE(message.find("stages.pretrain.memory.budget: expected a memory size: bytes as an "
                         "integer, or a string such as \"6GiB\""),
            std::string::npos)
      << message;
}

TEST(ConfigMemory, BudgetWithoutAutoIsAnError) {
  const std::string message = error_of(with_stage_lines("pretrain", "memory.budget = \"6GiB\"\n"));
  EXPECT_NE(message.find("stages.pretrain.memory.budget: only applies to micro_batch = \"auto\""),
            std::string::npos)
      << message;
}

TEST(ConfigMemory, MarginOutOfRange) {
  const std::string message = error_of(with_stage_lines(
      "pretrain", "memory.micro_batch = \"auto\"\nmemory.budget = 1000000\nmemory.margin = 1.5\n"));
  EXPECT_NE(message.find("stages.pretrain.memory.margin: expected a number in [0, 0.9]"),
            std::string::npos)
      << message;
}

TEST(ConfigMemory, SpeedTolerance) {
  const auto e = parse(with_stage_lines(
      "pretrain",
      "memory.micro_batch = \"auto\"\nmemory.budget = 1000000\nmemory.speed_tolerance = 1\n"));
  EXPECT_DOUBLE_EQ(e.stages[0].memory.speed_tolerance, 1.0);
  EXPECT_EQ(to_json(e)["stages"][0]["memory"]["speed_tolerance"], 1.0);
  EXPECT_DOUBLE_EQ(e.stages[1].memory.speed_tolerance, 0.05);

  std::string message = error_of(with_stage_lines(
      "pretrain",
      "memory.micro_batch = \"auto\"\nmemory.budget = 1000000\nmemory.speed_tolerance = -0.1\n"));
  EXPECT_NE(message.find("stages.pretrain.memory.speed_tolerance: expected a number in [0, 1]"),
            std::string::npos)
      << message;
  message = error_of(with_stage_lines("pretrain", "memory.speed_tolerance = 0.1\n"));
  EXPECT_NE(message.find("stages.pretrain.memory.speed_tolerance: only applies to micro_batch = "
                         "\"auto\""),
            std::string::npos)
      << message;
}

TEST(ConfigRange, WarmupLongerThanTheStage) {
  const std::string message =
      error_of(with_stage_lines("finetune", "schedule.warmup_epochs = 5\n"));
  EXPECT_NE(message.find("stages.finetune.schedule.warmup_epochs: expected at most the stage's 4 "
                         "epochs"),
            std::string::npos)
      << message;
}

TEST(ConfigRange, ZeroLearningRate) {
  const std::string message = error_of(with_stage_lines("finetune", "optimizer.lr = 0\n"));
  EXPECT_NE(message.find("stages.finetune.optimizer.lr: expected a learning rate > 0, found 0"),
            std::string::npos)
      << message;
}

TEST(ConfigRange, StringChoiceSuggestsTheCloseOne) {
  const std::string message =
      error_of(with_stage_lines("finetune", "schedule.decay = \"cosin\"\n"));
  EXPECT_NE(message.find("stages.finetune.schedule.decay: expected one of \"cosine\", "
                         "\"constant\", found \"cosin\"; did you mean 'cosine'?"),
            std::string::npos)
      << message;
}

TEST(ConfigRange, BadDevice) {
  const std::string message = error_of(with_stage_lines("finetune", "device = \"gpu\"\n"));
  EXPECT_NE(message.find("stages.finetune.device: expected \"auto\", \"cpu\", \"cuda\" or "
                         "\"cuda:N\", found \"gpu\""),
            std::string::npos)
      << message;
  const auto e = parse(with_stage_lines("finetune", "device = \"cuda:1\"\n"));
  EXPECT_EQ(e.stages[1].device, "cuda:1");
}

TEST(ConfigRange, StageNamesMustBeUniqueAndFolderSafe) {
  const std::string twice = replaced(kBase, "name = \"finetune\"", "name = \"pretrain\"");
  EXPECT_NE(error_of(twice).find("two stages are named \"pretrain\""), std::string::npos);
  const std::string spaced = replaced(kBase, "name = \"finetune\"", "name = \"fine tune\"");
  EXPECT_NE(error_of(spaced).find("expected 1 to 64 letters, digits, '_' or '-'"),
            std::string::npos);
}

TEST(ConfigRange, PluginParamOutOfRange) {
  const std::string text = with_stage_lines("finetune", "loss.alpha = -1\n");
  const std::string message = error_of(text);
  EXPECT_EQ(message, at_line(line_of(text, "loss.alpha")) +
                         "14: stages.finetune.loss.alpha: expected number >= 0.0, found number "
                         "-1.0");
}

TEST(ConfigRange, PluginStringChoice) {
  const std::string message = error_of(replaced(
      kBase, "effective_batch = 8",
      "effective_batch = 8\nstrategies = [\"mixed_precision\"]\nmixed_precision.dtype = \"fp8\""));
  EXPECT_NE(message.find("memory.mixed_precision.dtype: expected string (one of \"auto\", "
                         "\"fp16\", \"bf16\"), found string \"fp8\""),
            std::string::npos)
      << message;
}

// ---------------------------------------------------------------- plugin parameter types

TEST(ConfigPluginParams, StringWhereNumberExpectedNamesTheParam) {
  const std::string text = with_stage_lines("pretrain", "loss.alpha = \"big\"\n");
  const std::string message = error_of(text);
  EXPECT_EQ(message, at_line(line_of(text, "loss.alpha")) +
                         "14: stages.pretrain.loss.alpha: expected number >= 0.0, found string "
                         "\"big\"");
}

TEST(ConfigPluginParams, FloatWhereIntegerExpected) {
  const std::string message = error_of(replaced(kBase, "width = 8", "width = 8.5"));
  EXPECT_NE(message.find("stages.pretrain.model.width: expected integer >= 1.0, found number 8.5"),
            std::string::npos)
      << message;
}

TEST(ConfigPluginParams, ListOfWrongLength) {
  const std::string message =
      error_of(replaced(kBase, "width = 8", "width = 8\nnum_modules = [1, 2]"));
  EXPECT_NE(message.find("stages.pretrain.model.num_modules: expected list of integers of length 3 "
                         ">= 1.0, found list of integers [1, 2]"),
            std::string::npos)
      << message;
}

TEST(ConfigPluginParams, MixedListNamesTheParam) {
  const std::string message =
      error_of(replaced(kBase, "width = 8", "width = 8\nnum_modules = [1, \"two\", 3]"));
  EXPECT_NE(
      message.find("stages.pretrain.model.num_modules: expected list of integers, found array"),
      std::string::npos)
      << message;
}

TEST(ConfigPluginParams, IntegerIsAcceptedAsANumber) {
  const auto e = parse(with_stage_lines("pretrain", "loss.alpha = 3\n"));
  const auto& value = e.stages[0].loss.params.get("alpha");
  ASSERT_TRUE(std::holds_alternative<double>(value));
  EXPECT_DOUBLE_EQ(std::get<double>(value), 3.0);
}

TEST(ConfigPluginParams, TableOfNumbers) {
  const auto e = parse(with_stage_lines("finetune", "loss.emphasis = { Go = 3, Ar = 2.5 }\n"));
  const auto& emphasis = e.stages[1].loss.params.get_float_map("emphasis");
  EXPECT_EQ(emphasis, (std::map<std::string, double>{{"Ar", 2.5}, {"Go", 3.0}}));
  const std::string message =
      error_of(with_stage_lines("finetune", "loss.emphasis = { Go = \"high\" }\n"));
  EXPECT_NE(message.find("stages.finetune.loss.emphasis: expected table of numbers"),
            std::string::npos)
      << message;
}

TEST(ConfigPluginParams, BoolParam) {
  const auto e = parse(with_stage_lines("pretrain", "model.pretrained = true\n"));
  EXPECT_TRUE(e.stages[0].model.params.get_bool("pretrained"));
  const std::string message = error_of(with_stage_lines("pretrain", "model.pretrained = 1\n"));
  EXPECT_NE(message.find("stages.pretrain.model.pretrained: expected boolean, found integer 1"),
            std::string::npos)
      << message;
}

// ---------------------------------------------------------------- inheritance

TEST(ConfigInherit, StageOverridingOneOptimizerKeyKeepsTheOthers) {
  const auto e = parse(with_stage_lines("finetune", "optimizer.lr = 1e-5\n"));
  const auto& pre = stage_named(e, "pretrain").optimizer;
  const auto& fine = stage_named(e, "finetune").optimizer;
  EXPECT_DOUBLE_EQ(pre.lr, 1e-3);
  EXPECT_DOUBLE_EQ(fine.lr, 1e-5);
  EXPECT_EQ(fine.name, "adamw");
  EXPECT_DOUBLE_EQ(fine.weight_decay, 0.05);
}

TEST(ConfigInherit, InlineTableInTheStageMergesWithDefaults) {
  const auto e = parse(with_stage_lines("finetune", "optimizer = { lr = 2e-6 }\n"));
  const auto& fine = stage_named(e, "finetune").optimizer;
  EXPECT_DOUBLE_EQ(fine.lr, 2e-6);
  EXPECT_EQ(fine.name, "adamw");
  EXPECT_DOUBLE_EQ(fine.weight_decay, 0.05);
}

TEST(ConfigInherit, DataAndPluginParamsInheritKeyByKey) {
  const auto e = parse(with_stage_lines(
      "finetune", "data.sigma = 3.0\ndata.valid_count = 12\nmodel.pretrained = true\n"));
  const auto& fine = stage_named(e, "finetune");
  EXPECT_DOUBLE_EQ(fine.data.sigma, 3.0);
  EXPECT_EQ(fine.data.input_width, 128);
  EXPECT_EQ(fine.data.reader.name, "synthetic");
  EXPECT_EQ(fine.data.reader.params.get_int("train_count"), 40);  // from defaults
  EXPECT_EQ(fine.data.reader.params.get_int("valid_count"), 12);  // from the stage
  EXPECT_EQ(fine.model.params.get_int("width"), 8);
  EXPECT_TRUE(fine.model.params.get_bool("pretrained"));
  const auto& pre = stage_named(e, "pretrain");
  EXPECT_DOUBLE_EQ(pre.data.sigma, 1.5);
  EXPECT_EQ(pre.data.reader.params.get_int("valid_count"), 8);
  EXPECT_FALSE(pre.model.params.get_bool("pretrained"));
}

TEST(ConfigInherit, NestedTablesMergeAcrossLayers) {
  const std::string text = replaced(with_stage_lines("finetune", "data.augment.scale = 0.2\n"),
                                    "sigma = 1.5", "sigma = 1.5\naugment = { rotation = 5.0 }");
  const auto e = parse(text);
  const auto& a = stage_named(e, "finetune").data.augment;
  EXPECT_TRUE(a.enabled);
  EXPECT_DOUBLE_EQ(a.rotation_deg, 5.0);
  EXPECT_DOUBLE_EQ(a.scale, 0.2);
  EXPECT_DOUBLE_EQ(a.shift, 0.05);
  EXPECT_DOUBLE_EQ(stage_named(e, "pretrain").data.augment.scale, 0.1);
}

TEST(ConfigInherit, ValueInTheStageHidesTheDefaultsTable) {
  const std::string text = replaced(with_stage_lines("finetune", "data.augment = false\n"),
                                    "sigma = 1.5", "sigma = 1.5\naugment = { rotation = 5.0 }");
  const auto e = parse(text);
  EXPECT_FALSE(stage_named(e, "finetune").data.augment.enabled);
  EXPECT_TRUE(stage_named(e, "pretrain").data.augment.enabled);
  EXPECT_DOUBLE_EQ(stage_named(e, "pretrain").data.augment.rotation_deg, 5.0);
}

TEST(ConfigInherit, DefaultsCannotNameAStage) {
  const std::string message =
      error_of(replaced(kBase, "device = \"cpu\"\n", "device = \"cpu\"\nname = \"all\"\n"));
  EXPECT_NE(message.find("defaults.name: a stage's name cannot be inherited"), std::string::npos)
      << message;
}

// ---------------------------------------------------------------- --set

TEST(ConfigOverrides, ExperimentKey) {
  const auto e = parse(kBase, {"experiment.seed=99", "experiment.description=quick try"});
  EXPECT_EQ(e.seed, 99u);
  EXPECT_EQ(e.description, "quick try");
  EXPECT_EQ(e.overrides,
            (std::vector<std::string>{"experiment.seed=99", "experiment.description=quick try"}));
}

TEST(ConfigOverrides, OneStage) {
  const auto e = parse(kBase, {"stages.finetune.epochs=2", "stages.finetune.optimizer.lr=0.5"});
  EXPECT_EQ(stage_named(e, "pretrain").epochs, 10);
  EXPECT_EQ(stage_named(e, "finetune").epochs, 2);
  EXPECT_DOUBLE_EQ(stage_named(e, "pretrain").optimizer.lr, 1e-3);
  EXPECT_DOUBLE_EQ(stage_named(e, "finetune").optimizer.lr, 0.5);
  EXPECT_EQ(stage_named(e, "finetune").optimizer.name, "adamw");
}

TEST(ConfigOverrides, BareKeyGoesToEveryStage) {
  const auto e = parse(kBase, {"epochs=3", "optimizer.lr=0.01", "data.train_split=training"});
  for (const auto& s : e.stages) {
    EXPECT_EQ(s.epochs, 3) << s.name;
    EXPECT_DOUBLE_EQ(s.optimizer.lr, 0.01) << s.name;
    EXPECT_DOUBLE_EQ(s.optimizer.weight_decay, 0.05) << s.name;
    EXPECT_EQ(s.data.train_split, "training") << s.name;  // unquoted: taken as a string
  }
}

TEST(ConfigOverrides, OneStageBeatsEveryStageAndLaterBeatsEarlier) {
  const auto e = parse(kBase, {"stages.pretrain.epochs=7", "epochs=3", "epochs=5"});
  EXPECT_EQ(stage_named(e, "pretrain").epochs, 7);
  EXPECT_EQ(stage_named(e, "finetune").epochs, 5);
}

TEST(ConfigOverrides, DefaultsOverrideSitsBelowTheStage) {
  const auto e =
      parse(with_stage_lines("finetune", "device = \"auto\"\n"), {"defaults.device=cuda"});
  EXPECT_EQ(stage_named(e, "pretrain").device, "cuda");
  EXPECT_EQ(stage_named(e, "finetune").device, "auto");
}

TEST(ConfigOverrides, PluginParamAndList) {
  const auto e = parse(kBase, {"model.num_modules=[2, 2, 2]", "loss.alpha=2.5"});
  EXPECT_EQ(e.stages[0].model.params.get_int_list("num_modules"),
            (std::vector<std::int64_t>{2, 2, 2}));
  EXPECT_DOUBLE_EQ(e.stages[1].loss.params.get_float("alpha"), 2.5);
}

TEST(ConfigOverrides, MissingEqualsSign) {
  EXPECT_EQ(error_of(kBase, {"epochs"}),
            "--set epochs: expected key.path=value, e.g. --set epochs=2");
  EXPECT_NE(error_of(kBase, {"=3"}).find("--set =3: expected key.path=value"), std::string::npos);
}

TEST(ConfigOverrides, StagesWithoutAKey) {
  EXPECT_NE(error_of(kBase, {"stages.finetune=2"})
                .find("--set stages.finetune=2: expected stages.<stage name>.<key>=value"),
            std::string::npos);
}

TEST(ConfigOverrides, UnknownStageNameSuggestsOne) {
  EXPECT_EQ(error_of(kBase, {"stages.finetun.epochs=2"}),
            "--set stages.finetun.epochs=2: no stage is named \"finetun\"; did you mean "
            "'finetune'?");
}

// Documented (experiment-file.md, Names): the stage is named as in the file; it used to be
// looked up under its new name and refused.
TEST(ConfigOverrides, SetRenamesAStageNamedAsInTheFile) {
  const Experiment e = parse(kBase, {"stages.finetune.name=polish", "stages.finetune.epochs=3"});
  ASSERT_EQ(e.stages.size(), 2u);
  EXPECT_EQ(e.stages[1].name, "polish");
  EXPECT_EQ(e.stages[1].epochs, 3);
  EXPECT_EQ(error_of(kBase, {"stages.polish.epochs=2"})
                .rfind("--set stages.polish.epochs=2: no stage is named \"polish\"", 0),
            0u);
}

TEST(ConfigOverrides, BadValueNamesTheSetArgument) {
  EXPECT_EQ(error_of(kBase, {"epochs=ten"}),
            "--set epochs=ten: stages.pretrain.epochs: expected an integer in [1, 1e+06], found "
            "string \"ten\"");
}

TEST(ConfigOverrides, UnknownKeyNamesTheSetArgument) {
  EXPECT_EQ(error_of(kBase, {"epcohs=2"}),
            "--set epcohs=2: stages.pretrain.epcohs: unknown key 'epcohs' in 'stages.pretrain'; "
            "did you mean 'epochs'?");
  EXPECT_EQ(error_of(kBase, {"experiment.nmae=x"}),
            "--set experiment.nmae=x: experiment.nmae: unknown key 'nmae' in 'experiment'; did "
            "you mean 'name'?");
}

TEST(ConfigOverrides, UnparsableKeyPath) {
  EXPECT_NE(error_of(kBase, {"a..b=1"}).find("--set a..b=1: cannot read 'a..b' as a key path"),
            std::string::npos);
}

// Errors about a key that is missing point at the table in the file, even when a --set
// argument adds a layer above it.
TEST(ConfigOverrides, MissingKeyStillPointsAtTheFile) {
  const std::string text = replaced(kBase, "epochs = 4\n", "");
  const int line = line_of(text.substr(0, text.rfind("[[stage]]")) + "@@", "@@");
  EXPECT_EQ(
      error_of(text, {"optimizer.lr=0.1"}),
      at_line(line) + "1: stages.finetune.epochs: missing required key (an integer in [1, 1e+06])");
  const auto e = parse(kBase, {"epochs=2"});
  EXPECT_EQ(e.stages[0].where, at_line(line_of(kBase, "[[stage]]")) + "1");
}

// ---------------------------------------------------------------- loss.weights

TEST(ConfigLossWeights, MergeKeyByKeyFromDefaultsAndStage) {
  const std::string text =
      with_stage_lines("finetune", "loss = { weights = { Ar = 0.5, S = 2 } }\n");
  const std::string with_defaults =
      replaced(text, "plugin = \"adaptive_wing\"\n",
               "plugin = \"adaptive_wing\"\nweights = { Go = 3.0, Ar = 3.0 }\n");
  const Experiment e = parse(with_defaults);
  EXPECT_EQ(stage_named(e, "pretrain").loss_weights.by_symbol,
            (std::map<std::string, double>{{"Ar", 3.0}, {"Go", 3.0}}));
  const auto& finetune = stage_named(e, "finetune").loss_weights;
  EXPECT_EQ(finetune.by_symbol,
            (std::map<std::string, double>{{"Ar", 0.5}, {"Go", 3.0}, {"S", 2.0}}));
  EXPECT_EQ(finetune.key_path, "stages.finetune.loss.weights");
  EXPECT_EQ(finetune.where.at("Go").rfind(at_line(line_of(with_defaults, "weights = { Go")), 0), 0u)
      << finetune.where.at("Go");
  // The resolved configuration keeps them with the loss.
  EXPECT_EQ(to_json(stage_named(e, "finetune"))["loss"]["weights"]["S"], 2.0);
}

TEST(ConfigLossWeights, BadValuesNameTheKey) {
  EXPECT_CONTAINS(error_of(with_stage_lines("finetune", "loss = { weights = 3 }\n")),
                  "stages.finetune.loss.weights: expected a table of landmark symbol = weight");
  EXPECT_CONTAINS(error_of(with_stage_lines("finetune", "loss = { weights = { Go = -1 } }\n")),
                  "stages.finetune.loss.weights.Go: expected a number in [0, 1000]");
  EXPECT_CONTAINS(error_of(with_stage_lines("finetune", "loss = { weights = { Go = \"x\" } }\n")),
                  "stages.finetune.loss.weights.Go");
  // A misspelt `weights` is suggested like any other key of the loss table.
  EXPECT_CONTAINS(error_of(with_stage_lines("finetune", "loss = { wieghts = { Go = 2 } }\n")),
                  "did you mean 'weights'?");
}

TEST(LandmarkWeightTensor, InDatasetOrderWithOnesForUnnamed) {
  LandmarkWeights w;
  w.by_symbol = {{"Go", 3.0}, {"S", 0.0}};
  w.where = {{"Go", "q.toml:4:9"}, {"S", "q.toml:4:19"}};
  w.key_path = "stages.ft.loss.weights";
  const auto t = landmark_weight_tensor(w, {"S", "N", "Go"});
  EXPECT_TRUE(torch::equal(t, torch::tensor({0.0f, 1.0f, 3.0f})));
}

TEST(LandmarkWeightTensor, UnknownSymbolIsAnErrorWithTheCloseName) {
  LandmarkWeights w;
  w.by_symbol = {{"G0", 3.0}};
  w.where = {{"G0", "q.toml:4:9"}};
  w.key_path = "stages.ft.loss.weights";
  try {
    landmark_weight_tensor(w, {"Sella", "Nasion", "Go"});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "q.toml:4:9: stages.ft.loss.weights.G0: the dataset has no landmark 'G0'; did you "
              "mean 'Go'? (its landmarks: Sella, Nasion, Go)");
  }
}

TEST(LandmarkWeightTensor, AllZeroIsAnError) {
  LandmarkWeights w;
  w.by_symbol = {{"S", 0.0}, {"N", 0.0}};
  w.where = {{"S", "q.toml:4:9"}, {"N", "q.toml:4:17"}};
  w.key_path = "stages.ft.loss.weights";
  EXPECT_THROW(landmark_weight_tensor(w, {"S", "N"}), ConfigError);
}

}  // namespace
}  // namespace exprun

namespace exprun {
namespace {

// ---------------------------------------------------------------- chains and checkpoints

TEST(ConfigChain, InitNamesAnEarlierStageAndFocusGoesWithIt) {
  const std::string text = with_stage_lines(
      "finetune", "init = \"pretrain:best\"\nloss.focus = { worst = 12, weight = 3.0 }\n");
  const Experiment e = parse(text);
  const StageConfig& finetune = stage_named(e, "finetune");
  EXPECT_EQ(finetune.init.from_stage, "pretrain");
  EXPECT_EQ(finetune.init.which, "best");
  EXPECT_EQ(finetune.init.where.rfind(at_line(line_of(text, "init =")), 0), 0u);
  EXPECT_EQ(finetune.focus.worst, 12);
  EXPECT_EQ(finetune.focus.weight, 3.0);
  EXPECT_TRUE(stage_named(e, "pretrain").init.empty());
  const auto json = to_json(finetune);
  EXPECT_EQ(json["init"], "pretrain:best");
  EXPECT_EQ(json["loss"]["focus"]["worst"], 12);
  // focus is the runner's, not handed to the loss plugin.
  EXPECT_FALSE(finetune.loss.params.values().count("focus"));
  EXPECT_EQ(
      stage_named(parse(with_stage_lines("finetune", "init = \"pretrain:latest\"\n")), "finetune")
          .init.which,
      "latest");
}

TEST(ConfigChain, UnknownStageIsNamedWithTheClosestSpelling) {
  const std::string text = with_stage_lines("finetune", "init = \"pretrian:best\"\n");
  const std::string message = error_of(text);
  EXPECT_CONTAINS(message, at_line(line_of(text, "init =")));
  EXPECT_CONTAINS(message, "stages.finetune.init: no stage is named \"pretrian\"");
  EXPECT_CONTAINS(message, "did you mean 'pretrain'?");
}

TEST(ConfigChain, CyclesAndLaterStagesAreRejectedBeforeAnythingRuns) {
  EXPECT_CONTAINS(error_of(with_stage_lines("pretrain", "init = \"pretrain:best\"\n")),
                  "cycle: pretrain -> pretrain");
  const std::string both = with_stage_lines("finetune", "init = \"pretrain:best\"\n");
  EXPECT_CONTAINS(
      error_of(replaced(both, "epochs = 10\n", "epochs = 10\ninit = \"finetune:latest\"\n")),
      "cycle: pretrain -> finetune -> pretrain");
  EXPECT_CONTAINS(error_of(with_stage_lines("pretrain", "init = \"finetune:best\"\n")),
                  "stage \"finetune\" runs after \"pretrain\"");
}

TEST(ConfigChain, BadInitValuesAndFocusWithoutInit) {
  EXPECT_CONTAINS(error_of(with_stage_lines("finetune", "init = \"pretrain:first\"\n")),
                  "expected \"pretrain:best\" or \"pretrain:latest\", found \"pretrain:first\"");
  EXPECT_CONTAINS(error_of(with_stage_lines("finetune", "init = 3\n")),
                  "stages.finetune.init: expected \"STAGE:best\"");
  EXPECT_CONTAINS(error_of(with_stage_lines("finetune", "init = \"no/such/file.pt\"\n")),
                  "no checkpoint file \"no/such/file.pt\"");
  const std::string no_init = with_stage_lines("finetune", "loss.focus = { worst = 3 }\n");
  const std::string message = error_of(no_init);
  EXPECT_CONTAINS(message, at_line(line_of(no_init, "loss.focus")));
  EXPECT_CONTAINS(message, "the stage has no init");
  EXPECT_CONTAINS(error_of(with_stage_lines(
                      "finetune", "init = \"pretrain:best\"\nloss.focus = { worst = 0 }\n")),
                  "stages.finetune.loss.focus.worst: expected an integer in [1, 1000]");
  EXPECT_CONTAINS(error_of(with_stage_lines(
                      "finetune", "init = \"pretrain:best\"\nloss.focus = { wrst = 3 }\n")),
                  "did you mean 'worst'?");
}

TEST(ConfigCheckpoint, DefaultsMonitorDirectionAndErrors) {
  const Experiment plain = parse(kBase);
  EXPECT_EQ(plain.stages[0].checkpoint.monitor, "val_mre_mm");
  EXPECT_EQ(plain.stages[0].checkpoint.mode, "min");
  EXPECT_EQ(plain.stages[0].checkpoint.every, 0);
  const Experiment sdr = parse(with_stage_lines(
      "finetune", "checkpoint = { monitor = \"val_sdr_2mm\", every = 2, keep_last = 3 }\n"));
  EXPECT_EQ(sdr.stages[1].checkpoint.mode, "max");  // a detection rate is better high
  EXPECT_EQ(sdr.stages[1].checkpoint.every, 2);
  EXPECT_EQ(sdr.stages[1].checkpoint.keep_last, 3);
  EXPECT_EQ(to_json(sdr.stages[1])["checkpoint"]["monitor"], "val_sdr_2mm");
  EXPECT_CONTAINS(error_of(with_stage_lines("finetune", "checkpoint = { monitor = \"mre\" }\n")),
                  "stages.finetune.checkpoint.monitor");
  EXPECT_CONTAINS(error_of(with_stage_lines("finetune", "checkpoint = { keep_last = 2 }\n")),
                  "set every = N as well");
  EXPECT_CONTAINS(error_of(with_stage_lines("finetune", "checkpoint = { mode = \"up\" }\n")),
                  "stages.finetune.checkpoint.mode");
}

}  // namespace
}  // namespace exprun

namespace exprun {
namespace {

TEST(ConfigAugment, GammaClaheAndNoFlips) {
  const Experiment e = parse(with_stage_lines(
      "finetune", "data.augment = { gamma = 0.2, clahe = 0.5, clahe_clip = 3.0 }\n"));
  const AugmentConfig& a = stage_named(e, "finetune").data.augment;
  EXPECT_EQ(a.gamma, 0.2);
  EXPECT_EQ(a.clahe, 0.5);
  EXPECT_EQ(a.clahe_clip, 3.0);
  EXPECT_EQ(a.clahe_tiles, 8);
  EXPECT_EQ(stage_named(e, "pretrain").data.augment.gamma, 0.0);  // off by default
  EXPECT_EQ(to_json(stage_named(e, "finetune"))["data"]["augment"]["clahe"], 0.5);
  EXPECT_CONTAINS(error_of(with_stage_lines("finetune", "data.augment = { clahe = 2 }\n")),
                  "stages.finetune.data.augment.clahe: expected a number in [0, 1]");
  EXPECT_CONTAINS(error_of(with_stage_lines("finetune", "data.augment = { flip = true }\n")),
                  "not left-right symmetric");
}

}  // namespace
}  // namespace exprun
