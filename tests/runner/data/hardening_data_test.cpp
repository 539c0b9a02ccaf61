// Hostile dataset and image files (issue 12, items 4, 5, 6 and 15): non-finite landmark
// coordinates, truncated JPEG, PNG and BMP files, two ISBI images with one id, an image header
// declaring 200000 x 200000 pixels, and an absurd `predict --threads`. Each must be an error
// naming the file (and the landmark); the trees are written here, one image each.
#include <gtest/gtest.h>

#include <exprun/sdk/landmarks.hpp>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "exprun/sdk/image_bytes.hpp"
#include "plugins/registry.hpp"
#include "predict/image_file.hpp"
#include "test_support.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Noise, so that JPEG and PNG data are long and a cut lands inside the pixel data.
cv::Mat noise_image(int width, int height) {
  cv::Mat image(height, width, CV_8U);
  cv::RNG rng(12);
  rng.fill(image, cv::RNG::UNIFORM, 0, 256);
  return image;
}

std::string encoded(const std::string& ext, const std::vector<int>& params = {}) {
  std::vector<uchar> bytes;
  EXPECT_TRUE(cv::imencode(ext, noise_image(48, 40), bytes, params));
  return std::string(bytes.begin(), bytes.end());
}

std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

std::shared_ptr<sdk::Dataset> open_dataset(const std::string& plugin, const fs::path& root) {
  const Registry& registry = test::built_plugins();
  const auto& loaded = registry.find(sdk::PluginKind::Dataset, plugin);
  const auto params =
      sdk::Params::resolve(loaded.schema, {{"root", root.string()}, {"annotator", "senior"}});
  return registry.make<sdk::Dataset>(plugin, params, sdk::DatasetContext{"train", 0});
}

// A one-image Aariz tree; `x` holds the raw JSON text of every landmark's value.x.
class AarizTree {
 public:
  explicit AarizTree(const std::string& image_ext = ".png") {
    test::write_text(root() / "cephalogram_machine_mappings.csv",
                     "cephalogram_id,machine,pixel_size\nc1,m,0.1\n");
    image_ = root() / "train" / "Cephalograms" / ("c1" + image_ext);
    test::write_text(image_, encoded(image_ext));
    annotation_ = root() / "train" / "Annotations" / "Cephalometric Landmarks" /
                  "Senior Orthodontists" / "c1.json";
    x_.assign(sdk::aariz_landmarks().size(), "10");
    write_annotation();
  }
  fs::path root() const { return dir_.path(); }
  const fs::path& image() const { return image_; }
  const fs::path& annotation() const { return annotation_; }

  void set_x(std::size_t landmark, const std::string& raw_json) {
    x_.at(landmark) = raw_json;
    write_annotation();
  }

 private:
  void write_annotation() {
    std::string entries;
    const auto& landmarks = sdk::aariz_landmarks();
    for (std::size_t i = 0; i < landmarks.size(); ++i) {
      entries += (i ? ", " : "") + std::string("{\"symbol\": ") + json(landmarks[i].symbol).dump() +
                 ", \"value\": {\"x\": " + x_[i] + ", \"y\": 20}}";
    }
    test::write_text(annotation_, "{\"landmarks\": [" + entries + "]}");
  }

  test::TempDir dir_{"exprun-hardening-aariz"};
  fs::path image_, annotation_;
  std::vector<std::string> x_;
};

// A one-image ISBI tree: RawImage/TrainingData/001.bmp and its senior annotation.
class IsbiTree {
 public:
  IsbiTree() {
    test::write_text(image_dir() / "001.bmp", encoded(".bmp"));
    lines_.assign(19, "10,12");
    write_annotation();
  }
  fs::path root() const { return dir_.path(); }
  fs::path image_dir() const { return root() / "RawImage" / "TrainingData"; }
  fs::path annotation() const { return root() / "AnnotationsByMD" / "400_senior" / "001.txt"; }

  void set_line(std::size_t index, const std::string& line) {
    lines_.at(index) = line;
    write_annotation();
  }

 private:
  void write_annotation() {
    std::string text;
    for (const auto& line : lines_) text += line + "\n";
    test::write_text(annotation(), text);
  }

  test::TempDir dir_{"exprun-hardening-isbi"};
  std::vector<std::string> lines_;
};

// ---------------------------------------------------------------- item 4: coordinates

TEST(HardeningData, AarizNonFiniteCoordinateNamesFileAndLandmark) {
  AarizTree tree;
  ASSERT_EQ(open_dataset("aariz", tree.root())->size(), 1u);
  const std::string symbol = sdk::aariz_landmarks()[4].symbol;
  for (const std::string raw : {"\"nan\"", "\"inf\"", "\"-Infinity\""}) {
    tree.set_x(4, raw);
    const std::string message = error_of([&] { open_dataset("aariz", tree.root()); });
    EXPECT_CONTAINS(message,
                    tree.annotation().string() + ": landmark 5 (" + symbol + "): value.x is ");
    EXPECT_CONTAINS(message, "; expected a finite number");
  }
  tree.set_x(4, "1e400");  // JSON numbers cannot be infinite: the parser refuses it
  EXPECT_CONTAINS(error_of([&] { open_dataset("aariz", tree.root()); }),
                  tree.annotation().string() + ": not valid JSON");
  tree.set_x(4, "\"12.5\"");  // numeric text stays accepted
  EXPECT_DOUBLE_EQ(open_dataset("aariz", tree.root())->get(0).landmarks[4][0].item<double>(), 12.5);
}

// A pixel size far from a cephalogram's 0.1 mm (pixels per mm, micrometres, a typo) would make
// every reported millimetre wrong; a CVM stage is one of six.
TEST(HardeningData, AarizPixelSizeAndCvmStageOutsideTheirRangesAreErrors) {
  AarizTree tree;
  const fs::path csv = tree.root() / "cephalogram_machine_mappings.csv";
  for (const std::string size : {"1e+300", "12", "0.0001"}) {
    test::write_text(csv, "cephalogram_id,machine,pixel_size\nc1,m," + size + "\n");
    EXPECT_CONTAINS(
        error_of([&] { open_dataset("aariz", tree.root()); }),
        csv.string() + ":2: pixel_size \"" + size + "\" of c1 is outside 0.001 to 10 mm per pixel");
  }
  for (const std::string size : {"0.001", "10", "0.127"}) {
    test::write_text(csv, "cephalogram_id,machine,pixel_size\nc1,m," + size + "\n");
    EXPECT_EQ(open_dataset("aariz", tree.root())->get(0).mm_per_pixel, std::stod(size));
  }
  const fs::path cvm = tree.root() / "train" / "Annotations" / "CVM Stages" / "c1.json";
  for (const std::string value : {"7", "0", "2.5", "\"CS3\"", "\"\"", "-1", "\"0x3\""}) {
    test::write_text(cvm, "{\"cvm_stage\": {\"value\": " + value + "}}");
    EXPECT_CONTAINS(
        error_of([&] { open_dataset("aariz", tree.root()); }),
        cvm.string() + ": cvm_stage.value is " + value + "; expected a stage number from 1 to 6");
  }
  for (const auto& [value, stage] : std::vector<std::pair<std::string, std::string>>{
           {"1", "1"}, {"6", "6"}, {"\"3\"", "3"}, {"4.0", "4"}}) {
    test::write_text(cvm, "{\"cvm_stage\": {\"value\": " + value + "}}");
    EXPECT_EQ(open_dataset("aariz", tree.root())->get(0).extra.at("cvm_stage"), stage) << value;
  }
}

TEST(HardeningData, IsbiNonFiniteCoordinateNamesFileLineAndLandmark) {
  IsbiTree tree;
  ASSERT_EQ(open_dataset("isbi2015", tree.root())->size(), 1u);
  for (const std::string line : {"nan,nan", "12,inf", "-INF,3"}) {
    tree.set_line(2, line);
    EXPECT_CONTAINS(
        error_of([&] { open_dataset("isbi2015", tree.root()); }),
        tree.annotation().string() + ":3: \"" + line + "\" is not a finite position (landmark Or)");
  }
}

// ---------------------------------------------------------------- item 5: damaged images

TEST(HardeningData, TruncatedJpegIsAnErrorNamingTheFile) {
  AarizTree tree(".jpg");
  const std::string whole = test::read_text(tree.image());
  EXPECT_TRUE(open_dataset("aariz", tree.root())->get(0).image.defined());
  test::write_text(tree.image(), whole.substr(0, whole.size() / 2));
  // What the check is for: OpenCV decodes the first half and fills the rest grey.
  ASSERT_FALSE(cv::imread(tree.image().string(), cv::IMREAD_ANYDEPTH).empty());
  const auto data = open_dataset("aariz", tree.root());  // images are decoded in get()
  const std::string message = error_of([&] { data->get(0); });
  EXPECT_CONTAINS(message, "cannot read image " + tree.image().string() +
                               ": the JPEG data ends before its end-of-image marker");
  EXPECT_CONTAINS(message, "truncated");
}

TEST(HardeningData, TruncatedPngIsAnErrorNamingTheFile) {
  AarizTree tree(".png");
  const std::string whole = test::read_text(tree.image());
  // OpenCV 4.6 refuses these too, but only as "cannot decode it (damaged, or not an image in
  // the format its name says)". Cut after the pixel data (IEND is the last 12 bytes), and inside.
  for (const std::size_t size : {whole.size() - 12, whole.size() / 2}) {
    test::write_text(tree.image(), whole.substr(0, size));
    EXPECT_CONTAINS(
        error_of([&] { open_dataset("aariz", tree.root())->get(0); }),
        "cannot read image " + tree.image().string() + ": the PNG data ends before its IEND chunk");
  }
}

TEST(HardeningData, TruncatedBmpIsAnErrorNamingTheFile) {
  IsbiTree tree;
  const fs::path image = tree.image_dir() / "001.bmp";
  const std::string whole = test::read_text(image);
  EXPECT_EQ(open_dataset("isbi2015", tree.root())->get(0).image.size(1), 48);
  test::write_text(image, whole.substr(0, whole.size() - 100));
  EXPECT_CONTAINS(error_of([&] { open_dataset("isbi2015", tree.root())->get(0); }),
                  "cannot read image " + image.string() +
                      ": the BMP header declares 48x40 pixels of 8 bits from byte ");
}

TEST(HardeningData, WholeImagesStillRead) {
  // Bytes after a JPEG's end-of-image marker are ignored, as decoders do; a progressive JPEG
  // has several scans, each followed by more markers.
  for (const std::string& bytes :
       {encoded(".jpg") + "trailing", encoded(".jpg", {cv::IMWRITE_JPEG_PROGRESSIVE, 1}),
        encoded(".png"), encoded(".bmp")}) {
    const sdk::ImageHeader header = sdk::read_image_header(bytes);
    EXPECT_EQ(header.damage, "") << header.format;
    EXPECT_EQ(header.width, 48) << header.format;
    EXPECT_EQ(header.height, 40) << header.format;
  }
  const std::string progressive = encoded(".jpg", {cv::IMWRITE_JPEG_PROGRESSIVE, 1});
  EXPECT_NE(sdk::read_image_header(progressive.substr(0, progressive.size() * 3 / 4)).damage, "");
}

TEST(HardeningData, PredictReaderRefusesTruncatedAndUnreadableImages) {
  test::TempDir dir("exprun-hardening-predict");
  const std::string whole = encoded(".jpg");
  test::write_text(dir / "cut.jpg", whole.substr(0, whole.size() - 40));
  EXPECT_CONTAINS(error_of([&] { read_image_file(dir / "cut.jpg"); }),
                  "cannot read image " + (dir / "cut.jpg").string() + ": the JPEG data ends");
  test::write_text(dir / "empty.png", "");
  EXPECT_CONTAINS(error_of([&] { read_image_file(dir / "empty.png"); }),
                  "cannot read image " + (dir / "empty.png").string() + ": the file is empty");
}

// ---------------------------------------------------------------- item 6: one id, two files

TEST(HardeningData, IsbiRefusesTwoImagesWithOneId) {
  IsbiTree tree;
  test::write_text(tree.image_dir() / "001.png", encoded(".png"));
  EXPECT_CONTAINS(
      error_of([&] { open_dataset("isbi2015", tree.root()); }),
      (tree.image_dir() / "001.png").string() + ": a second image with the id 001 (also 001.bmp)");
}

// ---------------------------------------------------------------- item 15: absurd sizes

// The PNG CRC (ISO 3309) of a chunk's type and data, so that the header below is valid and
// only its size is absurd.
std::uint32_t png_crc(const std::string& bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (const unsigned char c : bytes) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// A small PNG whose IHDR says width x height.
std::string png_declaring(std::uint32_t width, std::uint32_t height) {
  std::string png = encoded(".png");
  const std::string ihdr = "IHDR" + be32(width) + be32(height) + png.substr(24, 5);
  return png.substr(0, 12) + ihdr + be32(png_crc(ihdr)) + png.substr(33);
}

TEST(HardeningData, HugeDeclaredImageIsAnErrorNamingTheFile) {
  test::TempDir dir("exprun-hardening-huge");
  const fs::path huge = dir / "huge.png";
  test::write_text(huge, png_declaring(200000, 200000));
  // What the bound is for: OpenCV's own refusal is an exception without the file name.
  EXPECT_THROW(cv::imread(huge.string()), cv::Exception);
  const std::string expected = "cannot read image " + huge.string() +
                               ": it declares 200000x200000 pixels; exprun reads images of at "
                               "most 16384 pixels a side and 67108864 pixels in all";
  EXPECT_CONTAINS(error_of([&] { read_image_file(huge); }), expected);

  // Below OpenCV's limits but above exprun's: a side too long, or too many pixels in all.
  test::write_text(huge, png_declaring(20000, 10));
  EXPECT_CONTAINS(error_of([&] { read_image_file(huge); }), "declares 20000x10 pixels");
  test::write_text(huge, png_declaring(10000, 10000));
  EXPECT_CONTAINS(error_of([&] { read_image_file(huge); }), "declares 10000x10000 pixels");

  AarizTree tree(".png");
  test::write_text(tree.image(), png_declaring(200000, 200000));
  EXPECT_CONTAINS(error_of([&] { open_dataset("aariz", tree.root())->get(0); }),
                  "cannot read image " + tree.image().string() + ": it declares 200000x200000");
}

TEST(HardeningData, PredictBoundsThreads) {
  test::TempDir dir("exprun-hardening-threads");
  const auto r = test::run_exprun({"predict", "--checkpoint", (dir / "none.pt").string(),
                                   (dir / "none.png").string(), "--out", dir.path().string(),
                                   "--threads", "100000000"});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_CONTAINS(r.err, "--threads: expected 0 (all cores) to 1024, found 100000000");
  test::expect_no_crash(r);
}

}  // namespace
}  // namespace exprun
