// What the fuzz targets share: the verdict on how a call ended, and scratch files for readers
// that take a path. A target calls the code under test through `expect_located_errors`; the
// only acceptable outcomes are a normal return and a std::runtime_error (ConfigError and the
// like) whose message names the input, as every error a user sees must. Anything else (another
// exception type, a message that does not say which file, a crash, a sanitizer report) aborts,
// which libFuzzer records as a crash and the replay test as a failure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

namespace exprun::fuzz {

// Prints "fuzz finding: <what>" to stderr and aborts.
[[noreturn]] void finding(const std::string& what);

// Prints the message to stderr when EXPRUN_FUZZ_VERBOSE is set (is a seed read whole, or where
// does it stop?); libFuzzer runs stay quiet.
void report_expected_error(const std::string& message);

// Runs `call`. Returns true when it returned, false when it threw a std::runtime_error whose
// message contains one of `names`; any other ending is a finding.
template <typename Call>
bool expect_located_errors(Call&& call, const std::vector<std::string>& names) {
  try {
    call();
    return true;
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    for (const auto& name : names) {
      if (message.find(name) != std::string::npos) {
        report_expected_error(message);
        return false;
      }
    }
    finding("an error that names none of the inputs (" + std::string(typeid(e).name()) +
            "): " + message);
  } catch (const std::exception& e) {
    finding("unexpected exception " + std::string(typeid(e).name()) + ": " + e.what());
  } catch (...) {
    finding("an exception that is not a std::exception");
  }
}

// A directory of this process's own under the temp directory, removed at exit.
const std::filesystem::path& scratch_dir();

// Writes `size` bytes to scratch_dir() / relative (creating folders) and returns the path.
std::filesystem::path write_scratch(const std::string& relative, const std::uint8_t* data,
                                    std::size_t size);
std::filesystem::path write_scratch(const std::string& relative, const std::string& text);

}  // namespace exprun::fuzz

// libFuzzer's entry point, defined by each <name>_fuzz.cpp.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
