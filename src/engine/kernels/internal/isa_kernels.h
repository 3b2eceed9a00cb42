// Entry points of the ISA-specific kernels (engine/kernels/x86/*.cc, each compiled with its own
// -m flags). Only matmul.cc calls them, after best_isa() said the CPU and OS support the ISA.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gguf/types.h"

namespace ztslm::engine::internal {

// One call of Matrix::multiply: y[t * ldy + r] = dot(W row r, act row t), r in [r0, r1).
struct GemmArgs {
  const std::byte* w;      // [n_rows] rows of w_row_bytes
  size_t w_row_bytes;
  int64_t n_cols;
  const std::byte* act;    // [n_tokens] rows of act_row_bytes
  size_t act_row_bytes;
  int64_t n_tokens;
  int64_t r0, r1;
  float* y;
  int64_t ldy;
};

// Each returns false when it has no kernel for the type (the caller falls back).
bool gemm_avx2(gguf::TensorType weight_type, const GemmArgs& args);
bool gemm_avx512(gguf::TensorType weight_type, const GemmArgs& args);
bool convert_row_avx2(gguf::TensorType act_type, const float* x, int64_t n, std::byte* out);
bool convert_row_avx512(gguf::TensorType act_type, const float* x, int64_t n, std::byte* out);

float dot_f32_avx2(const float* a, const float* b, int64_t n);
float dot_f32_avx512(const float* a, const float* b, int64_t n);
void axpy_f32_avx2(float a, const float* x, float* y, int64_t n);
void axpy_f32_avx512(float a, const float* x, float* y, int64_t n);
// Each returns false for a head size it has no kernel for (the caller falls back).
bool attn_scores_f32_avx2(const float* q, const float* k, int64_t n, int64_t d, float* s);
bool attn_scores_f32_avx512(const float* q, const float* k, int64_t n, int64_t d, float* s);
bool attn_values_f32_avx2(const float* p, const float* v, int64_t n, int64_t d, float* out);
bool attn_values_f32_avx512(const float* p, const float* v, int64_t n, int64_t d, float* out);

}  // namespace ztslm::engine::internal
