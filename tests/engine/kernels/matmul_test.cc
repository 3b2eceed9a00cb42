#include "engine/kernels/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/kernels/ref/dot_ref.h"
#include "engine/quant/fp16.h"
#include "engine/quant/quant.h"
#include "test_util.h"

namespace ztslm::engine {
namespace {

using gguf::TensorType;

const TensorType kAllTypes[] = {TensorType::kF32,  TensorType::kF16,  TensorType::kBF16,
                                TensorType::kQ4_0, TensorType::kQ4_1, TensorType::kQ5_0,
                                TensorType::kQ5_1, TensorType::kQ8_0, TensorType::kQ4_K,
                                TensorType::kQ5_K, TensorType::kQ6_K};

bool is_k_quant(TensorType t) {
  return t == TensorType::kQ4_K || t == TensorType::kQ5_K || t == TensorType::kQ6_K;
}

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Weights quantised to `type` from N(0, 1) values: [n_rows] rows of row_bytes(type, n_cols).
std::vector<std::byte> random_weights(TensorType type, int64_t n_rows, int64_t n_cols,
                                      uint32_t seed) {
  const auto x = random_floats(static_cast<size_t>(n_rows * n_cols), seed);
  const size_t rb = row_bytes(type, n_cols);
  std::vector<std::byte> w(rb * static_cast<size_t>(n_rows));
  for (int64_t r = 0; r < n_rows; ++r) {
    quantize_row(type, x.data() + r * n_cols, w.data() + static_cast<size_t>(r) * rb, n_cols);
  }
  return w;
}

struct Product {
  std::vector<std::byte> act;
  std::vector<float> y;
};

Product run_multiply(const Matrix& m, const std::vector<float>& x, int64_t n_tokens, int64_t r0,
                     int64_t r1) {
  Product p;
  const size_t arb = activation_row_bytes(m.act_type(), m.n_cols());
  p.act.resize(arb * static_cast<size_t>(n_tokens));
  convert_activations(m.act_type(), x.data(), m.n_cols(), 0, n_tokens, p.act.data(), m.isa());
  p.y.assign(static_cast<size_t>(n_tokens * m.n_rows()), NAN);
  m.multiply(p.act.data(), n_tokens, r0, r1, p.y.data(), m.n_rows());
  return p;
}

TEST(MatmulTest, ActivationTypes) {
  EXPECT_EQ(activation_type(TensorType::kF32), TensorType::kF32);
  EXPECT_EQ(activation_type(TensorType::kF16), TensorType::kF16);
  EXPECT_EQ(activation_type(TensorType::kBF16), TensorType::kBF16);
  EXPECT_EQ(activation_type(TensorType::kQ4_0), TensorType::kQ8_0);
  EXPECT_EQ(activation_type(TensorType::kQ5_0), TensorType::kQ8_0);
  EXPECT_EQ(activation_type(TensorType::kQ8_0), TensorType::kQ8_0);
  EXPECT_EQ(activation_type(TensorType::kQ4_1), TensorType::kQ8_1);
  EXPECT_EQ(activation_type(TensorType::kQ5_1), TensorType::kQ8_1);
  EXPECT_EQ(activation_type(TensorType::kQ4_K), TensorType::kQ8_K);
  EXPECT_EQ(activation_type(TensorType::kQ6_K), TensorType::kQ8_K);
  EXPECT_EQ(activation_row_bytes(TensorType::kQ8_K, 512), 584u);
  EXPECT_EQ(activation_row_bytes(TensorType::kQ8_0, 64), 68u);
  EXPECT_EQ(activation_row_bytes(TensorType::kF16, 10), 20u);
}

TEST(MatmulTest, CreateRejectsBadInput) {
  std::vector<std::byte> data(4096);
  EXPECT_THAT(Matrix::create(TensorType::kQ2_K, 256, 1, data), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Matrix::create(TensorType::kQ8_K, 256, 1, data), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Matrix::create(TensorType::kQ4_0, 48, 1, data), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Matrix::create(TensorType::kQ4_K, 128, 1, data), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Matrix::create(TensorType::kF32, 1024, 2, data), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Matrix::create(TensorType::kF32, 1024, 1, data), IsOk());
  EXPECT_THAT(Matrix::create(TensorType::kF32, 0, 1, data), StatusIs(StatusCode::kInvalidArgument));
}

TEST(MatmulTest, IsaNames) {
  EXPECT_STREQ(isa_name(Isa::kScalar), "scalar");
  EXPECT_STREQ(isa_name(Isa::kAvx2), "avx2");
  EXPECT_STREQ(isa_name(Isa::kAvx512), "avx512");
  auto m = Matrix::create(TensorType::kF32, 4, 1, std::vector<std::byte>(16), Isa::kAvx512);
  ASSERT_TRUE(m.has_value());
  EXPECT_LE(static_cast<int>(m->isa()), static_cast<int>(best_isa()));
}

// The scalar Matrix against a double-precision product of the dequantised weights and the
// dequantised activations: only the F32 accumulation order separates them.
TEST(MatmulTest, ScalarMatchesDoubleProductForEveryType) {
  const int64_t n_cols = 512, n_rows = 7, n_tokens = 3;
  for (TensorType type : kAllTypes) {
    SCOPED_TRACE(std::string(gguf::tensor_type_name(type)));
    const auto w = random_weights(type, n_rows, n_cols, 11);
    auto m = Matrix::create(type, n_cols, n_rows, w, Isa::kScalar);
    ASSERT_TRUE(m.has_value());
    const auto x = random_floats(static_cast<size_t>(n_tokens * n_cols), 12);
    const Product p = run_multiply(*m, x, n_tokens, 0, n_rows);
    const size_t arb = activation_row_bytes(m->act_type(), n_cols);
    std::vector<float> wr(n_cols), xr(n_cols);
    for (int64_t t = 0; t < n_tokens; ++t) {
      dequantize_row(m->act_type(), p.act.data() + t * arb, xr.data(), n_cols);
      for (int64_t r = 0; r < n_rows; ++r) {
        m->dequantize_row(r, wr.data());
        double ref = 0, mag = 0;
        for (int64_t k = 0; k < n_cols; ++k) {
          ref += static_cast<double>(wr[k]) * xr[k];
          mag += std::fabs(static_cast<double>(wr[k]) * xr[k]);
        }
        if (m->act_type() == TensorType::kQ8_1) {
          // The min term uses the stored activation sum s = f16(d * sum(q)), not the sum of
          // the dequantised activations (§2.1): replace one with the other.
          const std::byte* wrow = w.data() + static_cast<size_t>(r) * row_bytes(type, n_cols);
          const auto* ab = reinterpret_cast<const BlockQ8_1*>(p.act.data() + t * arb);
          for (int64_t b = 0; b < n_cols / 32; ++b) {
            uint16_t m16 = 0;  // Q4_1 and Q5_1 blocks both start with d, m
            std::memcpy(&m16, wrow + static_cast<size_t>(b) * block_bytes(type) + 2, 2);
            double xs = 0;
            for (int64_t k = 32 * b; k < 32 * b + 32; ++k) xs += xr[k];
            ref += static_cast<double>(f32_from_f16(m16)) * (f32_from_f16(ab[b].s) - xs);
          }
        }
        EXPECT_NEAR(p.y[t * n_rows + r], ref, 2e-6 * mag + 1e-30) << "r=" << r << " t=" << t;
      }
    }
    // And the activations stay close to the F32 input (the quantisation is sane).
    double err = 0, nrm = 0;
    for (int64_t t = 0; t < n_tokens; ++t) {
      dequantize_row(m->act_type(), p.act.data() + t * arb, xr.data(), n_cols);
      for (int64_t k = 0; k < n_cols; ++k) {
        err += (xr[k] - x[t * n_cols + k]) * static_cast<double>(xr[k] - x[t * n_cols + k]);
        nrm += x[t * n_cols + k] * static_cast<double>(x[t * n_cols + k]);
      }
    }
    EXPECT_LT(std::sqrt(err / nrm), 0.01);
  }
}

TEST(MatmulTest, ScalarQ4_0OrderIsL1) {
  // One block: (sumi * dx) * dy, in F32.
  std::vector<std::byte> w(row_bytes(TensorType::kQ4_0, 64));
  const auto xw = random_floats(64, 5);
  quantize_row(TensorType::kQ4_0, xw.data(), w.data(), 64);
  const auto xa = random_floats(64, 6);
  std::vector<std::byte> a(row_bytes(TensorType::kQ8_0, 64));
  quantize_row_q8_0(xa.data(), reinterpret_cast<BlockQ8_0*>(a.data()), 64);
  const auto* wb = reinterpret_cast<const BlockQ4_0*>(w.data());
  const auto* ab = reinterpret_cast<const BlockQ8_0*>(a.data());
  float sumf = 0;
  for (int b = 0; b < 2; ++b) {
    int sumi = 0;
    for (int j = 0; j < 16; ++j) {
      sumi += ((wb[b].qs[j] & 15) - 8) * ab[b].qs[j] + ((wb[b].qs[j] >> 4) - 8) * ab[b].qs[j + 16];
    }
    sumf += (static_cast<float>(sumi) * f32_from_f16(wb[b].d)) * f32_from_f16(ab[b].d);
  }
  EXPECT_EQ(ref::dot_q4_0_q8_0(64, w.data(), a.data()), sumf);
}

TEST(MatmulTest, ScalarRowRangeWritesOnlyItsRows) {
  const int64_t n_cols = 64, n_rows = 9, n_tokens = 2;
  const auto w = random_weights(TensorType::kQ8_0, n_rows, n_cols, 1);
  auto m = Matrix::create(TensorType::kQ8_0, n_cols, n_rows, w, Isa::kScalar);
  ASSERT_TRUE(m.has_value());
  const auto x = random_floats(static_cast<size_t>(n_tokens * n_cols), 2);
  const Product p = run_multiply(*m, x, n_tokens, 3, 7);
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < n_rows; ++r) {
      EXPECT_EQ(std::isnan(p.y[t * n_rows + r]), r < 3 || r >= 7) << r;
    }
  }
}

std::vector<Isa> simd_isas() {
  std::vector<Isa> out;
  if (static_cast<int>(best_isa()) >= static_cast<int>(Isa::kAvx2)) out.push_back(Isa::kAvx2);
  if (best_isa() == Isa::kAvx512) out.push_back(Isa::kAvx512);
  return out;
}

// Every SIMD path against the scalar path: activations bit-identical, outputs under an NMSE
// bound, over ragged shapes and row ranges that do not start at 0.
TEST(MatmulTest, SimdMatchesScalar) {
  if (simd_isas().empty()) GTEST_SKIP() << "no SIMD ISA on this CPU";
  const int64_t row_counts[] = {1, 3, 17};
  const int64_t token_counts[] = {1, 2, 5, 13};
  uint32_t seed = 100;
  for (Isa isa : simd_isas()) {
    for (TensorType type : kAllTypes) {
      const int64_t blk = is_k_quant(type) ? 256 : 32;
      for (int64_t n_cols : {blk, 3 * blk, blk == 32 ? int64_t{32 * 29} : int64_t{256 * 5}}) {
        for (int64_t n_rows : row_counts) {
          for (int64_t n_tokens : token_counts) {
            SCOPED_TRACE(std::string(isa_name(isa)) + " " +
                         std::string(gguf::tensor_type_name(type)) + " cols=" +
                         std::to_string(n_cols) + " rows=" + std::to_string(n_rows) +
                         " tokens=" + std::to_string(n_tokens));
            const auto w = random_weights(type, n_rows, n_cols, ++seed);
            auto ms = Matrix::create(type, n_cols, n_rows, w, Isa::kScalar);
            auto mv = Matrix::create(type, n_cols, n_rows, w, isa);
            ASSERT_TRUE(ms.has_value() && mv.has_value());
            const auto x = random_floats(static_cast<size_t>(n_tokens * n_cols), ++seed, 3.0f);
            const int64_t r0 = n_rows > 2 ? 1 : 0;
            const Product ps = run_multiply(*ms, x, n_tokens, r0, n_rows);
            const Product pv = run_multiply(*mv, x, n_tokens, r0, n_rows);
            ASSERT_EQ(ps.act, pv.act) << "activation conversion differs";
            double err = 0, nrm = 0;
            for (int64_t t = 0; t < n_tokens; ++t) {
              for (int64_t r = 0; r < n_rows; ++r) {
                const float a = ps.y[t * n_rows + r], b = pv.y[t * n_rows + r];
                if (r < r0) {
                  ASSERT_TRUE(std::isnan(b)) << "row outside [r0, r1) written";
                  continue;
                }
                err += (a - b) * static_cast<double>(a - b);
                nrm += a * static_cast<double>(a);
              }
            }
            ASSERT_LE(err, 1e-10 * nrm + 1e-30);
          }
        }
      }
    }
  }
}

TEST(MatmulTest, SimdActivationsBitIdenticalOnTies) {
  // Values on exact .5 ties of the multiplier 127/amax = 1 and random blocks.
  std::vector<float> x(1024);
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> half(-254, 254);
  for (auto& v : x) v = static_cast<float>(half(rng)) * 0.5f;
  for (size_t b = 0; b < x.size(); b += 32) x[b] = 127.0f;
  for (Isa isa : simd_isas()) {
    for (TensorType act : {TensorType::kQ8_0, TensorType::kQ8_1, TensorType::kQ8_K,
                           TensorType::kF16, TensorType::kBF16}) {
      const size_t rb = activation_row_bytes(act, 1024);
      std::vector<std::byte> a(rb), b(rb);
      convert_activations(act, x.data(), 1024, 0, 1, a.data(), Isa::kScalar);
      convert_activations(act, x.data(), 1024, 0, 1, b.data(), isa);
      EXPECT_EQ(a, b) << isa_name(isa) << " " << gguf::tensor_type_name(act);
    }
  }
}

TEST(MatmulTest, DotAndAxpy) {
  for (int64_t n : {0, 1, 7, 16, 33, 1000}) {
    const auto a = random_floats(static_cast<size_t>(n), 1);
    const auto b = random_floats(static_cast<size_t>(n), 2);
    double ref = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      ref += static_cast<double>(a[i]) * b[i];
      mag += std::fabs(static_cast<double>(a[i]) * b[i]);
    }
    EXPECT_NEAR(dot_f32(a.data(), b.data(), n), ref, 1e-6 * mag + 1e-30) << n;
    std::vector<float> y = b;
    axpy_f32(0.75f, a.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], b[i] + 0.75f * a[i], 1e-6f) << n;
  }
}

// Attention helpers against double sums, for head sizes with a SIMD kernel (16..256) and
// without one (48, 80: the fallback), and position counts around the 8-position groups.
TEST(MatmulTest, AttentionScoresAndValues) {
  for (int64_t d : {16, 32, 48, 64, 80, 128, 256}) {
    for (int64_t n : {0, 1, 7, 8, 9, 33, 200}) {
      SCOPED_TRACE("d=" + std::to_string(d) + " n=" + std::to_string(n));
      const auto q = random_floats(static_cast<size_t>(d), 3);
      const auto k = random_floats(static_cast<size_t>(n * d) + 1, 4);
      const auto p = random_floats(static_cast<size_t>(n) + 1, 5);
      std::vector<float> s(static_cast<size_t>(n) + 1, -7.0f), out(static_cast<size_t>(d) + 1, -7.0f);
      attn_scores_f32(q.data(), k.data(), n, d, s.data());
      attn_values_f32(p.data(), k.data(), n, d, out.data());
      for (int64_t j = 0; j < n; ++j) {
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < d; ++i) {
          ref += static_cast<double>(q[i]) * k[j * d + i];
          mag += std::fabs(static_cast<double>(q[i]) * k[j * d + i]);
        }
        ASSERT_NEAR(s[j], ref, 1e-6 * mag + 1e-30) << j;
      }
      EXPECT_EQ(s[n], -7.0f) << "wrote past n";
      for (int64_t i = 0; i < d; ++i) {
        double ref = 0, mag = 0;
        for (int64_t j = 0; j < n; ++j) {
          ref += static_cast<double>(p[j]) * k[j * d + i];
          mag += std::fabs(static_cast<double>(p[j]) * k[j * d + i]);
        }
        ASSERT_NEAR(out[i], ref, 1e-6 * mag + 1e-30) << i;
      }
      EXPECT_EQ(out[d], -7.0f) << "wrote past d";
    }
  }
}

}  // namespace
}  // namespace ztslm::engine
