// Block layouts of the ggml tensor types (spec/ENGINE.md §2). All fields little-endian; `d`,
// `m`, `dmin` and `s` are F16 bit patterns unless noted.
//
// SECURITY: this is the one place where bytes are viewed as structs (STYLE.md §5 exception).
// Callers only do so on buffers whose size the GGUF reader or Matrix::create has validated as a
// whole number of blocks; every struct has a static_assert'ed size and no padding.
#pragma once

#include <cstdint>

namespace ztslm::engine {

inline constexpr int kQK = 32;    // elements per legacy block
inline constexpr int kQK_K = 256;  // elements per K-quant super-block
inline constexpr int kKScaleBytes = 12;

struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];  // u32 LE: bit j is the fifth bit of element j
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ5_0) == 22);

struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ5_1) == 24);

struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;  // f16(d_f32 * sum(qs)), d_f32 before F16 rounding
  int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_1) == 36);

struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);

struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210);

struct BlockQ8_K {
  float d;  // F32, opposite sign of the block's max element
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(BlockQ8_K) == 292);

// The 6-bit scale and min of sub-block `i` (0..7) of a Q4_K/Q5_K `scales` array (§2.2).
inline void k_scale_min(int i, const uint8_t* s, uint8_t* sc, uint8_t* mn) {
  if (i < 4) {
    *sc = static_cast<uint8_t>(s[i] & 63);
    *mn = static_cast<uint8_t>(s[i + 4] & 63);
  } else {
    *sc = static_cast<uint8_t>((s[i + 4] & 0x0F) | ((s[i - 4] >> 6) << 4));
    *mn = static_cast<uint8_t>((s[i + 4] >> 4) | ((s[i] >> 6) << 4));
  }
}

}  // namespace ztslm::engine
