// Reading an image file's bytes so that damage and absurd sizes are errors naming the file,
// before any decoder sees them. OpenCV 4.6 decodes a truncated JPEG without a word (the
// missing rows grey), refuses a truncated PNG or BMP only as "cannot decode" (other versions
// may not refuse it), throws a bare exception for a header declaring billions of pixels, and
// has no call that reads only the header. So the size an image declares and whether its data
// is complete are read from the bytes here, by hand. Plain bytes in and out, so the SDK needs
// no image library; image_decode.hpp adds the OpenCV step for those who link OpenCV.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace exprun::sdk {

// The largest image read: a cephalogram is about 2000 x 2500 pixels, so anything beyond this
// is a damaged or hostile header, and decoding it would take gigabytes.
constexpr std::int64_t kMaxImageSide = 16384;
constexpr std::int64_t kMaxImagePixels = std::int64_t{1} << 26;  // 64 megapixels

struct ImageHeader {
  std::string format;      // "png", "jpeg", "bmp"; "" for anything else (not checked)
  std::int64_t width = 0;  // as declared; 0 when unknown
  std::int64_t height = 0;
  std::string damage;  // why the data is incomplete or malformed; "" when it looks whole
};

// What the bytes of a PNG, JPEG or BMP file declare, and whether the file holds all of it: a
// PNG up to its IEND chunk, a JPEG up to its end-of-image marker after the last scan, a BMP
// the pixel rows its header declares.
ImageHeader read_image_header(const std::string& bytes);

// The whole file, checked with read_image_header. Throws std::runtime_error "cannot read image
// FILE: why" when the file is missing, empty, damaged or truncated, or declares more than
// kMaxImageSide a side or kMaxImagePixels in all.
std::string read_image_bytes(const std::filesystem::path& file);

// The same size bound for a format whose header is not read (TIFF, ...), once decoded.
void check_decoded_image_size(const std::filesystem::path& file, std::int64_t width,
                              std::int64_t height);

}  // namespace exprun::sdk
