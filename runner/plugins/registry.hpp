// Finds plugin libraries, checks them, and builds plugin objects. The runner reaches plugins
// through this class alone. It knows no kind in particular: a kind is whatever an interface's
// sdk::PluginKindTraits declare (exprun/sdk/plugin_kinds.hpp).
#pragma once

#include <exprun/sdk/plugin.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/experiment_loader.hpp"

namespace boost::dll {
class shared_library;
}

namespace exprun {

class PluginLoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct LoadedPlugin {
  const sdk::PluginInfo* info = nullptr;
  std::shared_ptr<boost::dll::shared_library> library;
  std::filesystem::path file;
  std::string abi_tag;
  sdk::ParamSchema schema;

  sdk::PluginKind kind() const { return info->kind(); }
  std::string name() const { return info->name; }
  // "losses/adaptive_wing"
  std::string full_name() const;
};

// A library on the search path that could not be loaded. It fails only what names a plugin it
// could have provided, so one stale library does not stop every command.
struct UnloadableLibrary {
  std::filesystem::path file;
  std::string reason;
  // "losses/wing" for exprun-losses-wing.so (the naming convention), or the plugin's own full
  // name when the library loaded but clashed with another; "" when neither is known.
  std::string would_provide;
};

class Registry : public SchemaSource {
 public:
  Registry();
  ~Registry() override;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Where plugins are looked for, in order: the --plugins directories, EXPRUN_PLUGIN_PATH
  // (':'-separated), then the plugins/ folder beside the executable (build tree) and
  // ../lib/exprun/plugins (install tree).
  static std::vector<std::filesystem::path> search_path(const std::vector<std::string>& cli_dirs,
                                                        const std::filesystem::path& executable);

  // Loads every exprun-*.so in each directory. A directory named on the command line must
  // exist; the default ones may not. A library that cannot be loaded is recorded in
  // unloadable(), not thrown.
  void load_directories(const std::vector<std::filesystem::path>& dirs, std::size_t required_count);
  // Loads one library; throws PluginLoadError for a missing file, a missing export, an ABI
  // mismatch or a name already taken.
  void load_file(const std::filesystem::path& file);

  // Throws std::runtime_error naming the closest plugins when there is none by that name, and
  // PluginLoadError when a library that could have provided it could not be loaded.
  const LoadedPlugin& find(sdk::PluginKind kind, const std::string& name) const;
  // Accepts "losses/adaptive_wing", or a bare name when it is unambiguous.
  const LoadedPlugin& find(const std::string& qualified_name) const;
  // Built-in kinds first, in their order, then other kinds by folder name.
  std::vector<const LoadedPlugin*> list() const;
  const std::vector<UnloadableLibrary>& unloadable() const { return unloadable_; }
  std::vector<std::filesystem::path> searched() const { return searched_; }
  // The built-in kinds and those of the loaded plugins.
  std::vector<sdk::PluginKind> kinds() const;
  // A kind by folder name or singular ("losses", "loss"), among kinds().
  std::optional<sdk::PluginKind> parse_kind(const std::string& text) const;

  sdk::ParamSchema schema(sdk::PluginKind kind, const std::string& name) const override;

  // Builds plugin `name` of Interface's kind. Libraries are never unloaded, so the object may
  // live as long as the caller likes.
  template <class Interface>
  std::shared_ptr<Interface> make(
      const std::string& name, const sdk::Params& params,
      const typename sdk::PluginKindTraits<Interface>::Context& context) const {
    return sdk::make_plugin<Interface>(*find(sdk::PluginKindTraits<Interface>::kind, name).info,
                                       params, context);
  }

 private:
  void load_or_record(const std::filesystem::path& file);
  std::string unloadable_note() const;

  std::map<std::string, LoadedPlugin> plugins_;  // by full name
  std::vector<UnloadableLibrary> unloadable_;
  std::vector<std::filesystem::path> searched_;
};

// Parses a built-in kind: "datasets" / "models" / "losses" / "memory" (singular accepted too).
std::optional<sdk::PluginKind> parse_kind(const std::string& text);

}  // namespace exprun
