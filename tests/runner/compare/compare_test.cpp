// `exprun compare` (docs/cli.md) and the report JSON Schema (docs/report.schema.json,
// docs/report.md). One tiny real run is made once; the other runs are copies of its report.json
// with one config key and the metrics changed, so every expected number is known exactly.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "compare/comparison.hpp"
#include "compare/run_loader.hpp"
#include "config/config_error.hpp"
#include "test_support.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::ProcessResult;

std::string fixed(double value, int decimals, bool sign = false) {
  char buf[64];
  std::snprintf(buf, sizeof buf, sign ? "%+.*f" : "%.*f", decimals, value);
  return buf;
}

// RFC 4180: fields separated by commas, quoted when they hold a comma, quote or newline.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (quoted) {
      if (ch == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (ch == '"') {
        quoted = false;
      } else {
        field += ch;
      }
    } else if (ch == '"') {
      quoted = true;
    } else if (ch == ',') {
      rows.back().push_back(field);
      field.clear();
    } else if (ch == '\n') {
      rows.back().push_back(field);
      field.clear();
      rows.emplace_back();
    } else {
      field += ch;
    }
  }
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

// The one error line of a failed command, without "exprun: error: ".
std::string error_of(const ProcessResult& r, int code) {
  EXPECT_EQ(r.exit_code, code) << r.describe();
  test::expect_no_crash(r);
  const auto lines = test::split_lines(r.err);
  EXPECT_EQ(lines.size(), 1u) << r.describe();
  const std::string prefix = "exprun: error: ";
  if (lines.empty() || lines[0].rfind(prefix, 0) != 0) return r.err;
  return lines[0].substr(prefix.size());
}

json read_json(const fs::path& file) { return json::parse(test::read_text(file)); }

void write_json(const fs::path& file, const json& doc) {
  test::write_text(file, doc.dump(2) + "\n");
}

// ---------------------------------------------------------------- the runs

// Run a: the real tiny run (lr 2e-3). Run b: lr 1e-3, MRE 1 mm worse, SDR@2mm 5 points
// better. Run c: lr 5e-4, MRE 0.5 mm better.
class CompareTest : public ::testing::Test {
 protected:
  struct Runs {
    test::TempDir dir{"exprun-compare"};
    fs::path a, b, c;  // run directories
    json report;       // run a's report.json
  };
  static inline std::unique_ptr<Runs> runs_;

  static void SetUpTestSuite() {
    runs_ = std::make_unique<Runs>();
    Runs& r = *runs_;
    test::TinyExperiment e;
    e.epochs = 1;
    e.output = r.dir / "results";
    test::write_text(r.dir / "tiny.toml", e.toml());
    const ProcessResult run = test::run_exprun({"run", (r.dir / "tiny.toml").string()});
    ASSERT_EQ(run.exit_code, 0) << run.describe();
    for (const auto& entry : fs::directory_iterator(r.dir / "results" / "tiny")) r.a = entry.path();
    r.report = read_json(r.a / "report.json");
    r.b = r.dir / "copies" / "b";
    r.c = r.dir / "copies" / "c";
    write_json(r.b / "report.json", variant(r.report, "b", 1e-3, +1.0, +5.0));
    write_json(r.c / "report.json", variant(r.report, "c", 5e-4, -0.5, 0.0));
  }
  static void TearDownTestSuite() { runs_.reset(); }

  // A copy of `report` as if run with another lr: best MRE shifted by `mre_shift` (overall and
  // every landmark), SDR@2mm by `sdr_shift`.
  static json variant(json report, const std::string& id, double lr, double mre_shift,
                      double sdr_shift) {
    report["run_id"] = id;
    report["config"]["stages"][0]["optimizer"]["lr"] = lr;
    json& best = report["stages"][0]["best"];
    best["overall"]["mre"] = best["overall"]["mre"].get<double>() + mre_shift;
    best["overall"]["sdr"]["2.0"] = best["overall"]["sdr"]["2.0"].get<double>() + sdr_shift;
    for (auto& [symbol, summary] : best["per_landmark"].items())
      summary["mre"] = summary["mre"].get<double>() + mre_shift;
    return report;
  }

  const fs::path& a() const { return runs_->a; }
  const fs::path& b() const { return runs_->b; }
  const fs::path& c() const { return runs_->c; }
  const json& report() const { return runs_->report; }
  const json& best() const { return runs_->report["stages"][0]["best"]; }
  double mre() const { return best()["overall"]["mre"].get<double>(); }
  std::string label_a() const { return "tiny/" + report()["run_id"].get<std::string>(); }

  ProcessResult compare(std::vector<std::string> args) {
    args.insert(args.begin(), "compare");
    return test::run_exprun(std::move(args));
  }
  // The output of a compare that must succeed.
  std::string output(std::vector<std::string> args) {
    const ProcessResult r = compare(std::move(args));
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    test::expect_no_crash(r);
    return r.out;
  }
  test::TempDir scratch_{"exprun-compare-case"};
};

TEST_F(CompareTest, TheRealRunAndItsCopiesMatchTheSchema) {
  test::expect_report_matches_schema(a() / "report.json");
  test::expect_report_matches_schema(b() / "report.json");
  test::expect_report_matches_schema(c() / "report.json");
}

// ---------------------------------------------------------------- table

TEST_F(CompareTest, DefaultShowsOnlyTheKeyThatDiffersWithMetricDeltas) {
  const std::string out = output({a().string(), b().string()});
  const auto total = flatten_config(report()).size();
  EXPECT_CONTAINS(out, "stage: train (the last stage; --stage to choose)\n");
  EXPECT_CONTAINS(out, "baseline: #1 " + label_a() + ";");
  EXPECT_CONTAINS(out, "config: 1 of " + std::to_string(total) + " keys differ");
  EXPECT_CONTAINS(out, "stages.train.optimizer.lr");
  EXPECT_NOT_CONTAINS(out, "stages.train.epochs");
  EXPECT_NOT_CONTAINS(out, "experiment.seed");

  const auto lines = test::split_lines(out);
  const std::size_t header = test::line_of(out, "stages.train.optimizer.lr") - 1;
  ASSERT_LT(header + 2, lines.size());
  // Run a: lr 0.002, MRE without a delta, best MRE (*); run b: MRE +1.000, SDR@2mm +5.00 (*).
  const std::string& row_a = lines[header + 1];
  const std::string& row_b = lines[header + 2];
  EXPECT_CONTAINS(row_a, label_a());
  EXPECT_CONTAINS(row_a, " 0.002 ");
  EXPECT_CONTAINS(row_a, fixed(mre(), 3) + " *");
  EXPECT_CONTAINS(row_b, "tiny/b");
  EXPECT_CONTAINS(row_b, " 0.001 ");
  EXPECT_CONTAINS(row_b, fixed(mre() + 1, 3) + " (+1.000)");
  EXPECT_NOT_CONTAINS(row_b, fixed(mre() + 1, 3) + " (+1.000) *");
  const double sdr2 = best()["overall"]["sdr"]["2.0"].get<double>();
  EXPECT_CONTAINS(row_b, fixed(sdr2 + 5, 2) + " (+5.00) *");
  EXPECT_CONTAINS(row_b, fixed(best()["overall"]["sd"].get<double>(), 3) + " (+0.000)");
  EXPECT_CONTAINS(out, "reports:\n  #1  " + (a() / "report.json").string() + "\n  #2  " +
                           (b() / "report.json").string() + "\n");
}

TEST_F(CompareTest, TableColumnsAreAligned) {
  const std::string out = output({a().string(), b().string(), c().string()});
  const auto lines = test::split_lines(out);
  const std::size_t header = test::line_of(out, "stages.train.optimizer.lr") - 1;
  for (std::size_t i = header; i < header + 4; ++i) {
    EXPECT_EQ(lines[i].size(), lines[header].size()) << out;
    // Every column begins where its header does: the header's "MRE mm" is right-aligned above
    // the value's last digit.
  }
  const auto mre_end = lines[header].find("MRE mm") + std::string("MRE mm").size();
  for (std::size_t i = header + 1; i < header + 4; ++i) {
    EXPECT_EQ(lines[i][mre_end], ' ') << out;
    EXPECT_NE(lines[i][mre_end - 1], ' ') << out;
  }
  // The lowest MRE is run c's.
  EXPECT_CONTAINS(lines[header + 3], fixed(mre() - 0.5, 3) + " (-0.500) *");
  EXPECT_NOT_CONTAINS(lines[header + 1], fixed(mre(), 3) + " *");
}

TEST_F(CompareTest, AllShowsEveryKey) {
  const std::string out = output({a().string(), b().string(), "--all"});
  const auto total = flatten_config(report()).size();
  EXPECT_CONTAINS(out, "config: all " + std::to_string(total) + " keys");
  for (const char* key : {"experiment.seed", "stages.train.epochs", "stages.train.model.width",
                          "stages.train.data.image_size", "stages.train.optimizer.lr"})
    EXPECT_CONTAINS(out, key);
  EXPECT_CONTAINS(out, "[64,80]");
}

TEST_F(CompareTest, BaselineByNumber) {
  const std::string out = output({a().string(), b().string(), "--baseline", "2"});
  EXPECT_CONTAINS(out, "baseline: #2 tiny/b;");
  const auto lines = test::split_lines(out);
  const std::size_t header = test::line_of(out, "stages.train.optimizer.lr") - 1;
  EXPECT_CONTAINS(lines[header + 1], fixed(mre(), 3) + " (-1.000) *");
  EXPECT_NOT_CONTAINS(lines[header + 2], "(+");

  const std::string message = error_of(compare({a().string(), "--baseline", "3"}), 2);
  EXPECT_CONTAINS(message, "--baseline 3: expected a run number from 1 to 1");
  // Read as a path, it used to say "-1: no such file".
  EXPECT_CONTAINS(error_of(compare({a().string(), "--baseline", "-1"}), 2),
                  "--baseline -1: expected a run number from 1 to 1");
}

// A newline split the row in two and an escape sequence reached the terminal.
TEST_F(CompareTest, ControlCharactersInAStringAreWrittenAsEscapes) {
  test::TempDir dir("exprun-compare-escapes");
  json odd = report();
  odd["run_id"] = "odd";
  odd["config"]["experiment"]["description"] = "first line\nsecond\x1b[31m";
  write_json(dir / "odd" / "report.json", odd);
  const std::string out = output({a().string(), (dir / "odd").string()});
  EXPECT_CONTAINS(out, "first line\\nsecond");
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
  const std::string markdown =
      output({a().string(), (dir / "odd").string(), "--format", "markdown"});
  EXPECT_CONTAINS(markdown, "first line\\nsecond");
}

TEST_F(CompareTest, BaselineByPathNotListedComesFirst) {
  const std::string out = output({b().string(), c().string(), "--baseline", a().string()});
  EXPECT_CONTAINS(out, "baseline: #1 " + label_a() + ";");
  EXPECT_CONTAINS(out, "  #1  " + (a() / "report.json").string() + "\n");
  // A listed path is not added twice.
  const std::string again =
      output({a().string(), b().string(), "--baseline", (b() / "report.json").string()});
  EXPECT_CONTAINS(again, "baseline: #2 tiny/b;");
  EXPECT_NOT_CONTAINS(again, "#3");
}

TEST_F(CompareTest, LandmarksSideBySide) {
  const std::string out = output({a().string(), b().string(), "--landmarks"});
  const auto& symbols = report()["stages"][0]["data"]["landmarks"];
  ASSERT_GT(symbols.size(), 1u);
  const auto lines = test::split_lines(out);
  const std::size_t header = test::line_of(out, "landmark MRE mm");
  ASSERT_GT(header, 0u) << out;
  EXPECT_NE(lines[header - 1].find("#1"), std::string::npos);
  EXPECT_NE(lines[header - 1].find("#2"), std::string::npos);
  for (std::size_t i = 0; i < symbols.size(); ++i) {
    const std::string symbol = symbols[i].get<std::string>();
    const double value = best()["per_landmark"][symbol]["mre"].get<double>();
    const std::string& row = lines[header + i];
    EXPECT_EQ(row.find(symbol), 0u) << row;
    EXPECT_CONTAINS(row, fixed(value, 3) + " *");
    EXPECT_CONTAINS(row, fixed(value + 1, 3) + " (+1.000)");
  }
}

TEST_F(CompareTest, DifferentLandmarkSetsAreRefusedWithLandmarks) {
  json fewer = report();
  fewer["run_id"] = "fewer";
  auto& stage = fewer["stages"][0];
  const std::string dropped = stage["data"]["landmarks"].back().get<std::string>();
  stage["data"]["landmarks"].erase(stage["data"]["landmarks"].size() - 1);
  stage["best"]["per_landmark"].erase(dropped);
  write_json(scratch_ / "fewer" / "report.json", fewer);
  const std::string message =
      error_of(compare({a().string(), (scratch_ / "fewer").string(), "--landmarks"}), 2);
  EXPECT_CONTAINS(message, "--landmarks: " + (scratch_ / "fewer" / "report.json").string());
  EXPECT_CONTAINS(message, "but " + (a() / "report.json").string() + " has");
  EXPECT_CONTAINS(message, "same landmarks");
  // Without --landmarks the overall metrics still compare.
  output({a().string(), (scratch_ / "fewer").string()});
}

// ---------------------------------------------------------------- other formats

TEST_F(CompareTest, CsvHasOneRowPerRunWithTheDocumentedColumns) {
  const auto rows = parse_csv(output({a().string(), b().string(), "--format", "csv"}));
  ASSERT_EQ(rows.size(), 3u);
  const std::vector<std::string> header = {
      "number",        "label",         "path",
      "status",        "stage",         "stages.train.optimizer.lr",
      "mre_mm",        "mre_mm_delta",  "sd_mm",
      "sd_mm_delta",   "sdr_2.0",       "sdr_2.0_delta",
      "sdr_2.5",       "sdr_2.5_delta", "sdr_3.0",
      "sdr_3.0_delta", "sdr_4.0",       "sdr_4.0_delta",
      "best",          "note"};
  EXPECT_EQ(rows[0], header);
  for (const auto& row : rows) EXPECT_EQ(row.size(), header.size());
  EXPECT_EQ(rows[1][0], "1");
  EXPECT_EQ(rows[1][1], label_a());
  EXPECT_EQ(rows[1][2], (a() / "report.json").string());
  EXPECT_EQ(rows[1][3], "completed");
  EXPECT_EQ(rows[1][4], "train");
  EXPECT_EQ(rows[1][5], "0.002");
  // Full precision: the value reads back as the report's double.
  EXPECT_EQ(std::stod(rows[1][6]), mre());
  EXPECT_EQ(rows[1][7], "");  // the baseline has no delta
  EXPECT_EQ(std::stod(rows[2][7]), (mre() + 1) - mre());
  EXPECT_EQ(rows[1][18], "mre_mm");
  EXPECT_EQ(rows[2][18], "sdr_2.0");
  EXPECT_EQ(rows[2][19], "");
}

TEST_F(CompareTest, CsvWithLandmarksAddsTwoColumnsPerLandmark) {
  const auto rows =
      parse_csv(output({a().string(), b().string(), "--format", "csv", "--landmarks"}));
  const auto& symbols = report()["stages"][0]["data"]["landmarks"];
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].size(), 20 + 2 * symbols.size());
  const std::string first = symbols[0].get<std::string>();
  EXPECT_EQ(rows[0][19], "landmark." + first + ".mre_mm");
  EXPECT_EQ(rows[0][20], "landmark." + first + ".mre_mm_delta");
  EXPECT_EQ(std::stod(rows[2][19]), best()["per_landmark"][first]["mre"].get<double>() + 1);
}

TEST_F(CompareTest, JsonHasTheDocumentedFieldsAndMatchesTheSchema) {
  const std::string text =
      output({a().string(), b().string(), c().string(), "--format", "json", "--landmarks"});
  test::write_text(scratch_ / "comparison.json", text);
  test::expect_report_matches_schema(scratch_ / "comparison.json");
  const json doc = json::parse(text);
  EXPECT_EQ(doc["kind"], "comparison");
  EXPECT_EQ(doc["schema_version"], 1);
  EXPECT_EQ(doc["stage"], nullptr);
  EXPECT_EQ(doc["baseline"], 1);
  EXPECT_EQ(doc["keys"], json::array({"stages.train.optimizer.lr"}));
  EXPECT_EQ(doc["metrics"][0],
            json({{"name", "mre_mm"}, {"title", "MRE mm"}, {"better", "lower"}}));
  EXPECT_EQ(doc["metrics"][2]["better"], "higher");
  EXPECT_EQ(doc["landmarks"], report()["stages"][0]["data"]["landmarks"]);
  ASSERT_EQ(doc["runs"].size(), 3u);
  const json& run_c = doc["runs"][2];
  EXPECT_EQ(run_c["number"], 3);
  EXPECT_EQ(run_c["label"], "tiny/c");
  EXPECT_EQ(run_c["run_id"], "c");
  EXPECT_EQ(run_c["experiment"], "tiny");
  EXPECT_EQ(run_c["stage"], "train");
  EXPECT_EQ(run_c["note"], nullptr);
  EXPECT_EQ(run_c["config"], json({{"stages.train.optimizer.lr", 5e-4}}));
  EXPECT_EQ(run_c["metrics"]["mre_mm"]["value"], mre() - 0.5);
  EXPECT_EQ(run_c["metrics"]["mre_mm"]["delta"], (mre() - 0.5) - mre());
  EXPECT_EQ(run_c["metrics"]["mre_mm"]["best"], true);
  EXPECT_EQ(doc["runs"][0]["metrics"]["mre_mm"]["delta"], nullptr);
  EXPECT_EQ(doc["runs"][0]["metrics"]["mre_mm"]["best"], false);
  EXPECT_EQ(doc["runs"][1]["metrics"]["sdr_2.0"]["best"], true);
}

TEST_F(CompareTest, MarkdownIsATable) {
  const std::string out = output({a().string(), b().string(), "--format", "markdown"});
  EXPECT_CONTAINS(out,
                  "| # | run | status | stages.train.optimizer.lr | MRE mm | SD mm | SDR@2mm % | "
                  "SDR@2.5mm % | SDR@3mm % | SDR@4mm % |\n"
                  "|---:|---|---|---|---:|---:|---:|---:|---:|---:|\n");
  EXPECT_CONTAINS(out,
                  "| 1 | " + label_a() + " | completed | 0.002 | **" + fixed(mre(), 3) + "** |");
  EXPECT_CONTAINS(out, "- #2 `" + (b() / "report.json").string() + "`\n");
}

// ---------------------------------------------------------------- sweeps, stages, failures

TEST_F(CompareTest, SweepDirectoryExpandsToItsTrials) {
  const fs::path sweep = scratch_ / "sweep-1";
  json doc = {{"schema_version", 1},
              {"kind", "sweep"},
              {"experiment", "tiny"},
              {"sweep_id", "sweep-1"},
              {"source_file", "s.toml"},
              {"overrides", json::array()},
              {"mode", "grid"},
              {"keys", json::array({"optimizer.lr"})},
              {"trial_count", 3},
              {"status", "failed"},
              {"started_at", "2026-11-23T07:02:48Z"},
              {"finished_at", "2026-11-23T07:05:00Z"},
              {"wall_time_s", 130.0},
              {"trials", json::array()}};
  for (int i = 0; i < 3; ++i) {
    const bool failed = i == 2;
    doc["trials"].push_back({{"index", i},
                             {"run_dir", "trial-00" + std::to_string(i)},
                             {"values", {{"optimizer.lr", i == 0 ? 2e-3 : 1e-3}}},
                             {"set", json::array({"optimizer.lr=..."})},
                             {"status", failed ? "failed" : "completed"},
                             {"error", failed ? json("stage train: out of memory") : json()},
                             {"wall_time_s", 10.0},
                             {"stages", json::array()}});
  }
  write_json(sweep / "sweep.json", doc);
  test::expect_report_matches_schema(sweep / "sweep.json");
  fs::create_directories(sweep / "trial-000");
  fs::create_directories(sweep / "trial-001");
  fs::copy_file(a() / "report.json", sweep / "trial-000" / "report.json");
  fs::copy_file(b() / "report.json", sweep / "trial-001" / "report.json");

  const std::string out = output({sweep.string()});
  EXPECT_CONTAINS(out, "baseline: #1 tiny/sweep-1/trial-000;");
  EXPECT_CONTAINS(out, "tiny/sweep-1/trial-001");
  EXPECT_CONTAINS(out, fixed(mre() + 1, 3) + " (+1.000)");
  const auto lines = test::split_lines(out);
  const std::string& failed = lines[test::line_of(out, "tiny/sweep-1/trial-002") - 1];
  EXPECT_CONTAINS(failed, " failed ");
  EXPECT_CONTAINS(out, "notes:\n  #3  " + (sweep / "trial-002" / "report.json").string() +
                           ": no report.json (trial failed): stage train: out of memory\n");
  // The sweep.json itself names the same sweep; a run beside it adds a fourth row.
  const std::string more = output({(sweep / "sweep.json").string(), c().string()});
  EXPECT_CONTAINS(more, "  #4  " + (c() / "report.json").string());
}

TEST_F(CompareTest, FailedRunsAreMarkedNotDropped) {
  json failed = report();
  failed["run_id"] = "failed";
  failed["status"] = "failed";
  failed["error"] = "stage train: CUDA out of memory";
  failed["stages"][0] = {{"name", "train"}, {"status", "failed"}, {"error", "CUDA out of memory"}};
  write_json(scratch_ / "failed" / "report.json", failed);
  test::expect_report_matches_schema(scratch_ / "failed" / "report.json");
  const std::string out = output({a().string(), (scratch_ / "failed").string()});
  const auto lines = test::split_lines(out);
  const std::string& row = lines[test::line_of(out, "tiny/failed") - 1];
  EXPECT_CONTAINS(row, " failed ");
  EXPECT_CONTAINS(row, "  -  ");
  EXPECT_CONTAINS(out, (scratch_ / "failed" / "report.json").string() +
                           ": stage train has no validation metrics (failed: CUDA out of memory)");
  // With one run left that has metrics, nothing is marked best.
  EXPECT_NOT_CONTAINS(lines[test::line_of(out, "1  " + label_a()) - 1], " *");
}

TEST_F(CompareTest, StageOptionPicksTheStage) {
  const std::string out = output({a().string(), b().string(), "--stage", "train"});
  EXPECT_CONTAINS(out, "stage: train\n");
  const std::string message = error_of(compare({a().string(), "--stage", "trian"}), 2);
  EXPECT_EQ(message,
            "--stage trian: no compared run has a stage named \"trian\"; did you mean "
            "'train'?");
}

// ---------------------------------------------------------------- unreadable input

// The ConfigError message load_runs throws for `path` (exit 2 through the CLI).
std::string load_error(const fs::path& path) {
  try {
    load_runs(path);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError for " << path;
  return "";
}

TEST_F(CompareTest, UnreadableOrForeignFilesAreClearErrors) {
  // Through the CLI: one line, exit 2.
  const fs::path missing = scratch_ / "nope.json";
  EXPECT_EQ(error_of(compare({a().string(), missing.string()}), 2),
            missing.string() + ": no such file");
  EXPECT_CONTAINS(error_of(compare({a().string(), "--format", "xml"}), 2),
                  "--format: expected table, markdown, csv or json, found 'xml'");
  EXPECT_CONTAINS(error_of(compare({}), 2), "compare needs at least one report");

  // The other cases in-process: the same messages, without starting exprun each time.
  const fs::path empty_dir = scratch_ / "empty";
  fs::create_directories(empty_dir);
  EXPECT_EQ(load_error(empty_dir),
            empty_dir.string() +
                ": neither a run directory (no report.json) nor a sweep directory (no sweep.json)");

  test::write_text(scratch_ / "broken.json", "{\"kind\": \"run\",");
  const std::string broken = load_error(scratch_ / "broken.json");
  EXPECT_CONTAINS(broken, (scratch_ / "broken.json").string() + ":1:");
  EXPECT_CONTAINS(broken, ": not valid JSON: syntax error while parsing object key");

  test::write_text(scratch_ / "other.json", "{\"name\": \"x\"}");
  EXPECT_EQ(load_error(scratch_ / "other.json"),
            (scratch_ / "other.json").string() +
                ": not an exprun report: expected a JSON object with \"kind\" and "
                "\"schema_version\"");

  test::write_text(scratch_ / "eval.json", "{\"kind\": \"evaluation\", \"schema_version\": 1}");
  EXPECT_EQ(load_error(scratch_ / "eval.json"),
            (scratch_ / "eval.json").string() +
                ": not an exprun run report or sweep: \"kind\" is \"evaluation\", expected "
                "\"run\" or \"sweep\"");

  json newer = report();
  newer["schema_version"] = 3;
  write_json(scratch_ / "newer.json", newer);
  EXPECT_EQ(load_error(scratch_ / "newer.json"),
            (scratch_ / "newer.json").string() +
                ": schema_version 3 was written by a newer exprun; this exprun reads version 2 "
                "(update exprun to compare it)");

  newer["schema_version"] = "1";
  write_json(scratch_ / "odd.json", newer);
  EXPECT_EQ(load_error(scratch_ / "odd.json"),
            (scratch_ / "odd.json").string() +
                ": unknown schema_version \"1\"; this exprun reads version 2");

  json no_stages = report();
  no_stages.erase("stages");
  write_json(scratch_ / "no_stages.json", no_stages);
  EXPECT_EQ(load_error(scratch_ / "no_stages.json"),
            (scratch_ / "no_stages.json").string() +
                ": not a complete exprun report: expected \"config\" (object) and \"stages\" "
                "(array)");
}

TEST_F(CompareTest, HelpNamesEveryOption) {
  const std::string out = output({"--help"});
  for (const char* option : {"--baseline", "--all", "--landmarks", "--stage", "--format"})
    EXPECT_CONTAINS(out, option);
}

// ---------------------------------------------------------------- the schema itself

TEST_F(CompareTest, SchemaRejectsBrokenReports) {
  struct Case {
    const char* what;
    std::function<void(json&)> edit;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"missing run_id", [](json& r) { r.erase("run_id"); }, "$: 'run_id' is a required property"},
      {"unknown status", [](json& r) { r["status"] = "done"; },
       "$.status: 'done' is not one of ['running', 'completed', 'failed', 'interrupted']"},
      {"best_epoch as text", [](json& r) { r["stages"][0]["best_epoch"] = "1"; },
       "$.stages[0].best_epoch: '1' is not of type 'integer'"},
      {"SDR without 4.0", [](json& r) { r["stages"][0]["best"]["overall"]["sdr"].erase("4.0"); },
       "$.stages[0].best.overall.sdr: '4.0' is a required property"},
      {"failed without error", [](json& r) { r["status"] = "failed"; },
       "$: 'error' is a required property"},
      {"unknown top-level key", [](json& r) { r["extra"] = 1; },
       "$: Additional properties are not allowed ('extra' was unexpected)"},
  };
  // One validator run for all cases: each case's file gets its own messages.
  std::vector<fs::path> files;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    json broken = report();
    cases[i].edit(broken);
    files.push_back(scratch_ / ("broken-" + std::to_string(i) + ".json"));
    write_json(files.back(), broken);
  }
  const std::string errors = test::report_schema_errors(files);
  for (std::size_t i = 0; i < cases.size(); ++i)
    EXPECT_CONTAINS(errors, files[i].string() + ": " + cases[i].message) << cases[i].what;
  // Broken files are also caught where the TempDir check looks: beside experiment.toml.
  EXPECT_EQ(test::written_reports(scratch_.path()), std::vector<fs::path>{});
  test::write_text(scratch_ / "run" / "experiment.toml", "");
  write_json(scratch_ / "run" / "report.json", report());
  EXPECT_EQ(test::written_reports(scratch_.path()),
            std::vector<fs::path>{scratch_ / "run" / "report.json"});
}

TEST_F(CompareTest, SchemaAcceptsTheChainAndResumeAdditions) {
  json chained = report();
  json& stage = chained["stages"][0];
  stage["init"] = {{"from", "pretrain:best"},
                   {"checkpoint", "pretrain/checkpoints/best.pt"},
                   {"stage", "pretrain"},
                   {"epoch", 3}};
  stage["focus"] = {{"worst", 2},
                    {"weight", 3.0},
                    {"ranked_by", "best validation MRE per landmark of stage pretrain (epoch 3)"},
                    {"chosen",
                     {{{"rank", 1}, {"symbol", "Go"}, {"mre_mm", 2.3}},
                      {{"rank", 2}, {"symbol", "Me"}, {"mre_mm", 2.1}}}}};
  stage["checkpoints"]["epochs"] = {"train/checkpoints/epoch_1.pt"};
  stage["resumed"] = {
      {{"from", "train/checkpoints/latest.pt"}, {"epoch", 1}, {"step_in_epoch", 2}}};
  chained["resumes"] = {{{"at", "2026-11-23T08:00:00Z"},
                         {"previous_status", "interrupted"},
                         {"environment", chained["environment"]}}};
  write_json(scratch_ / "chained.json", chained);
  json interrupted = report();
  interrupted["status"] = "interrupted";
  interrupted["error"] = "stopped by SIGTERM";
  interrupted["stages"][0]["status"] = "interrupted";
  write_json(scratch_ / "interrupted.json", interrupted);
  EXPECT_EQ(test::report_schema_errors({scratch_ / "chained.json", scratch_ / "interrupted.json"}),
            "");
}

}  // namespace
}  // namespace exprun
