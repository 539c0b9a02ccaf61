// The table `exprun run` prints when a sweep ends: one row per trial (per trial and stage when
// the experiment has several stages) with its swept values, status and key results.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace exprun {

// From a sweep.json document; ends with one line per failed trial giving its error.
std::string sweep_summary_table(const nlohmann::json& sweep);

}  // namespace exprun
