// AVX2 + FMA + F16C kernels (compiled with -mavx2 -mfma -mf16c; called only when best_isa()
// reports kAvx2 or better).
#include <immintrin.h>

#include "engine/kernels/internal/isa_kernels.h"

namespace ztslm::engine::internal {

bool gemm_avx2(gguf::TensorType, const GemmArgs&) { return false; }
bool convert_row_avx2(gguf::TensorType, const float*, int64_t, std::byte*) { return false; }

float dot_f32_avx2(const float* a, const float* b, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}
void axpy_f32_avx2(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace ztslm::engine::internal
