// Reading and writing frames: Y4M (YUV4MPEG2, 8-bit 4:2:0 or 4:4:4) in and out, raw RGB24 frames
// in, PNG out. Frames are RGB24, (T, H, W, 3) row-major.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "status.h"

namespace nbp::rt {

struct Frames {
  int64_t count = 0, height = 0, width = 0;
  int64_t fps_num = 8, fps_den = 1;
  std::vector<uint8_t> rgb;  // count * height * width * 3
};

// Writes C420jpeg (full-range BT.601) Y4M; chroma of odd sizes rounds up.
Status write_y4m(const std::string& path, const Frames& f);
// Reads an 8-bit Y4M (C420jpeg, C420, C420mpeg2, C420paldv, C444 or mono) into RGB24.
Status read_y4m(const std::string& path, Frames* out);
// Raw RGB24 frames of the given size back to back; the frame count is the file size's quotient.
Status read_raw_rgb(const std::string& path, int64_t height, int64_t width, Frames* out);
// One RGB PNG per frame: <prefix>_<frame:03>.png.
Status write_pngs(const std::string& prefix, const Frames& f);

// video (3, T, H, W) float in [-1, 1] <-> frames.
void video_to_frames(const float* video, int64_t t, int64_t h, int64_t w, Frames* out);
void frames_to_video(const Frames& f, int64_t first, int64_t count, float* video);

}  // namespace nbp::rt
