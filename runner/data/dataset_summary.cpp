#include "data/dataset_summary.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>

#include "util/text.hpp"

namespace exprun {
namespace {

std::string image_kind(const torch::Tensor& image) {
  const bool colour = image.dim() == 3 && image.size(2) > 1;
  std::string depth;
  switch (image.scalar_type()) {
    case torch::kUInt8:
      depth = "8-bit";
      break;
    case torch::kInt16:
    case torch::kInt32:
      depth = "16-bit";
      break;
    case torch::kFloat32:
      depth = "float";
      break;
    default:
      depth = c10::toString(image.scalar_type());
  }
  return depth + (colour ? " colour" : " grey");
}

constexpr std::size_t kOutsideExamples = 5;

void keep_first_examples(std::vector<std::string>& examples) {
  std::sort(examples.begin(), examples.end());
  if (examples.size() > kOutsideExamples) examples.resize(kOutsideExamples);
}

void add_sample(DatasetSummary& s, const sdk::Sample& sample,
                const std::vector<sdk::LandmarkInfo>& landmarks) {
  const std::int64_t h = sample.image.size(0), w = sample.image.size(1);
  if (s.count == 0) {
    s.min_width = s.max_width = w;
    s.min_height = s.max_height = h;
  }
  s.min_width = std::min(s.min_width, w);
  s.max_width = std::max(s.max_width, w);
  s.min_height = std::min(s.min_height, h);
  s.max_height = std::max(s.max_height, h);
  ++s.count;
  ++s.image_kinds[image_kind(sample.image)];
  GroupSummary& g = s.groups[sample.group];
  if (g.count == 0) g.min_mm_per_pixel = g.max_mm_per_pixel = sample.mm_per_pixel;
  g.min_mm_per_pixel = std::min(g.min_mm_per_pixel, sample.mm_per_pixel);
  g.max_mm_per_pixel = std::max(g.max_mm_per_pixel, sample.mm_per_pixel);
  ++g.count;
  for (const auto& [key, value] : sample.extra) ++s.extra[key][value];
  const auto points = sample.landmarks.to(torch::kFloat64).contiguous();
  auto acc = points.accessor<double, 2>();
  for (std::int64_t k = 0; k < points.size(0); ++k) {
    const double x = acc[k][0], y = acc[k][1];
    if (x >= -0.5 && y >= -0.5 && x <= w - 0.5 && y <= h - 0.5) continue;
    ++s.landmarks_outside;
    const std::string symbol = static_cast<std::size_t>(k) < landmarks.size()
                                   ? " (" + landmarks[static_cast<std::size_t>(k)].symbol + ")"
                                   : "";
    s.outside_examples.push_back(sample.id + ": landmark " + std::to_string(k + 1) + symbol +
                                 " at (" + format_number(x) + ", " + format_number(y) + ") in " +
                                 std::to_string(w) + "x" + std::to_string(h));
    keep_first_examples(s.outside_examples);
  }
}

void merge(DatasetSummary& into, const DatasetSummary& part) {
  if (part.count == 0) return;
  if (into.count == 0) {
    into.min_width = part.min_width;
    into.max_width = part.max_width;
    into.min_height = part.min_height;
    into.max_height = part.max_height;
  }
  into.min_width = std::min(into.min_width, part.min_width);
  into.max_width = std::max(into.max_width, part.max_width);
  into.min_height = std::min(into.min_height, part.min_height);
  into.max_height = std::max(into.max_height, part.max_height);
  into.count += part.count;
  for (const auto& [kind, n] : part.image_kinds) into.image_kinds[kind] += n;
  for (const auto& [name, g] : part.groups) {
    GroupSummary& t = into.groups[name];
    if (t.count == 0) t = GroupSummary{0, g.min_mm_per_pixel, g.max_mm_per_pixel};
    t.min_mm_per_pixel = std::min(t.min_mm_per_pixel, g.min_mm_per_pixel);
    t.max_mm_per_pixel = std::max(t.max_mm_per_pixel, g.max_mm_per_pixel);
    t.count += g.count;
  }
  for (const auto& [key, values] : part.extra)
    for (const auto& [value, n] : values) into.extra[key][value] += n;
  into.landmarks_outside += part.landmarks_outside;
  into.outside_examples.insert(into.outside_examples.end(), part.outside_examples.begin(),
                               part.outside_examples.end());
  keep_first_examples(into.outside_examples);
}

}  // namespace

DatasetSummary summarize_dataset(const sdk::Dataset& dataset, const std::string& split,
                                 unsigned threads) {
  const std::size_t n = dataset.size();
  threads =
      std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(std::max<std::size_t>(n, 1))));
  std::vector<DatasetSummary> parts(threads);
  const std::vector<sdk::LandmarkInfo> landmarks = dataset.landmarks();
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto work = [&](unsigned t) {
    for (std::size_t i = next++; i < n; i = next++) {
      try {
        add_sample(parts[t], dataset.get(i), landmarks);
      } catch (...) {
        std::lock_guard lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        next = n;
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& thread : pool) thread.join();
  if (failure) std::rethrow_exception(failure);
  DatasetSummary out;
  for (const auto& part : parts) merge(out, part);
  out.split = split;
  out.skipped = dataset.skipped();
  return out;
}

std::string format_summary(const DatasetSummary& s) {
  std::string text;
  char line[512];
  auto range = [](std::int64_t lo, std::int64_t hi) {
    return lo == hi ? std::to_string(lo) : std::to_string(lo) + ".." + std::to_string(hi);
  };
  text += "  images      " + std::to_string(s.count) + ", width " +
          range(s.min_width, s.max_width) + ", height " + range(s.min_height, s.max_height) + "\n";
  std::vector<std::string> kinds;
  for (const auto& [kind, n] : s.image_kinds) kinds.push_back(kind + " " + std::to_string(n));
  text += "  pixels      " + join(kinds, ", ") + "\n";
  for (const auto& [name, g] : s.groups) {
    const std::string range =
        g.min_mm_per_pixel == g.max_mm_per_pixel
            ? format_number(g.min_mm_per_pixel)
            : format_number(g.min_mm_per_pixel) + ".." + format_number(g.max_mm_per_pixel);
    std::snprintf(line, sizeof line, "  group       %-16s %zu images, %s mm/px\n",
                  name.empty() ? "(none)" : name.c_str(), g.count, range.c_str());
    text += line;
  }
  for (const auto& [key, values] : s.extra) {
    std::vector<std::string> counts;
    for (const auto& [value, n] : values) counts.push_back(value + ": " + std::to_string(n));
    text += "  " + key + std::string(key.size() < 12 ? 12 - key.size() : 1, ' ') +
            join(counts, ", ") + "\n";
  }
  if (s.landmarks_outside > 0) {
    text += "  warning     " + std::to_string(s.landmarks_outside) +
            " landmark(s) lie outside their image" +
            (s.landmarks_outside > s.outside_examples.size() ? ", the first by id" : "") + ":\n";
    for (const auto& example : s.outside_examples) text += "    " + example + "\n";
  }
  text += "  skipped     " + std::to_string(s.skipped.size()) + " file(s)\n";
  for (const auto& skip : s.skipped) text += "    " + skip + "\n";
  return text;
}

}  // namespace exprun
