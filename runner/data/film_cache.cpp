#include "data/film_cache.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <opencv2/core/version.hpp>
// Header-only use: nothing to link or to carry at run time.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <thread>
#include <vector>

#include "config/byte_size.hpp"
#include "config/config_error.hpp"
#include "util/dead_process_leftovers.hpp"

namespace exprun {
namespace fs = std::filesystem;
namespace {

constexpr char kFilmMagic[8] = {'E', 'X', 'F', 'I', 'L', 'M', '0', '1'};
// 3: the hash covers the header too (2: XXH3 of the pixels alone; 1: a hash of the project's
// own). A damaged original size would otherwise map every landmark wrongly, unnoticed.
constexpr std::uint32_t kFormatVersion = 3;
// Other processes may fill the same folder: this one counts it again at least this often.
constexpr std::chrono::seconds kRecountAfter{30};
constexpr std::int64_t kDefaultMaxBytes = 20LL << 30;

struct Header {
  char magic[8];
  std::uint32_t version;
  std::uint32_t channels;
  std::int64_t width, height, original_width, original_height;
  std::uint64_t payload_hash;
};

std::string hex(std::uint64_t value) {
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(value));
  return out;
}

// xxHash's XXH3: about 0.1 ms for a cached 768 x 768 film on one core, where the serial
// multiply chain it replaced took 0.5 ms of a 0.9 ms read. Not cryptographic, and need not be:
// a cache entry is only ever read back by the same user.
std::uint64_t hash_bytes(const char* data, std::size_t size) { return XXH3_64bits(data, size); }

// The film's hash: its pixels, seeded with every header field before the hash itself.
std::uint64_t film_hash(const Header& header, const char* pixels, std::size_t bytes) {
  static_assert(sizeof(Header) == 56 && offsetof(Header, payload_hash) == 48, "no padding");
  const std::uint64_t seed = XXH3_64bits(&header, offsetof(Header, payload_hash));
  return XXH3_64bits_withSeed(pixels, bytes, seed);
}

// A temporary film (KEY.film.tmp-PID-THREAD) whose writer no longer runs: a crash's leftover.
bool is_abandoned_temporary(const std::string& name) {
  const auto at = name.rfind(".film.tmp-");
  if (at == std::string::npos) return false;
  const std::string rest = name.substr(at + 10);
  return names_an_ended_process(std::string_view(rest).substr(0, rest.find('-')));
}

std::string hash_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  const std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(),
                                                                       &XXH3_freeState);
  if (!state || XXH3_128bits_reset(state.get()) != XXH_OK) throw std::bad_alloc();
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    XXH3_128bits_update(state.get(), buffer.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) throw std::runtime_error("cannot read " + file.string());
  const XXH128_hash_t digest = XXH3_128bits_digest(state.get());
  return hex(digest.high64) + hex(digest.low64);
}

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

}  // namespace

FilmCacheSettings film_cache_settings_from_environment() {
  FilmCacheSettings settings;
  const std::string dir = environment("EXPRUN_CACHE_DIR");
  if (!dir.empty()) {
    settings.dir = dir;
  } else if (const std::string xdg = environment("XDG_CACHE_HOME"); !xdg.empty()) {
    settings.dir = fs::path(xdg) / "exprun";
  } else if (const std::string home = environment("HOME"); !home.empty()) {
    settings.dir = fs::path(home) / ".cache" / "exprun";
  } else {
    throw ConfigError(
        "data.cache: neither EXPRUN_CACHE_DIR, XDG_CACHE_HOME nor HOME is set, so there is no "
        "place for the decoded-film cache; set EXPRUN_CACHE_DIR or data.cache = false");
  }
  settings.max_bytes = kDefaultMaxBytes;
  if (const std::string size = environment("EXPRUN_CACHE_SIZE"); !size.empty()) {
    const auto bytes = parse_byte_size(size);
    if (!bytes) {
      throw ConfigError("EXPRUN_CACHE_SIZE=" + size +
                        ": expected a size such as 20GiB, 500MiB or a number of bytes");
    }
    settings.max_bytes = *bytes;
  }
  return settings;
}

FilmCache::FilmCache(FilmCacheSettings settings) : settings_(std::move(settings)) {}

fs::path FilmCache::films_dir() const { return settings_.dir / "films"; }

fs::path FilmCache::path_of(const std::string& key) const {
  return films_dir() / key.substr(0, 2) / (key + ".film");
}

std::string FilmCache::key(const fs::path& file, const std::string& reader, std::int64_t width,
                           std::int64_t height) {
  struct stat info {};
  if (::stat(file.c_str(), &info) != 0) {
    throw std::runtime_error("cannot read " + file.string() + ": " + std::strerror(errno));
  }
  const std::int64_t modified_ns =
      static_cast<std::int64_t>(info.st_mtim.tv_sec) * 1000000000LL + info.st_mtim.tv_nsec;
  std::string content;
  {
    std::lock_guard lock(mutex_);
    const auto it = hashes_.find(file.string());
    if (it != hashes_.end() && it->second.size == static_cast<std::uintmax_t>(info.st_size) &&
        it->second.modified_ns == modified_ns && it->second.inode == info.st_ino) {
      content = it->second.hash;
    }
  }
  if (content.empty()) {
    content = hash_file(file);
    std::lock_guard lock(mutex_);
    hashes_[file.string()] = {static_cast<std::uintmax_t>(info.st_size), modified_ns,
                              static_cast<std::uint64_t>(info.st_ino), content};
  }
  const std::string decides =
      reader + ";opencv-" CV_VERSION ";format-" + std::to_string(kFormatVersion);
  return content + "-" + std::to_string(width) + "x" + std::to_string(height) + "-" +
         hex(hash_bytes(decides.data(), decides.size())).substr(0, 8);
}

std::optional<InputFilm> FilmCache::find(const std::string& key, std::int64_t width,
                                         std::int64_t height) {
  keep_within_bound(false);
  const fs::path path = path_of(key);
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(path, ec);
  if (ec || !fs::exists(status)) return std::nullopt;
  // Anything but a whole film of this size (cut short by a crash or a full disk, damaged, or
  // not a file at all: opening a FIFO would block) is made again from the image file, as if
  // never cached. The size is checked before anything is allocated from the header.
  const auto expected_bytes = static_cast<std::uintmax_t>(sizeof(Header)) +
                              static_cast<std::uintmax_t>(width * height) * sizeof(float);
  const bool regular = fs::is_regular_file(status);
  InputFilm film;
  bool whole = false;
  if (regular && width > 0 && height > 0 && fs::file_size(path, ec) == expected_bytes && !ec) {
    std::ifstream in(path, std::ios::binary);
    Header header{};
    in.read(reinterpret_cast<char*>(&header), sizeof header);
    const bool plausible = in && std::memcmp(header.magic, kFilmMagic, sizeof kFilmMagic) == 0 &&
                           header.version == kFormatVersion && header.channels == 1 &&
                           header.width == width && header.height == height &&
                           header.original_width > 0 && header.original_height > 0;
    if (plausible) {
      film.image.create(static_cast<int>(height), static_cast<int>(width), CV_32F);
      const std::size_t bytes = film.image.total() * film.image.elemSize();
      in.read(reinterpret_cast<char*>(film.image.data), static_cast<std::streamsize>(bytes));
      whole = in.gcount() == static_cast<std::streamsize>(bytes) &&
              in.peek() == std::ifstream::traits_type::eof() &&
              film_hash(header, reinterpret_cast<const char*>(film.image.data), bytes) ==
                  header.payload_hash;
      film.original_width = header.original_width;
      film.original_height = header.original_height;
    }
  }
  if (!whole) {
    if (regular || fs::is_fifo(status) || fs::is_symlink(status)) {
      fs::remove(path, ec);
    } else {
      fs::remove_all(path, ec);
    }
    return std::nullopt;
  }
  // Most recently used first when the cache is trimmed.
  fs::last_write_time(path, fs::file_time_type::clock::now(), ec);
  return film;
}

void FilmCache::store(const std::string& key, const InputFilm& film) {
  if (film.image.type() != CV_32F || !film.image.isContinuous()) {
    throw std::logic_error("FilmCache::store: expected a continuous CV_32F image");
  }
  const fs::path path = path_of(key);
  const std::size_t bytes = film.image.total() * film.image.elemSize();
  Header header{};
  std::memcpy(header.magic, kFilmMagic, sizeof kFilmMagic);
  header.version = kFormatVersion;
  header.channels = 1;
  header.width = film.image.cols;
  header.height = film.image.rows;
  header.original_width = film.original_width;
  header.original_height = film.original_height;
  header.payload_hash = film_hash(header, reinterpret_cast<const char*>(film.image.data), bytes);
  // Unique per process and thread: two workers may store the same film at once.
  const fs::path temporary =
      path.string() + ".tmp-" + std::to_string(::getpid()) + "-" +
      std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()));
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(&header), sizeof header);
    out.write(reinterpret_cast<const char*>(film.image.data), static_cast<std::streamsize>(bytes));
    out.close();
    if (!out) {
      fs::remove(temporary, ec);
      warn_once("cannot write to the decoded-film cache in " + films_dir().string() +
                " (full, or not writable); training goes on, decoding every film");
      return;
    }
  }
  fs::rename(temporary, path, ec);
  if (ec) {
    fs::remove(temporary, ec);
    warn_once("cannot write to the decoded-film cache in " + films_dir().string() + ": " +
              ec.message());
    return;
  }
  {
    std::lock_guard lock(mutex_);
    if (bytes_estimate_ >= 0) bytes_estimate_ += static_cast<std::int64_t>(sizeof header + bytes);
  }
  keep_within_bound(true);
}

// The folder is counted at this process's first use (so a bound lowered since the films were
// written applies at once) and again every kRecountAfter (other processes' films count too);
// between counts this process adds what it writes.
void FilmCache::keep_within_bound(bool stored) {
  bool over = false;
  {
    std::lock_guard lock(mutex_);
    if (!stored && bytes_estimate_ >= 0) return;  // reading adds nothing: counted once is enough
    const auto now = std::chrono::steady_clock::now();
    if (bytes_estimate_ < 0 || now - counted_at_ >= kRecountAfter) {
      bytes_estimate_ = 0;
      std::error_code ec;
      for (fs::recursive_directory_iterator it(films_dir(), ec), end; !ec && it != end;
           it.increment(ec)) {
        std::error_code entry_error;
        if (!it->is_regular_file(entry_error)) continue;
        if (is_abandoned_temporary(it->path().filename().string())) {
          // A film a crashed writer never renamed into place: nobody will.
          fs::remove(it->path(), entry_error);
          continue;
        }
        bytes_estimate_ += static_cast<std::int64_t>(it->file_size(entry_error));
      }
      counted_at_ = now;
    }
    over = bytes_estimate_ > settings_.max_bytes;
  }
  if (over) trim();
}

void FilmCache::trim() {
  std::lock_guard lock(mutex_);
  struct Entry {
    fs::file_time_type used;
    fs::path path;
    std::int64_t bytes;
  };
  std::vector<Entry> entries;
  std::int64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(films_dir(), ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code entry_error;
    if (!it->is_regular_file(entry_error)) continue;
    const auto bytes = static_cast<std::int64_t>(it->file_size(entry_error));
    if (it->path().extension() == ".film") {
      entries.push_back({it->last_write_time(entry_error), it->path(), bytes});
      total += bytes;
    } else if (is_abandoned_temporary(it->path().filename().string())) {
      fs::remove(it->path(), entry_error);  // as in keep_within_bound
    } else {
      total += bytes;  // another process's film being written, or a stranger: still disk space
    }
  }
  // Down to 90 %, so that the next few films do not each trigger a scan.
  const std::int64_t target = settings_.max_bytes / 10 * 9;
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.used < b.used; });
  for (const auto& e : entries) {
    if (total <= target) break;
    if (fs::remove(e.path, ec)) {
      total -= e.bytes;
      ++evicted_;
    }
  }
  bytes_estimate_ = total;
}

void FilmCache::warn_once(const std::string& message) {
  if (!warned_.exchange(true)) std::fprintf(stderr, "exprun: warning: %s\n", message.c_str());
}

FilmCache& process_film_cache() {
  static FilmCache cache(film_cache_settings_from_environment());
  return cache;
}

}  // namespace exprun
