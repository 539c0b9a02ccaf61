#include "train/pickle_lengths.hpp"

#include <cstdint>

namespace exprun {
namespace {

std::string hex(unsigned char opcode) {
  const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[opcode >> 4] + digits[opcode & 15];
}

std::uint64_t little_endian(const std::string& b, std::size_t at, std::size_t width) {
  std::uint64_t value = 0;
  for (std::size_t i = width; i-- > 0;) value = value << 8 | static_cast<unsigned char>(b[at + i]);
  return value;
}

// How an opcode's argument is laid out: a fixed number of bytes, a length of `width` bytes
// followed by that many bytes, or text up to a newline (`lines` of them).
struct Argument {
  enum Kind { Fixed, Counted, Lines, Unknown } kind;
  std::size_t width;
};

Argument argument_of(unsigned char op) {
  switch (op) {
    // No argument: MARK, STOP, POP, POP_MARK, DUP, NONE, REDUCE, APPEND, BUILD, DICT, EMPTY_DICT,
    // APPENDS, LIST, EMPTY_LIST, OBJ, SETITEM, TUPLE, EMPTY_TUPLE, SETITEMS, BINPERSID, NEWOBJ,
    // TUPLE1-3, NEWTRUE, NEWFALSE, EMPTY_SET, ADDITEMS, FROZENSET, NEWOBJ_EX, STACK_GLOBAL,
    // MEMOIZE.
    case '(':
    case '.':
    case '0':
    case '1':
    case '2':
    case 'N':
    case 'R':
    case 'a':
    case 'b':
    case 'd':
    case '}':
    case 'e':
    case 'l':
    case ']':
    case 'o':
    case 's':
    case 't':
    case ')':
    case 'u':
    case 'Q':
    case 0x81:
    case 0x85:
    case 0x86:
    case 0x87:
    case 0x88:
    case 0x89:
    case 0x8f:
    case 0x90:
    case 0x91:
    case 0x92:
    case 0x93:
    case 0x94:
      return {Argument::Fixed, 0};
    case 0x80:
    case 'K':
    case 'h':
    case 'q':
    case 0x82:  // PROTO, BININT1, BINGET, BINPUT, EXT1
      return {Argument::Fixed, 1};
    case 'M':
    case 0x83:  // BININT2, EXT2
      return {Argument::Fixed, 2};
    case 'J':
    case 'j':
    case 'r':
    case 0x84:  // BININT, LONG_BINGET, LONG_BINPUT, EXT4
      return {Argument::Fixed, 4};
    case 'G':
    case 0x95:  // BINFLOAT, FRAME
      return {Argument::Fixed, 8};
    case 'U':
    case 'C':
    case 0x8a:
    case 0x8c:  // SHORT_BINSTRING, SHORT_BINBYTES, LONG1, ..
      return {Argument::Counted, 1};
    case 'T':
    case 'B':
    case 'X':
    case 0x8b:  // BINSTRING, BINBYTES, BINUNICODE, LONG4
      return {Argument::Counted, 4};
    case 0x8d:
    case 0x8e:  // BINUNICODE8, BINBYTES8
      return {Argument::Counted, 8};
    // Text protocol 0 opcodes that protocol 2 writers still use: GLOBAL (two lines), INT, LONG,
    // FLOAT, STRING, UNICODE, PERSID, GET, PUT.
    case 'c':
      return {Argument::Lines, 2};
    case 'I':
    case 'L':
    case 'F':
    case 'S':
    case 'V':
    case 'P':
    case 'g':
    case 'p':
      return {Argument::Lines, 1};
    default:
      return {Argument::Unknown, 0};
  }
}

// Whether decimal `text` is an index below `limit`; anything else (a sign, a huge number) is not.
bool small_index(const std::string& text, std::size_t limit) {
  if (text.empty() || text.size() > 19) return false;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return value < limit;
}

}  // namespace

std::string pickle_length_problem(const std::string& bytes) {
  const std::size_t n = bytes.size();
  std::size_t pos = 0;
  while (pos < n) {
    const auto op = static_cast<unsigned char>(bytes[pos]);
    const std::string where = "opcode " + hex(op) + " at byte " + std::to_string(pos);
    ++pos;
    if (op == '.') return "";
    const Argument argument = argument_of(op);
    switch (argument.kind) {
      case Argument::Unknown:
        return where + " is not a pickle opcode";
      case Argument::Fixed:
        if (argument.width > n - pos) return where + " runs past the end";
        // LONG_BINPUT and LONG_BINGET: the unpickler grows its memo table to the index (16
        // bytes an entry), so a crafted index of 1.6e9 asked for 25 GB (found by the fuzz
        // target). A pickler numbers its memo entries from 0, at least 2 bytes of opcodes each.
        if ((op == 'r' || op == 'j') && little_endian(bytes, pos, 4) >= n) {
          return where + " uses memo index " + std::to_string(little_endian(bytes, pos, 4)) +
                 ", more than a pickle of " + std::to_string(n) + " bytes can hold";
        }
        pos += argument.width;
        break;
      case Argument::Counted: {
        if (argument.width > n - pos) return where + " runs past the end";
        const std::uint64_t length = little_endian(bytes, pos, argument.width);
        pos += argument.width;
        if (length > n - pos) {
          return where + " declares " + std::to_string(length) + " bytes, " +
                 std::to_string(n - pos) + " remain";
        }
        pos += static_cast<std::size_t>(length);
        break;
      }
      case Argument::Lines:
        for (std::size_t line = 0; line < argument.width; ++line) {
          const std::size_t end = bytes.find('\n', pos);
          if (end == std::string::npos) return where + " runs past the end";
          // PUT and GET: the memo index as text, bounded like LONG_BINPUT's.
          if ((op == 'p' || op == 'g') && !small_index(bytes.substr(pos, end - pos), n)) {
            return where + " uses memo index " +
                   bytes.substr(pos, std::min<std::size_t>(end - pos, 20)) +
                   ", more than a pickle of " + std::to_string(n) + " bytes can hold";
          }
          pos = end + 1;
        }
        break;
    }
  }
  return "the pickle ends without its STOP opcode";
}

}  // namespace exprun
