// The text table of `exprun compare` over runs with different plugins: a plugin's parameters
// folded into one column ("wing{omega=10}"), and cells cut to the terminal width
// (compare/comparison_format.hpp, compare/terminal_width.hpp). Reports are made by hand, with
// only the fields compare reads.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "compare/comparison.hpp"
#include "compare/comparison_format.hpp"
#include "compare/terminal_width.hpp"
#include "test_support.hpp"

namespace exprun {
namespace {

using nlohmann::json;

json loss_section(const std::string& plugin) {
  if (plugin == "adaptive_wing")
    return {{"plugin", plugin}, {"alpha", 2.1}, {"omega", 14}, {"epsilon", 1}, {"theta", 0.5}};
  if (plugin == "wing") return {{"plugin", plugin}, {"omega", 10}, {"epsilon", 2}};
  return {{"plugin", plugin}};
}

LoadedRun run(const std::string& label, const std::string& loss, double lr, double mre) {
  json stage = {{"name", "train"},
                {"epochs", 2},
                {"loss", loss_section(loss)},
                {"model", {{"plugin", "hrnet"}, {"width", 18}}},
                {"optimizer", {{"name", "adam"}, {"lr", lr}}}};
  json report = {
      {"status", "completed"},
      {"config", {{"experiment", {{"name", "e"}, {"seed", 1}}}, {"stages", {stage}}}},
      {"stages",
       {{{"name", "train"},
         {"status", "completed"},
         {"best",
          {{"overall",
            {{"mre", mre},
             {"sd", 1.0},
             {"sdr", {{"2.0", 50.0}, {"2.5", 60.0}, {"3.0", 70.0}, {"4.0", 80.0}}}}}}}}}}};
  return {"/runs/" + label + "/report.json", label, "completed", report, ""};
}

std::vector<LoadedRun> three_losses() {
  return {run("e/awing", "adaptive_wing", 1e-3, 2.0), run("e/wing", "wing", 1e-3, 1.9),
          run("e/mse", "mse", 2e-3, 2.5)};
}

// The header line of the run table and the run rows under it.
std::vector<std::string> table_lines(const std::string& out) {
  const auto lines = test::split_lines(out);
  std::vector<std::string> table;
  bool in = false;
  for (const auto& line : lines) {
    if (line.rfind("#  ", 0) == 0) in = true;
    if (in && (line.empty() || line[0] == '(')) break;
    if (in) table.push_back(line);
  }
  return table;
}

TEST(ComparisonLayoutTest, DifferentLossesShareOneColumnWithTheirParameters) {
  const Comparison c = compare_runs(three_losses(), {});
  const std::string out = comparison_table(c);
  const auto table = table_lines(out);
  ASSERT_EQ(table.size(), 4u) << out;
  EXPECT_CONTAINS(table[0], "stages.train.loss ");
  EXPECT_NOT_CONTAINS(table[0], "stages.train.loss.alpha");
  EXPECT_NOT_CONTAINS(table[0], "stages.train.loss.plugin");
  EXPECT_CONTAINS(table[1], "adaptive_wing{alpha=2.1, epsilon=1, omega=14, theta=0.5}");
  EXPECT_CONTAINS(table[2], "wing{epsilon=2, omega=10}");
  EXPECT_CONTAINS(table[3], " mse ");
  // A key outside the plugin section keeps its own column.
  EXPECT_CONTAINS(table[0], "stages.train.optimizer.lr");
  // Machine formats keep one column per key.
  EXPECT_CONTAINS(comparison_csv(c), "stages.train.loss.alpha");
  EXPECT_TRUE(comparison_json(c)["keys"].dump().find("stages.train.loss.omega") !=
              std::string::npos);
  EXPECT_CONTAINS(comparison_markdown(c), "| wing{epsilon=2, omega=10} |");
}

TEST(ComparisonLayoutTest, OnePluginKeepsAColumnPerParameter) {
  std::vector<LoadedRun> runs = {run("e/a", "wing", 1e-3, 2.0), run("e/b", "wing", 1e-3, 1.9)};
  runs[1].report["config"]["stages"][0]["loss"]["omega"] = 12;
  const std::string out = comparison_table(compare_runs(runs, {}));
  EXPECT_CONTAINS(table_lines(out).at(0), "stages.train.loss.omega");
}

TEST(ComparisonLayoutTest, WideTablesAreCutToTheWidthMetricsKept) {
  std::vector<LoadedRun> runs = three_losses();
  runs[0].label = "e/" + std::string(60, 'x');
  const Comparison c = compare_runs(runs, {});
  const std::string whole = comparison_table(c);
  std::size_t widest = 0;
  for (const auto& line : table_lines(whole)) widest = std::max(widest, line.size());
  ASSERT_GT(widest, 150u) << whole;
  EXPECT_NOT_CONTAINS(whole, "cells cut");

  const std::string cut = comparison_table(c, 150);
  const auto table = table_lines(cut);
  ASSERT_EQ(table.size(), 4u) << cut;
  for (const auto& line : table) EXPECT_LE(line.size(), 150u) << cut;
  EXPECT_CONTAINS(cut, "(cells cut to fit 150 columns; --format csv or json shows them whole)");
  EXPECT_CONTAINS(table[1], "...");
  // Every metric whole, with its delta and mark.
  EXPECT_CONTAINS(table[0], "SDR@4mm %");
  EXPECT_CONTAINS(table[2], "1.900 (-0.100) *");
  EXPECT_CONTAINS(table[3], "2.500 (+0.500)");
}

TEST(ComparisonLayoutTest, ColumnsNeverNarrowerThanTwelve) {
  const Comparison c = compare_runs(three_losses(), {});
  const std::string out = comparison_table(c, 20);
  // The loss cells are cut to 12 characters, no further; the table stays wider than 20.
  EXPECT_CONTAINS(out, "adaptive_...");
  EXPECT_CONTAINS(out, "(cells cut to fit 20 columns");
}

TEST(ComparisonLayoutTest, ColumnsVariableIsReadStrictly) {
  EXPECT_EQ(parse_columns("120"), 120u);
  EXPECT_EQ(parse_columns("1"), 1u);
  for (const char* bad : {"", "0", "-5", "12x", "abc", "100000", " 80"})
    EXPECT_FALSE(parse_columns(bad).has_value()) << '"' << bad << '"';
}

}  // namespace
}  // namespace exprun
