#include "eval/metrics.hpp"

#include <cmath>
#include <cstdio>

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

nlohmann::json to_json(const ErrorSummary& summary) {
  // JSON has no NaN: an empty summary reports null.
  auto number = [](double v) {
    return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v);
  };
  nlohmann::json sdr = nlohmann::json::object();
  for (std::size_t t = 0; t < kSdrThresholdsMm.size(); ++t) {
    char key[16];
    std::snprintf(key, sizeof key, "%.1f", kSdrThresholdsMm[t]);
    sdr[key] = summary.count ? nlohmann::json(summary.sdr[t]) : nlohmann::json(nullptr);
  }
  return {{"mre", number(summary.mre)},
          {"sd", number(summary.sd)},
          {"sdr", sdr},
          {"count", summary.count}};
}

nlohmann::json to_json(const Metrics& metrics, const std::vector<std::string>& symbols) {
  nlohmann::json per_landmark = nlohmann::json::object();
  for (std::size_t j = 0; j < metrics.per_landmark.size(); ++j) {
    const std::string key = j < symbols.size() ? symbols[j] : std::to_string(j);
    per_landmark[key] = to_json(metrics.per_landmark[j]);
  }
  nlohmann::json per_group = nlohmann::json::object();
  for (const auto& [group, summary] : metrics.per_group) per_group[group] = to_json(summary);
  return {{"overall", to_json(metrics.overall)},
          {"per_landmark", per_landmark},
          {"per_group", per_group}};
}

}  // namespace exprun
