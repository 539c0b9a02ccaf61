// Issue 12, bad input to the readers of reports and checkpoints: JSON nested far too deep, fields
// of the wrong type, numbers out of range, an unreadable sibling run at --resume, checkpoints cut
// anywhere in their header. Each must end in one line naming the file, never a crash.
#include <gtest/gtest.h>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <string>

#include "compare/comparison.hpp"
#include "compare/run_loader.hpp"
#include "config/config_error.hpp"
#include "config/experiment.hpp"
#include "run/resume.hpp"
#include "test_support.hpp"
#include "train/checkpoint.hpp"
#include "util/json_file.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::size_t kHostileDepth = 100000;

std::string deep_array(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

// {"a":{"a":...{"a":1}...}}
std::string deep_object(std::size_t depth) {
  std::string text;
  for (std::size_t i = 0; i < depth; ++i) text += "{\"a\":";
  return text + "1" + std::string(depth, '}');
}

std::string message_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "no exception";
  return "";
}

void expect_one_line(const std::string& message) {
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

// ---------------------------------------------------------------- util/json_file

TEST(HardeningJson, ArrayAndObjectNestedTooDeepAreErrorsWithTheirPlace) {
  const std::string array =
      message_of([] { parse_json_text(deep_array(kHostileDepth), "a.json"); });
  EXPECT_EQ(array,
            "a.json:1:257: nested deeper than 256 levels; exprun reads JSON at most 256 "
            "levels deep");
  // The 257th {"a": starts 256 * 5 bytes in.
  const std::string object =
      message_of([] { parse_json_text(deep_object(kHostileDepth), "o.json"); });
  EXPECT_CONTAINS(object, "o.json:1:1281: nested deeper than 256 levels");
}

TEST(HardeningJson, DepthAtTheLimitIsRead) {
  EXPECT_NO_THROW(parse_json_text(deep_array(kMaxJsonDepth), "a.json"));
  EXPECT_NO_THROW(parse_json_text(deep_object(kMaxJsonDepth), "o.json"));
  // Brackets inside strings do not count.
  EXPECT_NO_THROW(parse_json_text("[\"" + std::string(1000, '[') + "\\\"[\"]", "s.json"));
}

TEST(HardeningJson, NumberOutOfRangeIsNamedByItsPointer) {
  const std::string message =
      message_of([] { parse_json_text("{\"a\": [0,\n {\"b~/c\": 1e400}]}", "n.json"); });
  EXPECT_EQ(message,
            "n.json:2:11: /a/1/b~0~1c: number out of range (number overflow parsing '1e400'); "
            "expected a number a double can hold");
  expect_one_line(message);
}

TEST(HardeningJson, SyntaxErrorsAreOneLineWithLineAndColumn) {
  const std::string message = message_of([] { parse_json_text("{\n  \"a\": tru\n}", "x.json"); });
  EXPECT_CONTAINS(message, "x.json:2:");
  EXPECT_CONTAINS(message, ": not valid JSON: syntax error while parsing value");
  EXPECT_NOT_CONTAINS(message, "json.exception");
  expect_one_line(message);
}

// The document is built in the same pass that checks it: it must be what nlohmann builds.
TEST(HardeningJson, TheDocumentReadIsTheOneWritten) {
  const json doc = {{"a", {1, -2, 3u, 2.5, "x", nullptr, true, json::array(), json::object()}},
                    {"b", {{"c", {{"d", {1, {2, {3}}}}}}}},
                    {"e\u00e9", "\\\"[{"}};
  for (const int indent : {-1, 2}) {
    const std::string text = doc.dump(indent);
    EXPECT_EQ(parse_json_text(text, "d.json"), json::parse(text)) << text;
  }
  EXPECT_EQ(parse_json_text(deep_array(kMaxJsonDepth), "a.json"),
            json::parse(deep_array(kMaxJsonDepth)));
}

// The place of the bracket too deep, after strings with brackets, numbers and whitespace.
TEST(HardeningJson, TheBracketTooDeepIsFoundAfterOtherText) {
  const std::string prefix = "{\"k\": \"[[{{\\\"\", \"n\": [1, 2.5e3],\n  \"d\": ";
  const std::string message =
      message_of([&] { parse_json_text(prefix + deep_array(300) + "}", "p.json"); });
  // The object is level 1, so the 256th bracket of the array is the first too deep.
  const std::size_t column = prefix.size() - prefix.rfind('\n') - 1 + 256;
  EXPECT_EQ(message, "p.json:2:" + std::to_string(column) +
                         ": nested deeper than 256 levels; exprun reads JSON at most 256 levels "
                         "deep");
}

TEST(HardeningJson, ArrayIndicesInThePointerCountNestedValues) {
  const std::string message =
      message_of([] { parse_json_text(R"({"a": [[1, 2], {"x": [3]}, "s", -1e999]})", "i.json"); });
  EXPECT_CONTAINS(message, "i.json:1:33: /a/3: number out of range");
}

TEST(HardeningJson, FilesThatAreMissingOrDirectoriesAreNamed) {
  test::TempDir dir("exprun-json");
  EXPECT_EQ(message_of([&] { read_json_file(dir / "none.json"); }),
            (dir / "none.json").string() + ": no such file");
  EXPECT_EQ(message_of([&] { read_json_file(dir.path()); }),
            dir.path().string() + ": is a directory, expected a JSON file");
}

// ---------------------------------------------------------------- compare

// The smallest report compare reads in full.
json minimal_report() {
  json overall = {{"mre", 1.5},
                  {"sd", 0.5},
                  {"sdr", {{"2.0", 80.0}, {"2.5", 85.0}, {"3.0", 90.0}, {"4.0", 95.0}}},
                  {"count", 2}};
  return {{"kind", "run"},
          {"schema_version", 2},
          {"experiment", "e"},
          {"run_id", "r1"},
          {"status", "completed"},
          {"config", {{"experiment", {{"name", "e"}}}, {"stages", {{{"name", "train"}}}}}},
          {"stages",
           {{{"name", "train"},
             {"status", "completed"},
             {"data", {{"landmarks", {"S", "N"}}}},
             {"best",
              {{"overall", overall},
               {"per_landmark", {{"S", overall}, {"N", overall}}},
               {"per_group", json::object()}}}}}}};
}

std::string load_error(const fs::path& file) {
  try {
    compare_runs(load_runs(file), {});
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError for " << file;
  return "";
}

TEST(HardeningCompare, TheMinimalReportIsCompared) {
  test::TempDir dir("exprun-compare");
  test::write_text(dir / "report.json", minimal_report().dump());
  const Comparison c = compare_runs(load_runs(dir / "report.json"), {});
  ASSERT_EQ(c.rows.size(), 1u);
  EXPECT_EQ(c.rows[0].metrics[0].value, 1.5);
}

// compare reads the configured stages only when they are there: a report without them has no
// final stage to take metrics from, but is listed, not dereferenced.
TEST(HardeningCompare, AReportWithoutConfiguredStagesIsCompared) {
  test::TempDir dir("exprun-compare");
  for (const json& config : {json::object(), json{{"experiment", {{"name", "e"}}}}}) {
    json report = minimal_report();
    report["config"] = config;
    test::write_text(dir / "report.json", report.dump());
    const Comparison c = compare_runs(load_runs(dir / "report.json"), {});
    EXPECT_EQ(c.rows.size(), 1u);
  }
  const auto r = test::run_exprun({"compare", (dir / "report.json").string()});
  test::expect_no_crash(r);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
}

TEST(HardeningCompare, DeeplyNestedReportsAreRefusedWithoutACrash) {
  test::TempDir dir("exprun-compare");
  const fs::path array = dir / "array.json", object = dir / "object.json";
  test::write_text(array, deep_array(kHostileDepth));
  test::write_text(object, deep_object(kHostileDepth));
  EXPECT_CONTAINS(load_error(array), array.string() + ":1:257: nested deeper than 256 levels");
  EXPECT_CONTAINS(load_error(object), object.string() + ":1:1281: nested deeper than 256 levels");

  // A deep value inside an otherwise good report, through the CLI: exit 2, one line.
  std::string text = minimal_report().dump();
  text.insert(text.size() - 1, ",\"extra\":" + deep_object(kHostileDepth));
  test::write_text(dir / "inner.json", text);
  const auto r = test::run_exprun({"compare", (dir / "inner.json").string()});
  test::expect_no_crash(r);
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_EQ(test::split_lines(r.err).size(), 1u) << r.describe();
  EXPECT_CONTAINS(r.err, (dir / "inner.json").string() + ":1:");
  EXPECT_CONTAINS(r.err, "nested deeper than 256 levels");
}

TEST(HardeningCompare, WrongTypedFieldsNameTheFileAndThePointer) {
  struct Case {
    const char* pointer;
    json value;
    const char* expected;  // the end of the message
  };
  const std::vector<Case> cases = {
      {"/status", 3, "expected a string, found number 3"},
      {"/error", false, "expected a string, found boolean false"},
      {"/experiment", json::array({1, 2}), "expected a string, found an array of 2"},
      {"/config/experiment", "x", "expected an object, found string \"x\""},
      {"/config/stages/0/name", 7, "expected a string, found number 7"},
      {"/stages/0", "train", "expected an object, found string \"train\""},
      {"/stages/0/name", nullptr, "expected a string, found null"},
      {"/stages/0/status", 1, "expected a string, found number 1"},
      {"/stages/0/error", json::object(), "expected a string, found an object"},
      {"/stages/0/data/landmarks/1", 2, "expected a string, found number 2"},
      {"/stages/0/best", 4, "expected an object or null, found number 4"},
      {"/stages/0/best/overall/mre", "1.5", "expected a number or null, found string \"1.5\""},
      {"/stages/0/best/overall/sdr/2.5", true, "expected a number or null, found boolean true"},
      {"/stages/0/best/per_landmark/N/mre", "x", "expected a number or null, found string \"x\""},
  };
  test::TempDir dir("exprun-compare");
  const fs::path file = dir / "report.json";
  for (const auto& c : cases) {
    json report = minimal_report();
    report[json::json_pointer(c.pointer)] = c.value;
    test::write_text(file, report.dump());
    const std::string message = load_error(file);
    EXPECT_EQ(message, file.string() + ": " + c.pointer + ": " + c.expected);
  }
  // Null metrics are what a stage without validation writes: allowed.
  json report = minimal_report();
  report["/stages/0/best/overall/sd"_json_pointer] = nullptr;
  test::write_text(file, report.dump());
  EXPECT_NO_THROW(compare_runs(load_runs(file), {}));
}

TEST(HardeningCompare, NumbersOutOfRangeNameTheField) {
  test::TempDir dir("exprun-compare");
  std::string text = minimal_report().dump(1);
  const std::string good = "\"mre\": 1.5";
  ASSERT_NE(text.find(good), std::string::npos);
  text.replace(text.find(good), good.size(), "\"mre\": 1e400");
  const fs::path file = dir / "report.json";
  test::write_text(file, text);
  const auto r = test::run_exprun({"compare", file.string()});
  test::expect_no_crash(r);
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_EQ(test::split_lines(r.err).size(), 1u) << r.describe();
  EXPECT_CONTAINS(r.err, file.string() + ":");
  EXPECT_CONTAINS(r.err, ": /stages/0/best/overall/mre: number out of range");
}

TEST(HardeningCompare, HugeBaselineNumberIsOutOfRangeNotALibraryError) {
  test::TempDir dir("exprun-compare");
  test::write_text(dir / "report.json", minimal_report().dump());
  for (const char* number : {"99999999999999999999999999", "18446744073709551616", "0", "2"}) {
    const auto r =
        test::run_exprun({"compare", (dir / "report.json").string(), "--baseline", number});
    test::expect_no_crash(r);
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_EQ(r.err, std::string("exprun: error: --baseline ") + number +
                         ": expected a run number from 1 to 1, or a report/run directory (see "
                         "--help)\n");
  }
}

TEST(HardeningCompare, SweepTrialDirectoriesMustLieInTheSweep) {
  test::TempDir dir("exprun-compare");
  const json sweep = {{"kind", "sweep"},
                      {"schema_version", 1},
                      {"experiment", "e"},
                      {"sweep_id", "s"},
                      {"trials", {{{"run_dir", "../elsewhere"}, {"status", "completed"}}}}};
  test::write_text(dir / "sweep.json", sweep.dump());
  EXPECT_EQ(load_error(dir / "sweep.json"),
            (dir / "sweep.json").string() +
                ": /trials/0/run_dir: expected the name of a trial directory beside sweep.json "
                "(\"trial-001\"), found \"../elsewhere\"");
  json typed = sweep;
  typed["trials"][0]["run_dir"] = 12;
  test::write_text(dir / "sweep.json", typed.dump());
  EXPECT_EQ(
      load_error(dir / "sweep.json"),
      (dir / "sweep.json").string() + ": /trials/0/run_dir: expected a string, found number 12");
}

// ---------------------------------------------------------------- --resume

TEST(HardeningResume, DamagedSiblingReportsArePassedOverWithAWarning) {
  test::TempDir dir("exprun-resume");
  Experiment experiment;
  experiment.name = "e";
  experiment.output_dir = dir.path().string();
  const fs::path runs = dir / "e";
  // Newest first in name order: the damaged ones must not hide the unfinished one.
  test::write_text(runs / "20260101-000001" / "report.json", R"({"status": "running"})");
  test::write_text(runs / "20260101-000002" / "report.json", R"({"status": "completed"})");
  test::write_text(runs / "20260101-000003" / "report.json", deep_array(kHostileDepth));
  test::write_text(runs / "20260101-000004" / "report.json", "{\"status\": ");
  test::write_text(runs / "20260101-000005" / "report.json", R"({"status": 3})");
  test::write_text(runs / "20260101-000006" / "report.json", "[1]");
  testing::internal::CaptureStderr();
  fs::path chosen;
  EXPECT_NO_THROW(chosen = find_run_to_resume(experiment));
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(chosen, runs / "20260101-000001");
  for (const char* id :
       {"20260101-000003", "20260101-000004", "20260101-000005", "20260101-000006"}) {
    EXPECT_CONTAINS(err, "exprun: warning: passing over run " + (runs / id).string() + ": " +
                             (runs / id / "report.json").string() + ":");
  }
  EXPECT_CONTAINS(err, "nested deeper than 256 levels");
  EXPECT_CONTAINS(err, "report.json: /status: expected a string, found number 3\n");
  EXPECT_CONTAINS(err,
                  "report.json: (the whole document): expected an object, found an array "
                  "of 1\n");
  EXPECT_EQ(test::split_lines(err).size(), 4u) << err;
}

TEST(HardeningResume, ADeepReportOfTheRunItselfIsAnError) {
  test::TempDir dir("exprun-resume");
  test::write_text(dir / "report.json", deep_object(kHostileDepth));
  const std::string message = message_of([&] { read_run_to_resume(dir.path(), Experiment{}); });
  EXPECT_EQ(message, "cannot resume: " + (dir / "report.json").string() +
                         ":1:1281: nested deeper than 256 levels; exprun reads JSON at most 256 "
                         "levels deep");
  test::write_text(dir / "report.json", R"({"config": {"stages": []}, "stages": []})");
  EXPECT_EQ(message_of([&] { read_run_to_resume(dir.path(), Experiment{}); }),
            "cannot resume: " + (dir / "report.json").string() + " is not an exprun run report");
}

TEST(HardeningResume, TheCommandLineWarnsAndDoesNotCrash) {
  test::TempDir dir("exprun-resume");
  test::TinyExperiment tiny;
  tiny.output = dir / "out";
  test::write_text(dir / "tiny.toml", tiny.toml());
  const fs::path run = dir / "out" / "tiny" / "20260101-000001";
  test::write_text(run / "report.json", deep_array(kHostileDepth));

  auto r = test::run_exprun({"run", (dir / "tiny.toml").string(), "--resume"});
  test::expect_no_crash(r);
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_CONTAINS(r.err, "exprun: warning: passing over run " + run.string() + ": " +
                             (run / "report.json").string() +
                             ":1:257: nested deeper than 256 levels");
  EXPECT_CONTAINS(r.err, "--resume: no unfinished run of experiment tiny");

  r = test::run_exprun({"run", (dir / "tiny.toml").string(), "--resume=" + run.string()});
  test::expect_no_crash(r);
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_CONTAINS(r.err, "exprun: error: cannot resume: " + (run / "report.json").string() +
                             ":1:257: nested deeper than 256 levels");
}

TEST(HardeningResume, FieldsTheResumedRunCarriesOverAreChecked) {
  test::TempDir dir("exprun-resume");
  const json good = {{"config", to_json(Experiment{})},
                     {"status", "interrupted"},
                     {"wall_time_s", 1.0},
                     {"stages", {{{"name", "train"}, {"status", "completed"}}}}};
  test::write_text(dir / "report.json", good.dump());
  EXPECT_NO_THROW(read_run_to_resume(dir.path(), Experiment{}));
  const std::vector<std::pair<std::string, json>> cases = {
      {"/status", 1},          {"/wall_time_s", "1"}, {"/resumes", json::object()},
      {"/stages", "train"},    {"/stages/0", 2},      {"/stages/0/name", nullptr},
      {"/stages/0/status", 3},
  };
  for (const auto& [pointer, value] : cases) {
    json report = good;
    report[json::json_pointer(pointer)] = value;
    test::write_text(dir / "report.json", report.dump());
    EXPECT_CONTAINS(
        message_of([&] { read_run_to_resume(dir.path(), Experiment{}); }),
        "cannot resume: " + (dir / "report.json").string() + ": " + pointer + ": expected ");
  }
  json nameless = good;
  nameless["stages"][0].erase("name");
  test::write_text(dir / "report.json", nameless.dump());
  EXPECT_EQ(message_of([&] { read_run_to_resume(dir.path(), Experiment{}); }),
            "cannot resume: " + (dir / "report.json").string() +
                ": /stages/0/name: expected a string, found nothing");
}

// ---------------------------------------------------------------- checkpoints

class OneLayer : public sdk::Model {
 public:
  OneLayer() { conv_ = register_module("conv", torch::nn::Conv2d(1, 1, 1)); }
  torch::Tensor forward(const torch::Tensor& x) override { return conv_(x); }
  std::int64_t output_stride() const override { return 1; }

 private:
  torch::nn::Conv2d conv_{nullptr};
};

struct HardeningCheckpoint : ::testing::Test {
  void save(const fs::path& file, const std::function<void(CheckpointInfo&)>& edit = {}) {
    CheckpointInfo info;
    info.experiment = "e";
    info.stage = "s";
    info.config = {{"name", "s"}};
    info.landmark_symbols = {"S"};
    info.landmark_titles = {"Sella"};
    if (edit) edit(info);
    save_checkpoint(file, {model, optimizer, strategies, torch::kCPU}, info);
  }
  // read_checkpoint_info's message, checked to be one line that names the file.
  std::string error_of(const fs::path& file) {
    const std::string message = message_of([&] { read_checkpoint_info(file); });
    EXPECT_EQ(message.rfind("checkpoint " + file.string() + " is ", 0), 0u) << message;
    expect_one_line(message);
    return message;
  }

  test::TempDir dir{"exprun-checkpoint"};
  OneLayer model;
  torch::optim::SGD optimizer{model.parameters(), torch::optim::SGDOptions(0.1)};
  std::vector<std::shared_ptr<sdk::MemoryStrategy>> strategies;
};

TEST_F(HardeningCheckpoint, EveryPrefixUpToFortyBytesIsTruncated) {
  const fs::path good = dir / "good.pt", cut = dir / "cut.pt";
  save(good);
  const std::string bytes = test::read_text(good);
  ASSERT_GT(bytes.size(), 40u);
  for (std::size_t length = 0; length <= 40; ++length) {
    test::write_text(cut, bytes.substr(0, length));
    const std::string message = error_of(cut);
    if (length < 24) {
      EXPECT_EQ(message, "checkpoint " + cut.string() + " is truncated (" + std::to_string(length) +
                             " bytes), shorter than its 24-byte header");
    } else {
      EXPECT_CONTAINS(message, " is truncated: " + std::to_string(length - 24) + " of ");
    }
  }
}

TEST_F(HardeningCheckpoint, CorruptHeadersAndPayloadsAreOneLineErrors) {
  const fs::path good = dir / "good.pt", bad = dir / "bad.pt";
  save(good);
  const std::string bytes = test::read_text(good);
  auto with = [&](std::size_t at, char value) {
    std::string copy = bytes;
    copy[at] = value;
    test::write_text(bad, copy);
    return error_of(bad);
  };
  EXPECT_CONTAINS(with(0, 'X'), "is not an exprun checkpoint (it does not start with EXPRUNCK)");
  test::write_text(bad, bytes.substr(0, 5) + "Q");
  EXPECT_CONTAINS(error_of(bad), "is not an exprun checkpoint");
  EXPECT_CONTAINS(with(8, 9), "is of container version 9; this exprun reads 1");
  EXPECT_CONTAINS(with(19, 1), "is truncated: ");  // the length's top byte
  test::write_text(bad, bytes + "x");
  EXPECT_CONTAINS(error_of(bad), "is longer than its header says");
  EXPECT_CONTAINS(with(20, static_cast<char>(bytes[20] ^ 1)), "is damaged: its CRC-32C");
  EXPECT_CONTAINS(with(bytes.size() - 3, static_cast<char>(bytes[bytes.size() - 3] ^ 1)),
                  "is damaged: its CRC-32C");
}

TEST_F(HardeningCheckpoint, EmbeddedJsonIsDepthLimited) {
  const fs::path file = dir / "deep.pt";
  json deep = 1;
  for (int i = 0; i < 300; ++i) deep = json::array({std::move(deep)});
  save(file, [&](CheckpointInfo& info) { info.config = deep; });
  EXPECT_CONTAINS(error_of(file), " is unreadable: exprun.config:1:257: nested deeper than 256");

  save(file, [&](CheckpointInfo& info) { info.trainer_state = {{"history", deep}}; });
  EXPECT_CONTAINS(error_of(file),
                  " is unreadable: exprun.trainer_state:1:267: nested deeper than 256");
}

// The stage config is parsed once, when the file is read, and handed over as JSON.
TEST_F(HardeningCheckpoint, StageConfigComesBackAsJson) {
  const fs::path file = dir / "config.pt";
  const json config = {{"name", "s"}, {"epochs", 2}, {"data", {{"image_size", {64, 48}}}}};
  save(file, [&](CheckpointInfo& info) { info.config = config; });
  EXPECT_EQ(read_checkpoint_info(file).config, config);
}

}  // namespace
}  // namespace exprun
