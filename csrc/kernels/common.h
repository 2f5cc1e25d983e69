// Framework-free basics shared by every kernel: element types, half/bfloat16 storage
// conversions and the status codes kernels return instead of throwing.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define NBP_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define NBP_HOST_DEVICE inline
#endif

namespace nbp {

// Storage type of a tensor's elements. Arithmetic is always fp32 (attention) or fp64 (sampling).
enum class DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
  }
  return "unknown";
}

// Kernels report failures with a code; the caller (torch binding or runtime) turns it into a message.
enum class Status : int {
  kOk = 0,
  kInvalidArgument = 1,   // shapes, sizes or options a kernel cannot run with
  kNonFiniteLogits = 2,   // sampling: a row with NaN or +inf, or with no finite entry
  kCudaError = 3,         // a CUDA launch or API call failed
  kUnsupported = 4,       // this build lacks the requested path (e.g. no CUDA)
};

inline const char* status_name(Status s) {
  switch (s) {
    case Status::kOk: return "ok";
    case Status::kInvalidArgument: return "invalid argument";
    case Status::kNonFiniteLogits: return "logits contain NaN or +inf, or a row has no finite entry";
    case Status::kCudaError: return "CUDA error";
    case Status::kUnsupported: return "not supported by this build";
  }
  return "unknown status";
}

// 16-bit storage types, bit-compatible with IEEE binary16 and bfloat16. Host-side conversions
// only; CUDA code uses __half / __nv_bfloat16 on the same bits.
struct Half { uint16_t bits; };
struct BFloat16 { uint16_t bits; };

NBP_HOST_DEVICE float bits_to_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
NBP_HOST_DEVICE uint32_t float_to_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

inline float to_float(float x) { return x; }
inline float to_float(BFloat16 x) { return bits_to_float(static_cast<uint32_t>(x.bits) << 16); }
inline float to_float(Half h) {
  const uint32_t sign = static_cast<uint32_t>(h.bits & 0x8000u) << 16;
  uint32_t exp = (h.bits >> 10) & 0x1fu;
  uint32_t man = h.bits & 0x3ffu;
  if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (man << 13));  // inf / nan
  if (exp == 0) {
    if (man == 0) return bits_to_float(sign);
    // subnormal: normalise
    int e = -1;
    do { ++e; man <<= 1; } while ((man & 0x400u) == 0);
    man &= 0x3ffu;
    return bits_to_float(sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (man << 13));
  }
  return bits_to_float(sign | (exp + 112u) << 23 | (man << 13));
}

// Round to nearest even, as PyTorch does.
inline BFloat16 to_bfloat16(float f) {
  uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return BFloat16{static_cast<uint16_t>((u >> 16) | 0x40u)};  // nan
  u += 0x7fffu + ((u >> 16) & 1u);
  return BFloat16{static_cast<uint16_t>(u >> 16)};
}

inline Half to_half(float f) {
  const uint32_t u = float_to_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return Half{static_cast<uint16_t>(sign | 0x7e00u)};          // nan
  if (a >= 0x477ff000u) return Half{static_cast<uint16_t>(sign | 0x7c00u)};         // overflow -> inf
  if (a < 0x38800000u) {                                                          // subnormal or zero
    // value = a_float; half subnormal unit is 2^-24; round to nearest even via float addition
    const float af = bits_to_float(a);
    const float magic = bits_to_float(0x3f000000u);  // 0.5: shifts mantissa so ulp = 2^-24
    const uint32_t r = float_to_bits(af + magic) - float_to_bits(magic);
    return Half{static_cast<uint16_t>(sign | r)};
  }
  uint32_t r = a + 0xc8000fffu + ((a >> 13) & 1u);  // rebias exponent (-112 << 23) and round
  return Half{static_cast<uint16_t>(sign | (r >> 13))};
}

template <typename T> inline T from_float(float x);
template <> inline float from_float<float>(float x) { return x; }
template <> inline Half from_float<Half>(float x) { return to_half(x); }
template <> inline BFloat16 from_float<BFloat16>(float x) { return to_bfloat16(x); }

}  // namespace nbp
