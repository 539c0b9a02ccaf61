#include "plugins/registry.hpp"

#include <boost/dll/shared_library.hpp>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "plugins/abi_tag_scan.hpp"
#include "plugins/elf_extent.hpp"
#include "util/text.hpp"

namespace exprun {
namespace fs = std::filesystem;
namespace {

bool is_plugin_file(const fs::path& path) {
  const std::string name = path.filename().string();
  return name.rfind("exprun-", 0) == 0 && path.extension() == ".so";
}

// "losses/wing" for exprun-losses-wing.so: what the naming convention says the library holds.
std::string conventional_full_name(const fs::path& file) {
  const std::string stem = file.stem().string().substr(std::string("exprun-").size());
  const auto dash = stem.find('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 == stem.size()) return "";
  return stem.substr(0, dash) + "/" + stem.substr(dash + 1);
}

// Plugin libraries stay loaded until the process ends: what a plugin makes can outlive the
// plugin object (tensors with the plugin's deleters, autograd nodes holding its functions), and
// unloading code that is still referenced crashes far from the cause.
void keep_loaded_forever(std::shared_ptr<boost::dll::shared_library> lib) {
  static auto* libraries = new std::vector<std::shared_ptr<boost::dll::shared_library>>();
  libraries->push_back(std::move(lib));
}

// Throws when `tag` is not this exprun's: checked once from the file, before loading, and
// once from the loaded library, for a file whose tag could not be read alone.
void refuse_other_abi(const fs::path& file, const std::string& tag, const std::string& after) {
  if (const std::string why = sdk::explain_abi_mismatch(tag, sdk::sdk_abi_tag()); !why.empty())
    throw PluginLoadError(file.string() + " was built for a different ABI: " + why + after);
}

// A checked library, not yet in the registry.
LoadedPlugin open_library(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec))
    throw PluginLoadError("plugin library " + file.string() + " not found");
  // Read from the file first: loading a library built against another LibTorch loads that
  // LibTorch too, whose start-up code can crash the process before any check could run. A file
  // with no tag or several is left to the loader and the check after it.
  std::vector<std::string> tags;
  try {
    tags = abi_tags_in_file(file);
  } catch (const std::exception& e) {
    throw PluginLoadError("cannot load plugin library " + file.string() + ": " + e.what());
  }
  if (tags.size() == 1) refuse_other_abi(file, tags.front(), "; the library was not loaded");
  if (const std::string problem = elf_extent_problem(file); !problem.empty())
    throw PluginLoadError("cannot load plugin library " + file.string() + ": it " + problem);
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
  // Compared before anything C++-typed is read from the library.
  const std::string tag = lib->get<const char*()>(sdk::kAbiTagSymbol)();
  refuse_other_abi(file, tag, "");
  LoadedPlugin plugin;
  plugin.info = lib->get<const sdk::PluginInfo*()>(sdk::kInfoSymbol)();
  plugin.library = lib;
  plugin.file = file;
  plugin.abi_tag = tag;
  if (!plugin.info || !plugin.info->schema || !plugin.info->make || !plugin.info->name ||
      std::string(plugin.info->name).empty() || !plugin.info->kind_folder ||
      std::string(plugin.info->kind_folder).empty()) {
    throw PluginLoadError(file.string() + ": the plugin describes itself incompletely");
  }
  plugin.schema = plugin.info->schema();
  return plugin;
}

std::string one_of(const std::vector<std::string>& names) {
  if (names.size() < 2) return join(names, "");
  return join(std::vector<std::string>(names.begin(), names.end() - 1), ", ") + " or " +
         names.back();
}

}  // namespace

std::string LoadedPlugin::full_name() const {
  return std::string(info->kind_folder) + "/" + info->name;
}

std::optional<sdk::PluginKind> parse_kind(const std::string& text) {
  for (const auto& kind : sdk::kBuiltInKinds)
    if (text == kind.folder() || text == kind.singular()) return kind;
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
  std::vector<fs::path> loaded_files;
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
    for (const auto& file : files) {
      // A library reached twice (a folder of symbolic links to the installed plugins) is one
      // plugin, not a clash with itself.
      const fs::path real = fs::canonical(file, ec);
      if (!ec && std::find(loaded_files.begin(), loaded_files.end(), real) != loaded_files.end())
        continue;
      if (!ec) loaded_files.push_back(real);
      load_or_record(file);
    }
  }
}

void Registry::load_file(const fs::path& file) {
  LoadedPlugin plugin = open_library(file);
  const std::string full = plugin.full_name();
  if (auto it = plugins_.find(full); it != plugins_.end()) {
    throw PluginLoadError("two plugins are named " + full + ": " + it->second.file.string() +
                          " and " + file.string() + "; remove one or rename it");
  }
  keep_loaded_forever(plugin.library);
  plugins_.emplace(full, std::move(plugin));
}

void Registry::load_or_record(const fs::path& file) {
  try {
    load_file(file);
  } catch (const PluginLoadError& e) {
    std::string provides = conventional_full_name(file);
    // A clash names the plugin itself, whatever the file is called.
    const std::string clash = "two plugins are named ";
    const std::string message = e.what();
    if (message.rfind(clash, 0) == 0)
      provides = message.substr(clash.size(), message.find(':') - clash.size());
    unloadable_.push_back({file, message, provides});
  }
}

std::string Registry::unloadable_note() const {
  if (unloadable_.empty()) return "";
  std::vector<std::string> files;
  for (const auto& u : unloadable_) files.push_back(u.file.string());
  return "; " + std::to_string(files.size()) + (files.size() == 1 ? " library" : " libraries") +
         " could not be loaded (`exprun plugins` says why): " + join(files, ", ");
}

const LoadedPlugin& Registry::find(sdk::PluginKind kind, const std::string& name) const {
  const std::string folder = kind.folder();
  const std::string full = folder + "/" + name;
  // Checked before the loaded plugins: a broken library of this name may be the one meant,
  // and another of the same name would then be used without a word.
  for (const auto& u : unloadable_)
    if (u.would_provide == full)
      throw PluginLoadError(full + " comes from a library that could not be loaded: " + u.reason);
  if (auto it = plugins_.find(full); it != plugins_.end()) return it->second;
  std::vector<std::string> names;
  for (const auto& [key, plugin] : plugins_)
    if (plugin.kind() == kind) names.push_back(plugin.name());
  std::string message = "no " + folder + " plugin named \"" + name + "\"";
  const std::string close = did_you_mean(name, names);
  message += close.empty()
                 ? "; is it in a directory you did not pass? (--plugins DIR or EXPRUN_PLUGIN_PATH)"
                 : close;
  message += names.empty() ? " (none of this kind is loaded" : " (available: " + join(names, ", ");
  message += "; searched ";
  std::vector<std::string> dirs;
  for (const auto& d : searched_) dirs.push_back(d.string());
  message += dirs.empty() ? "no existing directory" : join(dirs, ", ");
  throw std::runtime_error(message + unloadable_note() + ")");
}

const LoadedPlugin& Registry::find(const std::string& qualified_name) const {
  const auto slash = qualified_name.find('/');
  if (slash != std::string::npos) {
    const std::string kind_text = qualified_name.substr(0, slash);
    const auto kind = parse_kind(kind_text);
    if (!kind) {
      std::vector<std::string> folders;
      for (const auto& k : kinds()) folders.push_back(k.folder());
      throw std::runtime_error("unknown plugin kind \"" + kind_text + "\" (expected " +
                               one_of(folders) + ")");
    }
    return find(*kind, qualified_name.substr(slash + 1));
  }
  std::vector<const LoadedPlugin*> matches;
  std::vector<std::string> bare_names;
  for (const auto& [full, plugin] : plugins_) {
    if (plugin.name() == qualified_name) matches.push_back(&plugin);
    bare_names.push_back(plugin.name());
  }
  if (matches.size() == 1) return find(matches.front()->kind(), qualified_name);
  if (matches.size() > 1) {
    throw std::runtime_error("\"" + qualified_name + "\" names plugins of several kinds; write " +
                             "KIND/" + qualified_name);
  }
  for (const auto& u : unloadable_) {
    const auto u_slash = u.would_provide.find('/');
    if (u_slash != std::string::npos && u.would_provide.substr(u_slash + 1) == qualified_name) {
      throw PluginLoadError(u.would_provide +
                            " comes from a library that could not be loaded: " + u.reason);
    }
  }
  // Distances are measured on bare names (the user typed one), but the
  // suggestion is the full KIND/NAME so it can be pasted as it stands.
  std::vector<std::string> suggestions;
  for (const auto& close : closest_matches(qualified_name, bare_names))
    for (const auto& [full, plugin] : plugins_)
      if (plugin.name() == close &&
          std::find(suggestions.begin(), suggestions.end(), full) == suggestions.end())
        suggestions.push_back(full);
  throw std::runtime_error("no plugin named \"" + qualified_name + "\"" + suggest(suggestions) +
                           unloadable_note());
}

std::vector<sdk::PluginKind> Registry::kinds() const {
  std::vector<sdk::PluginKind> out(std::begin(sdk::kBuiltInKinds), std::end(sdk::kBuiltInKinds));
  std::vector<sdk::PluginKind> others;
  for (const auto& [full, plugin] : plugins_)
    if (std::find(out.begin(), out.end(), plugin.kind()) == out.end() &&
        std::find(others.begin(), others.end(), plugin.kind()) == others.end())
      others.push_back(plugin.kind());
  std::sort(others.begin(), others.end());
  out.insert(out.end(), others.begin(), others.end());
  return out;
}

std::optional<sdk::PluginKind> Registry::parse_kind(const std::string& text) const {
  for (const auto& kind : kinds())
    if (text == kind.folder() || text == kind.singular()) return kind;
  return std::nullopt;
}

std::vector<const LoadedPlugin*> Registry::list() const {
  std::vector<const LoadedPlugin*> out;
  for (const auto& kind : kinds())
    for (const auto& [full, plugin] : plugins_)
      if (plugin.kind() == kind) out.push_back(&plugin);
  return out;
}

sdk::ParamSchema Registry::schema(sdk::PluginKind kind, const std::string& name) const {
  return find(kind, name).schema;
}

}  // namespace exprun
