// Small CPU building blocks for the attention kernels: element loads/stores for the storage types,
// a vectorisable exp2, and register-blocked fp32 tile products that the compiler turns into SIMD
// FMAs (-O3 with the host's vector ISA): plain loops with compile-time trip counts, no intrinsics
// (the tile-product micro-kernel spells its vectors with the GCC/Clang vector extension).
#pragma once

#include <cstdint>
#include <cstring>

#include "common.h"

namespace nbp {
namespace cpu {

constexpr int kTileQ = 64;  // query rows per tile
constexpr int kTileK = 64;  // key columns per tile

// The tile-product micro-kernel keeps a kRowBlock x kPanel block of C in vector registers, plus the
// kPanel / kVecLen vectors of one row of B and a broadcast of A: 24 + 4 + 1 of AVX-512's 32 zmm
// registers, 12 + 2 + 1 of AVX2's (and SSE's or NEON's) 16 vector registers, so that nothing
// spills. (With AVX2 a 3 x 64 block of plain float arrays spilled: 2.4x slower.)
#if defined(__AVX512F__)
constexpr int kVecLen = 16;  // floats per vector register
constexpr int kPanel = 64;   // output columns per micro-kernel call: 4 vectors
#elif defined(__AVX__)
constexpr int kVecLen = 8;
constexpr int kPanel = 16;   // 2 vectors
#else
constexpr int kVecLen = 4;   // SSE2, NEON
constexpr int kPanel = 8;    // 2 vectors
#endif
constexpr int kRowBlock = 6;  // output rows per micro-kernel call

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

// Tile products. One routine covers the three products of the attention kernels:
//   C[m][width] (=|+=) A[m][depth] x B[depth][width]
// B is row-major (row stride ldb). A is row-major (A[r * lda + k]) or, with kTransA, stored
// transposed (A[k * lda + r]); the transposed form lets a product consume a tile that was computed
// in the other orientation without an explicit transpose. The micro-kernel keeps a rows x W block
// of C in registers and, per step of the depth, broadcasts one element of A per row against W
// contiguous elements of B.
#if defined(__GNUC__)
// The GCC/Clang vector extension (not intrinsics): the accumulators are plain vector values that
// stay in registers from the first load to the last store; as a float array, the compiler copies
// them through the stack on the way out, and with AVX2 spills them inside the loop. Loads and
// stores go through the vector type itself (aligned(4): any float address may be read), not
// memcpy, which GCC lowers through the stack for 256-bit vectors.
typedef float VecF __attribute__((vector_size(kVecLen * sizeof(float)), aligned(4)));

template <int R, bool kTransA, bool kAccumulate, int W = kPanel>
inline void gemm_micro(const float* __restrict A, int64_t lda, const float* __restrict B, int64_t ldb,
                       int depth, float* __restrict C, int64_t ldc) {
  static_assert(W % kVecLen == 0, "the panel must be a whole number of vectors");
  constexpr int kVecs = W / kVecLen;
  VecF acc[R][kVecs];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < kVecs; ++v) {
      if constexpr (kAccumulate) acc[i][v] = *reinterpret_cast<const VecF*>(C + i * ldc + kVecLen * v);
      else acc[i][v] = VecF{};
    }
  for (int k = 0; k < depth; ++k) {
    VecF b[kVecs];
    for (int v = 0; v < kVecs; ++v) b[v] = *reinterpret_cast<const VecF*>(B + k * ldb + kVecLen * v);
    for (int i = 0; i < R; ++i) {
      const float a = kTransA ? A[k * lda + i] : A[i * lda + k];
      for (int v = 0; v < kVecs; ++v) acc[i][v] += a * b[v];
    }
  }
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < kVecs; ++v) *reinterpret_cast<VecF*>(C + i * ldc + kVecLen * v) = acc[i][v];
}
#else
template <int R, bool kTransA, bool kAccumulate, int W = kPanel>
inline void gemm_micro(const float* __restrict A, int64_t lda, const float* __restrict B, int64_t ldb,
                       int depth, float* __restrict C, int64_t ldc) {
  // depth >= 1. The first step initialises the accumulators (rather than zero-filling them, which
  // the compiler turns into a memset of a stack copy instead of register moves).
  float acc[R][W];
  for (int i = 0; i < R; ++i) {
    const float a = kTransA ? A[i] : A[i * lda];
    for (int c = 0; c < W; ++c) {
      if constexpr (kAccumulate) acc[i][c] = C[i * ldc + c] + a * B[c];
      else acc[i][c] = a * B[c];
    }
  }
  for (int k = 1; k < depth; ++k) {
    const float* b = B + k * ldb;
    float a[R];
    for (int i = 0; i < R; ++i) a[i] = kTransA ? A[k * lda + i] : A[i * lda + k];
    for (int i = 0; i < R; ++i)
      for (int c = 0; c < W; ++c) acc[i][c] += a[i] * b[c];
  }
  for (int i = 0; i < R; ++i)
    for (int c = 0; c < W; ++c) C[i * ldc + c] = acc[i][c];
}
#endif

// Any m x w block (w < kPanel: the last columns of an odd head size), one row at a time.
template <bool kTransA, bool kAccumulate>
inline void gemm_edge(const float* __restrict A, int64_t lda, const float* __restrict B, int64_t ldb,
                      int depth, float* __restrict C, int64_t ldc, int m, int w) {
  for (int r = 0; r < m; ++r) {
    float acc[kPanel] = {};
    for (int k = 0; k < depth; ++k) {
      const float a = kTransA ? A[k * lda + r] : A[r * lda + k];
      const float* b = B + k * ldb;
      for (int c = 0; c < w; ++c) acc[c] += a * b[c];
    }
    float* crow = C + r * ldc;
    for (int c = 0; c < w; ++c) crow[c] = kAccumulate ? crow[c] + acc[c] : acc[c];
  }
}

// The rows left over after the full kRowBlock blocks (fewer than kRowBlock), dispatched to a
// micro-kernel of exactly that height.
template <bool kTransA, bool kAccumulate, int W, int R = kRowBlock - 1>
inline void gemm_tail(const float* A, int64_t lda, const float* B, int64_t ldb, int depth, float* C,
                      int64_t ldc, int rows) {
  if constexpr (R > 0) {
    if (rows == R) return gemm_micro<R, kTransA, kAccumulate, W>(A, lda, B, ldb, depth, C, ldc);
    gemm_tail<kTransA, kAccumulate, W, R - 1>(A, lda, B, ldb, depth, C, ldc, rows);
  }
}

// One column panel [c0, c0 + W) of C: full kRowBlock-row micro-kernels, then the leftover rows.
template <bool kTransA, bool kAccumulate, int W>
inline void gemm_panel(const float* A, int64_t lda, const float* B, int64_t ldb, int depth, float* C, int64_t ldc,
                       int m, int c0) {
  const int64_t rstep = kTransA ? 1 : lda;  // step between consecutive rows of the logical A
  int r = 0;
  for (; r + kRowBlock <= m; r += kRowBlock)
    gemm_micro<kRowBlock, kTransA, kAccumulate, W>(A + r * rstep, lda, B + c0, ldb, depth, C + r * ldc + c0, ldc);
  gemm_tail<kTransA, kAccumulate, W>(A + r * rstep, lda, B + c0, ldb, depth, C + r * ldc + c0, ldc, m - r);
}

// W: the widest panel the caller wants (kPanel, or 16 for the narrow query tiles of decode steps),
// capped at the ISA's kPanel. Columns left over after the full panels go through 32-, 16- and
// 8-wide micro-kernels where those are whole vectors narrower than the panel (a head size of 32 or
// 96 leaves 32 with AVX-512), and only the last few through gemm_edge.
template <bool kTransA, bool kAccumulate, int W = kPanel>
inline void gemm(const float* A, int64_t lda, const float* B, int64_t ldb, int depth, float* C, int64_t ldc,
                 int m, int width) {
  constexpr int P = W < kPanel ? W : kPanel;
  int c0 = 0;
  for (; c0 + P <= width; c0 += P) gemm_panel<kTransA, kAccumulate, P>(A, lda, B, ldb, depth, C, ldc, m, c0);
  if constexpr (P > 32 && 32 % kVecLen == 0) {
    if (width - c0 >= 32) {
      gemm_panel<kTransA, kAccumulate, 32>(A, lda, B, ldb, depth, C, ldc, m, c0);
      c0 += 32;
    }
  }
  if constexpr (P > 16 && 16 % kVecLen == 0) {
    if (width - c0 >= 16) {
      gemm_panel<kTransA, kAccumulate, 16>(A, lda, B, ldb, depth, C, ldc, m, c0);
      c0 += 16;
    }
  }
  if constexpr (P > 8 && 8 % kVecLen == 0) {
    if (width - c0 >= 8) {
      gemm_panel<kTransA, kAccumulate, 8>(A, lda, B, ldb, depth, C, ldc, m, c0);
      c0 += 8;
    }
  }
  if (c0 < width) gemm_edge<kTransA, kAccumulate>(A, lda, B + c0, ldb, depth, C + c0, ldc, m, width - c0);
}

// C = A x B and C += A x B with A row-major; C += A^T x B with A stored as [depth][m].
template <int W = kPanel>
inline void gemm_nn(const float* A, int64_t lda, const float* B, int64_t ldb, int depth, float* C,
                    int64_t ldc, int m, int width) {
  gemm<false, false, W>(A, lda, B, ldb, depth, C, ldc, m, width);
}
inline void gemm_nn_acc(const float* A, int64_t lda, const float* B, int64_t ldb, int depth, float* C,
                        int64_t ldc, int m, int width) {
  gemm<false, true>(A, lda, B, ldb, depth, C, ldc, m, width);
}
inline void gemm_tn_acc(const float* A, int64_t lda, const float* B, int64_t ldb, int depth, float* C,
                        int64_t ldc, int m, int width) {
  gemm<true, true>(A, lda, B, ldb, depth, C, ldc, m, width);
}

}  // namespace cpu
}  // namespace nbp
