// The [sweep] table of an experiment file and the trials it expands to. A trial is a list of
// (key, value) pairs in --set spelling; applying one is appending "key=value" overrides, so a
// swept key means exactly what the same --set would mean.
#pragma once

#include <toml++/toml.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace exprun {

// One swept key and the values it takes, in the order written.
struct SweepAxis {
  std::string key;                  // --set spelling: "optimizer.lr", "stages.train.epochs"
  std::string table;                // "grid" or "zip"
  std::string where;                // file:line:column of the list
  std::vector<std::string> values;  // each as TOML text: 0.001, "adam", [128, 160]
  std::vector<std::string> value_where;
};

struct SweepValue {
  std::string key;
  std::string value;  // TOML text
  std::string where;  // file:line:column of this element of the list
  // "key=value", as given to --set.
  std::string set_argument() const { return key + "=" + value; }
};

struct SweepTrial {
  std::size_t index = 0;
  std::vector<SweepValue> values;  // zip keys, then grid keys, each in file order
  std::vector<std::string> set_arguments() const;
};

struct SweepSpec {
  std::vector<SweepAxis> zip;   // walked together: trial i takes the i-th value of each
  std::vector<SweepAxis> grid;  // every combination
  std::string where;            // the [sweep] table

  // "grid", "zip" or "zip x grid".
  std::string mode() const;
  // Zip keys, then grid keys, each in file order.
  std::vector<std::string> keys() const;
  std::size_t trial_count() const;
  // Zip rows outermost; within a row the grid as nested loops, the first grid key slowest.
  std::vector<SweepTrial> trials() const;
};

// Most trials one sweep may expand to: a typo in a grid should not plan a million runs.
inline constexpr std::size_t kMaxSweepTrials = 10000;

// The [sweep] table of `doc`, or nothing when it has none. Throws ConfigError naming the
// file position and key path of anything malformed.
std::optional<SweepSpec> read_sweep(const toml::table& doc);

// A swept key may not also be given by --set (nor contain or sit inside one): which value
// wins would be unclear. Throws ConfigError naming both.
void check_sweep_against_overrides(const SweepSpec& spec,
                                   const std::vector<std::string>& overrides);

}  // namespace exprun
