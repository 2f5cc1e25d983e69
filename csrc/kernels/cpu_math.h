// Small CPU building blocks for the attention kernels: element loads/stores for the storage types,
// a vectorisable exp2, and register-blocked fp32 tile products that the compiler turns into SIMD
// FMAs (-O3 with the host's vector ISA). Plain loops with compile-time trip counts, no intrinsics.
#pragma once

#include <cstdint>
#include <cstring>

#include "common.h"

namespace nbp {
namespace cpu {

constexpr int kTileQ = 64;  // query rows per tile
constexpr int kTileK = 64;  // key columns per tile
constexpr int kRowBlock = 4;

inline float load_elem(float x) { return x; }
inline float load_elem(BFloat16 x) {
  uint32_t u = static_cast<uint32_t>(x.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float load_elem(Half x) {
#if defined(__FLT16_MAX__)
  _Float16 h;
  std::memcpy(&h, &x.bits, 2);
  return static_cast<float>(h);
#else
  return to_float(x);
#endif
}

template <typename T> inline T store_elem(float x);
template <> inline float store_elem<float>(float x) { return x; }
template <> inline BFloat16 store_elem<BFloat16>(float x) { return to_bfloat16(x); }
template <> inline Half store_elem<Half>(float x) {
#if defined(__FLT16_MAX__)
  const _Float16 h = static_cast<_Float16>(x);
  Half out;
  std::memcpy(&out.bits, &h, 2);
  return out;
#else
  return to_half(x);
#endif
}

// 2^x, accurate to ~2 ulp for x in [-126, 0]; exactly 0 for x <= -127 (and -inf).
inline float exp2_approx(float x) {
  x = x < -127.0f ? -127.0f : x;
  const float magic = 12582912.0f;  // 1.5 * 2^23: rounds to the nearest integer
  const float n = (x + magic) - magic;
  const float f = x - n;            // [-0.5, 0.5]
  float p = 1.525273380405984e-05f;
  p = p * f + 1.5403530393381608e-04f;
  p = p * f + 1.3333558146428443e-03f;
  p = p * f + 9.618129107628477e-03f;
  p = p * f + 5.550410866482158e-02f;
  p = p * f + 2.402265069591007e-01f;
  p = p * f + 6.931471805599453e-01f;
  p = p * f + 1.0f;
  const int32_t e = static_cast<int32_t>(n) + 127;  // 0 for x = -127 -> scale 0
  const uint32_t bits = static_cast<uint32_t>(e) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

// C[m][kTileK] = A[m][depth] (row stride lda) x Bt[depth][kTileK].
inline void gemm_abt(const float* __restrict A, int64_t lda, const float* __restrict Bt, int depth,
                     float* __restrict C, int m) {
  int r = 0;
  for (; r + kRowBlock <= m; r += kRowBlock) {
    float acc[kRowBlock][kTileK] = {};
    const float* a = A + r * lda;
    for (int d = 0; d < depth; ++d) {
      const float* b = Bt + d * kTileK;
      const float a0 = a[d], a1 = a[lda + d], a2 = a[2 * lda + d], a3 = a[3 * lda + d];
#pragma GCC ivdep
      for (int c = 0; c < kTileK; ++c) {
        acc[0][c] += a0 * b[c];
        acc[1][c] += a1 * b[c];
        acc[2][c] += a2 * b[c];
        acc[3][c] += a3 * b[c];
      }
    }
    std::memcpy(C + r * kTileK, acc, sizeof(acc));
  }
  for (; r < m; ++r) {
    float acc[kTileK] = {};
    const float* a = A + r * lda;
    for (int d = 0; d < depth; ++d) {
      const float* b = Bt + d * kTileK;
      const float a0 = a[d];
#pragma GCC ivdep
      for (int c = 0; c < kTileK; ++c) acc[c] += a0 * b[c];
    }
    std::memcpy(C + r * kTileK, acc, sizeof(acc));
  }
}

// C[m][width] (row stride ldc) += A[m][depth] (row stride lda) x B[depth][width] (row stride ldb).
inline void gemm_nn_acc(const float* __restrict A, int64_t lda, const float* __restrict B, int64_t ldb,
                        int depth, float* __restrict C, int64_t ldc, int m, int width) {
  constexpr int kChunk = 64;
  for (int c0 = 0; c0 < width; c0 += kChunk) {
    const int w = width - c0 < kChunk ? width - c0 : kChunk;
    int r = 0;
    if (w == kChunk) {
      for (; r + kRowBlock <= m; r += kRowBlock) {
        float acc[kRowBlock][kChunk];
        for (int i = 0; i < kRowBlock; ++i) std::memcpy(acc[i], C + (r + i) * ldc + c0, sizeof(acc[i]));
        const float* a = A + r * lda;
        for (int k = 0; k < depth; ++k) {
          const float* b = B + k * ldb + c0;
          const float a0 = a[k], a1 = a[lda + k], a2 = a[2 * lda + k], a3 = a[3 * lda + k];
#pragma GCC ivdep
          for (int c = 0; c < kChunk; ++c) {
            acc[0][c] += a0 * b[c];
            acc[1][c] += a1 * b[c];
            acc[2][c] += a2 * b[c];
            acc[3][c] += a3 * b[c];
          }
        }
        for (int i = 0; i < kRowBlock; ++i) std::memcpy(C + (r + i) * ldc + c0, acc[i], sizeof(acc[i]));
      }
    }
    for (; r < m; ++r) {
      float* crow = C + r * ldc + c0;
      const float* a = A + r * lda;
      for (int k = 0; k < depth; ++k) {
        const float* b = B + k * ldb + c0;
        const float a0 = a[k];
#pragma GCC ivdep
        for (int c = 0; c < w; ++c) crow[c] += a0 * b[c];
      }
    }
  }
}

// dst[cols][rows_ld] = src[rows][cols]^T for a tile (rows, cols <= 64).
inline void transpose_tile(const float* __restrict src, int64_t lds, int rows, int cols,
                           float* __restrict dst, int64_t ldd) {
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) dst[c * ldd + r] = src[r * lds + c];
}

}  // namespace cpu
}  // namespace nbp
