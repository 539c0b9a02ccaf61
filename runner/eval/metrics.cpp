#include "eval/metrics.hpp"

#include <cmath>
#include <cstdio>

#include "util/json_number.hpp"

namespace exprun {

ErrorSummary summarise(const std::vector<double>& errors_mm) {
  ErrorSummary out;
  out.sdr.assign(kSdrThresholdsMm.size(), 0.0);
  double sum = 0;
  std::vector<std::size_t> hits(kSdrThresholdsMm.size(), 0);
  for (double e : errors_mm) {
    if (std::isnan(e)) continue;
    ++out.count;
    sum += e;
    for (std::size_t t = 0; t < kSdrThresholdsMm.size(); ++t)
      if (e <= kSdrThresholdsMm[t]) ++hits[t];
  }
  if (out.count == 0) {
    out.mre = out.sd = std::nan("");
    return out;
  }
  out.mre = sum / static_cast<double>(out.count);
  double squares = 0;
  for (double e : errors_mm)
    if (!std::isnan(e)) squares += (e - out.mre) * (e - out.mre);
  out.sd = std::sqrt(squares / static_cast<double>(out.count));
  for (std::size_t t = 0; t < hits.size(); ++t)
    out.sdr[t] = 100.0 * static_cast<double>(hits[t]) / static_cast<double>(out.count);
  return out;
}

Metrics compute_metrics(const std::vector<std::vector<double>>& errors_mm,
                        const std::vector<std::string>& groups) {
  Metrics out;
  std::vector<double> all;
  std::size_t k = errors_mm.empty() ? 0 : errors_mm.front().size();
  std::vector<std::vector<double>> by_landmark(k);
  std::map<std::string, std::vector<double>> by_group;
  for (std::size_t i = 0; i < errors_mm.size(); ++i) {
    for (std::size_t j = 0; j < k; ++j) {
      const double e = errors_mm[i][j];
      all.push_back(e);
      by_landmark[j].push_back(e);
      if (i < groups.size() && !groups[i].empty()) by_group[groups[i]].push_back(e);
    }
  }
  out.overall = summarise(all);
  for (const auto& errors : by_landmark) out.per_landmark.push_back(summarise(errors));
  for (const auto& [group, errors] : by_group) out.per_group[group] = summarise(errors);
  return out;
}

namespace {

double number_or_nan(const nlohmann::json& j) {
  return j.is_null() ? std::nan("") : j.get<double>();
}

}  // namespace

double sdr_or_nan(const ErrorSummary& summary, std::size_t threshold) {
  return summary.count ? summary.sdr.at(threshold) : std::nan("");
}

std::string sdr_key(std::size_t threshold) {
  char key[16];
  std::snprintf(key, sizeof key, "%.1f", kSdrThresholdsMm.at(threshold));
  return key;
}

nlohmann::json sdr_json(const std::vector<double>& sdr) {
  nlohmann::json out = nlohmann::json::object();
  for (std::size_t t = 0; t < kSdrThresholdsMm.size(); ++t)
    out[sdr_key(t)] = number_or_null(t < sdr.size() ? sdr[t] : std::nan(""));
  return out;
}

nlohmann::json to_json(const ErrorSummary& summary) {
  using namespace metrics_json;
  std::vector<double> sdr;
  for (std::size_t t = 0; t < kSdrThresholdsMm.size(); ++t) sdr.push_back(sdr_or_nan(summary, t));
  return {{kMre, number_or_null(summary.mre)},
          {kSd, number_or_null(summary.sd)},
          {kSdr, sdr_json(sdr)},
          {kCount, summary.count}};
}

ErrorSummary error_summary_from_json(const nlohmann::json& j) {
  using namespace metrics_json;
  ErrorSummary out;
  out.mre = number_or_nan(j.at(kMre));
  out.sd = number_or_nan(j.at(kSd));
  out.count = j.at(kCount).get<std::size_t>();
  // summarise() leaves 0s where there was nothing to count; to_json writes those as null.
  for (std::size_t t = 0; t < kSdrThresholdsMm.size(); ++t) {
    const double v = number_or_nan(j.at(kSdr).at(sdr_key(t)));
    out.sdr.push_back(out.count ? v : 0.0);
  }
  return out;
}

Metrics metrics_from_json(const nlohmann::json& j, const std::vector<std::string>& symbols) {
  using namespace metrics_json;
  Metrics out;
  out.overall = error_summary_from_json(j.at(kOverall));
  const nlohmann::json& per_landmark = j.at(kPerLandmark);
  for (std::size_t k = 0; k < per_landmark.size(); ++k) {
    const std::string key = k < symbols.size() ? symbols[k] : std::to_string(k);
    out.per_landmark.push_back(error_summary_from_json(per_landmark.at(key)));
  }
  for (const auto& [group, summary] : j.at(kPerGroup).items())
    out.per_group[group] = error_summary_from_json(summary);
  return out;
}

nlohmann::json to_json(const Metrics& metrics, const std::vector<std::string>& symbols) {
  nlohmann::json per_landmark = nlohmann::json::object();
  for (std::size_t j = 0; j < metrics.per_landmark.size(); ++j) {
    const std::string key = j < symbols.size() ? symbols[j] : std::to_string(j);
    per_landmark[key] = to_json(metrics.per_landmark[j]);
  }
  nlohmann::json per_group = nlohmann::json::object();
  for (const auto& [group, summary] : metrics.per_group) per_group[group] = to_json(summary);
  return {{metrics_json::kOverall, to_json(metrics.overall)},
          {metrics_json::kPerLandmark, per_landmark},
          {metrics_json::kPerGroup, per_group}};
}

}  // namespace exprun
