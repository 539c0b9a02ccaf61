// Radial-error metrics as cephalometric papers report them: MRE with SD and the success
// detection rate (SDR) at 2, 2.5, 3 and 4 mm, overall, per landmark and per group.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace exprun {

inline const std::vector<double> kSdrThresholdsMm = {2.0, 2.5, 3.0, 4.0};

// The JSON names of a Metrics' parts, in reports, checkpoints and metrics.jsonl alike.
namespace metrics_json {
inline constexpr const char* kOverall = "overall";
inline constexpr const char* kPerLandmark = "per_landmark";
inline constexpr const char* kPerGroup = "per_group";
inline constexpr const char* kMre = "mre";
inline constexpr const char* kSd = "sd";
inline constexpr const char* kSdr = "sdr";
inline constexpr const char* kCount = "count";
}  // namespace metrics_json

struct ErrorSummary {
  double mre = 0;           // mean radial error, mm
  double sd = 0;            // population standard deviation of the radial errors, mm
  std::vector<double> sdr;  // percent of errors <= each threshold in kSdrThresholdsMm
  std::size_t count = 0;    // errors summarised (missing landmarks excluded)
};

struct Metrics {
  ErrorSummary overall;
  std::vector<ErrorSummary> per_landmark;
  std::map<std::string, ErrorSummary> per_group;
};

// errors_mm: one row per image, one column per landmark; NaN marks a missing landmark.
// groups: one per row ("" when the dataset has none).
ErrorSummary summarise(const std::vector<double>& errors_mm);
Metrics compute_metrics(const std::vector<std::vector<double>>& errors_mm,
                        const std::vector<std::string>& groups);

// The SDR at kSdrThresholdsMm[threshold], NaN when nothing was summarised (JSON null).
double sdr_or_nan(const ErrorSummary& summary, std::size_t threshold);
// "2.0", "2.5", ...: the key of kSdrThresholdsMm[threshold] in a JSON "sdr" object.
std::string sdr_key(std::size_t threshold);
// {"2.0":..,"2.5":..,"3.0":..,"4.0":..}, null where the SDR is NaN.
nlohmann::json sdr_json(const std::vector<double>& sdr_or_nan);

// {"mre":..,"sd":..,"sdr":{"2.0":..,"2.5":..,"3.0":..,"4.0":..},"count":..}
nlohmann::json to_json(const ErrorSummary& summary);
// overall, per_landmark keyed by symbol, per_group keyed by group name.
nlohmann::json to_json(const Metrics& metrics, const std::vector<std::string>& symbols);
// The inverses: nulls come back as NaN, per_landmark in the order of `symbols`. Throw
// nlohmann::json::exception when a field is missing or of another type.
ErrorSummary error_summary_from_json(const nlohmann::json& j);
Metrics metrics_from_json(const nlohmann::json& j, const std::vector<std::string>& symbols);

}  // namespace exprun
