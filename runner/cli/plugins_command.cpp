#include <cstdio>
#include <iostream>

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"

namespace exprun::cli {
namespace {

std::string constraint_text(const sdk::ParamSpec& spec) {
  std::string out;
  if (spec.min) out += " min " + sdk::to_string(*spec.min);
  if (spec.max) out += " max " + sdk::to_string(*spec.max);
  if (spec.length) out += " length " + std::to_string(*spec.length);
  if (!spec.choices.empty()) {
    out += " one of";
    for (const auto& c : spec.choices) out += " \"" + c + "\"";
  }
  return out;
}

}  // namespace

int plugins_command(const std::vector<std::string>& args) {
  CommonOptions common;
  std::string kind_text;
  po::options_description options(
      "exprun plugins [KIND] [options]\n\nLists the loaded plugins (KIND: datasets, models, "
      "losses, memory).\n\nOptions");
  add_common_options(options, common);
  options.add_options()("kind", po::value(&kind_text), "only this kind");
  po::positional_options_description positional;
  positional.add("kind", 1);
  return guarded([&] {
    if (parse_or_show_help(args, options, positional, common)) return int{kOk};
    std::optional<sdk::PluginKind> kind;
    if (!kind_text.empty()) {
      kind = parse_kind(kind_text);
      if (!kind) {
        throw po::error("unknown plugin kind '" + kind_text +
                        "' (expected datasets, models, losses or memory)");
      }
    }
    Registry registry;
    load_registry(registry, common);
    std::string current;
    for (const LoadedPlugin* p : registry.list()) {
      if (kind && p->kind() != *kind) continue;
      const std::string folder = sdk::kind_folder(p->kind());
      if (folder != current) {
        std::cout << (current.empty() ? "" : "\n") << folder << ":\n";
        current = folder;
      }
      std::printf("  %-36s %s\n", p->full_name().c_str(), p->info->summary);
    }
    if (current.empty()) std::cout << "no plugins found\n";
    std::cout << "\nsearched:";
    for (const auto& d : registry.searched()) std::cout << " " << d.string();
    std::cout << "\n";
    return int{kOk};
  });
}

int describe_command(const std::vector<std::string>& args) {
  CommonOptions common;
  std::string name;
  po::options_description options(
      "exprun describe KIND/NAME [options]\n\nPrints a plugin's parameters with their types, "
      "defaults and documentation.\n\nOptions");
  add_common_options(options, common);
  options.add_options()("name", po::value(&name), "plugin, e.g. losses/adaptive_wing");
  po::positional_options_description positional;
  positional.add("name", 1);
  return guarded([&] {
    if (parse_or_show_help(args, options, positional, common)) return int{kOk};
    if (name.empty()) throw po::error("describe needs a plugin name, e.g. losses/adaptive_wing");
    Registry registry;
    load_registry(registry, common);
    const LoadedPlugin& p = registry.find(name);
    std::cout << p.full_name() << " - " << p.info->summary << "\n";
    std::cout << "library: " << p.file.string() << "\n\n";
    if (p.schema.specs().empty())
      std::cout << "no parameters\n";
    else
      std::cout << "parameters:\n";
    for (const auto& spec : p.schema.specs()) {
      const std::string def =
          spec.default_value ? "= " + sdk::to_string(*spec.default_value) : "(required)";
      std::printf("  %-22s %-18s %s\n", spec.name.c_str(), sdk::type_name(spec.type).c_str(),
                  def.c_str());
      std::printf("  %-22s %s%s\n", "", spec.doc.c_str(), constraint_text(spec).c_str());
    }
    return int{kOk};
  });
}

}  // namespace exprun::cli
