// Tensor block formats: dequantisation, weight quantisers (for the GGUF writer and synthetic
// models) and activation quantisers (spec/ENGINE.md §2, §3.2, §3.3). Scalar reference code;
// the SIMD activation quantisers in engine/kernels/x86 must match it bit for bit.
//
// All row functions take `n` elements, which must be a multiple of the type's block size
// (callers validate it: Matrix::create, the GGUF reader); they do not allocate.
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/quant/blocks.h"
#include "gguf/types.h"

namespace ztslm::engine {

// True for the weight types the engine can dequantise and multiply: F32, F16, BF16, Q4_0,
// Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K. (Q8_1 and Q8_K are activation formats only.)
bool is_type_implemented(gguf::TensorType type);

// Elements and bytes per block; 0 for a type outside §1.3's numeric types.
int64_t block_elems(gguf::TensorType type);
size_t block_bytes(gguf::TensorType type);
// Bytes of `n` elements (n a multiple of block_elems(type)).
size_t row_bytes(gguf::TensorType type, int64_t n);

// Decodes `n` elements of `type` at `src` into `dst` (§2). Supports the implemented weight
// types plus Q8_1 and Q8_K; CHECK-fails for any other type (a caller bug).
void dequantize_row(gguf::TensorType type, const std::byte* src, float* dst, int64_t n);

// True when quantize_row supports `type` (every implemented weight type).
bool can_quantize(gguf::TensorType type);
// Encodes `n` F32 values as `type` into `dst` (row_bytes(type, n) bytes). Q8_0, Q4_0 and Q5_0
// follow llama-quantize's reference quantisers (§2.3); Q4_1/Q5_1 use the block min/max; the
// K-quants use a simple valid scheme (not llama-quantize's search) with a small error.
void quantize_row(gguf::TensorType type, const float* src, std::byte* dst, int64_t n);

// Activation quantisers, x86 rule (§3.2): multiplier 127/amax, round half to even.
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n);
void quantize_row_q8_1(const float* x, BlockQ8_1* y, int64_t n);
// Generic (L1) Q8_0 rule: multiplier 1/d, round half away from zero. Used for Q8_0 weights.
void quantize_row_q8_0_generic(const float* x, BlockQ8_0* y, int64_t n);
// Q8_K (§3.3): iscale = -127/max, round half to even, bsums; d stored as F32.
void quantize_row_q8_K(const float* x, BlockQ8_K* y, int64_t n);

}  // namespace ztslm::engine
