#include "sweep/sweep_spec.hpp"

#include <algorithm>
#include <tuple>

#include "config/config_error.hpp"
#include "sweep/toml_value.hpp"
#include "util/text.hpp"

namespace exprun {
namespace {

// An axis while reading: TOML++ tables are sorted by key, so file order comes from positions.
struct FoundAxis {
  SweepAxis axis;
  toml::source_position begin;
};

std::string table_path(const std::string& table) { return "sweep." + table; }

// A key path that covers, or lies inside, another: "optimizer" and "optimizer.lr".
bool keys_overlap(const std::string& a, const std::string& b) {
  if (a == b) return true;
  const auto& shorter = a.size() < b.size() ? a : b;
  const auto& longer = a.size() < b.size() ? b : a;
  return longer.compare(0, shorter.size(), shorter) == 0 && longer[shorter.size()] == '.';
}

// Every trial of a sweep runs in one folder, <output>/<name>/<run-id>/trial-NNN.
void reject_folder_keys(const std::string& key, const toml::node& list, const std::string& path) {
  for (const char* fixed : {"experiment.name", "experiment.output"}) {
    if (keys_overlap(key, fixed)) {
      fail_at(list.source(), path,
              std::string(fixed) +
                  " cannot be swept: every trial runs in the sweep's one folder, "
                  "<output>/<name>/<run-id>/trial-NNN (sweep other experiment keys one by one, "
                  "e.g. \"experiment.seed\")");
    }
  }
}

void flatten(const toml::table& table, const std::string& prefix, const std::string& table_name,
             std::vector<FoundAxis>& out) {
  for (const auto& [name, node] : table) {
    const std::string key =
        prefix.empty() ? std::string(name.str()) : prefix + "." + std::string(name.str());
    const std::string path = table_path(table_name) + "." + key;
    if (const auto* sub = node.as_table()) {
      if (sub->empty()) {
        fail_at(node.source(), path, "expected a list of values to sweep, found an empty table");
      }
      flatten(*sub, key, table_name, out);
      continue;
    }
    const auto* list = node.as_array();
    if (!list) {
      fail_at(node.source(), path,
              "expected a list of values to sweep, e.g. [" + toml_value_text(node) +
                  ", ...], found " + describe_node(node));
    }
    if (list->empty()) {
      fail_at(node.source(), path, "expected a non-empty list of values to sweep, found []");
    }
    reject_folder_keys(key, node, path);
    FoundAxis found;
    found.axis.key = key;
    found.axis.table = table_name;
    found.axis.where = describe_source(node.source());
    for (const auto& item : *list) {
      found.axis.values.push_back(toml_value_text(item));
      found.axis.value_where.push_back(describe_source(item.source()));
    }
    found.begin = node.source().begin;
    out.push_back(std::move(found));
  }
}

std::vector<SweepAxis> read_axes(const toml::node& node, const std::string& table_name) {
  const auto* table = node.as_table();
  if (!table) {
    fail_at(node.source(), table_path(table_name),
            "expected a table [sweep." + table_name + "] of key = [values, ...], found " +
                describe_node(node));
  }
  std::vector<FoundAxis> found;
  flatten(*table, "", table_name, found);
  std::stable_sort(found.begin(), found.end(), [](const FoundAxis& a, const FoundAxis& b) {
    return std::tie(a.begin.line, a.begin.column) < std::tie(b.begin.line, b.begin.column);
  });
  std::vector<SweepAxis> axes;
  for (auto& f : found) axes.push_back(std::move(f.axis));
  return axes;
}

void check_distinct(const std::vector<const SweepAxis*>& axes) {
  for (std::size_t i = 0; i < axes.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      const SweepAxis& a = *axes[j];
      const SweepAxis& b = *axes[i];
      if (!keys_overlap(a.key, b.key)) continue;
      const std::string other = table_path(a.table) + "." + a.key + " at " + a.where;
      throw ConfigError(b.where + ": " + table_path(b.table) + "." + b.key + ": " +
                        (a.key == b.key ? "swept twice (also " + other + ")"
                                        : "overlaps the swept key " + other) +
                        "; sweep each setting once");
    }
  }
}

void check_zip_lengths(const std::vector<SweepAxis>& zip) {
  for (const auto& axis : zip) {
    if (axis.values.size() == zip.front().values.size()) continue;
    throw ConfigError(axis.where + ": " + table_path("zip") + "." + axis.key +
                      ": [sweep.zip] lists are walked together and must have the same length: " +
                      zip.front().key + " has " + std::to_string(zip.front().values.size()) +
                      " values, " + axis.key + " has " + std::to_string(axis.values.size()));
  }
}

// A value listed twice would run identical trials (on a CPU, to the same bits) and report them
// as two results. Values are compared as read, so 1e-3 and
// 0.001 are the same.
void check_grid_values_distinct(const std::vector<SweepAxis>& grid) {
  for (const auto& axis : grid) {
    for (std::size_t i = 0; i < axis.values.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (axis.values[i] != axis.values[j]) continue;
        throw ConfigError(
            axis.value_where[i] + ": " + table_path("grid") + "." + axis.key + ": " +
            axis.values[i] + " is listed twice (also at " + axis.value_where[j] +
            "); its trials would repeat others (to repeat a configuration, sweep experiment.seed)");
      }
    }
  }
}

// In [sweep.zip] a value may repeat, as long as its row differs in another key.
void check_zip_rows_distinct(const std::vector<SweepAxis>& zip) {
  if (zip.empty()) return;
  for (std::size_t i = 0; i < zip.front().values.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      const bool same = std::all_of(zip.begin(), zip.end(), [&](const SweepAxis& axis) {
        return axis.values[i] == axis.values[j];
      });
      if (!same) continue;
      std::string row;
      for (const auto& axis : zip)
        row += (row.empty() ? "" : ", ") + axis.key + "=" + axis.values[i];
      throw ConfigError(
          zip.front().value_where[i] + ": " + table_path("zip") + ": row " + std::to_string(i + 1) +
          " (" + row + ") repeats row " + std::to_string(j + 1) +
          "; its trials would repeat others (to repeat a configuration, sweep experiment.seed)");
    }
  }
}

}  // namespace

std::vector<std::string> SweepTrial::set_arguments() const {
  std::vector<std::string> out;
  for (const auto& v : values) out.push_back(v.set_argument());
  return out;
}

std::string SweepSpec::mode() const {
  if (zip.empty()) return "grid";
  if (grid.empty()) return "zip";
  return "zip x grid";
}

std::vector<std::string> SweepSpec::keys() const {
  std::vector<std::string> out;
  for (const auto& axis : zip) out.push_back(axis.key);
  for (const auto& axis : grid) out.push_back(axis.key);
  return out;
}

std::size_t SweepSpec::trial_count() const {
  std::size_t count = zip.empty() ? 1 : zip.front().values.size();
  for (const auto& axis : grid) {
    // Saturates instead of overflowing, so the limit check still sees "too many".
    if (count > kMaxSweepTrials) return count;
    count *= axis.values.size();
  }
  return count;
}

std::vector<SweepTrial> SweepSpec::trials() const {
  const std::size_t rows = zip.empty() ? 1 : zip.front().values.size();
  std::size_t combinations = 1;
  for (const auto& axis : grid) combinations *= axis.values.size();
  std::vector<SweepTrial> out;
  for (std::size_t row = 0; row < rows; ++row) {
    for (std::size_t combination = 0; combination < combinations; ++combination) {
      SweepTrial trial;
      trial.index = out.size();
      for (const auto& axis : zip) {
        trial.values.push_back({axis.key, axis.values[row], axis.value_where[row]});
      }
      // Mixed radix, last grid key fastest: the order of nested loops written in file order.
      std::vector<std::size_t> digits(grid.size());
      std::size_t rest = combination;
      for (std::size_t k = grid.size(); k-- > 0;) {
        digits[k] = rest % grid[k].values.size();
        rest /= grid[k].values.size();
      }
      for (std::size_t k = 0; k < grid.size(); ++k) {
        trial.values.push_back(
            {grid[k].key, grid[k].values[digits[k]], grid[k].value_where[digits[k]]});
      }
      out.push_back(std::move(trial));
    }
  }
  return out;
}

std::optional<SweepSpec> read_sweep(const toml::table& doc) {
  const toml::node* node = doc.get("sweep");
  if (!node) return std::nullopt;
  const auto* sweep = node->as_table();
  if (!sweep) {
    fail_at(node->source(), "sweep",
            "expected a table [sweep] holding [sweep.grid] and/or [sweep.zip], found " +
                describe_node(*node));
  }
  SweepSpec spec;
  spec.where = describe_source(sweep->source());
  for (const auto& [name, value] : *sweep) {
    const std::string key(name.str());
    if (key == "grid") {
      spec.grid = read_axes(value, "grid");
    } else if (key == "zip") {
      spec.zip = read_axes(value, "zip");
    } else {
      fail_at(value.source(), "sweep." + key,
              "unknown key '" + key +
                  "' in [sweep]: swept keys go in [sweep.grid] (every combination) or "
                  "[sweep.zip] (lists walked together)" +
                  did_you_mean(key, {"grid", "zip"}));
    }
  }
  if (spec.grid.empty() && spec.zip.empty()) {
    fail_at(sweep->source(), "sweep",
            "nothing to sweep: add [sweep.grid] (every combination) or [sweep.zip] (lists walked "
            "together) with at least one key = [values, ...]");
  }
  std::vector<const SweepAxis*> all;
  for (const auto& axis : spec.zip) all.push_back(&axis);
  for (const auto& axis : spec.grid) all.push_back(&axis);
  check_distinct(all);
  check_zip_lengths(spec.zip);
  check_grid_values_distinct(spec.grid);
  check_zip_rows_distinct(spec.zip);
  if (spec.trial_count() > kMaxSweepTrials) {
    fail_at(sweep->source(), "sweep",
            "expands to more than " + std::to_string(kMaxSweepTrials) +
                " trials; split the sweep or use [sweep.zip] for keys that move together");
  }
  return spec;
}

void check_sweep_against_overrides(const SweepSpec& spec,
                                   const std::vector<std::string>& overrides) {
  std::vector<const SweepAxis*> all;
  for (const auto& axis : spec.zip) all.push_back(&axis);
  for (const auto& axis : spec.grid) all.push_back(&axis);
  for (const auto& argument : overrides) {
    std::string key;
    // TOML allows spaces around the dots of a key path; they do not change the key.
    for (const char ch : argument.substr(0, argument.find('='))) {
      if (ch != ' ' && ch != '\t') key += ch;
    }
    for (const SweepAxis* axis : all) {
      if (!keys_overlap(key, axis->key)) continue;
      throw ConfigError(axis->where + ": " + table_path(axis->table) + "." + axis->key +
                        ": also given by --set " + argument +
                        "; a swept key cannot be overridden as well (remove the --set, or "
                        "the key from [sweep." +
                        axis->table + "]; exprun run --trial N runs chosen trials)");
    }
  }
}

}  // namespace exprun
