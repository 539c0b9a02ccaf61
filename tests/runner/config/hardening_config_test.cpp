// Hostile and careless experiment files (issue 12, items 1, 3, 13, 14): keys and values nested
// deep enough to overflow the stack, names that are not plain folder names or that --set
// cannot address, errors without a position or spread over lines, and settings that were
// silently changed. Each is a one-line error naming the file, line and key.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config/checkpoint_path.hpp"
#include "config/config_error.hpp"
#include "config/experiment_loader.hpp"
#include "config/names.hpp"
#include "config/toml_limits.hpp"
#include "plugins/registry.hpp"
#include "sweep/sweep_loader.hpp"
#include "test_support.hpp"

namespace exprun {
namespace {

Experiment parse(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return parse_experiment(text, "q.toml", overrides, test::built_plugins());
}

// The ConfigError's message. Anything else (another exception, or none) fails the test: the
// point of these cases is that they end in a located config error.
std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    parse(text, overrides);
  } catch (const ConfigError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a ConfigError: " << e.what();
    return "";
  }
  ADD_FAILURE() << "the experiment loaded without an error";
  return "";
}

std::string tiny(const std::string& stage_extra = "") {
  test::TinyExperiment e;
  e.stage_extra = stage_extra;
  return e.toml();
}

// "a.a.a...": a key of `parts` parts. 300000 overflows the stack inside TOML++ even in an
// optimised build.
std::string dotted(std::size_t parts) {
  std::string key = "a";
  for (std::size_t i = 1; i < parts; ++i) key += ".a";
  return key;
}

std::string at_line(const std::string& text, const std::string& needle) {
  return "q.toml:" + std::to_string(test::line_of(text, needle)) + ":";
}

// ---------------------------------------------------------------- item 1: depth and length

TEST(HardeningConfigDepth, DottedKeyOfManyPartsIsALocatedError) {
  const std::string text = tiny() + dotted(300000) + " = 1\n";
  const std::string message = error_of(text);
  EXPECT_CONTAINS(message, at_line(text, "a.a.a.a") + "1: key \"a.a.a.a");
  EXPECT_CONTAINS(message, "nests more than 64 levels deep");
  EXPECT_LT(message.size(), 400u) << message;
}

TEST(HardeningConfigDepth, TableHeaderOfManyPartsIsALocatedError) {
  const std::string text = tiny() + "[" + dotted(300000) + "]\nx = 1\n";
  const std::string message = error_of(text);
  EXPECT_CONTAINS(message, at_line(text, "[a.a.a") + "2: key \"a.a.a");
  EXPECT_CONTAINS(message, "nests more than 64 levels deep");
}

TEST(HardeningConfigDepth, SetKeyOfManyPartsIsALocatedError) {
  for (const std::string& key : {dotted(300000), "stages.train." + dotted(300000)}) {
    const std::string message = error_of(tiny(), {key + "=1"});
    EXPECT_EQ(message.rfind("--set " + key.substr(0, 20), 0), 0u) << message;
    EXPECT_CONTAINS(message, "nests more than 64 levels deep");
    EXPECT_LT(message.size(), 400u) << message;
  }
}

TEST(HardeningConfigDepth, DeeplyNestedValuesAreALocatedError) {
  const std::string nested = std::string(100, '[') + std::string(100, ']');
  const std::string text = tiny("data.image_size = " + nested + "\n");
  const std::string message = error_of(text);
  EXPECT_CONTAINS(message, at_line(text, "data.image_size"));
  EXPECT_CONTAINS(message, "key \"data.image_size\": values nest more than 64 levels deep");

  const std::string tables = std::string("optimizer = ") + [] {
    std::string t;
    for (int i = 0; i < 100; ++i) t += "{ a = ";
    t += "1";
    for (int i = 0; i < 100; ++i) t += " }";
    return t;
  }();
  EXPECT_CONTAINS(error_of(tiny(), {tables}), "values nest more than 64 levels deep");
}

TEST(HardeningConfigDepth, OverlongKeyIsALocatedError) {
  const std::string text = tiny() + std::string(5000, 'k') + " = 1\n";
  const std::string message = error_of(text);
  EXPECT_CONTAINS(message, at_line(text, "kkkk") + "1: key \"kkkk");
  EXPECT_CONTAINS(message, "is longer than 1024 characters");
  EXPECT_LT(message.size(), 400u) << message;
}

TEST(HardeningConfigDepth, SweepFileIsBoundedBeforeItsSweepIsRead) {
  test::TempDir dir;
  const auto file = dir / "s.toml";
  const std::string text = tiny() + "[sweep.grid]\n" + dotted(300000) + " = [1, 2]\n";
  test::write_text(file, text);
  try {
    read_sweep_file(file.string());
    ADD_FAILURE() << "read_sweep_file accepted a key of 300000 parts";
  } catch (const ConfigError& e) {
    EXPECT_CONTAINS(e.what(),
                    file.string() + ":" + std::to_string(test::line_of(text, "a.a.a")) + ":1: key");
    EXPECT_CONTAINS(e.what(), "nests more than 64 levels deep");
  }
}

// The scanner must not refuse valid TOML: brackets, dots and '#' inside strings and comments,
// multi-line strings and arrays, quoted keys, and nesting up to the limit itself.
TEST(HardeningConfigDepth, ValidTextWithinTheLimitsPasses) {
  const std::string text = R"(# a comment with [brackets], { braces and a.b.c.d.e
[experiment]
name = "x.y.z"  # "quoted" [x]
s1 = 'a.b[{'
s2 = """
[not.a.header]
a.b.c = "still the string" """
s3 = '''x.y''''
s4 = "escaped \" [ quote"
"quoted.key.with.dots" = 1
list = [
  1.5, # a comment ] }
  [2, 3],
  { a.b = 1, c = "}" },
]

[[stage]]
name = "a"
)";
  EXPECT_NO_THROW(check_toml_limits(text, "ok.toml"));
  EXPECT_NO_THROW(static_cast<void>(toml::parse(text)));  // the sample is valid TOML

  EXPECT_NO_THROW(check_toml_limits("[" + dotted(64) + "]\n", "ok.toml"));
  EXPECT_NO_THROW(check_toml_limits("[a.b]\n" + dotted(62) + " = 1\n", "ok.toml"));
  EXPECT_NO_THROW(check_toml_limits(dotted(64) + " = 1\n", "ok.toml"));
  EXPECT_NO_THROW(check_toml_limits(dotted(63) + " = [1]\n", "ok.toml"));
  EXPECT_THROW(check_toml_limits("[" + dotted(65) + "]\n", "ok.toml"), ConfigError);
  EXPECT_THROW(check_toml_limits("[a.b]\n" + dotted(63) + " = 1\n", "ok.toml"), ConfigError);
  EXPECT_THROW(check_toml_limits(dotted(65) + " = 1\n", "ok.toml"), ConfigError);
  EXPECT_THROW(check_toml_limits(dotted(64) + " = [1]\n", "ok.toml"), ConfigError);
  EXPECT_NO_THROW(check_toml_limits(std::string(1024, 'k') + " = 1\n", "ok.toml"));
  EXPECT_THROW(check_toml_limits(std::string(1025, 'k') + "= 1\n", "ok.toml"), ConfigError);
}

// One bound for keys and values alike: level 64 is allowed, whatever sits there (a scalar, or
// an empty table or array), and nothing may sit at level 65. The container checks refused an
// empty array or inline table at level 64 although a key of 64 parts was accepted.
TEST(HardeningConfigDepth, LevelSixtyFourIsAllowedAndSixtyFiveRefused) {
  const std::size_t max = kMaxTomlDepth;
  ASSERT_EQ(max, 64u);
  const auto brackets = [](std::size_t count, const std::string& inside) {
    return std::string(count, '[') + inside + std::string(count, ']');
  };
  const std::vector<std::string> allowed = {
      dotted(max) + " = 1\n",                     // a key's value at 64
      "[" + dotted(max) + "]\n",                  // a table at 64
      "[[" + dotted(max) + "]]\n",                // [[header]] counts like [header]
      "[a]\n" + dotted(max - 1) + " = 1\n",       // header parts and key parts add up
      dotted(max) + " = []\n",                    // an empty array at 64
      dotted(max) + " = {}\n",                    // an empty inline table at 64
      dotted(max - 1) + " = [1]\n",               // an element at 64
      dotted(max - 1) + " = { a = 1 }\n",         // an inline table's key at 64
      "x = " + brackets(max - 1, "1") + "\n",     // 1 at 64: x, then 63 arrays
      "x = " + brackets(max, "") + "\n",          // the innermost, empty, array at 64
      "x = [" + brackets(max - 2, "{}") + "]\n",  // the inline table at 64
  };
  for (const std::string& text : allowed) {
    EXPECT_NO_THROW(check_toml_limits(text, "ok.toml")) << text;
    EXPECT_NO_THROW(static_cast<void>(toml::parse(text))) << text;
  }
  const std::vector<std::string> refused = {
      dotted(max + 1) + " = 1\n",
      "[" + dotted(max + 1) + "]\n",
      "[[" + dotted(max + 1) + "]]\n",
      "[a]\n" + dotted(max) + " = 1\n",
      dotted(max) + " = [1]\n",
      dotted(max) + " = { a = 1 }\n",
      "x = " + brackets(max, "1") + "\n",
      "x = " + brackets(max + 1, "") + "\n",
      "x = [" + brackets(max - 1, "{}") + "]\n",
  };
  for (const std::string& text : refused) {
    try {
      check_toml_limits(text, "q.toml");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const ConfigError& e) {
      EXPECT_CONTAINS(e.what(), "more than 64 levels deep");
      EXPECT_EQ(std::string(e.what()).rfind("q.toml:", 0), 0u) << e.what();
    }
  }
}

// The --set argument in the message was cut at byte 60, inside the 'é' that straddles it.
TEST(HardeningConfigDepth, LongSetArgumentIsCutAtACharacterBoundary) {
  const std::string e_acute = "\xc3\xa9";
  std::string key = "a";
  for (int i = 0; i < 100; ++i) key += "." + e_acute;  // 1 + 3 bytes a part: byte 60 is mid-'é'
  const std::string argument = key + "=1";
  ASSERT_EQ(static_cast<unsigned char>(argument[60]) & 0xC0, 0x80);
  const std::string message = error_of(tiny(), {argument});
  EXPECT_EQ(message.rfind("--set " + argument.substr(0, 59) + "...: key \"a." + e_acute, 0), 0u)
      << message;
  EXPECT_CONTAINS(message, "nests more than 64 levels deep");

  EXPECT_EQ(shorten_for_message("a" + e_acute + "b", 2), "a...");
  EXPECT_EQ(shorten_for_message("a" + e_acute + "b", 3), "a" + e_acute + "...");
  EXPECT_EQ(shorten_for_message("a\nb", 10), "a\\x0ab");
  EXPECT_EQ(quote_for_message("a" + e_acute + "b", 2), "\"a...\" (4 characters)");
}

// ---------------------------------------------------------------- items 3 and 14: names

TEST(HardeningConfigNames, ExperimentNamedDotOrDotDotIsRefused) {
  for (const std::string name : {".", "..", ".hidden"}) {
    test::TinyExperiment e;
    e.name = name;
    const std::string text = e.toml();
    const std::string message = error_of(text);
    EXPECT_CONTAINS(message, at_line(text, "name = \"" + name) +
                                 "8: experiment.name: expected 1 "
                                 "to 64 letters, digits, '_', "
                                 "'-' or '.', not starting with "
                                 "'.'");
  }
  EXPECT_CONTAINS(error_of(tiny(), {"experiment.name=.."}),
                  "--set experiment.name=..: experiment.name: expected 1 to 64 letters");
  test::TinyExperiment dotted_name;
  dotted_name.name = "hrnet-v1.5";
  EXPECT_EQ(parse(dotted_name.toml()).name, "hrnet-v1.5");
}

TEST(HardeningConfigNames, StageNamesArePlainFolderNamesThatSetCanAddress) {
  for (const std::string& name :
       std::vector<std::string>{".", "..", "a.b", "a/b", std::string(65, 's')}) {
    std::string text = tiny();
    text.replace(text.find("name = \"train\""), 14, "name = \"" + name + "\"");
    const std::string message = error_of(text);
    EXPECT_CONTAINS(message, at_line(text, "name = \"" + name) +
                                 "8: stage[0].name: expected 1 to 64 letters, digits, '_' or '-' "
                                 "(it names the stage's folder, and --set stages.NAME.key");
  }
  // A name far too long for a folder is cut short in the message.
  std::string text = tiny();
  text.replace(text.find("name = \"train\""), 14, "name = \"" + std::string(100000, 's') + "\"");
  const std::string message = error_of(text);
  EXPECT_CONTAINS(message, "(100000 characters)");
  EXPECT_LT(message.size(), 400u);

  EXPECT_CONTAINS(error_of(tiny(), {"stages.train.name=.."}),
                  "stages.train.name: expected 1 to 64");
  std::string renamed = tiny();
  renamed.replace(renamed.find("name = \"train\""), 14, "name = \"fine_tune-2\"");
  EXPECT_EQ(parse(renamed).stages[0].name, "fine_tune-2");
}

TEST(HardeningConfigNames, SetDefaultsNameIsRefused) {
  EXPECT_EQ(error_of(tiny(), {"defaults.name=x"}),
            "--set defaults.name=x: defaults.name: a stage's name cannot be inherited; rename one "
            "stage with --set stages.<stage name>.name=NEW");
}

// ---------------------------------------------------------------- item 13: located errors

TEST(HardeningConfigValues, OverlongInitPathIsALocatedError) {
  const std::string text = tiny("init = \"" + std::string(100000, 'x') + ".pt\"\n");
  const std::string message = error_of(text);
  EXPECT_CONTAINS(message, at_line(text, "init = ") +
                               "8: stages.train.init: cannot use the "
                               "checkpoint path \"xxxx");
  EXPECT_CONTAINS(message, "(100003 characters)");
  EXPECT_LT(message.size(), 400u) << message;
}

TEST(HardeningConfigValues, InitPathInASymlinkLoopIsALocatedError) {
  test::TempDir dir;
  std::filesystem::create_symlink(dir / "b.pt", dir / "a.pt");
  std::filesystem::create_symlink(dir / "a.pt", dir / "b.pt");
  const std::string text = tiny("init = " + test::toml_quote((dir / "a.pt").string()) + "\n");
  const std::string message = error_of(text);
  EXPECT_CONTAINS(message, at_line(text, "init = ") +
                               "8: stages.train.init: cannot use the "
                               "checkpoint path");
  EXPECT_CONTAINS(message, "symbolic links");
}

TEST(HardeningConfigValues, ImageSizeHasAnUpperBound) {
  const std::string text = tiny("data.image_size = [100000, 256]\n");
  EXPECT_CONTAINS(error_of(text), at_line(text, "image_size = [100000") +
                                      "19: stages.train.data.image_size: expected a list of 2 "
                                      "integers in [16, 8192]");
  const Experiment e = parse(tiny("data.image_size = [8192, 8192]\n"));
  EXPECT_EQ(e.stages[0].data.input_width, 8192);
}

TEST(HardeningConfigValues, ValuesInErrorsStayOnOneLine) {
  std::string list = "[";
  for (int i = 1; i <= 40; ++i) list += (i > 1 ? ", " : "") + std::to_string(i);
  list += "]";
  const std::string long_list = error_of(tiny("device = " + list + "\n"));
  EXPECT_EQ(long_list.find('\n'), std::string::npos) << long_list;
  EXPECT_CONTAINS(long_list, "found array [ 1, 2, 3, 4, 5, 6, 7, 8, ... (40 items) ]");

  const std::string nested = error_of(tiny("device = [[[[[[1]]]]], { a = [1, 2] }]\n"));
  EXPECT_CONTAINS(nested, "found array [ [ [ [ [...] ] ] ], { a = [ 1, 2 ] } ]");

  const std::string multiline = error_of(tiny("device = \"\"\"\ncuda\n\"\"\"\n"));
  EXPECT_EQ(multiline.find('\n'), std::string::npos) << multiline;
  EXPECT_CONTAINS(multiline, "found \"cuda\\x0a\"");
}

// std::regex recursed once per character: these long strings overflowed the stack.
TEST(HardeningConfigValues, LongStringsAreCheckedWithoutRecursion) {
  const std::string device = error_of(tiny("device = \"" + std::string(100000, 'c') + "\"\n"));
  EXPECT_CONTAINS(device,
                  "stages.train.device: expected \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", "
                  "found \"cccc");
  EXPECT_CONTAINS(device, "(100000 characters)");
  // No stage can have a name of 100000 characters: the text is a path, and too long for one.
  const std::string init = error_of(tiny("init = \"" + std::string(100000, 'p') + ":best\"\n"));
  EXPECT_CONTAINS(init, "stages.train.init: cannot use the checkpoint path \"pppp");
  EXPECT_LT(init.size(), 400u) << init;
}

// A stage reference names a stage by the stage-name rule: "a.b:best" was taken for a
// reference to a stage "a.b", which no stage may be called since names lost the '.'.
TEST(HardeningConfigNames, InitNamesAStageOnlyByTheStageNameRule) {
  const std::string dotted_reference = error_of(tiny("init = \"a.b:best\"\n"));
  EXPECT_CONTAINS(dotted_reference, "stages.train.init: no checkpoint file \"a.b:best\"");
  EXPECT_CONTAINS(error_of(tiny("init = \"fine-tune_2:best\"\n")),
                  "stages.train.init: no stage is named \"fine-tune_2\"");
  EXPECT_CONTAINS(error_of(tiny("init = \"train:first\"\n")),
                  "stages.train.init: expected \"train:best\" or \"train:latest\"");
}

// The loader and the stage start look a checkpoint path up through the same function.
TEST(HardeningConfigValues, CheckpointPathLookUpNamesWhyAPathCannotBeUsed) {
  test::TempDir dir;
  const CheckpointPathStatus missing = look_up_checkpoint_path(dir / "none.pt");
  EXPECT_EQ(missing.status.type(), std::filesystem::file_type::not_found);
  EXPECT_EQ(missing.problem, "");

  std::filesystem::create_symlink(dir / "b.pt", dir / "a.pt");
  std::filesystem::create_symlink(dir / "a.pt", dir / "b.pt");
  const CheckpointPathStatus loop = look_up_checkpoint_path(dir / "a.pt");
  EXPECT_EQ(loop.problem.rfind("cannot use the checkpoint path \"", 0), 0u) << loop.problem;
  EXPECT_CONTAINS(loop.problem, "symbolic links");

  const CheckpointPathStatus too_long = look_up_checkpoint_path(std::string(100000, 'x'));
  EXPECT_CONTAINS(too_long.problem, "(100000 characters): ");
  EXPECT_LT(too_long.problem.size(), 300u) << too_long.problem;
}

// ---------------------------------------------------------------- item 14: silent settings

TEST(HardeningConfigValues, MinLrAboveLrIsAnError) {
  // The tiny experiment's lr is 2e-3.
  const std::string text = tiny("schedule = { min_lr = 0.01 }\n");
  EXPECT_EQ(error_of(text), at_line(text, "min_lr") +
                                "23: stages.train.schedule.min_lr: expected at most the stage's "
                                "optimizer.lr (0.002) with decay = \"cosine\", found 0.01");
  EXPECT_CONTAINS(error_of(tiny(), {"schedule.min_lr=1", "optimizer.lr=0.5"}),
                  "--set schedule.min_lr=1: stages.train.schedule.min_lr: expected at most");
  EXPECT_DOUBLE_EQ(parse(tiny("schedule = { min_lr = 0.002 }\n")).stages[0].schedule.min_lr, 0.002);
  // "constant" never reads min_lr.
  EXPECT_NO_THROW(parse(tiny("schedule = { decay = \"constant\", min_lr = 0.01 }\n")));
}

}  // namespace
}  // namespace exprun
