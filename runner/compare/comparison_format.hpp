// The four ways `exprun compare` prints a Comparison: aligned text for the terminal, a
// Markdown table, CSV (one row per run) and JSON (docs/cli.md and docs/report.schema.json
// describe its fields).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "compare/comparison.hpp"

namespace exprun {

inline constexpr int kComparisonSchemaVersion = 1;

std::string comparison_table(const Comparison& comparison);
std::string comparison_markdown(const Comparison& comparison);
std::string comparison_csv(const Comparison& comparison);
nlohmann::json comparison_json(const Comparison& comparison);

}  // namespace exprun
