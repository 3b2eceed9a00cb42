// Register-tiled x86 kernels shared by avx2.cc and avx512.cc. Each of those files defines
// ZTSLM_X86_AVX512 (0 or 1) and includes this header once, so every function here has internal
// linkage and is compiled with that file's -m flags only (no ODR clash between the ISAs).
//
// Shape of every GEMM: y[t * ldy + r] = dot(W row r, act row t) for r in [r0, r1), t in
// [0, n_tokens). Rows are walked in tiles of kR rows x kT tokens: each weight block is loaded
// and unpacked once per tile and reused for kT tokens; n_tokens = 1 (decode) streams kR rows at
// a time. Integer parts are exact (as in the scalar reference); only the float summation order
// differs from ref/ (tests hold it to an NMSE bound). Activation quantisers are bit-identical to
// engine/quant (same multiplier, same round-half-even).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "engine/kernels/internal/isa_kernels.h"
#include "engine/quant/blocks.h"
#include "engine/quant/fp16.h"

#ifndef ZTSLM_X86_AVX512
#error "define ZTSLM_X86_AVX512 before including kernels_impl.h"
#endif

namespace ztslm::engine::internal {
namespace {

using gguf::TensorType;

// ---- primitives ----

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int32_t hsum_i32_128(__m128i s) {
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// acc + sum of 4 adjacent u8 * s8 products per int32 lane (exact: no int16 saturation for the
// ranges used here: |s| <= 127 and u <= 255 only in the Q8_0 path, where u*s pairs stay within
// int16 because u = x + 128 and the pair sums are handled by VNNI or the split below).
inline __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) {
#if ZTSLM_X86_AVX512
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  // maddubs saturates at int16: u up to 255 times s up to 127, two of them, can reach 64770.
  // Split u into its low 7 bits and its top bit so each partial product pair stays in range.
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i lo = _mm256_and_si256(u, _mm256_set1_epi8(0x7F));
  const __m256i hi = _mm256_and_si256(u, _mm256_set1_epi8(static_cast<char>(0x80)));
  const __m256i plo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, s), ones16);
  // hi is 0 or 128: 128 * s summed over a pair fits int16 (|sum| <= 32512).
  const __m256i phi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, s), ones16);
  return _mm256_add_epi32(acc, _mm256_add_epi32(plo, phi));
#endif
}

// Same as dot_u8s8 for u <= 127 (no split needed on AVX2).
inline __m256i dot_u7s8(__m256i acc, __m256i u, __m256i s) {
#if ZTSLM_X86_AVX512
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

// acc + scale16 * (pair sums of u * s): used by the K-quants (u <= 63).
inline __m256i dot_scaled(__m256i acc, __m256i u, __m256i s, __m256i scale16) {
#if ZTSLM_X86_AVX512
  return _mm256_dpwssd_epi32(acc, _mm256_maddubs_epi16(u, s), scale16);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale16));
#endif
}

// Exact F16 -> F32 widening with F16C (same value as f32_from_f16).
inline float fp16(uint16_t h) { return _cvtsh_ss(h); }

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

// 16 bytes of nibbles -> 32 bytes: low nibbles (elements 0..15), then high (16..31).
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i q = load128(qs);
  const __m128i m = _mm_set1_epi8(0x0F);
  const __m128i lo = _mm_and_si128(q, m);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(q, 4), m);
  return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

// 32 bits -> 32 bytes, byte j = 0x10 where bit j is set.
inline __m256i expand_bits_to_0x10(uint32_t bits) {
  const __m256i v = _mm256_set1_epi32(static_cast<int>(bits));
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL,
                                         0x0101010101010101LL, 0x0000000000000000LL);
  const __m256i bytes = _mm256_shuffle_epi8(v, shuf);
  const __m256i mask = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, mask), mask);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v = 0;
  std::memcpy(&v, p, 4);
  return v;
}

// ---- legacy 32-element types against Q8_0 / Q8_1 ----
//
// Weight value = u - kOffset with u unsigned; sum_j (u_j - c) y_j = dot(u, y) - c * sum(y).

struct Q4_0Traits {
  using Block = BlockQ4_0;
  using ActBlock = BlockQ8_0;
  static constexpr int kOffset = 8;
  static constexpr bool kHasMin = false;
  static __m256i unpack(const Block& b) { return unpack_nibbles(b.qs); }
};
struct Q5_0Traits {
  using Block = BlockQ5_0;
  using ActBlock = BlockQ8_0;
  static constexpr int kOffset = 16;
  static constexpr bool kHasMin = false;
  static __m256i unpack(const Block& b) {
    return _mm256_or_si256(unpack_nibbles(b.qs), expand_bits_to_0x10(load_u32(b.qh)));
  }
};
struct Q8_0Traits {
  using Block = BlockQ8_0;
  using ActBlock = BlockQ8_0;
  static constexpr int kOffset = 128;
  static constexpr bool kHasMin = false;
  static __m256i unpack(const Block& b) {
    return _mm256_xor_si256(load256(b.qs), _mm256_set1_epi8(static_cast<char>(0x80)));
  }
};
struct Q4_1Traits {
  using Block = BlockQ4_1;
  using ActBlock = BlockQ8_1;
  static constexpr int kOffset = 0;
  static constexpr bool kHasMin = true;
  static __m256i unpack(const Block& b) { return unpack_nibbles(b.qs); }
};
struct Q5_1Traits {
  using Block = BlockQ5_1;
  using ActBlock = BlockQ8_1;
  static constexpr int kOffset = 0;
  static constexpr bool kHasMin = true;
  static __m256i unpack(const Block& b) {
    return _mm256_or_si256(unpack_nibbles(b.qs), expand_bits_to_0x10(load_u32(b.qh)));
  }
};

// ---- software prefetch for GEMV ----
//
// A decode step streams every weight once from DRAM. The rows of a tile are contiguous, so a
// GEMV walks the matrix front to back, but as kR interleaved streams that are too short for the
// hardware prefetcher to follow (a 576-wide Q8_0 row is 612 bytes). Each step of a tile
// therefore prefetches the bytes it consumes, at least one tile and at least 16 KiB ahead in
// the linear order; prefetches past the end of the matrix are harmless (they never fault).
constexpr int64_t kPrefetchMin = 16384;

// Addresses are formed as integers: they may lie past the matrix, where pointer arithmetic
// would not be defined.
template <int kR>
inline uintptr_t prefetch_base(const GemmArgs& a, const void* tile_start) {
  const int64_t ahead = std::max<int64_t>(kR * static_cast<int64_t>(a.w_row_bytes), kPrefetchMin);
  return reinterpret_cast<uintptr_t>(tile_start) + static_cast<uintptr_t>(ahead);
}

// Step `b` of a tile consumes kStepBytes (kR blocks): prefetch that many bytes, plus one line
// for the misalignment.
template <size_t kStepBytes>
inline void prefetch_step(uintptr_t base, int64_t b) {
  const uintptr_t p = base + static_cast<uintptr_t>(b) * kStepBytes;
  for (size_t k = 0; k < (kStepBytes + 63) / 64 + 1; ++k) {
    _mm_prefetch(reinterpret_cast<const char*>(p + 64 * k), _MM_HINT_T0);
  }
}

template <typename Tr, int kR, int kT>
void tile_legacy(const GemmArgs& a, int64_t r, int64_t t) {
  using Block = typename Tr::Block;
  using ActBlock = typename Tr::ActBlock;
  const int64_t nb = a.n_cols / kQK;
  const Block* w[kR];
  for (int i = 0; i < kR; ++i) {
    w[i] = reinterpret_cast<const Block*>(a.w + static_cast<size_t>(r + i) * a.w_row_bytes);
  }
  const ActBlock* x[kT];
  for (int j = 0; j < kT; ++j) {
    x[j] = reinterpret_cast<const ActBlock*>(a.act + static_cast<size_t>(t + j) * a.act_row_bytes);
  }
  __m256 acc[kR][kT];
  float macc[kR][kT];
  for (int i = 0; i < kR; ++i) {
    for (int j = 0; j < kT; ++j) {
      acc[i][j] = _mm256_setzero_ps();
      macc[i][j] = 0.0f;
    }
  }
  const __m256i ones8 = _mm256_set1_epi8(1);
  const uintptr_t pf = prefetch_base<kR>(a, w[0]);
  for (int64_t b = 0; b < nb; ++b) {
    if constexpr (kT == 1) prefetch_step<kR * sizeof(Block)>(pf, b);
    __m256i u[kR];
    __m256 dx[kR];
    for (int i = 0; i < kR; ++i) {
      u[i] = Tr::unpack(w[i][b]);
      dx[i] = _mm256_set1_ps(fp16(w[i][b].d));
    }
    for (int j = 0; j < kT; ++j) {
      const __m256i yv = load256(x[j][b].qs);
      const __m256 dy = _mm256_set1_ps(fp16(x[j][b].d));
      __m256i corr = _mm256_setzero_si256();
      if constexpr (Tr::kOffset != 0) {
        corr = _mm256_mullo_epi32(dot_u7s8(_mm256_setzero_si256(), ones8, yv),
                                  _mm256_set1_epi32(Tr::kOffset));
      }
      for (int i = 0; i < kR; ++i) {
        __m256i p;
        if constexpr (Tr::kOffset == 128) {
          p = dot_u8s8(_mm256_setzero_si256(), u[i], yv);
        } else {
          p = dot_u7s8(_mm256_setzero_si256(), u[i], yv);
        }
        if constexpr (Tr::kOffset != 0) p = _mm256_sub_epi32(p, corr);
        acc[i][j] = _mm256_fmadd_ps(_mm256_mul_ps(dx[i], dy), _mm256_cvtepi32_ps(p), acc[i][j]);
        if constexpr (Tr::kHasMin) {
          macc[i][j] += fp16(w[i][b].m) * fp16(x[j][b].s);
        }
      }
    }
  }
  for (int i = 0; i < kR; ++i) {
    for (int j = 0; j < kT; ++j) a.y[(t + j) * a.ldy + r + i] = hsum(acc[i][j]) + macc[i][j];
  }
}

#if ZTSLM_X86_AVX512
// ---- AVX-512: Q4_0 / Q5_0 / Q8_0 against Q8_0, two blocks per 512-bit register ----
//
// Lanes 0-7 of each accumulator hold block b, lanes 8-15 block b + 1. A lane is the exact
// integer dot product of 4 weight/activation pairs (the unsigned weight u = w + kOffset goes
// through VPDPBUSD, which starts from -kOffset * sum(y) of those 4 activations, so the offset
// cancels exactly), converted to F32 and accumulated with fma(dx * dy, lane, acc). Only the
// F32 summation order differs from the 256-bit tile above.

// f32(h0) in lanes 0-7 and f32(h1) in lanes 8-15.
inline __m512 scales2(uint16_t h0, uint16_t h1) {
  const __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(h0 | (uint32_t{h1} << 16))));
  const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_permutexvar_ps(idx, _mm512_zextps128_ps512(f));
}

// Two 32-byte activation rows (or one, and zeros in lanes 8-15 when `q1` is null).
inline __m512i load2x256(const void* q0, const void* q1) {
  const __m512i lo = _mm512_zextsi256_si512(load256(q0));
  return q1 != nullptr ? _mm512_inserti64x4(lo, load256(q1), 1) : lo;
}

// Nibbles of two blocks: [lo(q0) | hi(q0) | lo(q1) | hi(q1)] in 128-bit lanes, each lane in
// element order; q1 null gives zeros in lanes 8-15.
inline __m512i unpack_nibbles2(const uint8_t* q0, const uint8_t* q1) {
  __m256i q = _mm256_castsi128_si256(load128(q0));
  q = q1 != nullptr ? _mm256_inserti128_si256(q, load128(q1), 1)
                    : _mm256_zextsi128_si256(_mm256_castsi256_si128(q));
  const __m512i z = _mm512_shuffle_i64x2(_mm512_castsi256_si512(q), _mm512_castsi256_si512(q),
                                         _MM_SHUFFLE(1, 1, 0, 0));
  // Shift the copies in 128-bit lanes 1 and 3 (16-bit elements 8-15 and 24-31) by 4.
  const __m512i sh = _mm512_mask_srli_epi16(z, static_cast<__mmask32>(0xFF00FF00u), z, 4);
  return _mm512_and_si512(sh, _mm512_set1_epi8(0x0F));
}

struct Q4_0Zmm {
  using Block = BlockQ4_0;
  static constexpr int kOffset = 8;
  static __m512i unpack2(const Block* b0, const Block* b1) {
    return unpack_nibbles2(b0->qs, b1 != nullptr ? b1->qs : nullptr);
  }
};
struct Q5_0Zmm {
  using Block = BlockQ5_0;
  static constexpr int kOffset = 16;
  static __m512i unpack2(const Block* b0, const Block* b1) {
    const __m512i u = unpack_nibbles2(b0->qs, b1 != nullptr ? b1->qs : nullptr);
    uint64_t bits = load_u32(b0->qh);
    if (b1 != nullptr) bits |= uint64_t{load_u32(b1->qh)} << 32;
    return _mm512_mask_add_epi8(u, _cvtu64_mask64(bits), u, _mm512_set1_epi8(0x10));
  }
};
struct Q8_0Zmm {
  using Block = BlockQ8_0;
  static constexpr int kOffset = 128;
  static __m512i unpack2(const Block* b0, const Block* b1) {
    return _mm512_xor_si512(load2x256(b0->qs, b1 != nullptr ? b1->qs : nullptr),
                            _mm512_set1_epi8(static_cast<char>(0x80)));
  }
};

template <typename Tr, int kR, int kT>
void tile_legacy_zmm(const GemmArgs& a, int64_t r, int64_t t) {
  using Block = typename Tr::Block;
  const int64_t nb = a.n_cols / kQK;
  const Block* w[kR];
  for (int i = 0; i < kR; ++i) {
    w[i] = reinterpret_cast<const Block*>(a.w + static_cast<size_t>(r + i) * a.w_row_bytes);
  }
  const BlockQ8_0* x[kT];
  for (int j = 0; j < kT; ++j) {
    x[j] = reinterpret_cast<const BlockQ8_0*>(a.act + static_cast<size_t>(t + j) * a.act_row_bytes);
  }
  __m512 acc[kR][kT];
  for (int i = 0; i < kR; ++i) {
    for (int j = 0; j < kT; ++j) acc[i][j] = _mm512_setzero_ps();
  }
  const __m512i offset = _mm512_set1_epi8(static_cast<char>(Tr::kOffset));
  const uintptr_t pf = prefetch_base<kR>(a, w[0]);
  for (int64_t b = 0; b < nb; b += 2) {
    if constexpr (kT == 1) prefetch_step<2 * kR * sizeof(Block)>(pf, b / 2);
    const bool pair = b + 1 < nb;
    __m512i u[kR];
    __m512 dx[kR];
    for (int i = 0; i < kR; ++i) {
      const Block* b1 = pair ? &w[i][b + 1] : nullptr;
      u[i] = Tr::unpack2(&w[i][b], b1);
      dx[i] = scales2(w[i][b].d, pair ? b1->d : uint16_t{0});
    }
    for (int j = 0; j < kT; ++j) {
      const __m512i yv = load2x256(x[j][b].qs, pair ? x[j][b + 1].qs : nullptr);
      const __m512 dy = scales2(x[j][b].d, pair ? x[j][b + 1].d : uint16_t{0});
      const __m512i ncorr =
          _mm512_sub_epi32(_mm512_setzero_si512(),
                           _mm512_dpbusd_epi32(_mm512_setzero_si512(), offset, yv));
      for (int i = 0; i < kR; ++i) {
        const __m512i p = _mm512_dpbusd_epi32(ncorr, u[i], yv);
        acc[i][j] = _mm512_fmadd_ps(_mm512_mul_ps(dx[i], dy), _mm512_cvtepi32_ps(p), acc[i][j]);
      }
    }
  }
  for (int i = 0; i < kR; ++i) {
    for (int j = 0; j < kT; ++j) a.y[(t + j) * a.ldy + r + i] = _mm512_reduce_add_ps(acc[i][j]);
  }
}
#endif  // ZTSLM_X86_AVX512

// ---- K-quants against Q8_K ----

// Scales and mins of a Q4_K/Q5_K super-block as 8 + 8 bytes (§2.2 packing).
inline void k_scales(const uint8_t* s, uint8_t sc[8], uint8_t mn[8]) {
  const uint32_t a0 = load_u32(s), a1 = load_u32(s + 4), a2 = load_u32(s + 8);
  const uint32_t sc_lo = a0 & 0x3F3F3F3Fu;
  const uint32_t mn_lo = a1 & 0x3F3F3F3Fu;
  const uint32_t sc_hi = (a2 & 0x0F0F0F0Fu) | (((a0 >> 6) & 0x03030303u) << 4);
  const uint32_t mn_hi = ((a2 >> 4) & 0x0F0F0F0Fu) | (((a1 >> 6) & 0x03030303u) << 4);
  std::memcpy(sc, &sc_lo, 4);
  std::memcpy(sc + 4, &sc_hi, 4);
  std::memcpy(mn, &mn_lo, 4);
  std::memcpy(mn + 4, &mn_hi, 4);
}

// 8 u8 mins -> 16 int16 [m0, m0, m1, m1, ...] matching bsums[16] (two per sub-block).
inline __m256i mins_pairs(const uint8_t mn[8]) {
  uint64_t v = 0;
  std::memcpy(&v, mn, 8);
  const __m128i m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(v)));
  return _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
}

inline __m256i shr16(__m256i v, int n) { return _mm256_srl_epi16(v, _mm_cvtsi32_si128(n)); }

template <bool kHasQh, typename Block, int kR, int kT>
void tile_qk45(const GemmArgs& a, int64_t r, int64_t t) {
  const int64_t nb = a.n_cols / kQK_K;
  const Block* w[kR];
  for (int i = 0; i < kR; ++i) {
    w[i] = reinterpret_cast<const Block*>(a.w + static_cast<size_t>(r + i) * a.w_row_bytes);
  }
  const BlockQ8_K* x[kT];
  for (int j = 0; j < kT; ++j) {
    x[j] = reinterpret_cast<const BlockQ8_K*>(a.act + static_cast<size_t>(t + j) * a.act_row_bytes);
  }
  __m256 acc[kR][kT];
  for (int i = 0; i < kR; ++i) {
    for (int j = 0; j < kT; ++j) acc[i][j] = _mm256_setzero_ps();
  }
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i one = _mm256_set1_epi8(1);
  const uintptr_t pf = prefetch_base<kR>(a, w[0]);
  for (int64_t b = 0; b < nb; ++b) {
    if constexpr (kT == 1) prefetch_step<kR * sizeof(Block)>(pf, b);
    uint8_t sc[kR][8], mn[kR][8];
    __m256i qh[kR];
    for (int i = 0; i < kR; ++i) {
      k_scales(w[i][b].scales, sc[i], mn[i]);
      if constexpr (kHasQh) qh[i] = load256(w[i][b].qh);
    }
    __m256i isum[kR][kT];
    for (int i = 0; i < kR; ++i) {
      for (int j = 0; j < kT; ++j) isum[i][j] = _mm256_setzero_si256();
    }
    for (int c = 0; c < 4; ++c) {
      __m256i q4[kR];
      for (int i = 0; i < kR; ++i) q4[i] = load256(w[i][b].qs + 32 * c);
      for (int half = 0; half < 2; ++half) {
        const int s = 2 * c + half;
        __m256i u[kR];
        __m256i scale[kR];
        for (int i = 0; i < kR; ++i) {
          u[i] = _mm256_and_si256(half == 0 ? q4[i] : shr16(q4[i], 4), m4);
          if constexpr (kHasQh) {
            const __m256i bit = _mm256_and_si256(shr16(qh[i], s), one);
            u[i] = _mm256_or_si256(u[i], _mm256_slli_epi16(bit, 4));
          }
          scale[i] = _mm256_set1_epi16(static_cast<short>(sc[i][s]));
        }
        for (int j = 0; j < kT; ++j) {
          const __m256i yv = load256(x[j][b].qs + 32 * s);
          for (int i = 0; i < kR; ++i) isum[i][j] = dot_scaled(isum[i][j], u[i], yv, scale[i]);
        }
      }
    }
    for (int j = 0; j < kT; ++j) {
      const __m256i bs = load256(x[j][b].bsums);
      const float yd = x[j][b].d;
      for (int i = 0; i < kR; ++i) {
        const __m256i msum = _mm256_madd_epi16(bs, mins_pairs(mn[i]));
        const float d = fp16(w[i][b].d) * yd;
        const float dmin = fp16(w[i][b].dmin) * yd;
        acc[i][j] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum[i][j]), acc[i][j]);
        acc[i][j] = _mm256_fnmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(msum), acc[i][j]);
      }
    }
  }
  for (int i = 0; i < kR; ++i) {
    for (int j = 0; j < kT; ++j) a.y[(t + j) * a.ldy + r + i] = hsum(acc[i][j]);
  }
}

template <int kR, int kT>
void tile_q6_k(const GemmArgs& a, int64_t r, int64_t t) {
  const int64_t nb = a.n_cols / kQK_K;
  const BlockQ6_K* w[kR];
  for (int i = 0; i < kR; ++i) {
    w[i] = reinterpret_cast<const BlockQ6_K*>(a.w + static_cast<size_t>(r + i) * a.w_row_bytes);
  }
  const BlockQ8_K* x[kT];
  for (int j = 0; j < kT; ++j) {
    x[j] = reinterpret_cast<const BlockQ8_K*>(a.act + static_cast<size_t>(t + j) * a.act_row_bytes);
  }
  __m256 acc[kR][kT];
  for (int i = 0; i < kR; ++i) {
    for (int j = 0; j < kT; ++j) acc[i][j] = _mm256_setzero_ps();
  }
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i m30 = _mm256_set1_epi8(0x30);
  const uintptr_t pf = prefetch_base<kR>(a, w[0]);
  for (int64_t b = 0; b < nb; ++b) {
    if constexpr (kT == 1) prefetch_step<kR * sizeof(BlockQ6_K)>(pf, b);
    __m256i sc16[kR];
    for (int i = 0; i < kR; ++i) sc16[i] = _mm256_cvtepi8_epi16(load128(w[i][b].scales));
    __m256i isum[kR][kT];
    for (int i = 0; i < kR; ++i) {
      for (int j = 0; j < kT; ++j) isum[i][j] = _mm256_setzero_si256();
    }
    for (int h = 0; h < 2; ++h) {
      __m256i ql0[kR], ql1[kR], qh[kR];
      for (int i = 0; i < kR; ++i) {
        ql0[i] = load256(w[i][b].ql + 64 * h);
        ql1[i] = load256(w[i][b].ql + 64 * h + 32);
        qh[i] = load256(w[i][b].qh + 32 * h);
      }
      for (int c = 0; c < 4; ++c) {
        const int chunk = 4 * h + c;  // elements 32*chunk .. 32*chunk+31
        __m256i u[kR];
        __m256i scale[kR];
        for (int i = 0; i < kR; ++i) {
          __m256i lo, hi;
          switch (c) {
            case 0:
              lo = _mm256_and_si256(ql0[i], m4);
              hi = _mm256_and_si256(_mm256_slli_epi16(qh[i], 4), m30);
              break;
            case 1:
              lo = _mm256_and_si256(ql1[i], m4);
              hi = _mm256_and_si256(_mm256_slli_epi16(qh[i], 2), m30);
              break;
            case 2:
              lo = _mm256_and_si256(_mm256_srli_epi16(ql0[i], 4), m4);
              hi = _mm256_and_si256(qh[i], m30);
              break;
            default:
              lo = _mm256_and_si256(_mm256_srli_epi16(ql1[i], 4), m4);
              hi = _mm256_and_si256(_mm256_srli_epi16(qh[i], 2), m30);
              break;
          }
          u[i] = _mm256_or_si256(lo, hi);
          const int16_t s0 = w[i][b].scales[2 * chunk], s1 = w[i][b].scales[2 * chunk + 1];
          scale[i] = _mm256_set_m128i(_mm_set1_epi16(s1), _mm_set1_epi16(s0));
        }
        for (int j = 0; j < kT; ++j) {
          const __m256i yv = load256(x[j][b].qs + 32 * chunk);
          for (int i = 0; i < kR; ++i) isum[i][j] = dot_scaled(isum[i][j], u[i], yv, scale[i]);
        }
      }
    }
    for (int j = 0; j < kT; ++j) {
      const __m256i bs = load256(x[j][b].bsums);
      const float yd = x[j][b].d;
      for (int i = 0; i < kR; ++i) {
        // The stored values are a + 32: subtract 32 * sum_k scale_k * bsums_k.
        const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16[i]), 5);
        const float d = fp16(w[i][b].d) * yd;
        acc[i][j] = _mm256_fmadd_ps(_mm256_set1_ps(d),
                                    _mm256_cvtepi32_ps(_mm256_sub_epi32(isum[i][j], corr)),
                                    acc[i][j]);
      }
    }
  }
  for (int i = 0; i < kR; ++i) {
    for (int j = 0; j < kT; ++j) a.y[(t + j) * a.ldy + r + i] = hsum(acc[i][j]);
  }
}

#if ZTSLM_X86_AVX512
// ---- AVX-512: Q4_K and Q6_K against Q8_K, 64 elements per 512-bit register ----
//
// Each step takes 64 contiguous activations (two 32-element sub-blocks) and builds the matching
// 64 unsigned weights in one register, so the activation side is a plain load. Products go
// through VPMADDUBSW (pairs, exact in int16 for u <= 63) and VPDPWSSD with the sub-block scale,
// so isum lanes stay exact int32. Per super-block the two 256-bit halves of isum are added
// (exact) and the float update is the one of the 256-bit tile.

// 16 int16 lanes of `v` (a 256-bit vector) picked by idx into a 512-bit vector of words.
inline __m512i pick_words(const __m512i& idx, __m256i v) {
  return _mm512_permutexvar_epi16(idx, _mm512_castsi256_si512(v));
}

// Word index vectors: words 0-15 = k0, words 16-31 = k1.
inline __m512i words2(int k0, int k1) {
  return _mm512_inserti64x4(_mm512_set1_epi16(static_cast<short>(k0)),
                            _mm256_set1_epi16(static_cast<short>(k1)), 1);
}
// Words 0-7 = k, 8-15 = k+1, 16-23 = k+2, 24-31 = k+3.
inline __m512i words4(int k) {
  const __m256i lo = _mm256_set_m128i(_mm_set1_epi16(static_cast<short>(k + 1)),
                                      _mm_set1_epi16(static_cast<short>(k)));
  const __m256i hi = _mm256_set_m128i(_mm_set1_epi16(static_cast<short>(k + 3)),
                                      _mm_set1_epi16(static_cast<short>(k + 2)));
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

inline __m256i fold_halves(__m512i v) {
  return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

template <int kR, int kT>
void tile_q4_k_zmm(const GemmArgs& a, int64_t r, int64_t t) {
  const int64_t nb = a.n_cols / kQK_K;
  const BlockQ4_K* w[kR];
  for (int i = 0; i < kR; ++i) {
    w[i] = reinterpret_cast<const BlockQ4_K*>(a.w + static_cast<size_t>(r + i) * a.w_row_bytes);
  }
  const BlockQ8_K* x[kT];
  for (int j = 0; j < kT; ++j) {
    x[j] = reinterpret_cast<const BlockQ8_K*>(a.act + static_cast<size_t>(t + j) * a.act_row_bytes);
  }
  __m256 acc[kR][kT];
  for (int i = 0; i < kR; ++i) {
    for (int j = 0; j < kT; ++j) acc[i][j] = _mm256_setzero_ps();
  }
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const uintptr_t pf = prefetch_base<kR>(a, w[0]);
  for (int64_t b = 0; b < nb; ++b) {
    if constexpr (kT == 1) prefetch_step<kR * sizeof(BlockQ4_K)>(pf, b);
    __m256i sc16[kR];
    uint8_t mn[kR][8];
    for (int i = 0; i < kR; ++i) {
      uint8_t sc[8];
      k_scales(w[i][b].scales, sc, mn[i]);
      uint64_t v = 0;
      std::memcpy(&v, sc, 8);
      sc16[i] = _mm256_castsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(v))));
    }
    __m512i isum[kR][kT];
    for (int i = 0; i < kR; ++i) {
      for (int j = 0; j < kT; ++j) isum[i][j] = _mm512_setzero_si512();
    }
    for (int c = 0; c < 4; ++c) {
      // Elements 64c..64c+63: sub-block 2c (low nibbles of qs chunk c), then 2c+1 (high).
      __m512i u[kR], scale[kR];
      const __m512i idx = words2(2 * c, 2 * c + 1);
      for (int i = 0; i < kR; ++i) {
        const __m512i q = _mm512_broadcast_i64x4(load256(w[i][b].qs + 32 * c));
        u[i] = _mm512_and_si512(_mm512_mask_srli_epi16(q, static_cast<__mmask32>(0xFFFF0000u), q, 4), m4);
        scale[i] = pick_words(idx, sc16[i]);
      }
      for (int j = 0; j < kT; ++j) {
        const __m512i yv = _mm512_loadu_si512(x[j][b].qs + 64 * c);
        for (int i = 0; i < kR; ++i) {
          isum[i][j] = _mm512_dpwssd_epi32(isum[i][j], _mm512_maddubs_epi16(u[i], yv), scale[i]);
        }
      }
    }
    for (int j = 0; j < kT; ++j) {
      const __m256i bs = load256(x[j][b].bsums);
      const float yd = x[j][b].d;
      for (int i = 0; i < kR; ++i) {
        const __m256i msum = _mm256_madd_epi16(bs, mins_pairs(mn[i]));
        const float d = fp16(w[i][b].d) * yd;
        const float dmin = fp16(w[i][b].dmin) * yd;
        acc[i][j] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(fold_halves(isum[i][j])),
                                    acc[i][j]);
        acc[i][j] = _mm256_fnmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(msum), acc[i][j]);
      }
    }
  }
  for (int i = 0; i < kR; ++i) {
    for (int j = 0; j < kT; ++j) a.y[(t + j) * a.ldy + r + i] = hsum(acc[i][j]);
  }
}

template <int kR, int kT>
void tile_q6_k_zmm(const GemmArgs& a, int64_t r, int64_t t) {
  const int64_t nb = a.n_cols / kQK_K;
  const BlockQ6_K* w[kR];
  for (int i = 0; i < kR; ++i) {
    w[i] = reinterpret_cast<const BlockQ6_K*>(a.w + static_cast<size_t>(r + i) * a.w_row_bytes);
  }
  const BlockQ8_K* x[kT];
  for (int j = 0; j < kT; ++j) {
    x[j] = reinterpret_cast<const BlockQ8_K*>(a.act + static_cast<size_t>(t + j) * a.act_row_bytes);
  }
  __m256 acc[kR][kT];
  for (int i = 0; i < kR; ++i) {
    for (int j = 0; j < kT; ++j) acc[i][j] = _mm256_setzero_ps();
  }
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i m30 = _mm512_set1_epi8(0x30);
  // Shift counts (16-bit lanes) that bring the qh bits of chunks 0|1 and 2|3 to bits 4-5.
  const __m512i shl01 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
  const __m512i shr23 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
  const uintptr_t pf = prefetch_base<kR>(a, w[0]);
  for (int64_t b = 0; b < nb; ++b) {
    if constexpr (kT == 1) prefetch_step<kR * sizeof(BlockQ6_K)>(pf, b);
    __m256i sc16[kR];
    for (int i = 0; i < kR; ++i) sc16[i] = _mm256_cvtepi8_epi16(load128(w[i][b].scales));
    __m512i isum[kR][kT];
    for (int i = 0; i < kR; ++i) {
      for (int j = 0; j < kT; ++j) isum[i][j] = _mm512_setzero_si512();
    }
    for (int h = 0; h < 2; ++h) {
      // Elements 128h..128h+63 (chunks 0, 1) and 128h+64..128h+127 (chunks 2, 3).
      __m512i u01[kR], u23[kR], s01[kR], s23[kR];
      const __m512i idx01 = words4(8 * h), idx23 = words4(8 * h + 4);
      for (int i = 0; i < kR; ++i) {
        const __m512i ql = _mm512_loadu_si512(w[i][b].ql + 64 * h);
        const __m512i qh = _mm512_broadcast_i64x4(load256(w[i][b].qh + 32 * h));
        u01[i] = _mm512_or_si512(_mm512_and_si512(ql, m4),
                                 _mm512_and_si512(_mm512_sllv_epi16(qh, shl01), m30));
        u23[i] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                 _mm512_and_si512(_mm512_srlv_epi16(qh, shr23), m30));
        s01[i] = pick_words(idx01, sc16[i]);
        s23[i] = pick_words(idx23, sc16[i]);
      }
      for (int j = 0; j < kT; ++j) {
        const __m512i y01 = _mm512_loadu_si512(x[j][b].qs + 128 * h);
        const __m512i y23 = _mm512_loadu_si512(x[j][b].qs + 128 * h + 64);
        for (int i = 0; i < kR; ++i) {
          isum[i][j] = _mm512_dpwssd_epi32(isum[i][j], _mm512_maddubs_epi16(u01[i], y01), s01[i]);
          isum[i][j] = _mm512_dpwssd_epi32(isum[i][j], _mm512_maddubs_epi16(u23[i], y23), s23[i]);
        }
      }
    }
    for (int j = 0; j < kT; ++j) {
      const __m256i bs = load256(x[j][b].bsums);
      const float yd = x[j][b].d;
      for (int i = 0; i < kR; ++i) {
        // The stored values are a + 32: subtract 32 * sum_k scale_k * bsums_k.
        const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16[i]), 5);
        const float d = fp16(w[i][b].d) * yd;
        acc[i][j] = _mm256_fmadd_ps(
            _mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_sub_epi32(fold_halves(isum[i][j]), corr)),
            acc[i][j]);
      }
    }
  }
  for (int i = 0; i < kR; ++i) {
    for (int j = 0; j < kT; ++j) a.y[(t + j) * a.ldy + r + i] = hsum(acc[i][j]);
  }
}
#endif  // ZTSLM_X86_AVX512

// ---- F32 / F16 / BF16 ----

#if ZTSLM_X86_AVX512
using VecF = __m512;
constexpr int kVecF = 16;
inline VecF vzero() { return _mm512_setzero_ps(); }
inline VecF vfma(VecF a, VecF b, VecF c) { return _mm512_fmadd_ps(a, b, c); }
inline float vhsum(VecF v) {
  return hsum(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
}
inline VecF vload_f32(const float* p) { return _mm512_loadu_ps(p); }
inline VecF vload_f16(const uint16_t* p) { return _mm512_cvtph_ps(load256(p)); }
inline VecF vload_bf16(const uint16_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(load256(p)), 16));
}
#else
using VecF = __m256;
constexpr int kVecF = 8;
inline VecF vzero() { return _mm256_setzero_ps(); }
inline VecF vfma(VecF a, VecF b, VecF c) { return _mm256_fmadd_ps(a, b, c); }
inline float vhsum(VecF v) { return hsum(v); }
inline VecF vload_f32(const float* p) { return _mm256_loadu_ps(p); }
inline VecF vload_f16(const uint16_t* p) { return _mm256_cvtph_ps(load128(p)); }
inline VecF vload_bf16(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load128(p)), 16));
}
#endif

struct F32Load {
  using Elem = float;
  static VecF load(const float* p) { return vload_f32(p); }
  static float scalar(float v) { return v; }
};
struct F16Load {
  using Elem = uint16_t;
  static VecF load(const uint16_t* p) { return vload_f16(p); }
  static float scalar(uint16_t v) { return f32_from_f16(v); }
};
struct BF16Load {
  using Elem = uint16_t;
  static VecF load(const uint16_t* p) { return vload_bf16(p); }
  static float scalar(uint16_t v) { return f32_from_bf16(v); }
};

template <typename L, int kR, int kT>
void tile_float(const GemmArgs& a, int64_t r, int64_t t) {
  using E = typename L::Elem;
  const E* w[kR];
  for (int i = 0; i < kR; ++i) {
    w[i] = reinterpret_cast<const E*>(a.w + static_cast<size_t>(r + i) * a.w_row_bytes);
  }
  const E* x[kT];
  for (int j = 0; j < kT; ++j) {
    x[j] = reinterpret_cast<const E*>(a.act + static_cast<size_t>(t + j) * a.act_row_bytes);
  }
  VecF acc[kR][kT];
  for (int i = 0; i < kR; ++i) {
    for (int j = 0; j < kT; ++j) acc[i][j] = vzero();
  }
  const int64_t n = a.n_cols;
  const int64_t nv = n - n % kVecF;
  const uintptr_t pf = prefetch_base<kR>(a, w[0]);
  for (int64_t k = 0; k < nv; k += kVecF) {
    if constexpr (kT == 1) prefetch_step<kR * kVecF * sizeof(E)>(pf, k / kVecF);
    VecF xv[kT];
    for (int j = 0; j < kT; ++j) xv[j] = L::load(x[j] + k);
    for (int i = 0; i < kR; ++i) {
      const VecF wv = L::load(w[i] + k);
      for (int j = 0; j < kT; ++j) acc[i][j] = vfma(wv, xv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < kR; ++i) {
    for (int j = 0; j < kT; ++j) {
      float s = vhsum(acc[i][j]);
      for (int64_t k = nv; k < n; ++k) s += L::scalar(w[i][k]) * L::scalar(x[j][k]);
      a.y[(t + j) * a.ldy + r + i] = s;
    }
  }
}

// ---- tiling driver ----

template <template <int, int> class K, int kR, int kT>
void run_tiles(const GemmArgs& a) {
  int64_t r = a.r0;
  for (; r + kR <= a.r1; r += kR) {
    int64_t t = 0;
    for (; t + kT <= a.n_tokens; t += kT) K<kR, kT>::run(a, r, t);
    for (; t < a.n_tokens; ++t) K<kR, 1>::run(a, r, t);
  }
  for (; r < a.r1; ++r) {
    int64_t t = 0;
    for (; t + kT <= a.n_tokens; t += kT) K<1, kT>::run(a, r, t);
    for (; t < a.n_tokens; ++t) K<1, 1>::run(a, r, t);
  }
}

template <typename Tr>
struct LegacyK {
  template <int kR, int kT>
  struct K {
    static void run(const GemmArgs& a, int64_t r, int64_t t) { tile_legacy<Tr, kR, kT>(a, r, t); }
  };
};
#if ZTSLM_X86_AVX512
template <typename Tr>
struct LegacyZmmK {
  template <int kR, int kT>
  struct K {
    static void run(const GemmArgs& a, int64_t r, int64_t t) {
      tile_legacy_zmm<Tr, kR, kT>(a, r, t);
    }
  };
};
#endif
#if ZTSLM_X86_AVX512
template <int kR, int kT>
struct Q4KZmm {
  static void run(const GemmArgs& a, int64_t r, int64_t t) { tile_q4_k_zmm<kR, kT>(a, r, t); }
};
template <int kR, int kT>
struct Q6KZmm {
  static void run(const GemmArgs& a, int64_t r, int64_t t) { tile_q6_k_zmm<kR, kT>(a, r, t); }
};
#endif
template <int kR, int kT>
struct Q4KK {
  static void run(const GemmArgs& a, int64_t r, int64_t t) {
    tile_qk45<false, BlockQ4_K, kR, kT>(a, r, t);
  }
};
template <int kR, int kT>
struct Q5KK {
  static void run(const GemmArgs& a, int64_t r, int64_t t) {
    tile_qk45<true, BlockQ5_K, kR, kT>(a, r, t);
  }
};
template <int kR, int kT>
struct Q6KK {
  static void run(const GemmArgs& a, int64_t r, int64_t t) { tile_q6_k<kR, kT>(a, r, t); }
};
template <typename L>
struct FloatK {
  template <int kR, int kT>
  struct K {
    static void run(const GemmArgs& a, int64_t r, int64_t t) { tile_float<L, kR, kT>(a, r, t); }
  };
};

// Tile shapes (rows x tokens). Decode (one token) uses kGemvRows rows per step.
#if ZTSLM_X86_AVX512
constexpr int kLegacyR = 4, kLegacyT = 4;
constexpr int kKR = 2, kKT = 4;
// The 512-bit K-quant tiles (measured on Zen 5 at 64 tokens: Q4_K 4x4 +10% over 2x4; Q6_K
// needs four weight registers per row, so 2x4 keeps it within the 32 vector registers).
constexpr int kQ4KZmmR = 4, kQ4KZmmT = 4;
constexpr int kQ6KZmmR = 2, kQ6KZmmT = 4;
constexpr int kFloatR = 4, kFloatT = 4;
#else
constexpr int kLegacyR = 4, kLegacyT = 2;
constexpr int kKR = 2, kKT = 2;
constexpr int kFloatR = 3, kFloatT = 3;
#endif
constexpr int kGemvRows = 4;

template <template <int, int> class K, int kR, int kT>
void run_kernel(const GemmArgs& a) {
  if (a.n_tokens == 1) {
    run_tiles<K, kGemvRows, 1>(a);
  } else {
    run_tiles<K, kR, kT>(a);
  }
}

bool gemm_impl(TensorType type, const GemmArgs& a) {
  switch (type) {
#if ZTSLM_X86_AVX512
    case TensorType::kQ4_0: run_kernel<LegacyZmmK<Q4_0Zmm>::K, kLegacyR, kLegacyT>(a); return true;
    case TensorType::kQ5_0: run_kernel<LegacyZmmK<Q5_0Zmm>::K, kLegacyR, kLegacyT>(a); return true;
    case TensorType::kQ8_0: run_kernel<LegacyZmmK<Q8_0Zmm>::K, kLegacyR, kLegacyT>(a); return true;
#else
    case TensorType::kQ4_0: run_kernel<LegacyK<Q4_0Traits>::K, kLegacyR, kLegacyT>(a); return true;
    case TensorType::kQ5_0: run_kernel<LegacyK<Q5_0Traits>::K, kLegacyR, kLegacyT>(a); return true;
    case TensorType::kQ8_0: run_kernel<LegacyK<Q8_0Traits>::K, kLegacyR, kLegacyT>(a); return true;
#endif
    case TensorType::kQ4_1: run_kernel<LegacyK<Q4_1Traits>::K, kLegacyR, kLegacyT>(a); return true;
    case TensorType::kQ5_1: run_kernel<LegacyK<Q5_1Traits>::K, kLegacyR, kLegacyT>(a); return true;
#if ZTSLM_X86_AVX512
    case TensorType::kQ4_K: run_kernel<Q4KZmm, kQ4KZmmR, kQ4KZmmT>(a); return true;
    case TensorType::kQ6_K: run_kernel<Q6KZmm, kQ6KZmmR, kQ6KZmmT>(a); return true;
#else
    case TensorType::kQ4_K: run_kernel<Q4KK, kKR, kKT>(a); return true;
    case TensorType::kQ6_K: run_kernel<Q6KK, kKR, kKT>(a); return true;
#endif
    case TensorType::kQ5_K: run_kernel<Q5KK, kKR, kKT>(a); return true;
    case TensorType::kF32: run_kernel<FloatK<F32Load>::K, kFloatR, kFloatT>(a); return true;
    case TensorType::kF16: run_kernel<FloatK<F16Load>::K, kFloatR, kFloatT>(a); return true;
    case TensorType::kBF16: run_kernel<FloatK<BF16Load>::K, kFloatR, kFloatT>(a); return true;
    default: return false;
  }
}

// ---- activation conversion (bit-identical to engine/quant) ----

inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// Rounds x * mul to nearest even integers (exactly like nearbyint of the scalar product) and
// packs 32 of them to int8 in element order.
inline __m256i quantize32(const __m256 v[4], __m256 mul, __m256i* sums) {
  __m256i q[4];
  for (int k = 0; k < 4; ++k) {
    q[k] = _mm256_cvtps_epi32(
        _mm256_round_ps(_mm256_mul_ps(v[k], mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  if (sums != nullptr) {
    *sums = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
  }
  const __m256i p01 = _mm256_packs_epi32(q[0], q[1]);
  const __m256i p23 = _mm256_packs_epi32(q[2], q[3]);
  const __m256i p = _mm256_packs_epi16(p01, p23);
  // packs interleave the 128-bit lanes: restore element order.
  return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

template <bool kQ8_1>
void convert_q8_legacy(const float* x, std::byte* out, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    __m256 v[4];
    __m256 mx = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + 8 * k);
      mx = _mm256_max_ps(mx, abs_ps(v[k]));
    }
    const float amax = hmax(mx);
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    __m256i sums;
    const __m256i q = quantize32(v, _mm256_set1_ps(id), kQ8_1 ? &sums : nullptr);
    if constexpr (kQ8_1) {
      auto* y = reinterpret_cast<BlockQ8_1*>(out) + b;
      y->d = f16_from_f32(d);
      y->s = f16_from_f32(d * static_cast<float>(hsum_i32(sums)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y->qs), q);
    } else {
      auto* y = reinterpret_cast<BlockQ8_0*>(out) + b;
      y->d = f16_from_f32(d);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y->qs), q);
    }
  }
}

void convert_q8_k(const float* x, std::byte* out, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    auto* y = reinterpret_cast<BlockQ8_K*>(out) + b;
    __m256 mx = _mm256_setzero_ps();
    for (int k = 0; k < kQK_K; k += 8) mx = _mm256_max_ps(mx, abs_ps(_mm256_loadu_ps(x + k)));
    const float amax = hmax(mx);
    if (amax == 0.0f) {
      std::memset(y, 0, sizeof(BlockQ8_K));
      continue;
    }
    int first = 0;  // the first element of largest magnitude keeps its sign (§3.3)
    while (std::fabs(x[first]) != amax) ++first;
    const float iscale = -127.0f / x[first];
    const __m256 mul = _mm256_set1_ps(iscale);
    for (int c = 0; c < kQK_K / 32; ++c) {
      __m256 v[4];
      for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(x + 32 * c + 8 * k);
      __m256i q = quantize32(v, mul, nullptr);
      q = _mm256_min_epi8(q, _mm256_set1_epi8(127));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y->qs + 32 * c), q);
      // bsums of the two 16-element groups of this chunk.
      const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
      const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
      y->bsums[2 * c] = static_cast<int16_t>(hsum_i32_128(_mm256_castsi256_si128(s32)));
      y->bsums[2 * c + 1] = static_cast<int16_t>(hsum_i32_128(_mm256_extracti128_si256(s32, 1)));
    }
    y->d = 1.0f / iscale;
  }
}

void convert_f16(const float* x, std::byte* out, int64_t n) {
  auto* y = reinterpret_cast<uint16_t*>(out);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), h);
    // F16C keeps NaN payloads; the reference maps every NaN to 0x7E00 | sign.
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0) {
      for (int64_t k = i; k < i + 8; ++k) y[k] = f16_from_f32(x[k]);
    }
  }
  for (; i < n; ++i) y[i] = f16_from_f32(x[i]);
}

void convert_bf16(const float* x, std::byte* out, int64_t n) {
  auto* y = reinterpret_cast<uint16_t*>(out);
  int64_t i = 0;
  const __m256i bias = _mm256_set1_epi32(0x7FFF);
  const __m256i one = _mm256_set1_epi32(1);
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256i bits = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), one);
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(bits, bias), lsb), 16);
    const __m256i nan = _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40));
    r = _mm256_blendv_epi8(r, nan, _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
    const __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), packed);
  }
  for (; i < n; ++i) y[i] = bf16_from_f32(x[i]);
}

bool convert_impl(TensorType act_type, const float* x, int64_t n, std::byte* out) {
  switch (act_type) {
    case TensorType::kQ8_0: convert_q8_legacy<false>(x, out, n); return true;
    case TensorType::kQ8_1: convert_q8_legacy<true>(x, out, n); return true;
    case TensorType::kQ8_K: convert_q8_k(x, out, n); return true;
    case TensorType::kF16: convert_f16(x, out, n); return true;
    case TensorType::kBF16: convert_bf16(x, out, n); return true;
    default: return false;  // F32: nothing to convert
  }
}

// ---- small F32 vector kernels ----

float dot_f32_impl(const float* a, const float* b, int64_t n) {
  VecF acc0 = vzero(), acc1 = vzero();
  int64_t i = 0;
  for (; i + 2 * kVecF <= n; i += 2 * kVecF) {
    acc0 = vfma(vload_f32(a + i), vload_f32(b + i), acc0);
    acc1 = vfma(vload_f32(a + i + kVecF), vload_f32(b + i + kVecF), acc1);
  }
  for (; i + kVecF <= n; i += kVecF) acc0 = vfma(vload_f32(a + i), vload_f32(b + i), acc0);
  float s = vhsum(acc0) + vhsum(acc1);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy_f32_impl(float alpha, const float* x, float* y, int64_t n) {
  int64_t i = 0;
  const __m256 av = _mm256_set1_ps(alpha);
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += alpha * x[i];
}

// ---- attention over an F32 cache ----

// Sums of 8 vectors of 8 lanes: lane l of the result is the sum of v[l].
inline __m256 sum8x8(const __m256 v[8]) {
  const __m256 h01 = _mm256_hadd_ps(v[0], v[1]), h23 = _mm256_hadd_ps(v[2], v[3]);
  const __m256 h45 = _mm256_hadd_ps(v[4], v[5]), h67 = _mm256_hadd_ps(v[6], v[7]);
  // [v0 v1 v2 v3 | same from the upper 128 bits], and the same for v4..v7.
  const __m256 a = _mm256_hadd_ps(h01, h23), b = _mm256_hadd_ps(h45, h67);
  return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

inline __m256 fold8(VecF v) {
#if ZTSLM_X86_AVX512
  return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
#else
  return v;
#endif
}

// The query stays in registers (kC vectors); 8 positions at a time, reduced together.
template <int kC>
void attn_scores_tile(const float* q, const float* k, int64_t n, float* s) {
  constexpr int64_t d = kC * kVecF;
  VecF qv[kC];
  for (int c = 0; c < kC; ++c) qv[c] = vload_f32(q + c * kVecF);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 part[8];
    for (int u = 0; u < 8; ++u) {
      const float* kr = k + (j + u) * d;
      VecF acc = vzero();
      for (int c = 0; c < kC; ++c) acc = vfma(qv[c], vload_f32(kr + c * kVecF), acc);
      part[u] = fold8(acc);
    }
    _mm256_storeu_ps(s + j, sum8x8(part));
  }
  for (; j < n; ++j) {
    const float* kr = k + j * d;
    VecF acc = vzero();
    for (int c = 0; c < kC; ++c) acc = vfma(qv[c], vload_f32(kr + c * kVecF), acc);
    s[j] = hsum(fold8(acc));
  }
}

bool attn_scores_impl(const float* q, const float* k, int64_t n, int64_t d, float* s) {
  switch (d) {
    case 2 * kVecF: attn_scores_tile<2>(q, k, n, s); return true;
    case 4 * kVecF: attn_scores_tile<4>(q, k, n, s); return true;
    case 8 * kVecF: attn_scores_tile<8>(q, k, n, s); return true;
    case 16 * kVecF: attn_scores_tile<16>(q, k, n, s); return true;
    default: return false;
  }
}

// The output row stays in registers; one fma per term, in position order.
template <int kC>
void attn_values_tile(const float* p, const float* v, int64_t n, float* out) {
  constexpr int64_t d = kC * kVecF;
  VecF acc[kC];
  for (int c = 0; c < kC; ++c) acc[c] = vzero();
  for (int64_t j = 0; j < n; ++j) {
#if ZTSLM_X86_AVX512
    const VecF pj = _mm512_set1_ps(p[j]);
#else
    const VecF pj = _mm256_set1_ps(p[j]);
#endif
    const float* vr = v + j * d;
    for (int c = 0; c < kC; ++c) acc[c] = vfma(pj, vload_f32(vr + c * kVecF), acc[c]);
  }
  for (int c = 0; c < kC; ++c) {
#if ZTSLM_X86_AVX512
    _mm512_storeu_ps(out + c * kVecF, acc[c]);
#else
    _mm256_storeu_ps(out + c * kVecF, acc[c]);
#endif
  }
}

bool attn_values_impl(const float* p, const float* v, int64_t n, int64_t d, float* out) {
  switch (d) {
    case 2 * kVecF: attn_values_tile<2>(p, v, n, out); return true;
    case 4 * kVecF: attn_values_tile<4>(p, v, n, out); return true;
    case 8 * kVecF: attn_values_tile<8>(p, v, n, out); return true;
    case 16 * kVecF: attn_values_tile<16>(p, v, n, out); return true;
    default: return false;
  }
}

}  // namespace
}  // namespace ztslm::engine::internal
