// Block-causal attention on the CPU: tiled, online softmax (no N x N matrix), tiles that the
// block-causal rule hides completely are never visited, OpenMP over independent tasks.
//
// Score tiles are computed transposed, S^T = K Q^T: a tile has one row per key and one column per
// query. Every per-query quantity (running max, sum, log-sum-exp, delta, visibility limit) is then a
// vector along the row, so the softmax is element-wise SIMD work with no horizontal reductions, and
// the products that consume the tile read it either as is or through cpu::gemm_tn_acc (no
// transposes). Queries of a tile are transposed once into Q^T [D][kTileQ] (16 wide for decode steps).
//
// Forward: one task per (batch, head, query tile), dynamically scheduled; the key loop stops at the
// last key visible from the tile's last query. Backward (from the saved log-sum-exp): one task per
// (batch, head, range of key tiles); for each key tile, every query tile that sees it contributes to
// dK, dV (fp32 rows owned by the task) and dQ (an fp32 partial per key range, summed at the end).
// Grouped KV heads: each query head writes its dK, dV into a private slot and a final pass sums the
// slots of a group.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
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

// Read-only fp32 rows of a (B, heads, N, D) tensor.
struct RowsF32 {
  const float* data;
  Strides4 s;
  const float* row(int64_t b, int64_t h, int64_t n) const {
    return data + b * s.batch + h * s.head + n * s.seq;
  }
};

// fp32 tensors are used in place; other storage types are converted once into `storage`
// (contiguous), in parallel, so that no task converts the same rows again.
template <typename T>
RowsF32 rows_f32(const void* base, const Strides4& s, int64_t batch, int64_t heads, int64_t n, int D,
                 int threads, std::vector<float>& storage) {
  if constexpr (std::is_same_v<T, float>) {
    (void)batch, (void)heads, (void)n, (void)D, (void)threads, (void)storage;
    return {static_cast<const float*>(base), s};
  } else {
    storage.resize(static_cast<size_t>(batch * heads * n) * D);
    const Strides4 out{heads * n * D, n * D, D};
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t bh = 0; bh < batch * heads; ++bh) {
      const int64_t b = bh / heads, h = bh % heads;
      for (int64_t i = 0; i < n; ++i) {
        const T* src = row_ptr<T>(base, s, b, h, i);
        float* dst = storage.data() + b * out.batch + h * out.head + i * D;
        for (int c = 0; c < D; ++c) dst[c] = cpu::load_elem(src[c]);
      }
    }
    return {storage.data(), out};
  }
}

// rows (<= TQ) fp32 rows of length D (row stride ld) -> dst[D][TQ] times `mul`; columns
// >= rows are zero.
template <int TQ = kTileQ>
void transpose_rows(const float* src, int64_t ld, int rows, int D, float mul, float* dst) {
  if (rows < TQ) std::fill(dst, dst + static_cast<int64_t>(D) * TQ, 0.0f);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < D; ++c) dst[c * TQ + r] = src[r * ld + c] * mul;
}

int resolve_threads(int num_threads) {
#ifdef _OPENMP
  return num_threads > 0 ? num_threads : omp_get_max_threads();
#else
  (void)num_threads;
  return 1;
#endif
}

// Last visible key (exclusive) of each query of a tile, clamped to k_len; the padding columns of a
// partial tile (rows..TQ) repeat the last query's, so that every column sees key 0.
template <int TQ = kTileQ>
void column_key_ends(const AttentionParams& p, int64_t i0, int rows, int64_t* out) {
  for (int c = 0; c < TQ; ++c)
    out[c] = std::min(p.k_len, key_end(p.q_offset + i0 + std::min(c, rows - 1), p.prefix_len, p.block_size));
}

// Number of keys of the tile starting at j0 that each query column sees, in [0, kTileK].
template <int TQ = kTileQ>
void visible_in_tile(const int64_t* kend, int64_t j0, int* lim) {
  for (int c = 0; c < TQ; ++c)
    lim[c] = static_cast<int>(std::clamp<int64_t>(kend[c] - j0, 0, kTileK));
}

template <typename T, int TQ>
void forward_impl(const AttentionParams& p, int threads) {
  const int D = static_cast<int>(p.head_dim);
  const int64_t group = p.heads / p.kv_heads;
  const int64_t q_tiles = (p.q_len + TQ - 1) / TQ;
  const int64_t tasks = p.batch * p.heads * q_tiles;
  const float qmul = p.scale * kLog2e;  // scores in log2 units

  std::vector<float> k_store, v_store;
  const RowsF32 K = rows_f32<T>(p.k, p.k_stride, p.batch, p.kv_heads, p.k_len, D, threads, k_store);
  const RowsF32 V = rows_f32<T>(p.v, p.v_stride, p.batch, p.kv_heads, p.k_len, D, threads, v_store);
  std::vector<float> q_store;
  const RowsF32 Q = rows_f32<T>(p.q, p.q_stride, p.batch, p.heads, p.q_len, D, threads, q_store);

#pragma omp parallel num_threads(threads)
  {
    std::vector<float> Qt(static_cast<size_t>(D) * TQ), S(static_cast<size_t>(kTileK) * TQ);
    std::vector<float> O(static_cast<size_t>(TQ) * D);
    alignas(64) float m_col[TQ], l_col[TQ], alpha[TQ], mx[TQ], sum[TQ];
    alignas(64) int lim[TQ];
    int64_t kend[TQ];

#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      // Reverse order: within a head the heaviest tiles (last queries, most keys) go first and the
      // lightest tiles of the first head come last, which keeps the threads' finishing times close;
      // consecutive tasks share a head, so its K and V stay in cache.
      const int64_t t = tasks - 1 - task;
      const int64_t qt = t % q_tiles;
      const int64_t h = (t / q_tiles) % p.heads;
      const int64_t b = t / (q_tiles * p.heads);
      const int64_t kvh = h / group;
      const int64_t i0 = qt * TQ;
      const int m = static_cast<int>(std::min<int64_t>(TQ, p.q_len - i0));

      transpose_rows<TQ>(Q.row(b, h, i0), Q.s.seq, m, D, qmul, Qt.data());
      column_key_ends<TQ>(p, i0, m, kend);
      const int64_t k_stop = kend[TQ - 1];  // key_end is monotone in the query position
      const int64_t k_full = kend[0];           // tiles ending at or before this need no mask
      std::fill(O.begin(), O.begin() + static_cast<int64_t>(m) * D, 0.0f);
      for (int c = 0; c < TQ; ++c) { m_col[c] = kNegInf; l_col[c] = 0.0f; }

      for (int64_t j0 = 0; j0 < k_stop; j0 += kTileK) {
        const int n = static_cast<int>(std::min<int64_t>(kTileK, k_stop - j0));
        const float* krows = K.row(b, kvh, j0);
        cpu::gemm_nn<TQ>(krows, K.s.seq, Qt.data(), TQ, D, S.data(), TQ, n, TQ);  // S^T
        if (j0 + n > k_full) {  // hide the keys a query cannot see
          visible_in_tile<TQ>(kend, j0, lim);
          for (int r = 0; r < n; ++r) {
            float* s = S.data() + r * TQ;
            for (int c = 0; c < TQ; ++c) s[c] = r < lim[c] ? s[c] : kNegInf;
          }
        }

        // Online softmax, column by column (one column per query), vectorised along the rows.
        // The running max is finite: key 0 is visible to every query and is in the first tile.
        for (int c = 0; c < TQ; ++c) mx[c] = m_col[c];
        for (int r = 0; r < n; ++r) {
          const float* s = S.data() + r * TQ;
          for (int c = 0; c < TQ; ++c) mx[c] = s[c] > mx[c] ? s[c] : mx[c];
        }
        for (int c = 0; c < TQ; ++c) sum[c] = 0.0f;
        for (int r = 0; r < n; ++r) {
          float* s = S.data() + r * TQ;
          for (int c = 0; c < TQ; ++c) {
            const float e = cpu::exp2_approx(s[c] - mx[c]);
            s[c] = e;
            sum[c] += e;
          }
        }
        for (int c = 0; c < TQ; ++c) {
          alpha[c] = cpu::exp2_approx(m_col[c] - mx[c]);
          l_col[c] = l_col[c] * alpha[c] + sum[c];
          m_col[c] = mx[c];
        }
        if (j0 > 0) {  // rescale the output rows (alpha is exactly 0 on the first tile)
          for (int r = 0; r < m; ++r) {
            float* o = O.data() + static_cast<int64_t>(r) * D;
            const float a = alpha[r];
            for (int c = 0; c < D; ++c) o[c] *= a;
          }
        }
        // O += P V, with P = (S^T)^T.
        cpu::gemm_tn_acc(S.data(), TQ, V.row(b, kvh, j0), V.s.seq, n, O.data(), D, m, D);
      }

      float* lse = p.lse + (b * p.heads + h) * p.q_len + i0;
      for (int r = 0; r < m; ++r) {
        const float inv = 1.0f / l_col[r];
        const float* o = O.data() + static_cast<int64_t>(r) * D;
        T* dst = row_ptr_mut<T>(p.out, p.o_stride, b, h, i0 + r);
        for (int c = 0; c < D; ++c) dst[c] = cpu::store_elem<T>(o[c] * inv);
        lse[r] = (m_col[r] + std::log2(l_col[r])) * kLn2;
      }
    }
  }
}

// Decode steps (a block of up to 16 queries against the cache) use 16-query tiles, so a step does
// not compute 64 columns of scores to keep 16 (or 1).
constexpr int kNarrowTileQ = 16;

template <typename T>
void forward_dispatch(const AttentionParams& p, int threads) {
  if (p.q_len <= kNarrowTileQ) forward_impl<T, kNarrowTileQ>(p, threads);
  else forward_impl<T, kTileQ>(p, threads);
}

// Splits the key tiles of one head into `chunks` contiguous ranges of about equal work (the work of
// a key tile is the number of query tiles that see it). Returns chunks + 1 boundaries.
std::vector<int64_t> split_key_tiles(const AttentionParams& p, int64_t chunks) {
  const int64_t q_tiles = (p.q_len + kTileQ - 1) / kTileQ;
  const int64_t k_tiles = (p.k_len + kTileK - 1) / kTileK;
  std::vector<int64_t> work(k_tiles, 0);
  for (int64_t qt = 0; qt < q_tiles; ++qt) {
    const int64_t last = std::min(p.q_len, (qt + 1) * kTileQ) - 1;
    const int64_t stop = std::min(p.k_len, key_end(p.q_offset + last, p.prefix_len, p.block_size));
    for (int64_t kt = 0; kt * kTileK < stop; ++kt) ++work[kt];
  }
  int64_t total = 0;
  for (int64_t w : work) total += w;
  std::vector<int64_t> bounds{0};
  int64_t acc = 0;
  for (int64_t kt = 0; kt < k_tiles; ++kt) {
    acc += work[kt];
    const int64_t c = static_cast<int64_t>(bounds.size());
    if (c < chunks && acc * chunks >= c * total) bounds.push_back(kt + 1);
  }
  while (static_cast<int64_t>(bounds.size()) <= chunks) bounds.push_back(k_tiles);  // empty ranges
  return bounds;
}

// An fp32 accumulator of (B, heads, N, D) rows: the output tensor itself when it is fp32, otherwise
// scratch that a final pass converts.
struct RowsAcc {
  float* data;
  Strides4 s;
  float* row(int64_t b, int64_t h, int64_t n) const {
    return data + b * s.batch + h * s.head + n * s.seq;
  }
};

template <typename T>
void backward_impl(const AttentionParams& p, int threads) {
  const int D = static_cast<int>(p.head_dim);
  const int64_t group = p.heads / p.kv_heads;
  const int64_t heads_total = p.batch * p.heads;
  const int64_t Nq = p.q_len, Nk = p.k_len;
  const int64_t q_tiles = (Nq + kTileQ - 1) / kTileQ;
  const int64_t k_tiles = (Nk + kTileK - 1) / kTileK;
  const int64_t tile_elems = static_cast<int64_t>(D) * kTileQ;
  const float s2 = p.scale * kLog2e;
  constexpr bool kF32 = std::is_same_v<T, float>;

  // Tasks are (batch, head, range of key tiles). With few heads, several ranges per head give every
  // thread work (at least 4 tasks per thread, dynamically scheduled); each extra range costs its own
  // partial dQ (summed at the end) and repeated per-query preparation, so one range per head is used
  // whenever the heads alone are enough.
  const int64_t chunks = std::max<int64_t>(
      1, std::min<int64_t>({k_tiles, 8, (4 * threads + heads_total - 1) / heads_total}));
  const std::vector<int64_t> bounds = split_key_tiles(p, chunks);
  const int64_t tasks = heads_total * chunks;

  std::vector<float> q_store, do_store, k_store, v_store;
  const RowsF32 Q = rows_f32<T>(p.q, p.q_stride, p.batch, p.heads, Nq, D, threads, q_store);
  const RowsF32 dO = rows_f32<T>(p.dout, p.do_stride, p.batch, p.heads, Nq, D, threads, do_store);
  const RowsF32 K = rows_f32<T>(p.k, p.k_stride, p.batch, p.kv_heads, Nk, D, threads, k_store);
  const RowsF32 V = rows_f32<T>(p.v, p.v_stride, p.batch, p.kv_heads, Nk, D, threads, v_store);

  // fp32 accumulators. dK, dV: one slot per query head (summed over each group at the end), or the
  // outputs themselves when they are fp32 and ungrouped; the first query tile that sees a key tile
  // writes its rows, so nothing is zeroed up front. dQ: one per key range, zeroed by its task; the
  // first range accumulates into an fp32 output in place.
  const bool dkv_direct = kF32 && group == 1;
  const int64_t head_elems = Nk * D, dq_elems = heads_total * Nq * D;
  std::unique_ptr<float[]> dkv;
  if (!dkv_direct) dkv.reset(new float[static_cast<size_t>(heads_total * 2 * head_elems)]);
  const int64_t dq_scratch = kF32 ? chunks - 1 : chunks;
  std::unique_ptr<float[]> dq_part;
  if (dq_scratch > 0) dq_part.reset(new float[static_cast<size_t>(dq_scratch * dq_elems)]);
  const Strides4 q_dense{p.heads * Nq * D, Nq * D, D};
  auto dq_acc = [&](int64_t chunk) -> RowsAcc {
    if (kF32 && chunk == 0) return {static_cast<float*>(p.dq), p.dq_stride};
    return {dq_part.get() + (chunk - (kF32 ? 1 : 0)) * dq_elems, q_dense};
  };
  auto dk_acc = [&](bool value) -> RowsAcc {  // value: dV instead of dK
    if (dkv_direct) {
      return value ? RowsAcc{static_cast<float*>(p.dv), p.dv_stride}
                   : RowsAcc{static_cast<float*>(p.dk), p.dk_stride};
    }
    return {dkv.get() + (value ? head_elems : 0), Strides4{p.heads * 2 * head_elems, 2 * head_elems, D}};
  };
  const RowsAcc dK_acc = dk_acc(false), dV_acc = dk_acc(true);

#pragma omp parallel num_threads(threads)
  {
    // Q^T and dO^T of every query tile of the task: [q_tiles][D][kTileQ].
    const size_t per_query = static_cast<size_t>(q_tiles) * kTileQ;
    std::vector<float> Qt(static_cast<size_t>(q_tiles * tile_elems)), dOt(Qt.size());
    std::vector<float> delta(per_query), lse2(per_query);
    std::vector<int64_t> kend(per_query);
    std::vector<float> P(static_cast<size_t>(kTileK) * kTileQ), dS(static_cast<size_t>(kTileK) * kTileQ);
    alignas(64) int lim[kTileQ];

#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t bh = t / chunks, chunk = t % chunks;
      const int64_t b = bh / p.heads, h = bh % p.heads, kvh = h / group;
      const int64_t j_begin = bounds[chunk] * kTileK, j_end = std::min(Nk, bounds[chunk + 1] * kTileK);
      const RowsAcc dQ = dq_acc(chunk);
      const int64_t ldq = dQ.s.seq;
      for (int64_t i = 0; i < Nq; ++i) std::fill(dQ.row(b, h, i), dQ.row(b, h, i) + D, 0.0f);
      if (j_begin >= j_end) continue;

      // Per query tile that sees a key of the range: Q^T, dO^T, delta = rowsum(dO * O), lse in log2
      // units, visibility limits. Earlier tiles see none of these keys (key_end is monotone).
      const float* lse = p.lse + bh * Nq;
      int64_t qt_first = q_tiles;
      for (int64_t qt = q_tiles - 1; qt >= 0; --qt) {
        const int64_t i0 = qt * kTileQ;
        const int m = static_cast<int>(std::min<int64_t>(kTileQ, Nq - i0));
        int64_t* ke = kend.data() + i0;
        column_key_ends(p, i0, m, ke);
        if (ke[kTileQ - 1] <= j_begin) break;
        qt_first = qt;
        transpose_rows(Q.row(b, h, i0), Q.s.seq, m, D, 1.0f, Qt.data() + qt * tile_elems);
        transpose_rows(dO.row(b, h, i0), dO.s.seq, m, D, 1.0f, dOt.data() + qt * tile_elems);
        float* dl = delta.data() + i0;
        float* l2 = lse2.data() + i0;
        for (int r = 0; r < kTileQ; ++r) { dl[r] = 0.0f; l2[r] = 0.0f; }
        for (int r = 0; r < m; ++r) {
          const T* o = row_ptr<T>(p.out, p.o_stride, b, h, i0 + r);
          const float* g = dO.row(b, h, i0 + r);
          float acc = 0.0f;
          for (int c = 0; c < D; ++c) acc += cpu::load_elem(o[c]) * g[c];
          dl[r] = acc;
          l2[r] = lse[i0 + r] * kLog2e;
        }
      }

      for (int64_t j0 = j_begin; j0 < j_end; j0 += kTileK) {
        const int n = static_cast<int>(std::min<int64_t>(kTileK, Nk - j0));
        const float* krows = K.row(b, kvh, j0);
        const float* vrows = V.row(b, kvh, j0);
        float* dK = dK_acc.row(b, h, j0);  // (b, h): a query head's slot, or the kv head when direct
        float* dV = dV_acc.row(b, h, j0);
        const int64_t ldk = dK_acc.s.seq, ldv = dV_acc.s.seq;
        bool first = true;  // the first query tile that sees the key tile initialises dK, dV
        for (int64_t qt = qt_first; qt < q_tiles; ++qt) {
          const int64_t i0 = qt * kTileQ;
          const int m = static_cast<int>(std::min<int64_t>(kTileQ, Nq - i0));
          const int64_t* ke = kend.data() + i0;
          if (ke[kTileQ - 1] <= j0) continue;  // no query of this tile sees any key of this tile
          // P^T = exp2(s2 K Q^T - lse2), dS^T = scale P^T * (V dO^T - delta), one column per query.
          // (dS carries the softmax scale, so dK and dQ come out scaled.)
          cpu::gemm_nn(krows, K.s.seq, Qt.data() + qt * tile_elems, kTileQ, D, P.data(), kTileQ, n, kTileQ);
          cpu::gemm_nn(vrows, V.s.seq, dOt.data() + qt * tile_elems, kTileQ, D, dS.data(), kTileQ, n, kTileQ);
          const float* l2 = lse2.data() + i0;
          const float* dl = delta.data() + i0;
          const float sc = p.scale;
          for (int r = 0; r < n; ++r) {
            float* pr = P.data() + r * kTileQ;
            float* ds = dS.data() + r * kTileQ;
            for (int c = 0; c < kTileQ; ++c) {
              const float e = cpu::exp2_approx(pr[c] * s2 - l2[c]);
              pr[c] = e;
              ds[c] = e * (ds[c] - dl[c]) * sc;
            }
          }
          if (j0 + n > ke[0]) {  // zero the keys a query cannot see
            visible_in_tile(ke, j0, lim);
            for (int r = 0; r < n; ++r) {
              float* pr = P.data() + r * kTileQ;
              float* ds = dS.data() + r * kTileQ;
              for (int c = 0; c < kTileQ; ++c) {
                pr[c] = r < lim[c] ? pr[c] : 0.0f;
                ds[c] = r < lim[c] ? ds[c] : 0.0f;
              }
            }
          }
          // dV += P^T dO, dK += dS^T Q, dQ += dS K (= (dS^T)^T K).
          const float* dorows = dO.row(b, h, i0);
          const float* qrows = Q.row(b, h, i0);
          if (first) {
            cpu::gemm_nn(P.data(), kTileQ, dorows, dO.s.seq, m, dV, ldv, n, D);
            cpu::gemm_nn(dS.data(), kTileQ, qrows, Q.s.seq, m, dK, ldk, n, D);
            first = false;
          } else {
            cpu::gemm_nn_acc(P.data(), kTileQ, dorows, dO.s.seq, m, dV, ldv, n, D);
            cpu::gemm_nn_acc(dS.data(), kTileQ, qrows, Q.s.seq, m, dK, ldk, n, D);
          }
          cpu::gemm_tn_acc(dS.data(), kTileQ, krows, K.s.seq, n, dQ.row(b, h, i0), ldq, m, D);
        }
        if (first) {  // no query sees these keys
          for (int r = 0; r < n; ++r) {
            std::fill(dK + r * ldk, dK + r * ldk + D, 0.0f);
            std::fill(dV + r * ldv, dV + r * ldv + D, 0.0f);
          }
        }
      }
    }

    // dQ: the sum of the key ranges' partials. dK, dV: the sum of the query heads of each group.
    // Sums accumulate in place into the first partial (row by row, so the loops vectorise).
    if (!kF32 || chunks > 1) {
#pragma omp for schedule(static) nowait
      for (int64_t bh = 0; bh < heads_total; ++bh) {
        const int64_t b = bh / p.heads, h = bh % p.heads;
        for (int64_t i = 0; i < Nq; ++i) {
          float* acc = dq_acc(0).row(b, h, i);
          for (int64_t chunk = 1; chunk < chunks; ++chunk) {
            const float* part = dq_acc(chunk).row(b, h, i);
            for (int c = 0; c < D; ++c) acc[c] += part[c];
          }
          if constexpr (!kF32) {
            T* dst = row_ptr_mut<T>(p.dq, p.dq_stride, b, h, i);
            for (int c = 0; c < D; ++c) dst[c] = cpu::store_elem<T>(acc[c]);
          }
        }
      }
    }
    if (!dkv_direct) {
#pragma omp for schedule(static)
      for (int64_t bk = 0; bk < p.batch * p.kv_heads; ++bk) {
        const int64_t b = bk / p.kv_heads, kvh = bk % p.kv_heads;
        const int64_t h0 = kvh * group;  // first query head of the group
        for (int64_t j = 0; j < Nk; ++j) {
          float* sk = dK_acc.row(b, h0, j);
          float* sv = dV_acc.row(b, h0, j);
          for (int64_t g = 1; g < group; ++g) {
            const float* gk = dK_acc.row(b, h0 + g, j);
            const float* gv = dV_acc.row(b, h0 + g, j);
            for (int c = 0; c < D; ++c) { sk[c] += gk[c]; sv[c] += gv[c]; }
          }
          T* dk = row_ptr_mut<T>(p.dk, p.dk_stride, b, kvh, j);
          T* dv = row_ptr_mut<T>(p.dv, p.dv_stride, b, kvh, j);
          for (int c = 0; c < D; ++c) {
            dk[c] = cpu::store_elem<T>(sk[c]);
            dv[c] = cpu::store_elem<T>(sv[c]);
          }
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
    case DType::kFloat32: forward_dispatch<float>(p, threads); break;
    case DType::kFloat16: forward_dispatch<Half>(p, threads); break;
    case DType::kBFloat16: forward_dispatch<BFloat16>(p, threads); break;
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
