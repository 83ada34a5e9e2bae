// Philox4x32-10 (core/philox.h): known-answer vectors published with Random123 (Salmon et al.
// 2011), the stream/index layout moe-gpt builds on it, and the CounterRng bookkeeping.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "core/philox.h"

using namespace moe;

TEST(Philox, KnownAnswerVectors) {
  // counter (c0, c1, c2, c3), key (k0, k1) -> four words; seed = k0 | k1 << 32.
  struct Kat {
    uint32_t c[4];
    uint64_t seed;
    uint32_t out[4];
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, 0, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, 0xffffffffffffffffull,
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, 0x299f31d0a4093822ull,
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const Kat& k : kats) {
    const Philox4 r = philox4x32(k.seed, k.c[0], k.c[1], k.c[2], k.c[3]);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(r.v[i], k.out[i]) << "word " << i;
  }
}

TEST(Philox, IndexLayoutAndStreams) {
  // value i of a stream is word i % 4 of block i / 4
  const Philox4 b = philox_block(7, 3, 5);
  for (int w = 0; w < 4; ++w) EXPECT_EQ(philox_u32(7, 3, 5 * 4 + w), b.v[w]);
  EXPECT_NE(philox_u32(7, 3, 0), philox_u32(7, 4, 0)) << "streams differ";
  EXPECT_NE(philox_u32(7, 3, 0), philox_u32(8, 3, 0)) << "seeds differ";
}

TEST(Philox, UniformsAreInRangeAndUniform) {
  double sum = 0;
  for (uint64_t i = 0; i < 100000; ++i) {
    const float u = philox_uniform(1, 0, i);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    const double o = bits_to_open_uniform(philox_u32(1, 0, i));
    ASSERT_GT(o, 0.0);
    ASSERT_LT(o, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 100000, 0.5, 0.005);  // std of the mean ~ 0.0009
  EXPECT_EQ(bits_to_uniform(0), 0.0f);
  EXPECT_LT(bits_to_uniform(0xffffffffu), 1.0f);
}

TEST(Philox, CounterRngTakesWholeBlocks) {
  CounterRng rng(9, 1);
  EXPECT_EQ(rng.take(0), 0u);
  EXPECT_EQ(rng.take(5), 0u);
  EXPECT_EQ(rng.offset, 8u);
  const PhiloxRange r = rng.range(3);
  EXPECT_EQ(r.first, 8u);
  EXPECT_EQ(rng.offset, 12u);
  EXPECT_EQ(r.bits(2), philox_u32(9, 1, 10));
}
