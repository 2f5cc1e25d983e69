// Parallel block sampling on the CPU: one task per (row, position), OpenMP across tasks. The six
// steps follow sampling.h; top-k is a selection (nth_element) and top-p a mass-weighted
// quickselect, so nothing sorts the whole vocabulary.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__AVX512F__) && defined(__AVX512VL__)
#include <immintrin.h>
#endif

#include "cpu_math.h"
#include "philox.h"
#include "sampling.h"

namespace nbp {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int kLanes = 8;  // padding of the scratch rows

template <typename T>
inline double load_logit(const void* base, int64_t offset) {
  return static_cast<double>(cpu::load_elem(static_cast<const T*>(base)[offset]));
}

// e^x for x <= 0 in double, ~1 ulp, vectorisable; 0 below -708 and for -inf.
inline double exp_nonpositive(double x) {
  const bool under = !(x >= -708.0);  // also -inf and NaN
  x = under ? -708.0 : x;
  const double magic = 6755399441055744.0;  // 1.5 * 2^52: rounds to the nearest integer
  const double n = (x * 1.4426950408889634 + magic) - magic;
  const double r = (x - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  const uint64_t bits = static_cast<uint64_t>(static_cast<int64_t>(n) + 1023) << 52;
  double scale;
  std::memcpy(&scale, &bits, 8);
  return under ? 0.0 : p * scale;
}

// Per-thread scratch rows, kept between calls (OpenMP reuses its threads), so a call allocates and
// touches fresh memory only when the vocabulary grows.
struct Scratch {
  std::vector<double> x, val, e, buf, mass;
  std::vector<int32_t> idx;
  void reserve(int64_t vocab) {
    const size_t n = static_cast<size_t>(vocab + kLanes);
    if (x.size() >= n) return;
    x.resize(n), val.resize(n), e.resize(n), buf.resize(n), idx.resize(n);
  }
};

Scratch& thread_scratch(int64_t vocab) {
  thread_local Scratch s;
  s.reserve(vocab);
  return s;
}

// The (value, index) pairs of x[0, n) with x >= thr and x > -inf, in index order. `val` and `idx`
// need kLanes entries of slack past the last kept one.
int64_t gather_at_least(const double* x, int64_t n, double thr, double* val, int32_t* idx) {
  int64_t m = 0, v = 0;
#if defined(__AVX512F__) && defined(__AVX512VL__)
  // Register-form compress, then a full-width store (the memory form is slow on some cores).
  const __m512d vthr = _mm512_set1_pd(thr), vninf = _mm512_set1_pd(-kInf);
  __m256i vi = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i eight = _mm256_set1_epi32(8);
  for (; v + 8 <= n; v += 8) {
    const __m512d y = _mm512_loadu_pd(x + v);
    const __mmask8 k = _mm512_cmp_pd_mask(y, vthr, _CMP_GE_OQ) & _mm512_cmp_pd_mask(y, vninf, _CMP_GT_OQ);
    _mm512_storeu_pd(val + m, _mm512_maskz_compress_pd(k, y));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + m), _mm256_maskz_compress_epi32(k, vi));
    m += __builtin_popcount(static_cast<unsigned>(k));
    vi = _mm256_add_epi32(vi, eight);
  }
#endif
  for (; v < n; ++v) {
    const double y = x[v];
    val[m] = y;
    idx[m] = static_cast<int32_t>(v);
    m += (y >= thr) & (y > -kInf);
  }
  return m;
}

// The values of x[0, n) inside [lo, hi] (in `cand`, kLanes entries of slack), and the count above hi.
int64_t gather_between(const double* x, int64_t n, double lo, double hi, double* cand, int64_t* above) {
  int64_t m = 0, a = 0, v = 0;
#if defined(__AVX512F__) && defined(__AVX512VL__)
  const __m512d vlo = _mm512_set1_pd(lo), vhi = _mm512_set1_pd(hi);
  for (; v + 8 <= n; v += 8) {
    const __m512d y = _mm512_loadu_pd(x + v);
    const __mmask8 gt = _mm512_cmp_pd_mask(y, vhi, _CMP_GT_OQ);
    const __mmask8 in = _mm512_cmp_pd_mask(y, vlo, _CMP_GE_OQ) & static_cast<__mmask8>(~gt);
    _mm512_storeu_pd(cand + m, _mm512_maskz_compress_pd(in, y));
    m += __builtin_popcount(static_cast<unsigned>(in));
    a += __builtin_popcount(static_cast<unsigned>(gt));
  }
#endif
  for (; v < n; ++v) {
    const double y = x[v];
    a += y > hi;
    cand[m] = y;
    m += (y <= hi) & (y >= lo);
  }
  *above = a;
  return m;
}

// Brackets [lo, hi] around the k-th largest of x[0, n) with high probability, from the order
// statistics of a strided sample. Returns false when n is too small for sampling to pay.
bool bracket_kth(const double* x, int64_t n, int64_t k, double* lo, double* hi) {
  constexpr int64_t kSample = 1024;
  if (n <= 8 * kSample) return false;
  double sample[kSample];
  const int64_t stride = n / kSample;
  for (int64_t i = 0; i < kSample; ++i) sample[i] = x[i * stride];
  // Entries of the sample above the k-th largest: binomial with mean ks; 4 standard deviations each way.
  const double q = static_cast<double>(k) / static_cast<double>(n), ks = q * kSample;
  const int64_t margin = 8 + static_cast<int64_t>(4.0 * std::sqrt(ks * (1.0 - q) + 1.0));
  const int64_t hi_at = static_cast<int64_t>(ks) - margin, lo_at = static_cast<int64_t>(ks) + margin;
  auto desc = std::greater<double>();
  if (lo_at < kSample) {
    std::nth_element(sample, sample + lo_at, sample + kSample, desc);
    *lo = sample[lo_at];
  } else {
    *lo = -kInf;
  }
  if (hi_at >= 0) {
    std::nth_element(sample, sample + hi_at, sample + std::min(lo_at, kSample), desc);
    *hi = sample[hi_at];
  } else {
    *hi = kInf;
  }
  return true;
}

// The (rank + 1)-th largest of a[0, m): a count histogram over [min, max] finds the bin that holds
// it and the selection runs on that bin alone. Uses tmp[0, m + kLanes).
double kth_largest(const double* a, int64_t m, int64_t rank, double* tmp) {
  constexpr int kHistBins = 512;
  double lo = kInf, hi = -kInf;
#pragma omp simd reduction(min : lo) reduction(max : hi)
  for (int64_t i = 0; i < m; ++i) {
    lo = a[i] < lo ? a[i] : lo;
    hi = a[i] > hi ? a[i] : hi;
  }
  const double scale = kHistBins / (hi - lo);
  if (m <= 4 * kHistBins || !(scale > 0.0 && scale < kInf)) {  // small, all equal, or -inf among them
    std::copy(a, a + m, tmp);
    std::nth_element(tmp, tmp + rank, tmp + m, std::greater<double>());
    return tmp[rank];
  }
  // floor((y - lo) * scale) never decreases as y grows, so each bin is a contiguous value range.
  auto bin_of = [&](double y) { return std::min(kHistBins - 1, static_cast<int>((y - lo) * scale)); };
  int64_t count[kHistBins] = {};
  for (int64_t i = 0; i < m; ++i) ++count[bin_of(a[i])];
  int bin = kHistBins - 1;
  while (rank >= count[bin]) rank -= count[bin--];
  int64_t n = 0;
  for (int64_t i = 0; i < m; ++i) {
    tmp[n] = a[i];
    n += bin_of(a[i]) == bin;
  }
  std::nth_element(tmp, tmp + rank, tmp + n, std::greater<double>());
  return tmp[rank];
}

// Step 5: the value e_(m) of the m-th largest entry, m being the fewest largest entries whose sum
// reaches `need`. Reorders w[0, n).
double top_p_threshold(double* w, int64_t n, double need) {
  int64_t lo = 0, hi = n;
  while (hi - lo > 16) {
    // Median of three as the pivot; three-way partition: [lo, a) > pivot, [a, c) == pivot, [c, hi) <.
    const double x0 = w[lo], x1 = w[lo + (hi - lo) / 2], x2 = w[hi - 1];
    const double pivot = std::max(std::min(x0, x1), std::min(std::max(x0, x1), x2));
    int64_t a = lo, i = lo, c = hi;
    double mass_gt = 0.0, mass_eq = 0.0;
    while (i < c) {
      const double v = w[i];
      if (v > pivot) { std::swap(w[a++], w[i++]); mass_gt += v; }
      else if (v < pivot) { std::swap(w[i], w[--c]); }
      else { ++i; mass_eq += v; }
    }
    if (mass_gt >= need) { hi = a; continue; }
    if (mass_gt + mass_eq >= need) return pivot;
    need -= mass_gt + mass_eq;
    lo = c;
    if (lo >= hi) return pivot;  // rounding: the whole row is kept
  }
  std::sort(w + lo, w + hi, [](double u, double v) { return u > v; });
  double acc = 0.0;
  for (int64_t i = lo; i < hi; ++i) {
    acc += w[i];
    if (acc >= need) return w[i];
  }
  return hi > lo ? w[hi - 1] : 0.0;  // rounding: keep everything that is left
}

// Histogram of weights in (0, 1] by their leading bits: 64 bins per octave for 2^-64 <= w <= 1,
// bin 0 for everything smaller. A positive double's bit pattern grows with its value, so a bin
// holds a contiguous range of values.
constexpr int kBinBits = 6;
constexpr uint64_t kFirstKey = (1023ull - 64ull) << kBinBits;           // key of 2^-64
constexpr int kBins = static_cast<int>(((1023ull << kBinBits) - kFirstKey) + 2);  // ... up to 1.0

inline int weight_bin(double w) {
  uint64_t bits;
  std::memcpy(&bits, &w, 8);
  const uint64_t key = bits >> (52 - kBinBits);
  return key >= kFirstKey ? static_cast<int>(key - kFirstKey) + 1 : 0;
}

// Step 5 on the weights e[0, n): the histogram's mass, summed from the top bin down, locates the bin
// holding the cut; the exact selection then runs on that bin's entries only.
double top_p_cut(const double* e, int64_t n, double need, double* buf, std::vector<double>& mass) {
  mass.assign(kBins, 0.0);
  for (int64_t i = 0; i < n; ++i) mass[weight_bin(e[i])] += e[i];
  int bin = 0;
  double above = 0.0;
  for (int b = kBins - 1; b >= 0; --b) {
    if (mass[b] == 0.0) continue;
    bin = b;
    if (above + mass[b] >= need) break;
    above += mass[b];  // rounding can leave the sum short of `need`: then the lowest bin is the cut's
  }
  int64_t m = 0;
  for (int64_t i = 0; i < n; ++i) {
    buf[m] = e[i];
    m += weight_bin(e[i]) == bin;
  }
  return top_p_threshold(buf, m, need - above);
}

template <typename T>
Status sample_row(const SamplingParams& p, int64_t b, int64_t l, Scratch& s) {
  const int64_t V = p.vocab;
  const int64_t off_c = b * p.logits_stride_b + l * p.logits_stride_l;
  const int64_t off_u = b * p.uncond_stride_b + l * p.uncond_stride_l;
  double* x = s.x.data();

  // 1. guidance
  int bad = 0;
  if (p.uncond_logits != nullptr) {
    const double g = p.guidance_scale;
    for (int64_t v = 0; v < V; ++v) {
      const double c = load_logit<T>(p.logits, off_c + v), u = load_logit<T>(p.uncond_logits, off_u + v);
      bad |= (c != c) | (u != u) | (c == kInf) | (u == kInf);
      x[v] = (c == -kInf) | (u == -kInf) ? -kInf : u + g * (c - u);
    }
  } else {
    for (int64_t v = 0; v < V; ++v) x[v] = load_logit<T>(p.logits, off_c + v);
  }
  // Maximum and validity (NaN or +inf anywhere makes the row invalid).
  double mx = -kInf;
  int64_t finite = 0;
#pragma omp simd reduction(max : mx) reduction(| : bad) reduction(+ : finite)
  for (int64_t v = 0; v < V; ++v) {
    const double y = x[v];
    bad |= (y != y) | (y == kInf);
    finite += y > -kInf;
    mx = y > mx ? y : mx;
  }
  if (bad || mx == -kInf) return Status::kNonFiniteLogits;
  int64_t* out = p.tokens + b * p.block_len + l;

  // 2. temperature (0: greedy, the lowest index of the maximum)
  if (p.temperature == 0.0) {
    int64_t arg = 0;
    while (x[arg] != mx) ++arg;
    *out = arg;
    return Status::kOk;
  }
  const double inv_t = 1.0 / p.temperature;

  // 3. top-k: the k-th largest by selection (inside a sampled bracket when one holds it), then every
  // entry >= it (without top-k: every finite entry) gathered as (value, index) in vocabulary order.
  double* val = s.val.data();
  int32_t* idx = s.idx.data();
  double thr = -kInf;
  const bool use_top_k = p.top_k > 0 && p.top_k < finite;
  if (use_top_k) {
    double* cand = s.buf.data();
    double lo = -kInf, hi = kInf;
    bool found = false;
    if (bracket_kth(x, V, p.top_k, &lo, &hi)) {
      int64_t above = 0;
      const int64_t m = gather_between(x, V, lo, hi, cand, &above);
      if (above < p.top_k && above + m >= p.top_k) {
        thr = kth_largest(cand, m, p.top_k - 1 - above, s.e.data());
        found = true;
      }
    }
    if (!found) {  // the bracket missed (or the row is short): select over the whole row
      thr = kth_largest(x, V, p.top_k - 1, cand);
    }
  }
  const int64_t n = gather_at_least(x, V, thr, val, idx);

  // 4. softmax weights of the kept set
  double* e = s.e.data();
  double total = 0.0;
#pragma omp simd reduction(+ : total)
  for (int64_t i = 0; i < n; ++i) {
    const double w = exp_nonpositive((val[i] - mx) * inv_t);
    e[i] = w;
    total += w;
  }

  // 5. top-p: the threshold among the weights
  double tau = 0.0;
  if (p.top_p < 1.0) {
    tau = top_p_cut(e, n, p.top_p * total, s.buf.data(), s.mass);
  }

  // 6. inverse-CDF draw over the kept weights in vocabulary order, chunk sums first
  constexpr int64_t kChunk = 256;
  double mass = 0.0;
#pragma omp simd reduction(+ : mass)
  for (int64_t i = 0; i < n; ++i) mass += e[i] >= tau ? e[i] : 0.0;
  const double target = sampling_uniform(static_cast<uint64_t>(p.seeds[b]), p.offset,
                                         static_cast<uint32_t>(l)) * mass;
  double acc = 0.0;
  int64_t token = -1;
  for (int64_t c0 = 0; c0 < n && token < 0; c0 += kChunk) {
    const int64_t c1 = std::min(n, c0 + kChunk);
    double chunk = 0.0;
#pragma omp simd reduction(+ : chunk)
    for (int64_t i = c0; i < c1; ++i) chunk += e[i] >= tau ? e[i] : 0.0;
    if (acc + chunk <= target) {  // the running sum crosses the target in a later chunk
      acc += chunk;
      continue;
    }
    for (int64_t i = c0; i < c1; ++i) {
      if (!(e[i] > 0.0 && e[i] >= tau)) continue;
      acc += e[i];
      if (acc > target) {
        token = idx[i];
        break;
      }
    }
  }
  if (token < 0) {  // rounding left the draw past the end: the last kept index
    for (int64_t i = n - 1; i >= 0; --i)
      if (e[i] > 0.0 && e[i] >= tau) { token = idx[i]; break; }
  }
  *out = token;
  return Status::kOk;
}

template <typename T>
Status sample_impl(const SamplingParams& p, int num_threads) {
  const int64_t rows = p.batch * p.block_len;
  int failed = 0;
#ifdef _OPENMP
  const int threads = static_cast<int>(std::min<int64_t>(num_threads > 0 ? num_threads : omp_get_max_threads(), rows));
#else
  (void)num_threads;
#endif
#pragma omp parallel num_threads(threads) reduction(| : failed)
  {
    Scratch& s = thread_scratch(p.vocab);
#pragma omp for schedule(dynamic, 1)
    for (int64_t r = 0; r < rows; ++r) {
      if (sample_row<T>(p, r / p.block_len, r % p.block_len, s) != Status::kOk) failed |= 1;
    }
  }
  return failed ? Status::kNonFiniteLogits : Status::kOk;
}

}  // namespace

Status sample_block_cpu(const SamplingParams& p, int num_threads) {
  const Status st = validate_sampling(p);
  if (st != Status::kOk) return st;
  switch (p.dtype) {
    case DType::kFloat32: return sample_impl<float>(p, num_threads);
    case DType::kFloat16: return sample_impl<Half>(p, num_threads);
    case DType::kBFloat16: return sample_impl<BFloat16>(p, num_threads);
  }
  return Status::kInvalidArgument;
}

}  // namespace nbp
