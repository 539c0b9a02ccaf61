// Fuzz target: the Aariz release's text files (docs/fuzzing.md). The same input is read as a
// landmark annotation (JSON), a CVM stage file (JSON) and the machine table (CSV). Besides the
// verdict on errors, landmarks that load must be finite numbers: a NaN would drop the landmark
// out of training and scoring without a word.
#include <torch/torch.h>
#include <exprun/sdk/landmarks.hpp>

#include <string>

#include "aariz_files.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = exprun::fuzz::write_scratch("aariz/0001.json", data, size);
  const std::vector<std::string> names = {path.string()};
  exprun::fuzz::expect_located_errors(
      [&] {
        const torch::Tensor points =
            exprun::aariz::read_landmarks(path, exprun::sdk::aariz_landmarks());
        if (!torch::isfinite(points).all().item<bool>())
          exprun::fuzz::finding("read_landmarks returned a non-finite coordinate");
      },
      names);
  exprun::fuzz::expect_located_errors([&] { (void)exprun::aariz::read_cvm_stage(path); }, names);
  exprun::fuzz::expect_located_errors(
      [&] {
        for (const auto& [id, row] : exprun::aariz::read_machine_table(path)) {
          if (!(row.mm_per_pixel > 0) || !std::isfinite(row.mm_per_pixel))
            exprun::fuzz::finding("read_machine_table accepted the pixel size of " + id);
        }
      },
      names);
  return 0;
}
