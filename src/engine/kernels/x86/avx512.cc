// AVX-512 F/BW/VL/DQ + VNNI kernels (this file alone is compiled with those -m flags; matmul.cc
// calls it only when best_isa() reports kAvx512). Int8 dots use VPDPBUSD (u8 x s8, with the
// weights made unsigned by an offset) and VPDPWSSD for the K-quant scales; F32/F16/BF16 use
// 16-lane vectors.
#define ZTSLM_X86_AVX512 1
// GCC 12's AVX-512 headers build some intrinsics from _mm512_undefined_*(), which
// -Wuninitialized reports inside the headers; the values are never read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "engine/kernels/x86/kernels_impl.h"

namespace ztslm::engine::internal {

bool gemm_avx512(gguf::TensorType type, const GemmArgs& args) { return gemm_impl(type, args); }
bool convert_row_avx512(gguf::TensorType act_type, const float* x, int64_t n, std::byte* out) {
  return convert_impl(act_type, x, n, out);
}
float dot_f32_avx512(const float* a, const float* b, int64_t n) { return dot_f32_impl(a, b, n); }
void axpy_f32_avx512(float a, const float* x, float* y, int64_t n) { axpy_f32_impl(a, x, y, n); }
bool attn_scores_f32_avx512(const float* q, const float* k, int64_t n, int64_t d, float* s) {
  return attn_scores_impl(q, k, n, d, s);
}
bool attn_values_f32_avx512(const float* p, const float* v, int64_t n, int64_t d, float* out) {
  return attn_values_impl(p, v, n, d, out);
}

}  // namespace ztslm::engine::internal
