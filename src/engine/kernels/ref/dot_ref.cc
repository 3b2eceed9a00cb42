#include "engine/kernels/ref/dot_ref.h"

#include "core/check.h"
#include "engine/quant/blocks.h"
#include "engine/quant/fp16.h"
#include "engine/quant/quant.h"

namespace ztslm::engine::ref {

using gguf::TensorType;

namespace {

template <typename Block>
const Block* as_blocks(const std::byte* p) {
  return reinterpret_cast<const Block*>(p);
}

uint32_t load_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

// Q4_K / Q5_K against Q8_K: integer lanes per super-block, float lanes across super-blocks,
// min correction directly into sumf, lanes added last (§3.4).
template <bool kHasQh, typename Block>
float dot_qk45(int64_t n, const std::byte* wp, const std::byte* ap) {
  const auto* x = as_blocks<Block>(wp);
  const auto* y = as_blocks<BlockQ8_K>(ap);
  float sums[8] = {};
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int8_t a[kQK_K];
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        int lo = x[i].qs[32 * c + l] & 15;
        int hi = x[i].qs[32 * c + l] >> 4;
        if constexpr (kHasQh) {
          lo += ((x[i].qh[l] >> (2 * c)) & 1) * 16;
          hi += ((x[i].qh[l] >> (2 * c + 1)) & 1) * 16;
        }
        a[64 * c + l] = static_cast<int8_t>(lo);
        a[64 * c + 32 + l] = static_cast<int8_t>(hi);
      }
    }
    uint8_t sc[8], mn[8];
    for (int s = 0; s < 8; ++s) k_scale_min(s, x[i].scales, &sc[s], &mn[s]);
    int summ = 0;
    for (int k = 0; k < 16; ++k) summ += y[i].bsums[k] * mn[k / 2];
    int32_t lanes[8] = {};
    for (int s = 0; s < 8; ++s) {
      for (int g = 0; g < 4; ++g) {
        for (int l = 0; l < 8; ++l) {
          const int e = 32 * s + 8 * g + l;
          lanes[l] += sc[s] * (y[i].qs[e] * a[e]);
        }
      }
    }
    const float d = f32_from_f16(x[i].d) * y[i].d;
    for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(lanes[l]);
    const float dmin = f32_from_f16(x[i].dmin) * y[i].d;
    sumf -= dmin * static_cast<float>(summ);
  }
  for (int l = 0; l < 8; ++l) sumf += sums[l];
  return sumf;
}

}  // namespace

float dot_f32_f32(int64_t n, const std::byte* w, const std::byte* a) {
  const auto* x = as_blocks<float>(w);
  const auto* y = as_blocks<float>(a);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * y[i]);
  return static_cast<float>(sum);
}

float dot_f16_f16(int64_t n, const std::byte* w, const std::byte* a) {
  const auto* x = as_blocks<uint16_t>(w);
  const auto* y = as_blocks<uint16_t>(a);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    sum += static_cast<double>(f32_from_f16(x[i]) * f32_from_f16(y[i]));
  }
  return static_cast<float>(sum);
}

float dot_bf16_bf16(int64_t n, const std::byte* w, const std::byte* a) {
  const auto* x = as_blocks<uint16_t>(w);
  const auto* y = as_blocks<uint16_t>(a);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    sum += static_cast<double>(f32_from_bf16(x[i]) * f32_from_bf16(y[i]));
  }
  return static_cast<float>(sum);
}

float dot_q4_0_q8_0(int64_t n, const std::byte* w, const std::byte* a) {
  const auto* x = as_blocks<BlockQ4_0>(w);
  const auto* y = as_blocks<BlockQ8_0>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int sumi = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      sumi += ((x[i].qs[j] & 15) - 8) * y[i].qs[j];
      sumi += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
    }
    sumf += (static_cast<float>(sumi) * f32_from_f16(x[i].d)) * f32_from_f16(y[i].d);
  }
  return sumf;
}

float dot_q4_1_q8_1(int64_t n, const std::byte* w, const std::byte* a) {
  const auto* x = as_blocks<BlockQ4_1>(w);
  const auto* y = as_blocks<BlockQ8_1>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int sumi = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      sumi += (x[i].qs[j] & 15) * y[i].qs[j];
      sumi += (x[i].qs[j] >> 4) * y[i].qs[j + 16];
    }
    sumf += (f32_from_f16(x[i].d) * f32_from_f16(y[i].d)) * static_cast<float>(sumi) +
            f32_from_f16(x[i].m) * f32_from_f16(y[i].s);
  }
  return sumf;
}

float dot_q5_0_q8_0(int64_t n, const std::byte* w, const std::byte* a) {
  const auto* x = as_blocks<BlockQ5_0>(w);
  const auto* y = as_blocks<BlockQ8_0>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    const uint32_t qh = load_u32(x[i].qh);
    int sumi = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int x0 = ((x[i].qs[j] & 15) | static_cast<int>(((qh >> j) & 1u) << 4)) - 16;
      const int x1 = ((x[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4)) - 16;
      sumi += x0 * y[i].qs[j] + x1 * y[i].qs[j + 16];
    }
    sumf += (f32_from_f16(x[i].d) * f32_from_f16(y[i].d)) * static_cast<float>(sumi);
  }
  return sumf;
}

float dot_q5_1_q8_1(int64_t n, const std::byte* w, const std::byte* a) {
  const auto* x = as_blocks<BlockQ5_1>(w);
  const auto* y = as_blocks<BlockQ8_1>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    const uint32_t qh = load_u32(x[i].qh);
    int sumi = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int x0 = (x[i].qs[j] & 15) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int x1 = (x[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      sumi += x0 * y[i].qs[j] + x1 * y[i].qs[j + 16];
    }
    sumf += (f32_from_f16(x[i].d) * f32_from_f16(y[i].d)) * static_cast<float>(sumi) +
            f32_from_f16(x[i].m) * f32_from_f16(y[i].s);
  }
  return sumf;
}

float dot_q8_0_q8_0(int64_t n, const std::byte* w, const std::byte* a) {
  const auto* x = as_blocks<BlockQ8_0>(w);
  const auto* y = as_blocks<BlockQ8_0>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int sumi = 0;
    for (int j = 0; j < kQK; ++j) sumi += x[i].qs[j] * y[i].qs[j];
    sumf += static_cast<float>(sumi) * (f32_from_f16(x[i].d) * f32_from_f16(y[i].d));
  }
  return sumf;
}

float dot_q4_k_q8_k(int64_t n, const std::byte* w, const std::byte* a) {
  return dot_qk45<false, BlockQ4_K>(n, w, a);
}

float dot_q5_k_q8_k(int64_t n, const std::byte* w, const std::byte* a) {
  return dot_qk45<true, BlockQ5_K>(n, w, a);
}

float dot_q6_k_q8_k(int64_t n, const std::byte* w, const std::byte* a) {
  const auto* x = as_blocks<BlockQ6_K>(w);
  const auto* y = as_blocks<BlockQ8_K>(a);
  float sums[8] = {};
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int8_t v[kQK_K];
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = x[i].ql + 64 * h;
      const uint8_t* qh = x[i].qh + 32 * h;
      int8_t* vh = v + 128 * h;
      for (int l = 0; l < 32; ++l) {
        vh[l] = static_cast<int8_t>(((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) - 32);
        vh[l + 32] = static_cast<int8_t>(((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32);
        vh[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        vh[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
    int32_t lanes[8] = {};
    for (int k = 0; k < 16; ++k) {
      for (int g = 0; g < 2; ++g) {
        for (int l = 0; l < 8; ++l) {
          const int e = 16 * k + 8 * g + l;
          lanes[l] += x[i].scales[k] * (y[i].qs[e] * v[e]);
        }
      }
    }
    const float d = f32_from_f16(x[i].d) * y[i].d;
    for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(lanes[l]);
  }
  float sumf = 0.0f;
  for (int l = 0; l < 8; ++l) sumf += sums[l];
  return sumf;
}

DotFn dot_fn(TensorType weight_type) {
  switch (weight_type) {
    case TensorType::kF32: return dot_f32_f32;
    case TensorType::kF16: return dot_f16_f16;
    case TensorType::kBF16: return dot_bf16_bf16;
    case TensorType::kQ4_0: return dot_q4_0_q8_0;
    case TensorType::kQ4_1: return dot_q4_1_q8_1;
    case TensorType::kQ5_0: return dot_q5_0_q8_0;
    case TensorType::kQ5_1: return dot_q5_1_q8_1;
    case TensorType::kQ8_0: return dot_q8_0_q8_0;
    case TensorType::kQ4_K: return dot_q4_k_q8_k;
    case TensorType::kQ5_K: return dot_q5_k_q8_k;
    case TensorType::kQ6_K: return dot_q6_k_q8_k;
    default: return nullptr;
  }
}

void convert_row(TensorType act_type, const float* x, int64_t n, std::byte* out) {
  switch (act_type) {
    case TensorType::kF32:
    case TensorType::kF16:
    case TensorType::kBF16:
      quantize_row(act_type, x, out, n);
      return;
    case TensorType::kQ8_0:
      quantize_row_q8_0(x, reinterpret_cast<BlockQ8_0*>(out), n);
      return;
    case TensorType::kQ8_1:
      quantize_row_q8_1(x, reinterpret_cast<BlockQ8_1*>(out), n);
      return;
    case TensorType::kQ8_K:
      quantize_row_q8_K(x, reinterpret_cast<BlockQ8_K*>(out), n);
      return;
    default:
      ZTSLM_CHECK(false && "convert_row: not an activation type");
  }
}

}  // namespace ztslm::engine::ref
