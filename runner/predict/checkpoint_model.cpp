#include "predict/checkpoint_model.hpp"

#include <limits>
#include <stdexcept>

#include "eval/radial_error.hpp"

namespace exprun {
namespace {

sdk::ParamValue param_value(const nlohmann::json& v, sdk::ParamType type) {
  using T = sdk::ParamType;
  switch (type) {
    case T::Bool:
      return v.get<bool>();
    case T::Int:
      return v.get<std::int64_t>();
    case T::Float:
      return v.get<double>();
    case T::String:
      return v.get<std::string>();
    case T::IntList:
      return v.get<std::vector<std::int64_t>>();
    case T::FloatList:
      return v.get<std::vector<double>>();
    case T::StringList:
      return v.get<std::vector<std::string>>();
    case T::FloatMap:
      return v.get<std::map<std::string, double>>();
  }
  throw std::logic_error("unknown parameter type");
}

}  // namespace

sdk::Params params_from_json(const nlohmann::json& values, const sdk::ParamSchema& schema,
                             const std::string& what) {
  std::map<std::string, sdk::ParamValue> given;
  for (const auto& [key, value] : values.items()) {
    if (key == "plugin") continue;
    const sdk::ParamSpec* spec = schema.find(key);
    if (!spec) {
      throw std::runtime_error(what + ": parameter '" + key +
                               "' is unknown to the plugin loaded now (was it changed since "
                               "the checkpoint was written?)");
    }
    sdk::ParamValue converted;
    try {
      converted = param_value(value, spec->type);
    } catch (const nlohmann::json::exception&) {
      throw std::runtime_error(what + ": parameter '" + key + "' should be " +
                               sdk::type_name(spec->type) + ", found " + value.dump());
    }
    if (auto error = sdk::check_and_convert(*spec, converted)) {
      throw std::runtime_error(what + ": parameter '" + key + "': " + *error);
    }
    given[key] = std::move(converted);
  }
  try {
    return sdk::Params::resolve(schema, std::move(given));
  } catch (const sdk::ParamError& e) {
    throw std::runtime_error(what + ": " + e.what());
  }
}

CheckpointModel load_checkpoint_model(const std::filesystem::path& path, const Registry& registry,
                                      torch::Device device) {
  CheckpointModel out;
  out.device = device;
  out.info = read_checkpoint_info(path);
  const std::string where = "checkpoint " + path.string();
  const nlohmann::json& config = out.info.config;
  const auto& symbols = out.info.landmark_symbols;
  if (symbols.empty()) throw std::runtime_error(where + ": names no landmarks");
  for (std::size_t i = 0; i < symbols.size(); ++i) {
    out.landmarks.push_back(
        {symbols[i], i < out.info.landmark_titles.size() ? out.info.landmark_titles[i] : ""});
  }

  PipelineSpec spec;
  nlohmann::json model_config;
  try {
    const auto& data = config.at("data");
    spec.input_width = data.at("image_size").at(0).get<std::int64_t>();
    spec.input_height = data.at("image_size").at(1).get<std::int64_t>();
    spec.channels = data.at("channels").get<std::int64_t>();
    spec.sigma = data.at("sigma").get<double>();
    model_config = config.at("model");
    if (config.contains("eval")) {
      out.decode = parse_decode_method(config["eval"].at("decode").get<std::string>());
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(where + ": its stage config lacks what predict needs (" +
                             std::string(e.what()) + ")");
  }
  spec.num_landmarks = static_cast<std::int64_t>(symbols.size());
  spec.augment.enabled = false;

  const std::string name = model_config.at("plugin").get<std::string>();
  sdk::ParamSchema schema;
  try {
    schema = registry.schema(sdk::PluginKind::Model, name);
  } catch (const std::exception& e) {
    throw std::runtime_error(where + ": its model models/" + name + " is not loaded: " + e.what());
  }
  const sdk::Params params = params_from_json(model_config, schema, where + ": models/" + name);
  out.model =
      registry.make<sdk::Model>(name, params, sdk::ModelContext{spec.num_landmarks, spec.channels});
  load_model_weights(path, *out.model);
  out.model->to(device);
  out.model->eval();
  spec.stride = out.model->output_stride();
  out.pipeline = std::make_unique<SamplePipeline>(spec);
  return out;
}

torch::Tensor CheckpointModel::predict(const torch::Tensor& image, DecodeMethod method) const {
  const auto k = pipeline->spec().num_landmarks;
  sdk::Sample sample;
  sample.image = image;
  // Unknown landmarks: the pipeline maps them (to nothing) like any missing landmark.
  sample.landmarks = torch::full({k, 2}, std::numeric_limits<double>::quiet_NaN(), torch::kFloat64);
  sample.mm_per_pixel = 1.0;
  sample.id = "predict";
  PreparedSample prepared = pipeline->prepare(sample, false, 0);

  torch::NoGradGuard no_grad;
  const auto heatmaps =
      model->forward(prepared.image.unsqueeze(0).to(device)).to(torch::kFloat32).cpu();
  const auto coords = decode_heatmaps(heatmaps, method, pipeline->spec().sigma);
  const double stride = static_cast<double>(pipeline->spec().stride);
  return heatmap_to_original(coords, {prepared.meta}, stride)[0];
}

}  // namespace exprun
