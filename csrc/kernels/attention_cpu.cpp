// Block-causal attention on the CPU: tiled, online softmax (no N x N matrix), tiles that the
// block-causal rule hides completely are never visited, OpenMP over independent tasks.
//
// Forward: one task per (batch, head, query tile); the key loop stops at the last key visible from
// the tile's last query. Backward (from the saved log-sum-exp): one task per (batch, head); for each
// key tile, every query tile that sees it contributes to dK, dV (tile accumulators) and dQ (an fp32
// buffer private to the task). Grouped KV heads: each query head writes its dK, dV into a private
// slot and a final pass sums the slots of a group.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "attention.h"
#include "cpu_math.h"

namespace nbp {
namespace {

using cpu::kTileK;
using cpu::kTileQ;

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

template <typename T>
inline const T* row_ptr(const void* base, const Strides4& s, int64_t b, int64_t h, int64_t n) {
  return static_cast<const T*>(base) + b * s.batch + h * s.head + n * s.seq;
}
template <typename T>
inline T* row_ptr_mut(void* base, const Strides4& s, int64_t b, int64_t h, int64_t n) {
  return static_cast<T*>(base) + b * s.batch + h * s.head + n * s.seq;
}

// rows x D of storage T -> fp32 [rows][D], times `mul`.
template <typename T>
void load_rows(const void* base, const Strides4& s, int64_t b, int64_t h, int64_t n0, int rows, int D,
               float mul, float* dst) {
  for (int r = 0; r < rows; ++r) {
    const T* src = row_ptr<T>(base, s, b, h, n0 + r);
    float* d = dst + static_cast<int64_t>(r) * D;
    for (int c = 0; c < D; ++c) d[c] = cpu::load_elem(src[c]) * mul;
  }
}

// rows x D of storage T -> fp32 transposed [D][kTileK]; columns >= rows are zero.
template <typename T>
void load_rows_transposed(const void* base, const Strides4& s, int64_t b, int64_t h, int64_t n0, int rows,
                          int D, float* dst) {
  if (rows < kTileK) std::fill(dst, dst + static_cast<int64_t>(D) * kTileK, 0.0f);
  for (int r = 0; r < rows; ++r) {
    const T* src = row_ptr<T>(base, s, b, h, n0 + r);
    for (int c = 0; c < D; ++c) dst[c * kTileK + r] = cpu::load_elem(src[c]);
  }
}

int resolve_threads(int num_threads) {
#ifdef _OPENMP
  return num_threads > 0 ? num_threads : omp_get_max_threads();
#else
  (void)num_threads;
  return 1;
#endif
}

// Last visible key (exclusive) of each query row of a tile, clamped to k_len.
void row_key_ends(const AttentionParams& p, int64_t i0, int rows, int64_t* out) {
  for (int r = 0; r < rows; ++r)
    out[r] = std::min(p.k_len, key_end(p.q_offset + i0 + r, p.prefix_len, p.block_size));
}

// Sets S[r][c] = -inf where key j0 + c is invisible to row r (or beyond the tile's n keys).
void mask_scores(float* S, int rows, const int64_t* kend, int64_t j0, int n) {
  for (int r = 0; r < rows; ++r) {
    const int64_t lim = std::min<int64_t>(n, std::max<int64_t>(0, kend[r] - j0));
    float* row = S + r * kTileK;
    for (int c = static_cast<int>(lim); c < kTileK; ++c) row[c] = kNegInf;
  }
}

template <typename T>
void forward_impl(const AttentionParams& p, int threads) {
  const int D = static_cast<int>(p.head_dim);
  const int64_t group = p.heads / p.kv_heads;
  const int64_t q_tiles = (p.q_len + kTileQ - 1) / kTileQ;
  const int64_t tasks = p.batch * p.heads * q_tiles;
  const float qmul = p.scale * kLog2e;  // scores in log2 units

#pragma omp parallel num_threads(threads)
  {
    std::vector<float> Qf(static_cast<size_t>(kTileQ) * D), Kt(static_cast<size_t>(D) * kTileK);
    std::vector<float> Vf(static_cast<size_t>(kTileK) * D), S(static_cast<size_t>(kTileQ) * kTileK);
    std::vector<float> O(static_cast<size_t>(kTileQ) * D);
    float m_row[kTileQ], l_row[kTileQ], alpha[kTileQ];
    int64_t kend[kTileQ];

#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      // Heaviest tiles (last queries, most keys) first.
      const int64_t t = tasks - 1 - task;
      const int64_t qt = t % q_tiles;
      const int64_t h = (t / q_tiles) % p.heads;
      const int64_t b = t / (q_tiles * p.heads);
      const int64_t kvh = h / group;
      const int64_t i0 = qt * kTileQ;
      const int m = static_cast<int>(std::min<int64_t>(kTileQ, p.q_len - i0));

      load_rows<T>(p.q, p.q_stride, b, h, i0, m, D, qmul, Qf.data());
      row_key_ends(p, i0, m, kend);
      const int64_t k_stop = kend[m - 1];  // key_end is monotone in the query position
      const int64_t k_full = kend[0];      // tiles ending at or before this need no mask
      std::fill(O.begin(), O.begin() + static_cast<int64_t>(m) * D, 0.0f);
      for (int r = 0; r < m; ++r) { m_row[r] = kNegInf; l_row[r] = 0.0f; }

      for (int64_t j0 = 0; j0 < k_stop; j0 += kTileK) {
        const int n = static_cast<int>(std::min<int64_t>(kTileK, k_stop - j0));
        load_rows_transposed<T>(p.k, p.k_stride, b, kvh, j0, n, D, Kt.data());
        load_rows<T>(p.v, p.v_stride, b, kvh, j0, n, D, 1.0f, Vf.data());
        cpu::gemm_abt(Qf.data(), D, Kt.data(), D, S.data(), m);
        if (j0 + kTileK > k_full) mask_scores(S.data(), m, kend, j0, n);

        for (int r = 0; r < m; ++r) {
          float* s = S.data() + r * kTileK;
          float mx = m_row[r];
          for (int c = 0; c < kTileK; ++c) mx = std::max(mx, s[c]);
          // mx is finite: key 0 is visible to every query and is in the first tile.
          float sum = 0.0f;
          for (int c = 0; c < kTileK; ++c) {
            const float e = cpu::exp2_approx(s[c] - mx);
            s[c] = e;
            sum += e;
          }
          alpha[r] = cpu::exp2_approx(m_row[r] - mx);
          l_row[r] = l_row[r] * alpha[r] + sum;
          m_row[r] = mx;
        }
        for (int r = 0; r < m; ++r) {
          float* o = O.data() + static_cast<int64_t>(r) * D;
          const float a = alpha[r];
          for (int c = 0; c < D; ++c) o[c] *= a;
        }
        cpu::gemm_nn_acc(S.data(), kTileK, Vf.data(), D, n, O.data(), D, m, D);
      }

      float* lse = p.lse + (b * p.heads + h) * p.q_len + i0;
      for (int r = 0; r < m; ++r) {
        const float inv = 1.0f / l_row[r];
        const float* o = O.data() + static_cast<int64_t>(r) * D;
        T* dst = row_ptr_mut<T>(p.out, p.o_stride, b, h, i0 + r);
        for (int c = 0; c < D; ++c) dst[c] = cpu::store_elem<T>(o[c] * inv);
        lse[r] = (m_row[r] + std::log2(l_row[r])) * kLn2;
      }
    }
  }
}

template <typename T>
void backward_impl(const AttentionParams& p, int threads) {
  const int D = static_cast<int>(p.head_dim);
  const int64_t group = p.heads / p.kv_heads;
  const int64_t tasks = p.batch * p.heads;
  const int64_t Nq = p.q_len, Nk = p.k_len;
  const float s2 = p.scale * kLog2e;

  // Per query head dK, dV in fp32, summed over each group at the end.
  std::vector<float> dkv(static_cast<size_t>(tasks) * 2 * Nk * D);

#pragma omp parallel num_threads(threads)
  {
    std::vector<float> Qf(static_cast<size_t>(Nq) * D), dOf(static_cast<size_t>(Nq) * D);
    std::vector<float> dQ(static_cast<size_t>(Nq) * D), Of(static_cast<size_t>(kTileQ) * D);
    std::vector<float> delta(Nq), lse2(Nq);
    std::vector<int64_t> kend(Nq);
    std::vector<float> Kt(static_cast<size_t>(D) * kTileK), Vt(static_cast<size_t>(D) * kTileK);
    std::vector<float> Kf(static_cast<size_t>(kTileK) * D);
    std::vector<float> P(static_cast<size_t>(kTileQ) * kTileK), dS(static_cast<size_t>(kTileQ) * kTileK);
    std::vector<float> Pt(static_cast<size_t>(kTileK) * kTileQ), dSt(static_cast<size_t>(kTileK) * kTileQ);
    std::vector<float> dVacc(static_cast<size_t>(kTileK) * D), dKacc(static_cast<size_t>(kTileK) * D);

#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t b = t / p.heads, h = t % p.heads, kvh = h / group;
      load_rows<T>(p.q, p.q_stride, b, h, 0, static_cast<int>(Nq), D, 1.0f, Qf.data());
      load_rows<T>(p.dout, p.do_stride, b, h, 0, static_cast<int>(Nq), D, 1.0f, dOf.data());
      std::fill(dQ.begin(), dQ.end(), 0.0f);
      const float* lse = p.lse + t * Nq;
      for (int64_t i0 = 0; i0 < Nq; i0 += kTileQ) {
        const int m = static_cast<int>(std::min<int64_t>(kTileQ, Nq - i0));
        load_rows<T>(p.out, p.o_stride, b, h, i0, m, D, 1.0f, Of.data());
        for (int r = 0; r < m; ++r) {
          const float* o = Of.data() + static_cast<int64_t>(r) * D;
          const float* g = dOf.data() + (i0 + r) * D;
          float acc = 0.0f;
          for (int c = 0; c < D; ++c) acc += o[c] * g[c];
          delta[i0 + r] = acc;
          lse2[i0 + r] = lse[i0 + r] * kLog2e;
        }
        row_key_ends(p, i0, m, kend.data() + i0);
      }

      float* dK_out = dkv.data() + (t * 2) * Nk * D;
      float* dV_out = dK_out + Nk * D;
      for (int64_t j0 = 0; j0 < Nk; j0 += kTileK) {
        const int n = static_cast<int>(std::min<int64_t>(kTileK, Nk - j0));
        load_rows_transposed<T>(p.k, p.k_stride, b, kvh, j0, n, D, Kt.data());
        load_rows_transposed<T>(p.v, p.v_stride, b, kvh, j0, n, D, Vt.data());
        load_rows<T>(p.k, p.k_stride, b, kvh, j0, n, D, 1.0f, Kf.data());
        std::fill(dVacc.begin(), dVacc.end(), 0.0f);
        std::fill(dKacc.begin(), dKacc.end(), 0.0f);

        for (int64_t i0 = 0; i0 < Nq; i0 += kTileQ) {
          const int m = static_cast<int>(std::min<int64_t>(kTileQ, Nq - i0));
          const int64_t* ke = kend.data() + i0;
          if (ke[m - 1] <= j0) continue;  // no query of this tile sees any key of this tile
          cpu::gemm_abt(Qf.data() + i0 * D, D, Kt.data(), D, P.data(), m);
          cpu::gemm_abt(dOf.data() + i0 * D, D, Vt.data(), D, dS.data(), m);
          const bool need_mask = j0 + kTileK > ke[0];
          for (int r = 0; r < m; ++r) {
            float* pr = P.data() + r * kTileK;
            float* ds = dS.data() + r * kTileK;
            const float l2 = lse2[i0 + r], dl = delta[i0 + r];
            for (int c = 0; c < kTileK; ++c) {
              const float e = cpu::exp2_approx(pr[c] * s2 - l2);
              pr[c] = e;
              ds[c] = e * (ds[c] - dl);
            }
            if (need_mask) {
              const int64_t lim = std::min<int64_t>(n, std::max<int64_t>(0, ke[r] - j0));
              for (int c = static_cast<int>(lim); c < kTileK; ++c) { pr[c] = 0.0f; ds[c] = 0.0f; }
            }
          }
          cpu::transpose_tile(P.data(), kTileK, m, n, Pt.data(), kTileQ);
          cpu::transpose_tile(dS.data(), kTileK, m, n, dSt.data(), kTileQ);
          cpu::gemm_nn_acc(Pt.data(), kTileQ, dOf.data() + i0 * D, D, m, dVacc.data(), D, n, D);
          cpu::gemm_nn_acc(dSt.data(), kTileQ, Qf.data() + i0 * D, D, m, dKacc.data(), D, n, D);
          cpu::gemm_nn_acc(dS.data(), kTileK, Kf.data(), D, n, dQ.data() + i0 * D, D, m, D);
        }
        for (int r = 0; r < n; ++r) {
          float* dk = dK_out + (j0 + r) * D;
          float* dv = dV_out + (j0 + r) * D;
          const float* ka = dKacc.data() + static_cast<int64_t>(r) * D;
          const float* va = dVacc.data() + static_cast<int64_t>(r) * D;
          for (int c = 0; c < D; ++c) { dk[c] = ka[c] * p.scale; dv[c] = va[c]; }
        }
      }
      for (int64_t i = 0; i < Nq; ++i) {
        T* dst = row_ptr_mut<T>(p.dq, p.dq_stride, b, h, i);
        const float* src = dQ.data() + i * D;
        for (int c = 0; c < D; ++c) dst[c] = cpu::store_elem<T>(src[c] * p.scale);
      }
    }

    // Sum the query heads of each group into dK, dV.
#pragma omp for schedule(static)
    for (int64_t bk = 0; bk < p.batch * p.kv_heads; ++bk) {
      const int64_t b = bk / p.kv_heads, kvh = bk % p.kv_heads;
      for (int64_t j = 0; j < Nk; ++j) {
        T* dk = row_ptr_mut<T>(p.dk, p.dk_stride, b, kvh, j);
        T* dv = row_ptr_mut<T>(p.dv, p.dv_stride, b, kvh, j);
        for (int c = 0; c < D; ++c) {
          float sk = 0.0f, sv = 0.0f;
          for (int64_t g = 0; g < group; ++g) {
            const int64_t t = b * p.heads + kvh * group + g;
            sk += dkv[(t * 2) * Nk * D + j * D + c];
            sv += dkv[(t * 2 + 1) * Nk * D + j * D + c];
          }
          dk[c] = cpu::store_elem<T>(sk);
          dv[c] = cpu::store_elem<T>(sv);
        }
      }
    }
  }
}

}  // namespace

Status attention_forward_cpu(const AttentionParams& p, int num_threads) {
  const Status st = validate_attention(p);
  if (st != Status::kOk) return st;
  if (!p.q || !p.k || !p.v || !p.out || !p.lse) return Status::kInvalidArgument;
  const int threads = resolve_threads(num_threads);
  switch (p.dtype) {
    case DType::kFloat32: forward_impl<float>(p, threads); break;
    case DType::kFloat16: forward_impl<Half>(p, threads); break;
    case DType::kBFloat16: forward_impl<BFloat16>(p, threads); break;
  }
  return Status::kOk;
}

Status attention_backward_cpu(const AttentionParams& p, int num_threads) {
  const Status st = validate_attention(p);
  if (st != Status::kOk) return st;
  if (!p.q || !p.k || !p.v || !p.out || !p.lse || !p.dout || !p.dq || !p.dk || !p.dv)
    return Status::kInvalidArgument;
  const int threads = resolve_threads(num_threads);
  switch (p.dtype) {
    case DType::kFloat32: backward_impl<float>(p, threads); break;
    case DType::kFloat16: backward_impl<Half>(p, threads); break;
    case DType::kBFloat16: backward_impl<BFloat16>(p, threads); break;
  }
  return Status::kOk;
}

}  // namespace nbp
