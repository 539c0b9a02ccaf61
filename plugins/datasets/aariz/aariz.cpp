// Dataset `aariz`: the Aariz release (Khalid et al. 2023) as it unpacks:
//   <root>/cephalogram_machine_mappings.csv
//   <root>/{train,valid,test}/Cephalograms/<id>.{png,jpg,jpeg,bmp}
//   <root>/<split>/Annotations/Cephalometric Landmarks/{Senior,Junior} Orthodontists/<id>.json
//   <root>/<split>/Annotations/CVM Stages/<id>.json
// Everything but the pixels is read and checked when the dataset is opened, so a broken tree
// fails before training; images are decoded in get(), by the pipeline's workers.
#include <exprun/sdk/sdk.hpp>

#include <cmath>
#include <map>
#include <set>

#include "aariz_files.hpp"
#include "dataset_files.hpp"

namespace {

using namespace exprun::sdk;
namespace fs = std::filesystem;
namespace files = exprun::dataset_files;

const std::vector<std::string> kImageExtensions = {".png", ".jpg", ".jpeg", ".bmp"};
constexpr const char* kMachineTable = "cephalogram_machine_mappings.csv";

struct Entry {
  std::string id;
  fs::path image;
  torch::Tensor landmarks;
  double mm_per_pixel = 0;
  std::string machine;
  std::string cvm_stage;  // "" when the release has no CVM file for it
};

// Files of one annotation folder by id; anything that is not a .json file is skipped.
std::map<std::string, fs::path> json_files(const fs::path& dir, std::vector<std::string>& skipped) {
  std::map<std::string, fs::path> out;
  for (const auto& file : files::files_in(dir, skipped)) {
    if (file.filename().string().front() == '.' || !files::has_extension(file, {".json"})) {
      skipped.push_back(file.string() + ": not a .json annotation");
      continue;
    }
    // a.json and a.JSON: which one holds the annotation is not ours to guess.
    const auto [it, inserted] = out.emplace(file.stem().string(), file);
    if (!inserted) {
      throw std::runtime_error(file.string() + ": a second annotation file with the id " +
                               it->first + " (also " + it->second.filename().string() + ")");
    }
  }
  return out;
}

class Aariz : public Dataset {
 public:
  static constexpr const char* kName = "aariz";
  static constexpr const char* kSummary =
      "the Aariz cephalometric release (29 landmarks, CVM stage, per-machine mm/px)";

  static ParamSchema schema() {
    return ParamSchema()
        .add_string("root", std::nullopt,
                    "the release folder: holds train/ valid/ test/ (any case) and "
                    "cephalogram_machine_mappings.csv")
        .add_string("annotator", "mean",
                    "senior | junior | mean (both, averaged and rounded up as the dataset's own "
                    "loader does)")
        .choices({"senior", "junior", "mean"});
  }

  Aariz(const Params& p, const DatasetContext& context) {
    const fs::path root = p.get_string("root");
    const std::string annotator = p.get_string("annotator");
    std::error_code ec;
    if (!fs::is_directory(root, ec)) {
      throw ParamError("root: " + root.string() + " is not a directory (expected the Aariz " +
                       "release folder holding train/ valid/ test/)");
    }
    const fs::path split_dir = find_split(root, context.split);
    const fs::path cephalograms = require_dir(split_dir, "Cephalograms");
    const fs::path annotations = require_dir(split_dir, "Annotations");
    const fs::path landmark_dir = require_dir(annotations, "Cephalometric Landmarks");

    std::vector<std::pair<std::string, std::map<std::string, fs::path>>> annotators;
    if (annotator != "junior")
      annotators.emplace_back(
          "senior", json_files(require_dir(landmark_dir, "Senior Orthodontists"), skipped_));
    if (annotator != "senior")
      annotators.emplace_back(
          "junior", json_files(require_dir(landmark_dir, "Junior Orthodontists"), skipped_));

    const std::map<std::string, fs::path> images =
        files::images_by_id(cephalograms, kImageExtensions, "png, jpg, jpeg or bmp", skipped_);
    if (images.empty()) {
      throw std::runtime_error(cephalograms.string() +
                               ": holds no png, jpg, jpeg or bmp image (it holds: " +
                               files::listing(cephalograms) + ")");
    }
    for (const auto& [who, by_id] : annotators) {
      for (const auto& [id, file] : by_id) {
        if (!images.count(id)) {
          throw std::runtime_error(file.string() + ": annotation without an image (no " + id +
                                   ".png/.jpg/.jpeg/.bmp in " + cephalograms.string() + ")");
        }
      }
    }

    const auto table = machine_table(root, split_dir);
    const auto cvm_dir = files::find_child(annotations, {"CVM Stages"}, true);
    std::map<std::string, fs::path> cvm_files;
    if (cvm_dir) {
      cvm_files = json_files(*cvm_dir, skipped_);
    } else {
      skipped_.push_back(annotations.string() +
                         ": no \"CVM Stages\" folder; no sample has a "
                         "cvm_stage");
    }

    for (const auto& [id, image] : images) {
      Entry entry;
      entry.id = id;
      entry.image = image;
      std::vector<torch::Tensor> read;
      for (const auto& [who, by_id] : annotators) {
        const auto it = by_id.find(id);
        if (it == by_id.end()) {
          throw std::runtime_error(
              image.string() + ": image without a " + who + " annotation (expected " +
              (landmark_dir / (who == "senior" ? "Senior Orthodontists" : "Junior Orthodontists") /
               (id + ".json"))
                  .string() +
              ")");
        }
        read.push_back(exprun::aariz::read_landmarks(it->second, aariz_landmarks()));
      }
      // The dataset's own loader averages the two orthodontists and rounds up.
      entry.landmarks = read.size() == 1 ? read[0] : torch::ceil((read[0] + read[1]) / 2.0);
      const auto row = table.rows.find(id);
      if (row == table.rows.end()) {
        throw std::runtime_error(image.string() + ": the id " + id + " is missing from " +
                                 table.files + ", so its mm per pixel is unknown");
      }
      entry.mm_per_pixel = row->second.mm_per_pixel;
      entry.machine = row->second.machine;
      if (const auto cvm = cvm_files.find(id); cvm != cvm_files.end()) {
        entry.cvm_stage = exprun::aariz::read_cvm_stage(cvm->second);
      } else if (cvm_dir) {
        skipped_.push_back((*cvm_dir / (id + ".json")).string() +
                           ": missing; the sample has no cvm_stage");
      }
      entries_.push_back(std::move(entry));
    }
    for (const auto& [id, file] : cvm_files)
      if (!images.count(id)) skipped_.push_back(file.string() + ": CVM stage without an image");
  }

  std::size_t size() const override { return entries_.size(); }
  std::vector<LandmarkInfo> landmarks() const override { return aariz_landmarks(); }
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
  static Sample annotations(const Entry& entry) {
    Sample sample;
    sample.landmarks = entry.landmarks.clone();
    sample.mm_per_pixel = entry.mm_per_pixel;
    sample.id = entry.id;
    sample.group = entry.machine;
    if (!entry.cvm_stage.empty()) sample.extra["cvm_stage"] = entry.cvm_stage;
    return sample;
  }

  struct MachineTable {
    std::map<std::string, exprun::aariz::MachineRow> rows;
    std::string files;  // the file(s) read, for messages
  };

  static fs::path find_split(const fs::path& root, const std::string& split) {
    std::vector<std::string> names;
    if (split == "train") {
      names = {"train"};
    } else if (split == "valid" || split == "val" || split == "validation") {
      names = {"valid", "val", "validation"};
    } else if (split == "test") {
      names = {"test"};
    } else {
      throw ParamError("aariz has the splits train, valid (or val) and test, not \"" + split +
                       "\"");
    }
    const auto dir = files::find_child(root, names, true);
    if (!dir) {
      throw std::runtime_error(root.string() + ": no folder for the " + split + " split (" +
                               names.front() +
                               "/, in any case); it holds: " + files::listing(root));
    }
    return *dir;
  }

  static fs::path require_dir(const fs::path& parent, const std::string& name) {
    const auto dir = files::find_child(parent, {name}, true);
    if (!dir) {
      throw std::runtime_error(parent.string() + ": no \"" + name +
                               "\" folder; it holds: " + files::listing(parent));
    }
    return *dir;
  }

  // The release keeps the table at its root; a split folder may carry its own, whose rows win.
  static MachineTable machine_table(const fs::path& root, const fs::path& split_dir) {
    MachineTable out;
    for (const auto& dir : {root, split_dir}) {
      const auto file = files::find_child(dir, {kMachineTable}, false);
      if (!file) continue;
      for (auto& [id, row] : exprun::aariz::read_machine_table(*file)) out.rows[id] = row;
      out.files += (out.files.empty() ? "" : " and ") + file->string();
    }
    if (out.files.empty()) {
      throw std::runtime_error(std::string("no ") + kMachineTable + " in " + root.string() +
                               " or " + split_dir.string() +
                               " (it gives each image's machine and mm per pixel)");
    }
    return out;
  }

  std::vector<Entry> entries_;
  std::vector<std::string> skipped_;
};

}  // namespace

EXPRUN_PLUGIN(Aariz)
