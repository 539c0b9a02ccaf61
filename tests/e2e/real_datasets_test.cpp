// The real-data readers (datasets/aariz, datasets/isbi2015) on synthetic trees that the built
// `exprun synth` writes: every split, image format and bit depth, the machine table with its
// byte-order mark, annotator choice and rounding, and a clear error naming the file for each
// way a tree can be broken. Also `exprun data`, `exprun synth`'s own errors, and the shipped
// real-data experiments opened on such trees.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <exprun/sdk/landmarks.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "config/experiment_loader.hpp"
#include "plugins/registry.hpp"
#include "test_support.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::uint64_t kSeed = 5;
// exprun synth --count 10 for aariz: train 6, valid 2, test 2 (the release's 70/15/15).
constexpr std::int64_t kAarizCount = 10;
// --count 6 for isbi2015: TrainingData 2, Test1Data 2, Test2Data 2 (150/150/100).
constexpr std::int64_t kIsbiCount = 6;

const Registry& registry() { return test::built_plugins(); }

std::shared_ptr<sdk::Dataset> read_split(const std::string& plugin, const fs::path& root,
                                         const std::string& split,
                                         const std::string& annotator = "senior") {
  const auto& loaded = registry().find(sdk::PluginKind::Dataset, plugin);
  const auto params =
      sdk::Params::resolve(loaded.schema, {{"root", root.string()}, {"annotator", annotator}});
  return registry().make<sdk::Dataset>(plugin, params, sdk::DatasetContext{split, 0});
}

// The message of the error opening the split throws; "" when it opens.
std::string open_error(const std::string& plugin, const fs::path& root, const std::string& split,
                       const std::string& annotator = "senior") {
  try {
    read_split(plugin, root, split, annotator);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// What `exprun synth` drew its samples from.
std::shared_ptr<sdk::Dataset> reference(const std::string& split, std::int64_t train,
                                        std::int64_t valid, std::int64_t test) {
  const auto& loaded = registry().find(sdk::PluginKind::Dataset, "synthetic_ceph");
  const auto params = sdk::Params::resolve(
      loaded.schema, {{"train_count", train}, {"valid_count", valid}, {"test_count", test}});
  return registry().make<sdk::Dataset>("synthetic_ceph", params, sdk::DatasetContext{split, kSeed});
}

fs::path synth_tree(const std::string& format, std::int64_t count, const fs::path& out) {
  const auto r = test::run_exprun({"synth", "--format", format, "--out", out.string(), "--count",
                                   std::to_string(count), "--seed", std::to_string(kSeed)});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  return out;
}

// The trees synth writes, shared by every test (ctest runs each test in its own process):
// kept under the build directory, keyed by the build times of the exprun binary and of
// synthetic_ceph, which decide their contents. A tree that exists is complete, because synth
// renames it into place last.
fs::path shared_tree(const std::string& format, std::int64_t count) {
  auto stamp = [](const fs::path& file) {
    return static_cast<long long>(fs::last_write_time(file).time_since_epoch().count() %
                                  1000000007);
  };
  const fs::path base = fs::path(EXPRUN_BINARY_DIR) / "test_trees";
  const std::string prefix = "real_datasets-" + format + "-";
  const fs::path tree =
      base /
      (prefix + std::to_string(stamp(EXPRUN_EXE)) + "-" +
       std::to_string(stamp(fs::path(EXPRUN_PLUGIN_DIR) / "exprun-datasets-synthetic_ceph.so")));
  if (fs::exists(tree)) return tree;
  fs::create_directories(base);
  std::vector<fs::path> older;  // trees of older builds
  for (const auto& entry : fs::directory_iterator(base))
    if (entry.path().filename().string().rfind(prefix, 0) == 0) older.push_back(entry.path());
  std::error_code ec;
  for (const auto& path : older) fs::remove_all(path, ec);
  const auto r = test::run_exprun({"synth", "--format", format, "--out", tree.string(), "--count",
                                   std::to_string(count), "--seed", std::to_string(kSeed)});
  // Another test process may have written it at the same moment; then this one's rename failed.
  EXPECT_TRUE(r.exit_code == 0 || fs::exists(tree)) << r.describe();
  return tree;
}

class RealDatasets : public ::testing::Test {
 protected:
  static fs::path aariz() { return shared_tree("aariz", kAarizCount); }
  static fs::path isbi() { return shared_tree("isbi2015", kIsbiCount); }

  // A private copy of a tree to damage.
  fs::path copy_of(const fs::path& tree) {
    const fs::path to = scratch_ / tree.filename();
    fs::copy(tree, to, fs::copy_options::recursive);
    return to;
  }

  test::TempDir scratch_{"exprun-real-datasets-copy"};
};

json read_json(const fs::path& file) {
  std::ifstream in(file);
  return json::parse(in);
}

void write_json(const fs::path& file, const json& doc) { test::write_text(file, doc.dump(2)); }

fs::path senior_file(const fs::path& tree, const std::string& split, const std::string& id) {
  return tree / split / "Annotations" / "Cephalometric Landmarks" / "Senior Orthodontists" /
         (id + ".json");
}

// The image file of `id` in a split, whatever its extension.
fs::path image_file(const fs::path& tree, const std::string& split, const std::string& id) {
  for (const auto& entry : fs::directory_iterator(tree / split / "Cephalograms"))
    if (entry.path().stem() == id) return entry.path();
  return {};
}

// ---------------------------------------------------------------- aariz

TEST_F(RealDatasets, AarizSplitsHoldWhatSynthWrote) {
  const std::map<std::string, std::size_t> expected = {{"train", 6}, {"valid", 2}, {"test", 2}};
  std::set<std::string> machines;
  for (const auto& [split, count] : expected) {
    const auto data = read_split("aariz", aariz(), split);
    const auto truth = reference(split, 6, 2, 2);
    ASSERT_EQ(data->size(), count) << split;
    ASSERT_EQ(data->landmarks().size(), 29u);
    EXPECT_EQ(data->landmarks()[0].symbol, "A");
    EXPECT_EQ(data->landmarks()[28].symbol, "Sn");
    EXPECT_TRUE(data->skipped().empty());
    for (std::size_t i = 0; i < count; ++i) {
      const auto sample = data->get(i);
      const auto want = truth->get(i);  // ids sort in sample order: train_0000, train_0001, ...
      ASSERT_EQ(sample.id, want.id);
      // Senior points are the synthetic ones rounded to whole pixels, in canonical order
      // although every other file lists them backwards.
      EXPECT_TRUE(torch::equal(sample.landmarks, torch::round(want.landmarks))) << sample.id;
      EXPECT_EQ(sample.group, want.group);
      EXPECT_DOUBLE_EQ(sample.mm_per_pixel, want.mm_per_pixel) << sample.id;
      EXPECT_EQ(sample.mm_per_pixel, sample.group == "synth_a" ? 0.4 : 0.44);
      machines.insert(sample.group);
      const json cvm =
          read_json(aariz() / split / "Annotations" / "CVM Stages" / (sample.id + ".json"));
      EXPECT_EQ(sample.extra.at("cvm_stage"), std::to_string(cvm["cvm_stage"]["value"].get<int>()));
      const int stage = std::stoi(sample.extra.at("cvm_stage"));
      EXPECT_TRUE(stage >= 1 && stage <= 6);
    }
  }
  EXPECT_EQ(machines, (std::set<std::string>{"synth_a", "synth_b"}));
}

TEST_F(RealDatasets, AarizReadsEveryImageFormatAndDepth) {
  const auto data = read_split("aariz", aariz(), "train");
  const auto truth = reference("train", 6, 2, 2);
  std::set<std::string> extensions;
  for (std::size_t i = 0; i < data->size(); ++i) {
    const auto sample = data->get(i);
    const auto want = truth->get(i).image;  // 8-bit grey
    const std::string ext = image_file(aariz(), "train", sample.id).extension().string();
    extensions.insert(ext);
    // synth stores image g as png, jpg, bmp (colour), 16-bit png, jpeg, in turn.
    switch (i % 5) {
      case 0:
        EXPECT_EQ(ext, ".png");
        EXPECT_TRUE(torch::equal(sample.image, want));
        break;
      case 1:
      case 4:
        EXPECT_EQ(ext, i % 5 == 1 ? ".jpg" : ".jpeg");
        ASSERT_EQ(sample.image.sizes(), want.sizes());
        EXPECT_LT(
            (sample.image.to(torch::kFloat) - want.to(torch::kFloat)).abs().mean().item<float>(),
            3.0f);
        break;
      case 2:
        EXPECT_EQ(ext, ".bmp");
        ASSERT_EQ(sample.image.dim(), 3);
        EXPECT_EQ(sample.image.size(2), 3);
        EXPECT_TRUE(torch::equal(sample.image.select(2, 0), want));
        break;
      case 3:
        EXPECT_EQ(ext, ".png");
        EXPECT_EQ(sample.image.scalar_type(), torch::kInt32);  // 16-bit, as the SDK asks
        EXPECT_TRUE(torch::equal(sample.image, want.to(torch::kInt32) * 257));
        break;
    }
  }
  EXPECT_EQ(extensions, (std::set<std::string>{".png", ".jpg", ".bmp", ".jpeg"}));
}

TEST_F(RealDatasets, AarizMachineTableHasAByteOrderMarkAndTwoPixelSizes) {
  const std::string csv = test::read_text(aariz() / "cephalogram_machine_mappings.csv");
  ASSERT_EQ(csv.rfind("\xEF\xBB\xBF"
                      "cephalogram_id,machine,pixel_size,image_format,mode\n",
                      0),
            0u);
  EXPECT_NE(csv.find(",synth_a,0.4,"), std::string::npos);
  EXPECT_NE(csv.find(",synth_b,0.44,"), std::string::npos);
  EXPECT_NE(csv.find(",png,I;16\n"), std::string::npos);

  // Without the mark, and with the table inside the split folder instead of the root.
  const fs::path tree = copy_of(aariz());
  fs::remove(tree / "cephalogram_machine_mappings.csv");
  test::write_text(tree / "train" / "cephalogram_machine_mappings.csv", csv.substr(3));
  const auto data = read_split("aariz", tree, "train");
  EXPECT_EQ(data->get(0).mm_per_pixel, read_split("aariz", aariz(), "train")->get(0).mm_per_pixel);
  EXPECT_NE(open_error("aariz", tree, "valid")
                .find("no cephalogram_machine_mappings.csv in " + tree.string()),
            std::string::npos);
}

TEST_F(RealDatasets, AarizSplitFoldersInAnyCase) {
  const fs::path tree = copy_of(aariz());
  fs::rename(tree / "train", tree / "TRAIN");
  fs::rename(tree / "valid", tree / "Valid");
  EXPECT_EQ(read_split("aariz", tree, "train")->size(), 6u);
  EXPECT_EQ(read_split("aariz", tree, "valid")->size(), 2u);
  EXPECT_EQ(read_split("aariz", tree, "val")->size(), 2u);
  EXPECT_NE(open_error("aariz", tree, "holdout").find("splits train, valid (or val) and test"),
            std::string::npos);
}

TEST_F(RealDatasets, AarizAnnotatorsAndTheRoundedUpMean) {
  const auto senior = read_split("aariz", aariz(), "train", "senior");
  const auto junior = read_split("aariz", aariz(), "train", "junior");
  const auto mean = read_split("aariz", aariz(), "train", "mean");
  bool rounded_up = false;
  for (std::size_t i = 0; i < senior->size(); ++i) {
    const auto s = senior->get(i).landmarks, j = junior->get(i).landmarks;
    const auto m = mean->get(i).landmarks;
    EXPECT_FALSE(torch::equal(s, j));  // the junior's points are moved a little
    EXPECT_LE((s - j).abs().max().item<double>(), 3.0);
    EXPECT_TRUE(torch::equal(m, torch::ceil((s + j) / 2))) << i;
    // Where the two differ by an odd number of pixels, the mean is x.5 and rounds up.
    const auto odd = torch::fmod((s - j).abs(), 2) == 1;
    if (odd.any().item<bool>()) {
      rounded_up = true;
      EXPECT_TRUE(torch::equal(m.masked_select(odd), ((s + j) / 2 + 0.5).masked_select(odd)));
    }
  }
  EXPECT_TRUE(rounded_up);
}

TEST_F(RealDatasets, AarizImageWithoutAnnotation) {
  const fs::path tree = copy_of(aariz());
  fs::remove(senior_file(tree, "train", "train_0002"));
  const std::string error = open_error("aariz", tree, "train");
  EXPECT_NE(error.find(image_file(tree, "train", "train_0002").string() +
                       ": image without a senior annotation (expected " +
                       senior_file(tree, "train", "train_0002").string() + ")"),
            std::string::npos)
      << error;
  // The junior's file is still there, so junior alone reads.
  EXPECT_EQ(read_split("aariz", tree, "train", "junior")->size(), 6u);
}

TEST_F(RealDatasets, AarizAnnotationWithoutImage) {
  const fs::path tree = copy_of(aariz());
  fs::remove(image_file(tree, "valid", "valid_0001"));
  const std::string error = open_error("aariz", tree, "valid");
  EXPECT_NE(error.find(senior_file(tree, "valid", "valid_0001").string() +
                       ": annotation without an image (no valid_0001.png/.jpg/.jpeg/.bmp in "),
            std::string::npos)
      << error;
}

TEST_F(RealDatasets, AarizWrongLandmarkCount) {
  const fs::path tree = copy_of(aariz());
  const fs::path file = senior_file(tree, "train", "train_0000");
  json doc = read_json(file);
  doc["landmarks"].erase(doc["landmarks"].begin() + 4);  // N (file 0 lists them in order)
  write_json(file, doc);
  const std::string error = open_error("aariz", tree, "train");
  EXPECT_NE(error.find(file.string() + ": has 28 landmarks; expected 29 (missing: N)"),
            std::string::npos)
      << error;
}

TEST_F(RealDatasets, AarizUnknownSymbol) {
  const fs::path tree = copy_of(aariz());
  const fs::path file = senior_file(tree, "train", "train_0000");
  json doc = read_json(file);
  doc["landmarks"][3]["symbol"] = "Mx";
  doc["landmarks"][3]["title"] = "Mystery";
  write_json(file, doc);
  const std::string error = open_error("aariz", tree, "train");
  EXPECT_NE(error.find(file.string() +
                       ": landmark 4 has the unknown symbol \"Mx\" (title \"Mystery\"); expected "
                       "one of: A ANS B Me"),
            std::string::npos)
      << error;
}

TEST_F(RealDatasets, AarizMatchesBySymbolOrTitleAndIgnoresExtraFields) {
  const fs::path tree = copy_of(aariz());
  const fs::path file = senior_file(tree, "train", "train_0000");
  json doc = read_json(file);
  doc["model"] = "hrnet";  // what a prediction file might add
  for (auto& entry : doc["landmarks"]) {
    entry["confidence"] = 0.9;
    if (entry["symbol"] == "N`") entry["symbol"] = "N'";  // another prime
    if (entry["symbol"] == "Go") entry.erase("symbol");   // title alone
    if (entry["symbol"] == "Sn") entry["symbol"] = "sn";  // case
  }
  write_json(file, doc);
  EXPECT_TRUE(torch::equal(read_split("aariz", tree, "train")->get(0).landmarks,
                           read_split("aariz", aariz(), "train")->get(0).landmarks));
}

TEST_F(RealDatasets, AarizIdMissingFromTheMachineTable) {
  const fs::path tree = copy_of(aariz());
  const fs::path csv = tree / "cephalogram_machine_mappings.csv";
  std::string text = test::read_text(csv);
  const auto row = text.find("test_0001,");
  ASSERT_NE(row, std::string::npos);
  text.erase(row, text.find('\n', row) + 1 - row);
  test::write_text(csv, text);
  const std::string error = open_error("aariz", tree, "test");
  EXPECT_NE(error.find(image_file(tree, "test", "test_0001").string() +
                       ": the id test_0001 is missing from " + csv.string()),
            std::string::npos)
      << error;
  EXPECT_EQ(open_error("aariz", tree, "train"), "");
}

TEST_F(RealDatasets, AarizBadPixelSizeNamesTheLine) {
  const fs::path tree = copy_of(aariz());
  const fs::path csv = tree / "cephalogram_machine_mappings.csv";
  std::string text = test::read_text(csv);
  const auto at = text.find("train_0000,synth_");
  const auto comma = text.find(',', at + 17);
  text.replace(comma + 1, text.find(',', comma + 1) - comma - 1, "n/a");
  test::write_text(csv, text);
  const std::string error = open_error("aariz", tree, "valid");
  EXPECT_NE(error.find(csv.string() + ":2: pixel_size \"n/a\" of train_0000 is not a positive"),
            std::string::npos)
      << error;
}

TEST_F(RealDatasets, AarizUnreadableImageNamesTheFile) {
  const fs::path tree = copy_of(aariz());
  const fs::path image = image_file(tree, "train", "train_0000");
  test::write_text(image, "not a picture");
  const auto data = read_split("aariz", tree, "train");  // images are read lazily
  try {
    data->get(0);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("cannot read image " + image.string() +
                                         ": OpenCV "
                                         "cannot decode it"),
              std::string::npos)
        << e.what();
  }
  // `exprun data` reads every image, so it finds it: a run failure naming the file.
  const fs::path file = fs::path(EXPRUN_SOURCE_DIR) / "experiments" / "aariz_hrnet.toml";
  const auto r = test::run_exprun({"data", file.string(), "--set", "data.root=" + tree.string()});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find("exprun: error: cannot read image " + image.string()), std::string::npos)
      << r.describe();
  test::expect_no_crash(r);
}

TEST_F(RealDatasets, AarizMissingRootAndFolders) {
  EXPECT_NE(open_error("aariz", scratch_ / "nowhere", "train").find("is not a directory"),
            std::string::npos);
  const fs::path tree = copy_of(aariz());
  fs::remove_all(tree / "test");
  EXPECT_NE(open_error("aariz", tree, "test")
                .find(tree.string() + ": no folder for the test split (test/, in any case)"),
            std::string::npos);
  fs::remove_all(tree / "valid" / "Annotations" / "Cephalometric Landmarks" /
                 "Junior Orthodontists");
  EXPECT_EQ(open_error("aariz", tree, "valid", "senior"), "");
  EXPECT_NE(open_error("aariz", tree, "valid", "mean").find("no \"Junior Orthodontists\" folder"),
            std::string::npos);
}

// ---------------------------------------------------------------- isbi2015

TEST_F(RealDatasets, IsbiSplitsHoldWhatSynthWrote) {
  // synth numbers the images across splits: TrainingData 001-002, Test1Data 003-004, ...
  const std::vector<std::tuple<std::string, std::string, std::string>> splits = {
      {"train", "train", "001"}, {"test1", "valid", "003"}, {"test2", "test", "005"}};
  for (const auto& [split, source, first_id] : splits) {
    const auto data = read_split("isbi2015", isbi(), split);
    const auto truth = reference(source, 2, 2, 2);
    ASSERT_EQ(data->size(), 2u) << split;
    ASSERT_EQ(data->landmarks().size(), 19u);
    EXPECT_EQ(data->landmarks()[0].symbol, "S");
    EXPECT_EQ(data->landmarks()[18].symbol, "Ar");
    const auto sample = data->get(0);
    const auto want = truth->get(0);
    EXPECT_EQ(sample.id, first_id);
    EXPECT_EQ(sample.mm_per_pixel, 0.1);
    EXPECT_EQ(sample.image.scalar_type(), torch::kUInt8);
    // Resampled to 0.1 mm per pixel: about the real 1935 x 2400.
    const double factor = want.mm_per_pixel / 0.1;
    EXPECT_EQ(sample.image.size(1), std::lround(want.image.size(1) * factor));
    EXPECT_EQ(sample.image.size(0), std::lround(want.image.size(0) * factor));
    const double sx = static_cast<double>(sample.image.size(1)) / want.image.size(1);
    const double sy = static_cast<double>(sample.image.size(0)) / want.image.size(0);
    // Each ISBI landmark is the Aariz one of the same symbol, scaled with the image.
    const auto& aariz = sdk::aariz_landmarks();
    for (std::size_t k = 0; k < 19; ++k) {
      const std::string symbol = data->landmarks()[k].symbol;
      const auto a = std::find_if(aariz.begin(), aariz.end(),
                                  [&](const auto& l) { return l.symbol == symbol; }) -
                     aariz.begin();
      ASSERT_LT(a, 29) << symbol;
      const double x = (want.landmarks[a][0].item<double>() + 0.5) * sx - 0.5;
      const double y = (want.landmarks[a][1].item<double>() + 0.5) * sy - 0.5;
      EXPECT_EQ(sample.landmarks[k][0].item<double>(), std::round(x)) << symbol;
      EXPECT_EQ(sample.landmarks[k][1].item<double>(), std::round(y)) << symbol;
    }
  }
  // `valid` and `test` read Test1Data too.
  EXPECT_EQ(read_split("isbi2015", isbi(), "valid")->get(0).id, "003");
  EXPECT_EQ(read_split("isbi2015", isbi(), "test")->get(0).id, "003");
}

TEST_F(RealDatasets, IsbiMeanIsTheUnroundedAverage) {
  const auto s = read_split("isbi2015", isbi(), "train", "senior")->get(1).landmarks;
  const auto j = read_split("isbi2015", isbi(), "train", "junior")->get(1).landmarks;
  const auto m = read_split("isbi2015", isbi(), "train", "mean")->get(1).landmarks;
  EXPECT_FALSE(torch::equal(s, j));
  EXPECT_TRUE(torch::allclose(m, (s + j) / 2));
  EXPECT_TRUE((torch::fmod(m, 1) != 0).any().item<bool>());  // some x.5 stay x.5
}

TEST_F(RealDatasets, IsbiAnnotationsOneLevelUpAndRootAtRawImage) {
  const fs::path tree = copy_of(isbi());
  EXPECT_EQ(read_split("isbi2015", tree / "RawImage/", "test2")->size(), 2u);  // root is RawImage
  fs::rename(tree / "AnnotationsByMD", scratch_ / "AnnotationsByMD");
  EXPECT_EQ(read_split("isbi2015", tree, "train")->size(), 2u);  // root/.. holds it
}

TEST_F(RealDatasets, IsbiBrokenTrees) {
  const fs::path tree = copy_of(isbi());
  const fs::path annotation = tree / "AnnotationsByMD" / "400_junior" / "004.txt";
  fs::remove(annotation);
  EXPECT_EQ(open_error("isbi2015", tree, "test1", "senior"), "");
  EXPECT_NE(open_error("isbi2015", tree, "test1", "mean")
                .find((tree / "RawImage" / "Test1Data" / "004.bmp").string() +
                      ": image without an annotation (expected " + annotation.string() + ")"),
            std::string::npos);

  const fs::path short_file = tree / "AnnotationsByMD" / "400_senior" / "001.txt";
  std::string text = test::read_text(short_file);
  test::write_text(short_file, text.substr(0, text.find('\n') + 1) + "12;40\n");
  EXPECT_NE(open_error("isbi2015", tree, "train")
                .find(short_file.string() + ":2: \"12;40\" is not \"x,y\" (landmark N)"),
            std::string::npos);
  // std::stod read hexadecimal: "0x10" was the number 16.
  test::write_text(short_file, text.substr(0, text.find('\n') + 1) + "0x10,40\n");
  EXPECT_CONTAINS(open_error("isbi2015", tree, "train"),
                  short_file.string() + ":2: \"0x10,40\" is not \"x,y\" (landmark N)");
  test::write_text(short_file, text.substr(0, text.find('\n') + 1));
  EXPECT_NE(open_error("isbi2015", tree, "train")
                .find(short_file.string() + ": has 1 lines; expected 19"),
            std::string::npos);

  fs::remove_all(tree / "RawImage" / "Test2Data");
  EXPECT_NE(open_error("isbi2015", tree, "test2").find("no Test2Data folder for the test2 split"),
            std::string::npos);
  EXPECT_NE(open_error("isbi2015", tree, "holdout").find("isbi2015 has the splits train"),
            std::string::npos);
}

// ---------------------------------------------------------------- commands and experiments

TEST_F(RealDatasets, DataCommandSummarisesTheTree) {
  const fs::path tree = copy_of(aariz());
  test::write_text(tree / "train" / "Cephalograms" / "notes.txt", "scanned in 2021");
  const fs::path file = fs::path(EXPRUN_SOURCE_DIR) / "experiments" / "aariz_hrnet.toml";
  const auto r = test::run_exprun({"data", file.string(), "--set", "data.root=" + tree.string(),
                                   "--set", "data.annotator=senior"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("stage pretrain_768: datasets/aariz"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("landmarks   29: A (A point), ANS (Anterior Nasal Spine)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("split train (data.train_split)\n  images      6, width "),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("split valid (data.val_split)\n  images      2"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("split test\n  images      2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("16-bit grey 1, 8-bit colour 1, 8-bit grey 4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("group       synth_a"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" mm/px"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cvm_stage   "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("skipped     1 file(s)\n    " +
                       (tree / "train" / "Cephalograms" / "notes.txt").string() +
                       ": not a png, jpg, jpeg or bmp image"),
            std::string::npos)
      << r.out;

  // --split chooses the splits: ISBI's held-out Test2Data.
  const auto isbi_run = test::run_exprun(
      {"data", (fs::path(EXPRUN_SOURCE_DIR) / "experiments" / "isbi2015_hrnet.toml").string(),
       "--set", "data.root=" + isbi().string(), "--split", "test2"});
  ASSERT_EQ(isbi_run.exit_code, 0) << isbi_run.describe();
  EXPECT_NE(isbi_run.out.find("landmarks   19: S (Sella), N (Nasion)"), std::string::npos)
      << isbi_run.out;
  EXPECT_NE(isbi_run.out.find("\nsplit test2\n  images      2, width "), std::string::npos)
      << isbi_run.out;
  EXPECT_NE(isbi_run.out.find("group       (none)           2 images, 0.1 mm/px"),
            std::string::npos)
      << isbi_run.out;
  EXPECT_EQ(isbi_run.out.find("split train"), std::string::npos) << isbi_run.out;

  // A broken tree: a configuration error naming the file, exit 2.
  fs::remove(senior_file(tree, "valid", "valid_0000"));
  const auto broken =
      test::run_exprun({"data", file.string(), "--set", "data.root=" + tree.string()});
  EXPECT_EQ(broken.exit_code, 2) << broken.describe();
  EXPECT_NE(broken.err.find("datasets/aariz (valid split): "), std::string::npos) << broken.err;
  EXPECT_NE(broken.err.find("image without a senior annotation"), std::string::npos) << broken.err;
}

// A landmark outside its image is named, not only counted; a folder among the films is listed
// as skipped, not passed over in silence; two annotation files of one id are an error.
TEST_F(RealDatasets, DataCommandNamesWhatItPassesOver) {
  const fs::path tree = copy_of(aariz());
  fs::create_directories(tree / "train" / "Cephalograms" / "old");
  json annotation = read_json(senior_file(tree, "train", "train_0001"));
  annotation["landmarks"][0]["value"]["x"] = 5000;
  const std::string symbol = annotation["landmarks"][0]["symbol"];
  write_json(senior_file(tree, "train", "train_0001"), annotation);
  const fs::path file = fs::path(EXPRUN_SOURCE_DIR) / "experiments" / "aariz_hrnet.toml";
  auto r = test::run_exprun({"data", file.string(), "--set", "data.root=" + tree.string(), "--set",
                             "data.annotator=senior"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_CONTAINS(r.out,
                  "warning     1 landmark(s) lie outside their image:\n    train_0001: "
                  "landmark ");
  EXPECT_CONTAINS(r.out, "(" + symbol + ") at (5000, ");
  EXPECT_CONTAINS(r.out, (tree / "train" / "Cephalograms" / "old").string() +
                             ": not a regular file (a folder)");

  const fs::path twin = senior_file(tree, "train", "train_0002").replace_extension(".JSON");
  fs::copy_file(senior_file(tree, "train", "train_0002"), twin);
  r = test::run_exprun({"data", file.string(), "--set", "data.root=" + tree.string()});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err, ": a second annotation file with the id train_0002 (also ");
}

TEST_F(RealDatasets, SynthRefusesBadRequestsAndIsDeterministic) {
  auto r = test::run_exprun(
      {"synth", "--format", "aariz2", "--out", (scratch_ / "x").string(), "--count", "5"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--format aariz2: expected aariz or isbi2015; did you mean 'aariz'?"),
            std::string::npos)
      << r.err;
  r = test::run_exprun(
      {"synth", "--format", "aariz", "--out", (scratch_ / "x").string(), "--count", "2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--count 2: expected 3 (one image per split) to 20000"), std::string::npos)
      << r.err;
  // More than the generator can hold in memory, refused before it starts.
  r = test::run_exprun(
      {"synth", "--format", "aariz", "--out", (scratch_ / "x").string(), "--count", "20001"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_CONTAINS(r.err, "--count 20001: expected 3 (one image per split) to 20000");
  // Boost would read -1 into the unsigned seed as 2^64 - 1.
  for (const char* seed : {"-1", "18446744073709551616", "1e3"}) {
    r = test::run_exprun({"synth", "--format", "aariz", "--out", (scratch_ / "x").string(),
                          "--count", "3", "--seed", seed});
    EXPECT_EQ(r.exit_code, 2) << seed;
    EXPECT_CONTAINS(r.err, "expected an integer from 0 to 18446744073709551615");
  }
  r = test::run_exprun({"synth", "--format", "aariz", "--out", (scratch_ / "x").string(), "--count",
                        "3", "--seed", ""});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_CONTAINS(r.err, "--seed: empty; give a value or leave the option out");
  r = test::run_exprun({"synth", "--format", "aariz", "--out", aariz().string(), "--count", "5"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("already exists and is not an empty folder"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(scratch_ / "x"));

  const fs::path again = synth_tree("aariz", kAarizCount, scratch_ / "again");
  for (const auto& relative :
       {fs::path("cephalogram_machine_mappings.csv"),
        fs::path("test/Annotations/Cephalometric Landmarks/Junior Orthodontists/test_0001.json"),
        fs::path("valid/Annotations/CVM Stages/valid_0000.json"),
        fs::path("train/Cephalograms/train_0003.png")})
    EXPECT_EQ(test::read_text(again / relative), test::read_text(aariz() / relative)) << relative;
  // Nothing but the tree is left beside it.
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(scratch_.path())) ++entries;
  EXPECT_EQ(entries, 1u);
}

// --size release: the release's multi-megapixel films, each machine at its own spacing, with
// the landmarks and the spacing table following the resampling.
TEST_F(RealDatasets, SynthWritesReleaseSizedAarizFilms) {
  const fs::path tree = scratch_ / "release";
  const auto r = test::run_exprun({"synth", "--format", "aariz", "--out", tree.string(), "--count",
                                   "5", "--seed", std::to_string(kSeed), "--size", "release"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_CONTAINS(r.out, "(release size)");
  std::set<std::string> machines;
  for (const auto& [split, count] :
       std::vector<std::pair<std::string, std::size_t>>{{"train", 3}, {"valid", 1}, {"test", 1}}) {
    const auto data = read_split("aariz", tree, split);
    const auto truth = reference(split, 3, 1, 1);
    ASSERT_EQ(data->size(), count) << split;
    for (std::size_t i = 0; i < data->size(); ++i) {
      const auto sample = data->get(i);
      const auto want = truth->get(i);
      ASSERT_EQ(sample.id, want.id);
      machines.insert(sample.group);
      const bool a = sample.group == "synth_a";
      // H x W, or H x W x 3 for the colour BMPs.
      EXPECT_EQ(sample.image.size(1), a ? 1920 : 1549) << sample.id;
      EXPECT_EQ(sample.image.size(0), a ? 2400 : 1901) << sample.id;
      EXPECT_EQ(sample.mm_per_pixel, a ? 0.1 : 0.125) << sample.id;
      // Each point is the synthetic one carried to the new pixels and rounded.
      const double scale_x = a ? 1920.0 / 480 : 1549.0 / 440;
      const double scale_y = a ? 2400.0 / 600 : 1901.0 / 540;
      const auto expected_x = torch::round((want.landmarks.select(1, 0) + 0.5) * scale_x - 0.5);
      const auto expected_y = torch::round((want.landmarks.select(1, 1) + 0.5) * scale_y - 0.5);
      EXPECT_TRUE(torch::equal(sample.landmarks.select(1, 0), expected_x)) << sample.id;
      EXPECT_TRUE(torch::equal(sample.landmarks.select(1, 1), expected_y)) << sample.id;
    }
  }
  EXPECT_EQ(machines, (std::set<std::string>{"synth_a", "synth_b"}));
}

TEST_F(RealDatasets, SynthFixedSizeAndItsErrors) {
  const fs::path tree = scratch_ / "fixed";
  auto r = test::run_exprun(
      {"synth", "--format", "aariz", "--out", tree.string(), "--count", "3", "--size", "700x900"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  for (const auto* split : {"train", "valid", "test"}) {
    const auto sample = read_split("aariz", tree, split)->get(0);
    EXPECT_EQ(sample.image.size(1), 700) << split;
    EXPECT_EQ(sample.image.size(0), 900) << split;
    // Fitted with square pixels: both films are wider than 700:900, so 192 or 193.6 mm of
    // width span the 700 columns.
    EXPECT_NEAR(sample.mm_per_pixel, (sample.group == "synth_a" ? 192.0 : 193.6) / 700, 1e-9);
  }
  r = test::run_exprun({"synth", "--format", "aariz", "--out", (scratch_ / "x").string(), "--count",
                        "3", "--size", "700by900"});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err, "--size 700by900: expected native, release or WIDTHxHEIGHT");
  r = test::run_exprun({"synth", "--format", "isbi2015", "--out", (scratch_ / "x").string(),
                        "--count", "3", "--size", "700x900"});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err, "isbi2015 films are always written at the release's 0.1 mm per pixel");
  EXPECT_FALSE(fs::exists(scratch_ / "x"));
}

// --out as "DIR/" and ".": the tree lands in DIR, staged beside it. A staging tree that a
// signal left behind (its pid ended) goes; a running process's is left alone.
TEST_F(RealDatasets, SynthOutWithATrailingSlashOrDotAndLeftStaging) {
  const std::string slashed = (scratch_ / "slashed").string() + "/";
  const fs::path left = scratch_ / ".slashed.partial-999999999";  // above any pid Linux gives
  const fs::path running = scratch_ / (".slashed.partial-" + std::to_string(::getpid()));
  fs::create_directories(left / "train");
  fs::create_directories(running);
  auto r = test::run_exprun({"synth", "--format", "aariz", "--out", slashed, "--count", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(fs::is_regular_file(scratch_ / "slashed" / "cephalogram_machine_mappings.csv"));
  EXPECT_FALSE(fs::exists(left));
  EXPECT_TRUE(fs::exists(running));

  const fs::path here = scratch_ / "here";
  fs::create_directories(here);
  test::ProcessOptions in_here;
  in_here.cwd = here;
  struct stat before {};
  ASSERT_EQ(::stat(here.c_str(), &before), 0);
  // A staging tree a signal left inside it does not make it a folder that is not empty.
  fs::create_directories(here / ".synth.partial-999999999" / "train");
  r = test::run_exprun({"synth", "--format", "aariz", "--out", ".", "--count", "3"}, in_here);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(fs::is_directory(here / "train" / "Cephalograms"));
  EXPECT_FALSE(fs::exists(here / ".synth.partial-999999999"));
  // Filled where it is, not replaced: a shell standing in it still sees the tree.
  struct stat after {};
  ASSERT_EQ(::stat(here.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(here)) ++entries;
  EXPECT_EQ(entries, 4u) << "train, valid, test and the machine table, no staging folder";

  // A link to nothing is refused before anything is generated.
  const fs::path dangling = scratch_ / "dangling";
  fs::create_symlink(scratch_ / "nowhere" / "x", dangling);
  r = test::run_exprun({"synth", "--format", "aariz", "--out", dangling.string(), "--count", "3"});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err, "--out " + dangling.string() + ": a symbolic link to nothing");
  EXPECT_TRUE(fs::is_symlink(dangling));
}

// Ctrl-C stops between two films and removes the staging tree on the way out.
TEST_F(RealDatasets, SynthStoppedBySigintLeavesNothing) {
  const fs::path tree = scratch_ / "stopped";
  test::TempDir logs("exprun-synth-stop");
  const fs::path err = logs / "stderr.txt";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> args = {EXPRUN_EXE, "synth",       "--format", "isbi2015",
                                   "--out",    tree.string(), "--count",  "400"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, EXPRUN_EXE, &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  // The signal goes once the staging tree exists: the writer is then past start-up, before
  // which a stop signal ends exprun at once, as it would any program (cli.md).
  const fs::path staging = scratch_ / (".stopped.partial-" + std::to_string(pid));
  for (int i = 0; i < 1200 && !fs::exists(staging); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const bool started = fs::exists(staging);
  ::kill(pid, started ? SIGINT : SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(started) << "no staging tree after 120 s";
  ASSERT_TRUE(WIFEXITED(status)) << "ended by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_CONTAINS(test::read_text(err),
                  "exprun: stopped by SIGINT before the end; nothing was written");
  EXPECT_FALSE(fs::exists(tree));
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(scratch_.path())) ++entries;
  EXPECT_EQ(entries, 0u) << "no staging tree beside it";
}

TEST_F(RealDatasets, ShippedExperimentsOpenSynthTrees) {
  for (const auto& [name, tree, plugin] : {std::tuple{"aariz_hrnet.toml", aariz(), "aariz"},
                                           std::tuple{"isbi2015_hrnet.toml", isbi(), "isbi2015"}}) {
    const fs::path file = fs::path(EXPRUN_SOURCE_DIR) / "experiments" / name;
    const Experiment e = load_experiment(file.string(), {"data.root=" + tree.string()}, registry());
    ASSERT_EQ(e.stages.size(), 1u);
    const auto& stage = e.stages[0];
    EXPECT_EQ(stage.data.reader.name, plugin);
    EXPECT_EQ(stage.model.params.get_int("width"), 32);
    EXPECT_EQ(stage.loss.name, "adaptive_wing");
    for (const auto& split : {stage.data.train_split, stage.data.val_split}) {
      const auto data = registry().make<sdk::Dataset>(plugin, stage.data.reader.params,
                                                      sdk::DatasetContext{split, e.seed});
      EXPECT_GE(data->size(), 2u) << name << " " << split;
      EXPECT_GT(data->get(0).landmarks.size(0), 0);
    }
  }
}

}  // namespace
}  // namespace exprun
