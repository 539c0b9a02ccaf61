// Errors in what the user wrote: always carry where (file:line:column) and which key.
#pragma once

#include <toml++/toml.h>

#include <stdexcept>
#include <string>

namespace exprun {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "experiments/q.toml:12:9" for a node parsed from a file, "--set epochs=2" for an override.
std::string describe_source(const toml::source_region& where);

// Throws ConfigError "<where>: <key_path>: <message>".
[[noreturn]] void fail_at(const toml::source_region& where, const std::string& key_path,
                          const std::string& message);

// How a TOML value reads in an error message: `string "fast"`, `integer 3`, `table`.
std::string describe_node(const toml::node& node);

}  // namespace exprun
