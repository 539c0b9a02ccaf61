#include "train/stage_progress.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

#include "util/json_number.hpp"

namespace exprun {
namespace {

using json = nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Any value that is not a number, null included, reads as NaN (unknown).
double as_number_or_nan(const json& j) { return j.is_number() ? j.get<double>() : kNaN; }

// Checkpoints written before the data wait was recorded lack the key: unknown, not zero.
double data_wait_or_nan(const json& j) {
  const auto found = j.find("data_wait_seconds");
  return found == j.end() ? kNaN : as_number_or_nan(*found);
}

// The checkpoint's JSON names, spelled once.
namespace key {
constexpr const char* kHistory = "history";
constexpr const char* kBestMetrics = "best_metrics";
constexpr const char* kFinalMetrics = "final_metrics";
constexpr const char* kBaselineMetrics = "baseline_metrics";
constexpr const char* kBestValue = "best_value";
constexpr const char* kTrainSeconds = "train_seconds";
constexpr const char* kTrainedImages = "trained_images";
constexpr const char* kEpochCheckpoints = "epoch_checkpoints";
constexpr const char* kUnfinished = "unfinished";
constexpr const char* kResumed = "resumed";
constexpr const char* kTuning = "tuning";
}  // namespace key

std::optional<Metrics> optional_metrics(const json& j, const std::vector<std::string>& symbols) {
  if (j.is_null()) return std::nullopt;
  return metrics_from_json(j, symbols);
}

}  // namespace

double EpochStats::loss() const {
  return loss_sum / static_cast<double>(std::max<std::int64_t>(1, images));
}

double EpochStats::images_per_second() const {
  return static_cast<double>(images) / std::max(seconds, 1e-9);
}

json to_json(const EpochStats& s) {
  return {{"loss_sum", s.loss_sum},
          {"seconds", s.seconds},
          {"data_wait_seconds", number_or_null(s.data_wait_seconds)},
          {"images", s.images},
          {"skipped_steps", s.skipped_steps},
          {"steps", s.steps}};
}

EpochStats epoch_stats_from_json(const json& j) {
  EpochStats s;
  s.loss_sum = j.at("loss_sum").get<double>();
  s.seconds = j.at("seconds").get<double>();
  s.data_wait_seconds = data_wait_or_nan(j);
  s.images = j.at("images").get<std::int64_t>();
  s.skipped_steps = j.at("skipped_steps").get<std::int64_t>();
  s.steps = j.at("steps").get<std::int64_t>();
  return s;
}

json to_json(const EpochRecord& r) {
  return {{"epoch", r.epoch},
          {"train_loss", number_or_null(r.train_loss)},
          {"lr", number_or_null(r.lr)},
          {"val_mre_mm", number_or_null(r.val_mre_mm)},
          {"val_sd_mm", number_or_null(r.val_sd_mm)},
          {"val_sdr", sdr_json(r.val_sdr)},
          {"images_per_second", number_or_null(r.images_per_second)},
          {"epoch_seconds", number_or_null(r.epoch_seconds)},
          {"data_wait_seconds", number_or_null(r.data_wait_seconds)},
          {"skipped_steps", r.skipped_steps},
          {"peak_memory_bytes", r.peak_memory_bytes ? json(*r.peak_memory_bytes) : json(nullptr)},
          {"best", r.best}};
}

EpochRecord epoch_record_from_json(const json& j) {
  EpochRecord r;
  r.epoch = j.at("epoch").get<std::int64_t>();
  r.train_loss = as_number_or_nan(j.at("train_loss"));
  r.lr = as_number_or_nan(j.at("lr"));
  r.val_mre_mm = as_number_or_nan(j.at("val_mre_mm"));
  r.val_sd_mm = as_number_or_nan(j.at("val_sd_mm"));
  for (std::size_t t = 0; t < kSdrThresholdsMm.size(); ++t)
    r.val_sdr.push_back(as_number_or_nan(j.at("val_sdr").at(sdr_key(t))));
  r.images_per_second = as_number_or_nan(j.at("images_per_second"));
  r.epoch_seconds = as_number_or_nan(j.at("epoch_seconds"));
  r.data_wait_seconds = data_wait_or_nan(j);
  r.skipped_steps = j.at("skipped_steps").get<std::int64_t>();
  if (j.at("peak_memory_bytes").is_number())
    r.peak_memory_bytes = j["peak_memory_bytes"].get<std::int64_t>();
  r.best = j.at("best").get<bool>();
  return r;
}

json metrics_or_null(const std::optional<Metrics>& metrics,
                     const std::vector<std::string>& symbols) {
  return metrics ? to_json(*metrics, symbols) : json(nullptr);
}

json to_json(const StageProgress& p, const std::vector<std::string>& symbols) {
  json history = json::array();
  for (const auto& record : p.history) history.push_back(to_json(record));
  json resumed = json::array();
  for (const auto& r : p.resumed)
    resumed.push_back({{"from", r.from}, {"epoch", r.epoch}, {"step_in_epoch", r.step_in_epoch}});
  return {{key::kHistory, history},
          {key::kBestMetrics, metrics_or_null(p.best_metrics, symbols)},
          {key::kFinalMetrics, metrics_or_null(p.final_metrics, symbols)},
          {key::kBaselineMetrics, metrics_or_null(p.baseline_metrics, symbols)},
          {key::kBestValue, p.best_value ? json(*p.best_value) : json(nullptr)},
          {key::kTrainSeconds, p.train_seconds},
          {key::kTrainedImages, p.trained_images},
          {key::kEpochCheckpoints, p.epoch_checkpoints},
          {key::kUnfinished, to_json(p.unfinished)},
          {key::kResumed, resumed},
          {key::kTuning, p.tuning}};
}

StageProgress stage_progress_from_json(const json& s, const std::vector<std::string>& symbols,
                                       std::int64_t epochs_done, std::int64_t global_step,
                                       std::int64_t best_epoch) {
  StageProgress p;
  p.epochs_done = epochs_done;
  p.global_step = global_step;
  p.best_epoch = best_epoch;
  for (const auto& line : s.at(key::kHistory)) p.history.push_back(epoch_record_from_json(line));
  p.best_metrics = optional_metrics(s.at(key::kBestMetrics), symbols);
  p.final_metrics = optional_metrics(s.at(key::kFinalMetrics), symbols);
  p.baseline_metrics = optional_metrics(s.at(key::kBaselineMetrics), symbols);
  if (s.at(key::kBestValue).is_number()) p.best_value = s[key::kBestValue].get<double>();
  p.train_seconds = s.at(key::kTrainSeconds).get<double>();
  p.trained_images = s.at(key::kTrainedImages).get<std::int64_t>();
  p.epoch_checkpoints = s.at(key::kEpochCheckpoints).get<std::vector<std::string>>();
  p.unfinished = epoch_stats_from_json(s.at(key::kUnfinished));
  for (const auto& r : s.at(key::kResumed)) {
    p.resumed.push_back({r.at("from").get<std::string>(), r.at("epoch").get<std::int64_t>(),
                         r.at("step_in_epoch").get<std::int64_t>()});
  }
  p.tuning = s.at(key::kTuning);
  return p;
}

double monitored_value(const std::string& monitor, const Metrics& validation, double train_loss) {
  if (monitor == "val_mre_mm") return validation.overall.mre;
  if (monitor == "val_sd_mm") return validation.overall.sd;
  if (monitor == "train_loss") return train_loss;
  // val_sdr_<threshold>mm, the threshold as checkpoint.monitor spells it ("2", "2.5").
  const std::string prefix = "val_sdr_", suffix = "mm";
  if (monitor.size() > prefix.size() + suffix.size() && monitor.rfind(prefix, 0) == 0 &&
      monitor.compare(monitor.size() - suffix.size(), suffix.size(), suffix) == 0) {
    const std::string number =
        monitor.substr(prefix.size(), monitor.size() - prefix.size() - suffix.size());
    for (std::size_t t = 0; t < kSdrThresholdsMm.size(); ++t) {
      char spelled[16];
      std::snprintf(spelled, sizeof spelled, "%g", kSdrThresholdsMm[t]);
      if (number == spelled) return sdr_or_nan(validation.overall, t);
    }
  }
  throw std::invalid_argument("checkpoint.monitor \"" + monitor + "\" is not a measured value");
}

}  // namespace exprun
