// Resuming a run whose loss is an out-of-tree plugin (issue 17.1): tests/e2e/external_plugin is
// built against the build tree's SDK package, a run with it through --plugins is interrupted
// (EXPRUN_FAULT=INT@...), and the resume command exprun prints is run as printed by /bin/sh.
// Without --plugins, --resume=DIR finds the library from the run's plugins.json, warns when it
// changed and fails naming it when it is gone.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::ProcessResult;

const fs::path kProject = fs::path(EXPRUN_SOURCE_DIR) / "tests" / "e2e" / "external_plugin";
const std::string kLibrary = "exprun-losses-external_l1.so";

// The plugin, built once for every test of this file (each runs as its own process, maybe in
// parallel): configured and built under a lock in the build tree; incremental after the first.
fs::path built_plugin() {
  const fs::path work = fs::path(EXPRUN_BINARY_DIR) / "plugin_resume_work";
  fs::create_directories(work);
  const int lock = ::open((work / "build.lock").c_str(), O_CREAT | O_RDWR, 0644);
  if (lock < 0 || ::flock(lock, LOCK_EX) != 0)
    throw std::runtime_error("cannot lock " + work.string());
  test::ProcessOptions slow;
  slow.timeout_s = 900;
  const ProcessResult configure = test::run_process(
      {"/usr/bin/cmake", "-S", kProject.string(), "-B", (work / "build").string(), "-G", "Ninja",
       "-DCMAKE_BUILD_TYPE=Release", std::string("-Dexprun_sdk_DIR=") + EXPRUN_BINARY_DIR},
      slow);
  const ProcessResult build =
      configure.exit_code == 0
          ? test::run_process({"/usr/bin/cmake", "--build", (work / "build").string()}, slow)
          : configure;
  ::close(lock);
  if (build.exit_code != 0) throw std::runtime_error("building the plugin: " + build.describe());
  return work / "build" / "plugins" / kLibrary;
}

class PluginResumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A folder name that only works on a command line when quoted.
    plugins_ = dir_ / "my plugin's $dir";
    fs::create_directories(plugins_);
    fs::copy_file(built_plugin(), plugins_ / kLibrary);
    output_ = dir_ / "results";
  }

  std::vector<std::string> run_args() const {
    return {"run",       (kProject / "experiment.toml").string(),
            "--plugins", plugins_.string(),
            "--output",  output_.string(),
            "--set",     "stages.l1.epochs=2"};
  }

  test::ProcessOptions fault(const std::string& point) const {
    test::ProcessOptions options;
    options.env["EXPRUN_FAULT"] = "INT@" + point;
    return options;
  }

  // Runs the experiment, stopped by SIGINT after the first step; returns the run directory and
  // the printed resume command.
  std::pair<fs::path, std::string> interrupted_run() {
    const ProcessResult r = test::run_exprun(run_args(), fault("step:l1:1:1"));
    EXPECT_EQ(r.exit_code, 128 + SIGINT) << r.describe();
    const auto lines = test::split_lines(r.out);
    std::string command;
    for (std::size_t i = 0; i + 1 < lines.size(); ++i)
      if (lines[i].find("Resume with:") != std::string::npos) command = lines[i + 1];
    EXPECT_FALSE(command.empty()) << r.describe();
    fs::path run;
    for (const auto& e : fs::directory_iterator(output_ / "external_plugin")) run = e.path();
    return {run, command.substr(command.find_first_not_of(' '))};
  }

  ProcessResult resume_without_plugins(const fs::path& run) {
    return test::run_exprun({"run", (kProject / "experiment.toml").string(), "--set",
                             "stages.l1.epochs=2", "--output", output_.string(),
                             "--resume=" + run.string()});
  }

  static json read_json(const fs::path& file) {
    std::ifstream in(file);
    return json::parse(in);
  }

  test::TempDir dir_{"exprun-plugin-resume"};
  fs::path plugins_, output_;
};

TEST_F(PluginResumeTest, ThePrintedResumeCommandWorksAsPrinted) {
  const auto [run, command] = interrupted_run();
  ASSERT_EQ(command.rfind("exprun run ", 0), 0u) << command;
  EXPECT_CONTAINS(command, "--plugins");
  EXPECT_EQ(read_json(run / "report.json")["status"], "interrupted");

  // The run names the library its loss came from.
  const json record = read_json(run / "plugins.json");
  bool listed = false;
  for (const auto& p : record["plugins"]) {
    if (p["plugin"] != "losses/external_l1") continue;
    listed = true;
    EXPECT_TRUE(fs::equivalent(p["library"].get<std::string>(), plugins_ / kLibrary));
    EXPECT_EQ(p["size"].get<std::uintmax_t>(), fs::file_size(plugins_ / kLibrary));
    EXPECT_FALSE(p["abi_tag"].get<std::string>().empty());
  }
  EXPECT_TRUE(listed) << record.dump(2);

  // Exactly as printed, through a shell that finds exprun on PATH; no plugin path from outside.
  test::ProcessOptions shell;
  shell.env["PATH"] = fs::path(EXPRUN_EXE).parent_path().string() + ":/usr/bin:/bin";
  shell.env["EXPRUN_PLUGIN_PATH"] = std::nullopt;
  shell.env["EXPRUN_FAULT"] = std::nullopt;
  shell.timeout_s = 300;
  const ProcessResult resumed = test::run_process({"/bin/sh", "-c", command}, shell);
  ASSERT_EQ(resumed.exit_code, 0) << command << "\n" << resumed.describe();
  EXPECT_CONTAINS(resumed.err, "resuming " + run.string());
  EXPECT_NOT_CONTAINS(resumed.err, "warning");
  const json report = read_json(run / "report.json");
  EXPECT_EQ(report["status"], "completed");
  EXPECT_EQ(report["stages"][0]["status"], "completed");
}

TEST_F(PluginResumeTest, ResumeFindsTheRecordedLibraryWithoutPluginsOption) {
  const auto [run, command] = interrupted_run();
  const ProcessResult resumed = resume_without_plugins(run);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.describe();
  EXPECT_NOT_CONTAINS(resumed.err, "warning");
  EXPECT_EQ(read_json(run / "report.json")["status"], "completed");
}

TEST_F(PluginResumeTest, AChangedLibraryIsAWarning) {
  const auto [run, command] = interrupted_run();
  // Bytes after the last ELF section: the library still loads, but it is not the same file.
  std::ofstream(plugins_ / kLibrary, std::ios::app | std::ios::binary) << "rebuilt";
  const ProcessResult resumed = resume_without_plugins(run);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.describe();
  EXPECT_CONTAINS(resumed.err, "exprun: warning: " + (plugins_ / kLibrary).string() +
                                   " (losses/external_l1) has changed since the run started");
  EXPECT_EQ(read_json(run / "report.json")["status"], "completed");
}

TEST_F(PluginResumeTest, AMissingLibraryIsAClearError) {
  const auto [run, command] = interrupted_run();
  fs::remove_all(plugins_);
  const ProcessResult resumed = resume_without_plugins(run);
  EXPECT_EQ(resumed.exit_code, 1) << resumed.describe();
  test::expect_no_crash(resumed);
  EXPECT_CONTAINS(resumed.err, "exprun: error: cannot resume " + run.string() +
                                   ": it used losses/external_l1 from " +
                                   (plugins_ / kLibrary).string() + ", which no longer exists");
  EXPECT_EQ(read_json(run / "report.json")["status"], "interrupted");
}

}  // namespace
}  // namespace exprun
