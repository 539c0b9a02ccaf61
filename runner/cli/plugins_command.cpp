#include <cstdio>
#include <iostream>
#include <regex>
#include <string>
#include <vector>

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"

namespace exprun::cli {
namespace {

// "[min 1e-12, max 5]": bracketed and on the type line, so that a range never reads as the
// end of the documentation sentence. Empty when the parameter has no constraint.
std::string constraint_text(const sdk::ParamSpec& spec) {
  std::vector<std::string> parts;
  if (spec.min) parts.push_back("min " + sdk::to_string(*spec.min));
  if (spec.max) parts.push_back("max " + sdk::to_string(*spec.max));
  if (spec.length) parts.push_back("length " + std::to_string(*spec.length));
  if (!spec.choices.empty()) {
    std::string choices = "one of";
    for (const auto& c : spec.choices) choices += " \"" + c + "\"";
    parts.push_back(choices);
  }
  if (parts.empty()) return "";
  std::string out = "[";
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
  return out + "]";
}

struct ModelSizeOptions {
  std::int64_t landmarks = 19;
  std::int64_t channels = 1;
  std::string input = "256x256";
};

// A model plugin built with its defaults: its parameter count and multiply-adds at one input.
// --input WIDTHxHEIGHT as {width, height}.
std::pair<std::int64_t, std::int64_t> input_size(const std::string& text) {
  std::smatch m;
  static const std::regex size_pattern(R"(([1-9]\d{0,5})x([1-9]\d{0,5}))");
  if (!std::regex_match(text, m, size_pattern))
    throw po::error("--input \"" + text + "\": expected WIDTHxHEIGHT, e.g. 256x256");
  return {std::stoll(m[1]), std::stoll(m[2])};
}

// Usage errors before anything is printed, whatever the plugin's kind.
void check_model_size_options(const ModelSizeOptions& o) {
  // Far beyond any landmark set or image; a slip of the finger would ask for terabytes.
  constexpr std::int64_t kMaxLandmarks = 10000;
  constexpr std::int64_t kMaxChannels = 64;
  if (o.landmarks < 1 || o.landmarks > kMaxLandmarks)
    throw po::error("--landmarks: expected 1 to " + std::to_string(kMaxLandmarks) + ", found " +
                    std::to_string(o.landmarks));
  if (o.channels < 1 || o.channels > kMaxChannels)
    throw po::error("--channels: expected 1 to " + std::to_string(kMaxChannels) + ", found " +
                    std::to_string(o.channels));
  input_size(o.input);
}

void print_model_size(const LoadedPlugin& p, const ModelSizeOptions& o) {
  const auto [width, height] = input_size(o.input);
  std::printf("\nsize with the defaults, %lld landmarks, %lld input channel(s), %lldx%lld input\n",
              static_cast<long long>(o.landmarks), static_cast<long long>(o.channels),
              static_cast<long long>(width), static_cast<long long>(height));
  std::shared_ptr<sdk::Model> model;
  try {
    model = sdk::make_plugin<sdk::Model>(*p.info, sdk::Params::resolve(p.schema, {}),
                                         sdk::ModelContext{o.landmarks, o.channels});
  } catch (const c10::Error& e) {
    std::printf("  not available: the defaults do not build a model (%s)\n",
                e.what_without_backtrace());
    return;
  } catch (const std::exception& e) {
    std::printf("  not available: the defaults do not build a model (%s)\n", e.what());
    return;
  }
  std::int64_t parameters = 0;
  for (const auto& t : model->parameters()) parameters += t.numel();
  const double macs = model->multiply_adds(height, width);
  char macs_text[32] = "unknown";
  if (macs > 0) std::snprintf(macs_text, sizeof macs_text, "%.3f G", macs / 1e9);
  std::printf("  %lld parameters, %s multiply-adds per image, heatmaps at 1/%lld\n",
              static_cast<long long>(parameters), macs_text,
              static_cast<long long>(model->output_stride()));
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
    Registry registry;
    load_registry(registry, common);
    std::optional<sdk::PluginKind> kind;
    if (!kind_text.empty()) {
      kind = registry.parse_kind(kind_text);
      if (!kind) {
        const auto kinds = registry.kinds();
        std::string expected;
        for (std::size_t i = 0; i < kinds.size(); ++i)
          expected += std::string(i == 0                  ? ""
                                  : i + 1 == kinds.size() ? " or "
                                                          : ", ") +
                      kinds[i].folder();
        throw po::error("unknown plugin kind '" + kind_text + "' (expected " + expected + ")");
      }
    }
    std::string current;
    for (const LoadedPlugin* p : registry.list()) {
      if (kind && p->kind() != *kind) continue;
      const std::string folder = sdk::kind_folder(p->kind());
      if (folder != current) {
        std::cout << (current.empty() ? "" : "\n") << folder << ":\n";
        current = folder;
      }
      // find() refuses a name that a library below could also provide (two plugins of one
      // name, say): listed as loaded without a word, it would look usable.
      bool usable = true;
      for (const auto& u : registry.unloadable())
        if (u.would_provide == p->full_name()) usable = false;
      std::printf("  %-36s %s\n", p->full_name().c_str(),
                  usable ? p->info->summary
                         : "NOT USABLE: a library below would provide it too (see could not load)");
    }
    if (current.empty()) std::cout << "no plugins found\n";
    // Not fatal here: a broken library fails only what names a plugin it could provide.
    if (!registry.unloadable().empty()) {
      std::cout << "\ncould not load:\n";
      for (const auto& u : registry.unloadable()) {
        const std::string provides = u.would_provide.empty() ? "" : " (" + u.would_provide + ")";
        std::cout << "  " << u.file.string() << provides << "\n    " << u.reason << "\n";
      }
    }
    std::cout << "\nsearched:";
    for (const auto& d : registry.searched()) std::cout << " " << d.string();
    std::cout << "\n";
    return int{kOk};
  });
}

int describe_command(const std::vector<std::string>& args) {
  CommonOptions common;
  std::string name;
  ModelSizeOptions size;
  po::options_description options(
      "exprun describe KIND/NAME [options]\n\nPrints a plugin's parameters with their types, "
      "defaults and documentation; for a model, also its parameter count and multiply-adds "
      "with its defaults.\n\nOptions");
  add_common_options(options, common);
  options.add_options()("name", po::value(&name), "plugin, e.g. losses/adaptive_wing")(
      "landmarks", po::value(&size.landmarks)->default_value(19),
      "models: heatmaps the model is built with")("channels",
                                                  po::value(&size.channels)->default_value(1),
                                                  "models: input channels (1 grey, 3 colour)")(
      "input", po::value(&size.input)->default_value("256x256"),
      "models: WIDTHxHEIGHT at which multiply-adds are counted");
  po::positional_options_description positional;
  positional.add("name", 1);
  return guarded([&] {
    if (parse_or_show_help(args, options, positional, common)) return int{kOk};
    if (name.empty()) throw po::error("describe needs a plugin name, e.g. losses/adaptive_wing");
    check_model_size_options(size);
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
      const std::string constraints = constraint_text(spec);
      if (constraints.empty())
        std::printf("  %-22s %-18s %s\n", spec.name.c_str(), sdk::type_name(spec.type).c_str(),
                    def.c_str());
      else
        std::printf("  %-22s %-18s %-16s %s\n", spec.name.c_str(),
                    sdk::type_name(spec.type).c_str(), def.c_str(), constraints.c_str());
      std::printf("  %-22s %s\n", "", spec.doc.c_str());
    }
    if (p.kind() == sdk::PluginKind::Model) print_model_size(p, size);
    return int{kOk};
  });
}

}  // namespace exprun::cli
