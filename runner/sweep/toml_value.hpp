// One TOML value written back as text and read as JSON. A swept value travels as --set text
// (so the loader's override machinery applies it) and is recorded in sweep.json as JSON.
#pragma once

#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include <string>

namespace exprun {

// Inline TOML that parses back to the same value and type: 0.001, 2.0 (not 2), "adam",
// [128, 160], { lr = 0.1, name = "sgd" }.
std::string toml_value_text(const toml::node& node);

// Numbers, strings, booleans, arrays and tables as JSON; dates and times as their TOML text.
nlohmann::json toml_value_json(const toml::node& node);

// The JSON of a value given as TOML text (as toml_value_text writes it).
nlohmann::json toml_text_json(const std::string& text);

}  // namespace exprun
