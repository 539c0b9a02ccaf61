#!/usr/bin/env bash
# Packs what exprun needs besides PyTorch for a GPU machine that has PyTorch, CMake, Ninja and
# nvcc but no package registry (docs/gpu-check.md): into .deps/gpu-carry/ (ignored by git),
# which travels with the working tree and which scripts/gpu-check.sh unpacks there.
#
#   - Debian's -dev packages of the header-only and small libraries, as the .deb files
#     themselves (already compressed): Boost headers and program_options, TOML++,
#     nlohmann/json, xxHash, GoogleTest.
#   - OpenCV core, imgproc and imgcodecs built here from Debian's source package, shared,
#     without the optional codecs: Debian's own OpenCV pulls in some 130 libraries (GDAL, GDCM,
#     OpenEXR, ...) worth ~180 MB, this one three libraries and libpng/libjpeg.
#
# Needs what scripts/setup.sh installs plus network access to Debian's archive. Reused when
# .deps/gpu-carry/MANIFEST.txt exists; EXPRUN_REPACK=1 rebuilds.
set -euo pipefail

cd "$(dirname "$0")/.."
deps="$PWD/.deps"
carry="$deps/gpu-carry"
work="$deps/gpu-carry-work"
opencv_version=4.6.0  # Debian 12's, so the carried build matches the CI's

say() { echo "pack-gpu-deps: $*" >&2; }

if [[ -f $carry/MANIFEST.txt && ${EXPRUN_REPACK:-0} == 0 ]]; then
  say "already packed: $carry (EXPRUN_REPACK=1 packs again)"
  exit 0
fi
rm -rf "$carry" && mkdir -p "$carry/debs" "$work"

# Packages by name, versions as this machine's apt knows them (Debian 12's).
debs=(libboost1.74-dev libboost-program-options1.74-dev libboost-program-options1.74.0
  libtomlplusplus-dev libtomlplusplus3 nlohmann-json3-dev libxxhash-dev libgtest-dev libpng16-16
  libjpeg62-turbo)
say "downloading ${debs[*]}"
(cd "$carry/debs" && apt-get download -qq "${debs[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
for p in "${debs[@]}"; do
  compgen -G "$carry/debs/${p}_*.deb" >/dev/null || { say "apt-get download $p failed"; exit 1; }
done

# OpenCV's source from Debian's archive, through a private apt state so that the machine's own
# configuration is untouched: the deb-src twin of each configured Debian source.
src="$work/opencv-$opencv_version"
if [[ ! -d $src ]]; then
  apt_state="$work/apt"
  mkdir -p "$apt_state/lists/partial" "$apt_state/parts"
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] && sed 's/^Types: deb$/Types: deb-src/' "$f" >"$apt_state/parts/$(basename "$f")"
  done
  if [[ -f /etc/apt/sources.list ]]; then
    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >"$apt_state/parts/sources.list"
  fi
  apt_opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt_state/parts"
    -o "Dir::State::Lists=$apt_state/lists")
  say "downloading OpenCV $opencv_version's source (Debian's package)"
  apt-get "${apt_opts[@]}" update -qq
  (cd "$work" && apt-get "${apt_opts[@]}" source --download-only -qq opencv 2>&1 |
    grep -v '^W: Download is performed unsandboxed' >&2 || true)
  orig="$(compgen -G "$work/opencv_${opencv_version}*.orig.tar.xz" | head -1)"
  [[ -n $orig ]] || { say "no OpenCV $opencv_version source came"; exit 1; }
  tar -xJf "$orig" -C "$work"
fi

say "building OpenCV $opencv_version (core, imgproc, imgcodecs)"
prefix="$work/opencv-install"
rm -rf "$prefix"
# Baseline SSE/AVX dispatch as Debian builds it; everything optional off, so the libraries
# need nothing beyond libc, libstdc++, zlib, libpng and libjpeg.
cmake -S "$src" -B "$work/opencv-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$prefix" -DBUILD_LIST=core,imgproc,imgcodecs -DBUILD_SHARED_LIBS=ON \
  -DBUILD_TESTS=OFF -DBUILD_PERF_TESTS=OFF -DBUILD_EXAMPLES=OFF -DBUILD_opencv_apps=OFF \
  -DBUILD_JAVA=OFF -DBUILD_opencv_python3=OFF -DBUILD_opencv_python2=OFF \
  -DWITH_PNG=ON -DWITH_JPEG=ON -DBUILD_PNG=OFF -DBUILD_JPEG=OFF -DBUILD_ZLIB=OFF \
  -DWITH_TIFF=OFF -DWITH_WEBP=OFF -DWITH_OPENJPEG=OFF -DWITH_JASPER=OFF -DWITH_OPENEXR=OFF \
  -DWITH_GDAL=OFF -DWITH_GDCM=OFF -DWITH_IMGCODEC_HDR=ON -DWITH_IMGCODEC_PXM=ON \
  -DWITH_IPP=OFF -DWITH_ITT=OFF -DWITH_OPENCL=OFF -DWITH_LAPACK=OFF -DWITH_EIGEN=OFF \
  -DWITH_PROTOBUF=OFF -DWITH_ADE=OFF -DWITH_QUIRC=OFF -DWITH_CUDA=OFF -DWITH_FFMPEG=OFF \
  -DWITH_GSTREAMER=OFF -DWITH_GTK=OFF -DWITH_QT=OFF -DWITH_V4L=OFF -DWITH_1394=OFF \
  -DWITH_TBB=OFF -DWITH_OPENMP=OFF -DWITH_VA=OFF -DWITH_VA_INTEL=OFF -DWITH_VULKAN=OFF \
  -DWITH_OPENVX=OFF -DWITH_CAROTENE=OFF -DOPENCV_GENERATE_PKGCONFIG=OFF \
  -DCMAKE_INSTALL_RPATH='$ORIGIN' >"$work/opencv-configure.log" 2>&1 ||
  { tail -40 "$work/opencv-configure.log" >&2; exit 1; }
cmake --build "$work/opencv-build" -j "$(nproc)" >"$work/opencv-build.log" 2>&1 ||
  { tail -40 "$work/opencv-build.log" >&2; exit 1; }
cmake --install "$work/opencv-build" >/dev/null
find "$prefix" -name '*.so*' -type f -exec strip --strip-unneeded {} +
rm -rf "$prefix/share/licenses" "$prefix/share/opencv4/"{haarcascades,lbpcascades} 2>/dev/null || true
tar -C "$prefix" -cJf "$carry/opencv-$opencv_version.tar.xz" .

{
  echo "# What scripts/pack-gpu-deps.sh packed on $(date -u +%Y-%m-%dT%H:%MZ), and the sizes"
  (cd "$carry" && find . -type f ! -name MANIFEST.txt -printf '%s\t%p\n' | sort -k2)
  echo "total_bytes	$(du -sb "$carry" | cut -f1)"
} >"$carry/MANIFEST.txt"
say "packed $(du -sh "$carry" | cut -f1) into $carry"
