// rng.h — the project's own pseudo-random generator (xoshiro256** seeded by splitmix64).
//
// Why not <random>'s distributions: std::normal_distribution and friends are allowed to differ
// between standard libraries, and we need bit-identical streams everywhere: the same seed must
// give the same initial weights, dropout masks and data order on every machine, and a checkpoint
// must be able to save and restore the exact generator state (4 x uint64) for `--resume`.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>

namespace moe {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { seed_with(seed); }

  void seed_with(uint64_t seed) {
    uint64_t x = seed;
    for (auto& s : s_) {  // splitmix64 spreads one seed over the whole state
      x += 0x9e3779b97f4a7c15ULL;
      uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      s = z ^ (z >> 31);
    }
  }

  uint64_t next_u64() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n), n > 0 (multiply-shift; bias is negligible for n << 2^64).
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next_u64()) * n) >> 64);
  }
  // Standard normal by Box-Muller (one value per call; simple beats fast here).
  double normal() {
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

  std::array<uint64_t, 4> state() const { return s_; }
  void set_state(const std::array<uint64_t, 4>& s) { s_ = s; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<uint64_t, 4> s_{};
};

}  // namespace moe
