// Scalar reference dot products (spec/ENGINE.md §3.4, the L1 generic order). Each takes `n`
// elements (a multiple of the weight type's block size), a weight row `w` and an activation row
// `a` already converted to the weight type's vec_dot_type. The SIMD kernels are tested against
// these.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gguf/types.h"

namespace ztslm::engine::ref {

float dot_f32_f32(int64_t n, const std::byte* w, const std::byte* a);
float dot_f16_f16(int64_t n, const std::byte* w, const std::byte* a);
float dot_bf16_bf16(int64_t n, const std::byte* w, const std::byte* a);
float dot_q4_0_q8_0(int64_t n, const std::byte* w, const std::byte* a);
float dot_q4_1_q8_1(int64_t n, const std::byte* w, const std::byte* a);
float dot_q5_0_q8_0(int64_t n, const std::byte* w, const std::byte* a);
float dot_q5_1_q8_1(int64_t n, const std::byte* w, const std::byte* a);
float dot_q8_0_q8_0(int64_t n, const std::byte* w, const std::byte* a);
float dot_q4_k_q8_k(int64_t n, const std::byte* w, const std::byte* a);
float dot_q5_k_q8_k(int64_t n, const std::byte* w, const std::byte* a);
float dot_q6_k_q8_k(int64_t n, const std::byte* w, const std::byte* a);

using DotFn = float (*)(int64_t n, const std::byte* w, const std::byte* a);
// The reference dot product of an implemented weight type; nullptr otherwise.
DotFn dot_fn(gguf::TensorType weight_type);

// Converts rows of F32 activations to `act_type` (scalar quantisers of engine/quant).
void convert_row(gguf::TensorType act_type, const float* x, int64_t n, std::byte* out);

}  // namespace ztslm::engine::ref
