// Fuzz target: the report loader and what `exprun compare` does with a report (docs/fuzzing.md).
// The input is a report.json or sweep.json. A sweep's trials are looked up beside it, where one
// valid trial report (trial-000) is waiting, so sweep inputs reach the trial reading too.
#include <string>
#include <vector>

#include "compare/comparison.hpp"
#include "compare/comparison_format.hpp"
#include "compare/run_loader.hpp"
#include "fuzz_support.hpp"
#include "report/report.hpp"

namespace {

void write_trial_report() {
  const std::string report =
      R"({"kind": "run", "schema_version": )" + std::to_string(exprun::kReportSchemaVersion) +
      R"(, "experiment": "fuzz", "run_id": "trial-000", "status": "completed",
  "config": {"experiment": {"name": "fuzz"}, "stages": [{"name": "train"}]},
  "stages": [{"name": "train", "status": "completed",
              "best": {"epoch": 1, "mre_mm": 2.5, "per_landmark": {"S": {"mre_mm": 2.0}}}}]})";
  exprun::fuzz::write_scratch("run/trial-000/report.json", report);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool trial_written = (write_trial_report(), true);
  (void)trial_written;
  const auto path = exprun::fuzz::write_scratch("run/report.json", data, size);
  exprun::fuzz::expect_located_errors(
      [&] {
        std::vector<exprun::LoadedRun> runs = exprun::load_runs(path);
        // Compared with itself, each way compare can be asked to.
        std::vector<exprun::LoadedRun> twice = runs;
        twice.insert(twice.end(), runs.begin(), runs.end());
        for (const bool detailed : {false, true}) {
          exprun::CompareOptions options;
          options.all_keys = detailed;
          options.landmarks = detailed;
          options.baseline = detailed ? twice.size() - 1 : 0;
          const exprun::Comparison comparison = exprun::compare_runs(twice, options);
          (void)exprun::comparison_table(comparison);
          (void)exprun::comparison_markdown(comparison);
          (void)exprun::comparison_csv(comparison);
          (void)exprun::comparison_json(comparison).dump(2);
        }
      },
      {path.string(), path.parent_path().string()});
  return 0;
}
