#include "config/toml_limits.hpp"

#include <vector>

#include "config/config_error.hpp"
#include "config/names.hpp"

namespace exprun {
namespace {

// Enough of TOML's lexical structure to tell keys from values and strings from the rest:
// comments, the four kinds of string, table headers, inline tables and arrays. Text that is
// not valid TOML is passed through for TOML++ to report; this only has to stay linear and
// never refuse valid text within the limits.
class Scanner {
 public:
  Scanner(std::string_view text, const std::string& source) : text_(text), source_(source) {}

  void run() {
    frames_.push_back({Kind::Top, 0});
    while (at_ < text_.size()) step();
    if (in_key_) check_key_length();
  }

 private:
  enum class Kind { Top, Array, Inline };
  struct Frame {
    Kind kind;
    std::size_t base;  // the depth of this container; its keys add their parts to it
  };

  char peek(std::size_t ahead = 0) const {
    return at_ + ahead < text_.size() ? text_[at_ + ahead] : '\0';
  }

  void advance(std::size_t count = 1) {
    for (; count > 0 && at_ < text_.size(); --count) {
      const char ch = text_[at_++];
      if (ch == '\n') {
        ++line_;
        column_ = 1;
      } else if ((static_cast<unsigned char>(ch) & 0xC0) != 0x80) {
        ++column_;  // columns count characters, as TOML++ does, not UTF-8 bytes
      }
    }
  }

  void step() {
    const char ch = peek();
    Frame& frame = frames_.back();
    if (ch == '#') {
      while (at_ < text_.size() && peek() != '\n') advance();
      return;
    }
    if (ch == '\n') {
      advance();
      // Arrays may span lines; a line of the top level starts with a key or a header.
      if (frame.kind == Kind::Top) {
        in_key_ = false;
        in_header_ = false;
        expecting_key_ = true;
      }
      return;
    }
    if (in_key_) return key_step(ch, frame);
    if (expecting_key_) return key_start_step(ch, frame);
    value_step(ch, frame);
  }

  void key_start_step(char ch, Frame& frame) {
    if (ch == ' ' || ch == '\t' || ch == '\r' || ch == ',') {
      advance();
      return;
    }
    if (frame.kind == Kind::Inline && ch == '}') {
      close_frame();
      return;
    }
    if (frame.kind == Kind::Top && ch == '[') {
      in_header_ = true;
      advance(peek(1) == '[' ? 2 : 1);
    }
    in_key_ = true;
    key_begin_ = at_;
    key_line_ = line_;
    key_column_ = column_;
    key_parts_ = 1;
    check_depth_of_key(frame);
  }

  void key_step(char ch, Frame& frame) {
    const bool blank = ch == ' ' || ch == '\t';
    if (blank && at_ == key_begin_) {  // "[ stage ]": the key starts after the blanks
      advance();
      key_begin_ = at_;
      key_column_ = column_;
      return;
    }
    if (ch == '"' || ch == '\'') {
      skip_string(ch);
    } else if (ch == '.') {
      ++key_parts_;
      check_depth_of_key(frame);
      advance();
    } else if (in_header_ ? ch == ']' : ch == '=') {
      check_key_length();
      in_key_ = false;
      expecting_key_ = false;
      if (frame.kind == Kind::Top) top_key_ = key_text();
      if (in_header_) {
        frames_.front().base = key_parts_;
        in_header_ = false;
      } else {
        value_depth_ = frame.base + key_parts_;
      }
      advance();
    } else {
      advance();
      // Only after a non-blank character, so that a run of blanks is not measured over and
      // over (blanks before the '=' do not count).
      if (!blank && at_ - key_begin_ > kMaxTomlKeyLength) check_key_length();
    }
  }

  void value_step(char ch, Frame& frame) {
    // Each element of an array sits one level below the array; a key's value was measured
    // with its key, and an inline table's contents are measured by their keys.
    const bool blank = ch == ' ' || ch == '\t' || ch == '\r' || ch == ',';
    if (frame.kind == Kind::Array && !blank && ch != ']' && too_deep(frame.base + 1)) {
      fail(line_, column_, top_key_, "values nest " + too_deep_message());
    }
    if (ch == '"' || ch == '\'') {
      skip_string(ch);
      return;
    }
    if (ch == '[' || ch == '{') {
      const std::size_t depth = frame.kind == Kind::Array ? frame.base + 1 : value_depth_;
      frames_.push_back({ch == '[' ? Kind::Array : Kind::Inline, depth});
      expecting_key_ = ch == '{';
      advance();
      return;
    }
    if ((ch == ']' && frame.kind == Kind::Array) || (ch == '}' && frame.kind == Kind::Inline)) {
      close_frame();
      return;
    }
    if (ch == ',' && frame.kind == Kind::Inline) expecting_key_ = true;
    advance();
  }

  void close_frame() {
    frames_.pop_back();
    expecting_key_ = false;
    advance();
  }

  // From an opening quote past its closing one (or to the end of the line or text, when the
  // string is unterminated: TOML++ reports that).
  void skip_string(char quote) {
    const bool basic = quote == '"';
    const bool multiline = peek(1) == quote && peek(2) == quote;
    advance(multiline ? 3 : 1);
    while (at_ < text_.size()) {
      const char ch = peek();
      if (basic && ch == '\\') {
        advance(2);
      } else if (multiline && ch == quote && peek(1) == quote && peek(2) == quote) {
        advance(3);
        // Up to two more quotes belong to the string: """a "quoted" word"""".
        for (int extra = 0; extra < 2 && peek() == quote; ++extra) advance();
        return;
      } else if (!multiline && ch == quote) {
        advance();
        return;
      } else if (!multiline && ch == '\n') {
        return;
      } else {
        advance();
      }
    }
  }

  // The key as written so far, without the blanks before its '=' or ']'.
  std::size_t key_length() const {
    std::size_t end = at_;
    while (end > key_begin_ && (text_[end - 1] == ' ' || text_[end - 1] == '\t')) --end;
    return end - key_begin_;
  }

  std::string key_text() const { return std::string(text_.substr(key_begin_, key_length())); }

  void check_depth_of_key(const Frame& frame) {
    // A table header starts from the top level, whatever header came before it.
    const std::size_t base = in_header_ ? 0 : frame.base;
    if (!too_deep(base + key_parts_)) return;
    // Inside an inline table the key is a fragment of a value: name the key that holds it.
    if (frame.kind == Kind::Top) fail_at_key("nests " + too_deep_message());
    fail(key_line_, key_column_, top_key_, "values nest " + too_deep_message());
  }

  // The one definition of the bound, for keys and array elements alike: `depth` is the level
  // of a value as toml_limits.hpp defines it, and level kMaxTomlDepth itself is allowed.
  static bool too_deep(std::size_t depth) { return depth > kMaxTomlDepth; }

  static std::string too_deep_message() {
    return "more than " + std::to_string(kMaxTomlDepth) + " levels deep " + kLevels;
  }

  void check_key_length() {
    if (key_length() <= kMaxTomlKeyLength) return;
    fail_at_key("is longer than " + std::to_string(kMaxTomlKeyLength) +
                " characters; a key or table header may have at most " +
                std::to_string(kMaxTomlKeyLength));
  }

  [[noreturn]] void fail_at_key(const std::string& message) const {
    fail(key_line_, key_column_, key_text(), message);
  }

  [[noreturn]] void fail(std::size_t line, std::size_t column, const std::string& key,
                         const std::string& message) const {
    std::string where;
    if (source_.rfind("--set ", 0) == 0) {
      // The argument may be the oversized thing itself: show its start only.
      where = "--set " + shorten_for_message(source_.substr(6), 60);
    } else {
      where = source_ + ":" + std::to_string(line) + ":" + std::to_string(column);
    }
    const std::string named = key.empty() ? "" : "key " + quote_for_message(key, 40, false) + ": ";
    throw ConfigError(where + ": " + named + message);
  }

  static constexpr const char* kLevels =
      "(the parts of table headers and keys and the arrays around a value count together)";

  std::string_view text_;
  const std::string& source_;
  std::size_t at_ = 0;
  std::size_t line_ = 1, column_ = 1;
  std::vector<Frame> frames_;
  bool expecting_key_ = true, in_key_ = false, in_header_ = false;
  std::size_t key_begin_ = 0, key_line_ = 1, key_column_ = 1, key_parts_ = 0;
  std::size_t value_depth_ = 0;
  std::string top_key_;
};

}  // namespace

void check_toml_limits(std::string_view text, const std::string& source_name) {
  Scanner(text, source_name).run();
}

}  // namespace exprun
