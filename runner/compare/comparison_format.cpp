#include "compare/comparison_format.hpp"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <optional>

#include "util/text.hpp"

namespace exprun {
namespace {

using Row = std::vector<std::string>;

// How a cell is decorated: terminal text marks the best with " *", Markdown in bold.
enum class Style { kText, kMarkdown };

std::string fixed(double value, int decimals, bool sign = false) {
  char buf[64];
  std::snprintf(buf, sizeof buf, sign ? "%+.*f" : "%.*f", decimals, value);
  return buf;
}

// SDR is in percent and reads well with 2 decimals; millimetres with 3.
int decimals_of(const std::string& metric) { return metric.rfind("sdr", 0) == 0 ? 2 : 3; }

std::string cell_text(const MetricCell& cell, int decimals, bool is_baseline, Style style) {
  if (!cell.value) return "-";
  std::string text = fixed(*cell.value, decimals);
  if (style == Style::kMarkdown && cell.best) text = "**" + text + "**";
  if (!is_baseline && cell.delta) text += " (" + fixed(*cell.delta, decimals, true) + ")";
  if (style == Style::kText && cell.best) text += " *";
  return text;
}

// A string's control characters written as escapes: a newline in a description would split
// a table row in two, and an escape sequence from a report would reach the terminal.
std::string printable(const std::string& text) {
  std::string out;
  for (const char ch : text) {
    const auto byte = static_cast<unsigned char>(ch);
    if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\t') {
      out += "\\t";
    } else if (byte < 0x20 || byte == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    } else {
      out += ch;
    }
  }
  return out;
}

std::string config_text(const nlohmann::json& config, const std::string& key) {
  if (!config.contains(key)) return "-";
  const auto& value = config[key];
  return value.is_string() ? printable(value.get<std::string>()) : value.dump();
}

bool stages_differ(const Comparison& c) {
  std::string first;
  for (const auto& row : c.rows) {
    if (row.stage.empty()) continue;
    if (first.empty()) first = row.stage;
    if (row.stage != first) return true;
  }
  return false;
}

std::string common_stage(const Comparison& c) {
  for (const auto& row : c.rows)
    if (!row.stage.empty()) return row.stage;
  return "-";
}

// A table column of the text and Markdown tables: one config key, or a plugin's section (the
// keys under PREFIX, where PREFIX.plugin names a different plugin in some runs) folded into one
// cell per run, so that runs with different losses get one loss column rather than one per
// parameter of each loss. Runs of one plugin keep a column per parameter.
struct ConfigColumn {
  std::string title;              // the key, or the section's prefix
  std::vector<std::string> keys;  // the shown keys it stands for
  std::string section;            // "" for a plain key; else the prefix ("stages.train.loss")
};

bool plugin_differs(const Comparison& c, const std::string& prefix) {
  const std::string key = prefix + ".plugin";
  std::optional<nlohmann::json> first;
  for (const auto& row : c.rows) {
    if (row.run.report.is_null()) continue;  // nothing to compare
    const nlohmann::json value = row.config.contains(key) ? row.config[key] : nlohmann::json();
    if (!first) first = value;
    if (*first != value) return true;
  }
  return false;
}

// The longest prefix of `key` (whole dotted components) whose plugin differs between runs; ""
// when there is none.
std::string plugin_section_of(const Comparison& c, const std::string& key) {
  std::string best;
  for (std::size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', dot + 1))
    if (plugin_differs(c, key.substr(0, dot))) best = key.substr(0, dot);
  return best;
}

std::vector<ConfigColumn> config_columns(const Comparison& c) {
  std::vector<ConfigColumn> columns;
  for (const auto& key : c.keys) {
    const std::string section = plugin_section_of(c, key);
    if (section.empty()) {
      columns.push_back({key, {key}, ""});
      continue;
    }
    auto it = std::find_if(columns.begin(), columns.end(),
                           [&](const ConfigColumn& col) { return col.section == section; });
    if (it == columns.end()) {
      columns.push_back({section, {}, section});
      it = std::prev(columns.end());
    }
    it->keys.push_back(key);
  }
  return columns;
}

// "wing{epsilon=2, omega=10}": the section's plugin, then its shown keys that this run has.
std::string section_text(const ConfigColumn& column, const nlohmann::json& config) {
  const std::string plugin_key = column.section + ".plugin";
  if (!config.contains(plugin_key)) return "-";
  std::string params;
  for (const auto& key : column.keys) {
    if (key == plugin_key || !config.contains(key)) continue;
    params += (params.empty() ? "" : ", ") + key.substr(column.section.size() + 1) + "=" +
              config_text(config, key);
  }
  const std::string plugin = config_text(config, plugin_key);
  return params.empty() ? plugin : plugin + "{" + params + "}";
}

std::size_t first_config_column(const Comparison& c) { return 3 + (stages_differ(c) ? 1 : 0); }

// The run table: one row per run, the differing keys then the metrics.
std::vector<Row> run_rows(const Comparison& c, Style style) {
  const bool stage_column = stages_differ(c);
  const std::vector<ConfigColumn> columns = config_columns(c);
  Row header = {"#", "run", "status"};
  if (stage_column) header.emplace_back("stage");
  for (const auto& column : columns) header.push_back(column.title);
  for (const auto& m : compared_metrics()) header.emplace_back(m.header);
  std::vector<Row> rows = {header};
  for (const auto& r : c.rows) {
    Row row = {std::to_string(r.number), r.run.label, r.run.status};
    if (stage_column) row.push_back(r.stage.empty() ? "-" : r.stage);
    for (const auto& column : columns)
      row.push_back(column.section.empty() ? config_text(r.config, column.keys.front())
                                           : section_text(column, r.config));
    const bool is_baseline = r.number == c.options.baseline + 1;
    for (std::size_t m = 0; m < r.metrics.size(); ++m)
      row.push_back(
          cell_text(r.metrics[m], decimals_of(compared_metrics()[m].name), is_baseline, style));
    rows.push_back(std::move(row));
  }
  return rows;
}

// `text` cut to `width` bytes ending in "...", never inside a UTF-8 character.
std::string elided(const std::string& text, std::size_t width) {
  if (text.size() <= width) return text;
  std::size_t keep = width > 3 ? width - 3 : 0;
  while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) --keep;
  return text.substr(0, keep) + "...";
}

// Narrows the columns in [first, last) (the run label and the config columns), widest first
// and none below kNarrowest, until the aligned table fits `width`; metrics are never cut.
// Returns whether any cell was cut.
bool fit_to_width(std::vector<Row>& rows, std::size_t first, std::size_t last, std::size_t width) {
  constexpr std::size_t kNarrowest = 12;
  if (width == 0 || rows.empty()) return false;
  std::vector<std::size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size() && c < widths.size(); ++c)
      widths[c] = std::max(widths[c], row[c].size());
  std::size_t total = 2 * (widths.size() - 1);
  for (std::size_t w : widths) total += w;
  bool cut = false;
  while (total > width) {
    std::size_t widest = last;
    for (std::size_t c = first; c < last; ++c)
      if (widths[c] > kNarrowest && (widest == last || widths[c] > widths[widest])) widest = c;
    if (widest == last) break;  // as narrow as columns go; the table stays wider
    --widths[widest];
    --total;
    cut = true;
  }
  if (!cut) return false;
  for (auto& row : rows)
    for (std::size_t c = first; c < last && c < row.size(); ++c) row[c] = elided(row[c], widths[c]);
  return true;
}

// The per-landmark table: one row per landmark, one column per run.
std::vector<Row> landmark_rows(const Comparison& c, Style style) {
  Row header = {"landmark MRE mm"};
  for (const auto& r : c.rows) header.push_back("#" + std::to_string(r.number));
  std::vector<Row> rows = {header};
  for (std::size_t l = 0; l < c.landmarks.size(); ++l) {
    Row row = {c.landmarks[l]};
    for (const auto& r : c.rows)
      row.push_back(cell_text(r.landmarks[l], 3, r.number == c.options.baseline + 1, style));
    rows.push_back(std::move(row));
  }
  return rows;
}

// Text left-aligned; numbers (the run number in column 0 when `numbered`, and every column
// from `first_numeric` on) right-aligned.
std::string aligned(const std::vector<Row>& rows, std::size_t first_numeric, bool numbered) {
  return align_columns(rows,
                       [&](std::size_t c) { return c >= first_numeric || (c == 0 && numbered); });
}

std::string markdown_escape(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '|') out += '\\';
    out += ch;
  }
  return out;
}

std::string markdown(const std::vector<Row>& rows, std::size_t first_numeric) {
  std::string out;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::string line = "|";
    for (const auto& cell : rows[i]) line += " " + markdown_escape(cell) + " |";
    out += line + "\n";
    if (i == 0) {
      std::string rule = "|";
      for (std::size_t c = 0; c < rows[i].size(); ++c)
        rule += (c >= first_numeric || c == 0) ? "---:|" : "---|";
      out += rule + "\n";
    }
  }
  return out;
}

std::string baseline_label(const Comparison& c) {
  const auto& base = c.rows[c.options.baseline];
  return "#" + std::to_string(base.number) + " " + base.run.label;
}

std::string key_summary(const Comparison& c) {
  if (c.options.all_keys) return "config: all " + std::to_string(c.total_keys) + " keys";
  return "config: " + std::to_string(c.keys.size()) + " of " + std::to_string(c.total_keys) +
         " keys differ (--all shows every key)";
}

std::string stage_summary(const Comparison& c) {
  if (c.options.stage) return "stage: " + *c.options.stage;
  if (stages_differ(c)) return "stage: each run's last stage";
  return "stage: " + common_stage(c) + " (the last stage; --stage to choose)";
}

std::size_t first_metric_column(const Comparison& c) {
  return first_config_column(c) + config_columns(c).size();
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"') out += '"';
    out += ch;
  }
  return out + "\"";
}

std::string csv_number(const std::optional<double>& value) {
  return value ? nlohmann::json(*value).dump() : "";
}

nlohmann::json cell_json(const MetricCell& cell) {
  return {{"value", cell.value ? nlohmann::json(*cell.value) : nlohmann::json(nullptr)},
          {"delta", cell.delta ? nlohmann::json(*cell.delta) : nlohmann::json(nullptr)},
          {"best", cell.best}};
}

}  // namespace

std::string comparison_table(const Comparison& c, std::size_t width) {
  std::string out = stage_summary(c) + "\nbaseline: " + baseline_label(c) +
                    "; (deltas) against it; * best of the runs\n" + key_summary(c) + "\n\n";
  std::vector<Row> rows = run_rows(c, Style::kText);
  const bool cut = fit_to_width(rows, 1, first_metric_column(c), width);
  out += aligned(rows, first_metric_column(c), true);
  if (cut)
    out += "(cells cut to fit " + std::to_string(width) +
           " columns; --format csv or json shows them whole)\n";
  if (c.options.landmarks && !c.landmarks.empty())
    out += "\n" + aligned(landmark_rows(c, Style::kText), 1, false);
  out += "\nreports:\n";
  for (const auto& r : c.rows)
    out += "  #" + std::to_string(r.number) + "  " + r.run.path.string() + "\n";
  bool any_note = false;
  for (const auto& r : c.rows) {
    if (r.note.empty()) continue;
    if (!any_note) out += "notes:\n";
    any_note = true;
    out += "  #" + std::to_string(r.number) + "  " + r.run.path.string() + ": " + r.note + "\n";
  }
  return out;
}

std::string comparison_markdown(const Comparison& c) {
  std::string out = "**" + markdown_escape(stage_summary(c)) + "** · baseline " +
                    markdown_escape(baseline_label(c)) +
                    ", (deltas) against it · **bold**: best of the runs · " +
                    markdown_escape(key_summary(c)) + "\n\n";
  out += markdown(run_rows(c, Style::kMarkdown), first_metric_column(c));
  if (c.options.landmarks && !c.landmarks.empty())
    out += "\n" + markdown(landmark_rows(c, Style::kMarkdown), 1);
  out += "\n";
  for (const auto& r : c.rows) {
    out += "- #" + std::to_string(r.number) + " `" + r.run.path.string() + "`";
    if (!r.note.empty()) out += ": " + markdown_escape(r.note);
    out += "\n";
  }
  return out;
}

std::string comparison_csv(const Comparison& c) {
  Row header = {"number", "label", "path", "status", "stage"};
  for (const auto& key : c.keys) header.push_back(key);
  for (const auto& m : compared_metrics()) {
    header.emplace_back(m.name);
    header.push_back(std::string(m.name) + "_delta");
  }
  header.emplace_back("best");
  for (const auto& symbol : c.landmarks) {
    header.push_back("landmark." + symbol + ".mre_mm");
    header.push_back("landmark." + symbol + ".mre_mm_delta");
  }
  header.emplace_back("note");
  std::vector<Row> rows = {header};
  for (const auto& r : c.rows) {
    Row row = {std::to_string(r.number), r.run.label, r.run.path.string(), r.run.status, r.stage};
    for (const auto& key : c.keys)
      row.push_back(r.config.contains(key) ? config_text(r.config, key) : "");
    std::vector<std::string> best;
    for (std::size_t m = 0; m < r.metrics.size(); ++m) {
      row.push_back(csv_number(r.metrics[m].value));
      row.push_back(csv_number(r.metrics[m].delta));
      if (r.metrics[m].best) best.emplace_back(compared_metrics()[m].name);
    }
    row.push_back(join(best, " "));
    for (const auto& cell : r.landmarks) {
      row.push_back(csv_number(cell.value));
      row.push_back(csv_number(cell.delta));
    }
    row.push_back(r.note);
    rows.push_back(std::move(row));
  }
  std::string out;
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) out += (i ? "," : "") + csv_field(row[i]);
    out += "\n";
  }
  return out;
}

nlohmann::json comparison_json(const Comparison& c) {
  nlohmann::json metrics = nlohmann::json::array();
  for (const auto& m : compared_metrics())
    metrics.push_back({{"name", m.name},
                       {"title", m.header},
                       {"better", m.lower_is_better ? "lower" : "higher"}});
  nlohmann::json runs = nlohmann::json::array();
  for (const auto& r : c.rows) {
    nlohmann::json config = nlohmann::json::object();
    for (const auto& key : c.keys)
      if (r.config.contains(key)) config[key] = r.config[key];
    nlohmann::json values = nlohmann::json::object();
    for (std::size_t m = 0; m < r.metrics.size(); ++m)
      values[compared_metrics()[m].name] = cell_json(r.metrics[m]);
    nlohmann::json run = {
        {"number", r.number},
        {"label", r.run.label},
        {"path", r.run.path.string()},
        {"experiment", r.run.report.is_object() ? r.run.report.value("experiment", "") : ""},
        {"run_id", r.run.report.is_object() ? r.run.report.value("run_id", "") : ""},
        {"status", r.run.status},
        {"stage", r.stage.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.stage)},
        {"note", r.note.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.note)},
        {"config", std::move(config)},
        {"metrics", std::move(values)}};
    if (c.options.landmarks) {
      nlohmann::json landmarks = nlohmann::json::object();
      for (std::size_t l = 0; l < c.landmarks.size(); ++l)
        landmarks[c.landmarks[l]] = cell_json(r.landmarks[l]);
      run["landmarks"] = std::move(landmarks);
    }
    runs.push_back(std::move(run));
  }
  nlohmann::json out = {
      {"schema_version", kComparisonSchemaVersion},
      {"kind", "comparison"},
      {"stage", c.options.stage ? nlohmann::json(*c.options.stage) : nlohmann::json(nullptr)},
      {"baseline", c.options.baseline + 1},
      {"all_keys", c.options.all_keys},
      {"keys", c.keys},
      {"total_keys", c.total_keys},
      {"metrics", std::move(metrics)},
      {"runs", std::move(runs)}};
  if (c.options.landmarks) out["landmarks"] = c.landmarks;
  return out;
}

}  // namespace exprun
