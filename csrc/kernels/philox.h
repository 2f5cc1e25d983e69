// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11), host and
// device. A pure function of (key, counter): the draw for a position never depends on threads,
// batch layout or device.
#pragma once

#include <cstdint>

#include "common.h"

namespace nbp {

struct Philox4 {
  uint32_t x[4];
};

NBP_HOST_DEVICE void philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t prod = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  *hi = static_cast<uint32_t>(prod >> 32);
  *lo = static_cast<uint32_t>(prod);
}

// Ten rounds of Philox4x32 on counter c with key k.
NBP_HOST_DEVICE Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                      uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(kM0, c0, &hi0, &lo0);
    philox_mulhilo(kM1, c2, &hi1, &lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0;
    const uint32_t n1 = lo1;
    const uint32_t n2 = hi0 ^ c3 ^ k1;
    const uint32_t n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += kW0; k1 += kW1;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// The uniform draw of the sampler: key = row seed (64 bits), counter = (position l, 0, offset lo,
// offset hi). Two 32-bit words give a double in [0, 1) with 53 random bits.
NBP_HOST_DEVICE double sampling_uniform(uint64_t seed, uint64_t offset, uint32_t position) {
  const Philox4 r = philox4x32_10(position, 0u, static_cast<uint32_t>(offset),
                                  static_cast<uint32_t>(offset >> 32), static_cast<uint32_t>(seed),
                                  static_cast<uint32_t>(seed >> 32));
  const uint64_t hi = r.x[0] >> 5;  // 27 bits
  const uint64_t lo = r.x[1] >> 6;  // 26 bits
  return static_cast<double>((hi << 26) | lo) * (1.0 / 9007199254740992.0);  // / 2^53
}

}  // namespace nbp
