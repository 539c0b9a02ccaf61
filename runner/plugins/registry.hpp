// Finds plugin libraries, checks them, and builds plugin objects. The runner reaches plugins
// through this class alone.
#pragma once

#include <exprun/sdk/plugin.hpp>

#include <filesystem>
#include <map>
#include <memory>
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
  sdk::ParamSchema schema;

  sdk::PluginKind kind() const { return info->kind; }
  std::string name() const { return info->name; }
  // "losses/adaptive_wing"
  std::string full_name() const;
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
  // exist; the default ones may not.
  void load_directories(const std::vector<std::filesystem::path>& dirs, std::size_t required_count);
  // Loads one library; throws PluginLoadError for a missing file, a missing export, an ABI
  // mismatch or a name already taken.
  void load_file(const std::filesystem::path& file);

  // Throws std::runtime_error naming the closest plugins when there is none by that name.
  const LoadedPlugin& find(sdk::PluginKind kind, const std::string& name) const;
  // Accepts "losses/adaptive_wing", or a bare name when it is unambiguous.
  const LoadedPlugin& find(const std::string& qualified_name) const;
  std::vector<const LoadedPlugin*> list() const;
  std::vector<std::filesystem::path> searched() const { return searched_; }

  sdk::ParamSchema schema(sdk::PluginKind kind, const std::string& name) const override;

  // Libraries are never unloaded, so these objects may live as long as the caller likes.
  std::shared_ptr<sdk::Dataset> make_dataset(const std::string& name, const sdk::Params& params,
                                             const sdk::DatasetContext& context) const;
  std::shared_ptr<sdk::Model> make_model(const std::string& name, const sdk::Params& params,
                                         const sdk::ModelContext& context) const;
  std::shared_ptr<sdk::Loss> make_loss(const std::string& name, const sdk::Params& params,
                                       const sdk::LossContext& context) const;
  std::shared_ptr<sdk::MemoryStrategy> make_memory(const std::string& name,
                                                   const sdk::Params& params,
                                                   const sdk::MemoryContext& context) const;

 private:
  std::map<std::string, LoadedPlugin> plugins_;  // by full name
  std::vector<std::filesystem::path> searched_;
};

// Parses "datasets" / "models" / "losses" / "memory" (singular accepted too).
std::optional<sdk::PluginKind> parse_kind(const std::string& text);

}  // namespace exprun
