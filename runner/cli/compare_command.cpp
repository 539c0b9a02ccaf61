#include <charconv>
#include <iostream>

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "compare/comparison.hpp"
#include "compare/comparison_format.hpp"
#include "compare/run_loader.hpp"
#include "compare/terminal_width.hpp"
#include "sweep/shared_sweep.hpp"
#include "util/json_file.hpp"

namespace exprun::cli {
namespace {

bool all_digits(const std::string& text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
}

// --baseline N picks the N-th run (1-based, after sweeps are expanded); --baseline PATH picks
// that run, added in front when it is not among the compared ones.
std::size_t resolve_baseline(const std::string& baseline, std::vector<LoadedRun>& runs) {
  if (baseline.empty()) return 0;
  std::error_code ec;
  // "-1" is a run number out of range too, not a path that does not exist.
  const bool numeric = all_digits(baseline) || (baseline.size() > 1 && baseline[0] == '-' &&
                                                all_digits(baseline.substr(1)));
  if (numeric && !std::filesystem::exists(baseline, ec)) {
    // A number too large for any integer type is as out of range as one past the last run.
    std::size_t n = 0;
    const auto [end, error] =
        std::from_chars(baseline.data(), baseline.data() + baseline.size(), n);
    if (error != std::errc() || end != baseline.data() + baseline.size() || n < 1 ||
        n > runs.size()) {
      throw po::error("--baseline " + baseline + ": expected a run number from 1 to " +
                      std::to_string(runs.size()) + ", or a report/run directory");
    }
    return n - 1;
  }
  LoadedRun base = load_single_run(baseline);
  for (std::size_t i = 0; i < runs.size(); ++i)
    if (same_report(runs[i], base)) return i;
  runs.insert(runs.begin(), std::move(base));
  return 0;
}

}  // namespace

int compare_command(const std::vector<std::string>& args) {
  CommonOptions common;
  std::vector<std::string> inputs;
  std::string baseline;
  std::string stage;
  std::string format = "table";
  bool all = false;
  bool landmarks = false;
  po::options_description options(
      "exprun compare REPORT|RUN_DIR|SWEEP_DIR ... [options]\n\nCompares runs: the config keys "
      "that differ between them, and each run's best validation MRE, SD and SDR@2/2.5/3/4 mm "
      "with deltas against the baseline run, the best run marked. A run directory means its "
      "report.json; a sweep directory means every trial in its sweep.json.\n\nOptions");
  options.add_options()("help,h", po::bool_switch(&common.help), "show this help")(
      "input", po::value(&inputs)->composing(), "report.json, run directory or sweep directory")(
      "baseline", po::value(&baseline),
      "run the deltas are against: its number in the list (1 = first, the default) or a "
      "report/run directory (added in front if not listed)")(
      "stage", po::value(&stage), "compare this stage (default: each run's last stage)")(
      "all", po::bool_switch(&all), "show every config key, not only those that differ")(
      "landmarks", po::bool_switch(&landmarks), "also show per-landmark MRE side by side")(
      "format", po::value(&format), "table (default), markdown, csv or json");
  po::positional_options_description positional;
  positional.add("input", -1);
  return guarded([&] {
    if (parse_or_show_help(args, options, positional, common)) return int{kOk};
    if (inputs.empty())
      throw po::error("compare needs at least one report, run or sweep directory");
    if (format != "table" && format != "markdown" && format != "csv" && format != "json")
      throw po::error("--format: expected table, markdown, csv or json, found '" + format + "'");
    std::vector<LoadedRun> runs;
    for (const auto& input : inputs) {
      // A trial of a shared sweep killed between writing its status file and rebuilding
      // sweep.json leaves it a trial behind. Best effort: results may be read-only.
      if (is_shared_sweep(input)) {
        try {
          rebuild_shared_sweep(input);
        } catch (const std::exception& e) {
          std::cerr << "exprun: warning: " << input
                    << "/sweep.json not brought up to date: " << e.what() << "\n";
        }
      }
      for (auto& run : load_runs(input)) runs.push_back(std::move(run));
    }
    CompareOptions compare;
    compare.baseline = resolve_baseline(baseline, runs);
    if (!stage.empty()) compare.stage = stage;
    compare.all_keys = all;
    compare.landmarks = landmarks;
    const Comparison comparison = compare_runs(std::move(runs), compare);
    if (format == "table") std::cout << comparison_table(comparison, output_width());
    if (format == "markdown") std::cout << comparison_markdown(comparison);
    if (format == "csv") std::cout << comparison_csv(comparison);
    if (format == "json") std::cout << json_file_text(comparison_json(comparison));
    return int{kOk};
  });
}

}  // namespace exprun::cli
