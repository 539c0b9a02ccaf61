#include "aariz_files.hpp"

#include <nlohmann/json.hpp>

#include <cctype>
#include <cmath>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>

#include "dataset_files.hpp"

namespace exprun::aariz {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kFewestMmPerPixel = 0.001;
constexpr double kMostMmPerPixel = 10.0;

std::runtime_error error(const fs::path& file, const std::string& what) {
  return std::runtime_error(file.string() + ": " + what);
}

json read_json(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw error(file, "cannot open the file");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw error(file, std::string("not valid JSON: ") + e.what());
  }
}

// Symbols compared without case, and with every kind of prime (' ’ ´ `) as `.
std::string symbol_key(const std::string& symbol) {
  std::string out;
  for (std::size_t i = 0; i < symbol.size(); ++i) {
    if (symbol[i] == ' ') continue;
    if (symbol[i] == '\'') {
      out += '`';
    } else if (symbol.compare(i, 3, "\xE2\x80\x99") == 0) {  // right single quotation mark
      out += '`';
      i += 2;
    } else if (symbol.compare(i, 2, "\xC2\xB4") == 0) {  // acute accent
      out += '`';
      i += 1;
    } else {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(symbol[i])));
    }
  }
  return out;
}

// A coordinate as a number or numeric text. Non-finite text ("nan", "inf") is refused (JSON
// numbers are finite: nlohmann refuses 1e400): the pipeline would take NaN for a landmark that is
// not annotated and leave it out of training and scoring without a word, and the Aariz format has
// no such notion (every file lists all 29 landmarks).
double coordinate(const json& value, const char* axis, const fs::path& file, std::size_t entry,
                  const std::string& symbol) {
  const std::string where =
      "landmark " + std::to_string(entry + 1) + " (" + symbol + "): value." + axis;
  if (!value.is_object() || !value.contains(axis)) throw error(file, where + " is missing");
  const json& v = value.at(axis);
  std::optional<double> number;
  if (v.is_number()) number = v.get<double>();
  if (v.is_string()) {
    try {
      std::size_t used = 0;
      const double d = std::stod(v.get<std::string>(), &used);
      // std::stod also reads hexadecimal ("0x1A" as 26), which no annotation means.
      if (used == v.get<std::string>().size() &&
          v.get<std::string>().find_first_of("xX") == std::string::npos)
        number = d;
    } catch (const std::exception&) {
    }
  }
  if (number && std::isfinite(*number)) return *number;
  throw error(file, where + " is " + v.dump() + "; expected a finite number");
}

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  for (auto& f : fields) {
    const auto first = f.find_first_not_of(" \t");
    const auto last = f.find_last_not_of(" \t");
    f = first == std::string::npos ? "" : f.substr(first, last - first + 1);
  }
  return fields;
}

}  // namespace

torch::Tensor read_landmarks(const fs::path& file,
                             const std::vector<sdk::LandmarkInfo>& canonical) {
  const json doc = read_json(file);
  if (!doc.is_object() || !doc.contains("landmarks") || !doc.at("landmarks").is_array())
    throw error(file, "expected an object with a \"landmarks\" array");
  const json& entries = doc.at("landmarks");
  const auto k = canonical.size();
  auto out = torch::full({static_cast<std::int64_t>(k), 2}, NAN, torch::kFloat64);
  auto acc = out.accessor<double, 2>();
  std::vector<bool> seen(k, false);
  for (std::size_t e = 0; e < entries.size(); ++e) {
    const json& entry = entries[e];
    const std::string symbol = entry.contains("symbol") && entry["symbol"].is_string()
                                   ? entry["symbol"].get<std::string>()
                                   : "";
    const std::string title = entry.contains("title") && entry["title"].is_string()
                                  ? entry["title"].get<std::string>()
                                  : "";
    std::optional<std::size_t> index;
    for (std::size_t i = 0; i < k && !index; ++i)
      if (canonical[i].symbol == symbol) index = i;
    for (std::size_t i = 0; i < k && !index && !symbol.empty(); ++i)
      if (symbol_key(canonical[i].symbol) == symbol_key(symbol)) index = i;
    for (std::size_t i = 0; i < k && !index && !title.empty(); ++i)
      if (dataset_files::lower(canonical[i].title) == dataset_files::lower(title)) index = i;
    if (!index) {
      std::string known;
      for (const auto& l : canonical) known += (known.empty() ? "" : " ") + l.symbol;
      throw error(file, "landmark " + std::to_string(e + 1) + " has the unknown symbol \"" +
                            symbol + "\"" + (title.empty() ? "" : " (title \"" + title + "\")") +
                            "; expected one of: " + known);
    }
    if (seen[*index]) {
      throw error(file, "landmark " + canonical[*index].symbol + " appears twice (entry " +
                            std::to_string(e + 1) + ")");
    }
    seen[*index] = true;
    const json value = entry.contains("value") ? entry.at("value") : json();
    const std::string& name = canonical[*index].symbol;
    acc[static_cast<std::int64_t>(*index)][0] = coordinate(value, "x", file, e, name);
    acc[static_cast<std::int64_t>(*index)][1] = coordinate(value, "y", file, e, name);
  }
  if (entries.size() != k) {
    std::string missing;
    for (std::size_t i = 0; i < k; ++i)
      if (!seen[i]) missing += (missing.empty() ? "" : " ") + canonical[i].symbol;
    throw error(file, "has " + std::to_string(entries.size()) + " landmarks; expected " +
                          std::to_string(k) +
                          (missing.empty() ? "" : " (missing: " + missing + ")"));
  }
  return out;
}

std::string read_cvm_stage(const fs::path& file) {
  const json doc = read_json(file);
  if (!doc.is_object() || !doc.contains("cvm_stage") || !doc["cvm_stage"].is_object() ||
      !doc["cvm_stage"].contains("value"))
    throw error(file, "expected an object with \"cvm_stage\": { \"value\": 1..6 }");
  const json& v = doc["cvm_stage"]["value"];
  // The six cervical vertebral maturation stages; a number, or text holding one digit ("3").
  double stage = 0;
  if (v.is_number()) {
    stage = v.get<double>();
  } else if (v.is_string() && v.get<std::string>().size() == 1) {
    stage = v.get<std::string>()[0] - '0';
  }
  if (!(stage >= 1 && stage <= 6) || stage != std::floor(stage))
    throw error(file, "cvm_stage.value is " + v.dump() + "; expected a stage number from 1 to 6");
  return std::to_string(static_cast<int>(stage));
}

std::map<std::string, MachineRow> read_machine_table(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw error(file, "cannot open the file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // UTF-8 byte-order mark
  std::istringstream lines(text);
  std::string line;
  std::size_t line_number = 0;
  std::map<std::string, std::size_t> column;
  std::map<std::string, MachineRow> rows;
  while (std::getline(lines, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t,") == std::string::npos) continue;
    const auto fields = split_csv_line(line);
    const std::string where = file.string() + ":" + std::to_string(line_number);
    if (column.empty()) {
      for (std::size_t i = 0; i < fields.size(); ++i) column[dataset_files::lower(fields[i])] = i;
      for (const char* needed : {"cephalogram_id", "machine", "pixel_size"}) {
        if (!column.count(needed)) {
          throw std::runtime_error(where + ": the header has no column \"" + needed +
                                   "\" (expected cephalogram_id, machine, pixel_size, "
                                   "image_format, mode; found: " +
                                   line + ")");
        }
      }
      continue;
    }
    auto field = [&](const char* name) -> std::string {
      const auto i = column.at(name);
      if (i >= fields.size()) {
        throw std::runtime_error(where + ": the row has " + std::to_string(fields.size()) +
                                 " fields; column \"" + name + "\" is number " +
                                 std::to_string(i + 1));
      }
      return fields[i];
    };
    std::string id = field("cephalogram_id");
    if (dataset_files::has_extension(id, {".png", ".jpg", ".jpeg", ".bmp"}))
      id = fs::path(id).stem().string();
    MachineRow row;
    row.machine = field("machine");
    row.where = where;
    const std::string size = field("pixel_size");
    try {
      std::size_t used = 0;
      row.mm_per_pixel = std::stod(size, &used);
      if (used != size.size() || size.find_first_of("xX") != std::string::npos)
        row.mm_per_pixel = -1;
    } catch (const std::exception&) {
      row.mm_per_pixel = -1;
    }
    if (!(row.mm_per_pixel > 0) || !std::isfinite(row.mm_per_pixel)) {
      throw std::runtime_error(where + ": pixel_size \"" + size + "\" of " + id +
                               " is not a positive number of mm per pixel");
    }
    // Cephalograms are about 0.1 mm per pixel; beyond these bounds the column holds something
    // else (pixels per mm, micrometres, a typo) and every millimetre reported would be wrong.
    if (row.mm_per_pixel < kFewestMmPerPixel || row.mm_per_pixel > kMostMmPerPixel) {
      throw std::runtime_error(where + ": pixel_size \"" + size + "\" of " + id +
                               " is outside 0.001 to 10 mm per pixel");
    }
    const auto [it, inserted] = rows.emplace(id, row);
    if (!inserted &&
        (it->second.machine != row.machine || it->second.mm_per_pixel != row.mm_per_pixel)) {
      throw std::runtime_error(where + ": " + id + " is listed again with other values (first at " +
                               it->second.where + ")");
    }
  }
  if (column.empty()) throw error(file, "the file is empty; expected a header row");
  return rows;
}

}  // namespace exprun::aariz
