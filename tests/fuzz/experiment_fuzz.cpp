// Fuzz target: the experiment loader (docs/fuzzing.md). The input is an experiment file; each
// of its lines that starts with "#set " (a comment to TOML) is also given as a --set argument,
// so one input drives the file, the overrides and a [sweep] together. Plugin schemas come from
// a fixed table rather than plugin libraries: the loader's handling of a parameter depends on
// its type and limits, which the table covers, not on which plugin declares it.
#include <exprun/sdk/params.hpp>
#include <exprun/sdk/plugin.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "config/experiment_loader.hpp"
#include "fuzz_support.hpp"
#include "sweep/sweep_loader.hpp"

namespace {

using exprun::sdk::ParamSchema;
using exprun::sdk::PluginKind;

// The built-in plugins' names with parameters of every type, limit and choice list.
class FixedSchemas : public exprun::SchemaSource {
 public:
  FixedSchemas() {
    const auto dataset_files = ParamSchema()
                                   .add_string("root", std::nullopt, "folder")
                                   .add_string("annotator", "mean", "whose")
                                   .choices({"senior", "junior", "mean"})
                                   .add_float("mm_per_pixel", 0.1, "spacing")
                                   .min(1e-6);
    add(PluginKind::Dataset, "aariz", dataset_files);
    add(PluginKind::Dataset, "isbi2015", dataset_files);
    add(PluginKind::Dataset, "synthetic_ceph",
        ParamSchema()
            .add_int("train_count", 200, "")
            .min(0)
            .add_int("valid_count", 50, "")
            .min(0)
            .add_int("seed", 0, "")
            .min(0)
            .add_float("rotation_deg", 10.0, "")
            .min(0.0)
            .max(45.0)
            .add_float("noise", 0.04, "")
            .min(0.0)
            .max(0.5));
    const auto model = ParamSchema()
                           .add_int("width", 18, "")
                           .min(1)
                           .add_int_list("num_modules", std::vector<std::int64_t>{1, 4, 3}, "")
                           .length(3)
                           .min(0)
                           .add_int("num_blocks", 4, "")
                           .min(1)
                           .add_int("stem_blocks", 4, "")
                           .min(1)
                           .add_int("depth", 4, "")
                           .min(1)
                           .max(8)
                           .add_bool("batch_norm", true, "")
                           .add_string("pretrained", "", "")
                           .add_bool("pretrained_strict", true, "")
                           .add_string_list("pretrained_ignore", std::vector<std::string>{}, "")
                           .add_float_list("scales", std::vector<double>{1.0}, "")
                           .min(0.0);
    add(PluginKind::Model, "hrnet", model);
    add(PluginKind::Model, "unet", model);
    add(PluginKind::Loss, "adaptive_wing",
        ParamSchema()
            .add_float("alpha", 2.1, "")
            .min(1.0)
            .add_float("omega", 14.0, "")
            .min(0.0)
            .add_bool("use_loss_map", false, "")
            .add_float("loss_map_threshold", 0.2, "")
            .min(0.0)
            .max(1.0)
            .add_float_map("emphasis", std::map<std::string, double>{}, "")
            .min(0.0));
    add(PluginKind::Loss, "mse", ParamSchema().add_float("scale", 1.0, "").min(0.0));
    add(PluginKind::Loss, "external_l1", ParamSchema().add_float("scale", 1.0, "").min(0.0));
    add(PluginKind::Loss, "l1_coords",
        ParamSchema().add_float("beta", 1.0, "").min(1e-6).add_float("scale", 1.0, "").min(0.0));
    add(PluginKind::Memory, "gradient_accumulation", ParamSchema());
    add(PluginKind::Memory, "mixed_precision",
        ParamSchema()
            .add_string("dtype", "auto", "")
            .choices({"auto", "bf16", "fp16"})
            .add_int("growth_interval", 2000, "")
            .min(1));
    add(PluginKind::Memory, "activation_checkpointing",
        ParamSchema().add_string_list("parts", std::vector<std::string>{"all"}, ""));
  }

  ParamSchema schema(PluginKind kind, const std::string& name) const override {
    const auto it = schemas_.find({kind, name});
    if (it == schemas_.end())
      throw std::runtime_error("no " + std::string(exprun::sdk::kind_folder(kind)) +
                               " plugin named \"" + name + "\"");
    return it->second;
  }

 private:
  void add(PluginKind kind, const std::string& name, ParamSchema schema) {
    schemas_[{kind, name}] = std::move(schema);
  }
  std::map<std::pair<PluginKind, std::string>, ParamSchema> schemas_;
};

std::vector<std::string> set_lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (text.compare(start, 5, "#set ") == 0)
      out.push_back(text.substr(start + 5, end - start - 5));
    start = end + 1;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const FixedSchemas schemas;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string> overrides = set_lines(text);
  const auto path = exprun::fuzz::write_scratch("experiment.toml", data, size);
  // Errors start with the file's position, an override ("--set ...") or a sweep trial.
  const std::vector<std::string> names = {path.string(), "--set ", "sweep trial "};
  exprun::fuzz::expect_located_errors(
      [&] {
        const exprun::SweepFile file = exprun::read_sweep_file(path.string());
        std::vector<exprun::Experiment> loaded;
        if (!file.spec) {
          loaded.push_back(exprun::parse_experiment(file.text, file.path, overrides, schemas));
        } else {
          exprun::check_sweep_against_overrides(*file.spec, overrides);
          // The first and the last trial: a grid can expand to thousands.
          const auto trials = file.spec->trials();
          if (!trials.empty())
            loaded.push_back(exprun::load_trial(file, trials.front(), overrides, schemas));
          if (trials.size() > 1)
            loaded.push_back(exprun::load_trial(file, trials.back(), overrides, schemas));
        }
        // What the report and the plan print of it.
        for (const auto& experiment : loaded) (void)exprun::to_json(experiment).dump(2);
      },
      names);
  return 0;
}
