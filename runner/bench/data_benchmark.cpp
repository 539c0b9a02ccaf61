#include "bench/data_benchmark.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "bench/median.hpp"
#include "data/batch_loader.hpp"
#include "train/stage_builder.hpp"
#include "train/step_measurement.hpp"
#include "util/elapsed.hpp"
#include "util/one_library_thread.hpp"
#include "util/text.hpp"

namespace exprun {
namespace {

using Clock = std::chrono::steady_clock;

// The augmentation draws of the measured batches; any fixed value does.
constexpr std::uint64_t kSeed = 0xDA7A;

// The training split's first `images` samples, cycled when the split is smaller.
std::vector<std::size_t> measured_order(const sdk::Dataset& train, std::int64_t images) {
  std::vector<std::size_t> order(static_cast<std::size_t>(images));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i % train.size();
  return order;
}

// One thread, every image timed phase by phase, as a worker prepares it.
DataPhases measure_phases(const SamplePipeline& pipeline, const sdk::Dataset& train,
                          const std::vector<std::size_t>& order, std::int64_t batch_size,
                          double* mean_megapixels) {
  DataPhases phases;
  PrepareTimes times;
  double collate_seconds = 0, pixels = 0;
  std::vector<PreparedSample> batch;
  // As the loader prepares samples: one LibTorch thread, so "on one thread" is what it says.
  const OneLibraryThread one_thread;
  for (std::size_t n = 0; n < order.size(); ++n) {
    batch.push_back(pipeline.prepare(train, order[n], true, mix_seed(kSeed, order[n]), &times));
    pixels +=
        static_cast<double>(batch.back().meta.original_width * batch.back().meta.original_height);
    if (static_cast<std::int64_t>(batch.size()) == batch_size || n + 1 == order.size()) {
      const auto collating = Clock::now();
      SamplePipeline::collate(std::move(batch));
      collate_seconds += seconds_since(collating);
      batch.clear();
    }
  }
  const double per_image = 1000.0 / static_cast<double>(order.size());
  phases.read_decode_ms = times.read_decode_seconds * per_image;
  phases.resize_augment_ms = times.resize_augment_seconds * per_image;
  phases.targets_ms = times.target_seconds * per_image;
  phases.collate_ms = collate_seconds * per_image;
  phases.cache_misses = times.cache_misses;
  if (mean_megapixels) *mean_megapixels = pixels / 1e6 / static_cast<double>(order.size());
  return phases;
}

// Images/s of the stage's own loader with `workers`, batches taken as fast as they come.
double loader_rate(const SamplePipeline& pipeline, const BuiltStage& stage,
                   const std::vector<std::size_t>& order, std::int64_t batch_size,
                   std::int64_t workers) {
  const auto started = Clock::now();
  BatchLoader loader(stage.train, pipeline, order, batch_size, workers, true, kSeed);
  std::int64_t images = 0;
  while (auto batch = loader.next()) images += batch->size();
  return static_cast<double>(images) / std::max(seconds_since(started), 1e-9);
}

std::string phases_line(const char* title, const DataPhases& p) {
  auto share = [&](double part) {
    return p.total_ms() > 0 ? printf_text("%.0f%%", 100.0 * part / p.total_ms()) : std::string("-");
  };
  return printf_text(
      "%s: read+decode %.2f ms (%s), resize+augment %.2f ms (%s), targets %.2f ms "
      "(%s), collate %.2f ms (%s)",
      title, p.read_decode_ms, share(p.read_decode_ms).c_str(), p.resize_augment_ms,
      share(p.resize_augment_ms).c_str(), p.targets_ms, share(p.targets_ms).c_str(), p.collate_ms,
      share(p.collate_ms).c_str());
}

nlohmann::json phases_json(const DataPhases& p) {
  return {{"read_decode", p.read_decode_ms},
          {"resize_augment", p.resize_augment_ms},
          {"targets", p.targets_ms},
          {"collate", p.collate_ms}};
}

}  // namespace

std::vector<std::int64_t> parse_worker_counts(const std::string& text) {
  std::vector<std::int64_t> counts;
  std::string item;
  for (char ch : text + ",") {
    if (ch != ',') {
      if (ch != ' ') item += ch;
      continue;
    }
    std::size_t used = 0;
    long long value = -1;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || value < 0 || value > 256) {
      throw std::invalid_argument("'" + item + "': expected worker counts 0 to 256, e.g. 0,1,2,4");
    }
    if (std::find(counts.begin(), counts.end(), value) == counts.end()) counts.push_back(value);
    item.clear();
  }
  return counts;
}

const WorkerRate* DataBenchResult::configured_rate() const {
  const WorkerRate* best = nullptr;
  for (const auto& r : rates) {
    if (r.workers <= configured_workers && (!best || r.workers > best->workers)) best = &r;
  }
  return best;
}

double DataBenchResult::steady_images_per_second() const {
  const WorkerRate* r = configured_rate();
  if (!r) return 0;
  return cache_measured ? r->cached_images_per_second : r->images_per_second;
}

std::string DataBenchResult::bottleneck() const {
  if (model_images_per_second <= 0 || !configured_rate()) return "";
  return steady_images_per_second() < model_images_per_second ? "data pipeline" : "model";
}

nlohmann::json DataBenchResult::to_json() const {
  nlohmann::json rates_json = nlohmann::json::array();
  for (const auto& r : rates) {
    rates_json.push_back(
        {{"workers", r.workers},
         {"images_per_second", r.images_per_second},
         {"cached_images_per_second",
          cache_measured ? nlohmann::json(r.cached_images_per_second) : nlohmann::json(nullptr)}});
  }
  const WorkerRate* configured = configured_rate();
  auto or_null = [](bool present, double value) {
    return present ? nlohmann::json(value) : nlohmann::json(nullptr);
  };
  return {
      {"experiment", experiment},
      {"stage", stage},
      {"device", device},
      {"input_size", {input_width, input_height}},
      {"batch_size", batch_size},
      {"images", images},
      {"mean_megapixels", mean_megapixels},
      {"phases_ms_per_image", phases_json(phases)},
      {"cache_measured", cache_measured},
      {"cache_kind", cache_measured ? nlohmann::json(cache_kind) : nlohmann::json(nullptr)},
      {"cache_note", cache_note},
      {"cached_phases_ms_per_image",
       cache_measured ? phases_json(cached_phases) : nlohmann::json(nullptr)},
      {"workers", rates_json},
      {"configured_workers", configured_workers},
      {"configured_images_per_second", or_null(configured, steady_images_per_second())},
      {"model_images_per_second", or_null(model_images_per_second > 0, model_images_per_second)},
      {"model_error", model_error},
      {"bottleneck",
       bottleneck().empty() ? nlohmann::json(nullptr) : nlohmann::json(bottleneck())}};
}

DataBenchResult run_data_benchmark(const Experiment& experiment, std::size_t stage_index,
                                   const Registry& registry, const DataBenchOptions& options,
                                   const std::function<void(const std::string&)>& on_line) {
  auto say = [&](const std::string& line) {
    if (on_line) on_line(line);
  };
  if (options.images < 1) throw std::invalid_argument("the data benchmark needs 1 image or more");
  const StageConfig& config = experiment.stages.at(stage_index);
  BuiltStage stage = build_stage(experiment, config, stage_index, registry);
  if (stage.train->size() == 0) {
    throw std::runtime_error("stage " + config.name + ": the training split has no images");
  }
  DataBenchResult result;
  result.experiment = experiment.name;
  result.stage = config.name;
  result.device = stage.device.str();
  result.input_width = config.data.input_width;
  result.input_height = config.data.input_height;
  result.batch_size = config.memory.effective_batch;
  result.images = options.images;
  result.configured_workers = stage.data_workers;
  std::vector<std::int64_t> counts = options.worker_counts;
  if (counts.empty()) {
    for (std::int64_t w = 0; w <= std::max<std::int64_t>(2, stage.data_workers); ++w)
      counts.push_back(w);
  }
  const auto order = measured_order(*stage.train, options.images);
  const SamplePipeline& cached = *stage.pipeline;
  SamplePipeline decoding = cached;
  decoding.use_cache(nullptr, "");
  if (!cached.uses_cache()) {
    result.cache_note = "data.cache = false";
  } else {
    result.cache_measured = true;
    result.cache_kind = stage.train->get_without_image(0) ? "files" : "memory";
  }

  // Decoding first, so that the other passes find the files in the page cache, as epochs after
  // the first do; then one pass fills the film cache, and one more times it warm.
  result.phases =
      measure_phases(decoding, *stage.train, order, result.batch_size, &result.mean_megapixels);
  say(printf_text("%lld images of %s (%.2f megapixels on average) at %lldx%lld, batches of %lld",
                  static_cast<long long>(result.images), config.data.train_split.c_str(),
                  result.mean_megapixels, static_cast<long long>(result.input_width),
                  static_cast<long long>(result.input_height),
                  static_cast<long long>(result.batch_size)));
  say(phases_line("one image on one thread, decoding", result.phases));
  if (result.cache_measured) {
    measure_phases(cached, *stage.train, order, result.batch_size, nullptr);
    result.cached_phases = measure_phases(cached, *stage.train, order, result.batch_size, nullptr);
    // A pass right after the filling one that still misses films did not read a warm cache:
    // its figures would be decoding's, and the bottleneck said from them wrong.
    if (result.cached_phases.cache_misses > 0) {
      result.cache_measured = false;
      result.cache_note = printf_text(
          "%lld of %lld images found no film in the %s on the pass after the one that "
          "filled it (not writable, or EXPRUN_CACHE_SIZE / the memo's bound too small for them)",
          static_cast<long long>(result.cached_phases.cache_misses),
          static_cast<long long>(order.size()),
          result.cache_kind == "memory" ? "film memo" : "decoded-film cache");
      result.cache_kind.clear();
    }
  }
  if (result.cache_measured) {
    const bool memo = result.cache_kind == "memory";
    say(phases_line(memo ? "one image on one thread, film memo warm (the dataset makes its images)"
                         : "one image on one thread, cache warm",
                    result.cached_phases));
  } else {
    say("film cache: not measured: " + result.cache_note);
  }

  // Worker counts in turn, round after round, so that a slow spell of the machine touches all.
  std::vector<std::vector<double>> decoded(counts.size()), from_cache(counts.size());
  for (int round = 0; round < std::max(1, options.rounds); ++round) {
    for (std::size_t i = 0; i < counts.size(); ++i) {
      decoded[i].push_back(loader_rate(decoding, stage, order, result.batch_size, counts[i]));
      if (result.cache_measured) {
        from_cache[i].push_back(loader_rate(cached, stage, order, result.batch_size, counts[i]));
      }
    }
  }
  for (std::size_t i = 0; i < counts.size(); ++i) {
    result.rates.push_back(
        {counts[i], median(decoded[i]), result.cache_measured ? median(from_cache[i]) : 0.0});
  }
  const WorkerRate* none = nullptr;
  for (const auto& r : result.rates)
    if (r.workers == 0) none = &r;
  auto versus_none = [&](double rate, double base) {
    return base > 0 ? printf_text("%.2fx", rate / base) : std::string();
  };
  if (result.cache_measured) {
    say(printf_text("%8s %12s %8s %12s %8s %12s", "workers", "decoding", "vs 0", "cache warm",
                    "vs 0", "warm/decode"));
  } else {
    say(printf_text("%8s %12s %8s", "workers", "img/s", "vs 0"));
  }
  for (const auto& r : result.rates) {
    const std::string base = versus_none(r.images_per_second, none ? none->images_per_second : 0);
    if (result.cache_measured) {
      say(printf_text(
          "%8lld %12.1f %8s %12.1f %8s %11.2fx", static_cast<long long>(r.workers),
          r.images_per_second, base.c_str(), r.cached_images_per_second,
          versus_none(r.cached_images_per_second, none ? none->cached_images_per_second : 0)
              .c_str(),
          r.cached_images_per_second / std::max(r.images_per_second, 1e-12)));
    } else {
      say(printf_text("%8lld %12.1f %8s", static_cast<long long>(r.workers), r.images_per_second,
                      base.c_str()));
    }
  }

  if (options.measure_model) {
    try {
      const auto m = measure_bare_steps(stage, config, stage.micro_batch,
                                        options.model_warmup_steps, options.model_timed_steps);
      result.model_images_per_second = m.images_per_second;
      say(printf_text(
          "model: %s, %d timed steps of %lld images (micro-batch %lld) on pre-made "
          "batches on %s: %.1f img/s",
          config.model.name.c_str(), options.model_timed_steps,
          static_cast<long long>(config.memory.effective_batch),
          static_cast<long long>(stage.micro_batch), result.device.c_str(), m.images_per_second));
    } catch (const std::exception& e) {
      result.model_error = e.what();
      say("model: not measured: " + result.model_error);
    }
  }
  const std::string bottleneck = result.bottleneck();
  if (!bottleneck.empty()) {
    const double data = result.steady_images_per_second();
    const double ratio = data / result.model_images_per_second;
    const std::string source = !result.cache_measured          ? "decoding"
                               : result.cache_kind == "memory" ? "from the warm film memo"
                                                               : "from the warm cache";
    if (bottleneck == "model") {
      say(printf_text(
          "bottleneck: the model; with data.workers = %lld the pipeline (%s) delivers "
          "%.1f img/s, %.2fx what the model consumes",
          static_cast<long long>(result.configured_workers), source.c_str(), data, ratio));
    } else {
      say(printf_text(
          "bottleneck: the data pipeline; with data.workers = %lld it (%s) delivers %.1f "
          "img/s, %.2fx what the model consumes (%.1f img/s); try more data.workers",
          static_cast<long long>(result.configured_workers), source.c_str(), data, ratio,
          result.model_images_per_second));
    }
  }
  return result;
}

}  // namespace exprun
