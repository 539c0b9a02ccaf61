// File handling that the on-disk dataset readers share: folder names matched in any case (a
// release unpacked on Windows or macOS may change them) and images read into the Sample
// contract of exprun/sdk/dataset.hpp.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace exprun::dataset_files {

std::string lower(std::string text);

// The entry of `dir` whose name equals one of `names` in any case (the first name that
// matches wins); a directory when `want_directory`, else a regular file. Nothing when none
// matches or `dir` is not a directory.
std::optional<std::filesystem::path> find_child(const std::filesystem::path& dir,
                                                const std::vector<std::string>& names,
                                                bool want_directory);

// "a, b/, c" — what `dir` holds (directories with a trailing /), for error messages.
std::string listing(const std::filesystem::path& dir);

// The regular files directly in `dir`, sorted by name. Anything else there (a folder, a link to
// nothing, a pipe) is added to `skipped` with why, so that a reader reports it.
std::vector<std::filesystem::path> files_in(const std::filesystem::path& dir,
                                            std::vector<std::string>& skipped);

// Whether `file`'s extension (in any case) is one of `extensions` (lower case, with the dot).
bool has_extension(const std::filesystem::path& file, const std::vector<std::string>& extensions);

// The image files directly in `dir` by id (the name without its extension). Hidden files and
// files whose extension is not one of `extensions` are added to `skipped` ("FILE: not a
// <kinds> image"). Throws naming both files when two images share an id (001.bmp, 001.png):
// which of them holds the annotated picture cannot be known.
std::map<std::string, std::filesystem::path> images_by_id(
    const std::filesystem::path& dir, const std::vector<std::string>& extensions,
    const std::string& kinds, std::vector<std::string>& skipped);

// An image file as a Sample image: H x W for grey, H x W x 3 (RGB) for colour; uint8 for 8-bit
// files, int32 holding 0..65535 for 16-bit ones. Throws std::runtime_error naming the file when
// it cannot be decoded, is truncated or damaged, or is too large (exprun/sdk/image_bytes.hpp).
torch::Tensor read_image(const std::filesystem::path& file);

}  // namespace exprun::dataset_files
