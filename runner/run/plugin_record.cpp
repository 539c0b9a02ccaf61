#include "run/plugin_record.hpp"

#include <exprun/sdk/abi.hpp>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "config/config_error.hpp"
#include "report/json_fields.hpp"
#include "util/atomic_file.hpp"
#include "util/crc32c.hpp"
#include "util/json_file.hpp"

namespace exprun {
namespace fs = std::filesystem;
namespace {

std::uint32_t file_checksum(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read plugin library " + file.string());
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  return crc32c(bytes.data(), bytes.size());
}

// The same file under two spellings (a relative --plugins, a symlinked folder) is not a change.
bool same_file(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  const bool equal = fs::equivalent(a, b, ec);
  return !ec && equal;
}

}  // namespace

std::vector<RecordedPlugin> plugins_used(const Experiment& experiment, const Registry& registry) {
  std::vector<const PluginChoice*> choices;
  for (const auto& stage : experiment.stages) {
    choices.push_back(&stage.data.reader);
    choices.push_back(&stage.model);
    choices.push_back(&stage.loss);
    for (const auto& strategy : stage.memory.strategies) choices.push_back(&strategy);
  }
  std::vector<RecordedPlugin> out;
  for (const PluginChoice* choice : choices) {
    const LoadedPlugin& loaded = registry.find(choice->kind, choice->name);
    const std::string name = loaded.full_name();
    if (std::any_of(out.begin(), out.end(), [&](const auto& r) { return r.plugin == name; }))
      continue;
    const fs::path library = fs::absolute(loaded.file);
    out.push_back(
        {name, library, sdk::sdk_abi_tag(), fs::file_size(library), file_checksum(library)});
  }
  return out;
}

nlohmann::json plugin_record_json(const std::vector<RecordedPlugin>& plugins) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& p : plugins) {
    list.push_back({{"plugin", p.plugin},
                    {"library", p.library.string()},
                    {"abi_tag", p.abi_tag},
                    {"size", p.size},
                    {"crc32c", p.crc32c}});
  }
  return {{"schema_version", kPluginRecordSchemaVersion}, {"plugins", std::move(list)}};
}

void write_plugin_record(const fs::path& run_dir, const std::vector<RecordedPlugin>& plugins) {
  write_file_atomically(run_dir / kPluginRecordFile, json_file_text(plugin_record_json(plugins)));
}

std::vector<RecordedPlugin> read_plugin_record(const fs::path& run_dir) {
  const fs::path file = run_dir / kPluginRecordFile;
  if (!fs::exists(file)) return {};
  try {
    const nlohmann::json record = read_json_file(file);
    const JsonFields f(file);
    const JsonFields::Pointer root;
    const auto& list = f.required(record, root, "plugins", JsonType::kArray);
    std::vector<RecordedPlugin> out;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const JsonFields::Pointer at = root / "plugins" / i;
      RecordedPlugin p;
      p.plugin = f.required(list[i], at, "plugin", JsonType::kString).get<std::string>();
      p.library = f.required(list[i], at, "library", JsonType::kString).get<std::string>();
      p.abi_tag = f.required(list[i], at, "abi_tag", JsonType::kString).get<std::string>();
      const auto& size = f.required(list[i], at, "size", JsonType::kNumber);
      const auto& crc = f.required(list[i], at, "crc32c", JsonType::kNumber);
      if (!size.is_number_unsigned() || !crc.is_number_unsigned() ||
          crc.get<std::uint64_t>() > UINT32_MAX) {
        throw ConfigError(file.string() + ": " + at.to_string() +
                          ": expected size and crc32c as unsigned integers");
      }
      p.size = size.get<std::uintmax_t>();
      p.crc32c = crc.get<std::uint32_t>();
      out.push_back(std::move(p));
    }
    return out;
  } catch (const ConfigError& e) {
    throw std::runtime_error(std::string("cannot resume: ") + e.what());
  } catch (const JsonInputError& e) {
    throw std::runtime_error(std::string("cannot resume: ") + e.what());
  }
}

std::vector<fs::path> recorded_plugin_dirs(const std::vector<RecordedPlugin>& plugins) {
  std::vector<fs::path> dirs;
  for (const auto& p : plugins) {
    const fs::path dir = p.library.parent_path();
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;  // check_recorded_plugins names what is missing
    if (std::none_of(dirs.begin(), dirs.end(), [&](const fs::path& d) { return d == dir; }))
      dirs.push_back(dir);
  }
  return dirs;
}

std::vector<std::string> check_recorded_plugins(const std::vector<RecordedPlugin>& plugins,
                                                const Registry& registry, const fs::path& run_dir) {
  std::vector<std::string> warnings;
  for (const auto& p : plugins) {
    const LoadedPlugin* loaded = nullptr;
    try {
      loaded = &registry.find(p.plugin);
    } catch (const std::exception&) {
      std::error_code ec;
      const std::string state =
          fs::exists(p.library, ec) ? "which no longer provides it" : "which no longer exists";
      throw std::runtime_error("cannot resume " + run_dir.string() + ": it used " + p.plugin +
                               " from " + p.library.string() + ", " + state +
                               " (build the plugin there again, or give --plugins DIR where it "
                               "is now)");
    }
    if (!same_file(loaded->file, p.library)) {
      warnings.push_back(p.plugin + " now comes from " + loaded->file.string() + ", not " +
                         p.library.string() + " as when the run started");
      continue;
    }
    std::vector<std::string> changes;
    const std::uintmax_t size = fs::file_size(loaded->file);
    if (size != p.size)
      changes.push_back("size " + std::to_string(p.size) + " -> " + std::to_string(size) +
                        " bytes");
    else if (file_checksum(loaded->file) != p.crc32c)
      changes.push_back("its contents (CRC-32C)");
    if (p.abi_tag != sdk::sdk_abi_tag())
      changes.push_back("ABI tag \"" + p.abi_tag + "\" -> \"" + sdk::sdk_abi_tag() + "\"");
    if (changes.empty()) continue;
    std::string text;
    for (std::size_t i = 0; i < changes.size(); ++i) text += (i ? ", " : "") + changes[i];
    warnings.push_back(p.library.string() + " (" + p.plugin +
                       ") has changed since the run started: " + text +
                       "; continuing with it, so the resumed run may differ from an "
                       "uninterrupted one");
  }
  return warnings;
}

}  // namespace exprun
