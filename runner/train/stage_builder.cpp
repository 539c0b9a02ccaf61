#include "train/stage_builder.hpp"

#include <algorithm>
#include <numeric>

#include "config/config_error.hpp"
#include "data/film_cache.hpp"
#include "data/worker_count.hpp"
#include "util/text.hpp"

namespace exprun {
namespace {

// A plugin constructor's error, told with the experiment key that chose the plugin.
template <typename F>
auto building(const PluginChoice& choice, F&& make) {
  try {
    return make();
  } catch (const c10::Error& e) {
    throw ConfigError(choice.where + ": " + choice.key_path + ": " + sdk::kind_folder(choice.kind) +
                      "/" + choice.name + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw ConfigError(choice.where + ": " + choice.key_path + ": " + sdk::kind_folder(choice.kind) +
                      "/" + choice.name + ": " + e.what());
  }
}

bool same_landmarks(const std::vector<sdk::LandmarkInfo>& a,
                    const std::vector<sdk::LandmarkInfo>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].symbol != b[i].symbol) return false;
  return true;
}

}  // namespace

std::vector<std::string> BuiltStage::symbols() const {
  std::vector<std::string> out;
  for (const auto& l : landmarks) out.push_back(l.symbol);
  return out;
}

torch::Tensor landmark_weight_tensor(const LandmarkWeights& weights,
                                     const std::vector<std::string>& symbols) {
  std::vector<float> values(symbols.size(), 1.0f);
  for (const auto& [symbol, weight] : weights.by_symbol) {
    const auto it = std::find(symbols.begin(), symbols.end(), symbol);
    if (it == symbols.end()) {
      throw ConfigError(weights.where.at(symbol) + ": " + weights.key_path + "." + symbol +
                        ": the dataset has no landmark '" + symbol + "'" +
                        did_you_mean(symbol, symbols) + " (its landmarks: " + join(symbols, ", ") +
                        ")");
    }
    values[static_cast<std::size_t>(it - symbols.begin())] = static_cast<float>(weight);
  }
  if (std::all_of(values.begin(), values.end(), [](float v) { return v == 0.0f; })) {
    throw ConfigError(weights.where.begin()->second + ": " + weights.key_path +
                      ": every landmark weighs 0, so there is nothing to learn");
  }
  return torch::tensor(values, torch::kFloat);
}

void use_channels_last(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  // LibTorch's C++ Module::to takes no memory format (Python's does); set_data keeps each
  // parameter the same autograd leaf, so optimisers built afterwards see the NHWC tensors.
  // to(), not contiguous(): a weight of one input channel ([C, 1, k, k]) is contiguous both
  // ways, so contiguous() keeps its NCHW strides, from which LibTorch infers NCHW, and the
  // first convolution of a grey input would then run, and hand its batch norm, NCHW tensors.
  const auto to_channels_last = [](const torch::Tensor& t) {
    return t.to(t.options(), /*non_blocking=*/false, /*copy=*/false,
                torch::MemoryFormat::ChannelsLast);
  };
  for (auto& p : model.parameters()) {
    if (p.dim() == 4) p.set_data(to_channels_last(p));
  }
  for (auto& b : model.buffers()) {
    if (b.dim() == 4) b.set_data(to_channels_last(b));
  }
}

EvaluatedModel BuiltStage::evaluated() { return {*model, strategies, *pipeline, device, decode}; }

torch::Device resolve_device(const std::string& device, std::optional<int> local_rank) {
  const bool cuda = device == "auto" ? torch::cuda::is_available() : device.rfind("cuda", 0) == 0;
  if (cuda && !torch::cuda::is_available()) {
    throw std::runtime_error("device \"" + device +
                             "\" was asked for, but this LibTorch sees no CUDA device "
                             "(use device = \"auto\" or \"cpu\")");
  }
  if (device == "auto" && !cuda) return torch::kCPU;
  if (local_rank && (device == "auto" || device == "cuda")) {
    const auto gpus = static_cast<int>(torch::cuda::device_count());
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(*local_rank % gpus));
  }
  if (device == "auto") return torch::Device(torch::kCUDA);
  try {
    return torch::Device(device);
  } catch (const c10::Error&) {
    // LibTorch's message carries a backtrace; every exprun error is one line.
    throw std::runtime_error("expected auto, cpu, cuda or cuda:N, found \"" + device + "\"");
  }
}

BuiltStage build_stage(const Experiment& experiment, const StageConfig& stage,
                       std::size_t stage_index, const Registry& registry,
                       std::optional<int> local_rank, int ranks_on_machine) {
  BuiltStage out;
  try {
    out.device = resolve_device(stage.device, local_rank);
  } catch (const std::exception& e) {
    throw ConfigError(stage.where + ": stages." + stage.name + ".device: " + e.what());
  }
  out.data_workers = stage.data.workers_auto
                         ? auto_worker_count({!out.device.is_cpu(), usable_cores(),
                                              at::get_num_threads(), ranks_on_machine})
                         : stage.data.workers;
  const auto& reader = stage.data.reader;
  for (const auto& [split, slot] : {std::pair{stage.data.train_split, &out.train},
                                    std::pair{stage.data.val_split, &out.valid}}) {
    sdk::DatasetContext context{split, experiment.seed};
    *slot = building(
        reader, [&] { return registry.make<sdk::Dataset>(reader.name, reader.params, context); });
    if ((*slot)->size() == 0) {
      throw ConfigError(reader.where + ": " + reader.key_path + ": the " + split +
                        " split of datasets/" + reader.name + " holds no samples");
    }
  }
  out.landmarks = out.train->landmarks();
  if (!same_landmarks(out.landmarks, out.valid->landmarks())) {
    throw ConfigError(reader.where + ": " + reader.key_path + ": the " + stage.data.train_split +
                      " and " + stage.data.val_split + " splits name different landmarks");
  }
  const auto k = static_cast<std::int64_t>(out.landmarks.size());

  torch::manual_seed(mix_seed(experiment.seed, stage_index, 0x30DE1));
  sdk::ModelContext model_context{k, stage.data.channels};
  out.model = building(stage.model, [&] {
    return registry.make<sdk::Model>(stage.model.name, stage.model.params, model_context);
  });
  out.model->to(out.device);
  // A stage sets cuDNN's autotuning for itself: the flag is process-wide, and the next stage
  // may want it off.
  at::globalContext().setBenchmarkCuDNN(stage.cudnn_benchmark);
  if (stage.channels_last) {
    out.input_format = torch::MemoryFormat::ChannelsLast;
    use_channels_last(*out.model);
  }
  for (const auto& p : out.model->parameters()) out.parameter_count += p.numel();
  out.multiply_adds = out.model->multiply_adds(stage.data.input_height, stage.data.input_width);

  sdk::LossContext loss_context{out.landmarks};
  out.loss = building(stage.loss, [&] {
    return registry.make<sdk::Loss>(stage.loss.name, stage.loss.params, loss_context);
  });
  out.landmark_weights = landmark_weight_tensor(stage.loss_weights, out.symbols()).to(out.device);

  // The registry outlives every stage it builds (it holds the plugins' code), and the model is
  // shared, so the factory may be kept with the stage.
  out.make_strategies = [&registry, &stage, device = out.device,
                         model = out.model](std::int64_t micro_batch) {
    sdk::MemoryContext memory_context{stage.memory.effective_batch, micro_batch, device};
    std::vector<std::shared_ptr<sdk::MemoryStrategy>> strategies;
    for (const auto& choice : stage.memory.strategies) {
      auto strategy = building(choice, [&] {
        return registry.make<sdk::MemoryStrategy>(choice.name, choice.params, memory_context);
      });
      building(choice, [&] {
        strategy->prepare(*model);
        return 0;
      });
      strategies.push_back(std::move(strategy));
    }
    return strategies;
  };
  out.decode = parse_decode_method(stage.eval.decode);
  out.micro_batch = stage.memory.micro_batch;
  out.strategies = out.make_strategies(out.micro_batch);
  if (stage.memory.micro_batch_auto && !stage.memory.budget_bytes && !out.device.is_cuda()) {
    throw ConfigError(stage.where + ": stages." + stage.name +
                      ".memory.budget: micro_batch = \"auto\" on " + out.device.str() +
                      " needs a memory budget (e.g. budget = \"4GiB\"): no allocator there "
                      "knows a limit");
  }

  PipelineSpec spec;
  spec.input_width = stage.data.input_width;
  spec.input_height = stage.data.input_height;
  spec.channels = stage.data.channels;
  spec.stride = out.model->output_stride();
  spec.num_landmarks = k;
  spec.sigma = stage.data.sigma;
  spec.augment = stage.data.augment;
  spec.idle_workers = stage.data.worker_priority == "idle";
  spec.between_steps_threads = at::get_num_threads();
  try {
    out.pipeline = std::make_unique<SamplePipeline>(spec);
  } catch (const std::exception& e) {
    throw ConfigError(stage.where + ": stages." + stage.name + ".data.image_size: " + e.what());
  }
  if (stage.data.cache) {
    // Read now, so that a malformed EXPRUN_CACHE_SIZE stops the run before it starts.
    film_cache_settings_from_environment();
    out.pipeline->use_cache(&process_film_cache(), stage.data.reader.name);
  }

  // One image through the model now, so that a shape mismatch is reported before training.
  torch::NoGradGuard no_grad;
  out.model->eval();
  auto probe =
      torch::zeros({1, stage.data.channels, stage.data.input_height, stage.data.input_width},
                   torch::TensorOptions().device(out.device));
  auto heatmaps = building(stage.model, [&] { return out.model->forward(probe); });
  out.model->train();
  const std::vector<std::int64_t> expected = {1, k, out.pipeline->heatmap_height(),
                                              out.pipeline->heatmap_width()};
  if (heatmaps.sizes().vec() != expected) {
    throw ConfigError(
        stage.model.where + ": " + stage.model.key_path + ": models/" + stage.model.name +
        " returned heatmaps of shape " + c10::str(heatmaps.sizes()) + " for a " +
        std::to_string(stage.data.input_width) + "x" + std::to_string(stage.data.input_height) +
        " input; expected " + c10::str(c10::IntArrayRef(expected)));
  }
  return out;
}

}  // namespace exprun
