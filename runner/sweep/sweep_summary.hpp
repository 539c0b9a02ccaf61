// The table `exprun run` prints when a sweep ends: one row per trial (per trial and stage when
// the experiment has several stages) with its swept values, status and key results.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace exprun {

// From a sweep.json document; ends with one line per failed trial giving its error.
std::string sweep_summary_table(const nlohmann::json& sweep);

// "1 completed, 1 interrupted, 1 not run": how many trials have each status, none left out.
std::string sweep_status_counts(const nlohmann::json& sweep);

// The indexes of the trials a signal stopped or kept from starting, for --trial.
std::vector<std::size_t> unfinished_trials(const nlohmann::json& sweep);

}  // namespace exprun
