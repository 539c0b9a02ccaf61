#include "util/json_file.hpp"

#include <algorithm>
#include <cstddef>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <vector>

namespace exprun {
namespace {

using json = nlohmann::json;

// The text as a const char* range that also tells `last` which character the parser read most
// recently: SAX events carry no position, yet a bracket too deep is named by its place. The
// parser reads a bracket just before it reports the container the bracket opens.
class Cursor {
 public:
  using iterator_category = std::forward_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  Cursor(const char* at, const char** last) : at_(at), last_(last) {}
  reference operator*() const {
    *last_ = at_;
    return *at_;
  }
  Cursor& operator++() {
    ++at_;
    return *this;
  }
  Cursor operator++(int) {
    Cursor before = *this;
    ++at_;
    return before;
  }
  bool operator==(const Cursor& other) const { return at_ == other.at_; }
  // Spelt out: the fuzz build (tests/fuzz) is C++17, where != is not derived from ==.
  bool operator!=(const Cursor& other) const { return at_ != other.at_; }

 private:
  const char* at_;
  const char** last_;
};

// nlohmann's own DOM builder, stopped at the first container too deep (before anything that
// deep exists in memory), keeping the path to the value being read so that a number out of
// range can be named by its JSON pointer. One pass builds the document and checks it.
class Reader : public nlohmann::detail::json_sax_dom_parser<json> {
  using Dom = nlohmann::detail::json_sax_dom_parser<json>;

 public:
  Reader(json& result, std::size_t max_depth, const char* const& last_read)
      : Dom(result, /*allow_exceptions=*/false), max_depth_(max_depth), last_read_(last_read) {}

  bool null() { return Dom::null() && value_done(); }
  bool boolean(bool value) { return Dom::boolean(value) && value_done(); }
  bool number_integer(number_integer_t value) { return Dom::number_integer(value) && value_done(); }
  bool number_unsigned(number_unsigned_t value) {
    return Dom::number_unsigned(value) && value_done();
  }
  bool number_float(number_float_t value, const string_t& text) {
    return Dom::number_float(value, text) && value_done();
  }
  bool string(string_t& value) { return Dom::string(value) && value_done(); }
  bool binary(binary_t& value) { return Dom::binary(value) && value_done(); }
  bool start_object(std::size_t size) { return open(false) && Dom::start_object(size); }
  bool key(string_t& name) {
    frames_.back().key = name;
    return Dom::key(name);
  }
  bool end_object() { return Dom::end_object() && close(); }
  bool start_array(std::size_t size) { return open(true) && Dom::start_array(size); }
  bool end_array() { return Dom::end_array() && close(); }
  bool parse_error(std::size_t position, const std::string& token,
                   const nlohmann::detail::exception& e) {
    position_ = position;
    token_size_ = token.size();
    id_ = e.id;
    message_ = e.what();
    return false;
  }

  // Where the bracket that went too deep opens, when that is why parsing stopped.
  const std::optional<const char*>& too_deep_at() const { return too_deep_at_; }
  std::size_t position() const { return position_; }
  std::size_t token_size() const { return token_size_; }
  int id() const { return id_; }
  const std::string& message() const { return message_; }

  // The pointer of the value being read when parsing stopped.
  std::string pointer() const {
    json::json_pointer pointer;
    for (const auto& frame : frames_) {
      if (frame.array)
        pointer /= frame.index;
      else
        pointer /= frame.key;
    }
    return pointer.to_string();
  }

 private:
  struct Frame {
    bool array;
    std::size_t index = 0;
    std::string key;
  };

  bool open(bool array) {
    if (frames_.size() >= max_depth_) {
      too_deep_at_ = last_read_;
      return false;
    }
    frames_.push_back(Frame{array, 0, {}});
    return true;
  }
  bool close() {
    frames_.pop_back();
    return value_done();
  }
  bool value_done() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
    return true;
  }

  std::size_t max_depth_;
  const char* const& last_read_;
  std::vector<Frame> frames_;
  std::optional<const char*> too_deep_at_;
  std::size_t position_ = 0;
  std::size_t token_size_ = 0;
  int id_ = 0;
  std::string message_;
};

// "<source>:<line>:<column>" of a 0-based byte offset.
std::string located(const std::string& source, const std::string& text, std::size_t offset) {
  offset = std::min(offset, text.size());
  std::size_t line = 1, line_start = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return source + ":" + std::to_string(line) + ":" + std::to_string(offset - line_start + 1);
}

// Pointers into deep documents get long; the first part says enough.
std::string shortened(const std::string& pointer) {
  constexpr std::size_t kShown = 120;
  if (pointer.empty()) return "(the whole document)";
  return pointer.size() <= kShown ? pointer : pointer.substr(0, kShown) + "...";
}

// nlohmann's message without its "[json.exception.parse_error.101] " id and "parse error at
// line 1, column 2: " location, which is given in our own form.
std::string reason_of(std::string message) {
  if (message.rfind("[json.exception.", 0) == 0) {
    const auto id_end = message.find("] ");
    if (id_end != std::string::npos) message.erase(0, id_end + 2);
  }
  if (message.rfind("parse error", 0) == 0) {
    const auto colon = message.find(": ");
    if (colon != std::string::npos) message.erase(0, colon + 2);
  }
  return message;
}

constexpr int kNumberOverflow = 406;

}  // namespace

json parse_json_text(const std::string& text, const std::string& source, std::size_t max_depth) {
  json result;
  const char* last_read = text.data();
  Reader reader(result, max_depth, last_read);
  const char* const begin = text.data();
  const char* const end = begin + text.size();
  if (json::sax_parse(Cursor(begin, &last_read), Cursor(end, &last_read), &reader)) return result;
  if (const auto& bracket = reader.too_deep_at()) {
    throw JsonInputError(located(source, text, static_cast<std::size_t>(*bracket - begin)) +
                         ": nested deeper than " + std::to_string(max_depth) +
                         " levels; exprun reads JSON at most " + std::to_string(max_depth) +
                         " levels deep");
  }
  const std::size_t stop = reader.position();
  if (reader.id() == kNumberOverflow) {
    // Located at the number's first digit: the token is the whole number.
    const std::size_t start = stop >= reader.token_size() ? stop - reader.token_size() : 0;
    throw JsonInputError(located(source, text, start) + ": " + shortened(reader.pointer()) +
                         ": number out of range (" + reason_of(reader.message()) +
                         "); expected a number a double can hold");
  }
  throw JsonInputError(located(source, text, stop > 0 ? stop - 1 : 0) +
                       ": not valid JSON: " + reason_of(reader.message()));
}

json read_json_file(const std::filesystem::path& file, std::size_t max_depth) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) throw JsonInputError(file.string() + ": no such file");
  if (std::filesystem::is_directory(file, ec))
    throw JsonInputError(file.string() + ": is a directory, expected a JSON file");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw JsonInputError(file.string() + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw JsonInputError(file.string() + ": cannot be read");
  return parse_json_text(text.str(), file.string(), max_depth);
}

}  // namespace exprun
