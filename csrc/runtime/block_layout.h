// Block-major order (docs/design.md): a latent grid (T', H', W') is cut into blocks (bt, bh, bw); the
// sequence lists blocks in raster order and tokens in raster order inside a block. This is the C++
// twin of nbp_ext.models.BlockLayout, for turning generated sequences into grids and back.
#pragma once

#include <cstdint>

namespace nbp::rt {

struct BlockLayout {
  int64_t grid[3];   // (T', H', W')
  int64_t block[3];  // (bt, bh, bw)

  int64_t block_len() const { return block[0] * block[1] * block[2]; }
  int64_t size() const { return grid[0] * grid[1] * grid[2]; }

  // Raster index into the grid of sequence position s.
  int64_t grid_index(int64_t s) const {
    const int64_t L = block_len();
    const int64_t b = s / L, i = s % L;
    const int64_t nh = grid[1] / block[1], nw = grid[2] / block[2];
    const int64_t bt = b / (nh * nw), bh = (b / nw) % nh, bw = b % nw;
    const int64_t it = i / (block[1] * block[2]), ih = (i / block[2]) % block[1], iw = i % block[2];
    const int64_t t = bt * block[0] + it, h = bh * block[1] + ih, w = bw * block[2] + iw;
    return (t * grid[1] + h) * grid[2] + w;
  }

  // grid[...] <- sequence (one clip).
  void to_grid(const int64_t* seq, int64_t* out) const {
    for (int64_t s = 0; s < size(); ++s) out[grid_index(s)] = seq[s];
  }
  // sequence <- grid (one clip).
  void to_sequence(const int64_t* in, int64_t* seq) const {
    for (int64_t s = 0; s < size(); ++s) seq[s] = in[grid_index(s)];
  }
};

}  // namespace nbp::rt
