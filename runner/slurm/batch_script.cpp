#include "slurm/batch_script.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <string_view>

#include "slurm/slurm_time.hpp"
#include "util/text.hpp"

namespace exprun::slurm {
namespace fs = std::filesystem;
namespace {

// An sbatch option the script sets itself: given again after `--`, it would silently undo
// what the sweep relies on (one task per trial, the logs, the time check).
struct ReservedOption {
  std::string_view name;  // long, without "--"
  char letter;            // short form, or 0
  std::string_view instead;
};

constexpr ReservedOption kReserved[] = {
    {"array", 'a',
     "the script runs one array task per trial; --parallel K limits how many run "
     "at once"},
    {"output", 'o',
     "the script logs to DIR/slurm/ and appends, so that a requeued task keeps "
     "its earlier log"},
    {"error", 'e',
     "the script logs to DIR/slurm/ and appends, so that a requeued task keeps "
     "its earlier log"},
    {"open-mode", 0,
     "the script appends to its logs, so that a requeued task keeps its earlier "
     "log"},
    {"ntasks", 'n', "use --ranks N"},
    {"time", 't', "use --time T, which exprun checks against the signal lead time"},
    {"signal", 0, "use --signal-lead SECONDS"},
    {"requeue", 0, "the script sets --requeue"},
    {"no-requeue", 0, "the script sets --requeue"},
    {"parsable", 0, "exprun passes it to sbatch itself"},
    {"wrap", 0, "the script is the job's command"},
};

const ReservedOption* reserved_option(const std::string& word) {
  if (word.rfind("--", 0) == 0) {
    const std::string name = word.substr(2, word.find('=') - 2);
    // sbatch, like getopt_long, takes any unambiguous abbreviation (--arr for --array).
    for (const auto& r : kReserved)
      if (!name.empty() && r.name.substr(0, name.size()) == name) return &r;
    return nullptr;
  }
  if (word.size() >= 2 && word[0] == '-') {
    for (const auto& r : kReserved)
      if (r.letter != 0 && word[1] == r.letter) return &r;
  }
  return nullptr;
}

// A literal % in a file name that sbatch expands (%a, %j): written %%.
std::string escape_file_pattern(const std::string& path) {
  std::string out;
  for (const char ch : path) {
    out += ch;
    if (ch == '%') out += '%';
  }
  return out;
}

}  // namespace

std::int64_t shortest_time_limit_seconds(std::int64_t signal_lead_seconds) {
  return signal_lead_seconds + kSignalEarlySeconds + kStartupAllowanceSeconds;
}

void check_time_limit(const std::string& time, std::int64_t signal_lead_seconds) {
  const std::optional<std::int64_t> requested = parse_slurm_time(time);
  if (!requested) return;
  const std::int64_t limit = slurm_limit_seconds(*requested);
  const std::int64_t shortest = shortest_time_limit_seconds(signal_lead_seconds);
  if (limit >= shortest) return;
  throw std::invalid_argument(
      "--time " + time + ": a limit of " + std::to_string(limit / 60) +
      " min is too short: Slurm sends the early-warning signal " +
      std::to_string(signal_lead_seconds) + " s before the limit (--signal-lead), up to " +
      std::to_string(kSignalEarlySeconds) + " s earlier than that, and a task needs about " +
      std::to_string(kStartupAllowanceSeconds) +
      " s to start before it can save anything; give at least --time " +
      format_slurm_time(shortest) + " (or a shorter --signal-lead)");
}

std::string array_spec(std::size_t trial_count, std::optional<std::size_t> parallel) {
  std::string spec = "0-" + std::to_string(trial_count == 0 ? 0 : trial_count - 1);
  if (parallel) {
    spec += '%';
    spec += std::to_string(*parallel);
  }
  return spec;
}

fs::path slurm_dir(const fs::path& dir) { return dir / "slurm"; }

std::string log_file_pattern(const fs::path& dir, bool sweep) {
  return escape_file_pattern(slurm_dir(dir).string()) + (sweep ? "/trial-%a.log" : "/run.log");
}

std::string sbatch_quote(const std::string& word) {
  const auto plain = [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) ||
           std::string_view("._-+=:/,@%").find(ch) != std::string_view::npos;
  };
  if (!word.empty() && std::all_of(word.begin(), word.end(), plain)) return word;
  std::string out = "\"";
  for (const char ch : word) {
    // Older sbatch ends the line at a # even inside quotes; the backslash works in every one.
    if (ch == '\\' || ch == '"' || ch == '#') out += '\\';
    out += ch;
  }
  return out + "\"";
}

void check_slurm_path(const fs::path& dir) {
  const std::string text = dir.string();
  if (text.find_first_of("\n\r") != std::string::npos) {
    throw std::invalid_argument(
        "the directory " + shell_quote(text) +
        " holds a line break: it cannot be named in the batch script's #SBATCH lines; choose "
        "another --sweep-dir or --output");
  }
  if (text.find('\\') != std::string::npos) {
    throw std::invalid_argument(
        "the directory " + shell_quote(text) +
        " holds a backslash, which turns off sbatch's file name patterns (%a, one log per "
        "trial); choose another --sweep-dir or --output");
  }
}

std::vector<std::string> sbatch_option_lines(const std::vector<std::string>& words) {
  std::vector<std::vector<std::string>> options;
  for (const auto& word : words) {
    // An #SBATCH line ends at the line break; the rest would be a line of shell code.
    const auto control = std::find_if(word.begin(), word.end(), [](char ch) {
      return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f;
    });
    if (control != word.end()) {
      throw std::invalid_argument("sbatch option " + shell_quote(word) +
                                  " after --: holds a line break or another control character, "
                                  "which cannot be written in an #SBATCH line");
    }
    if (word == "--") {
      throw std::invalid_argument(
          "sbatch options after --: a second '--'; expected options "
          "such as --partition=gpu or -p gpu");
    }
    const bool option = word.size() >= 2 && word[0] == '-';
    if (!option) {
      if (options.empty()) {
        throw std::invalid_argument("sbatch option '" + word +
                                    "' after --: expected options such as --partition=gpu or "
                                    "-p gpu (the script is exprun's)");
      }
      options.back().push_back(word);
      continue;
    }
    if (const ReservedOption* r = reserved_option(word)) {
      throw std::invalid_argument("sbatch option '" + word + "' after --: --" +
                                  std::string(r->name) + " is set by exprun slurm submit; " +
                                  std::string(r->instead));
    }
    options.push_back({word});
  }
  std::vector<std::string> lines;
  for (const auto& option : options) {
    std::vector<std::string> quoted;
    for (const auto& word : option) quoted.push_back(sbatch_quote(word));
    lines.push_back(join(quoted, " "));
  }
  return lines;
}

std::string batch_script_text(const BatchScriptOptions& o) {
  const bool sweep = o.trial_count.has_value();
  std::string s = "#!/bin/bash\n";
  s += "# Written by exprun slurm submit: " +
       (sweep ? std::to_string(*o.trial_count) + " trial(s) of " + o.experiment +
                    ", one array task each, into the sweep directory"
              : "one run of " + o.experiment + " into the run directory") +
       "\n#   " + o.dir.string() + "\n";
  s += "# The tasks resume what an earlier attempt left (--resume=auto), so a requeued or\n"
       "# resubmitted job continues where it stopped. docs/distributed.md explains each line.\n";
  auto sbatch = [&](const std::string& option) { s += "#SBATCH " + sbatch_quote(option) + "\n"; };
  sbatch("--job-name=exprun-" + o.experiment);
  if (sweep) sbatch("--array=" + array_spec(*o.trial_count, o.parallel));
  sbatch("--ntasks=" + std::to_string(o.ranks));
  if (!o.time.empty()) sbatch("--time=" + o.time);
  sbatch("--requeue");
  sbatch("--open-mode=append");
  const std::string log = log_file_pattern(o.dir, sweep);
  sbatch("--output=" + log);
  sbatch("--error=" + log);
  // Without B: the signal goes to the srun tasks (exprun), not to this shell.
  sbatch("--signal=USR1@" + std::to_string(o.signal_lead_seconds));
  for (const auto& line : o.sbatch_lines) s += "#SBATCH " + line + "\n";
  s += "\n";
  // The log is appended to by every attempt: a line says which one follows.
  s += std::string("echo \"exprun slurm: job ${SLURM_JOB_ID:-?}") +
       (sweep ? " array task ${SLURM_ARRAY_TASK_ID:-?}" : "") +
       ", restart ${SLURM_RESTART_COUNT:-0}, on $(hostname) at $(date -u +%Y-%m-%dT%H:%M:%SZ)\"\n";
  s += "cd " + shell_quote(o.working_dir.string()) + " || exit 1\n";
  std::vector<std::string> words = {"srun", "--kill-on-bad-exit=1", o.exprun.string(), "run",
                                    o.file.string()};
  // Every word is added alone: the task number is the one the shell must expand.
  std::string command = "exec";
  auto add = [&](const std::string& word) {
    command += ' ';
    command += word;
  };
  for (const auto& w : words) add(shell_quote(w));
  if (sweep) {
    add("--trial");
    add("\"$SLURM_ARRAY_TASK_ID\"");
    add("--sweep-dir");
  } else {
    add("--run-dir");
  }
  add(shell_quote(o.dir.string()));
  add("--resume=auto");
  for (const auto& w : o.run_options) add(shell_quote(w));
  s += command;
  s += '\n';
  return s;
}

}  // namespace exprun::slurm
