#include <charconv>
#include <cstdint>
#include <cstdio>
#include <limits>

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "run/interrupt.hpp"
#include "synth/synthetic_tree.hpp"
#include "util/text.hpp"

namespace exprun::cli {

namespace {

// std::from_chars rather than Boost's reader, which takes "-1" as its wrap-around, 2^64 - 1.
std::uint64_t parse_seed(const std::string& text) {
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stop != end) {
    throw po::error("--seed " + text + ": expected an integer from 0 to " +
                    std::to_string(std::numeric_limits<std::uint64_t>::max()));
  }
  return value;
}

}  // namespace

int synth_command(const std::vector<std::string>& args) {
  CommonOptions common;
  SynthRequest request;
  std::string out;
  std::string seed_text = "0";
  po::options_description options(
      "exprun synth --format aariz|isbi2015 --out DIR --count N [--seed S] [--size SIZE]\n\n"
      "Writes generated "
      "cephalograms (datasets/synthetic_ceph) as a dataset tree in the layout of a real "
      "release, split like it, for trying the real-data readers without the data.\n\nOptions");
  add_common_options(options, common);
  options.add_options()("format", po::value(&request.format), "aariz or isbi2015")(
      "out", po::value(&out), "folder to create (must not exist, or be empty)")(
      "count", po::value(&request.count), "images over all splits (at least 3)")(
      "seed", po::value(&seed_text)->default_value("0"),
      "seed of the generated images (0 to 18446744073709551615)")(
      "size", po::value(&request.size),
      "film size: native (the generator's, 440x540 and 480x600), release (the release's: "
      "aariz 1920x2400 and 1549x1901, isbi2015 about 1935x2400) or WxH (aariz only; the film "
      "scaled to fit, centred on black). Default: native for aariz, release for isbi2015");
  po::positional_options_description positional;
  return guarded([&] {
    if (parse_or_show_help(args, options, positional, common)) return int{kOk};
    if (request.format.empty()) throw po::error("synth needs --format (aariz or isbi2015)");
    if (out.empty()) throw po::error("synth needs --out DIR");
    if (request.count == 0) throw po::error("synth needs --count N");
    request.out = out;
    request.seed = parse_seed(seed_text);
    Registry registry;
    load_registry(registry, common);
    // A stop signal asks the writer to stop between films, so that it removes its staging tree.
    const auto counts = [&] {
      InterruptGuard stop_between_films;
      return write_synthetic_tree(registry, request);
    }();
    std::vector<std::string> parts;
    for (const auto& c : counts) parts.push_back(c.folder + " " + std::to_string(c.count));
    const std::string size =
        request.size.empty() ? default_film_size(request.format) : request.size;
    std::printf("wrote a synthetic %s tree of %lld images (%s size) to %s (%s)\n",
                request.format.c_str(), static_cast<long long>(request.count), size.c_str(),
                out.c_str(), join(parts, ", ").c_str());
    return int{kOk};
  });
}

}  // namespace exprun::cli
