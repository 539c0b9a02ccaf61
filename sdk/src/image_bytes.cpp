#include "exprun/sdk/image_bytes.hpp"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <stdexcept>

namespace exprun::sdk {
namespace fs = std::filesystem;

namespace {

std::uint64_t byte(const std::string& b, std::size_t i) { return static_cast<unsigned char>(b[i]); }
std::uint64_t be16(const std::string& b, std::size_t i) { return byte(b, i) << 8 | byte(b, i + 1); }
std::uint64_t be32(const std::string& b, std::size_t i) {
  return be16(b, i) << 16 | be16(b, i + 2);
}
std::uint64_t le16(const std::string& b, std::size_t i) { return byte(b, i) | byte(b, i + 1) << 8; }
std::uint64_t le32(const std::string& b, std::size_t i) {
  return le16(b, i) | le16(b, i + 2) << 16;
}

std::string truncated(const std::string& format, const std::string& end, std::size_t size) {
  return "the " + format + " data ends before its " + end + " (the file is truncated at " +
         std::to_string(size) + " bytes, or damaged)";
}

// Chunks: length (4 bytes), type (4), data, CRC (4); IHDR first, IEND last.
ImageHeader png(const std::string& b) {
  ImageHeader h{"png"};
  const std::size_t n = b.size();
  for (std::size_t pos = 8, index = 0;; ++index) {
    if (pos + 8 > n) {
      h.damage = truncated("PNG", "IEND chunk", n);
      return h;
    }
    const std::uint64_t length = be32(b, pos);
    const std::string type = b.substr(pos + 4, 4);
    if (index == 0) {
      if (type != "IHDR" || length < 8) {
        h.damage = "the PNG data does not start with an IHDR chunk (damaged)";
        return h;
      }
      if (pos + 16 <= n) {
        h.width = static_cast<std::int64_t>(be32(b, pos + 8));
        h.height = static_cast<std::int64_t>(be32(b, pos + 12));
      }
    }
    if (pos + 12 + length > n) {
      h.damage = truncated("PNG", "IEND chunk", n);
      return h;
    }
    if (type == "IEND") return h;
    pos += 12 + length;
  }
}

bool is_start_of_frame(std::uint64_t marker) {
  return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
}

// Marker segments (FF xx, a 2-byte length, payload); after each start of scan (FF DA) the
// entropy-coded data runs to the next marker, in which FF is followed by 00 (a stuffed byte)
// or a restart marker (D0-D7). The image ends at the end-of-image marker (FF D9); bytes after
// it are ignored, as decoders do.
ImageHeader jpeg(const std::string& b) {
  ImageHeader h{"jpeg"};
  const std::size_t n = b.size();
  const std::string ended = truncated("JPEG", "end-of-image marker", n);
  std::size_t pos = 2;
  for (;;) {
    if (pos >= n) {
      h.damage = ended;
      return h;
    }
    if (byte(b, pos) != 0xFF) {
      h.damage = "the JPEG data has no marker where one belongs (byte " + std::to_string(pos) +
                 "; damaged)";
      return h;
    }
    while (pos < n && byte(b, pos) == 0xFF) ++pos;  // fill bytes
    if (pos >= n) {
      h.damage = ended;
      return h;
    }
    const std::uint64_t marker = byte(b, pos++);
    if (marker == 0xD9) return h;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no payload
    if (pos + 2 > n) {
      h.damage = ended;
      return h;
    }
    const std::uint64_t length = be16(b, pos);
    if (marker == 0x00 || length < 2) {
      h.damage =
          "the JPEG data has a malformed marker at byte " + std::to_string(pos - 1) + " (damaged)";
      return h;
    }
    if (pos + length > n) {
      h.damage = ended;
      return h;
    }
    if (is_start_of_frame(marker) && length >= 7 && h.width == 0) {
      h.height = static_cast<std::int64_t>(be16(b, pos + 3));
      h.width = static_cast<std::int64_t>(be16(b, pos + 5));
    }
    pos += length;
    if (marker != 0xDA) continue;
    for (;;) {
      if (pos + 1 >= n) {
        h.damage = ended;
        return h;
      }
      if (byte(b, pos) == 0xFF) {
        const std::uint64_t next = byte(b, pos + 1);
        if (next != 0x00 && !(next >= 0xD0 && next <= 0xD7)) break;
        pos += 2;
      } else {
        ++pos;
      }
    }
  }
}

// File header (14 bytes: "BM", file size, reserved, pixel offset), then an info header whose
// first field is its own size: 12 bytes (OS/2: 16-bit width and height) or 16 and more
// (32-bit width and height; a negative height means top-down rows).
ImageHeader bmp(const std::string& b) {
  ImageHeader h{"bmp"};
  const std::size_t n = b.size();
  const std::string ended = "the BMP data ends inside its header (the file is truncated at " +
                            std::to_string(n) + " bytes, or damaged)";
  if (n < 18) {
    h.damage = ended;
    return h;
  }
  const std::uint64_t offset = le32(b, 10);
  const std::uint64_t info = le32(b, 14);
  std::uint64_t bits = 0, compression = 0, image_size = 0;
  if (info == 12) {
    if (n < 26) {
      h.damage = ended;
      return h;
    }
    h.width = static_cast<std::int64_t>(le16(b, 18));
    h.height = static_cast<std::int64_t>(le16(b, 20));
    bits = le16(b, 24);
  } else if (info >= 16) {
    if (n < 14 + std::min<std::uint64_t>(info, 40)) {
      h.damage = ended;
      return h;
    }
    h.width = static_cast<std::int32_t>(le32(b, 18));
    const std::int64_t height = static_cast<std::int32_t>(le32(b, 22));
    h.height = height < 0 ? -height : height;
    bits = le16(b, 28);
    if (info >= 20) compression = le32(b, 30);
    if (info >= 24) image_size = le32(b, 34);
  } else {
    h.damage = "the BMP header has an unknown size (" + std::to_string(info) + " bytes; damaged)";
    return h;
  }
  if (h.width < 0) {
    h.damage = "the BMP header declares a negative width (damaged)";
    return h;
  }
  // Uncompressed rows are padded to 4 bytes; RLE data is as long as the header says.
  std::uint64_t row = 0, rows = static_cast<std::uint64_t>(h.height);
  if ((compression == 0 || compression == 3 || compression == 6) && bits > 0 && bits <= 64) {
    row = (static_cast<std::uint64_t>(h.width) * bits + 31) / 32 * 4;
  } else if ((compression == 1 || compression == 2) && image_size > 0) {
    row = image_size;
    rows = 1;
  }
  if (row > 0 && (offset > n || rows > (n - offset) / row)) {
    h.damage = "the BMP header declares " + std::to_string(h.width) + "x" +
               std::to_string(h.height) + " pixels of " + std::to_string(bits) +
               " bits from byte " + std::to_string(offset) + ", more than the file's " +
               std::to_string(n) + " bytes hold (the file is truncated, or damaged)";
  }
  return h;
}

std::string read_bytes(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) throw std::runtime_error("the file does not exist");
  if (!fs::is_regular_file(file, ec)) throw std::runtime_error("it is not a regular file");
  const std::uintmax_t size = fs::file_size(file, ec);
  if (ec) throw std::runtime_error("cannot read its size: " + ec.message());
  // Decoders (cv::imdecode) take a buffer whose length is an int.
  if (size > static_cast<std::uintmax_t>(INT32_MAX))
    throw std::runtime_error("the file is larger than 2 GiB");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open it");
  std::string bytes(size, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (static_cast<std::uintmax_t>(in.gcount()) != size)
    throw std::runtime_error("cannot read it (it changed while being read?)");
  return bytes;
}

std::string size_text(std::int64_t width, std::int64_t height) {
  return std::to_string(width) + "x" + std::to_string(height);
}

bool too_large(std::int64_t width, std::int64_t height) {
  return width > kMaxImageSide || height > kMaxImageSide || width * height > kMaxImagePixels;
}

std::string too_large_text(std::int64_t width, std::int64_t height, const char* verb) {
  return std::string("it ") + verb + " " + size_text(width, height) +
         " pixels; exprun reads images of at most " + std::to_string(kMaxImageSide) +
         " pixels a side and " + std::to_string(kMaxImagePixels) + " pixels in all";
}

}  // namespace

ImageHeader read_image_header(const std::string& bytes) {
  if (bytes.rfind("\x89PNG\r\n\x1A\n", 0) == 0) return png(bytes);
  if (bytes.rfind("\xFF\xD8\xFF", 0) == 0) return jpeg(bytes);
  if (bytes.rfind("BM", 0) == 0) return bmp(bytes);
  return {};
}

std::string read_image_bytes(const fs::path& file) {
  try {
    std::string bytes = read_bytes(file);
    if (bytes.empty()) throw std::runtime_error("the file is empty");
    const ImageHeader header = read_image_header(bytes);
    if (too_large(header.width, header.height))
      throw std::runtime_error(too_large_text(header.width, header.height, "declares"));
    if (!header.damage.empty()) throw std::runtime_error(header.damage);
    return bytes;
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read image " + file.string() + ": " + e.what());
  }
}

void check_decoded_image_size(const fs::path& file, std::int64_t width, std::int64_t height) {
  if (too_large(width, height)) {
    throw std::runtime_error("cannot read image " + file.string() + ": " +
                             too_large_text(width, height, "has"));
  }
}

}  // namespace exprun::sdk
