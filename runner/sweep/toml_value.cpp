#include "sweep/toml_value.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace exprun {
namespace {

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (const char ch : text) {
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned char>(ch));
          out += escaped;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

bool is_bare_key(std::string_view key) {
  if (key.empty()) return false;
  for (const char ch : key) {
    const bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

// Shortest text that reads back as the same double, kept a float: "2.0", not "2". Plain
// decimals while they stay short (0.0003 reads better than 3e-04), else an exponent.
std::string float_text(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[400];
  auto result = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed);
  std::string text(buf, result.ptr);
  if (text.size() > 12) {
    result = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
    text.assign(buf, result.ptr);
  }
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

}  // namespace

std::string toml_value_text(const toml::node& node) {
  if (const auto* s = node.as_string()) return quote(s->get());
  if (const auto* i = node.as_integer()) return std::to_string(i->get());
  if (const auto* f = node.as_floating_point()) return float_text(f->get());
  if (const auto* b = node.as_boolean()) return b->get() ? "true" : "false";
  if (const auto* array = node.as_array()) {
    std::string out = "[";
    for (std::size_t i = 0; i < array->size(); ++i) {
      if (i) out += ", ";
      out += toml_value_text(*array->get(i));
    }
    return out + "]";
  }
  if (const auto* table = node.as_table()) {
    if (table->empty()) return "{}";
    std::string out = "{ ";
    bool first = true;
    for (const auto& [key, value] : *table) {
      if (!first) out += ", ";
      first = false;
      out += is_bare_key(key.str()) ? std::string(key.str()) : quote(key.str());
      out += " = " + toml_value_text(value);
    }
    return out + " }";
  }
  // Dates and times: TOML++ prints them in TOML syntax.
  std::ostringstream out;
  node.visit([&](const auto& value) { out << value; });
  return out.str();
}

nlohmann::json toml_value_json(const toml::node& node) {
  if (const auto* s = node.as_string()) return s->get();
  if (const auto* i = node.as_integer()) return i->get();
  if (const auto* f = node.as_floating_point()) {
    // JSON has no inf or nan: keep them as their TOML spelling.
    if (!std::isfinite(f->get())) return float_text(f->get());
    return f->get();
  }
  if (const auto* b = node.as_boolean()) return b->get();
  if (const auto* array = node.as_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& item : *array) out.push_back(toml_value_json(item));
    return out;
  }
  if (const auto* table = node.as_table()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, value] : *table) out[std::string(key.str())] = toml_value_json(value);
    return out;
  }
  return toml_value_text(node);
}

nlohmann::json toml_text_json(const std::string& text) {
  const toml::table doc = toml::parse("v = " + text);
  return toml_value_json(*doc.get("v"));
}

}  // namespace exprun
