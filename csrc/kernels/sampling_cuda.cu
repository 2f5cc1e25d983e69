// CUDA block sampling (sampling.h): one thread block per (b, l) row of the (B, L, V) logits, every
// row in parallel, no host synchronisation.
//
// A row is too long to keep in shared memory as doubles, so every pass re-reads it from global
// memory (L2-resident after the first pass) and recomputes the guided logit x with the same
// correctly rounded operations, which gives bit-identical values in every pass. The passes:
//
//   P1  x, validity (NaN / +inf anywhere, or no finite entry), argmax with the lowest index
//       (greedy ends here) and M = max x.
//   P2  top-k: k-th largest x by a radix select, 11 bits a level, on the order-preserving key of x.
//   P3  S = sum of e = exp((x - M) / T) over the top-k set.
//   P4  top-p: radix select on the key of e, descending the digits by the mass of each bucket.
//   P5  draw: scan of the kept e in vocabulary order, chunk by chunk, until the running sum passes
//       the target.
//
// Masses are summed as 128-bit fixed point, floor(e * 2^95) (e <= 1, so an entry fits in 96 bits and
// a row of up to 2^32 entries in 128). Integer sums are exact and independent of summation order,
// so shared-memory atomics, block scans and the thread count never change a result: the kernel is
// deterministic, and its sums are the exact sums of the e up to 2^-95 per entry (the CPU's and the
// reference's sequential fp64 sums differ from them by rounding only, ~1e-15 relative).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math_constants.h>

#include <climits>
#include <cstdint>

#include "common.h"
#include "philox.h"
#include "sampling.h"

namespace nbp {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kRadixBits = 11;
constexpr int kBins = 1 << kRadixBits;             // 2048 histogram buckets
constexpr int kBinsPerThread = kBins / kThreads;   // 4
constexpr int kScanItems = 4;                      // consecutive entries per thread in the draw
static_assert(kThreads % 32 == 0 && kWarps <= 32, "block scan assumes at most 32 warps");
static_assert(kBins % kThreads == 0, "every thread owns the same number of buckets");

// ----------------------------------------------------------------------------------------------
// 128-bit unsigned fixed point.

struct U128 {
  unsigned long long lo, hi;
};

__device__ __forceinline__ U128 u128_zero() { return U128{0ull, 0ull}; }

__device__ __forceinline__ U128 operator+(U128 a, U128 b) {
  U128 r;
  r.lo = a.lo + b.lo;
  r.hi = a.hi + b.hi + (r.lo < a.lo ? 1ull : 0ull);
  return r;
}

__device__ __forceinline__ U128 operator-(U128 a, U128 b) {  // requires a >= b
  U128 r;
  r.lo = a.lo - b.lo;
  r.hi = a.hi - b.hi - (a.lo < b.lo ? 1ull : 0ull);
  return r;
}

__device__ __forceinline__ bool operator<(U128 a, U128 b) {
  return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo);
}

__device__ __forceinline__ bool is_zero(U128 a) { return (a.lo | a.hi) == 0ull; }

constexpr int kFixedFracBits = 95;

// floor(y * 2^95) for finite y >= 0 with y < 2^32 (entries e <= 1; targets <= V). Values below
// 2^-1022 (subnormals) are below the resolution and give 0.
__device__ __forceinline__ U128 to_fixed(double y) {
  const unsigned long long bits = static_cast<unsigned long long>(__double_as_longlong(y));
  const int biased = static_cast<int>((bits >> 52) & 0x7ffull);
  if (y <= 0.0 || biased == 0) return u128_zero();
  const unsigned long long m = (bits & ((1ull << 52) - 1ull)) | (1ull << 52);  // 53 bits
  int shift = biased - 1023 - 52 + kFixedFracBits;  // y * 2^95 = m * 2^shift
  if (shift > 127 - 53) shift = 127 - 53;           // unreachable for y < 2^32; keeps it in range
  if (shift <= -64) return u128_zero();
  if (shift < 0) return U128{m >> (-shift), 0ull};
  if (shift == 0) return U128{m, 0ull};
  if (shift < 64) return U128{m << shift, m >> (64 - shift)};
  return U128{0ull, m << (shift - 64)};
}

__device__ __forceinline__ double from_fixed(U128 a) {
  const double hi = __ull2double_rn(a.hi) * 0x1p64;  // exact scaling
  return (hi + __ull2double_rn(a.lo)) * 0x1p-95;  // exact scaling
}

// ----------------------------------------------------------------------------------------------
// Keys. order_key is monotone: x < y  <=>  key(x) < key(y) for non-NaN doubles (-0 folded to +0).

__device__ __forceinline__ unsigned long long order_key(double x) {
  unsigned long long b = static_cast<unsigned long long>(__double_as_longlong(x));
  if ((b << 1) == 0ull) b = 0ull;  // -0.0 -> +0.0, so equal values have equal keys
  return (b & 0x8000000000000000ull) ? ~b : (b | 0x8000000000000000ull);
}

__device__ __forceinline__ double key_to_double(unsigned long long k) {
  const unsigned long long b = (k & 0x8000000000000000ull) ? (k & 0x7fffffffffffffffull) : ~k;
  return __longlong_as_double(static_cast<long long>(b));
}

// e >= 0 (never -0: exp returns +0), so its raw bits are already an order-preserving key.
__device__ __forceinline__ unsigned long long mass_key(double e) {
  return static_cast<unsigned long long>(__double_as_longlong(e));
}

// ----------------------------------------------------------------------------------------------
// Row access: the guided logit of entry v, recomputed identically on every call. The
// explicit _rn intrinsics keep nvcc from contracting to FMA, so the values are exactly the IEEE
// results of u + s * (c - u) and (x - M) * (1 / T) that the CPU kernel and the reference compute.

__device__ __forceinline__ double load_as_double(const float* p, int v) {
  return static_cast<double>(p[v]);
}
__device__ __forceinline__ double load_as_double(const __half* p, int v) {
  return static_cast<double>(__half2float(p[v]));
}
__device__ __forceinline__ double load_as_double(const __nv_bfloat16* p, int v) {
  return static_cast<double>(__bfloat162float(p[v]));
}

__device__ __forceinline__ bool is_nan_or_pos_inf(double x) {
  return isnan(x) || x == CUDART_INF;
}

template <typename T>
struct Row {
  const T* cond;    // V entries
  const T* uncond;  // V entries or nullptr
  double scale;     // cfg scale
  double inv_t;     // 1 / temperature

  // Guided logit; sets *bad for NaN or +inf in either input.
  __device__ __forceinline__ double guided(int v, bool* bad) const {
    double c = load_as_double(cond, v);
    *bad = is_nan_or_pos_inf(c);
    if (uncond != nullptr) {
      const double u = load_as_double(uncond, v);
      *bad = *bad || is_nan_or_pos_inf(u);
      if (c == -CUDART_INF || u == -CUDART_INF) {
        c = -CUDART_INF;
      } else {
        c = __dadd_rn(u, __dmul_rn(scale, __dsub_rn(c, u)));
      }
    }
    return c;
  }

  // The guided logit; temperature enters in softmax_e, as in the CPU kernel and the reference:
  // e = exp((x - max x) * (1 / T)). Dividing by T > 0 keeps the order, so top-k is unchanged.
  // Only called on rows already found valid.
  __device__ __forceinline__ double x(int v) const {
    bool bad;
    return guided(v, &bad);
  }
};

__device__ __forceinline__ double softmax_e(double x, double max_x, double inv_t) {
  return exp(__dmul_rn(__dsub_rn(x, max_x), inv_t));  // x = -inf gives +0
}

// ----------------------------------------------------------------------------------------------
// Block primitives. Every thread of the block must call them (they contain __syncthreads).

__device__ __forceinline__ unsigned int shfl_up(unsigned int a, int d) {
  return __shfl_up_sync(0xffffffffu, a, d);
}
__device__ __forceinline__ U128 shfl_up(U128 a, int d) {
  return U128{__shfl_up_sync(0xffffffffu, a.lo, d), __shfl_up_sync(0xffffffffu, a.hi, d)};
}
__device__ __forceinline__ unsigned int zero_of(unsigned int) { return 0u; }
__device__ __forceinline__ U128 zero_of(U128) { return u128_zero(); }

// Exclusive prefix sum over threads in threadIdx.x order; *total gets the block sum. `scratch`
// holds kWarps values. Sums are of integers, so the result does not depend on the tree.
template <typename V>
__device__ V block_exclusive_scan(V value, V* scratch, V* total) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  V incl = value;
#pragma unroll
  for (int d = 1; d < 32; d <<= 1) {
    const V other = shfl_up(incl, d);
    if (lane >= d) incl = incl + other;
  }
  V excl = shfl_up(incl, 1);
  if (lane == 0) excl = zero_of(value);
  if (lane == 31) scratch[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    V w = lane < kWarps ? scratch[lane] : zero_of(value);
#pragma unroll
    for (int d = 1; d < 32; d <<= 1) {
      const V other = shfl_up(w, d);
      if (lane >= d) w = w + other;
    }
    if (lane < kWarps) scratch[lane] = w;  // inclusive over warps
  }
  __syncthreads();
  if (warp > 0) excl = scratch[warp - 1] + excl;
  *total = scratch[kWarps - 1];
  __syncthreads();  // scratch may be reused right away
  return excl;
}

// (value, index) maximum with the lowest index among equal values; order-independent for non-NaN.
__device__ __forceinline__ void argmax_combine(double* val, int* idx, double ov, int oi) {
  if (ov > *val || (ov == *val && oi < *idx)) {
    *val = ov;
    *idx = oi;
  }
}

__device__ void block_argmax(double* val, int* idx, double* sval, int* sidx) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
#pragma unroll
  for (int d = 16; d > 0; d >>= 1) {
    const double ov = __shfl_down_sync(0xffffffffu, *val, d);
    const int oi = __shfl_down_sync(0xffffffffu, *idx, d);
    argmax_combine(val, idx, ov, oi);
  }
  if (lane == 0) {
    sval[warp] = *val;
    sidx[warp] = *idx;
  }
  __syncthreads();
  if (warp == 0) {
    double v = lane < kWarps ? sval[lane] : -CUDART_INF;
    int i = lane < kWarps ? sidx[lane] : INT_MAX;
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) {
      const double ov = __shfl_down_sync(0xffffffffu, v, d);
      const int oi = __shfl_down_sync(0xffffffffu, i, d);
      argmax_combine(&v, &i, ov, oi);
    }
    if (lane == 0) {
      sval[0] = v;
      sidx[0] = i;
    }
  }
  __syncthreads();
  *val = sval[0];
  *idx = sidx[0];
  __syncthreads();
}

__device__ int block_max_int(int value, int* scratch) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
#pragma unroll
  for (int d = 16; d > 0; d >>= 1) value = max(value, __shfl_down_sync(0xffffffffu, value, d));
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  if (warp == 0) {
    int v = lane < kWarps ? scratch[lane] : INT_MIN;
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) v = max(v, __shfl_down_sync(0xffffffffu, v, d));
    if (lane == 0) scratch[0] = v;
  }
  __syncthreads();
  const int result = scratch[0];
  __syncthreads();
  return result;
}

// ----------------------------------------------------------------------------------------------
// Shared memory of one block.

struct Shared {
  union {
    unsigned int count[kBins];  // top-k histogram
    struct {
      unsigned long long lo[kBins];  // top-p histogram: 128-bit masses, split for atomics
      unsigned long long hi[kBins];
    } mass;
  } hist;
  unsigned int scan_u32[kWarps];
  U128 scan_u128[kWarps];
  double red_val[kWarps];
  int red_idx[kWarps];
  // Broadcast of the bucket a radix level selects.
  int sel_found;
  int sel_bin;
  unsigned int sel_count_above;
  U128 sel_mass_above;
  U128 sel_mass;
  int token;
};

// Bucket r-th from the top that thread owns: thread t owns buckets kBins-1-(t*kBinsPerThread+j),
// so thread order is descending bucket order and an exclusive scan gives the sum above.
__device__ __forceinline__ int owned_bin(int j) {
  return kBins - 1 - (static_cast<int>(threadIdx.x) * kBinsPerThread + j);
}

// Bits [lo, hi) of the 64-bit key form the digit of a level; levels descend from hi = 64.
__device__ __forceinline__ int level_lo(int hi) { return hi > kRadixBits ? hi - kRadixBits : 0; }
__device__ __forceinline__ unsigned long long digit_mask(int hi, int lo) {
  return (1ull << (hi - lo)) - 1ull;
}

// Step 3: the k-th largest x (1 <= k < V), by the order key. Exact; ties need no care because the
// caller keeps every x >= the returned value.
template <typename T>
__device__ double topk_threshold(const Row<T>& row, int V, int k, Shared& sh) {
  unsigned long long prefix = 0ull, prefix_mask = 0ull;
  unsigned int k_rem = static_cast<unsigned int>(k);  // rank still wanted inside the prefix
  for (int hi = 64; hi > 0; hi = level_lo(hi)) {
    const int lo = level_lo(hi);
    const unsigned long long dmask = digit_mask(hi, lo);
    for (int i = threadIdx.x; i < kBins; i += kThreads) sh.hist.count[i] = 0u;
    if (threadIdx.x == 0) {
      sh.sel_bin = 0;
      sh.sel_count_above = 0u;
    }
    __syncthreads();
    for (int v = threadIdx.x; v < V; v += kThreads) {
      const unsigned long long key = order_key(row.x(v));
      if ((key & prefix_mask) == prefix) {
        atomicAdd(&sh.hist.count[static_cast<int>((key >> lo) & dmask)], 1u);
      }
    }
    __syncthreads();
    unsigned int local = 0u;
#pragma unroll
    for (int j = 0; j < kBinsPerThread; ++j) local += sh.hist.count[owned_bin(j)];
    unsigned int level_total;  // unused
    unsigned int above = block_exclusive_scan(local, sh.scan_u32, &level_total);
#pragma unroll
    for (int j = 0; j < kBinsPerThread; ++j) {
      const int bin = owned_bin(j);
      const unsigned int c = sh.hist.count[bin];
      if (above < k_rem && k_rem <= above + c) {  // exactly one bucket satisfies this
        sh.sel_bin = bin;
        sh.sel_count_above = above;
      }
      above += c;
    }
    __syncthreads();
    k_rem -= sh.sel_count_above;
    prefix |= static_cast<unsigned long long>(sh.sel_bin) << lo;
    prefix_mask |= dmask << lo;
    __syncthreads();  // sel_* and the histogram are rewritten by the next level
  }
  return key_to_double(prefix);
}

// Step 5: the threshold e_(m) of top-p, and the exact mass of the entries it keeps. Among the
// top-k set (x >= x_cut), m is the fewest largest e whose mass reaches `target`; descending the
// digits of the key of e, whole buckets are taken from the top while their mass stays below the
// remaining target, and the level recurses into the bucket where the target is reached. The last
// level's bucket holds one value: the threshold. Returns 0 (keep all) if the whole mass is below the
// target, which only rounding of p * S can cause.
template <typename T>
__device__ double topp_threshold(const Row<T>& row, int V, double x_cut, double max_x, U128 target,
                                 U128 total_mass, U128* kept_mass, Shared& sh) {
  unsigned long long prefix = 0ull, prefix_mask = 0ull;
  U128 rem = target;       // mass still wanted inside the prefix
  U128 taken = u128_zero();  // mass of the buckets taken whole so far
  for (int hi = 64; hi > 0; hi = level_lo(hi)) {
    const int lo = level_lo(hi);
    const unsigned long long dmask = digit_mask(hi, lo);
    for (int i = threadIdx.x; i < kBins; i += kThreads) {
      sh.hist.mass.lo[i] = 0ull;
      sh.hist.mass.hi[i] = 0ull;
    }
    if (threadIdx.x == 0) {
      sh.sel_found = 0;
      sh.sel_bin = 0;
      sh.sel_mass_above = u128_zero();
      sh.sel_mass = u128_zero();
    }
    __syncthreads();
    for (int v = threadIdx.x; v < V; v += kThreads) {
      const double x = row.x(v);
      if (!(x >= x_cut)) continue;
      const double e = softmax_e(x, max_x, row.inv_t);
      const unsigned long long key = mass_key(e);
      if ((key & prefix_mask) != prefix) continue;
      const U128 f = to_fixed(e);
      if (is_zero(f)) continue;
      const int bin = static_cast<int>((key >> lo) & dmask);
      // 128-bit add as two 64-bit atomics: the carry out of the low word goes to the high word, so
      // the final value is the exact sum whatever the interleaving.
      const unsigned long long old = atomicAdd(&sh.hist.mass.lo[bin], f.lo);
      const unsigned long long carry = (old + f.lo < old) ? 1ull : 0ull;
      if (f.hi + carry != 0ull) atomicAdd(&sh.hist.mass.hi[bin], f.hi + carry);
    }
    __syncthreads();
    U128 local = u128_zero();
#pragma unroll
    for (int j = 0; j < kBinsPerThread; ++j) {
      const int bin = owned_bin(j);
      local = local + U128{sh.hist.mass.lo[bin], sh.hist.mass.hi[bin]};
    }
    U128 level_total;  // unused
    U128 above = block_exclusive_scan(local, sh.scan_u128, &level_total);
#pragma unroll
    for (int j = 0; j < kBinsPerThread; ++j) {
      const int bin = owned_bin(j);
      const U128 m = U128{sh.hist.mass.lo[bin], sh.hist.mass.hi[bin]};
      const U128 next = above + m;
      if (above < rem && !(next < rem)) {  // above < rem <= above + m: exactly one bucket
        sh.sel_found = 1;
        sh.sel_bin = bin;
        sh.sel_mass_above = above;
        sh.sel_mass = m;
      }
      above = next;
    }
    __syncthreads();
    if (!sh.sel_found) {
      // Only possible at the first level (a selected bucket always holds the remaining target).
      *kept_mass = total_mass;
      __syncthreads();
      return 0.0;
    }
    rem = rem - sh.sel_mass_above;
    taken = taken + sh.sel_mass_above;
    prefix |= static_cast<unsigned long long>(sh.sel_bin) << lo;
    prefix_mask |= dmask << lo;
    if (lo == 0) taken = taken + sh.sel_mass;  // the entries equal to the threshold
    __syncthreads();
  }
  *kept_mass = taken;
  return __longlong_as_double(static_cast<long long>(prefix));
}

// ----------------------------------------------------------------------------------------------
// The kernel: one block per (b, l).

template <typename T>
__global__ void __launch_bounds__(kThreads)
sample_block_kernel(SamplingParams p, int32_t* error_flag) {
  __shared__ Shared sh;

  const int64_t L = p.block_len;
  const int64_t row_id = blockIdx.x;
  const int64_t b = row_id / L;
  const int64_t l = row_id % L;
  const int V = static_cast<int>(p.vocab);

  Row<T> row;
  row.cond = static_cast<const T*>(p.logits) + b * p.logits_stride_b + l * p.logits_stride_l;
  row.uncond = p.uncond_logits == nullptr
                   ? nullptr
                   : static_cast<const T*>(p.uncond_logits) + b * p.uncond_stride_b +
                         l * p.uncond_stride_l;
  row.scale = p.guidance_scale;
  row.inv_t = p.temperature > 0.0 ? __ddiv_rn(1.0, p.temperature) : 0.0;
  const bool greedy = p.temperature == 0.0;

  // P1 (steps 1-2): validity, argmax with the lowest index, max.
  bool bad = false;
  double best = -CUDART_INF;
  int best_idx = INT_MAX;
  for (int v = threadIdx.x; v < V; v += kThreads) {
    bool bad_v;
    const double x = row.guided(v, &bad_v);
    bad = bad || bad_v || is_nan_or_pos_inf(x);
    argmax_combine(&best, &best_idx, x, v);
  }
  bad = __syncthreads_or(bad) != 0;
  block_argmax(&best, &best_idx, sh.red_val, sh.red_idx);
  if (bad || best == -CUDART_INF) {  // NaN or +inf, or no finite entry
    if (threadIdx.x == 0) {
      p.tokens[row_id] = -1;
      if (error_flag != nullptr) *error_flag = 1;
    }
    return;
  }
  if (greedy) {
    if (threadIdx.x == 0) p.tokens[row_id] = best_idx;
    return;
  }
  const double max_x = best;

  // P2 (step 3): top-k cut on x; -inf keeps everything.
  double x_cut = -CUDART_INF;
  if (p.top_k > 0 && p.top_k < p.vocab) {
    x_cut = topk_threshold(row, V, static_cast<int>(p.top_k), sh);
  }

  // P3 (step 4): S = sum of e over the top-k set. The max entry (e = 1) is in it, so S >= 1.
  U128 mass = u128_zero();
  for (int v = threadIdx.x; v < V; v += kThreads) {
    const double x = row.x(v);
    if (x >= x_cut) mass = mass + to_fixed(softmax_e(x, max_x, row.inv_t));
  }
  U128 total_mass;
  block_exclusive_scan(mass, sh.scan_u128, &total_mass);

  // P4 (step 5): top-p cut on e; 0 keeps everything.
  double e_cut = 0.0;
  U128 kept_mass = total_mass;
  if (p.top_p < 1.0) {
    const U128 target = to_fixed(p.top_p * from_fixed(total_mass));
    e_cut = topp_threshold(row, V, x_cut, max_x, target, total_mass, &kept_mass, sh);
  }

  // P5 (step 6): the first kept v whose inclusive running mass exceeds u * kept_mass. With exact
  // running sums R, that is the unique v with R(v-1) <= target < R(v), which has positive mass.
  const double u = sampling_uniform(static_cast<uint64_t>(p.seeds[b]), p.offset,
                                    static_cast<uint32_t>(l));
  const U128 target = to_fixed(u * from_fixed(kept_mass));
  if (threadIdx.x == 0) sh.token = -1;
  __syncthreads();
  U128 carry = u128_zero();  // mass of the chunks before this one
  int last_positive = -1;    // this thread's last kept index with positive mass (fallback)
  for (int base = 0; base < V; base += kThreads * kScanItems) {
    const int first = base + static_cast<int>(threadIdx.x) * kScanItems;
    U128 m[kScanItems];
    U128 local = u128_zero();
#pragma unroll
    for (int j = 0; j < kScanItems; ++j) {
      m[j] = u128_zero();
      const int v = first + j;
      if (v < V) {
        const double x = row.x(v);
        if (x >= x_cut) {
          const double e = softmax_e(x, max_x, row.inv_t);
          if (e >= e_cut) m[j] = to_fixed(e);
        }
        if (!is_zero(m[j])) last_positive = v;
      }
      local = local + m[j];
    }
    U128 chunk_total;
    U128 run = carry + block_exclusive_scan(local, sh.scan_u128, &chunk_total);
#pragma unroll
    for (int j = 0; j < kScanItems; ++j) {
      const U128 next = run + m[j];
      if (!(target < run) && target < next) sh.token = first + j;  // at most one thread, once
      run = next;
    }
    __syncthreads();
    if (sh.token >= 0) break;  // uniform: every thread reads the same value after the barrier
    carry = carry + chunk_total;
  }
  const int found = sh.token;
  if (found >= 0) {
    if (threadIdx.x == 0) p.tokens[row_id] = found;
  } else {
    // Rounding put the target at or past the total: the last kept index with positive mass.
    const int last = block_max_int(last_positive, sh.red_idx);
    if (threadIdx.x == 0) p.tokens[row_id] = last;
  }
}

// A batch row b with any failed position gets -1 at all of its L positions. Separate launch, so it
// runs after every (b, l) block has written its token.
__global__ void spread_failed_rows(int64_t* tokens, int64_t L) {
  int64_t* row = tokens + static_cast<int64_t>(blockIdx.x) * L;
  int failed = 0;
  for (int64_t l = threadIdx.x; l < L; l += blockDim.x) failed |= (row[l] < 0) ? 1 : 0;
  failed = __syncthreads_or(failed);
  if (failed) {
    for (int64_t l = threadIdx.x; l < L; l += blockDim.x) row[l] = -1;
  }
}

template <typename T>
Status launch(const SamplingParams& p, int32_t* error_flag, cudaStream_t stream) {
  const int64_t rows = p.batch * p.block_len;
  sample_block_kernel<T><<<static_cast<unsigned int>(rows), kThreads, 0, stream>>>(p, error_flag);
  if (cudaGetLastError() != cudaSuccess) return Status::kCudaError;
  spread_failed_rows<<<static_cast<unsigned int>(p.batch), 128, 0, stream>>>(p.tokens,
                                                                             p.block_len);
  if (cudaGetLastError() != cudaSuccess) return Status::kCudaError;
  return Status::kOk;
}

}  // namespace

int64_t sample_block_cuda_workspace_bytes(const SamplingParams& /*p*/) { return 0; }

Status sample_block_cuda(const SamplingParams& p, void* /*workspace*/, int32_t* error_flag,
                         void* stream) {
  const Status status = validate_sampling(p);
  if (status != Status::kOk) return status;
  // Limits of this kernel: int indices inside a row, one block per (b, l) row in a 1-D grid.
  if (p.vocab < 1 || p.vocab > INT_MAX || p.batch < 0 || p.block_len < 0 ||
      (p.block_len > 0 && p.batch > INT_MAX / p.block_len)) {
    return Status::kInvalidArgument;
  }
  if (p.batch == 0 || p.block_len == 0) return Status::kOk;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (p.dtype) {
    case DType::kFloat32: return launch<float>(p, error_flag, s);
    case DType::kFloat16: return launch<__half>(p, error_flag, s);
    case DType::kBFloat16: return launch<__nv_bfloat16>(p, error_flag, s);
  }
  return Status::kInvalidArgument;
}

bool cuda_kernels_built() { return true; }

}  // namespace nbp
