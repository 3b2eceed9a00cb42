#include "engine/quant/quant.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/quant/blocks.h"
#include "engine/quant/fp16.h"

namespace ztslm::engine {
namespace {

using gguf::TensorType;

template <typename Block>
std::vector<std::byte> bytes_of(const Block& b) {
  std::vector<std::byte> out(sizeof(Block));
  std::memcpy(out.data(), &b, sizeof(Block));
  return out;
}

std::vector<float> dequant(TensorType type, const std::vector<std::byte>& bytes, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  dequantize_row(type, bytes.data(), out.data(), n);
  return out;
}

TEST(Fp16Test, KnownRoundings) {
  EXPECT_EQ(f16_from_f32(1.0f), 0x3C00);
  EXPECT_EQ(f16_from_f32(-2.0f), 0xC000);
  EXPECT_EQ(f16_from_f32(65504.0f), 0x7BFF);
  EXPECT_EQ(f16_from_f32(65519.99f), 0x7BFF);
  EXPECT_EQ(f16_from_f32(65520.0f), 0x7C00);  // tie rounds to even: infinity
  EXPECT_EQ(f16_from_f32(1e10f), 0x7C00);
  EXPECT_EQ(f16_from_f32(-INFINITY), 0xFC00);
  EXPECT_EQ(f16_from_f32(std::bit_cast<float>(0x7FC00001u)), 0x7E00);
  EXPECT_EQ(f16_from_f32(std::bit_cast<float>(0xFF800001u)), 0xFE00);
  EXPECT_EQ(f16_from_f32(1.0f + 0x1p-11f), 0x3C00);         // tie, even below
  EXPECT_EQ(f16_from_f32(1.0f + 3 * 0x1p-11f), 0x3C02);     // tie, even above
  EXPECT_EQ(f16_from_f32(0x1p-24f), 0x0001);                // smallest subnormal
  EXPECT_EQ(f16_from_f32(0x1p-25f), 0x0000);                // tie to even zero
  EXPECT_EQ(f16_from_f32(3 * 0x1p-25f), 0x0002);            // tie to even 2
  EXPECT_EQ(f16_from_f32(-0x1p-14f), 0x8400);               // smallest normal
  EXPECT_EQ(f16_from_f32(0x1p-14f - 0x1p-26f), 0x0400);     // rounds up into the normals
  EXPECT_EQ(f16_from_f32(-0.0f), 0x8000);
  EXPECT_EQ(f32_from_f16(0x0001), 0x1p-24f);
  EXPECT_EQ(f32_from_f16(0x7BFF), 65504.0f);
  EXPECT_TRUE(std::isinf(f32_from_f16(0xFC00)) && f32_from_f16(0xFC00) < 0);
  EXPECT_TRUE(std::isnan(f32_from_f16(0x7E00)));
}

TEST(Fp16Test, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto hh = static_cast<uint16_t>(h);
    const float f = f32_from_f16(hh);
    if (std::isnan(f)) continue;
    ASSERT_EQ(f16_from_f32(f), hh) << std::hex << h;
  }
}

TEST(Fp16Test, MatchesNearestHalfOnRandomFloats) {
  // The nearest half by exhaustive comparison in double, ties to the even mantissa.
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 20000; ++i) {
    const float f = std::bit_cast<float>((bits(rng) & 0x8FFFFFFFu) | 0x30000000u);  // ~[2^-31, 2^33)
    if (std::fabs(f) >= 65520.0f) continue;
    const uint16_t got = f16_from_f32(f);
    const double err = std::fabs(static_cast<double>(f32_from_f16(got)) - f);
    const double err_up = std::fabs(static_cast<double>(f32_from_f16(static_cast<uint16_t>(got + 1))) - f);
    ASSERT_LE(err, err_up) << f;
    if ((got & 0x7FFF) != 0) {
      const double err_dn = std::fabs(static_cast<double>(f32_from_f16(static_cast<uint16_t>(got - 1))) - f);
      ASSERT_LE(err, err_dn) << f;
      if (err == err_dn || err == err_up) {
        ASSERT_EQ(got & 1, 0) << f;
      }
    }
  }
}

TEST(Bf16Test, RoundsToNearestEvenAndQuietsNan) {
  EXPECT_EQ(bf16_from_f32(1.0f), 0x3F80);
  EXPECT_EQ(bf16_from_f32(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie, even below
  EXPECT_EQ(bf16_from_f32(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie, even above
  EXPECT_EQ(bf16_from_f32(std::bit_cast<float>(0x3F808001u)), 0x3F81);
  EXPECT_EQ(bf16_from_f32(std::bit_cast<float>(0x7F7FFFFFu)), 0x7F80);  // overflow to inf
  EXPECT_EQ(bf16_from_f32(-INFINITY), 0xFF80);
  EXPECT_EQ(bf16_from_f32(std::bit_cast<float>(0x7F800001u)), 0x7FC0);  // signalling -> quiet
  EXPECT_EQ(bf16_from_f32(std::bit_cast<float>(0xFFA50000u)), 0xFFE5);
  EXPECT_EQ(f32_from_bf16(0xC040), -3.0f);
}

TEST(DequantizeTest, PlainTypes) {
  const float v[4] = {1.5f, -2.0f, 0.0f, 65504.0f};
  std::vector<std::byte> f32(sizeof(v));
  std::memcpy(f32.data(), v, sizeof(v));
  EXPECT_EQ(dequant(TensorType::kF32, f32, 4), std::vector<float>(v, v + 4));
  const uint16_t h[4] = {0x3E00, 0xC000, 0x8000, 0x7BFF};
  std::vector<std::byte> f16(sizeof(h));
  std::memcpy(f16.data(), h, sizeof(h));
  EXPECT_EQ(dequant(TensorType::kF16, f16, 4), (std::vector<float>{1.5f, -2.0f, -0.0f, 65504.0f}));
  const uint16_t b[2] = {0x3FC0, 0xC000};
  std::vector<std::byte> bf(sizeof(b));
  std::memcpy(bf.data(), b, sizeof(b));
  EXPECT_EQ(dequant(TensorType::kBF16, bf, 2), (std::vector<float>{1.5f, -2.0f}));
}

TEST(DequantizeTest, Q4_0AndQ4_1) {
  BlockQ4_0 b{};
  b.d = f16_from_f32(0.5f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = dequant(TensorType::kQ4_0, bytes_of(b), 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], static_cast<float>(j - 8) * 0.5f);
    EXPECT_EQ(y[j + 16], static_cast<float>(7 - j) * 0.5f);
  }
  BlockQ4_1 c{};
  c.d = f16_from_f32(0.25f);
  c.m = f16_from_f32(-1.0f);
  for (int j = 0; j < 16; ++j) c.qs[j] = static_cast<uint8_t>(j | (3 << 4));
  const auto z = dequant(TensorType::kQ4_1, bytes_of(c), 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(z[j], static_cast<float>(j) * 0.25f - 1.0f);
    EXPECT_EQ(z[j + 16], 3 * 0.25f - 1.0f);
  }
}

TEST(DequantizeTest, Q5_0AndQ5_1UseTheHighBits) {
  BlockQ5_0 b{};
  b.d = f16_from_f32(2.0f);
  const uint32_t qh = 0x80010001u;  // fifth bit set on elements 0, 16 and 31
  for (int i = 0; i < 4; ++i) b.qh[i] = static_cast<uint8_t>(qh >> (8 * i));
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(1 | (2 << 4));
  const auto y = dequant(TensorType::kQ5_0, bytes_of(b), 32);
  EXPECT_EQ(y[0], (17 - 16) * 2.0f);
  EXPECT_EQ(y[1], (1 - 16) * 2.0f);
  EXPECT_EQ(y[16], (18 - 16) * 2.0f);
  EXPECT_EQ(y[17], (2 - 16) * 2.0f);
  EXPECT_EQ(y[31], (18 - 16) * 2.0f);
  BlockQ5_1 c{};
  c.d = f16_from_f32(1.0f);
  c.m = f16_from_f32(0.5f);
  for (int i = 0; i < 4; ++i) c.qh[i] = static_cast<uint8_t>(qh >> (8 * i));
  for (int j = 0; j < 16; ++j) c.qs[j] = static_cast<uint8_t>(15 | (15 << 4));
  const auto z = dequant(TensorType::kQ5_1, bytes_of(c), 32);
  EXPECT_EQ(z[0], 31.5f);
  EXPECT_EQ(z[1], 15.5f);
  EXPECT_EQ(z[31], 31.5f);
}

TEST(DequantizeTest, Q8_0AndQ8_1AndQ8_K) {
  BlockQ8_0 b{};
  b.d = f16_from_f32(0.125f);
  for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(j * 8 - 128);
  const auto y = dequant(TensorType::kQ8_0, bytes_of(b), 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], static_cast<float>(j * 8 - 128) * 0.125f);
  BlockQ8_1 c{};
  c.d = f16_from_f32(-1.0f);
  c.qs[3] = 5;
  EXPECT_EQ(dequant(TensorType::kQ8_1, bytes_of(c), 32)[3], -5.0f);
  BlockQ8_K k{};
  k.d = -0.5f;
  k.qs[255] = -127;
  EXPECT_EQ(dequant(TensorType::kQ8_K, bytes_of(k), 256)[255], 63.5f);
}

TEST(DequantizeTest, Q4_KScalesMinsAndElementOrder) {
  BlockQ4_K b{};
  b.d = f16_from_f32(0.5f);
  b.dmin = f16_from_f32(0.25f);
  // sc = {1, 2, 3, 4, 33, 34, 35, 63}, mn = {5, 6, 7, 8, 40, 41, 42, 63}
  const uint8_t sc[8] = {1, 2, 3, 4, 33, 34, 35, 63};
  const uint8_t mn[8] = {5, 6, 7, 8, 40, 41, 42, 63};
  for (int i = 0; i < 4; ++i) {
    b.scales[i] = static_cast<uint8_t>(sc[i] | ((sc[i + 4] >> 4) << 6));
    b.scales[i + 4] = static_cast<uint8_t>(mn[i] | ((mn[i + 4] >> 4) << 6));
    b.scales[i + 8] = static_cast<uint8_t>((sc[i + 4] & 15) | ((mn[i + 4] & 15) << 4));
  }
  for (int i = 0; i < 8; ++i) {
    uint8_t s = 0, m = 0;
    k_scale_min(i, b.scales, &s, &m);
    EXPECT_EQ(s, sc[i]);
    EXPECT_EQ(m, mn[i]);
  }
  for (int k = 0; k < 128; ++k) b.qs[k] = static_cast<uint8_t>((k % 16) | ((15 - k % 16) << 4));
  const auto y = dequant(TensorType::kQ4_K, bytes_of(b), 256);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const int lo = l % 16, hi = 15 - l % 16;
      EXPECT_EQ(y[64 * c + l], 0.5f * sc[2 * c] * static_cast<float>(lo) - 0.25f * mn[2 * c]);
      EXPECT_EQ(y[64 * c + 32 + l], 0.5f * sc[2 * c + 1] * static_cast<float>(hi) - 0.25f * mn[2 * c + 1]);
    }
  }
  BlockQ5_K q5{};
  q5.d = f16_from_f32(1.0f);
  q5.dmin = f16_from_f32(0.0f);
  q5.scales[0] = 1;  // sc[0] = 1
  q5.scales[1] = 2;  // sc[1] = 2
  q5.qh[3] = 0x03;   // +16 on element 3 (sub-block 0) and element 35 (sub-block 1)
  q5.qs[3] = 0x21;
  const auto z = dequant(TensorType::kQ5_K, bytes_of(q5), 256);
  EXPECT_EQ(z[3], 17.0f);
  EXPECT_EQ(z[35], 2.0f * 18.0f);
  EXPECT_EQ(z[4], 0.0f);
  EXPECT_EQ(z[64 + 3], 0.0f);
}

TEST(DequantizeTest, Q6_KLayout) {
  BlockQ6_K b{};
  b.d = f16_from_f32(0.5f);
  for (int k = 0; k < 16; ++k) b.scales[k] = static_cast<int8_t>(k - 8);
  // Element 128h + 32q + l: choose a value v(e) = e % 64 and encode it.
  std::vector<int> v(256);
  for (int e = 0; e < 256; ++e) v[e] = (e * 7) % 64;
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      const int q1 = v[128 * h + l], q2 = v[128 * h + 32 + l], q3 = v[128 * h + 64 + l],
                q4 = v[128 * h + 96 + l];
      b.ql[64 * h + l] = static_cast<uint8_t>((q1 & 15) | ((q3 & 15) << 4));
      b.ql[64 * h + l + 32] = static_cast<uint8_t>((q2 & 15) | ((q4 & 15) << 4));
      b.qh[32 * h + l] =
          static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
  }
  const auto y = dequant(TensorType::kQ6_K, bytes_of(b), 256);
  for (int e = 0; e < 256; ++e) {
    EXPECT_EQ(y[e], 0.5f * static_cast<float>(e / 16 - 8) * static_cast<float>(v[e] - 32)) << e;
  }
}

TEST(QuantizeTest, Q4_0FollowsTheReferenceRule) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);  // max |x| = 16 at x = -16
  std::vector<std::byte> q(sizeof(BlockQ4_0));
  quantize_row(TensorType::kQ4_0, x.data(), q.data(), 32);
  BlockQ4_0 b;
  std::memcpy(&b, q.data(), sizeof(b));
  EXPECT_EQ(f32_from_f16(b.d), 2.0f);  // d = max / -8
  // q = min(15, trunc(x / 2 + 8.5)): x = -16 -> 0, x = -15 -> 1, element 31 (x = 15) -> 15 (16 clamped)
  EXPECT_EQ(b.qs[0] & 15, 0);
  EXPECT_EQ(b.qs[1] & 15, 1);
  EXPECT_EQ(b.qs[15] >> 4, 15);
  EXPECT_EQ(b.qs[14] >> 4, 15);  // element j + 16: x = 14 -> trunc(15.5) = 15
  EXPECT_EQ(b.qs[13] >> 4, 15);  // x = 13 -> trunc(15.0)
  EXPECT_EQ(b.qs[12] >> 4, 14);  // x = 12 -> trunc(14.5)
}

TEST(QuantizeTest, RoundTripErrorIsSmall) {
  struct Case {
    TensorType type;
    double max_rel_rmse;
  };
  // Bounds about 1.3x the measured error for N(0, 1) data.
  const Case cases[] = {
      {TensorType::kF16, 4e-4},  {TensorType::kBF16, 3e-3}, {TensorType::kQ8_0, 0.006},
      {TensorType::kQ4_0, 0.11}, {TensorType::kQ4_1, 0.09}, {TensorType::kQ5_0, 0.055},
      {TensorType::kQ5_1, 0.045}, {TensorType::kQ4_K, 0.12}, {TensorType::kQ5_K, 0.06},
      {TensorType::kQ6_K, 0.035},
  };
  const int64_t n = 256 * 64;
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = dist(rng);
  for (const Case& c : cases) {
    std::vector<std::byte> q(row_bytes(c.type, n));
    quantize_row(c.type, x.data(), q.data(), n);
    const auto y = dequant(c.type, q, n);
    double err = 0, ref = 0;
    for (int64_t i = 0; i < n; ++i) {
      err += (y[i] - x[i]) * static_cast<double>(y[i] - x[i]);
      ref += x[i] * static_cast<double>(x[i]);
    }
    const double rel = std::sqrt(err / ref);
    EXPECT_LT(rel, c.max_rel_rmse) << gguf::tensor_type_name(c.type);
    EXPECT_GT(rel, 0.0) << gguf::tensor_type_name(c.type);
    RecordProperty(std::string(gguf::tensor_type_name(c.type)), std::to_string(rel));
  }
}

TEST(QuantizeTest, ZeroBlocksStayZero) {
  const std::vector<float> x(256, 0.0f);
  for (TensorType t : {TensorType::kQ4_0, TensorType::kQ4_1, TensorType::kQ5_0, TensorType::kQ5_1,
                       TensorType::kQ8_0, TensorType::kQ4_K, TensorType::kQ5_K, TensorType::kQ6_K}) {
    std::vector<std::byte> q(row_bytes(t, 256));
    quantize_row(t, x.data(), q.data(), 256);
    for (float v : dequant(t, q, 256)) ASSERT_EQ(v, 0.0f) << gguf::tensor_type_name(t);
  }
}

TEST(ActivationQuantTest, Q8_0X86RuleRoundsHalfToEven) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;  // amax = 127: multiplier 127/amax = 1 exactly
  x[1] = 0.5f;
  x[2] = 1.5f;
  x[3] = 2.5f;
  x[4] = -0.5f;
  x[5] = -2.5f;
  x[6] = -3.5f;
  BlockQ8_0 y[1];
  quantize_row_q8_0(x.data(), y, 32);
  EXPECT_EQ(f32_from_f16(y[0].d), 1.0f);
  const int want[7] = {127, 0, 2, 2, 0, -2, -4};
  for (int j = 0; j < 7; ++j) EXPECT_EQ(y[0].qs[j], want[j]) << j;
  // The generic (weight) rule rounds the same ties away from zero.
  quantize_row_q8_0_generic(x.data(), y, 32);
  const int want_generic[7] = {127, 1, 2, 3, -1, -3, -4};
  for (int j = 0; j < 7; ++j) EXPECT_EQ(y[0].qs[j], want_generic[j]) << j;
}

TEST(ActivationQuantTest, Q8_0MultiplierIs127OverAmax) {
  // amax = 0.6: 127/0.6 and 1/(0.6/127) differ by one ulp in F32.
  const float amax = 0.6f;
  ASSERT_NE(127.0f / amax, 1.0f / (amax / 127.0f));
  std::vector<float> x(32);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-amax, amax);
  for (auto& v : x) v = dist(rng);
  x[9] = -amax;
  BlockQ8_0 y[1];
  quantize_row_q8_0(x.data(), y, 32);
  EXPECT_EQ(y[0].d, f16_from_f32(amax / 127.0f));
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(y[0].qs[j], static_cast<int>(std::nearbyint(x[j] * (127.0f / amax)))) << j;
  }
  EXPECT_EQ(y[0].qs[9], -127);
}

TEST(ActivationQuantTest, Q8_1SumUsesTheF32Scale) {
  std::vector<float> x(64);
  for (int j = 0; j < 64; ++j) x[j] = 0.01f * static_cast<float>(j) - 0.1f;
  BlockQ8_1 y[2];
  quantize_row_q8_1(x.data(), y, 64);
  for (int b = 0; b < 2; ++b) {
    float amax = 0;
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      amax = std::max(amax, std::fabs(x[32 * b + j]));
      sum += y[b].qs[j];
    }
    EXPECT_EQ(y[b].s, f16_from_f32(amax / 127.0f * static_cast<float>(sum)));
    EXPECT_EQ(y[b].d, f16_from_f32(amax / 127.0f));
  }
}

TEST(ActivationQuantTest, Q8_KSignBsumsAndTies) {
  std::vector<float> x(512, 0.0f);
  // Block 0: max element +5 first at j = 3; -5 at j = 7 comes later and does not win.
  x[3] = 5.0f;
  x[7] = -5.0f;
  x[20] = 2.5f;
  // Block 1: max element -127 so iscale = 1; ties round half to even.
  x[256 + 0] = -127.0f;
  x[256 + 1] = 0.5f;
  x[256 + 2] = 1.5f;
  x[256 + 3] = 2.5f;
  x[256 + 4] = -2.5f;
  x[256 + 17] = 100.0f;
  BlockQ8_K y[2];
  quantize_row_q8_K(x.data(), y, 512);
  EXPECT_EQ(y[0].qs[3], -127);
  EXPECT_EQ(y[0].qs[7], 127);
  EXPECT_EQ(y[0].qs[20], static_cast<int>(std::nearbyint(-127.0f / 5.0f * 2.5f)));
  EXPECT_EQ(y[0].d, 1.0f / (-127.0f / 5.0f));
  EXPECT_LT(y[0].d, 0.0f);
  EXPECT_EQ(y[0].bsums[0], -127 + 127);
  EXPECT_EQ(y[0].bsums[1], y[0].qs[20]);
  EXPECT_EQ(y[1].d, 1.0f);
  const int want[5] = {-127, 0, 2, 2, -2};
  for (int j = 0; j < 5; ++j) EXPECT_EQ(y[1].qs[j], want[j]) << j;
  EXPECT_EQ(y[1].bsums[0], -127 + 2 + 2 - 2);
  EXPECT_EQ(y[1].bsums[1], 100);
  // An all-zero block has d = 0, q = 0 and bsums = 0.
  std::vector<float> z(256, 0.0f);
  quantize_row_q8_K(z.data(), y, 256);
  EXPECT_EQ(y[0].d, 0.0f);
  for (int k = 0; k < 16; ++k) EXPECT_EQ(y[0].bsums[k], 0);
}

TEST(TypesTest, ImplementedSet) {
  EXPECT_TRUE(is_type_implemented(TensorType::kQ6_K));
  EXPECT_TRUE(is_type_implemented(TensorType::kBF16));
  EXPECT_FALSE(is_type_implemented(TensorType::kQ2_K));
  EXPECT_FALSE(is_type_implemented(TensorType::kQ8_K));
  EXPECT_FALSE(is_type_implemented(TensorType::kI32));
  EXPECT_EQ(row_bytes(TensorType::kQ4_K, 512), 288u);
  EXPECT_EQ(row_bytes(TensorType::kQ5_0, 64), 44u);
}

}  // namespace
}  // namespace ztslm::engine
