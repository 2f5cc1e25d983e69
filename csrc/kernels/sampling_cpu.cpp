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

template <typename T>
inline double load_logit(const void* base, int64_t offset) {
  return static_cast<double>(cpu::load_elem(static_cast<const T*>(base)[offset]));
}

struct Scratch {
  std::vector<double> x, sel, e, w;
  std::vector<int32_t> idx;
  explicit Scratch(int64_t vocab) : x(vocab), sel(vocab), e(vocab), w(vocab), idx(vocab) {}
};

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

template <typename T>
Status sample_row(const SamplingParams& p, int64_t b, int64_t l, Scratch& s) {
  const int64_t V = p.vocab;
  const int64_t off_c = b * p.logits_stride_b + l * p.logits_stride_l;
  const int64_t off_u = b * p.uncond_stride_b + l * p.uncond_stride_l;
  double* x = s.x.data();

  // 1. guidance
  bool bad = false;
  int64_t finite = 0;
  if (p.uncond_logits != nullptr) {
    const double g = p.cfg_scale;
    for (int64_t v = 0; v < V; ++v) {
      const double c = load_logit<T>(p.logits, off_c + v), u = load_logit<T>(p.uncond_logits, off_u + v);
      bad |= std::isnan(c) || std::isnan(u) || c == kInf || u == kInf;
      x[v] = (c == -kInf || u == -kInf) ? -kInf : u + g * (c - u);
    }
  } else {
    for (int64_t v = 0; v < V; ++v) {
      const double c = load_logit<T>(p.logits, off_c + v);
      bad |= std::isnan(c) || c == kInf;
      x[v] = c;
    }
  }
  if (bad) return Status::kNonFiniteLogits;
  double mx = -kInf;
  int64_t arg = -1;
  for (int64_t v = 0; v < V; ++v) {
    if (x[v] > mx) { mx = x[v]; arg = v; }
    finite += x[v] > -kInf;
  }
  if (finite == 0 || std::isinf(mx)) return Status::kNonFiniteLogits;  // +inf from huge guidance too
  int64_t* out = p.tokens + b * p.block_len + l;

  // 2. temperature (0: greedy)
  if (p.temperature == 0.0) { *out = arg; return Status::kOk; }
  const double inv_t = 1.0 / p.temperature;

  // 3. top-k threshold by selection
  double thr = -kInf;
  if (p.top_k > 0 && p.top_k < finite) {
    int64_t n = 0;
    for (int64_t v = 0; v < V; ++v)
      if (x[v] > -kInf) s.sel[n++] = x[v];
    std::nth_element(s.sel.begin(), s.sel.begin() + (p.top_k - 1), s.sel.begin() + n, std::greater<double>());
    thr = s.sel[p.top_k - 1];
  }

  // 4. softmax over the kept set, in vocabulary order
  int64_t kept = 0;
  for (int64_t v = 0; v < V; ++v)
    if (x[v] >= thr && x[v] > -kInf) s.idx[kept++] = static_cast<int32_t>(v);
  double total = 0.0;
  for (int64_t i = 0; i < kept; ++i) {
    const double e = std::exp((x[s.idx[i]] - mx) * inv_t);
    s.e[i] = e;
    total += e;
  }

  // 5. top-p
  double tau = 0.0;
  if (p.top_p < 1.0) {
    std::copy(s.e.begin(), s.e.begin() + kept, s.w.begin());
    tau = top_p_threshold(s.w.data(), kept, p.top_p * total);
  }

  // 6. inverse-CDF draw over the kept entries in vocabulary order
  double mass = 0.0;
  for (int64_t i = 0; i < kept; ++i)
    if (s.e[i] >= tau) mass += s.e[i];
  const double target = sampling_uniform(static_cast<uint64_t>(p.seeds[b]), p.offset,
                                         static_cast<uint32_t>(l)) * mass;
  double acc = 0.0;
  int64_t token = -1;
  for (int64_t i = 0; i < kept; ++i) {
    if (s.e[i] < tau) continue;
    acc += s.e[i];
    token = s.idx[i];
    if (acc > target) break;
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
