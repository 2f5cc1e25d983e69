#include "video_io.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>

namespace nbp::rt {
namespace {

inline uint8_t clamp_u8(double x) { return static_cast<uint8_t>(std::min(255.0, std::max(0.0, std::round(x)))); }

struct FileCloser { void operator()(std::FILE* f) const { if (f) std::fclose(f); } };
using File = std::unique_ptr<std::FILE, FileCloser>;

Status write_all(std::FILE* f, const void* data, size_t n, const std::string& path) {
  if (n && std::fwrite(data, 1, n, f) != n) return Err(ExitCode::kOutput, path, ": write failed (disk full?)");
  return Status::Ok();
}

uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc = 0) {
  static uint32_t table[256];
  static bool ready = false;
  if (!ready) {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    ready = true;
  }
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

void put_be32(std::vector<uint8_t>* out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out->push_back(static_cast<uint8_t>(v >> s));
}

void png_chunk(std::vector<uint8_t>* out, const char* type, const std::vector<uint8_t>& data) {
  put_be32(out, static_cast<uint32_t>(data.size()));
  const size_t start = out->size();
  out->insert(out->end(), type, type + 4);
  out->insert(out->end(), data.begin(), data.end());
  put_be32(out, crc32(out->data() + start, out->size() - start));
}

// zlib stream of stored (uncompressed) deflate blocks: valid PNG image data without a compressor.
std::vector<uint8_t> zlib_stored(const std::vector<uint8_t>& raw) {
  std::vector<uint8_t> z = {0x78, 0x01};
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(65535, raw.size() - pos);
    z.push_back(pos + n == raw.size() ? 1 : 0);
    z.push_back(static_cast<uint8_t>(n));
    z.push_back(static_cast<uint8_t>(n >> 8));
    z.push_back(static_cast<uint8_t>(~n));
    z.push_back(static_cast<uint8_t>(~n >> 8));
    z.insert(z.end(), raw.begin() + pos, raw.begin() + pos + n);
    pos += n;
  } while (pos < raw.size());
  uint32_t a = 1, b = 0;
  for (uint8_t c : raw) { a = (a + c) % 65521; b = (b + a) % 65521; }
  put_be32(&z, (b << 16) | a);
  return z;
}

}  // namespace

Status write_y4m(const std::string& path, const Frames& f) {
  File out(std::fopen(path.c_str(), "wb"));
  if (!out) return Err(ExitCode::kOutput, path, ": cannot open for writing (does the folder exist?)");
  const int64_t H = f.height, W = f.width, ch = (H + 1) / 2, cw = (W + 1) / 2;
  std::ostringstream header;
  header << "YUV4MPEG2 W" << W << " H" << H << " F" << f.fps_num << ":" << f.fps_den << " Ip A1:1 C420jpeg XYSCSS=420JPEG\n";
  NBP_RT_TRY(write_all(out.get(), header.str().data(), header.str().size(), path));
  std::vector<uint8_t> y(H * W), u(ch * cw), v(ch * cw);
  std::vector<double> cb(H * W), cr(H * W);
  for (int64_t t = 0; t < f.count; ++t) {
    const uint8_t* rgb = f.rgb.data() + t * H * W * 3;
    for (int64_t i = 0; i < H * W; ++i) {
      const double r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
      y[i] = clamp_u8(0.299 * r + 0.587 * g + 0.114 * b);
      cb[i] = 128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b;
      cr[i] = 128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b;
    }
    for (int64_t i = 0; i < ch; ++i) {
      for (int64_t j = 0; j < cw; ++j) {
        double su = 0, sv = 0;
        int n = 0;
        for (int64_t di = 0; di < 2; ++di) {
          for (int64_t dj = 0; dj < 2; ++dj) {
            const int64_t r = 2 * i + di, c = 2 * j + dj;
            if (r < H && c < W) { su += cb[r * W + c]; sv += cr[r * W + c]; ++n; }
          }
        }
        u[i * cw + j] = clamp_u8(su / n);
        v[i * cw + j] = clamp_u8(sv / n);
      }
    }
    NBP_RT_TRY(write_all(out.get(), "FRAME\n", 6, path));
    NBP_RT_TRY(write_all(out.get(), y.data(), y.size(), path));
    NBP_RT_TRY(write_all(out.get(), u.data(), u.size(), path));
    NBP_RT_TRY(write_all(out.get(), v.data(), v.size(), path));
  }
  if (std::fflush(out.get()) != 0) return Err(ExitCode::kOutput, path, ": write failed (disk full?)");
  return Status::Ok();
}

Status read_y4m(const std::string& path, Frames* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Err(ExitCode::kInput, path, ": cannot open the context video");
  std::string header;
  if (!std::getline(in, header) || header.rfind("YUV4MPEG2", 0) != 0) {
    return Err(ExitCode::kInput, path, ": not a Y4M file (no YUV4MPEG2 header)");
  }
  Frames f;
  std::string chroma = "420jpeg";
  std::istringstream fields(header.substr(9));
  std::string tok;
  while (fields >> tok) {
    const char key = tok[0];
    const std::string val = tok.substr(1);
    if (key == 'W') f.width = std::atoll(val.c_str());
    else if (key == 'H') f.height = std::atoll(val.c_str());
    else if (key == 'C') chroma = val;
    else if (key == 'F') {
      const size_t colon = val.find(':');
      if (colon != std::string::npos) { f.fps_num = std::atoll(val.c_str()); f.fps_den = std::atoll(val.c_str() + colon + 1); }
    }
  }
  if (f.width <= 0 || f.height <= 0) return Err(ExitCode::kInput, path, ": Y4M header lacks a valid W or H");
  const int64_t H = f.height, W = f.width;
  int64_t ch = 0, cw = 0;
  if (chroma.rfind("420", 0) == 0) { ch = (H + 1) / 2; cw = (W + 1) / 2; }
  else if (chroma == "444") { ch = H; cw = W; }
  else if (chroma == "mono") { ch = 0; cw = 0; }
  else return Err(ExitCode::kInput, path, ": Y4M colour space C", chroma, " is not supported (use 8-bit C420jpeg, C420 or C444)");
  std::vector<uint8_t> y(H * W), u(ch * cw), v(ch * cw);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("FRAME", 0) != 0) return Err(ExitCode::kInput, path, ": frame ", f.count, " lacks its FRAME marker");
    in.read(reinterpret_cast<char*>(y.data()), static_cast<std::streamsize>(y.size()));
    in.read(reinterpret_cast<char*>(u.data()), static_cast<std::streamsize>(u.size()));
    in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size()));
    if (!in) return Err(ExitCode::kInput, path, ": frame ", f.count, " is truncated");
    f.rgb.resize((f.count + 1) * H * W * 3);
    uint8_t* rgb = f.rgb.data() + f.count * H * W * 3;
    for (int64_t r = 0; r < H; ++r) {
      for (int64_t c = 0; c < W; ++c) {
        const int64_t ci = ch == H ? r * cw + c : (r / 2) * cw + c / 2;
        const double Y = y[r * W + c], Cb = ch ? u[ci] - 128.0 : 0.0, Cr = ch ? v[ci] - 128.0 : 0.0;
        uint8_t* px = rgb + (r * W + c) * 3;
        px[0] = clamp_u8(Y + 1.402 * Cr);
        px[1] = clamp_u8(Y - 0.344136 * Cb - 0.714136 * Cr);
        px[2] = clamp_u8(Y + 1.772 * Cb);
      }
    }
    ++f.count;
  }
  *out = std::move(f);
  return Status::Ok();
}

Status read_raw_rgb(const std::string& path, int64_t height, int64_t width, Frames* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Err(ExitCode::kInput, path, ": cannot open the context video");
  Frames f;
  f.height = height;
  f.width = width;
  f.rgb.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  const int64_t frame_bytes = height * width * 3;
  if (f.rgb.empty() || static_cast<int64_t>(f.rgb.size()) % frame_bytes != 0) {
    return Err(ExitCode::kInput, path, ": raw RGB24 context must hold whole ", width, "x", height, " frames (", frame_bytes,
               " bytes each), got ", f.rgb.size(), " bytes");
  }
  f.count = static_cast<int64_t>(f.rgb.size()) / frame_bytes;
  *out = std::move(f);
  return Status::Ok();
}

Status write_pngs(const std::string& prefix, const Frames& f) {
  const int64_t H = f.height, W = f.width;
  for (int64_t t = 0; t < f.count; ++t) {
    char suffix[32];
    std::snprintf(suffix, sizeof(suffix), "_%03lld.png", static_cast<long long>(t));
    const std::string path = prefix + suffix;
    std::vector<uint8_t> raw;
    raw.reserve(H * (W * 3 + 1));
    const uint8_t* rgb = f.rgb.data() + t * H * W * 3;
    for (int64_t r = 0; r < H; ++r) {
      raw.push_back(0);  // filter: none
      raw.insert(raw.end(), rgb + r * W * 3, rgb + (r + 1) * W * 3);
    }
    std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    std::vector<uint8_t> ihdr;
    put_be32(&ihdr, static_cast<uint32_t>(W));
    put_be32(&ihdr, static_cast<uint32_t>(H));
    ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit RGB, deflate, no filter, no interlace
    png_chunk(&png, "IHDR", ihdr);
    png_chunk(&png, "IDAT", zlib_stored(raw));
    png_chunk(&png, "IEND", {});
    File out(std::fopen(path.c_str(), "wb"));
    if (!out) return Err(ExitCode::kOutput, path, ": cannot open for writing");
    NBP_RT_TRY(write_all(out.get(), png.data(), png.size(), path));
  }
  return Status::Ok();
}

void video_to_frames(const float* video, int64_t t, int64_t h, int64_t w, Frames* out) {
  out->count = t;
  out->height = h;
  out->width = w;
  out->rgb.resize(t * h * w * 3);
  const int64_t plane = t * h * w;
  for (int64_t i = 0; i < plane; ++i) {
    for (int c = 0; c < 3; ++c) {
      const float x = video[c * plane + i];
      out->rgb[i * 3 + c] = clamp_u8((std::isfinite(x) ? x + 1.0 : 1.0) * 127.5);
    }
  }
}

void frames_to_video(const Frames& f, int64_t first, int64_t count, float* video) {
  const int64_t hw = f.height * f.width, plane = count * hw;
  for (int64_t t = 0; t < count; ++t) {
    const uint8_t* rgb = f.rgb.data() + (first + t) * hw * 3;
    for (int64_t i = 0; i < hw; ++i) {
      for (int c = 0; c < 3; ++c) video[c * plane + t * hw + i] = rgb[i * 3 + c] / 127.5f - 1.0f;
    }
  }
}

}  // namespace nbp::rt
