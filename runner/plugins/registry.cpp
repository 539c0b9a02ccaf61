#include "plugins/registry.hpp"

#include <boost/dll/shared_library.hpp>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "util/text.hpp"

namespace exprun {
namespace fs = std::filesystem;
namespace {

constexpr sdk::PluginKind kAllKinds[] = {sdk::PluginKind::Dataset, sdk::PluginKind::Model,
                                         sdk::PluginKind::Loss, sdk::PluginKind::Memory};

bool is_plugin_file(const fs::path& path) {
  const std::string name = path.filename().string();
  return name.rfind("exprun-", 0) == 0 && path.extension() == ".so";
}

// Plugin libraries stay loaded until the process ends: what a plugin makes can outlive the
// plugin object (tensors with the plugin's deleters, autograd nodes holding its functions), and
// unloading code that is still referenced crashes far from the cause.
void keep_loaded_forever(std::shared_ptr<boost::dll::shared_library> lib) {
  static auto* libraries = new std::vector<std::shared_ptr<boost::dll::shared_library>>();
  libraries->push_back(std::move(lib));
}

}  // namespace

std::string LoadedPlugin::full_name() const {
  return std::string(sdk::kind_folder(info->kind)) + "/" + info->name;
}

std::optional<sdk::PluginKind> parse_kind(const std::string& text) {
  for (auto kind : kAllKinds) {
    std::string folder = sdk::kind_folder(kind);
    std::string singular = folder == "losses"   ? "loss"
                           : folder == "memory" ? "memory"
                                                : folder.substr(0, folder.size() - 1);
    if (text == folder || text == singular) return kind;
  }
  return std::nullopt;
}

Registry::Registry() = default;

Registry::~Registry() = default;

std::vector<fs::path> Registry::search_path(const std::vector<std::string>& cli_dirs,
                                            const fs::path& executable) {
  std::vector<fs::path> dirs;
  for (const auto& d : cli_dirs) dirs.emplace_back(d);
  if (const char* env = std::getenv("EXPRUN_PLUGIN_PATH")) {
    std::stringstream in(env);
    std::string item;
    while (std::getline(in, item, ':'))
      if (!item.empty()) dirs.emplace_back(item);
  }
  const fs::path exe_dir = executable.parent_path();
  dirs.push_back(exe_dir / "plugins");
  dirs.push_back(exe_dir / ".." / "lib" / "exprun" / "plugins");
  return dirs;
}

void Registry::load_directories(const std::vector<fs::path>& dirs, std::size_t required_count) {
  std::vector<fs::path> seen;
  for (std::size_t i = 0; i < dirs.size(); ++i) {
    std::error_code ec;
    if (!fs::is_directory(dirs[i], ec)) {
      if (i < required_count) {
        throw PluginLoadError("plugin directory " + dirs[i].string() +
                              " does not exist or is not a directory");
      }
      continue;
    }
    const fs::path canonical = fs::canonical(dirs[i]);
    if (std::find(seen.begin(), seen.end(), canonical) != seen.end()) continue;
    seen.push_back(canonical);
    searched_.push_back(dirs[i]);
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(canonical))
      if (entry.is_regular_file() && is_plugin_file(entry.path())) files.push_back(entry.path());
    std::sort(files.begin(), files.end());  // load order must not depend on the file system
    for (const auto& file : files) load_file(file);
  }
}

void Registry::load_file(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec))
    throw PluginLoadError("plugin library " + file.string() + " not found");
  auto lib = std::make_shared<boost::dll::shared_library>();
  try {
    lib->load(file.string(), boost::dll::load_mode::rtld_lazy | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    throw PluginLoadError("cannot load plugin library " + file.string() + ": " + e.what());
  }
  if (!lib->has(sdk::kAbiTagSymbol) || !lib->has(sdk::kInfoSymbol)) {
    throw PluginLoadError(file.string() + " is not an exprun plugin: it does not export " +
                          std::string(sdk::kAbiTagSymbol) + " and " + sdk::kInfoSymbol +
                          " (define the plugin with EXPRUN_PLUGIN(YourClass))");
  }
  const std::string tag = lib->get<const char*()>(sdk::kAbiTagSymbol)();
  const std::string ours = sdk::sdk_abi_tag();
  if (tag != ours) {
    throw PluginLoadError(file.string() + " was built for a different ABI: plugin tag \"" + tag +
                          "\", exprun tag \"" + ours +
                          "\"; rebuild the plugin against this exprun's SDK");
  }
  LoadedPlugin plugin;
  plugin.info = lib->get<const sdk::PluginInfo*()>(sdk::kInfoSymbol)();
  plugin.library = lib;
  plugin.file = file;
  if (!plugin.info || !plugin.info->schema || std::string(plugin.info->name).empty()) {
    throw PluginLoadError(file.string() + ": the plugin describes itself incompletely");
  }
  plugin.schema = plugin.info->schema();
  const std::string full = plugin.full_name();
  if (auto it = plugins_.find(full); it != plugins_.end()) {
    throw PluginLoadError("two plugins are named " + full + ": " + it->second.file.string() +
                          " and " + file.string() + "; remove one or rename it");
  }
  keep_loaded_forever(lib);
  plugins_.emplace(full, std::move(plugin));
}

const LoadedPlugin& Registry::find(sdk::PluginKind kind, const std::string& name) const {
  const std::string folder = sdk::kind_folder(kind);
  if (auto it = plugins_.find(folder + "/" + name); it != plugins_.end()) return it->second;
  std::vector<std::string> names;
  for (const auto& [full, plugin] : plugins_)
    if (plugin.kind() == kind) names.push_back(plugin.name());
  std::string message =
      "no " + folder + " plugin named \"" + name + "\"" + did_you_mean(name, names);
  message += names.empty() ? " (none of this kind is loaded" : " (available: " + join(names, ", ");
  message += "; searched ";
  std::vector<std::string> dirs;
  for (const auto& d : searched_) dirs.push_back(d.string());
  message += dirs.empty() ? "no existing directory" : join(dirs, ", ");
  throw std::runtime_error(message + ")");
}

const LoadedPlugin& Registry::find(const std::string& qualified_name) const {
  const auto slash = qualified_name.find('/');
  if (slash != std::string::npos) {
    const std::string kind_text = qualified_name.substr(0, slash);
    const auto kind = parse_kind(kind_text);
    if (!kind) {
      throw std::runtime_error("unknown plugin kind \"" + kind_text +
                               "\" (expected datasets, models, losses or memory)");
    }
    return find(*kind, qualified_name.substr(slash + 1));
  }
  std::vector<const LoadedPlugin*> matches;
  std::vector<std::string> bare_names;
  for (const auto& [full, plugin] : plugins_) {
    if (plugin.name() == qualified_name) matches.push_back(&plugin);
    bare_names.push_back(plugin.name());
  }
  if (matches.size() == 1) return *matches.front();
  if (matches.size() > 1) {
    throw std::runtime_error("\"" + qualified_name + "\" names plugins of several kinds; write " +
                             "KIND/" + qualified_name);
  }
  // Distances are measured on bare names (the user typed one), but the
  // suggestion is the full KIND/NAME so it can be pasted as it stands.
  std::vector<std::string> suggestions;
  for (const auto& close : closest_matches(qualified_name, bare_names))
    for (const auto& [full, plugin] : plugins_)
      if (plugin.name() == close &&
          std::find(suggestions.begin(), suggestions.end(), full) == suggestions.end())
        suggestions.push_back(full);
  throw std::runtime_error("no plugin named \"" + qualified_name + "\"" + suggest(suggestions));
}

std::vector<const LoadedPlugin*> Registry::list() const {
  std::vector<const LoadedPlugin*> out;
  for (auto kind : kAllKinds)
    for (const auto& [full, plugin] : plugins_)
      if (plugin.kind() == kind) out.push_back(&plugin);
  return out;
}

sdk::ParamSchema Registry::schema(sdk::PluginKind kind, const std::string& name) const {
  return find(kind, name).schema;
}

std::shared_ptr<sdk::Dataset> Registry::make_dataset(const std::string& name,
                                                     const sdk::Params& params,
                                                     const sdk::DatasetContext& context) const {
  const auto& plugin = find(sdk::PluginKind::Dataset, name);
  return plugin.info->make_dataset(params, context);
}

std::shared_ptr<sdk::Model> Registry::make_model(const std::string& name, const sdk::Params& params,
                                                 const sdk::ModelContext& context) const {
  const auto& plugin = find(sdk::PluginKind::Model, name);
  return plugin.info->make_model(params, context);
}

std::shared_ptr<sdk::Loss> Registry::make_loss(const std::string& name, const sdk::Params& params,
                                               const sdk::LossContext& context) const {
  const auto& plugin = find(sdk::PluginKind::Loss, name);
  return plugin.info->make_loss(params, context);
}

std::shared_ptr<sdk::MemoryStrategy> Registry::make_memory(
    const std::string& name, const sdk::Params& params, const sdk::MemoryContext& context) const {
  const auto& plugin = find(sdk::PluginKind::Memory, name);
  return plugin.info->make_memory(params, context);
}

}  // namespace exprun
