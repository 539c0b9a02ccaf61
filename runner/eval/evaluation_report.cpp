#include "eval/evaluation_report.hpp"

#include <cmath>
#include <cstdio>

#include "util/json_number.hpp"
#include "util/timestamp.hpp"

namespace exprun {
namespace {

std::string summary_line(const std::string& name, const ErrorSummary& s) {
  char line[160];
  if (s.count == 0) {
    std::snprintf(line, sizeof line, "  %-10s %8s %8s %7s %7s %7s %7s %6d\n", name.c_str(), "-",
                  "-", "-", "-", "-", "-", 0);
  } else {
    std::snprintf(line, sizeof line, "  %-10s %8.3f %8.3f %6.1f%% %6.1f%% %6.1f%% %6.1f%% %6zu\n",
                  name.c_str(), s.mre, s.sd, s.sdr[0], s.sdr[1], s.sdr[2], s.sdr[3], s.count);
  }
  return line;
}

}  // namespace

nlohmann::json evaluation_report(const EvaluationContext& c, const Evaluation& e) {
  std::vector<std::string> symbols;
  nlohmann::json landmarks = nlohmann::json::array();
  for (const auto& l : c.landmarks) {
    symbols.push_back(l.symbol);
    landmarks.push_back({{"symbol", l.symbol}, {"title", l.title}});
  }
  nlohmann::json per_image = nlohmann::json::array();
  auto predicted = e.predicted.contiguous();
  auto p = predicted.accessor<double, 3>();
  for (std::size_t i = 0; i < e.meta.size(); ++i) {
    const auto& m = e.meta[i];
    nlohmann::json errors = nlohmann::json::object(), points = nlohmann::json::object();
    double sum = 0;
    std::size_t count = 0;
    bool failed = false;  // a prediction that was not a point: the image's MRE is undefined
    for (std::size_t j = 0; j < symbols.size(); ++j) {
      const double error = e.errors_mm[i][j];
      errors[symbols[j]] = number_or_null(error);
      const auto ij = static_cast<std::int64_t>(j), ii = static_cast<std::int64_t>(i);
      points[symbols[j]] = {p[ii][ij][0], p[ii][ij][1]};
      failed = failed || std::isinf(error);
      if (std::isfinite(error)) {
        sum += error;
        ++count;
      }
    }
    per_image.push_back(
        {{"id", m.id},
         {"group", m.group},
         {"mm_per_pixel", m.mm_per_pixel},
         {"width", m.original_width},
         {"height", m.original_height},
         {"mre", count && !failed ? nlohmann::json(sum / count) : nlohmann::json(nullptr)},
         {"errors_mm", errors},
         {"predicted", points}});
  }
  nlohmann::json metrics = to_json(e.metrics, symbols);
  return {{"kind", "evaluation"},
          {"exprun_version", EXPRUN_VERSION},
          {"created", utc_timestamp()},
          {"experiment", c.experiment},
          {"source_file", c.source_file},
          {"overrides", c.overrides},
          {"stage", c.stage},
          {"split", c.split},
          {"decode", c.decode},
          {"device", c.device},
          {"checkpoint",
           {{"path", std::filesystem::absolute(c.checkpoint.path).lexically_normal().string()},
            {"epoch", c.checkpoint.epoch},
            {"best_epoch", c.checkpoint.best_epoch},
            {"best_mre", c.checkpoint.best_metric}}},
          {"images", e.meta.size()},
          {"landmarks", landmarks},
          {metrics_json::kOverall, metrics[metrics_json::kOverall]},
          {metrics_json::kPerLandmark, metrics[metrics_json::kPerLandmark]},
          {metrics_json::kPerGroup, metrics[metrics_json::kPerGroup]},
          {"per_image", per_image}};
}

std::string evaluation_table(const Metrics& metrics, const std::vector<std::string>& symbols) {
  std::string out = "  " + std::string(10, ' ') +
                    "      MRE       SD  SDR2.0  SDR2.5  SDR3.0  SDR4.0  count  (mm, %)\n";
  out += summary_line("overall", metrics.overall);
  for (const auto& [group, summary] : metrics.per_group)
    if (metrics.per_group.size() > 1 || !group.empty())
      out += summary_line(group.empty() ? "(none)" : group, summary);
  for (std::size_t j = 0; j < metrics.per_landmark.size(); ++j)
    out +=
        summary_line(j < symbols.size() ? symbols[j] : std::to_string(j), metrics.per_landmark[j]);
  return out;
}

std::filesystem::path default_evaluation_path(const std::filesystem::path& checkpoint,
                                              const std::string& split) {
  std::filesystem::path dir = std::filesystem::absolute(checkpoint).parent_path();
  if (dir.filename() == "checkpoints") dir = dir.parent_path();
  return dir / ("eval-" + split + ".json");
}

}  // namespace exprun
