#include <cstdio>

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "synth/synthetic_tree.hpp"
#include "util/text.hpp"

namespace exprun::cli {

int synth_command(const std::vector<std::string>& args) {
  CommonOptions common;
  SynthRequest request;
  std::string out;
  std::uint64_t seed = 0;
  po::options_description options(
      "exprun synth --format aariz|isbi2015 --out DIR --count N [--seed S]\n\nWrites generated "
      "cephalograms (datasets/synthetic_ceph) as a dataset tree in the layout of a real "
      "release, split like it, for trying the real-data readers without the data.\n\nOptions");
  add_common_options(options, common);
  options.add_options()("format", po::value(&request.format), "aariz or isbi2015")(
      "out", po::value(&out), "folder to create (must not exist, or be empty)")(
      "count", po::value(&request.count), "images over all splits (at least 3)")(
      "seed", po::value(&seed)->default_value(0), "seed of the generated images");
  po::positional_options_description positional;
  return guarded([&] {
    if (parse_or_show_help(args, options, positional, common)) return int{kOk};
    if (request.format.empty()) throw po::error("synth needs --format (aariz or isbi2015)");
    if (out.empty()) throw po::error("synth needs --out DIR");
    if (request.count == 0) throw po::error("synth needs --count N");
    request.out = out;
    request.seed = seed;
    Registry registry;
    load_registry(registry, common);
    const auto counts = write_synthetic_tree(registry, request);
    std::vector<std::string> parts;
    for (const auto& c : counts) parts.push_back(c.folder + " " + std::to_string(c.count));
    std::printf("wrote a synthetic %s tree of %lld images to %s (%s)\n", request.format.c_str(),
                static_cast<long long>(request.count), out.c_str(), join(parts, ", ").c_str());
    return int{kOk};
  });
}

}  // namespace exprun::cli
