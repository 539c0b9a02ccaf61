#include "train/archive_declarations.hpp"

#include "train/pickle_lengths.hpp"

#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

namespace exprun {
namespace {

// OutputArchive nests types like Tuple[float, float] or List[str]: two levels; eight is ample.
constexpr int kMaxTypeDepth = 8;

// A line-by-line reader of the declaration grammar; each parse_* advances pos on success.
class LineParser {
 public:
  explicit LineParser(const std::string& line) : s_(line) {}

  bool literal(const char* text) {
    const std::string t(text);
    if (s_.compare(pos_, t.size(), t) != 0) return false;
    pos_ += t.size();
    return true;
  }
  bool at_end() const { return pos_ == s_.size(); }

  bool identifier() {
    const std::size_t start = pos_;
    while (pos_ < s_.size() &&
           (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_'))
      ++pos_;
    return pos_ > start;
  }

  // "..." without escapes or control characters: the names OutputArchive writes.
  bool string() {
    if (!literal("\"")) return false;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '\\' || c < 0x20) return false;
      ++pos_;
    }
    return literal("\"");
  }

  // [] or ["a", "b", ]
  bool string_list() {
    if (!literal("[")) return false;
    while (!literal("]")) {
      if (!string() || !literal(", ")) return false;
    }
    return true;
  }

  // A dotted name, optionally generic: Tensor, __torch__.___torch_mangle_3.Module,
  // Tuple[float, float]. Class references (__torch__....) are collected.
  bool type(std::vector<std::string>& references, int depth = 0) {
    if (depth > kMaxTypeDepth) return false;
    const std::size_t start = pos_;
    do {
      if (!identifier()) return false;
    } while (literal("."));
    const std::string name = s_.substr(start, pos_ - start);
    if (name.rfind("__torch__.", 0) == 0) references.push_back(name);
    if (!literal("[")) return true;
    for (;;) {
      if (!type(references, depth + 1)) return false;
      if (literal("]")) return true;
      if (!literal(", ")) return false;
    }
  }

 private:
  const std::string& s_;
  std::size_t pos_ = 0;
};

bool member_line(const std::string& line, std::vector<std::string>& references) {
  {
    LineParser p(line);
    if ((p.literal("  __parameters__ = ") || p.literal("  __buffers__ = ")) && p.string_list() &&
        p.at_end())
      return true;
  }
  {
    LineParser p(line);
    if (p.literal("  __annotations__ = []") && p.at_end()) return true;
  }
  {
    LineParser p(line);
    if (p.literal("  __annotations__[") && p.string() && p.literal("] = ") && p.type(references) &&
        p.at_end())
      return true;
  }
  LineParser p(line);
  return p.literal("  ") && p.identifier() && p.literal(" : ") && p.type(references) && p.at_end();
}

// "code/__torch__/___torch_mangle_3.py" declares "__torch__.___torch_mangle_3.Module".
std::string declared_class(std::string record) {
  record = record.substr(0, record.size() - 3);  // ".py"
  for (auto& c : record)
    if (c == '/') c = '.';
  return record + ".Module";
}

[[noreturn]] void refuse(const std::string& record, std::size_t line_number,
                         const std::string& why) {
  throw std::runtime_error("its TorchScript declarations are not of the form exprun writes (" +
                           record + (line_number ? ":" + std::to_string(line_number) : "") + ": " +
                           why + ")");
}

// Declared class -> the classes its members name; checked for cycles without recursion.
void refuse_cycles(
    const std::map<std::string, std::pair<std::string, std::vector<std::string>>>& graph) {
  enum class Mark { None, Open, Done };
  std::map<std::string, Mark> marks;
  for (const auto& [root, unused] : graph) {
    if (marks[root] == Mark::Done) continue;
    std::vector<std::pair<std::string, std::size_t>> stack{{root, 0}};
    marks[root] = Mark::Open;
    while (!stack.empty()) {
      auto& [name, next] = stack.back();
      const auto it = graph.find(name);
      const std::vector<std::string> none;
      const auto& edges = it == graph.end() ? none : it->second.second;
      if (next == edges.size()) {
        marks[name] = Mark::Done;
        stack.pop_back();
        continue;
      }
      const std::string target = edges[next++];
      Mark& mark = marks[target];
      if (mark == Mark::Open) refuse(it->second.first, 0, "class " + target + " contains itself");
      if (mark == Mark::None) {
        mark = Mark::Open;
        stack.emplace_back(target, 0);
      }
    }
  }
}

// The payload as LibTorch's zip reader sees it. Not caffe2's MemoryReadAdapter: it copies
// whatever range the reader asks for, and a damaged zip directory asks beyond the payload.
class BoundedReader final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit BoundedReader(const std::string& bytes) : bytes_(bytes) {}
  std::size_t size() const override { return bytes_.size(); }
  std::size_t read(std::uint64_t pos, void* buf, std::size_t n, const char*) const override {
    if (pos >= bytes_.size()) return 0;
    const std::size_t count = std::min<std::uint64_t>(n, bytes_.size() - pos);
    std::memcpy(buf, bytes_.data() + pos, count);
    return count;
  }

 private:
  const std::string& bytes_;
};

}  // namespace

void check_archive_declarations(const std::string& payload) {
  caffe2::serialize::PyTorchStreamReader reader(std::make_shared<BoundedReader>(payload));
  std::map<std::string, std::pair<std::string, std::vector<std::string>>> graph;
  for (const auto& record : reader.getAllRecords()) {
    // data.pkl, constants.pkl and code/*.py.debug_pkl
    if (record.size() > 3 && record.compare(record.size() - 3, 3, "pkl") == 0) {
      auto [data, size] = reader.getRecord(record);
      const std::string problem =
          pickle_length_problem(std::string(static_cast<const char*>(data.get()), size));
      if (!problem.empty())
        throw std::runtime_error("its pickle " + record + " is malformed: " + problem);
      continue;
    }
    if (record.rfind("code/", 0) != 0 || record.size() < 3 ||
        record.compare(record.size() - 3, 3, ".py") != 0)
      continue;
    auto [data, size] = reader.getRecord(record);
    const std::string text(static_cast<const char*>(data.get()), size);
    std::vector<std::string> references;
    std::istringstream lines(text);
    std::string line;
    std::size_t number = 0;
    bool header = false;
    while (std::getline(lines, line)) {
      ++number;
      if (line.empty()) continue;
      if (!header) {
        if (line != "class Module(Module):")
          refuse(record, number, "expected class Module(Module):");
        header = true;
      } else if (!member_line(line, references)) {
        refuse(record, number, "not a member declaration");
      }
    }
    if (!header) refuse(record, 0, "no class declared");
    graph[declared_class(record.substr(5))] = {record, std::move(references)};
  }
  refuse_cycles(graph);
}

}  // namespace exprun
