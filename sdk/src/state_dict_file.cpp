// Reading the tensors of a file torch.save wrote. LibTorch 1.13's own torch::pickle_load reads
// only the zip format and fails on the OrderedDict (with its _metadata attribute) that
// model.state_dict() returns (pytorch/pytorch#100741, fixed in 2.6), so the pickle is run here
// by a small machine that knows the opcodes of protocol 2 (what torch.save uses) and the few
// globals a state dict needs; every other object becomes an opaque value.
//
// Formats (torch/serialization.py):
//  - zip (PyTorch >= 1.6): <prefix>/data.pkl holds the pickle; a tensor's storage is the
//    persistent id ('storage', torch.FloatStorage, key, location, numel) and its bytes are the
//    record <prefix>/data/<key>.
//  - legacy (PyTorch < 1.6): five pickles in a row - the magic number 0x1950a86a20f9469cfc6c,
//    the protocol version 1001, sys_info, the object (persistent id ('storage', type, key,
//    location, numel, view_metadata)), and the list of storage keys - then, for each key of
//    that list, its element count as a little-endian int64 and its raw bytes.
#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>

#include "exprun/sdk/state_dict.hpp"

namespace exprun::sdk {
namespace {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

// A tensor whose storage is known by key only until the storages have been read.
struct LazyTensor {
  std::string storage_key;
  std::int64_t offset = 0;
  std::vector<std::int64_t> sizes, strides;
};

struct Value {
  enum class Kind {
    None,
    Bool,
    Int,
    Float,
    String,
    Tuple,
    List,
    Dict,
    Global,
    Storage,
    Tensor,
    Object
  };
  Kind kind = Kind::None;
  std::int64_t integer = 0;
  double number = 0;
  std::string text;             // String; Global: "module.name"; Storage: key
  std::vector<ValuePtr> items;  // Tuple, List
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // Dict, in insertion order
  torch::ScalarType dtype = torch::kFloat;             // Storage
  LazyTensor tensor;
};

ValuePtr make(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::optional<torch::ScalarType> storage_dtype(const std::string& global) {
  static const std::map<std::string, torch::ScalarType> types = {
      {"torch.FloatStorage", torch::kFloat}, {"torch.DoubleStorage", torch::kDouble},
      {"torch.HalfStorage", torch::kHalf},   {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kLong},   {"torch.IntStorage", torch::kInt},
      {"torch.ShortStorage", torch::kShort}, {"torch.CharStorage", torch::kChar},
      {"torch.ByteStorage", torch::kByte},   {"torch.BoolStorage", torch::kBool},
      {"torch.UntypedStorage", torch::kByte}};
  auto it = types.find(global);
  if (it == types.end()) return std::nullopt;
  return it->second;
}

std::vector<std::int64_t> int_tuple(const Value& v, const char* what) {
  if (v.kind != Value::Kind::Tuple && v.kind != Value::Kind::List)
    throw FormatError(std::string("a tensor's ") + what + " is not a tuple");
  std::vector<std::int64_t> out;
  for (const auto& item : v.items) {
    if (item->kind != Value::Kind::Int)
      throw FormatError(std::string("a tensor's ") + what + " holds a non-integer");
    out.push_back(item->integer);
  }
  return out;
}

// Runs one pickle from `data[pos]` to its STOP and returns its value; `pos` ends after STOP.
class Unpickler {
 public:
  Unpickler(const char* data, std::size_t size, std::size_t& pos)
      : data_(data), size_(size), pos_(pos) {}

  ValuePtr run() {
    while (true) {
      const auto op = static_cast<unsigned char>(byte());
      switch (op) {
        case 0x80:
          byte();
          break;  // PROTO
        case 0x95:
          bytes(8);
          break;  // FRAME
        case '(':
          marks_.push_back(stack_.size());
          break;  // MARK
        case '.':
          return pop();  // STOP
        case '0':
          pop();
          break;  // POP
        case '1':
          pop_mark();
          break;  // POP_MARK
        case '2':
          push(top());
          break;  // DUP
        case 'N':
          push(make(Value::Kind::None));
          break;
        case 0x88:
          push(boolean(true));
          break;  // NEWTRUE
        case 0x89:
          push(boolean(false));
          break;  // NEWFALSE
        case 'J':
          push(integer(static_cast<std::int32_t>(little(4))));
          break;  // BININT
        case 'K':
          push(integer(static_cast<std::int64_t>(little(1))));
          break;  // BININT1
        case 'M':
          push(integer(static_cast<std::int64_t>(little(2))));
          break;  // BININT2
        case 0x8a:
          push(long1(static_cast<std::size_t>(little(1))));
          break;  // LONG1
        case 'G':
          push(binfloat());
          break;
        case 'X':
          push(string(little(4)));
          break;  // BINUNICODE
        case 0x8c:
          push(string(little(1)));
          break;  // SHORT_BINUNICODE
        case 0x8d:
          push(string(little(8)));
          break;  // BINUNICODE8
        case 'T':
          push(string(little(4)));
          break;  // BINSTRING (Python 2)
        case 'U':
          push(string(little(1)));
          break;  // SHORT_BINSTRING (Python 2)
        case 'B':
          push(string(little(4)));
          break;  // BINBYTES
        case 'C':
          push(string(little(1)));
          break;     // SHORT_BINBYTES
        case 'c': {  // GLOBAL "module\nname\n"
          auto module = line();
          push(global(module + "." + line()));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto name = pop(), module = pop();
          push(global(module->text + "." + name->text));
          break;
        }
        case ')':
          push(make(Value::Kind::Tuple));
          break;  // EMPTY_TUPLE
        case 't':
          push(tuple(pop_mark()));
          break;  // TUPLE
        case 0x85:
          push(tuple_of(1));
          break;  // TUPLE1
        case 0x86:
          push(tuple_of(2));
          break;  // TUPLE2
        case 0x87:
          push(tuple_of(3));
          break;  // TUPLE3
        case ']':
          push(make(Value::Kind::List));
          break;     // EMPTY_LIST
        case 'a': {  // APPEND
          auto item = pop();
          top()->items.push_back(item);
          break;
        }
        case 'e': {  // APPENDS
          auto items = pop_mark();
          auto& list = top()->items;
          list.insert(list.end(), items.begin(), items.end());
          break;
        }
        case '}':
          push(make(Value::Kind::Dict));
          break;     // EMPTY_DICT
        case 's': {  // SETITEM
          auto value = pop(), key = pop();
          top()->entries.emplace_back(key, value);
          break;
        }
        case 'u': {  // SETITEMS
          auto items = pop_mark();
          if (items.size() % 2 != 0) throw FormatError("SETITEMS with an odd item count");
          for (std::size_t i = 0; i < items.size(); i += 2)
            top()->entries.emplace_back(items[i], items[i + 1]);
          break;
        }
        case 'q':
          memo_[little(1)] = top();
          break;  // BINPUT
        case 'r':
          memo_[little(4)] = top();
          break;  // LONG_BINPUT
        case 0x94:
          memo_[memo_.size()] = top();
          break;  // MEMOIZE
        case 'h':
          push(memo(little(1)));
          break;  // BINGET
        case 'j':
          push(memo(little(4)));
          break;  // LONG_BINGET
        case 'Q':
          push(persistent(pop()));
          break;     // BINPERSID
        case 'R': {  // REDUCE
          auto args = pop(), callable = pop();
          push(reduce(*callable, *args));
          break;
        }
        case 0x81: {  // NEWOBJ: cls.__new__(cls, *args), an object this reader does not model
          pop();
          pop();
          push(make(Value::Kind::Object));
          break;
        }
        case 'b':
          pop();
          break;  // BUILD: the state (e.g. a state dict's _metadata) is ignored
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          throw FormatError(std::string("unsupported pickle opcode ") + hex + " at byte " +
                            std::to_string(pos_ - 1));
        }
      }
    }
  }

 private:
  char byte() {
    if (pos_ >= size_) throw FormatError("the pickle ends early");
    return data_[pos_++];
  }
  const char* bytes(std::size_t n) {
    if (n > size_ || pos_ > size_ - n) throw FormatError("the pickle ends early");
    const char* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  std::uint64_t little(std::size_t n) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes(n));
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    return v;
  }
  std::string line() {
    std::string out;
    for (char c = byte(); c != '\n'; c = byte()) out += c;
    return out;
  }

  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
      throw FormatError("the pickle pops an empty stack");
    auto v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  const ValuePtr& top() {
    if (stack_.empty()) throw FormatError("the pickle reads an empty stack");
    return stack_.back();
  }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty()) throw FormatError("the pickle closes a mark it never opened");
    const std::size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  ValuePtr memo(std::uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) throw FormatError("the pickle reads an unset memo entry");
    return it->second;
  }

  static ValuePtr boolean(bool b) {
    auto v = make(Value::Kind::Bool);
    v->integer = b;
    return v;
  }
  static ValuePtr integer(std::int64_t i) {
    auto v = make(Value::Kind::Int);
    v->integer = i;
    return v;
  }
  // Little-endian two's complement; longer than 8 bytes only for the legacy magic number,
  // which is compared by its low 64 bits.
  ValuePtr long1(std::size_t n) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes(n));
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n && i < 8; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    if (n > 0 && n < 8 && (p[n - 1] & 0x80)) v |= ~std::uint64_t{0} << (8 * n);
    return integer(static_cast<std::int64_t>(v));
  }
  ValuePtr binfloat() {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes(8));
    std::uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];  // big-endian
    auto v = make(Value::Kind::Float);
    std::memcpy(&v->number, &bits, sizeof bits);
    return v;
  }
  ValuePtr string(std::uint64_t n) {
    auto v = make(Value::Kind::String);
    const char* p = bytes(static_cast<std::size_t>(n));
    v->text.assign(p, static_cast<std::size_t>(n));
    return v;
  }
  static ValuePtr global(std::string name) {
    auto v = make(Value::Kind::Global);
    v->text = std::move(name);
    return v;
  }
  static ValuePtr tuple(std::vector<ValuePtr> items) {
    auto v = make(Value::Kind::Tuple);
    v->items = std::move(items);
    return v;
  }
  ValuePtr tuple_of(std::size_t n) {
    std::vector<ValuePtr> items(n);
    for (std::size_t i = n; i > 0; --i) items[i - 1] = pop();
    return tuple(std::move(items));
  }

  // ('storage', storage_type, key, location, numel[, view_metadata]); view_metadata, legacy
  // only, is None or (view_key, offset, view_numel): a storage that starts `offset` elements
  // into the root storage `key`. ('module', ...) ids, of whole pickled modules, are opaque.
  static ValuePtr persistent(const ValuePtr& id) {
    if (id->kind == Value::Kind::Tuple && !id->items.empty() &&
        id->items[0]->kind == Value::Kind::String && id->items[0]->text == "module") {
      return make(Value::Kind::Object);
    }
    if (id->kind != Value::Kind::Tuple || id->items.size() < 5 ||
        id->items[0]->kind != Value::Kind::String || id->items[0]->text != "storage") {
      throw FormatError("a persistent id that is not a storage");
    }
    const auto dtype = storage_dtype(id->items[1]->text);
    if (!dtype) throw FormatError("unknown storage type " + id->items[1]->text);
    auto v = make(Value::Kind::Storage);
    v->dtype = *dtype;
    v->text = id->items[2]->text;
    if (id->items.size() > 5 && id->items[5]->kind == Value::Kind::Tuple) {
      const auto& view = id->items[5]->items;
      if (view.size() != 3 || view[1]->kind != Value::Kind::Int)
        throw FormatError("a storage view without an offset");
      v->integer = view[1]->integer;  // the view's first element in the root storage
    }
    return v;
  }

  static ValuePtr reduce(const Value& callable, const Value& args) {
    const auto& name = callable.text;
    const auto& a = args.items;
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      if (a.size() < 4 || a[0]->kind != Value::Kind::Storage || a[1]->kind != Value::Kind::Int)
        throw FormatError("a tensor with unexpected rebuild arguments");
      auto v = make(Value::Kind::Tensor);
      v->dtype = a[0]->dtype;
      v->tensor.storage_key = a[0]->text;
      v->tensor.offset = a[0]->integer + a[1]->integer;
      v->tensor.sizes = int_tuple(*a[2], "size");
      v->tensor.strides = int_tuple(*a[3], "stride");
      return v;
    }
    if (name == "torch._utils._rebuild_parameter" ||
        name == "torch._utils._rebuild_parameter_with_state") {
      if (a.empty()) throw FormatError("a parameter without data");
      return a[0];
    }
    if (name == "collections.OrderedDict") return make(Value::Kind::Dict);
    // LibTorch's own pickler (torch::pickle_save) wraps containers in their TorchScript type.
    if (name == "torch.jit._pickle.restore_type_tag" ||
        name.rfind("torch.jit._pickle.build_", 0) == 0) {
      if (a.empty()) throw FormatError(name + " without arguments");
      return a[0];
    }
    return make(Value::Kind::Object);
  }

  const char* data_;
  std::size_t size_;
  std::size_t& pos_;
  std::vector<ValuePtr> stack_;
  std::vector<std::size_t> marks_;
  std::map<std::uint64_t, ValuePtr> memo_;
};

ValuePtr unpickle(const char* data, std::size_t size, std::size_t& pos) {
  return Unpickler(data, size, pos).run();
}

using Storages = std::map<std::string, torch::Tensor>;  // key -> 1-D tensor of its dtype

torch::Tensor storage_tensor(const void* data, std::size_t bytes, torch::ScalarType dtype) {
  const auto element = static_cast<std::size_t>(c10::elementSize(dtype));
  if (bytes % element != 0) throw FormatError("a storage whose size is not whole elements");
  return torch::from_blob(const_cast<void*>(data), {static_cast<std::int64_t>(bytes / element)},
                          torch::TensorOptions().dtype(dtype))
      .clone();
}

// Every storage key the value refers to, with its dtype.
void collect_storages(const Value& v, std::map<std::string, torch::ScalarType>& out) {
  if (v.kind == Value::Kind::Tensor) out.emplace(v.tensor.storage_key, v.dtype);
  for (const auto& item : v.items) collect_storages(*item, out);
  for (const auto& [key, value] : v.entries) {
    collect_storages(*key, out);
    collect_storages(*value, out);
  }
}

torch::Tensor materialise(const Value& v, const Storages& storages) {
  auto it = storages.find(v.tensor.storage_key);
  if (it == storages.end())
    throw FormatError("a tensor refers to storage '" + v.tensor.storage_key + "', not in the file");
  const auto& s = it->second;
  std::int64_t last = v.tensor.offset;  // the largest element index the view touches
  for (std::size_t d = 0; d < v.tensor.sizes.size(); ++d) {
    if (v.tensor.sizes[d] == 0) return torch::empty(v.tensor.sizes, s.options());
    last += (v.tensor.sizes[d] - 1) * v.tensor.strides.at(d);
  }
  if (v.tensor.offset < 0 || last >= s.numel())
    throw FormatError("a tensor reaches past the end of its storage");
  return s.as_strided(v.tensor.sizes, v.tensor.strides, v.tensor.offset).clone();
}

ValuePtr read_zip(const std::string& path, Storages& storages) {
  caffe2::serialize::PyTorchStreamReader reader(path);
  if (reader.hasRecord("byteorder")) {  // written since PyTorch 2.1; absent means little
    auto [order, order_size] = reader.getRecord("byteorder");
    if (std::string(static_cast<const char*>(order.get()), order_size) != "little")
      throw FormatError("its tensors are stored big-endian, which this reader does not convert");
  }
  auto [pickle, pickle_size] = reader.getRecord("data.pkl");
  std::size_t pos = 0;
  auto root = unpickle(static_cast<const char*>(pickle.get()), pickle_size, pos);
  std::map<std::string, torch::ScalarType> keys;
  collect_storages(*root, keys);
  for (const auto& [key, dtype] : keys) {
    const std::string record = "data/" + key;
    if (!reader.hasRecord(record)) throw FormatError("the archive has no record " + record);
    auto [data, size] = reader.getRecord(record);
    storages[key] = storage_tensor(data.get(), size, dtype);
  }
  return root;
}

// The low 64 bits of torch's MAGIC_NUMBER 0x1950a86a20f9469cfc6c (an 80-bit Python int).
constexpr std::int64_t kLegacyMagicLow64 = static_cast<std::int64_t>(0xa86a20f9469cfc6cULL);

ValuePtr read_legacy(const std::vector<char>& bytes, Storages& storages) {
  std::size_t pos = 0;
  auto magic = unpickle(bytes.data(), bytes.size(), pos);
  if (magic->kind != Value::Kind::Int || magic->integer != kLegacyMagicLow64)
    throw FormatError("it is a pickle, but not one torch.save wrote (no magic number)");
  auto protocol = unpickle(bytes.data(), bytes.size(), pos);
  if (protocol->kind != Value::Kind::Int || protocol->integer != 1001)
    throw FormatError("unsupported legacy protocol version");
  unpickle(bytes.data(), bytes.size(), pos);  // sys_info
  auto root = unpickle(bytes.data(), bytes.size(), pos);
  auto keys = unpickle(bytes.data(), bytes.size(), pos);
  std::map<std::string, torch::ScalarType> dtypes;
  collect_storages(*root, dtypes);
  for (const auto& key : keys->items) {
    auto it = dtypes.find(key->text);
    if (it == dtypes.end()) throw FormatError("storage '" + key->text + "' is never used");
    if (bytes.size() - pos < 8) throw FormatError("the storages end early");
    std::int64_t count = 0;
    std::memcpy(&count, bytes.data() + pos, 8);  // little-endian, as torch wrote it on x86/ARM
    pos += 8;
    const auto size =
        static_cast<std::size_t>(count) * static_cast<std::size_t>(c10::elementSize(it->second));
    if (count < 0 || bytes.size() - pos < size) throw FormatError("the storages end early");
    storages[key->text] = storage_tensor(bytes.data() + pos, size, it->second);
    pos += size;
  }
  return root;
}

// The dict of tensors inside `root`: root itself, or its "state_dict" / "model" entry.
const Value* find_state_dict(const Value& root) {
  if (root.kind != Value::Kind::Dict)
    throw FormatError("it holds no dict of tensors (the top-level object is not a dict)");
  for (const auto& [key, value] : root.entries) {
    if (key->kind == Value::Kind::String && (key->text == "state_dict" || key->text == "model") &&
        value->kind == Value::Kind::Dict) {
      return value.get();
    }
  }
  return &root;
}

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> read_state_dict(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw StateDictError(path + ": cannot open the state dict file");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    Storages storages;
    ValuePtr root;
    if (bytes.size() >= 4 && std::memcmp(bytes.data(), "PK\x03\x04", 4) == 0) {
      try {
        root = read_zip(path, storages);
      } catch (const c10::Error& e) {
        throw FormatError(std::string("a zip archive, but not one torch.save wrote: ") +
                          e.what_without_backtrace());
      }
    } else if (bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x80) {
      root = read_legacy(bytes, storages);
    } else {
      throw FormatError("neither a zip archive nor a pickle");
    }
    const Value* dict = find_state_dict(*root);
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (const auto& [key, value] : dict->entries) {
      if (key->kind == Value::Kind::String && value->kind == Value::Kind::Tensor)
        out.emplace_back(key->text, materialise(*value, storages));
    }
    if (out.empty()) throw FormatError("the dict holds no tensors");
    const std::string prefix = "module.";
    bool all_prefixed = true;
    for (const auto& entry : out) all_prefixed = all_prefixed && entry.first.rfind(prefix, 0) == 0;
    if (all_prefixed)
      for (auto& entry : out) entry.first.erase(0, prefix.size());
    return out;
  } catch (const FormatError& e) {
    throw StateDictError(path +
                         ": not a PyTorch state dict (expected a file written by "
                         "torch.save(model.state_dict(), ...)): " +
                         e.what());
  }
}

}  // namespace exprun::sdk
