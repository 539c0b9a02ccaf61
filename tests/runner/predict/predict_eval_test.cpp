// exprun eval and exprun predict through the built binary, on a real checkpoint: one epoch of
// the tiny synthetic experiment (HRNet of width 4), trained once for the whole suite.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <exprun/sdk/landmarks.hpp>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/image_convert.hpp"
#include "plugins/registry.hpp"
#include "predict/image_file.hpp"
#include "predict/prediction_output.hpp"
#include "test_support.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::expect_no_crash;
using test::ProcessResult;

std::vector<std::string> aariz_symbols() {
  std::vector<std::string> out;
  for (const auto& l : sdk::aariz_landmarks()) out.push_back(l.symbol);
  return out;
}

// Pixels of `bgr` far from grey: on a grey film, the drawn markers and labels.
int coloured_pixels(const cv::Mat& bgr) {
  int coloured = 0;
  for (int y = 0; y < bgr.rows; ++y) {
    for (int x = 0; x < bgr.cols; ++x) {
      const auto p = bgr.at<cv::Vec3b>(y, x);
      if (std::max({p[0], p[1], p[2]}) - std::min({p[0], p[1], p[2]}) > 100) ++coloured;
    }
  }
  return coloured;
}

class PredictEvalTest : public ::testing::Test {
 protected:
  struct Run {
    test::TempDir dir{"exprun-predict-eval"};
    fs::path file, stage_dir, best, latest;
    ProcessResult result;
    json report;
    json stage;
    // Test-split image 0 of the synthetic dataset, as eval --split test sees it.
    sdk::Sample sample;
    fs::path grey_png, colour16_png;
  };
  static inline std::unique_ptr<Run> run_;

  static void SetUpTestSuite() {
    run_ = std::make_unique<Run>();
    Run& r = *run_;
    r.file = r.dir / "tiny.toml";
    test::TinyExperiment e;
    e.output = r.dir / "results";
    e.epochs = 1;
    test::write_text(r.file, e.toml());
    r.result = test::run_exprun({"run", r.file.string()});
    if (r.result.exit_code != 0) return;
    for (const auto& entry : fs::directory_iterator(r.dir / "results" / "tiny"))
      if (entry.is_directory()) r.stage_dir = entry.path() / "train";
    r.best = r.stage_dir / "checkpoints" / "best.pt";
    r.latest = r.stage_dir / "checkpoints" / "latest.pt";
    r.report = json::parse(test::read_text(r.stage_dir.parent_path() / "report.json"));
    r.stage = r.report["stages"][0];

    const Registry& registry = test::built_plugins();
    const auto schema = registry.schema(sdk::PluginKind::Dataset, "synthetic_ceph");
    const auto params = sdk::Params::resolve(schema, {{"train_count", std::int64_t{16}},
                                                      {"valid_count", std::int64_t{8}},
                                                      {"test_count", std::int64_t{6}}});
    auto test_split = registry.make<sdk::Dataset>("synthetic_ceph", params, {"test", 3});
    r.sample = test_split->get(0);
    cv::Mat grey(static_cast<int>(r.sample.image.size(0)), static_cast<int>(r.sample.image.size(1)),
                 CV_8U, r.sample.image.contiguous().data_ptr<std::uint8_t>());
    r.grey_png = r.dir / "images" / ("grey_" + r.sample.id + ".png");
    fs::create_directories(r.grey_png.parent_path());
    cv::imwrite(r.grey_png.string(), grey);
    // The same film as a 16-bit colour PNG: 257 maps 0..255 onto 0..65535 exactly.
    cv::Mat wide, colour;
    grey.convertTo(wide, CV_16U, 257.0);
    cv::cvtColor(wide, colour, cv::COLOR_GRAY2BGR);
    r.colour16_png = r.dir / "images" / "colour16.png";
    cv::imwrite(r.colour16_png.string(), colour);
  }
  static void TearDownTestSuite() { run_.reset(); }

  void SetUp() override {
    ASSERT_EQ(run_->result.exit_code, 0) << run_->result.describe();
    ASSERT_TRUE(fs::exists(run_->best)) << run_->best;
  }

  static ProcessResult exprun(std::vector<std::string> args) {
    return test::run_exprun(std::move(args));
  }
  const Run& run() const { return *run_; }

  void EvalOnTheValidationSplitReproducesTheRunsOwnNumbers() {
    const ProcessResult r = exprun(
        {"eval", run().file.string(), "--checkpoint", run().best.string(), "--split", "valid"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const fs::path path = run().stage_dir / "eval-valid.json";
    ASSERT_TRUE(fs::exists(path)) << r.describe();
    EXPECT_CONTAINS(r.out, "report: " + path.string());
    EXPECT_CONTAINS(r.out, "overall");
    EXPECT_CONTAINS(r.out, "SDR2.0");
    const json e = json::parse(test::read_text(path));
    EXPECT_EQ(e["kind"], "evaluation");
    EXPECT_EQ(e["experiment"], "tiny");
    EXPECT_EQ(e["stage"], "train");
    EXPECT_EQ(e["split"], "valid");
    EXPECT_EQ(e["decode"], "argmax");
    EXPECT_EQ(e["device"], "cpu");
    EXPECT_EQ(e["checkpoint"]["path"], fs::absolute(run().best).lexically_normal().string());
    EXPECT_EQ(e["checkpoint"]["epoch"], 1);
    EXPECT_EQ(e["images"], 8);
    ASSERT_EQ(e["landmarks"].size(), 29u);
    EXPECT_EQ(e["landmarks"][0], (json{{"symbol", "A"}, {"title", "A point"}}));

    // best.pt is epoch 1's model, which the run scored on this split: the same numbers.
    json best = run().stage["best"];
    for (const char* key : {"mre", "sd", "count"})
      EXPECT_NEAR(e["overall"][key].get<double>(), best["overall"][key].get<double>(), 1e-9) << key;
    EXPECT_EQ(e["overall"]["sdr"], best["overall"]["sdr"]);
    for (const auto& symbol : aariz_symbols()) {
      EXPECT_NEAR(e["per_landmark"][symbol]["mre"].get<double>(),
                  best["per_landmark"][symbol]["mre"].get<double>(), 1e-9)
          << symbol;
    }
    EXPECT_EQ(e["per_group"].size(), best["per_group"].size());
    for (const auto& [group, summary] : best["per_group"].items())
      EXPECT_NEAR(e["per_group"][group]["mre"].get<double>(), summary["mre"].get<double>(), 1e-9);

    // Per image: every landmark's error, whose mean over everything is the overall MRE.
    ASSERT_EQ(e["per_image"].size(), 8u);
    double sum = 0;
    for (const auto& image : e["per_image"]) {
      ASSERT_EQ(image["errors_mm"].size(), 29u);
      ASSERT_EQ(image["predicted"].size(), 29u);
      EXPECT_TRUE(image["group"] == "synth_a" || image["group"] == "synth_b") << image["group"];
      EXPECT_GT(image["mm_per_pixel"].get<double>(), 0.0);
      double image_sum = 0;
      for (const auto& symbol : aariz_symbols())
        image_sum += image["errors_mm"][symbol].get<double>();
      EXPECT_NEAR(image["mre"].get<double>(), image_sum / 29, 1e-9);
      sum += image_sum;
    }
    EXPECT_NEAR(e["overall"]["mre"].get<double>(), sum / (8 * 29), 1e-9);
  }

  // eval on the test split with DARK, one image per batch, and predict on test image 0 written
  // as a PNG: predict preprocesses, decodes and maps back exactly as validation does, so it gives
  // the coordinates eval reports for that image.
  void EvalOnTheTestSplitWithDarkAgreesWithPredict() {
    const fs::path out = run().dir / "reports" / "test-dark.json";
    ProcessResult r = exprun({"eval", run().file.string(), "--checkpoint", run().latest.string(),
                              "--set", "data.test_count=6", "--set", "memory.micro_batch=1",
                              "--decode", "dark", "--out", out.string()});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const json e = json::parse(test::read_text(out));
    EXPECT_EQ(e["split"], "test");
    EXPECT_EQ(e["decode"], "dark");
    EXPECT_EQ(e["images"], 6);
    EXPECT_EQ(e["overrides"], json::array({"data.test_count=6", "memory.micro_batch=1"}));
    EXPECT_TRUE(e["overall"]["mre"].is_number());
    EXPECT_EQ(e["overall"]["count"], 6 * 29);
    EXPECT_FALSE(fs::exists(run().stage_dir / "eval-test.json")) << "--out was given";

    const fs::path predicted = run().dir / "predicted-dark";
    r = exprun({"predict", "--checkpoint", run().latest.string(), run().grey_png.string(), "--out",
                predicted.string(), "--decode", "dark", "--threads", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const json p =
        json::parse(test::read_text(predicted / (run().grey_png.stem().string() + ".json")));
    json per_image;
    for (const auto& image : e["per_image"])
      if (image["id"] == run().sample.id) per_image = image;
    ASSERT_TRUE(per_image.is_object()) << "eval did not score " << run().sample.id;
    for (const auto& l : p["landmarks"]) {
      const std::string symbol = l["symbol"];
      EXPECT_NEAR(l["value"]["x"].get<double>(), per_image["predicted"][symbol][0].get<double>(),
                  1e-6)
          << symbol;
      EXPECT_NEAR(l["value"]["y"].get<double>(), per_image["predicted"][symbol][1].get<double>(),
                  1e-6)
          << symbol;
    }
  }

  void EvalRejectsACheckpointOfAnotherExperimentStageOrModel() {
    // Another experiment's file (same stages, another name).
    test::TinyExperiment other;
    other.name = "other";
    other.output = run().dir / "results";
    const fs::path other_file = run().dir / "other.toml";
    test::write_text(other_file, other.toml());
    ProcessResult r = exprun({"eval", other_file.string(), "--checkpoint", run().best.string()});
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_CONTAINS(r.err, "belongs to experiment \"tiny\", not to \"other\"");
    expect_no_crash(r);

    r = exprun(
        {"eval", run().file.string(), "--checkpoint", run().best.string(), "--stage", "finetune"});
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_CONTAINS(r.err, "no stage is named \"finetune\"");

    r = exprun({"eval", run().file.string(), "--checkpoint", run().best.string(), "--set",
                "model.width=8"});
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_CONTAINS(r.err, "was trained with model = ");
    EXPECT_CONTAINS(r.err, "\"width\":4");
    expect_no_crash(r);

    r = exprun(
        {"eval", run().file.string(), "--checkpoint", run().best.string(), "--decode", "soft"});
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_CONTAINS(r.err, "expected argmax or dark");

    const fs::path junk = run().dir / "junk.pt";
    test::write_text(junk, "not a checkpoint");
    r = exprun({"eval", run().file.string(), "--checkpoint", junk.string()});
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_CONTAINS(r.err, "checkpoint " + junk.string() + " is ");
    expect_no_crash(r);

    r = exprun({"eval", run().file.string()});
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_CONTAINS(r.err, "--checkpoint");

    // A folder, or a pipe that would block the read for ever.
    r = exprun({"eval", run().file.string(), "--checkpoint", run().dir.path().string()});
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_CONTAINS(r.err,
                    "checkpoint " + run().dir.path().string() + " is a folder, not a checkpoint");
    const fs::path fifo = run().dir / "fifo.pt";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    r = exprun({"eval", run().file.string(), "--checkpoint", fifo.string()});
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_CONTAINS(r.err, "is not a regular file");
    fs::remove(fifo);
  }

  // The report path is checked before the split is scored, and never replaces a checkpoint.
  void EvalRefusesAReportPathThatWouldLoseWeightsOrCannotBeWritten() {
    const std::string best_before = test::read_text(run().best);
    ProcessResult r = exprun({"eval", run().file.string(), "--checkpoint", run().best.string(),
                              "--out", run().best.string()});
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_CONTAINS(r.err, "--out " + run().best.string() + ": is the checkpoint being scored");
    r = exprun({"eval", run().file.string(), "--checkpoint", run().best.string(), "--out",
                run().latest.string()});
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_CONTAINS(r.err, "is an exprun checkpoint; give the report another path");
    EXPECT_EQ(test::read_text(run().best), best_before);
    r = exprun({"eval", run().file.string(), "--checkpoint", run().best.string(), "--out",
                run().dir.path().string()});
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_CONTAINS(r.err, "--out " + run().dir.path().string() + ": is a folder");
    EXPECT_NOT_CONTAINS(r.out, "MRE") << "refused before scoring";
  }

  void PredictWritesAarizJsonThatTheAarizReaderLoadsBack() {
    // An Aariz tree written by exprun synth; its test image (a bmp) is predicted, and the
    // prediction replaces that image's annotations.
    const fs::path tree = run().dir / "aariz";
    ProcessResult r =
        exprun({"synth", "--format", "aariz", "--out", tree.string(), "--count", "3"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    fs::path bmp;
    for (const auto& entry : fs::directory_iterator(tree / "test" / "Cephalograms"))
      bmp = entry.path();
    ASSERT_FALSE(bmp.empty());

    const fs::path out = run().dir / "predicted";
    r = exprun({"predict", "--checkpoint", run().best.string(), run().grey_png.string(),
                run().colour16_png.string(), bmp.string(), "--out", out.string()});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const std::string stem = run().grey_png.stem().string();
    const int width = static_cast<int>(run().sample.image.size(1));
    const int height = static_cast<int>(run().sample.image.size(0));
    const json a = json::parse(test::read_text(out / (stem + ".json")));
    EXPECT_EQ(a["ceph_id"], stem);
    ASSERT_EQ(a["landmarks"].size(), 29u);
    const auto symbols = aariz_symbols();
    for (std::size_t j = 0; j < 29; ++j) {
      const json l = a["landmarks"][j];
      EXPECT_EQ(l["symbol"], symbols[j]);
      EXPECT_EQ(l["title"], sdk::aariz_landmarks()[j].title);
      EXPECT_EQ(l["landmark_id"], j + 1);
      const double x = l["value"]["x"].get<double>(), y = l["value"]["y"].get<double>();
      EXPECT_GE(x, -0.5) << symbols[j];
      EXPECT_LE(x, width - 0.5) << symbols[j];
      EXPECT_GE(y, -0.5) << symbols[j];
      EXPECT_LE(y, height - 0.5) << symbols[j];
    }
    // The 16-bit colour copy of the same film is the same image to the model, up to float
    // rounding in the conversion (below 1e-6 of the range), which the barely trained model's flat
    // heatmaps amplify to a few hundredths of a pixel (measured at most 0.04).
    const auto grey = to_grey_float(read_image_file(run().grey_png));
    const auto colour = to_grey_float(read_image_file(run().colour16_png));
    EXPECT_LT(cv::norm(grey, colour, cv::NORM_INF), 1e-6);
    EXPECT_LT(cv::norm(grey, to_grey_float(run().sample.image), cv::NORM_INF), 1e-7);
    const json c = json::parse(test::read_text(out / "colour16.json"));
    for (std::size_t j = 0; j < 29; ++j) {
      EXPECT_NEAR(c["landmarks"][j]["value"]["x"].get<double>(),
                  a["landmarks"][j]["value"]["x"].get<double>(), 0.1);
      EXPECT_NEAR(c["landmarks"][j]["value"]["y"].get<double>(),
                  a["landmarks"][j]["value"]["y"].get<double>(), 0.1);
    }

    const cv::Mat overlay =
        cv::imread((out / (stem + "_overlay.png")).string(), cv::IMREAD_UNCHANGED);
    ASSERT_FALSE(overlay.empty());
    EXPECT_EQ(overlay.cols, width);
    EXPECT_EQ(overlay.rows, height);
    EXPECT_EQ(overlay.type(), CV_8UC3);
    // A one-epoch model may put many landmarks on the same spot, so only some colour is asked
    // for here; OverlayMarksEveryLandmarkInItsOwnColour checks the drawing itself.
    EXPECT_GT(coloured_pixels(overlay), 50);
    EXPECT_TRUE(fs::exists(out / "colour16_overlay.png"));
    // Nothing but the outputs: temporary files are renamed away.
    std::size_t files = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(out)) ++files;
    EXPECT_EQ(files, 6u);

    // The aariz reader, given the prediction as both orthodontists' annotation, loads exactly
    // the predicted positions: same pixel convention, same symbols.
    const std::string id = bmp.stem().string();
    const std::string predicted = test::read_text(out / (id + ".json"));
    for (const char* who : {"Senior Orthodontists", "Junior Orthodontists"}) {
      test::write_text(
          tree / "test" / "Annotations" / "Cephalometric Landmarks" / who / (id + ".json"),
          predicted);
    }
    const Registry& registry = test::built_plugins();
    const auto params =
        sdk::Params::resolve(registry.schema(sdk::PluginKind::Dataset, "aariz"),
                             {{"root", tree.string()}, {"annotator", std::string("senior")}});
    const auto dataset = registry.make<sdk::Dataset>("aariz", params, {"test", 0});
    ASSERT_EQ(dataset->size(), 1u);
    const sdk::Sample loaded = dataset->get(0);
    EXPECT_EQ(loaded.id, id);
    const json p = json::parse(predicted);
    ASSERT_EQ(loaded.landmarks.size(0), 29);
    for (std::int64_t j = 0; j < 29; ++j) {
      const json l = p["landmarks"][static_cast<std::size_t>(j)];
      EXPECT_DOUBLE_EQ(loaded.landmarks[j][0].item<double>(), l["value"]["x"].get<double>());
      EXPECT_DOUBLE_EQ(loaded.landmarks[j][1].item<double>(), l["value"]["y"].get<double>());
    }
  }

  void PredictNamesTheFileItCannotRead() {
    const fs::path out = run().dir / "predicted-errors";
    const fs::path missing = run().dir / "no-such.png";
    ProcessResult r = exprun(
        {"predict", "--checkpoint", run().best.string(), missing.string(), "--out", out.string()});
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_CONTAINS(r.err, missing.string() + ": no such image file");
    expect_no_crash(r);

    const fs::path text = run().dir / "notes.png";
    test::write_text(text, "not an image");
    r = exprun(
        {"predict", "--checkpoint", run().best.string(), text.string(), "--out", out.string()});
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_CONTAINS(r.err, "cannot read image " + text.string() + ": OpenCV cannot decode it");
    expect_no_crash(r);

    const fs::path junk = run().dir / "junk2.pt";
    test::write_text(junk, "not a checkpoint");
    r = exprun(
        {"predict", "--checkpoint", junk.string(), run().grey_png.string(), "--out", out.string()});
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_CONTAINS(r.err, "checkpoint " + junk.string() + " is ");
    expect_no_crash(r);

    r = exprun({"predict", "--checkpoint", run().best.string(), run().grey_png.string()});
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_CONTAINS(r.err, "--out");

    // A folder exists: it is not "no such image file".
    r = exprun({"predict", "--checkpoint", run().best.string(), run().dir.path().string(), "--out",
                out.string()});
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_CONTAINS(r.err, run().dir.path().string() + ": not a regular file (a folder)");
  }

  // A file name that is not UTF-8 (Latin-1 "rontgen" with an o-umlaut) ended predict with the
  // JSON library's "invalid UTF-8 byte", naming no file and writing nothing more.
  void PredictWritesJsonForAFileNameThatIsNotUtf8() {
    const fs::path out = run().dir / "predicted-latin1";
    const fs::path latin1 = run().dir / "r\xf6ntgen.png";
    fs::copy_file(run().grey_png, latin1);
    const ProcessResult r = exprun({"predict", "--checkpoint", run().best.string(), latin1.string(),
                                    run().grey_png.string(), "--out", out.string()});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    const json written = json::parse(test::read_text(out / "r\xf6ntgen.json"));
    EXPECT_EQ(written["ceph_id"], "r\xef\xbf\xbdntgen") << "U+FFFD in place of the bad byte";
    EXPECT_TRUE(fs::exists(out / (run().grey_png.stem().string() + ".json")));
    fs::remove(latin1);
  }
};

// Each ctest process trains the tiny model once (about 20 s), so the checks share two tests.
TEST_F(PredictEvalTest, EvalScoresLikeValidationAndRejectsForeignCheckpoints) {
  EvalOnTheValidationSplitReproducesTheRunsOwnNumbers();
  EvalOnTheTestSplitWithDarkAgreesWithPredict();
  EvalRejectsACheckpointOfAnotherExperimentStageOrModel();
  EvalRefusesAReportPathThatWouldLoseWeightsOrCannotBeWritten();
}

TEST_F(PredictEvalTest, PredictWritesAarizJsonAndOverlaysAndNamesUnreadableFiles) {
  PredictWritesAarizJsonThatTheAarizReaderLoadsBack();
  PredictNamesTheFileItCannotRead();
  PredictWritesJsonForAFileNameThatIsNotUtf8();
}

// The overlay drawn at known positions (a synthetic film's ground truth, and the same film
// enlarged to the ISBI size): every landmark's marker centre has that landmark's colour, and
// markers and labels grow with the image.
TEST(PredictOverlay, OverlayMarksEveryLandmarkInItsOwnColour) {
  const Registry& registry = test::built_plugins();
  const auto params =
      sdk::Params::resolve(registry.schema(sdk::PluginKind::Dataset, "synthetic_ceph"), {});
  const sdk::Sample sample =
      registry.make<sdk::Dataset>("synthetic_ceph", params, {"test", 3})->get(0);
  const auto& landmarks = sdk::aariz_landmarks();
  int previous_coloured = 0;
  for (double scale : {1.0, 4.0}) {
    SCOPED_TRACE("scale " + std::to_string(scale));
    cv::Mat bgr = drawable_image(sample.image);
    cv::resize(bgr, bgr, cv::Size(), scale, scale, cv::INTER_LINEAR);
    const torch::Tensor points = (sample.landmarks + 0.5) * scale - 0.5;
    draw_landmarks(bgr, landmarks, points);
    int own_colour = 0;
    for (std::size_t j = 0; j < landmarks.size(); ++j) {
      const auto i = static_cast<std::int64_t>(j);
      const auto p = bgr.at<cv::Vec3b>(static_cast<int>(std::lround(points[i][1].item<double>())),
                                       static_cast<int>(std::lround(points[i][0].item<double>())));
      const cv::Scalar want = landmark_colour(j, landmarks.size());
      if (std::abs(p[0] - want[0]) + std::abs(p[1] - want[1]) + std::abs(p[2] - want[2]) < 30)
        ++own_colour;
    }
    // Close landmarks (the incisor tips, N and N`) may cover each other's centre.
    EXPECT_GE(own_colour, 24);
    const int coloured = coloured_pixels(bgr);
    EXPECT_GT(coloured, static_cast<int>(29 * 20 * scale * scale));
    EXPECT_GT(coloured, previous_coloured);
    previous_coloured = coloured;
  }
}

}  // namespace
}  // namespace exprun
