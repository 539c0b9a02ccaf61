// Radial-error metrics as cephalometric papers report them: MRE with SD and the success
// detection rate (SDR) at 2, 2.5, 3 and 4 mm, overall, per landmark and per group.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace exprun {

inline const std::vector<double> kSdrThresholdsMm = {2.0, 2.5, 3.0, 4.0};

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

// {"mre":..,"sd":..,"sdr":{"2.0":..,"2.5":..,"3.0":..,"4.0":..},"count":..}
nlohmann::json to_json(const ErrorSummary& summary);
// overall, per_landmark keyed by symbol, per_group keyed by group name.
nlohmann::json to_json(const Metrics& metrics, const std::vector<std::string>& symbols);

}  // namespace exprun
