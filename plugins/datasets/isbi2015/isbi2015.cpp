// Dataset `isbi2015`: the ISBI 2015 cephalometric challenge release (Wang et al. 2016):
//   <root>/RawImage/{TrainingData,Test1Data,Test2Data}/NNN.bmp    1935 x 2400, 0.1 mm/px
//   <root>/AnnotationsByMD/{400_senior,400_junior}/NNN.txt        first 19 lines "x,y"
// AnnotationsByMD may also sit one level above root (root = the RawImage folder, or a copy
// of the images beside a shared annotation folder). Images are decoded in get().
#include <exprun/sdk/sdk.hpp>

#include <cmath>
#include <fstream>
#include <map>

#include "dataset_files.hpp"

namespace {

using namespace exprun::sdk;
namespace fs = std::filesystem;
namespace files = exprun::dataset_files;

constexpr std::size_t kLandmarks = 19;

struct Entry {
  std::string id;
  fs::path image;
  torch::Tensor landmarks;
};

// The first 19 lines of an annotation file, "x,y" in pixels; later lines (the challenge's
// classification labels) are ignored.
torch::Tensor read_points(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(file.string() + ": cannot open the file");
  auto out = torch::empty({static_cast<std::int64_t>(kLandmarks), 2}, torch::kFloat64);
  auto acc = out.accessor<double, 2>();
  std::string line;
  for (std::size_t i = 0; i < kLandmarks; ++i) {
    if (!std::getline(in, line)) {
      throw std::runtime_error(file.string() + ": has " + std::to_string(i) +
                               " lines; expected 19 landmark lines \"x,y\"");
    }
    const auto comma = line.find(',');
    bool ok = comma != std::string::npos;
    double xy[2] = {0, 0};
    const std::string parts[2] = {ok ? line.substr(0, comma) : "",
                                  ok ? line.substr(comma + 1) : ""};
    for (int a = 0; a < 2 && ok; ++a) {
      try {
        std::size_t used = 0;
        xy[a] = std::stod(parts[a], &used);
        // std::stod also reads hexadecimal ("0x10" as 16), which no annotation means.
        ok = parts[a].find_first_not_of(" \t\r", used) == std::string::npos &&
             parts[a].find_first_of("xX") == std::string::npos;
      } catch (const std::exception&) {
        ok = false;
      }
    }
    if (!ok) {
      throw std::runtime_error(file.string() + ":" + std::to_string(i + 1) + ": \"" + line +
                               "\" is not \"x,y\" (landmark " + isbi2015_landmarks()[i].symbol +
                               ")");
    }
    // "nan" and "inf" parse, but the pipeline would take NaN for a landmark that is not
    // annotated and drop it silently; the format has no such notion (19 lines, always).
    if (!std::isfinite(xy[0]) || !std::isfinite(xy[1])) {
      throw std::runtime_error(file.string() + ":" + std::to_string(i + 1) + ": \"" + line +
                               "\" is not a finite position (landmark " +
                               isbi2015_landmarks()[i].symbol + ")");
    }
    acc[static_cast<std::int64_t>(i)][0] = xy[0];
    acc[static_cast<std::int64_t>(i)][1] = xy[1];
  }
  return out;
}

class Isbi2015 : public Dataset {
 public:
  static constexpr const char* kName = "isbi2015";
  static constexpr const char* kSummary =
      "the ISBI 2015 cephalometric challenge release (19 landmarks, 0.1 mm/px)";

  static ParamSchema schema() {
    return ParamSchema()
        .add_string("root", std::nullopt,
                    "the release folder: holds RawImage/ and AnnotationsByMD/ (the latter may "
                    "also be one level up)")
        .add_string("annotator", "mean",
                    "senior | junior | mean (the unrounded average of the two doctors)")
        .choices({"senior", "junior", "mean"})
        .add_float("mm_per_pixel", 0.1, "pixel spacing of every image")
        .min(1e-6);
  }

  Isbi2015(const Params& p, const DatasetContext& context)
      : mm_per_pixel_(p.get_float("mm_per_pixel")) {
    fs::path root = fs::path(p.get_string("root")).lexically_normal();
    if (!root.has_filename() && root.has_parent_path()) root = root.parent_path();  // "x/"
    const std::string annotator = p.get_string("annotator");
    std::error_code ec;
    if (!fs::is_directory(root, ec)) {
      throw ParamError("root: " + root.string() +
                       " is not a directory (expected the ISBI 2015 folder holding RawImage/)");
    }
    const std::string folder = split_folder(context.split);
    // root holds RawImage/, or root is the RawImage folder itself.
    fs::path raw = root;
    if (const auto dir = files::find_child(root, {"RawImage"}, true)) raw = *dir;
    const auto image_dir = files::find_child(raw, {folder}, true);
    if (!image_dir) {
      throw std::runtime_error(raw.string() + ": no " + folder + " folder for the " +
                               context.split + " split; it holds: " + files::listing(raw));
    }
    std::optional<fs::path> annotations;
    for (const fs::path& dir : {root, raw.parent_path(), root.parent_path()}) {
      if ((annotations = files::find_child(dir, {"AnnotationsByMD"}, true))) break;
    }
    if (!annotations) {
      throw std::runtime_error("no AnnotationsByMD folder in " + root.string() + " or " +
                               root.parent_path().string());
    }
    std::vector<fs::path> annotator_dirs;
    for (const std::string who : {"senior", "junior"}) {
      if (annotator != "mean" && annotator != who) continue;
      const auto dir = files::find_child(*annotations, {"400_" + who}, true);
      if (!dir) {
        throw std::runtime_error(annotations->string() + ": no 400_" + who +
                                 " folder; it holds: " + files::listing(*annotations));
      }
      annotator_dirs.push_back(*dir);
    }

    const auto images = files::images_by_id(*image_dir, {".bmp", ".png", ".jpg", ".jpeg"},
                                            "bmp, png or jpg", skipped_);
    for (const auto& [id, image] : images) {
      Entry entry;
      entry.id = id;
      entry.image = image;
      std::vector<torch::Tensor> read;
      for (const auto& dir : annotator_dirs) {
        const auto file = files::find_child(dir, {entry.id + ".txt"}, false);
        if (!file) {
          throw std::runtime_error(image.string() + ": image without an annotation (expected " +
                                   (dir / (entry.id + ".txt")).string() + ")");
        }
        read.push_back(read_points(*file));
      }
      entry.landmarks = read.size() == 1 ? read[0] : (read[0] + read[1]) / 2.0;
      entries_.push_back(std::move(entry));
    }
    if (entries_.empty()) {
      throw std::runtime_error(image_dir->string() +
                               ": holds no image (it holds: " + files::listing(*image_dir) + ")");
    }
  }

  std::size_t size() const override { return entries_.size(); }
  std::vector<LandmarkInfo> landmarks() const override { return isbi2015_landmarks(); }
  std::vector<std::string> skipped() const override { return skipped_; }

  Sample get(std::size_t index) const override {
    Sample sample = annotations(entries_.at(index));
    sample.image = files::read_image(entries_.at(index).image);
    return sample;
  }

  std::optional<SampleFile> get_without_image(std::size_t index) const override {
    const Entry& entry = entries_.at(index);
    return SampleFile{annotations(entry), entry.image};
  }

 private:
  Sample annotations(const Entry& entry) const {
    Sample sample;
    sample.landmarks = entry.landmarks.clone();
    sample.mm_per_pixel = mm_per_pixel_;
    sample.id = entry.id;
    return sample;
  }

  // The challenge has no validation split: `valid` reads Test1Data, like `test`.
  static std::string split_folder(const std::string& split) {
    const std::string s = files::lower(split);
    if (s == "train" || s == "trainingdata") return "TrainingData";
    if (s == "valid" || s == "val" || s == "validation" || s == "test" || s == "test1" ||
        s == "test1data")
      return "Test1Data";
    if (s == "test2" || s == "test2data") return "Test2Data";
    throw ParamError(
        "isbi2015 has the splits train (TrainingData), test1 or test or valid "
        "(Test1Data) and test2 (Test2Data), not \"" +
        split + "\"");
  }

  double mm_per_pixel_;
  std::vector<Entry> entries_;
  std::vector<std::string> skipped_;
};

}  // namespace

EXPRUN_PLUGIN(Isbi2015)
