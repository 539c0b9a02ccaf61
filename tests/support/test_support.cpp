#include "test_support.hpp"
#include "plugins/registry.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace exprun::test {
namespace fs = std::filesystem;

TempDir::TempDir(const std::string& prefix) {
  static std::atomic<unsigned> counter{0};
  std::random_device device;
  const fs::path base = fs::temp_directory_path();
  for (int attempt = 0; attempt < 100; ++attempt) {
    const fs::path candidate = base / (prefix + "-" + std::to_string(::getpid()) + "-" +
                                       std::to_string(counter++) + "-" + std::to_string(device()));
    // create_directory returns false when the path already exists: try another name.
    if (fs::create_directory(candidate)) {
      path_ = candidate;
      return;
    }
  }
  throw std::runtime_error("TempDir: cannot create a unique directory under " + base.string());
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  // Last look before the files are gone: everything exprun wrote here must match the schema.
  try {
    const auto reports = written_reports(path_);
    if (!reports.empty()) {
      const std::string errors = report_schema_errors(reports);
      if (!errors.empty()) ADD_FAILURE() << "docs/report.schema.json rejects:\n" << errors;
    }
  } catch (const std::exception& e) {  // a destructor must not throw
    ADD_FAILURE() << "cannot check the reports in " << path_ << " against the schema: " << e.what();
  }
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

void write_text(const fs::path& path, const std::string& text) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("write_text: cannot open " + path.string());
  out << text;
  out.close();
  if (!out) throw std::runtime_error("write_text: cannot write " + path.string());
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("read_text: cannot open " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace exprun::test

// ---------------------------------------------------------------- subprocesses

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <cerrno>

#include <chrono>
#include <cstring>
#include <thread>

extern char** environ;

namespace exprun::test {

std::string ProcessResult::describe() const {
  std::ostringstream text;
  if (timed_out)
    text << "TIMED OUT and killed";
  else if (term_signal != 0)
    text << "killed by signal " << term_signal;
  else
    text << "exit " << exit_code;
  text << " after " << seconds << " s\n--- stdout ---\n" << out << "\n--- stderr ---\n" << err;
  return text.str();
}

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
  if (argv.empty()) throw std::runtime_error("run_process: empty argv");
  TempDir capture("exprun-proc");
  const std::string out_path = (capture / "stdout").string();
  const std::string err_path = (capture / "stderr").string();

  // Everything the child needs is prepared before fork(): only async-signal-safe calls after.
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry = *e;
    const auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const auto& [key, value] : options.env) {
    if (value)
      env[key] = *value;
    else
      env.erase(key);
  }
  std::vector<std::string> env_strings;
  for (const auto& [key, value] : env) env_strings.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (auto& s : args) argp.push_back(s.data());
  argp.push_back(nullptr);
  const std::string cwd = options.cwd.string();

  const int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out_fd < 0 || err_fd < 0 || null_fd < 0)
    throw std::runtime_error("run_process: cannot open capture files");

  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("run_process: fork failed");
  if (pid == 0) {
    ::dup2(null_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::execve(argp[0], argp.data(), envp.data());
    ::_exit(127);
  }
  ::close(out_fd);
  ::close(err_fd);
  ::close(null_fd);

  ProcessResult result;
  int status = 0;
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) throw std::runtime_error("run_process: waitpid failed");
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (elapsed > options.timeout_s && !result.timed_out) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
  result.out = read_text(out_path);
  result.err = read_text(err_path);
  return result;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::string line;
  std::istringstream in(text);
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

}  // namespace exprun::test

// ---------------------------------------------------------------- substring assertions

namespace exprun::test {

::testing::AssertionResult text_contains(const char* text_expr, const char* needle_expr,
                                         const std::string& text, const std::string& needle) {
  if (text.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << text_expr << " does not contain " << needle_expr << "\n  looked for: " << needle
         << "\n  in text:    " << text;
}

::testing::AssertionResult text_lacks(const char* text_expr, const char* needle_expr,
                                      const std::string& text, const std::string& needle) {
  if (text.find(needle) == std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << text_expr << " contains " << needle_expr << " but should not\n  found: " << needle
         << "\n  in text: " << text;
}

}  // namespace exprun::test

// ---------------------------------------------------------------- a tiny real experiment

namespace exprun::test {

std::string toml_quote(const std::string& text) {
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}

std::string TinyExperiment::toml() const {
  std::ostringstream t;
  t << "# A tiny experiment written by an exprun test.\n"
    << "[experiment]\n"
    << "name = " << toml_quote(name) << "\n"
    << "seed = 3\n"
    << "threads = " << threads << "\n";
  if (!output.empty()) t << "output = " << toml_quote(output.string()) << "\n";
  t << "description = \"exprun test: tiny synthetic run\"\n"
    << "\n"
    << "[defaults]\n"
    << "device = \"cpu\"\n"
    << "\n"
    << "[defaults.data]\n"
    << "plugin = \"synthetic_ceph\"\n"
    << "image_size = [64, 80]\n"
    << "sigma = 1.5\n"
    << "workers = 1\n"
    << "train_count = 16\n"
    << "valid_count = 8\n"
    << "\n"
    << "[defaults.model]\n"
    << "plugin = \"hrnet\"\n"
    << "width = 4\n"
    << "num_modules = [1, 1, 1]\n"
    << "num_blocks = 1\n"
    << "stem_blocks = 1\n"
    << "\n"
    << "[defaults.loss]\n"
    << "plugin = " << toml_quote(loss) << "\n"
    << "\n"
    << "[defaults.memory]\n"
    << "effective_batch = " << effective_batch << "\n"
    << "micro_batch = "
    << (micro_batch_auto ? std::string("\"auto\"") : std::to_string(micro_batch)) << "\n"
    << "strategies = [";
  for (std::size_t i = 0; i < strategies.size(); ++i)
    t << (i ? ", " : "") << toml_quote(strategies[i]);
  t << "]\n";
  if (!memory_extra.empty()) t << memory_extra << (memory_extra.back() == '\n' ? "" : "\n");
  t << "\n"
    << "[defaults.optimizer]\n"
    << "name = \"adam\"\n"
    << "lr = 2e-3\n"
    << "\n"
    << "[[stage]]\n"
    << "name = \"train\"\n"
    << "epochs = " << epochs << "\n";
  if (!stage_extra.empty()) t << stage_extra << (stage_extra.back() == '\n' ? "" : "\n");
  return t.str();
}

std::size_t line_of(const std::string& text, const std::string& needle) {
  const auto lines = split_lines(text);
  for (std::size_t i = 0; i < lines.size(); ++i)
    if (lines[i].find(needle) != std::string::npos) return i + 1;
  return 0;
}

ProcessResult run_exprun(std::vector<std::string> args, ProcessOptions options) {
  std::vector<std::string> argv{EXPRUN_EXE};
  argv.insert(argv.end(), std::make_move_iterator(args.begin()),
              std::make_move_iterator(args.end()));
  if (!options.env.count("EXPRUN_PLUGIN_PATH")) options.env["EXPRUN_PLUGIN_PATH"] = std::nullopt;
  return run_process(argv, options);
}

void expect_no_crash(const ProcessResult& r) {
  EXPECT_EQ(r.term_signal, 0) << r.describe();
  EXPECT_FALSE(r.timed_out) << r.describe();
  for (const char* bad : {"terminate called", "Aborted", "core dumped", "Segmentation fault",
                          "Exception raised from", "frame #", "what():"}) {
    EXPECT_NOT_CONTAINS(r.err, bad);
    EXPECT_NOT_CONTAINS(r.out, bad);
  }
}

}  // namespace exprun::test

namespace exprun::test {

const Registry& built_plugins() {
  // Never destroyed: plugin code must stay loaded until the last object it made is gone.
  static const Registry* registry = [] {
    auto* r = new Registry();
    r->load_directories({std::filesystem::path(EXPRUN_PLUGIN_DIR)}, 1);
    return r;
  }();
  return *registry;
}

}  // namespace exprun::test

// ---------------------------------------------------------------- report schema

namespace exprun::test {

namespace {

// argv: schema, then the files. Exit 0: all valid; 1: messages on stdout; 3: no jsonschema.
constexpr const char* kValidateScript = R"py(import json, sys
try:
    import jsonschema
except ImportError:
    print("python3-jsonschema is not installed (scripts/setup.sh installs it)")
    sys.exit(3)
validator = jsonschema.Draft202012Validator(json.load(open(sys.argv[1])))
bad = 0
for name in sys.argv[2:]:
    try:
        doc = json.load(open(name))
    except Exception as e:
        print(f"{name}: not JSON: {e}")
        bad += 1
        continue
    for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        print(f"{name}: {e.json_path}: {e.message[:300]}")
        bad += 1
sys.exit(1 if bad else 0)
)py";

}  // namespace

std::string report_schema_errors(const std::vector<fs::path>& files) {
  std::vector<std::string> argv = {"/usr/bin/env", "python3", "-c", kValidateScript,
                                   std::string(EXPRUN_SOURCE_DIR) + "/docs/report.schema.json"};
  for (const auto& f : files) argv.push_back(f.string());
  const ProcessResult r = run_process(argv);
  if (r.exit_code == 0) return "";
  return r.out.empty() ? r.describe() : r.out;
}

void expect_report_matches_schema(const fs::path& file) {
  const std::string errors = report_schema_errors({file});
  EXPECT_TRUE(errors.empty()) << "docs/report.schema.json rejects " << file << ":\n" << errors;
}

std::vector<fs::path> written_reports(const fs::path& dir) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const auto name = it->path().filename();
    if ((name == "report.json" || name == "sweep.json") &&
        fs::exists(it->path().parent_path() / "experiment.toml"))
      found.push_back(it->path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace exprun::test
