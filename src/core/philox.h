// philox.h — the counter-based random numbers behind dropout, attention dropout and the gate's
// sampling policies, identical on the CPU and the GPU (notes/cuda.md §8).
//
// Why counter-based: a sequential generator (core/rng.h) hands out numbers one after another, so a
// GPU kernel with a million threads cannot use it without a serial pass. Philox4x32-10 (Salmon et
// al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011) is instead a pure function
//     value = f(seed, stream, index)
// that any thread evaluates for its own index, in any order. The CPU loops and the CUDA kernels
// call the same function below, so both devices draw bit-identical dropout masks, and a
// generator's whole state is two numbers (seed, offset) that a checkpoint saves exactly.
//
// Philox in one paragraph: a 128-bit counter (c0..c3) goes through 10 rounds; each round
// multiplies two of the four words by fixed odd constants, keeps the high and low halves of the
// 64-bit products, and swaps and mixes them with a 64-bit key (the seed) that is bumped by fixed
// constants ("Weyl sequence") between rounds. The output is four 32-bit words that pass the
// BigCrush statistical tests. The constants are the published ones of the paper.
//
// How moe-gpt lays out its numbers: value number `index` of a stream is word (index % 4) of the
// Philox block with counter (index / 4 as 64 bits, stream, 0). A CounterRng hands out ranges of
// indices: each draw of n values takes the next n indices (rounded up to a whole block of 4, so
// every draw starts on a block boundary and a kernel thread can use all four words of its block).
//
// What it leaves out: the 64-bit variant, normal variates (nothing here needs them).
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#define MOE_HD __host__ __device__ __forceinline__
#else
#define MOE_HD inline
#endif

namespace moe {

struct Philox4 {
  uint32_t v[4];
};

MOE_HD uint32_t philox_mulhi(uint32_t a, uint32_t b) {
#ifdef __CUDA_ARCH__
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

// Philox4x32-10 of counter (c0, c1, c2, c3) under the 64-bit key `seed`.
MOE_HD Philox4 philox4x32(uint64_t seed, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3) {
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = philox_mulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    const uint32_t hi1 = philox_mulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += 0x9E3779B9u;  // the key schedule: golden ratio and sqrt(3) - 1, as 32-bit fractions
    k1 += 0xBB67AE85u;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// The four values of block `block` (= index / 4) of a stream.
MOE_HD Philox4 philox_block(uint64_t seed, uint64_t stream, uint64_t block) {
  return philox4x32(seed, static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                    static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32));
}

// Value number `index` of a stream, as 32 random bits.
MOE_HD uint32_t philox_u32(uint64_t seed, uint64_t stream, uint64_t index) {
  return philox_block(seed, stream, index >> 2).v[index & 3];
}

// 32 random bits -> float in [0, 1) with 24 random bits: exact in float, so the comparison
// `u >= p` of dropout gives the same answer on every device.
MOE_HD float bits_to_uniform(uint32_t bits) {
  return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
}
// 32 random bits -> double in (0, 1), never 0 or 1 (for logs: Gumbel noise).
MOE_HD double bits_to_open_uniform(uint32_t bits) {
  return (static_cast<double>(bits >> 8) + 0.5) * (1.0 / 16777216.0);
}

MOE_HD float philox_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return bits_to_uniform(philox_u32(seed, stream, index));
}

// A range of values of one stream, handed to a kernel by value: value i of the range is value
// first + i of the stream.
struct PhiloxRange {
  uint64_t seed = 0, stream = 0, first = 0;
  MOE_HD uint32_t bits(uint64_t i) const { return philox_u32(seed, stream, first + i); }
  MOE_HD float uniform(uint64_t i) const { return bits_to_uniform(bits(i)); }
};

// The streams of moe-gpt's generators: two generators with the same seed never share values.
constexpr uint64_t kTrainDropoutStream = 1;     // pretraining: dropout, gate noise
constexpr uint64_t kFinetuneDropoutStream = 2;  // fine-tuning: dropout, gate noise

// A generator's state: which stream of which seed, and how many values were used. Passing it by
// reference to an op lets the op take a range; the kernels get (seed, stream, first index) by
// value.
struct CounterRng {
  uint64_t seed = 0;
  uint64_t stream = 0;
  uint64_t offset = 0;  // the next unused index, always a multiple of 4

  CounterRng() = default;
  CounterRng(uint64_t seed_, uint64_t stream_) : seed(seed_), stream(stream_) {}

  // Reserves n values and returns the index of the first one.
  uint64_t take(uint64_t n) {
    const uint64_t first = offset;
    offset += (n + 3) / 4 * 4;
    return first;
  }
  // Reserves n values and returns them as a range for a kernel.
  PhiloxRange range(uint64_t n) { return PhiloxRange{seed, stream, take(n)}; }
};

}  // namespace moe
