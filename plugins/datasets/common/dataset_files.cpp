#include "dataset_files.hpp"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "exprun/sdk/image_decode.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace exprun::dataset_files {
namespace fs = std::filesystem;

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::optional<fs::path> find_child(const fs::path& dir, const std::vector<std::string>& names,
                                   bool want_directory) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::nullopt;
  std::vector<fs::path> candidates;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (want_directory ? entry.is_directory(ec) : entry.is_regular_file(ec))
      candidates.push_back(entry.path());
  }
  std::sort(candidates.begin(), candidates.end());
  for (const auto& name : names) {
    // An exact match first, so that a tree holding both "train" and "Train" is read predictably.
    for (const auto& c : candidates)
      if (c.filename().string() == name) return c;
    for (const auto& c : candidates)
      if (lower(c.filename().string()) == lower(name)) return c;
  }
  return std::nullopt;
}

std::string listing(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    names.push_back(entry.path().filename().string() + (entry.is_directory(ec) ? "/" : ""));
  if (names.empty()) return "nothing";
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::vector<fs::path> files_in(const fs::path& dir, std::vector<std::string>& skipped) {
  std::vector<fs::path> out;
  std::vector<std::string> others;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::error_code ec;
    if (entry.is_regular_file(ec)) {
      out.push_back(entry.path());
    } else {
      others.push_back(entry.path().string() + ": not a regular file (" +
                       (entry.is_directory(ec) ? "a folder"
                        : entry.is_symlink(ec) ? "a link to nothing"
                                               : "a pipe, socket or device") +
                       ")");
    }
  }
  std::sort(others.begin(), others.end());  // reported in an order the file system does not set
  skipped.insert(skipped.end(), others.begin(), others.end());
  std::sort(out.begin(), out.end());
  return out;
}

bool has_extension(const fs::path& file, const std::vector<std::string>& extensions) {
  const std::string ext = lower(file.extension().string());
  return std::find(extensions.begin(), extensions.end(), ext) != extensions.end();
}

std::map<std::string, fs::path> images_by_id(const fs::path& dir,
                                             const std::vector<std::string>& extensions,
                                             const std::string& kinds,
                                             std::vector<std::string>& skipped) {
  std::map<std::string, fs::path> images;
  for (const auto& file : files_in(dir, skipped)) {
    if (file.filename().string().front() == '.' || !has_extension(file, extensions)) {
      skipped.push_back(file.string() + ": not a " + kinds + " image");
      continue;
    }
    const auto [it, inserted] = images.emplace(file.stem().string(), file);
    if (!inserted) {
      throw std::runtime_error(file.string() + ": a second image with the id " + it->first +
                               " (also " + it->second.filename().string() + ")");
    }
  }
  return images;
}

torch::Tensor read_image(const fs::path& file) {
  cv::Mat image = sdk::decode_image_file(file, cv::IMREAD_ANYDEPTH | cv::IMREAD_ANYCOLOR);
  if (image.channels() == 4) cv::cvtColor(image, image, cv::COLOR_BGRA2BGR);
  if (image.channels() == 3) cv::cvtColor(image, image, cv::COLOR_BGR2RGB);
  if (image.channels() != 1 && image.channels() != 3) {
    throw std::runtime_error("cannot read image " + file.string() + ": it has " +
                             std::to_string(image.channels()) + " channels");
  }
  torch::ScalarType type = torch::kUInt8;
  switch (image.depth()) {
    case CV_8U:
      break;
    case CV_16U:  // torch has no uint16; the Sample contract takes 16-bit data as int32
      image.convertTo(image, CV_32S);
      type = torch::kInt32;
      break;
    default:
      throw std::runtime_error("cannot read image " + file.string() +
                               ": only 8- and 16-bit images are supported");
  }
  std::vector<std::int64_t> shape = {image.rows, image.cols};
  if (image.channels() == 3) shape.push_back(3);
  if (!image.isContinuous()) image = image.clone();
  return torch::from_blob(image.data, shape, type).clone();
}

}  // namespace exprun::dataset_files
