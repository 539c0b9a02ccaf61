// The four ways `exprun compare` prints a Comparison: aligned text for the terminal, a
// Markdown table, CSV (one row per run) and JSON (docs/cli.md and docs/report.schema.json
// describe its fields).
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>

#include "compare/comparison.hpp"

namespace exprun {

inline constexpr int kComparisonSchemaVersion = 1;

// The text and Markdown tables fold each plugin section's keys into one column
// ("wing{omega=10}"); CSV and JSON keep one column or member per key.
// width: the terminal's columns (compare/terminal_width.hpp); when the table is wider, the run
// label and config cells are cut (never below 12 characters, never the metrics) and a line says
// so. 0: no limit.
std::string comparison_table(const Comparison& comparison, std::size_t width = 0);
std::string comparison_markdown(const Comparison& comparison);
std::string comparison_csv(const Comparison& comparison);
nlohmann::json comparison_json(const Comparison& comparison);

}  // namespace exprun
