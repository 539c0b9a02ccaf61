// Fuzz target: the ISBI 2015 annotation text files (docs/fuzzing.md), read through the
// dataset plugin's public factory, as the runner does: the input is the senior doctor's file of
// the one image in a scratch release tree. Landmarks that load must be finite numbers.
#include <torch/torch.h>
#include <exprun/sdk/plugin.hpp>

#include <array>
#include <string>

#include "fuzz_support.hpp"

extern "C" const exprun::sdk::PluginInfo* exprun_plugin_info();

namespace {

// A 1x1 24-bit BMP: the image has to decode for get() to return the landmarks.
std::string tiny_bmp() {
  const std::array<unsigned char, 58> bytes = {
      'B', 'M', 58, 0, 0, 0, 0, 0, 0,   0,   54,  0, 0, 0,         // file header
      40,  0,   0,  0, 1, 0, 0, 0, 1,   0,   0,   0, 1, 0, 24, 0,  // info header: 1x1, 24 bits
      0,   0,   0,  0, 4, 0, 0, 0, 0,   0,   0,   0, 0, 0, 0,  0,  // no compression, 4 bytes
      0,   0,   0,  0, 0, 0, 0, 0, 128, 128, 128, 0};              // one grey pixel, padded
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fs = std::filesystem;
  static const fs::path root = [] {
    const fs::path image =
        exprun::fuzz::write_scratch("isbi/RawImage/TrainingData/001.bmp", tiny_bmp());
    return image.parent_path().parent_path().parent_path();
  }();
  const auto path =
      exprun::fuzz::write_scratch("isbi/AnnotationsByMD/400_senior/001.txt", data, size);
  const exprun::sdk::PluginInfo& plugin = *exprun_plugin_info();
  exprun::fuzz::expect_located_errors(
      [&] {
        const auto params = exprun::sdk::Params::resolve(
            plugin.schema(), {{"root", root.string()}, {"annotator", std::string("senior")}});
        exprun::sdk::DatasetContext context;
        context.split = "train";
        const auto dataset =
            exprun::sdk::make_plugin<exprun::sdk::Dataset>(plugin, params, context);
        for (std::size_t i = 0; i < dataset->size(); ++i) {
          const exprun::sdk::Sample sample = dataset->get(i);
          if (!torch::isfinite(sample.landmarks).all().item<bool>())
            exprun::fuzz::finding("the isbi2015 dataset returned a non-finite coordinate");
        }
      },
      {path.string()});
  return 0;
}
