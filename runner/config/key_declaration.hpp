// A runner key declared once: the SDK's ParamSpec (type, default, range, choices, doc) bound to
// the field that holds it. The reader, to_json, `exprun plan`, resume compatibility and the key
// reference in docs/experiment-file.md all work from these declarations, so a key added here
// is read, recorded, printed and checked against the docs without another edit.
#pragma once

#include <exprun/sdk/params.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "config/table_reader.hpp"

namespace exprun {

class SchemaSource;

// What a key's reader may need besides its table: the plugins' schemas, for plugin tables.
struct ReadContext {
  const SchemaSource* plugins = nullptr;
};

// A key as the docs, the plan and resume see it, without its binding.
struct KeyInfo {
  sdk::ParamSpec spec;
  // The default in the docs' words, where no single value is the default ("see below",
  // "= `effective_batch`"); empty: the spec's default value (or "—" when required).
  std::string default_text;
  // False for keys that change how a stage is run, not what it trains (data.workers): resume
  // ignores them.
  bool affects_training = true;
  // The key holds one of the runner's or a plugin's tables (stage keys such as optimizer,
  // loss.focus); ParamSpec has no table type, so its spec's type says nothing.
  bool holds_table = false;

  // The default column of the key reference: `8`, `"adam"`, — (required) or default_text.
  std::string documented_default() const;
};

template <typename Config>
struct Key {
  KeyInfo info;
  // Reads the key from its table into the config; a missing key leaves the declared default.
  std::function<void(TableReader&, Config&, const ReadContext&)> read;
  // Adds the key's resolved value to the table's JSON (or nothing, for a key that only
  // applies in some configurations, such as sgd's momentum).
  std::function<void(const Config&, nlohmann::json&)> write;
};

// A table's keys, in the order they are read (later keys may depend on earlier ones).
template <typename Config>
class KeyTable {
 public:
  KeyTable(std::string path, std::vector<Key<Config>> keys)
      : path_(std::move(path)), keys_(std::move(keys)) {}

  // "data.augment": the key path of the table inside a stage; "" for the stage itself.
  const std::string& path() const { return path_; }
  const std::vector<Key<Config>>& keys() const { return keys_; }

  void read(TableReader& reader, Config& config, const ReadContext& context) const {
    for (const auto& key : keys_) key.read(reader, config, context);
  }
  void write(const Config& config, nlohmann::json& out) const {
    for (const auto& key : keys_) key.write(config, out);
  }
  nlohmann::json to_json(const Config& config) const {
    nlohmann::json out = nlohmann::json::object();
    write(config, out);
    return out;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& key : keys_) out.push_back(key.info.spec.name);
    return out;
  }
  std::vector<KeyInfo> infos() const {
    std::vector<KeyInfo> out;
    for (const auto& key : keys_) out.push_back(key.info);
    return out;
  }

 private:
  std::string path_;
  std::vector<Key<Config>> keys_;
};

// Specs, spelled compactly. min/max absent: unbounded.
sdk::ParamSpec int_spec(std::string name, std::optional<std::int64_t> def, double min, double max,
                        std::string doc);
sdk::ParamSpec number_spec(std::string name, std::optional<double> def, double min, double max,
                           std::string doc);
sdk::ParamSpec bool_spec(std::string name, bool def, std::string doc);
sdk::ParamSpec string_spec(std::string name, std::optional<std::string> def,
                           std::vector<std::string> choices, std::string doc);
// For keys read by their own reader (tables, "auto" | integer, byte sizes).
sdk::ParamSpec custom_spec(std::string name, sdk::ParamType type,
                           std::optional<sdk::ParamValue> def, std::string doc);

namespace detail {

double lower(const sdk::ParamSpec& spec);
double upper(const sdk::ParamSpec& spec);

// The value of a key from its table, by the spec's type, range, choices and length; a missing
// key is the spec's default, a missing required key an error.
template <typename T>
T read_value(TableReader& r, const sdk::ParamSpec& spec) {
  const std::string& name = spec.name;
  const auto def = [&]() -> T { return spec.required() ? T{} : std::get<T>(*spec.default_value); };
  if constexpr (std::is_same_v<T, std::int64_t>) {
    if (spec.required()) return r.required_int(name, lower(spec), upper(spec));
    return r.int_or(name, def(), lower(spec), upper(spec));
  } else if constexpr (std::is_same_v<T, double>) {
    if (spec.required()) return r.required_number(name, lower(spec), upper(spec));
    return r.number_or(name, def(), lower(spec), upper(spec));
  } else if constexpr (std::is_same_v<T, bool>) {
    return r.bool_or(name, def());
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (spec.required()) return r.required_string(name, spec.choices);
    return r.string_or(name, def(), spec.choices);
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    return r.string_list_or(name, def());
  } else if constexpr (std::is_same_v<T, std::vector<std::int64_t>>) {
    return r.int_list_or(name, def(), spec.length, lower(spec), upper(spec));
  } else {
    static_assert(std::is_same_v<T, std::vector<double>>, "no reader for this field type");
    return r.number_list_or(name, def(), spec.length, lower(spec));
  }
}

}  // namespace detail

// A key read by its spec into `member` and written back under its name.
template <typename Config, typename T>
Key<Config> field(sdk::ParamSpec spec, T Config::*member, bool affects_training = true) {
  Key<Config> key;
  key.info = {std::move(spec), "", affects_training, false};
  const sdk::ParamSpec& s = key.info.spec;
  key.read = [s, member](TableReader& r, Config& c, const ReadContext&) {
    c.*member = detail::read_value<T>(r, s);
  };
  key.write = [name = s.name, member](const Config& c, nlohmann::json& out) {
    out[name] = c.*member;
  };
  return key;
}

// A key with its own reader and writer, still declared here with its spec and doc.
template <typename Config>
Key<Config> custom(sdk::ParamSpec spec, std::string default_text,
                   std::function<void(TableReader&, Config&, const ReadContext&)> read,
                   std::function<void(const Config&, nlohmann::json&)> write) {
  return {
      {std::move(spec), std::move(default_text), true, false}, std::move(read), std::move(write)};
}

// A key whose value is a table, read by `read` (a plugin table, or one of the runner's).
template <typename Config>
Key<Config> table_key(std::string name, std::string doc, std::string default_text,
                      std::function<void(TableReader&, Config&, const ReadContext&)> read,
                      std::function<void(const Config&, nlohmann::json&)> write) {
  sdk::ParamSpec spec;
  spec.name = std::move(name);
  spec.doc = std::move(doc);
  return {
      {std::move(spec), std::move(default_text), true, true}, std::move(read), std::move(write)};
}

}  // namespace exprun
