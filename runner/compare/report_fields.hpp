// The fields of report.json and sweep.json that `exprun compare` reads, checked for their types
// once when a file is loaded, so that a hand-edited or damaged report is refused with the file,
// the field's JSON pointer and what was expected, and the comparison can rely on them.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>

namespace exprun {

// Each throws ConfigError "<file>: <pointer>: expected <type>, found <what>" (report/json_fields).
// Besides /config, /stages and /trials, fields that are absent stay allowed: a run that failed
// early has no metrics, and compare says so.
void check_run_fields(const std::filesystem::path& file, const nlohmann::json& report);
void check_sweep_fields(const std::filesystem::path& file, const nlohmann::json& sweep);

}  // namespace exprun
