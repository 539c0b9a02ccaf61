#include "data/sample_pipeline.hpp"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <random>
#include <stdexcept>

#include "data/heatmap.hpp"
#include "data/image_convert.hpp"
#include "util/one_library_thread.hpp"

namespace exprun {
namespace {

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

double uniform(std::mt19937_64& rng, double half_width) {
  if (half_width <= 0) return 0;
  return std::uniform_real_distribution<double>(-half_width, half_width)(rng);
}

torch::Tensor transform_points(const torch::Tensor& points, const Affine& map) {
  auto out = points.to(torch::kFloat64).clone().contiguous();
  auto p = out.accessor<double, 2>();
  for (std::int64_t i = 0; i < out.size(0); ++i) {
    auto q = map.apply(p[i][0], p[i][1]);
    p[i][0] = q[0];
    p[i][1] = q[1];
  }
  return out;
}

}  // namespace

std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b, std::uint64_t c) {
  return splitmix(splitmix(splitmix(a) ^ b) ^ c);
}

namespace {

// CLAHE on a float image in [0, 1], through an 8-bit copy. The clip limit is a multiple of the
// mean count of the histogram's bins; OpenCV's CLAHE on a 16-bit image spreads each tile over
// 65536 bins, where a pixel or two fills a bin, so that no clip limit up to 100 clipped anything
// at training sizes and every clahe_clip gave the same near-unlimited equalisation. On 256
// bins it has the meaning it has wherever CLAHE is used for augmentation (cv2, albumentations).
void equalise_locally(cv::Mat& image, double clip_limit, int tiles) {
  cv::Mat narrow;
  image.convertTo(narrow, CV_8U, 255.0);
  auto clahe = cv::createCLAHE(clip_limit, cv::Size(tiles, tiles));
  cv::Mat equalised;
  clahe->apply(narrow, equalised);
  equalised.convertTo(image, CV_32F, 1.0 / 255.0);
}

// Each pixel into [0, 1], in place. By hand because OpenCV clamps in two passes (cv::max, then
// cv::min) through a temporary image; the result is the same.
void clamp_to_unit(cv::Mat& image) {
  for (int row = 0; row < image.rows; ++row) {
    float* pixel = image.ptr<float>(row);
    for (int col = 0; col < image.cols; ++col)
      pixel[col] = std::min(std::max(pixel[col], 0.0f), 1.0f);
  }
}

}  // namespace

SamplePipeline::SamplePipeline(PipelineSpec spec) : spec_(std::move(spec)) {
  if (spec_.input_width % spec_.stride != 0 || spec_.input_height % spec_.stride != 0) {
    throw std::runtime_error("data.image_size [" + std::to_string(spec_.input_width) + ", " +
                             std::to_string(spec_.input_height) +
                             "] must be divisible by the model's output stride " +
                             std::to_string(spec_.stride));
  }
}

void SamplePipeline::use_cache(FilmCache* cache, std::string reader, std::int64_t max_memo_bytes) {
  cache_ = cache;
  reader_ = std::move(reader);
  memo_ = cache ? std::make_shared<FilmMemo>(max_memo_bytes) : nullptr;
}

void SamplePipeline::check(const sdk::Sample& sample) const {
  const auto& s = spec_;
  if (!sample.landmarks.defined() || sample.landmarks.dim() != 2 ||
      sample.landmarks.size(0) != s.num_landmarks || sample.landmarks.size(1) != 2) {
    throw std::runtime_error("sample " + sample.id + ": expected " +
                             std::to_string(s.num_landmarks) + " x 2 landmarks");
  }
  if (!(sample.mm_per_pixel > 0)) {
    throw std::runtime_error("sample " + sample.id + ": mm_per_pixel must be positive");
  }
}

InputFilm SamplePipeline::to_input_size(const torch::Tensor& image) const {
  const cv::Mat grey = to_grey_float(image);
  InputFilm film;
  // Area averaging first: a single warp from a 2000-pixel image to 256 would alias.
  cv::resize(grey, film.image,
             cv::Size(static_cast<int>(spec_.input_width), static_cast<int>(spec_.input_height)), 0,
             0, cv::INTER_AREA);
  film.original_width = grey.cols;
  film.original_height = grey.rows;
  return film;
}

PreparedSample SamplePipeline::prepare(const sdk::Dataset& dataset, std::size_t index, bool augment,
                                       std::uint64_t rng_seed, PrepareTimes* times) const {
  using Clock = std::chrono::steady_clock;
  const auto started = Clock::now();
  std::optional<sdk::SampleFile> file;
  if (cache_) file = dataset.get_without_image(index);
  if (!file) {
    const sdk::Sample sample = dataset.get(index);
    if (times) {
      times->read_decode_seconds += std::chrono::duration<double>(Clock::now() - started).count();
    }
    return prepare(sample, augment, rng_seed, times);
  }
  check(file->sample);
  const std::string key =
      cache_->key(file->image_file, reader_, spec_.input_width, spec_.input_height);
  std::optional<InputFilm> film = cache_->find(key, spec_.input_width, spec_.input_height);
  const bool hit = film.has_value();
  auto read = Clock::now();
  if (!hit) {
    // A miss decodes exactly as get() does, so what is stored is what an uncached run uses.
    const sdk::Sample decoded = dataset.get(index);
    read = Clock::now();
    film = to_input_size(decoded.image);
    cache_->store(key, *film);
  }
  if (times) {
    times->read_decode_seconds += std::chrono::duration<double>(read - started).count();
    times->resize_augment_seconds += std::chrono::duration<double>(Clock::now() - read).count();
    ++(hit ? times->cache_hits : times->cache_misses);
  }
  return finish(file->sample, *film, augment, rng_seed, times);
}

PreparedSample SamplePipeline::prepare(const sdk::Sample& sample, bool augment,
                                       std::uint64_t rng_seed, PrepareTimes* times) const {
  using Clock = std::chrono::steady_clock;
  const auto started = Clock::now();
  check(sample);
  const std::optional<ImageKey> key = memo_ ? FilmMemo::key_of(sample.image) : std::nullopt;
  std::optional<InputFilm> film = key ? memo_->find(*key) : std::nullopt;
  const bool kept = film.has_value();
  const auto looked_up = Clock::now();
  if (!kept) {
    film = to_input_size(sample.image);
    if (key) memo_->store(*key, *film);
  }
  if (times) {
    times->read_decode_seconds += std::chrono::duration<double>(looked_up - started).count();
    times->resize_augment_seconds +=
        std::chrono::duration<double>(Clock::now() - looked_up).count();
    if (key) ++(kept ? times->cache_hits : times->cache_misses);
  }
  return finish(sample, *film, augment, rng_seed, times);
}

PreparedSample SamplePipeline::finish(const sdk::Sample& sample, const InputFilm& film,
                                      bool augment, std::uint64_t rng_seed,
                                      PrepareTimes* times) const {
  using Clock = std::chrono::steady_clock;
  const auto started = times ? Clock::now() : Clock::time_point{};
  const OneLibraryThread one_thread;
  const auto& s = spec_;
  const double w0 = static_cast<double>(film.original_width);
  const double h0 = static_cast<double>(film.original_height);
  const auto w1 = static_cast<int>(s.input_width), h1 = static_cast<int>(s.input_height);
  if (film.image.type() != CV_32F || film.image.cols != w1 || film.image.rows != h1) {
    throw std::logic_error("film for " + sample.id + " is not a float image at the input size");
  }
  Affine to_input = resize_map(w0, h0, w1, h1);

  PreparedSample out;
  auto image = torch::empty({1, h1, w1}, torch::kFloat32);
  // The tensor's own storage: the last image step writes the network input there, so that it
  // is not copied again (at 768 x 768 each pass over an image is 2.3 MB of memory traffic).
  cv::Mat pixels(h1, w1, CV_32F, image.data_ptr<float>());
  if (augment && s.augment.enabled) {
    std::mt19937_64 rng(rng_seed);
    const auto& a = s.augment;
    const double rotation = uniform(rng, a.rotation_deg);
    const double scale = 1.0 + uniform(rng, a.scale);
    const double dx = uniform(rng, a.shift) * w1, dy = uniform(rng, a.shift) * h1;
    const double brightness = uniform(rng, a.brightness);
    const double contrast = 1.0 + uniform(rng, a.contrast);
    // Drawn after the older draws, so adding these kept earlier augmentations as they were.
    const double gamma = 1.0 + uniform(rng, a.gamma);
    const bool clahe = std::uniform_real_distribution<double>(0.0, 1.0)(rng) < a.clahe;
    const Affine warp = similarity_about_centre(w1, h1, rotation, scale, dx, dy);
    cv::Mat m = (cv::Mat_<double>(2, 3) << warp.m[0], warp.m[1], warp.m[2], warp.m[3], warp.m[4],
                 warp.m[5]);
    cv::Mat warped;
    cv::warpAffine(film.image, warped, m, film.image.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                   0);
    if (clahe) equalise_locally(warped, a.clahe_clip, static_cast<int>(a.clahe_tiles));
    // `pixels` has the size and type asked for, so convertTo writes into it.
    warped.convertTo(pixels, CV_32F, contrast, 0.5 * (1 - contrast) + brightness);
    clamp_to_unit(pixels);
    if (gamma != 1.0) cv::pow(pixels, gamma, pixels);
    to_input = warp.after(to_input);
  } else {
    film.image.copyTo(pixels);
  }
  if (pixels.data != image.data_ptr()) throw std::logic_error("input written outside its tensor");
  out.image = s.channels == 3 ? image.repeat({3, 1, 1}) : image;
  const auto augmented = times ? Clock::now() : Clock::time_point{};

  auto in_input = transform_points(sample.landmarks, to_input);
  auto in_heatmap = (in_input + 0.5) / static_cast<double>(s.stride) - 0.5;
  out.heatmaps = encode_heatmaps(in_heatmap, heatmap_height(), heatmap_width(), s.sigma);

  out.meta.id = sample.id;
  out.meta.group = sample.group;
  out.meta.mm_per_pixel = sample.mm_per_pixel;
  out.meta.original_width = film.original_width;
  out.meta.original_height = film.original_height;
  out.meta.landmarks = sample.landmarks.to(torch::kFloat64).cpu();
  out.meta.input_to_original = to_input.inverse();
  if (times) {
    times->resize_augment_seconds += std::chrono::duration<double>(augmented - started).count();
    times->target_seconds += std::chrono::duration<double>(Clock::now() - augmented).count();
  }
  return out;
}

Batch SamplePipeline::collate(std::vector<PreparedSample> samples) {
  const OneLibraryThread one_thread;
  std::vector<torch::Tensor> images, heatmaps;
  Batch batch;
  for (auto& s : samples) {
    images.push_back(std::move(s.image));
    heatmaps.push_back(std::move(s.heatmaps));
    batch.meta.push_back(std::move(s.meta));
  }
  batch.images = torch::stack(images);
  batch.heatmaps = torch::stack(heatmaps);
  return batch;
}

Batch SamplePipeline::empty_batch() const {
  Batch batch;
  batch.images = torch::zeros({0, spec_.channels, spec_.input_height, spec_.input_width});
  batch.heatmaps = torch::zeros({0, spec_.num_landmarks, heatmap_height(), heatmap_width()});
  return batch;
}

}  // namespace exprun
