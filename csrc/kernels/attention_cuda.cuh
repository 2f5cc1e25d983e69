// Block-causal attention on CUDA: device code shared by the per-dtype instantiation files.
//
// Forward (flash-attention-2 style, one CTA per (batch, head, query tile)):
//   fp16 / bf16: tensor cores through nvcuda::wmma (fp32 accumulators). Each warp owns 16 query
//                rows: S = Q K^T, the online softmax and O += P V touch only that warp's rows, so a
//                key tile needs two __syncthreads (K/V loaded, K/V consumed). O lives in fp32 smem.
//   fp32:        SIMT fp32 FMAs (no TF32). Each thread owns 4 query rows x (BN/16) keys of S and
//                4 rows x (Dp/16) columns of O in registers; rows are reduced over 16-lane groups.
// Backward (one CTA per (batch, kv head, key tile), looping over the query heads of the group and
// the query tiles that can see the key tile):
//   delta = rowsum(dO * O) (preprocessing kernel), then per query tile
//   S = Q K^T, dP = dO V^T  ->  P = exp(scale S - lse), dS = P (dP - delta)  ->
//   dV += P^T dO, dK += dS^T Q (accumulated over the loop), dQ += dS K (fp32 atomics, workspace),
//   and a last kernel writes scale * dQ in the storage dtype. dK is scaled once at the end.
//
// Head dims are padded to a compile-time bucket Dp in {32, 64, 128, 256}: loads zero-fill columns
// >= D and rows past the sequence ends, stores skip them.
//
// Visibility: query i sees keys [0, vis_end(i)), vis_end(i) = min(Nk, key_end(q_offset + i)),
// non-decreasing in i. Forward: a query tile [q0, q0 + BM) visits key tiles below vis_end(last
// valid query); a tile with n0 + BN <= vis_end(q0) is visible to every row and skips masking.
// Backward: a key tile [n0, n0 + BN) is seen by the queries i >= first i with key_end > n0 (binary
// search); earlier query tiles are skipped, and fully visible (query, key) tiles skip masking.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "attention.h"

namespace nbp {
namespace cuda_attn {

// ---------------------------------------------------------------------------------------------
// Per-dtype launchers (one definition per attention_cuda_{fwd,bwd}_<dtype>.cu file).
Status forward_fp32(const AttentionParams& p, cudaStream_t stream);
Status forward_fp16(const AttentionParams& p, cudaStream_t stream);
Status forward_bf16(const AttentionParams& p, cudaStream_t stream);
Status backward_fp32(const AttentionParams& p, void* workspace, cudaStream_t stream);
Status backward_fp16(const AttentionParams& p, void* workspace, cudaStream_t stream);
Status backward_bf16(const AttentionParams& p, void* workspace, cudaStream_t stream);

// Backward workspace: delta (B*H*Nq floats), then the fp32 dQ accumulator (B*H*Nq*D floats).
constexpr int64_t kWorkspaceAlign = 256;
inline int64_t align_up(int64_t x, int64_t a) { return (x + a - 1) / a * a; }
inline int64_t workspace_delta_bytes(const AttentionParams& p) {
  return align_up(p.batch * p.heads * p.q_len * static_cast<int64_t>(sizeof(float)), kWorkspaceAlign);
}
inline int64_t workspace_dq_bytes(const AttentionParams& p) {
  return p.batch * p.heads * p.q_len * p.head_dim * static_cast<int64_t>(sizeof(float));
}

// ---------------------------------------------------------------------------------------------
// Constants and storage conversions.

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr int kWarp = 32;

template <typename T> struct is_tensor_core_type : std::false_type {};
template <> struct is_tensor_core_type<__half> : std::true_type {};
template <> struct is_tensor_core_type<__nv_bfloat16> : std::true_type {};

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

constexpr size_t align128(size_t x) { return (x + 127) / 128 * 128; }

// Head-dim bucket: the padded compile-time width a head dim runs with (0: unsupported).
inline int head_dim_bucket(int64_t d) {
  if (d < 1) return 0;
  if (d <= 32) return 32;
  if (d <= 64) return 64;
  if (d <= 128) return 128;
  if (d <= 256) return 256;
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Visibility.

// One past the last key the query with local index i sees, clamped to Nk.
__device__ __forceinline__ int vis_end(const AttentionParams& p, int64_t i) {
  const int64_t e = key_end(p.q_offset + i, p.prefix_len, p.block_size);
  return static_cast<int>(e < p.k_len ? e : p.k_len);
}

// The first local query index that sees key n (keys >= 0): key_end is non-decreasing in the
// position, so binary search. Returns Nq when no query sees it.
__device__ __forceinline__ int first_query_seeing(const AttentionParams& p, int n) {
  int lo = 0, hi = static_cast<int>(p.q_len);
  while (lo < hi) {
    const int mid = lo + (hi - lo) / 2;
    if (key_end(p.q_offset + mid, p.prefix_len, p.block_size) > n) hi = mid; else lo = mid + 1;
  }
  return lo;
}

// ---------------------------------------------------------------------------------------------
// Global <-> shared tiles.

// Whether a tensor can be read 16 bytes at a time: aligned base, every stride and D multiples of
// the vector width. Decided on the host, passed to the kernels.
struct VecFlags {
  bool q = false, k = false, v = false, dout = false;
};

template <typename T>
inline bool can_vectorize(const void* ptr, const Strides4& s, int64_t d) {
  constexpr int64_t vn = 16 / sizeof(T);
  return ptr != nullptr && reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && d % vn == 0 && s.batch % vn == 0 &&
         s.head % vn == 0 && s.seq % vn == 0;
}

// Copies rows [row0, row0 + ROWS) and columns [0, DP) of a row-major (n_rows, d) matrix (rows
// `row_stride` elements apart, starting at src) into shared memory: dst[r * LD + c], or
// dst[c * LD + r] when kTrans. Rows >= n_rows and columns >= d are written as zero. `vec` allows
// 16-byte global loads (see can_vectorize). Every thread of the CTA (NT of them) must call it.
template <typename T, int ROWS, int DP, int LD, int NT, bool kTrans = false>
__device__ __forceinline__ void load_tile(T* __restrict__ dst, const T* __restrict__ src, int64_t row_stride,
                                          int row0, int n_rows, int d, bool vec) {
  constexpr int VN = 16 / static_cast<int>(sizeof(T));
  static_assert(DP % VN == 0, "padded head dim must be a multiple of the vector width");
  if (vec) {
    constexpr int CPR = DP / VN;  // 16-byte chunks per row
    for (int idx = threadIdx.x; idx < ROWS * CPR; idx += NT) {
      const int r = idx / CPR;
      const int c = (idx - r * CPR) * VN;
      const int row = row0 + r;
      uint4 chunk = make_uint4(0u, 0u, 0u, 0u);
      // d % VN == 0, so c < d implies the whole chunk is inside the row.
      if (row < n_rows && c < d) {
        chunk = __ldg(reinterpret_cast<const uint4*>(src + static_cast<int64_t>(row) * row_stride + c));
      }
      if constexpr (!kTrans && LD % VN == 0) {
        *reinterpret_cast<uint4*>(dst + r * LD + c) = chunk;
      } else {
        T e[VN];
        memcpy(e, &chunk, sizeof(chunk));
#pragma unroll
        for (int u = 0; u < VN; ++u) {
          if constexpr (kTrans) dst[(c + u) * LD + r] = e[u];
          else dst[r * LD + c + u] = e[u];
        }
      }
    }
  } else {
    for (int idx = threadIdx.x; idx < ROWS * DP; idx += NT) {
      const int r = idx / DP;
      const int c = idx - r * DP;
      const int row = row0 + r;
      T x = from_f32<T>(0.0f);
      if (row < n_rows && c < d) x = src[static_cast<int64_t>(row) * row_stride + c];
      if constexpr (kTrans) dst[c * LD + r] = x;
      else dst[r * LD + c] = x;
    }
  }
}

// Writes rows [row0, row0 + ROWS) x columns [0, d) of an fp32 smem tile (row stride LD) times
// `mul` to a row-major global matrix in storage type T, skipping rows >= n_rows.
template <typename T, int ROWS, int DP, int LD, int NT>
__device__ __forceinline__ void store_tile(T* __restrict__ dst, int64_t row_stride, const float* __restrict__ src,
                                           int row0, int n_rows, int d, float mul) {
  for (int idx = threadIdx.x; idx < ROWS * DP; idx += NT) {
    const int r = idx / DP;
    const int c = idx - r * DP;
    const int row = row0 + r;
    if (row < n_rows && c < d) dst[static_cast<int64_t>(row) * row_stride + c] = from_f32<T>(src[r * LD + c] * mul);
  }
}

// ---------------------------------------------------------------------------------------------
// Forward, tensor cores (fp16 / bf16).

template <typename T, int DP, int BM_, int BN_>
struct FwdTcCfg {
  static constexpr int BM = BM_, BN = BN_;
  static constexpr int kWarps = BM / 16;
  static constexpr int kThreads = kWarps * kWarp;
  static constexpr int LDT = DP + 8;  // Q, K, V rows (T); multiple of 8 elements for wmma
  static constexpr int LDS = BN + 4;  // S rows (float)
  static constexpr int LDP = BN + 8;  // P rows (T)
  static constexpr int LDO = DP + 4;  // O rows (float)
  static constexpr size_t oQ = 0;
  static constexpr size_t oK = align128(oQ + sizeof(T) * BM * LDT);
  static constexpr size_t oV = align128(oK + sizeof(T) * BN * LDT);
  static constexpr size_t oS = align128(oV + sizeof(T) * BN * LDT);
  static constexpr size_t oP = align128(oS + sizeof(float) * BM * LDS);
  static constexpr size_t oO = align128(oP + sizeof(T) * BM * LDP);
  static constexpr size_t kSmem = align128(oO + sizeof(float) * BM * LDO);
  static_assert(BM % 16 == 0 && BN % 32 == 0 && DP % 16 == 0, "tile shape");
  static_assert(kSmem <= 163 * 1024, "sm_80 shared memory limit");
};

template <typename T, int DP, class Cfg>
__global__ void __launch_bounds__(Cfg::kThreads)
    attn_fwd_tc_kernel(const AttentionParams p, const VecFlags vf) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // wmma with bf16 needs sm_80; the host refuses fp16/bf16 on older devices (kUnsupported).
#else
  namespace wmma = nvcuda::wmma;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, NT = Cfg::kThreads;
  constexpr int LDT = Cfg::LDT, LDS = Cfg::LDS, LDP = Cfg::LDP, LDO = Cfg::LDO;
  extern __shared__ __align__(128) unsigned char smem[];
  T* Qs = reinterpret_cast<T*>(smem + Cfg::oQ);
  T* Ks = reinterpret_cast<T*>(smem + Cfg::oK);
  T* Vs = reinterpret_cast<T*>(smem + Cfg::oV);
  float* Ss = reinterpret_cast<float*>(smem + Cfg::oS);
  T* Ps = reinterpret_cast<T*>(smem + Cfg::oP);
  float* Os = reinterpret_cast<float*>(smem + Cfg::oO);

  const int H = static_cast<int>(p.heads), G = static_cast<int>(p.heads / p.kv_heads);
  const int Nq = static_cast<int>(p.q_len), Nk = static_cast<int>(p.k_len), D = static_cast<int>(p.head_dim);
  const int bh = blockIdx.x;
  const int b = bh / H, h = bh - b * H, hk = h / G;
  const T* qg = static_cast<const T*>(p.q) + b * p.q_stride.batch + h * p.q_stride.head;
  const T* kg = static_cast<const T*>(p.k) + b * p.k_stride.batch + hk * p.k_stride.head;
  const T* vg = static_cast<const T*>(p.v) + b * p.v_stride.batch + hk * p.v_stride.head;
  T* og = static_cast<T*>(p.out) + b * p.o_stride.batch + h * p.o_stride.head;
  const float scale_log2 = p.scale * kLog2e;

  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int row = warp * 16 + (lane >> 1);  // the query row (in the tile) this lane works on
  const int half = lane & 1;                // which half of the row's columns

  const int n_qtiles = (Nq + BM - 1) / BM;
  for (int qt_lin = blockIdx.y; qt_lin < n_qtiles; qt_lin += gridDim.y) {
    const int q0 = (n_qtiles - 1 - qt_lin) * BM;  // heaviest (last) query tiles first
    __syncthreads();  // smem of the previous iteration is no longer read

    load_tile<T, BM, DP, LDT, NT>(Qs, qg, p.q_stride.seq, q0, Nq, D, vf.q);
    for (int idx = threadIdx.x; idx < BM * LDO; idx += NT) Os[idx] = 0.0f;

    const int q_last = min(q0 + BM, Nq) - 1;
    const int kend_row = vis_end(p, min(q0 + row, Nq - 1));  // padding rows copy the last query's
    const int kend_first = vis_end(p, q0);   // every row sees at least [0, kend_first)
    const int n_end = vis_end(p, q_last);    // no row sees a key >= n_end
    float m_run = -INFINITY, l_run = 0.0f;   // running max (log2 units) and sum of this lane's row

    for (int n0 = 0; n0 < n_end; n0 += BN) {
      load_tile<T, BN, DP, LDT, NT>(Ks, kg, p.k_stride.seq, n0, Nk, D, vf.k);
      load_tile<T, BN, DP, LDT, NT>(Vs, vg, p.v_stride.seq, n0, Nk, D, vf.v);
      __syncthreads();  // Q (first tile), O zeroing and K/V visible to every warp

      // S[warp rows] = Q K^T.
#pragma unroll
      for (int nt = 0; nt < BN / 16; ++nt) {
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
        wmma::fill_fragment(acc, 0.0f);
#pragma unroll
        for (int kt = 0; kt < DP / 16; ++kt) {
          wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
          wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> bk;
          wmma::load_matrix_sync(a, Qs + warp * 16 * LDT + kt * 16, LDT);
          wmma::load_matrix_sync(bk, Ks + nt * 16 * LDT + kt * 16, LDT);
          wmma::mma_sync(acc, a, bk, acc);
        }
        wmma::store_matrix_sync(Ss + warp * 16 * LDS + nt * 16, acc, LDS, wmma::mem_row_major);
      }
      __syncwarp();

      // Online softmax on this lane's half row: columns 2j + half.
      const bool full = n0 + BN <= kend_first;
      float s[BN / 2];
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < BN / 2; ++j) {
        const int col = 2 * j + half;
        float x = Ss[row * LDS + col] * scale_log2;
        if (!full && n0 + col >= kend_row) x = -INFINITY;
        s[j] = x;
        mx = fmaxf(mx, x);
      }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      const float m_new = fmaxf(m_run, mx);
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;  // a row with nothing visible yet
      const float alpha = exp2f(m_run - m_use);
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < BN / 2; ++j) {
        const float e = exp2f(s[j] - m_use);
        sum += e;
        Ps[row * LDP + 2 * j + half] = from_f32<T>(e);
      }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      l_run = l_run * alpha + sum;
      m_run = m_new;
#pragma unroll 4
      for (int c = half; c < DP; c += 2) Os[row * LDO + c] *= alpha;
      __syncwarp();

      // O[warp rows] += P V.
#pragma unroll
      for (int dt = 0; dt < DP / 16; ++dt) {
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
        wmma::load_matrix_sync(acc, Os + warp * 16 * LDO + dt * 16, LDO, wmma::mem_row_major);
#pragma unroll
        for (int kt = 0; kt < BN / 16; ++kt) {
          wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
          wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> bv;
          wmma::load_matrix_sync(a, Ps + warp * 16 * LDP + kt * 16, LDP);
          wmma::load_matrix_sync(bv, Vs + kt * 16 * LDT + dt * 16, LDT);
          wmma::mma_sync(acc, a, bv, acc);
        }
        wmma::store_matrix_sync(Os + warp * 16 * LDO + dt * 16, acc, LDO, wmma::mem_row_major);
      }
      __syncthreads();  // K, V consumed before the next tile overwrites them
    }

    // Normalise this lane's half row and write lse; then store the tile.
    __syncwarp();
    const float inv_l = 1.0f / l_run;
#pragma unroll 4
    for (int c = half; c < DP; c += 2) Os[row * LDO + c] *= inv_l;
    if (half == 0 && q0 + row < Nq && p.lse != nullptr) {
      p.lse[static_cast<int64_t>(bh) * Nq + q0 + row] = m_run * kLn2 + logf(l_run);
    }
    __syncthreads();
    store_tile<T, BM, DP, LDO, NT>(og, p.o_stride.seq, Os, q0, Nq, D, 1.0f);
  }
#endif
}

// ---------------------------------------------------------------------------------------------
// Forward, SIMT fp32.

template <int DP, int BM_, int BN_>
struct FwdSimtCfg {
  static constexpr int BM = BM_, BN = BN_;
  static constexpr int kThreads = (BM / 4) * 16;  // 16 lanes per group of 4 rows
  static constexpr int LDQ = DP + 4;   // float4 reads along d
  static constexpr int LDK = BN + 1;   // K stored transposed: Kt[d][key], odd stride
  static constexpr int LDV = DP;
  static constexpr int LDP = BN + 4;   // float4 reads along keys
  static constexpr size_t oQ = 0;
  static constexpr size_t oK = align128(oQ + sizeof(float) * BM * LDQ);
  static constexpr size_t oV = align128(oK + sizeof(float) * DP * LDK);
  static constexpr size_t oP = align128(oV + sizeof(float) * BN * LDV);
  static constexpr size_t kSmem = align128(oP + sizeof(float) * BM * LDP);
  static_assert(BM % 4 == 0 && BN % 16 == 0 && DP % 16 == 0 && kThreads % kWarp == 0, "tile shape");
  static_assert(kSmem <= 163 * 1024, "sm_80 shared memory limit");
};

template <int DP, class Cfg>
__global__ void __launch_bounds__(Cfg::kThreads) attn_fwd_simt_kernel(const AttentionParams p, const VecFlags vf) {
  constexpr int BM = Cfg::BM, BN = Cfg::BN, NT = Cfg::kThreads;
  constexpr int LDQ = Cfg::LDQ, LDK = Cfg::LDK, LDV = Cfg::LDV, LDP = Cfg::LDP;
  constexpr int TJ = BN / 16, TD = DP / 16;
  extern __shared__ __align__(128) unsigned char smem[];
  float* Qs = reinterpret_cast<float*>(smem + Cfg::oQ);
  float* Kt = reinterpret_cast<float*>(smem + Cfg::oK);
  float* Vs = reinterpret_cast<float*>(smem + Cfg::oV);
  float* Ps = reinterpret_cast<float*>(smem + Cfg::oP);

  const int H = static_cast<int>(p.heads), G = static_cast<int>(p.heads / p.kv_heads);
  const int Nq = static_cast<int>(p.q_len), Nk = static_cast<int>(p.k_len), D = static_cast<int>(p.head_dim);
  const int bh = blockIdx.x;
  const int b = bh / H, h = bh - b * H, hk = h / G;
  const float* qg = static_cast<const float*>(p.q) + b * p.q_stride.batch + h * p.q_stride.head;
  const float* kg = static_cast<const float*>(p.k) + b * p.k_stride.batch + hk * p.k_stride.head;
  const float* vg = static_cast<const float*>(p.v) + b * p.v_stride.batch + hk * p.v_stride.head;
  float* og = static_cast<float*>(p.out) + b * p.o_stride.batch + h * p.o_stride.head;
  const float scale_log2 = p.scale * kLog2e;

  // Thread (ty, tx): rows ty*4 + i (i < 4), key columns tx + 16 j, output columns tx + 16 j.
  // The 16 lanes sharing ty sit in one half of a warp, so row reductions use xor shuffles < 16.
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;

  const int n_qtiles = (Nq + BM - 1) / BM;
  for (int qt_lin = blockIdx.y; qt_lin < n_qtiles; qt_lin += gridDim.y) {
    const int q0 = (n_qtiles - 1 - qt_lin) * BM;
    __syncthreads();
    load_tile<float, BM, DP, LDQ, NT>(Qs, qg, p.q_stride.seq, q0, Nq, D, vf.q);

    int kend[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) kend[i] = vis_end(p, min(q0 + ty * 4 + i, Nq - 1));
    const int kend_first = vis_end(p, q0);
    const int n_end = vis_end(p, min(q0 + BM, Nq) - 1);

    float acc[4][TD];
    float m_run[4], l_run[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      m_run[i] = -INFINITY;
      l_run[i] = 0.0f;
#pragma unroll
      for (int j = 0; j < TD; ++j) acc[i][j] = 0.0f;
    }

    for (int n0 = 0; n0 < n_end; n0 += BN) {
      load_tile<float, BN, DP, LDK, NT, true>(Kt, kg, p.k_stride.seq, n0, Nk, D, vf.k);
      load_tile<float, BN, DP, LDV, NT>(Vs, vg, p.v_stride.seq, n0, Nk, D, vf.v);
      __syncthreads();

      float s[4][TJ];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < TJ; ++j) s[i][j] = 0.0f;
#pragma unroll 2
      for (int d = 0; d < DP; d += 4) {
        float qv[4][4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const float4 t = *reinterpret_cast<const float4*>(Qs + (ty * 4 + i) * LDQ + d);
          qv[i][0] = t.x; qv[i][1] = t.y; qv[i][2] = t.z; qv[i][3] = t.w;
        }
#pragma unroll
        for (int dd = 0; dd < 4; ++dd) {
#pragma unroll
          for (int j = 0; j < TJ; ++j) {
            const float kv = Kt[(d + dd) * LDK + tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; ++i) s[i][j] = fmaf(qv[i][dd], kv, s[i][j]);
          }
        }
      }

      const bool full = n0 + BN <= kend_first;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        float mx = -INFINITY;
#pragma unroll
        for (int j = 0; j < TJ; ++j) {
          float x = s[i][j] * scale_log2;
          if (!full && n0 + tx + 16 * j >= kend[i]) x = -INFINITY;
          s[i][j] = x;
          mx = fmaxf(mx, x);
        }
#pragma unroll
        for (int off = 8; off >= 1; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
        const float m_new = fmaxf(m_run[i], mx);
        const float m_use = m_new == -INFINITY ? 0.0f : m_new;
        const float alpha = exp2f(m_run[i] - m_use);
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < TJ; ++j) {
          const float e = exp2f(s[i][j] - m_use);
          sum += e;
          Ps[(ty * 4 + i) * LDP + tx + 16 * j] = e;
        }
#pragma unroll
        for (int off = 8; off >= 1; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
        l_run[i] = l_run[i] * alpha + sum;
        m_run[i] = m_new;
#pragma unroll
        for (int j = 0; j < TD; ++j) acc[i][j] *= alpha;
      }
      __syncthreads();  // P visible

#pragma unroll 2
      for (int c = 0; c < BN; c += 4) {
        float pv[4][4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const float4 t = *reinterpret_cast<const float4*>(Ps + (ty * 4 + i) * LDP + c);
          pv[i][0] = t.x; pv[i][1] = t.y; pv[i][2] = t.z; pv[i][3] = t.w;
        }
#pragma unroll
        for (int cc = 0; cc < 4; ++cc) {
#pragma unroll
          for (int j = 0; j < TD; ++j) {
            const float vv = Vs[(c + cc) * LDV + tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; ++i) acc[i][j] = fmaf(pv[i][cc], vv, acc[i][j]);
          }
        }
      }
      __syncthreads();  // K, V, P consumed
    }

#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int r = q0 + ty * 4 + i;
      if (r >= Nq) continue;
      const float inv_l = 1.0f / l_run[i];
#pragma unroll
      for (int j = 0; j < TD; ++j) {
        const int c = tx + 16 * j;
        if (c < D) og[static_cast<int64_t>(r) * p.o_stride.seq + c] = acc[i][j] * inv_l;
      }
      if (tx == 0 && p.lse != nullptr) p.lse[static_cast<int64_t>(bh) * Nq + r] = m_run[i] * kLn2 + logf(l_run[i]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backward: shared memory layout, the tensor-core and SIMT math policies, and the kernels.

template <typename T, int DP, int BM_, int BN_>
struct BwdCfg {
  static constexpr bool kTC = is_tensor_core_type<T>::value;
  static constexpr int BM = BM_, BN = BN_;
  static constexpr int kWarps = 8;
  static constexpr int kThreads = kWarps * kWarp;
  // Row strides: TC needs multiples of 8 (T) / 4 (float) elements; SIMT uses odd strides so that
  // threads reading different rows at one column hit different banks.
  static constexpr int LDT = kTC ? DP + 8 : DP + 1;  // Q, dO, K, V (T)
  static constexpr int LDS = kTC ? BN + 4 : BN + 1;  // S, dP (float)
  static constexpr int LDP = kTC ? BN + 8 : LDS;     // P, dS (T); fp32 aliases them onto S, dP
  static constexpr int LDST = DP + 4;                // fp32 staging of dK / dV (TC)
  static constexpr size_t oK = 0;
  static constexpr size_t oV = align128(oK + sizeof(T) * BN * LDT);
  static constexpr size_t oQ = align128(oV + sizeof(T) * BN * LDT);
  static constexpr size_t oDO = align128(oQ + sizeof(T) * BM * LDT);
  static constexpr size_t oS = align128(oDO + sizeof(T) * BM * LDT);
  static constexpr size_t oDP = align128(oS + sizeof(float) * BM * LDS);
  static constexpr size_t oEnd1 = align128(oDP + sizeof(float) * BM * LDS);
  // P and dS: separate T buffers for TC; in place over S and dP for fp32 (same thread, same slot).
  static constexpr size_t oP = kTC ? oEnd1 : oS;
  static constexpr size_t oDS = kTC ? align128(oP + sizeof(T) * BM * LDP) : oDP;
  static constexpr size_t oEnd2 = kTC ? align128(oDS + sizeof(T) * BM * LDP) : oEnd1;
  static constexpr size_t oScratch = oEnd2;  // per-warp 16x16 fp32 (TC dQ)
  static constexpr size_t oRow = align128(oScratch + (kTC ? sizeof(float) * 256 * kWarps : 0));
  static constexpr size_t oLse = oRow;                                  // BM floats: lse * log2(e)
  static constexpr size_t oDelta = align128(oLse + sizeof(float) * BM);  // BM floats
  static constexpr size_t oKend = align128(oDelta + sizeof(float) * BM);  // BM ints
  static constexpr size_t kSmem = align128(oKend + sizeof(int) * BM);
  static_assert(BM % 16 == 0 && BN % 16 == 0 && DP % 16 == 0, "tile shape");
  static_assert(kTC || LDP == LDS, "fp32 aliases P onto S");
  static_assert(!kTC || sizeof(float) * BN * LDST <= oK + kSmem, "dK/dV staging fits");
  static_assert(kSmem <= 163 * 1024, "sm_80 shared memory limit");
};

template <typename T>
struct BwdSmem {
  T *K, *V, *Q, *dO, *P, *dS;
  float *S, *dP, *scratch, *lse2, *delta;
  int* kend;
};

// Tensor-core math: dK / dV accumulate in wmma fragments; warp w owns the 16x16 output tiles
// w, w + W, w + 2W, ... of the (BN x DP) grid.
template <typename T, int DP, class Cfg>
struct BwdMathTc {
  static constexpr int BM = Cfg::BM, BN = Cfg::BN, W = Cfg::kWarps;
  static constexpr int LDT = Cfg::LDT, LDS = Cfg::LDS, LDP = Cfg::LDP;
  static constexpr int TM = BM / 16, TN = BN / 16, TD = DP / 16;
  static constexpr int NU = TN * TD / W;
  static_assert((TN * TD) % W == 0, "dK/dV tiles must split evenly over warps");
  using Acc = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>;
  Acc dv[NU], dk[NU];

  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int u = 0; u < NU; ++u) {
      nvcuda::wmma::fill_fragment(dv[u], 0.0f);
      nvcuda::wmma::fill_fragment(dk[u], 0.0f);
    }
  }

  // S = Q K^T and dP = dO V^T, fp32 into smem.
  static __device__ __forceinline__ void scores(const BwdSmem<T>& sm) {
    namespace wmma = nvcuda::wmma;
    const int warp = threadIdx.x / kWarp;
    for (int t = warp; t < 2 * TM * TN; t += W) {
      const bool is_dp = t >= TM * TN;
      const int tt = is_dp ? t - TM * TN : t;
      const int mi = tt / TN, ni = tt - mi * TN;
      const T* A = is_dp ? sm.dO : sm.Q;
      const T* B = is_dp ? sm.V : sm.K;
      float* C = is_dp ? sm.dP : sm.S;
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
#pragma unroll
      for (int kt = 0; kt < TD; ++kt) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> bm;
        wmma::load_matrix_sync(a, A + mi * 16 * LDT + kt * 16, LDT);
        wmma::load_matrix_sync(bm, B + ni * 16 * LDT + kt * 16, LDT);
        wmma::mma_sync(acc, a, bm, acc);
      }
      wmma::store_matrix_sync(C + mi * 16 * LDS + ni * 16, acc, LDS, wmma::mem_row_major);
    }
  }

  // dV += P^T dO, dK += dS^T Q.
  __device__ __forceinline__ void accumulate(const BwdSmem<T>& sm) {
    namespace wmma = nvcuda::wmma;
    const int warp = threadIdx.x / kWarp;
#pragma unroll
    for (int u = 0; u < NU; ++u) {
      const int t = warp + W * u;
      const int kr = t / TD, dc = t - kr * TD;
#pragma unroll
      for (int kq = 0; kq < TM; ++kq) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::col_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> bm;
        // (P^T)[key][query] = P[query][key]: column-major view of P's tile.
        wmma::load_matrix_sync(a, sm.P + kq * 16 * LDP + kr * 16, LDP);
        wmma::load_matrix_sync(bm, sm.dO + kq * 16 * LDT + dc * 16, LDT);
        wmma::mma_sync(dv[u], a, bm, dv[u]);
        wmma::load_matrix_sync(a, sm.dS + kq * 16 * LDP + kr * 16, LDP);
        wmma::load_matrix_sync(bm, sm.Q + kq * 16 * LDT + dc * 16, LDT);
        wmma::mma_sync(dk[u], a, bm, dk[u]);
      }
    }
  }

  // dQ[m0 + .., :] += dS K, atomically into the fp32 workspace rows (row stride d).
  static __device__ __forceinline__ void dq_atomic(const BwdSmem<T>& sm, float* dq, int m0, int nq, int d) {
    namespace wmma = nvcuda::wmma;
    const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    float* scratch = sm.scratch + warp * 256;
    for (int t = warp; t < TM * TD; t += W) {
      const int mi = t / TD, dc = t - mi * TD;
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
#pragma unroll
      for (int kn = 0; kn < TN; ++kn) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> bm;
        wmma::load_matrix_sync(a, sm.dS + mi * 16 * LDP + kn * 16, LDP);
        wmma::load_matrix_sync(bm, sm.K + kn * 16 * LDT + dc * 16, LDT);
        wmma::mma_sync(acc, a, bm, acc);
      }
      wmma::store_matrix_sync(scratch, acc, 16, wmma::mem_row_major);
      __syncwarp();
#pragma unroll
      for (int e = lane; e < 256; e += kWarp) {
        const int row = m0 + mi * 16 + (e >> 4), col = dc * 16 + (e & 15);
        if (row < nq && col < d) atomicAdd(dq + static_cast<int64_t>(row) * d + col, scratch[e]);
      }
      __syncwarp();  // scratch read before the next tile overwrites it
    }
  }

  // Writes scale_k * dK and dV (rows n0.., below nk) through fp32 staging at the start of smem.
  // Every thread calls it; the caller has synchronised after the last smem read.
  __device__ __forceinline__ void store(unsigned char* smem, T* dkg, int64_t dk_seq, T* dvg, int64_t dv_seq, int n0,
                                        int nk, int d, float scale_k) {
    namespace wmma = nvcuda::wmma;
    constexpr int LDST = Cfg::LDST;
    float* stage = reinterpret_cast<float*>(smem);
    const int warp = threadIdx.x / kWarp;
#pragma unroll
    for (int pass = 0; pass < 2; ++pass) {
#pragma unroll
      for (int u = 0; u < NU; ++u) {
        const int t = warp + W * u;
        const int kr = t / TD, dc = t - kr * TD;
        wmma::store_matrix_sync(stage + kr * 16 * LDST + dc * 16, pass == 0 ? dv[u] : dk[u], LDST,
                                wmma::mem_row_major);
      }
      __syncthreads();
      if (pass == 0) store_tile<T, BN, DP, LDST, Cfg::kThreads>(dvg, dv_seq, stage, n0, nk, d, 1.0f);
      else store_tile<T, BN, DP, LDST, Cfg::kThreads>(dkg, dk_seq, stage, n0, nk, d, scale_k);
      __syncthreads();
    }
  }
};

// SIMT fp32 math: thread (ty, tx) of a 16x16 grid owns rows ty + 16 i and columns tx + 16 j of
// every output tile; dK / dV accumulate in registers.
template <typename T, int DP, class Cfg>
struct BwdMathSimt {
  static_assert(std::is_same<T, float>::value, "SIMT path is fp32");
  static_assert(Cfg::kThreads == 256, "16x16 thread grid");
  static constexpr int BM = Cfg::BM, BN = Cfg::BN;
  static constexpr int LDT = Cfg::LDT, LDS = Cfg::LDS, LDP = Cfg::LDP;
  static constexpr int TM = BM / 16, TN = BN / 16, TD = DP / 16;
  float dv[TN][TD], dk[TN][TD];

  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int i = 0; i < TN; ++i)
#pragma unroll
      for (int j = 0; j < TD; ++j) dv[i][j] = dk[i][j] = 0.0f;
  }

  static __device__ __forceinline__ void scores(const BwdSmem<float>& sm) {
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float s[TM][TN], dp[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) s[i][j] = dp[i][j] = 0.0f;
#pragma unroll 4
    for (int d = 0; d < DP; ++d) {
      float q[TM], o[TM], k[TN], v[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) {
        q[i] = sm.Q[(ty + 16 * i) * LDT + d];
        o[i] = sm.dO[(ty + 16 * i) * LDT + d];
      }
#pragma unroll
      for (int j = 0; j < TN; ++j) {
        k[j] = sm.K[(tx + 16 * j) * LDT + d];
        v[j] = sm.V[(tx + 16 * j) * LDT + d];
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) {
          s[i][j] = fmaf(q[i], k[j], s[i][j]);
          dp[i][j] = fmaf(o[i], v[j], dp[i][j]);
        }
    }
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) {
        sm.S[(ty + 16 * i) * LDS + tx + 16 * j] = s[i][j];
        sm.dP[(ty + 16 * i) * LDS + tx + 16 * j] = dp[i][j];
      }
  }

  __device__ __forceinline__ void accumulate(const BwdSmem<float>& sm) {
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll 2
    for (int m = 0; m < BM; ++m) {
      float pr[TN], ds[TN], o[TD], q[TD];
#pragma unroll
      for (int i = 0; i < TN; ++i) {
        pr[i] = sm.P[m * LDP + ty + 16 * i];
        ds[i] = sm.dS[m * LDP + ty + 16 * i];
      }
#pragma unroll
      for (int j = 0; j < TD; ++j) {
        o[j] = sm.dO[m * LDT + tx + 16 * j];
        q[j] = sm.Q[m * LDT + tx + 16 * j];
      }
#pragma unroll
      for (int i = 0; i < TN; ++i)
#pragma unroll
        for (int j = 0; j < TD; ++j) {
          dv[i][j] = fmaf(pr[i], o[j], dv[i][j]);
          dk[i][j] = fmaf(ds[i], q[j], dk[i][j]);
        }
    }
  }

  static __device__ __forceinline__ void dq_atomic(const BwdSmem<float>& sm, float* dq, int m0, int nq, int d) {
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float acc[TM][TD];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TD; ++j) acc[i][j] = 0.0f;
#pragma unroll 2
    for (int n = 0; n < BN; ++n) {
      float ds[TM], k[TD];
#pragma unroll
      for (int i = 0; i < TM; ++i) ds[i] = sm.dS[(ty + 16 * i) * LDP + n];
#pragma unroll
      for (int j = 0; j < TD; ++j) k[j] = sm.K[n * LDT + tx + 16 * j];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TD; ++j) acc[i][j] = fmaf(ds[i], k[j], acc[i][j]);
    }
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const int row = m0 + ty + 16 * i;
      if (row >= nq) continue;
#pragma unroll
      for (int j = 0; j < TD; ++j) {
        const int col = tx + 16 * j;
        if (col < d) atomicAdd(dq + static_cast<int64_t>(row) * d + col, acc[i][j]);
      }
    }
  }

  __device__ __forceinline__ void store(unsigned char* /*smem*/, float* dkg, int64_t dk_seq, float* dvg,
                                        int64_t dv_seq, int n0, int nk, int d, float scale_k) {
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
    for (int i = 0; i < TN; ++i) {
      const int row = n0 + ty + 16 * i;
      if (row >= nk) continue;
#pragma unroll
      for (int j = 0; j < TD; ++j) {
        const int col = tx + 16 * j;
        if (col < d) {
          dvg[static_cast<int64_t>(row) * dv_seq + col] = dv[i][j];
          dkg[static_cast<int64_t>(row) * dk_seq + col] = dk[i][j] * scale_k;
        }
      }
    }
  }
};

template <typename T, int DP, class Cfg>
using BwdMath = typename std::conditional<Cfg::kTC, BwdMathTc<T, DP, Cfg>, BwdMathSimt<T, DP, Cfg>>::type;

// delta[row] = sum_d dout * out over the (B, H, Nq) rows, one warp per row.
template <typename T>
__global__ void __launch_bounds__(256) attn_bwd_delta_kernel(const AttentionParams p, float* delta) {
  const int H = static_cast<int>(p.heads), Nq = static_cast<int>(p.q_len), D = static_cast<int>(p.head_dim);
  const int64_t rows = p.batch * p.heads * p.q_len;
  const int lane = threadIdx.x % kWarp;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / kWarp);
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + threadIdx.x / kWarp; row < rows;
       row += warps) {
    const int64_t bh = row / Nq;
    const int i = static_cast<int>(row - bh * Nq);
    const int64_t b = bh / H, h = bh - b * H;
    const T* o = static_cast<const T*>(p.out) + b * p.o_stride.batch + h * p.o_stride.head + i * p.o_stride.seq;
    const T* g = static_cast<const T*>(p.dout) + b * p.do_stride.batch + h * p.do_stride.head + i * p.do_stride.seq;
    float sum = 0.0f;
    for (int c = lane; c < D; c += kWarp) sum = fmaf(to_f32(o[c]), to_f32(g[c]), sum);
#pragma unroll
    for (int off = 16; off >= 1; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    if (lane == 0) delta[row] = sum;
  }
}

// dq = scale * dq_acc in the storage dtype and the dq strides.
template <typename T>
__global__ void __launch_bounds__(256) attn_bwd_dq_convert_kernel(const AttentionParams p, const float* dq_acc) {
  const int64_t D = p.head_dim, Nq = p.q_len, H = p.heads;
  const int64_t total = p.batch * H * Nq * D;
  T* dq = static_cast<T*>(p.dq);
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = idx % D, r = idx / D;
    const int64_t i = r % Nq, bh = r / Nq;
    const int64_t b = bh / H, h = bh - b * H;
    dq[b * p.dq_stride.batch + h * p.dq_stride.head + i * p.dq_stride.seq + c] = from_f32<T>(dq_acc[idx] * p.scale);
  }
}

template <typename T, int DP, class Cfg>
__device__ __forceinline__ void attn_bwd_body(const AttentionParams& p, const VecFlags& vf, const float* delta_ws,
                                              float* dq_ws) {
  constexpr int BM = Cfg::BM, BN = Cfg::BN, NT = Cfg::kThreads;
  constexpr int LDT = Cfg::LDT, LDS = Cfg::LDS, LDP = Cfg::LDP;
  using Math = BwdMath<T, DP, Cfg>;
  extern __shared__ __align__(128) unsigned char smem[];
  BwdSmem<T> sm;
  sm.K = reinterpret_cast<T*>(smem + Cfg::oK);
  sm.V = reinterpret_cast<T*>(smem + Cfg::oV);
  sm.Q = reinterpret_cast<T*>(smem + Cfg::oQ);
  sm.dO = reinterpret_cast<T*>(smem + Cfg::oDO);
  sm.S = reinterpret_cast<float*>(smem + Cfg::oS);
  sm.dP = reinterpret_cast<float*>(smem + Cfg::oDP);
  sm.P = reinterpret_cast<T*>(smem + Cfg::oP);
  sm.dS = reinterpret_cast<T*>(smem + Cfg::oDS);
  sm.scratch = reinterpret_cast<float*>(smem + Cfg::oScratch);
  sm.lse2 = reinterpret_cast<float*>(smem + Cfg::oLse);
  sm.delta = reinterpret_cast<float*>(smem + Cfg::oDelta);
  sm.kend = reinterpret_cast<int*>(smem + Cfg::oKend);

  const int Hkv = static_cast<int>(p.kv_heads), H = static_cast<int>(p.heads), G = H / Hkv;
  const int Nq = static_cast<int>(p.q_len), Nk = static_cast<int>(p.k_len), D = static_cast<int>(p.head_dim);
  const int b = blockIdx.x / Hkv, hk = blockIdx.x - b * Hkv;
  const T* kg = static_cast<const T*>(p.k) + b * p.k_stride.batch + hk * p.k_stride.head;
  const T* vg = static_cast<const T*>(p.v) + b * p.v_stride.batch + hk * p.v_stride.head;
  T* dkg = static_cast<T*>(p.dk) + b * p.dk_stride.batch + hk * p.dk_stride.head;
  T* dvg = static_cast<T*>(p.dv) + b * p.dv_stride.batch + hk * p.dv_stride.head;
  const float scale_log2 = p.scale * kLog2e;

  const int n_ktiles = (Nk + BN - 1) / BN;
  for (int kt = blockIdx.y; kt < n_ktiles; kt += gridDim.y) {
    const int n0 = kt * BN;
    __syncthreads();  // smem of the previous iteration (staging included) is no longer read
    load_tile<T, BN, DP, LDT, NT>(sm.K, kg, p.k_stride.seq, n0, Nk, D, vf.k);
    load_tile<T, BN, DP, LDT, NT>(sm.V, vg, p.v_stride.seq, n0, Nk, D, vf.v);

    Math acc;
    acc.zero();
    // Query tiles before the one holding the first query that sees key n0 see nothing of this tile.
    const int m_begin = first_query_seeing(p, n0) / BM * BM;

    for (int g = 0; g < G; ++g) {
      const int h = hk * G + g;
      const int64_t bh = static_cast<int64_t>(b) * H + h;
      const T* qg = static_cast<const T*>(p.q) + b * p.q_stride.batch + h * p.q_stride.head;
      const T* dog = static_cast<const T*>(p.dout) + b * p.do_stride.batch + h * p.do_stride.head;
      const float* lse_g = p.lse + bh * Nq;
      const float* delta_g = delta_ws + bh * Nq;
      float* dq_g = dq_ws + bh * Nq * D;

      for (int m0 = m_begin; m0 < Nq; m0 += BM) {
        __syncthreads();  // the previous query tile's smem reads are done (and K, V are loaded)
        load_tile<T, BM, DP, LDT, NT>(sm.Q, qg, p.q_stride.seq, m0, Nq, D, vf.q);
        load_tile<T, BM, DP, LDT, NT>(sm.dO, dog, p.do_stride.seq, m0, Nq, D, vf.dout);
        for (int r = threadIdx.x; r < BM; r += NT) {
          const int i = m0 + r;
          const bool valid = i < Nq;
          sm.lse2[r] = valid ? lse_g[i] * kLog2e : 0.0f;
          sm.delta[r] = valid ? delta_g[i] : 0.0f;
          sm.kend[r] = valid ? vis_end(p, i) : 0;  // padding rows see nothing
        }
        __syncthreads();

        Math::scores(sm);
        __syncthreads();

        // P = exp(scale S - lse), dS = P (dP - delta); masked entries are 0.
        const bool full = m0 + BM <= Nq && n0 + BN <= vis_end(p, m0);
        for (int e = threadIdx.x; e < BM * BN; e += NT) {
          const int m = e / BN, n = e - m * BN;
          const float s = sm.S[m * LDS + n];
          const float dp = sm.dP[m * LDS + n];
          const bool visible = full || n0 + n < sm.kend[m];
          const float pr = visible ? exp2f(s * scale_log2 - sm.lse2[m]) : 0.0f;
          const float ds = pr * (dp - sm.delta[m]);
          sm.P[m * LDP + n] = from_f32<T>(pr);  // fp32: same slot as S, read above by this thread
          sm.dS[m * LDP + n] = from_f32<T>(ds);
        }
        __syncthreads();

        acc.accumulate(sm);
        Math::dq_atomic(sm, dq_g, m0, Nq, D);
      }
    }
    __syncthreads();  // all smem reads done before the staging in store()
    acc.store(smem, dkg, p.dk_stride.seq, dvg, p.dv_stride.seq, n0, Nk, D, p.scale);
  }
}

template <typename T, int DP, class Cfg>
__global__ void __launch_bounds__(Cfg::kThreads)
    attn_bwd_kernel(const AttentionParams p, const VecFlags vf, const float* delta_ws, float* dq_ws) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  // wmma with bf16 needs sm_80; the host refuses fp16/bf16 on older devices (kUnsupported).
  if constexpr (Cfg::kTC) __trap(); else attn_bwd_body<T, DP, Cfg>(p, vf, delta_ws, dq_ws);
#else
  attn_bwd_body<T, DP, Cfg>(p, vf, delta_ws, dq_ws);
#endif
}

// ---------------------------------------------------------------------------------------------
// Host-side launch helpers.

// Launches `kernel` on `stream` with `smem` dynamic shared memory, raising the opt-in limit first
// when needed. kUnsupported when the device cannot give that much shared memory per block.
template <typename... KArgs, typename... Args>
Status launch_kernel(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                     Args... args) {
  if (smem > 48 * 1024) {
    int dev = 0, max_optin = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return Status::kCudaError;
    if (cudaDeviceGetAttribute(&max_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) {
      return Status::kCudaError;
    }
    if (smem > static_cast<size_t>(max_optin)) return Status::kUnsupported;
    if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)) !=
        cudaSuccess) {
      return Status::kCudaError;
    }
  }
  kernel<<<grid, block, smem, stream>>>(args...);
  return cudaGetLastError() == cudaSuccess ? Status::kOk : Status::kCudaError;
}

constexpr int64_t kMaxGridY = 65535;

// fp16 / bf16 run on tensor cores through wmma, which these kernels use from sm_80 on.
template <typename T>
inline Status check_device_for() {
  if constexpr (is_tensor_core_type<T>::value) {
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return Status::kCudaError;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) {
      return Status::kCudaError;
    }
    if (major < 8) return Status::kUnsupported;
  }
  return Status::kOk;
}

// Tile configs. Forward TC: BM = 64 (4 warps of 16 rows). Forward fp32: 4 rows x 16 lanes per
// group. Backward: 8 warps. All fit sm_80's 163 KB (Dp <= 128 also fit the 99 KB of sm_86/89).
template <typename T, int DP> struct FwdConfig;
template <typename T> struct FwdConfig<T, 32> { using type = FwdTcCfg<T, 32, 64, 64>; };
template <typename T> struct FwdConfig<T, 64> { using type = FwdTcCfg<T, 64, 64, 64>; };
template <typename T> struct FwdConfig<T, 128> { using type = FwdTcCfg<T, 128, 64, 32>; };
template <typename T> struct FwdConfig<T, 256> { using type = FwdTcCfg<T, 256, 64, 32>; };
template <> struct FwdConfig<float, 32> { using type = FwdSimtCfg<32, 64, 64>; };
template <> struct FwdConfig<float, 64> { using type = FwdSimtCfg<64, 64, 64>; };
template <> struct FwdConfig<float, 128> { using type = FwdSimtCfg<128, 64, 32>; };
template <> struct FwdConfig<float, 256> { using type = FwdSimtCfg<256, 32, 32>; };

template <typename T, int DP> struct BwdConfig;
template <typename T> struct BwdConfig<T, 32> { using type = BwdCfg<T, 32, 64, 64>; };
template <typename T> struct BwdConfig<T, 64> { using type = BwdCfg<T, 64, 64, 64>; };
template <typename T> struct BwdConfig<T, 128> { using type = BwdCfg<T, 128, 32, 64>; };
template <typename T> struct BwdConfig<T, 256> { using type = BwdCfg<T, 256, 32, 32>; };
template <> struct BwdConfig<float, 32> { using type = BwdCfg<float, 32, 64, 64>; };
template <> struct BwdConfig<float, 64> { using type = BwdCfg<float, 64, 32, 64>; };
template <> struct BwdConfig<float, 128> { using type = BwdCfg<float, 128, 32, 32>; };
template <> struct BwdConfig<float, 256> { using type = BwdCfg<float, 256, 32, 32>; };

template <typename T>
inline VecFlags vec_flags(const AttentionParams& p) {
  VecFlags f;
  f.q = can_vectorize<T>(p.q, p.q_stride, p.head_dim);
  f.k = can_vectorize<T>(p.k, p.k_stride, p.head_dim);
  f.v = can_vectorize<T>(p.v, p.v_stride, p.head_dim);
  f.dout = can_vectorize<T>(p.dout, p.do_stride, p.head_dim);
  return f;
}

template <typename T, int DP>
Status forward_dp(const AttentionParams& p, cudaStream_t stream) {
  using Cfg = typename FwdConfig<T, DP>::type;
  const int64_t n_qtiles = (p.q_len + Cfg::BM - 1) / Cfg::BM;
  const dim3 grid(static_cast<unsigned>(p.batch * p.heads),
                  static_cast<unsigned>(n_qtiles < kMaxGridY ? n_qtiles : kMaxGridY));
  const VecFlags vf = vec_flags<T>(p);
  if constexpr (is_tensor_core_type<T>::value) {
    return launch_kernel(attn_fwd_tc_kernel<T, DP, Cfg>, grid, dim3(Cfg::kThreads), Cfg::kSmem, stream, p, vf);
  } else {
    return launch_kernel(attn_fwd_simt_kernel<DP, Cfg>, grid, dim3(Cfg::kThreads), Cfg::kSmem, stream, p, vf);
  }
}

// Entry for one storage type; sizes were validated by the caller and are non-empty.
template <typename T>
Status launch_forward(const AttentionParams& p, cudaStream_t stream) {
  const Status dev_st = check_device_for<T>();
  if (dev_st != Status::kOk) return dev_st;
  switch (head_dim_bucket(p.head_dim)) {
    case 32: return forward_dp<T, 32>(p, stream);
    case 64: return forward_dp<T, 64>(p, stream);
    case 128: return forward_dp<T, 128>(p, stream);
    case 256: return forward_dp<T, 256>(p, stream);
    default: return Status::kInvalidArgument;
  }
}

template <typename T, int DP>
Status backward_dp(const AttentionParams& p, float* delta, float* dq_acc, cudaStream_t stream) {
  using Cfg = typename BwdConfig<T, DP>::type;
  const int64_t n_ktiles = (p.k_len + Cfg::BN - 1) / Cfg::BN;
  const dim3 grid(static_cast<unsigned>(p.batch * p.kv_heads),
                  static_cast<unsigned>(n_ktiles < kMaxGridY ? n_ktiles : kMaxGridY));
  return launch_kernel(attn_bwd_kernel<T, DP, Cfg>, grid, dim3(Cfg::kThreads), Cfg::kSmem, stream, p,
                       vec_flags<T>(p), static_cast<const float*>(delta), dq_acc);
}

inline unsigned grid_stride_blocks(int64_t work, int64_t per_block) {
  const int64_t blocks = (work + per_block - 1) / per_block;
  return static_cast<unsigned>(blocks < 65535 * 16 ? blocks : 65535 * 16);
}

// Entry for one storage type; sizes were validated by the caller, B, H, Hkv, Nk are non-zero.
template <typename T>
Status launch_backward(const AttentionParams& p, void* workspace, cudaStream_t stream) {
  const Status dev_st = check_device_for<T>();
  if (dev_st != Status::kOk) return dev_st;
  float* delta = static_cast<float*>(workspace);
  float* dq_acc = reinterpret_cast<float*>(static_cast<unsigned char*>(workspace) + workspace_delta_bytes(p));
  const int64_t rows = p.batch * p.heads * p.q_len;
  if (rows > 0) {
    if (cudaMemsetAsync(dq_acc, 0, static_cast<size_t>(workspace_dq_bytes(p)), stream) != cudaSuccess) {
      return Status::kCudaError;
    }
    const Status st = launch_kernel(attn_bwd_delta_kernel<T>, dim3(grid_stride_blocks(rows, 8)), dim3(256), 0,
                                    stream, p, delta);
    if (st != Status::kOk) return st;
  }
  Status st = Status::kInvalidArgument;
  switch (head_dim_bucket(p.head_dim)) {
    case 32: st = backward_dp<T, 32>(p, delta, dq_acc, stream); break;
    case 64: st = backward_dp<T, 64>(p, delta, dq_acc, stream); break;
    case 128: st = backward_dp<T, 128>(p, delta, dq_acc, stream); break;
    case 256: st = backward_dp<T, 256>(p, delta, dq_acc, stream); break;
    default: break;
  }
  if (st != Status::kOk || rows == 0) return st;
  return launch_kernel(attn_bwd_dq_convert_kernel<T>, dim3(grid_stride_blocks(rows * p.head_dim, 256)), dim3(256),
                       0, stream, p, static_cast<const float*>(dq_acc));
}

}  // namespace cuda_attn
}  // namespace nbp
