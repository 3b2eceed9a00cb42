#include "engine/quant/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "engine/quant/fp16.h"

namespace ztslm::engine {

using gguf::TensorType;

namespace {

template <typename Block>
const Block* blocks_of(const std::byte* p) {
  return reinterpret_cast<const Block*>(p);
}
template <typename Block>
Block* blocks_of(std::byte* p) {
  return reinterpret_cast<Block*>(p);
}

uint32_t load_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
void store_u32(uint32_t v, uint8_t* p) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Round half to even under the default rounding mode (llama.cpp's nearest_int and
// _mm256_round_ps with _MM_FROUND_TO_NEAREST_INT agree with it).
int nearest_int(float v) { return static_cast<int>(std::nearbyint(v)); }

// ---- dequantisation (§2) ----

void dequant_q4_0(const BlockQ4_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = f32_from_f16(b[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = static_cast<float>((b[i].qs[j] & 15) - 8) * d;
      y[j + 16] = static_cast<float>((b[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void dequant_q4_1(const BlockQ4_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = f32_from_f16(b[i].d);
    const float m = f32_from_f16(b[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = static_cast<float>(b[i].qs[j] & 15) * d + m;
      y[j + 16] = static_cast<float>(b[i].qs[j] >> 4) * d + m;
    }
  }
}

void dequant_q5_0(const BlockQ5_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = f32_from_f16(b[i].d);
    const uint32_t qh = load_u32(b[i].qh);
    for (int j = 0; j < kQK / 2; ++j) {
      const int hb0 = static_cast<int>((qh >> j) & 1u);
      const int hb1 = static_cast<int>((qh >> (j + 16)) & 1u);
      y[j] = static_cast<float>(((b[i].qs[j] & 15) + 16 * hb0) - 16) * d;
      y[j + 16] = static_cast<float>(((b[i].qs[j] >> 4) + 16 * hb1) - 16) * d;
    }
  }
}

void dequant_q5_1(const BlockQ5_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = f32_from_f16(b[i].d);
    const float m = f32_from_f16(b[i].m);
    const uint32_t qh = load_u32(b[i].qh);
    for (int j = 0; j < kQK / 2; ++j) {
      const int hb0 = static_cast<int>((qh >> j) & 1u);
      const int hb1 = static_cast<int>((qh >> (j + 16)) & 1u);
      y[j] = static_cast<float>((b[i].qs[j] & 15) + 16 * hb0) * d + m;
      y[j + 16] = static_cast<float>((b[i].qs[j] >> 4) + 16 * hb1) * d + m;
    }
  }
}

void dequant_q8_0(const BlockQ8_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = f32_from_f16(b[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(b[i].qs[j]) * d;
  }
}

void dequant_q8_1(const BlockQ8_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = f32_from_f16(b[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(b[i].qs[j]) * d;
  }
}

template <bool kHasQh, typename Block>
void dequant_qk45(const Block* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = f32_from_f16(b[i].d);
    const float dmin = f32_from_f16(b[i].dmin);
    for (int c = 0; c < 4; ++c) {
      uint8_t sc0 = 0, mn0 = 0, sc1 = 0, mn1 = 0;
      k_scale_min(2 * c, b[i].scales, &sc0, &mn0);
      k_scale_min(2 * c + 1, b[i].scales, &sc1, &mn1);
      const float d0 = d * static_cast<float>(sc0), m0 = dmin * static_cast<float>(mn0);
      const float d1 = d * static_cast<float>(sc1), m1 = dmin * static_cast<float>(mn1);
      for (int l = 0; l < 32; ++l) {
        int lo = b[i].qs[32 * c + l] & 15;
        int hi = b[i].qs[32 * c + l] >> 4;
        if constexpr (kHasQh) {
          lo += ((b[i].qh[l] >> (2 * c)) & 1) * 16;
          hi += ((b[i].qh[l] >> (2 * c + 1)) & 1) * 16;
        }
        y[64 * c + l] = d0 * static_cast<float>(lo) - m0;
        y[64 * c + 32 + l] = d1 * static_cast<float>(hi) - m1;
      }
    }
    y += kQK_K;
  }
}

void dequant_q6_k(const BlockQ6_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = f32_from_f16(b[i].d);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = b[i].ql + 64 * h;
      const uint8_t* qh = b[i].qh + 32 * h;
      const int8_t* sc = b[i].scales + 8 * h;
      float* yh = y + 128 * h;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        yh[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
        yh[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        yh[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        yh[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
    y += kQK_K;
  }
}

void dequant_q8_k(const BlockQ8_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK_K) {
    for (int j = 0; j < kQK_K; ++j) y[j] = b[i].d * static_cast<float>(b[i].qs[j]);
  }
}

// ---- weight quantisers ----

// Signed value of largest magnitude (first one wins on ties).
float signed_absmax(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void quant_q4_0(const float* x, BlockQ4_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = signed_absmax(x, kQK) / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f16_from_f32(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
      const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 8.5f)));
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quant_q5_0(const float* x, BlockQ5_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = signed_absmax(x, kQK) / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f16_from_f32(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f)));
      const int q1 = std::min(31, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 16.5f)));
      y[i].qs[j] = static_cast<uint8_t>((q0 & 15) | ((q1 & 15) << 4));
      qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + 16);
    }
    store_u32(qh, y[i].qh);
  }
}

// Q4_1 / Q5_1: d = (max - min) / levels, m = min.
template <int kLevels, typename Block>
void quant_qx_1(const float* x, Block* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float mn = x[0], mx = x[0];
    for (int j = 1; j < kQK; ++j) {
      mn = std::min(mn, x[j]);
      mx = std::max(mx, x[j]);
    }
    const float d = (mx - mn) / static_cast<float>(kLevels);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f16_from_f32(d);
    y[i].m = f16_from_f32(mn);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(kLevels, static_cast<int>(static_cast<int8_t>((x[j] - mn) * id + 0.5f)));
      const int q1 =
          std::min(kLevels, static_cast<int>(static_cast<int8_t>((x[j + 16] - mn) * id + 0.5f)));
      y[i].qs[j] = static_cast<uint8_t>((q0 & 15) | ((q1 & 15) << 4));
      qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + 16);
    }
    if constexpr (kLevels == 31) store_u32(qh, y[i].qh);
  }
}

// Q4_K / Q5_K: per sub-block of 32 a scale and a (non-negative) min, each a 6-bit multiple of
// the super-block's d / dmin. Rounded up so the sub-block range stays covered.
template <int kLevels, typename Block>
void quant_qk45(const float* x, Block* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    float scale[8], minv[8];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int s = 0; s < 8; ++s) {
      float mn = 0.0f, mx = 0.0f;
      for (int j = 0; j < 32; ++j) {
        mn = std::min(mn, x[32 * s + j]);
        mx = std::max(mx, x[32 * s + j]);
      }
      minv[s] = -mn;
      scale[s] = (mx - mn) / static_cast<float>(kLevels);
      max_scale = std::max(max_scale, scale[s]);
      max_min = std::max(max_min, minv[s]);
    }
    const uint16_t d16 = f16_from_f32(max_scale / 63.0f);
    const uint16_t dmin16 = f16_from_f32(max_min / 63.0f);
    const float d = f32_from_f16(d16), dmin = f32_from_f16(dmin16);
    uint8_t sc[8], mn[8];
    for (int s = 0; s < 8; ++s) {
      sc[s] = static_cast<uint8_t>(
          d > 0.0f ? std::clamp(static_cast<int>(std::ceil(scale[s] / d)), 0, 63) : 0);
      mn[s] = static_cast<uint8_t>(
          dmin > 0.0f ? std::clamp(static_cast<int>(std::ceil(minv[s] / dmin)), 0, 63) : 0);
    }
    Block& b = y[i];
    b.d = d16;
    b.dmin = dmin16;
    for (int s = 0; s < 4; ++s) {
      b.scales[s] = static_cast<uint8_t>((sc[s] & 63) | ((sc[s + 4] >> 4) << 6));
      b.scales[s + 4] = static_cast<uint8_t>((mn[s] & 63) | ((mn[s + 4] >> 4) << 6));
      b.scales[s + 8] = static_cast<uint8_t>((sc[s + 4] & 15) | ((mn[s + 4] & 15) << 4));
    }
    uint8_t q[kQK_K];
    for (int s = 0; s < 8; ++s) {
      const float ds = d * static_cast<float>(sc[s]);
      const float ms = dmin * static_cast<float>(mn[s]);
      const float ids = ds > 0.0f ? 1.0f / ds : 0.0f;
      for (int j = 0; j < 32; ++j) {
        q[32 * s + j] =
            static_cast<uint8_t>(std::clamp(nearest_int((x[32 * s + j] + ms) * ids), 0, kLevels));
      }
    }
    if constexpr (kLevels == 31) std::memset(b.qh, 0, sizeof(b.qh));
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t lo = q[64 * c + l], hi = q[64 * c + 32 + l];
        b.qs[32 * c + l] = static_cast<uint8_t>((lo & 15) | ((hi & 15) << 4));
        if constexpr (kLevels == 31) {
          b.qh[l] = static_cast<uint8_t>(b.qh[l] | (((lo >> 4) & 1) << (2 * c)) |
                                         (((hi >> 4) & 1) << (2 * c + 1)));
        }
      }
    }
  }
}

// Q6_K: per group of 16 a signed int8 multiple of d; values -32..31.
void quant_q6_k(const float* x, BlockQ6_K* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    float gscale[16];
    float max_abs_scale = 0.0f, max_scale = 0.0f;
    for (int g = 0; g < 16; ++g) {
      const float m = signed_absmax(x + 16 * g, 16);
      gscale[g] = m / -32.0f;
      if (std::fabs(gscale[g]) > max_abs_scale) {
        max_abs_scale = std::fabs(gscale[g]);
        max_scale = gscale[g];
      }
    }
    const uint16_t d16 = f16_from_f32(max_scale / -128.0f);
    const float d = f32_from_f16(d16);
    BlockQ6_K& b = y[i];
    b.d = d16;
    int8_t q[kQK_K];
    for (int g = 0; g < 16; ++g) {
      const int s = d != 0.0f ? std::clamp(nearest_int(gscale[g] / d), -128, 127) : 0;
      b.scales[g] = static_cast<int8_t>(s);
      const float dg = d * static_cast<float>(s);
      const float idg = dg != 0.0f ? 1.0f / dg : 0.0f;
      for (int j = 0; j < 16; ++j) {
        q[16 * g + j] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * g + j] * idg), -32, 31));
      }
    }
    std::memset(b.qh, 0, sizeof(b.qh));
    for (int h = 0; h < 2; ++h) {
      uint8_t* ql = b.ql + 64 * h;
      uint8_t* qh = b.qh + 32 * h;
      const int8_t* qq = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        const int q1 = qq[l] + 32, q2 = qq[l + 32] + 32, q3 = qq[l + 64] + 32, q4 = qq[l + 96] + 32;
        ql[l] = static_cast<uint8_t>((q1 & 15) | ((q3 & 15) << 4));
        ql[l + 32] = static_cast<uint8_t>((q2 & 15) | ((q4 & 15) << 4));
        qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}

}  // namespace

bool is_type_implemented(TensorType type) {
  switch (type) {
    case TensorType::kF32:
    case TensorType::kF16:
    case TensorType::kBF16:
    case TensorType::kQ4_0:
    case TensorType::kQ4_1:
    case TensorType::kQ5_0:
    case TensorType::kQ5_1:
    case TensorType::kQ8_0:
    case TensorType::kQ4_K:
    case TensorType::kQ5_K:
    case TensorType::kQ6_K:
      return true;
    default:
      return false;
  }
}

int64_t block_elems(TensorType type) {
  const auto traits = gguf::tensor_type_traits(type);
  return traits ? static_cast<int64_t>(traits->block_elems) : 0;
}

size_t block_bytes(TensorType type) {
  const auto traits = gguf::tensor_type_traits(type);
  return traits ? traits->block_bytes : 0;
}

size_t row_bytes(TensorType type, int64_t n) {
  const int64_t be = block_elems(type);
  ZTSLM_CHECK(be > 0 && n >= 0 && n % be == 0);
  return static_cast<size_t>(n / be) * block_bytes(type);
}

void dequantize_row(TensorType type, const std::byte* src, float* dst, int64_t n) {
  const int64_t be = block_elems(type);
  ZTSLM_CHECK(be > 0 && n % be == 0);
  const int64_t nb = n / be;
  switch (type) {
    case TensorType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case TensorType::kF16: {
      const auto* h = blocks_of<uint16_t>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = f32_from_f16(h[i]);
      return;
    }
    case TensorType::kBF16: {
      const auto* h = blocks_of<uint16_t>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = f32_from_bf16(h[i]);
      return;
    }
    case TensorType::kQ4_0: return dequant_q4_0(blocks_of<BlockQ4_0>(src), dst, nb);
    case TensorType::kQ4_1: return dequant_q4_1(blocks_of<BlockQ4_1>(src), dst, nb);
    case TensorType::kQ5_0: return dequant_q5_0(blocks_of<BlockQ5_0>(src), dst, nb);
    case TensorType::kQ5_1: return dequant_q5_1(blocks_of<BlockQ5_1>(src), dst, nb);
    case TensorType::kQ8_0: return dequant_q8_0(blocks_of<BlockQ8_0>(src), dst, nb);
    case TensorType::kQ8_1: return dequant_q8_1(blocks_of<BlockQ8_1>(src), dst, nb);
    case TensorType::kQ4_K: return dequant_qk45<false>(blocks_of<BlockQ4_K>(src), dst, nb);
    case TensorType::kQ5_K: return dequant_qk45<true>(blocks_of<BlockQ5_K>(src), dst, nb);
    case TensorType::kQ6_K: return dequant_q6_k(blocks_of<BlockQ6_K>(src), dst, nb);
    case TensorType::kQ8_K: return dequant_q8_k(blocks_of<BlockQ8_K>(src), dst, nb);
    default:
      ZTSLM_CHECK(false && "dequantize_row: type not implemented");
  }
}

bool can_quantize(TensorType type) { return is_type_implemented(type); }

void quantize_row(TensorType type, const float* src, std::byte* dst, int64_t n) {
  const int64_t be = block_elems(type);
  ZTSLM_CHECK(be > 0 && n % be == 0);
  const int64_t nb = n / be;
  switch (type) {
    case TensorType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case TensorType::kF16: {
      auto* h = blocks_of<uint16_t>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = f16_from_f32(src[i]);
      return;
    }
    case TensorType::kBF16: {
      auto* h = blocks_of<uint16_t>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = bf16_from_f32(src[i]);
      return;
    }
    case TensorType::kQ4_0: return quant_q4_0(src, blocks_of<BlockQ4_0>(dst), nb);
    case TensorType::kQ4_1: return quant_qx_1<15>(src, blocks_of<BlockQ4_1>(dst), nb);
    case TensorType::kQ5_0: return quant_q5_0(src, blocks_of<BlockQ5_0>(dst), nb);
    case TensorType::kQ5_1: return quant_qx_1<31>(src, blocks_of<BlockQ5_1>(dst), nb);
    case TensorType::kQ8_0: return quantize_row_q8_0_generic(src, blocks_of<BlockQ8_0>(dst), n);
    case TensorType::kQ4_K: return quant_qk45<15>(src, blocks_of<BlockQ4_K>(dst), nb);
    case TensorType::kQ5_K: return quant_qk45<31>(src, blocks_of<BlockQ5_K>(dst), nb);
    case TensorType::kQ6_K: return quant_q6_k(src, blocks_of<BlockQ6_K>(dst), nb);
    default:
      ZTSLM_CHECK(false && "quantize_row: type not implemented");
  }
}

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
  ZTSLM_CHECK(n % kQK == 0);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    y[i].d = f16_from_f32(d);
    for (int j = 0; j < kQK; ++j) y[i].qs[j] = static_cast<int8_t>(nearest_int(x[j] * id));
  }
}

void quantize_row_q8_1(const float* x, BlockQ8_1* y, int64_t n) {
  ZTSLM_CHECK(n % kQK == 0);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    y[i].d = f16_from_f32(d);
    int sum = 0;
    for (int j = 0; j < kQK; ++j) {
      const int q = nearest_int(x[j] * id);
      y[i].qs[j] = static_cast<int8_t>(q);
      sum += q;
    }
    y[i].s = f16_from_f32(d * static_cast<float>(sum));
  }
}

void quantize_row_q8_0_generic(const float* x, BlockQ8_0* y, int64_t n) {
  ZTSLM_CHECK(n % kQK == 0);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f16_from_f32(d);
    for (int j = 0; j < kQK; ++j) y[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  }
}

void quantize_row_q8_K(const float* x, BlockQ8_K* y, int64_t n) {
  ZTSLM_CHECK(n % kQK_K == 0);
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      std::memset(&y[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQK_K; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    }
    for (int k = 0; k < kQK_K / 16; ++k) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += y[i].qs[16 * k + j];
      y[i].bsums[k] = static_cast<int16_t>(sum);
    }
    y[i].d = 1.0f / iscale;
  }
}

}  // namespace ztslm::engine
