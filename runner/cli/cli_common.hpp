// What every exprun subcommand shares: the --plugins option, loading the registry, and
// turning errors into one clear line and an exit code.
#pragma once

#include <boost/program_options.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "config/experiment.hpp"
#include "plugins/registry.hpp"

namespace exprun::cli {

namespace po = boost::program_options;

enum ExitCode { kOk = 0, kRunFailed = 1, kUsageError = 2 };

struct CommonOptions {
  std::vector<std::string> plugin_dirs;
  bool help = false;
};

void add_common_options(po::options_description& options, CommonOptions& common);

// Parses `args` (after the subcommand name); throws po::error on a bad option.
po::variables_map parse(const std::vector<std::string>& args,
                        const po::options_description& options,
                        const po::positional_options_description& positional);

// parse(), then with --help print the options and return true: the command has nothing else
// to do.
bool parse_or_show_help(const std::vector<std::string>& args,
                        const po::options_description& options,
                        const po::positional_options_description& positional,
                        const CommonOptions& common);

void load_registry(Registry& registry, const CommonOptions& common);

// The index of the stage `--stage name` names; a ConfigError with the closest names otherwise.
std::size_t stage_index_named(const Experiment& experiment, const std::string& name);

// The most --threads a command takes, the bound of the experiment file's `threads` key: far
// more makes OpenMP allocate per-thread state until the process dies out of memory.
constexpr std::int64_t kMaxThreads = 1024;

// Throws po::error unless `threads` is 0 (all cores) to kMaxThreads.
void check_thread_option(std::int64_t threads);

// "exprun run FILE --set O... WORD..." with every word shell-quoted, so that a printed command
// pastes back unchanged whatever the paths and values hold.
std::string rerun_command(const std::string& file, const std::vector<std::string>& overrides,
                          const std::vector<std::string>& more_words);

// The options every command takes (--plugins DIR, --plugins=DIR) may come before the command
// too: `exprun --plugins DIR plugins`. Returns the arguments with those leading options moved
// after the command's own, where the command parses them. Throws po::error for a --plugins
// without its directory, or global options with no command after them.
std::vector<std::string> with_global_options_after_command(const std::vector<std::string>& args);

// Checks, before work that can take minutes, that its output can be written: `file` is not a
// folder, and `folder` (the file's, or where a new file will go when `file` is empty) exists or
// can be made and takes a new file. An existing `file` is replaced only when it may be an
// earlier output of the kind: not an exprun checkpoint, not a file of a run or sweep directory
// (one that holds experiment.toml and report.json or sweep.json, or its status/ and slurm/
// folders) and named *.json, so that a slip of the finger never
// turns weights, a run's report or the experiment file into measurements. `what` names the
// output in errors ("--json x.json"). Throws po::error.
void check_output_destination(const std::string& what, const std::filesystem::path& file,
                              const std::filesystem::path& folder);

// Runs `body`, printing any error as "exprun: error: ..." and mapping it to an exit code.
int guarded(const std::function<int()>& body);

// argv[0] as an absolute path, for finding plugins beside the executable.
// --output DIR as the override it stands for, added after every --set so that it wins:
// experiment.output="DIR", quoted as a TOML string, so a directory named 2024 or true is a path.
// `run` and `slurm submit` share it: a sweep directory's experiment.toml records the overrides,
// and a trial refuses a directory whose record differs.
std::string output_override(const std::string& dir);

// After a run or sweep stopped by `signal` with its position saved: for SIGUSR1, Slurm's early
// warning, requeues the Slurm job this process runs in and says so on stderr.
void requeue_if_warned(int signal);

void set_executable_path(const std::filesystem::path& path);
std::filesystem::path executable_path();

}  // namespace exprun::cli
