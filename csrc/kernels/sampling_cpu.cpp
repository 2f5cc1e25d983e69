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

struct Scratch {
  std::vector<double> x, val, e, buf;
  std::vector<int32_t> idx;
  explicit Scratch(int64_t vocab)
      : x(vocab + kLanes), val(vocab + kLanes), e(vocab + kLanes), buf(vocab + kLanes), idx(vocab + kLanes) {}
};

// Sorted strided sample of x[0, n): brackets [lo, hi] around the k-th largest with high
// probability. Returns false when n is too small for sampling to pay.
bool bracket_kth(const double* x, int64_t n, int64_t k, double* lo, double* hi) {
  constexpr int64_t kSample = 1024;
  if (n <= 8 * kSample) return false;
  double sample[kSample];
  const int64_t stride = n / kSample;
  for (int64_t i = 0; i < kSample; ++i) sample[i] = x[i * stride];
  std::sort(sample, sample + kSample, std::greater<double>());
  const double ks = static_cast<double>(k) * kSample / static_cast<double>(n);
  const int64_t margin = 16 + static_cast<int64_t>(4.0 * std::sqrt(ks + 1.0));
  const int64_t hi_at = static_cast<int64_t>(ks) - margin, lo_at = static_cast<int64_t>(ks) + margin;
  *hi = hi_at < 0 ? kInf : sample[hi_at];
  *lo = lo_at >= kSample ? -kInf : sample[lo_at];
  return true;
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

// Step 5 on the weights e[0, n): a strided sample estimates where the descending cumulative mass
// reaches `need`; one pass sums the mass above the estimate's bracket and gathers the entries inside
// it; the exact selection then runs on that small set. The full selection is the fallback.
double top_p_cut(const double* e, int64_t n, double need, double* buf) {
  constexpr int64_t kSample = 1024;
  if (n > 8 * kSample) {
    double sample[kSample];
    const int64_t stride = n / kSample;
    for (int64_t i = 0; i < kSample; ++i) sample[i] = e[i * stride];
    std::sort(sample, sample + kSample, std::greater<double>());
    const double per_sample = static_cast<double>(n) / kSample;
    double est = 0.0;
    int64_t j = 0;
    while (j < kSample - 1 && (est += sample[j] * per_sample) < need) ++j;
    const int64_t margin = 16 + static_cast<int64_t>(4.0 * std::sqrt(static_cast<double>(j) + 1.0));
    const double hi = j - margin < 0 ? kInf : sample[j - margin];
    const double lo = j + margin >= kSample ? 0.0 : sample[j + margin];
    double above = 0.0, inside = 0.0;
    int64_t m = 0;
#pragma omp simd reduction(+ : above)
    for (int64_t i = 0; i < n; ++i) above += e[i] > hi ? e[i] : 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const double w = e[i];
      buf[m] = w;
      const bool in = (w <= hi) & (w >= lo);
      inside += in ? w : 0.0;
      m += in;
    }
    if (above < need && above + inside >= need) return top_p_threshold(buf, m, need - above);
  }
  std::copy(e, e + n, buf);
  return top_p_threshold(buf, n, need);
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
    const double g = p.cfg_scale;
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

  // 3. top-k: the k-th largest by selection. Every entry >= the bracket's lower end (or, without
  // top-k, every finite entry) is gathered as (value, index) in vocabulary order on the way.
  double* val = s.val.data();
  int32_t* idx = s.idx.data();
  double thr = -kInf;
  int64_t n = 0;
  const bool use_top_k = p.top_k > 0 && p.top_k < finite;
  double lo = -kInf, hi = kInf;
  const bool bracketed = use_top_k && bracket_kth(x, V, p.top_k, &lo, &hi);
  if (bracketed) {
    double* cand = s.buf.data();
    int64_t above = 0, m = 0;
    for (int64_t v = 0; v < V; ++v) {
      const double y = x[v];
      above += y > hi;
      cand[m] = y;
      m += (y <= hi) & (y >= lo);
      val[n] = y;
      idx[n] = static_cast<int32_t>(v);
      n += (y >= lo) & (y > -kInf);
    }
    if (above < p.top_k && above + m >= p.top_k) {
      const int64_t rank = p.top_k - 1 - above;
      std::nth_element(cand, cand + rank, cand + m, std::greater<double>());
      thr = cand[rank];
    } else {
      n = 0;  // the bracket missed: select over the whole row
    }
  }
  if (n == 0) {
    for (int64_t v = 0; v < V; ++v) {
      val[n] = x[v];
      idx[n] = static_cast<int32_t>(v);
      n += x[v] > -kInf;
    }
    if (use_top_k) {
      double* cand = s.buf.data();
      std::copy(val, val + n, cand);
      std::nth_element(cand, cand + (p.top_k - 1), cand + n, std::greater<double>());
      thr = cand[p.top_k - 1];
    }
  }
  if (use_top_k) {  // keep value >= thr, in place, order preserved
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
      val[kept] = val[i];
      idx[kept] = idx[i];
      kept += val[i] >= thr;
    }
    n = kept;
  }

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
    tau = top_p_cut(e, n, p.top_p * total, s.buf.data());
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
    Scratch s(p.vocab);
#pragma omp for schedule(dynamic, 4)
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
