// Which library each plugin of a run came from, kept in RUN_DIR/plugins.json beside
// experiment.toml, so that `run --resume` can load the same plugins without being told where
// they are, and say when a library has changed since the run started (docs/cli.md).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "config/experiment.hpp"
#include "plugins/registry.hpp"

namespace exprun {

inline constexpr int kPluginRecordSchemaVersion = 1;
inline constexpr const char* kPluginRecordFile = "plugins.json";

struct RecordedPlugin {
  std::string plugin;             // "losses/wing"
  std::filesystem::path library;  // absolute path of the .so it was loaded from
  std::string abi_tag;            // sdk::sdk_abi_tag() of the exprun that loaded it
  std::uintmax_t size = 0;        // bytes
  std::uint32_t crc32c = 0;       // of the whole file: a rebuild changes it, a touch does not
};

// Every plugin the experiment's stages name (dataset reader, model, loss, memory strategies),
// once each, in the order first named, with its library as the registry loaded it.
std::vector<RecordedPlugin> plugins_used(const Experiment& experiment, const Registry& registry);

nlohmann::json plugin_record_json(const std::vector<RecordedPlugin>& plugins);
// Writes RUN_DIR/plugins.json atomically.
void write_plugin_record(const std::filesystem::path& run_dir,
                         const std::vector<RecordedPlugin>& plugins);
// RUN_DIR/plugins.json; empty when the run has none (made before exprun recorded plugins).
// Throws std::runtime_error naming the file and field when it is damaged.
std::vector<RecordedPlugin> read_plugin_record(const std::filesystem::path& run_dir);

// The folders of the recorded libraries that still exist, once each, in record order: the
// directories `--resume` adds to the plugin search path.
std::vector<std::filesystem::path> recorded_plugin_dirs(const std::vector<RecordedPlugin>& plugins);

// Checks the loaded registry against the record. Throws std::runtime_error when a recorded
// plugin cannot be found any more (naming the library it came from); returns one warning per
// plugin that now comes from another file, or whose library changed since (size, checksum or
// ABI tag).
std::vector<std::string> check_recorded_plugins(const std::vector<RecordedPlugin>& plugins,
                                                const Registry& registry,
                                                const std::filesystem::path& run_dir);

}  // namespace exprun
