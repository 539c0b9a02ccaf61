// Dataset `synthetic_ceph`: lateral-cephalogram-like images generated from a seed, with the
// 29 Aariz landmarks. For trying exprun without data, for tests, and for the quickstart.
// Each sample varies anatomy, pose (rotation, scale, shift), contrast, blur and noise, so a
// landmark's position can only be found by looking at the image.
#include <exprun/sdk/sdk.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>

#include "anatomy.hpp"
#include "canvas.hpp"
#include "skull.hpp"

namespace {

using namespace exprun::sdk;
using namespace exprun::synthetic_ceph;

constexpr double kPi = 3.14159265358979323846;

struct Machine {
  const char* name;
  int width, height;
  double mm_per_pixel;
};
// Two simulated X-ray machines, so that per-group metrics and mm conversion have something to
// do. Both see about 195 x 240 mm.
constexpr Machine kMachines[] = {{"synth_a", 480, 600, 0.4}, {"synth_b", 440, 540, 0.44}};

// The skull point placed at the image centre before the pose shift: the middle of the face,
// so that every landmark stays inside the field of view under the largest pose.
constexpr Vec2 kViewCentreMm{35, 45};

std::uint64_t split_code(const std::string& split) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char ch : split) h = (h ^ ch) * 1099511628211ULL;
  return h;
}

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

class SyntheticCeph : public Dataset {
 public:
  static constexpr const char* kName = "synthetic_ceph";
  static constexpr const char* kSummary =
      "generated lateral cephalograms with the 29 Aariz landmarks (no data needed)";

  // Every film is kept in memory once drawn (a few hundred kB each): a bound well above any
  // real release, and below what a machine holds.
  static constexpr std::int64_t kMaxCount = 100000;

  static ParamSchema schema() {
    return ParamSchema()
        .add_int("train_count", 200, "samples in the split named train")
        .min(0)
        .max(kMaxCount)
        .add_int("valid_count", 50, "samples in the split named valid (or val)")
        .min(0)
        .max(kMaxCount)
        .add_int("test_count", 50, "samples in the split named test")
        .min(0)
        .max(kMaxCount)
        .add_int("seed", 0, "combined with the experiment seed and the split name")
        .min(0)
        .add_float("rotation_deg", 10.0, "head rotation drawn from +-this many degrees")
        .min(0.0)
        .max(45.0)
        .add_float("scale_jitter", 0.1, "magnification drawn from 1 +- this")
        .min(0.0)
        .max(0.3)
        .add_float("shift_fraction", 0.06, "head shift drawn from +- this fraction of the image")
        .min(0.0)
        .max(0.1)
        .add_float("noise", 0.04, "typical standard deviation of the added noise (intensity 0..1)")
        .min(0.0)
        .max(0.5)
        .add_float("blur", 1.0, "largest Gaussian blur sigma in pixels")
        .min(0.0)
        .max(5.0)
        .add_float("anatomy_jitter_mm", 1.5, "independent variation of each landmark in mm")
        .min(0.0)
        .max(4.0);
  }

  SyntheticCeph(const Params& p, const DatasetContext& context)
      : rotation_deg_(p.get_float("rotation_deg")),
        scale_jitter_(p.get_float("scale_jitter")),
        shift_fraction_(p.get_float("shift_fraction")),
        noise_(p.get_float("noise")),
        blur_(p.get_float("blur")),
        jitter_mm_(p.get_float("anatomy_jitter_mm")) {
    const std::string& split = context.split;
    std::int64_t count = 0;
    if (split == "train") {
      count = p.get_int("train_count");
    } else if (split == "valid" || split == "val" || split == "validation") {
      count = p.get_int("valid_count");
    } else if (split == "test") {
      count = p.get_int("test_count");
    } else {
      throw ParamError("synthetic_ceph has the splits train, valid (or val) and test, not \"" +
                       split + "\"");
    }
    // "val" and "valid" name the same samples.
    split_ = split == "val" || split == "validation" ? "valid" : split;
    seed_ = splitmix(splitmix(static_cast<std::uint64_t>(p.get_int("seed")) ^ context.seed) ^
                     split_code(split_));
    cache_ = std::vector<Entry>(static_cast<std::size_t>(count));
  }

  std::size_t size() const override { return cache_.size(); }

  std::vector<LandmarkInfo> landmarks() const override { return aariz_landmarks(); }

  // Generated once and kept: rendering costs more than a training step of a small model.
  Sample get(std::size_t index) const override {
    const Entry& entry = cache_.at(index);
    std::call_once(*entry.once, [&] { entry.sample = render(index); });
    return entry.sample;
  }

 private:
  struct Entry {
    std::unique_ptr<std::once_flag> once = std::make_unique<std::once_flag>();
    mutable Sample sample;
  };

  double uniform(std::mt19937_64& rng, double lo, double hi) const {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  }

  Sample render(std::size_t index) const {
    std::mt19937_64 rng(splitmix(seed_ + index));
    const Machine& machine = kMachines[rng() % 2];
    const LandmarkSet anatomy = sample_anatomy(rng, jitter_mm_);

    // Pose: rotate and magnify about the view centre, then shift.
    const double angle = uniform(rng, -rotation_deg_, rotation_deg_) * kPi / 180.0;
    const double scale = uniform(rng, 1.0 - scale_jitter_, 1.0 + scale_jitter_);
    const double px_per_mm = scale / machine.mm_per_pixel;
    const Vec2 shift{uniform(rng, -shift_fraction_, shift_fraction_) * machine.width,
                     uniform(rng, -shift_fraction_, shift_fraction_) * machine.height};
    MmToPixels to_px;
    to_px.a = px_per_mm * std::cos(angle);
    to_px.b = -px_per_mm * std::sin(angle);
    to_px.c = px_per_mm * std::sin(angle);
    to_px.d = px_per_mm * std::cos(angle);
    const Vec2 centre{(machine.width - 1) / 2.0, (machine.height - 1) / 2.0};
    to_px.offset = Vec2{0, 0};
    to_px.offset = centre + shift - to_px(kViewCentreMm);

    // Exposure and patient: how dense soft tissue and bone look on this film.
    Densities densities;
    densities.soft_tissue *= uniform(rng, 0.75, 1.25);
    densities.bone *= uniform(rng, 0.8, 1.2);
    densities.cortex *= uniform(rng, 0.7, 1.3);
    densities.enamel *= uniform(rng, 0.85, 1.15);
    Canvas canvas(machine.width, machine.height, to_px);
    draw_skull(canvas, anatomy, densities);
    cv::Mat image = canvas.result();

    // Film: uneven exposure, blur, contrast curve and noise.
    const double background = uniform(rng, 0.02, 0.10);
    const double tilt_x = uniform(rng, -0.08, 0.08), tilt_y = uniform(rng, -0.08, 0.08);
    for (int y = 0; y < image.rows; ++y) {
      auto* row = image.ptr<float>(y);
      for (int x = 0; x < image.cols; ++x) {
        row[x] +=
            static_cast<float>(background + tilt_x * x / image.cols + tilt_y * y / image.rows);
      }
    }
    const double sigma = uniform(rng, 0.0, blur_);
    if (sigma > 0.05) cv::GaussianBlur(image, image, cv::Size(0, 0), sigma);
    const double gain = uniform(rng, 0.8, 1.25), gamma = uniform(rng, 0.75, 1.3);
    cv::Mat noise(image.size(), CV_32F);
    cv::RNG film_rng(rng());
    film_rng.fill(noise, cv::RNG::NORMAL, 0.0, noise_ * uniform(rng, 0.5, 1.5));
    cv::Mat grey(image.size(), CV_8U);
    for (int y = 0; y < image.rows; ++y) {
      const auto* in = image.ptr<float>(y);
      const auto* n = noise.ptr<float>(y);
      auto* out = grey.ptr<std::uint8_t>(y);
      for (int x = 0; x < image.cols; ++x) {
        const double v = std::pow(std::clamp(gain * in[x], 0.0, 1.0), gamma) + n[x];
        out[x] = static_cast<std::uint8_t>(std::lround(255.0 * std::clamp(v, 0.0, 1.0)));
      }
    }

    Sample sample;
    sample.image = torch::from_blob(grey.data, {grey.rows, grey.cols}, torch::kUInt8).clone();
    sample.landmarks = torch::empty({kLandmarkCount, 2}, torch::kFloat64);
    auto acc = sample.landmarks.accessor<double, 2>();
    for (std::size_t i = 0; i < kLandmarkCount; ++i) {
      const Vec2 px = to_px(anatomy[i]);
      acc[static_cast<std::int64_t>(i)][0] = px.x;
      acc[static_cast<std::int64_t>(i)][1] = px.y;
    }
    sample.mm_per_pixel = machine.mm_per_pixel;
    char id[32];
    std::snprintf(id, sizeof id, "%s_%04zu", split_.c_str(), index);
    sample.id = id;
    sample.group = machine.name;
    return sample;
  }

  double rotation_deg_, scale_jitter_, shift_fraction_, noise_, blur_, jitter_mm_;
  std::string split_;
  std::uint64_t seed_ = 0;
  std::vector<Entry> cache_;
};

}  // namespace

EXPRUN_PLUGIN(SyntheticCeph)
