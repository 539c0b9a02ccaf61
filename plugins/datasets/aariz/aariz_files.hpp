// The files of an Aariz release other than the images: landmark annotations, CVM stages and the
// machine table. Each parser throws std::runtime_error naming the file (and line for the CSV).
#pragma once

#include <torch/torch.h>
#include <exprun/sdk/dataset.hpp>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace exprun::aariz {

// One annotation file's landmarks as K x 2 float64 (x, y) in the order of `canonical`. Entries
// are matched by symbol (exactly, then ignoring case and the kind of prime: N' = N`), else by
// title (ignoring case); fields other than symbol, title and value are ignored, so predictions
// written with extra fields load too.
torch::Tensor read_landmarks(const std::filesystem::path& file,
                             const std::vector<sdk::LandmarkInfo>& canonical);

// `cvm_stage.value` of a CVM stage file, as text ("3").
std::string read_cvm_stage(const std::filesystem::path& file);

struct MachineRow {
  std::string machine;
  double mm_per_pixel = 0;
  std::string where;  // "file:line"
};

// cephalogram_machine_mappings.csv: columns cephalogram_id, machine, pixel_size (others
// ignored; any order, any case; an optional UTF-8 byte-order mark). Keys are ids without an
// image extension.
std::map<std::string, MachineRow> read_machine_table(const std::filesystem::path& file);

}  // namespace exprun::aariz
