#include "cli/cli_common.hpp"

#include <torch/torch.h>

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "config/config_error.hpp"
#include "dist/launch.hpp"
#include "slurm/requeue.hpp"
#include "train/checkpoint.hpp"
#include "util/interrupt_flag.hpp"
#include "util/text.hpp"

namespace exprun::cli {
namespace {

std::filesystem::path& exe_path() {
  static std::filesystem::path path;
  return path;
}

}  // namespace

void set_executable_path(const std::filesystem::path& path) {
  std::error_code ec;
  // /proc/self/exe survives being started through PATH or a relative name.
  auto resolved = std::filesystem::read_symlink("/proc/self/exe", ec);
  exe_path() = ec ? std::filesystem::absolute(path) : resolved;
}

std::filesystem::path executable_path() { return exe_path(); }

void add_common_options(po::options_description& options, CommonOptions& common) {
  options.add_options()("help,h", po::bool_switch(&common.help), "show this help")(
      "plugins", po::value(&common.plugin_dirs)->composing(),
      "directory to load plugins from (repeatable; searched before EXPRUN_PLUGIN_PATH and the "
      "plugins installed beside exprun)");
}

po::variables_map parse(const std::vector<std::string>& args,
                        const po::options_description& options,
                        const po::positional_options_description& positional) {
  po::variables_map vm;
  const po::parsed_options parsed =
      po::command_line_parser(args).options(options).positional(positional).run();
  // An empty value is a mistake (an unset shell variable, say), not a request for the default:
  // `--run-dir ""` would otherwise start a new run elsewhere.
  for (const auto& option : parsed.options) {
    for (const auto& token : option.value) {
      if (token.empty())
        throw po::error("--" + option.string_key + ": empty; give a value or leave the option out");
    }
  }
  po::store(parsed, vm);
  po::notify(vm);
  return vm;
}

bool parse_or_show_help(const std::vector<std::string>& args,
                        const po::options_description& options,
                        const po::positional_options_description& positional,
                        const CommonOptions& common) {
  parse(args, options, positional);
  if (common.help) std::cout << options << "\n";
  return common.help;
}

void load_registry(Registry& registry, const CommonOptions& common) {
  registry.load_directories(Registry::search_path(common.plugin_dirs, executable_path()),
                            common.plugin_dirs.size());
}

void check_thread_option(std::int64_t threads) {
  if (threads < 0 || threads > kMaxThreads) {
    throw po::error("--threads: expected 0 (all cores) to " + std::to_string(kMaxThreads) +
                    ", found " + std::to_string(threads));
  }
}

std::string rerun_command(const std::string& file, const std::vector<std::string>& overrides,
                          const std::vector<std::string>& more_words) {
  std::string command = "exprun run " + shell_quote(file);
  for (const auto& o : overrides) command += " --set " + shell_quote(o);
  for (const auto& word : more_words) command += " " + shell_quote(word);
  return command;
}

std::vector<std::string> with_global_options_after_command(const std::vector<std::string>& args) {
  std::vector<std::string> global;
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    if (args[i].rfind("--plugins=", 0) == 0) {
      global.push_back(args[i]);
    } else if (args[i] == "--plugins") {
      if (i + 1 == args.size()) throw po::error("--plugins needs a directory: --plugins DIR");
      global.push_back(args[i]);
      global.push_back(args[++i]);
    } else {
      break;
    }
  }
  if (global.empty()) return args;
  if (i == args.size())
    throw po::error("--plugins DIR needs a command after it, e.g. exprun --plugins DIR plugins");
  std::vector<std::string> out(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
  out.insert(out.end(), global.begin(), global.end());
  return out;
}

void check_output_destination(const std::string& what, const std::filesystem::path& file,
                              const std::filesystem::path& folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!file.empty() && fs::is_directory(file, ec)) {
    throw po::error(what + ": is a folder; expected the path of the file to write");
  }
  if (!file.empty() && fs::exists(file, ec)) {
    if (fs::is_regular_file(file, ec) && is_checkpoint_file(file))
      throw po::error(what + ": is an exprun checkpoint; give another path");
    // A run's folder, a sweep's, and a sweep's status/ and slurm/ folders.
    const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
    auto run_or_sweep = [&](const fs::path& d) {
      return fs::exists(d / "experiment.toml", ec) &&
             (fs::exists(d / "report.json", ec) || fs::exists(d / "sweep.json", ec));
    };
    const fs::path owner = run_or_sweep(dir)                 ? dir
                           : run_or_sweep(dir.parent_path()) ? dir.parent_path()
                                                             : fs::path();
    if (!owner.empty() &&
        (owner == dir || dir.filename() == "status" || dir.filename() == "slurm")) {
      throw po::error(what + ": is a file of the run directory " + owner.string() +
                      ", which only exprun writes; give another path");
    }
    std::string extension = file.extension().string();
    for (char& ch : extension) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (extension != ".json") {
      throw po::error(what + ": exists and is not a .json file; exprun replaces only JSON it " +
                      "may have written before (give a new path or a .json one)");
    }
  }
  if (!folder.empty() && !fs::is_directory(folder, ec)) {
    fs::create_directories(folder, ec);
    if (ec) throw po::error(what + ": cannot create " + folder.string() + ": " + ec.message());
  }
  const fs::path probe = (folder.empty() ? fs::path(".") : folder) /
                         (".exprun-output-probe-" + std::to_string(::getpid()));
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    throw po::error(what + ": cannot write in " + (folder.empty() ? "." : folder.string()) + ": " +
                    std::strerror(errno));
  }
  ::close(fd);
  fs::remove(probe, ec);
}

int guarded(const std::function<int()>& body) {
  try {
    return body();
  } catch (const po::error& e) {
    std::cerr << "exprun: error: " << e.what() << " (see --help)\n";
    return kUsageError;
  } catch (const ConfigError& e) {
    std::cerr << "exprun: error: " << e.what() << "\n";
    return kUsageError;
  } catch (const PluginLoadError& e) {
    std::cerr << "exprun: error: " << e.what() << "\n";
    return kUsageError;
  } catch (const c10::Error& e) {
    std::cerr << "exprun: error: " << e.what_without_backtrace() << "\n";
    return kRunFailed;
  } catch (const StopRequested& e) {
    // Only the commands that remove what they had begun on the way out throw it (synth, bench).
    std::cerr << "exprun: " << e.what() << " before the end; nothing was written\n";
    return 128 + e.signal();
  } catch (const std::exception& e) {
    std::cerr << "exprun: error: " << e.what() << "\n";
    return kRunFailed;
  }
}

std::size_t stage_index_named(const Experiment& experiment, const std::string& name) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < experiment.stages.size(); ++i) {
    if (experiment.stages[i].name == name) return i;
    names.push_back(experiment.stages[i].name);
  }
  throw ConfigError("--stage " + name + ": no stage is named \"" + name + "\"" +
                    did_you_mean(name, names));
}

std::string output_override(const std::string& dir) {
  std::string quoted;
  for (char ch : dir) {
    if (ch == '"' || ch == '\\') quoted += '\\';
    quoted += ch;
  }
  return "experiment.output=\"" + quoted + "\"";
}

void requeue_if_warned(int signal) {
  if (signal != SIGUSR1) return;
  RequeueOutcome outcome;
  try {
    outcome = requeue_after_warning(dist::detect_launch_from_process());
  } catch (const std::exception& e) {  // the launch was checked at start; the environment may not
    outcome.message = std::string("cannot requeue: ") + e.what();
  }
  std::cerr << "exprun: " << outcome.message << "\n";
}

}  // namespace exprun::cli
