// AVX2 + FMA + F16C kernels (this file alone is compiled with -mavx2 -mfma -mf16c; matmul.cc
// calls it only when best_isa() reports kAvx2 or better).
#define ZTSLM_X86_AVX512 0
#include "engine/kernels/x86/kernels_impl.h"

namespace ztslm::engine::internal {

bool gemm_avx2(gguf::TensorType type, const GemmArgs& args) { return gemm_impl(type, args); }
bool convert_row_avx2(gguf::TensorType act_type, const float* x, int64_t n, std::byte* out) {
  return convert_impl(act_type, x, n, out);
}
float dot_f32_avx2(const float* a, const float* b, int64_t n) { return dot_f32_impl(a, b, n); }
void axpy_f32_avx2(float a, const float* x, float* y, int64_t n) { axpy_f32_impl(a, x, y, n); }
bool attn_scores_f32_avx2(const float* q, const float* k, int64_t n, int64_t d, float* s) {
  return attn_scores_impl(q, k, n, d, s);
}
bool attn_values_f32_avx2(const float* p, const float* v, int64_t n, int64_t d, float* out) {
  return attn_values_impl(p, v, n, d, out);
}

}  // namespace ztslm::engine::internal
