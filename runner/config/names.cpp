#include "config/names.hpp"

#include <cstdio>

namespace exprun {
namespace {

bool is_word_char(char ch) {
  return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
         ch == '_' || ch == '-';
}

}  // namespace

bool is_stage_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (const char ch : name)
    if (!is_word_char(ch)) return false;
  return true;
}

bool is_experiment_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength || name.front() == '.') return false;
  for (const char ch : name)
    if (!is_word_char(ch) && ch != '.') return false;
  return true;
}

std::string stage_name_rule() {
  return "1 to " + std::to_string(kMaxNameLength) +
         " letters, digits, '_' or '-' (it names the stage's folder, and --set "
         "stages.NAME.key and init = \"NAME:best\" must be able to name it)";
}

std::string experiment_name_rule() {
  return "1 to " + std::to_string(kMaxNameLength) +
         " letters, digits, '_', '-' or '.', not starting with '.' (it names a folder under "
         "the output folder)";
}

std::string shorten_for_message(const std::string& text, std::size_t keep) {
  std::size_t shown = text.size() > keep ? keep : text.size();
  // Cut at a character boundary, not inside a UTF-8 sequence.
  while (shown > 0 && shown < text.size() &&
         (static_cast<unsigned char>(text[shown]) & 0xC0) == 0x80)
    --shown;
  std::string out;
  for (std::size_t i = 0; i < shown; ++i) {
    const auto ch = static_cast<unsigned char>(text[i]);
    if (ch < 0x20 || ch == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", ch);
      out += escaped;
    } else {
      out += text[i];
    }
  }
  if (shown < text.size()) out += "...";
  return out;
}

std::string quote_for_message(const std::string& text, std::size_t keep, bool say_length) {
  std::string out = "\"" + shorten_for_message(text, keep) + "\"";
  if (say_length && text.size() > keep) out += " (" + std::to_string(text.size()) + " characters)";
  return out;
}

}  // namespace exprun
