#include "engine/kernels/matmul.h"

#include <cpuid.h>

#include <cstdlib>
#include <cstring>
#include <string_view>

#include "core/checked_math.h"
#include "engine/kernels/internal/isa_kernels.h"
#include "engine/kernels/ref/dot_ref.h"
#include "engine/quant/quant.h"

namespace ztslm::engine {

using gguf::TensorType;

namespace {

// XCR0: which register states the OS saves on context switch.
uint64_t read_xcr0() {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return 0;
  if ((ecx & (1u << 27)) == 0) return 0;  // no OSXSAVE: xgetbv would fault
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

// CPUID feature bits (Intel SDM vol. 2A, CPUID). Read directly rather than through
// __builtin_cpu_supports, whose feature names differ between GCC and clang.
bool cpuid_bit(uint32_t leaf, uint32_t subleaf, int reg, int bit) {
  uint32_t r[4] = {0, 0, 0, 0};
  if (__get_cpuid_count(leaf, subleaf, &r[0], &r[1], &r[2], &r[3]) == 0) return false;
  return (r[reg] >> bit) & 1u;
}
constexpr int kEbx = 1, kEcx = 2;

Isa probe_isa() {
  const uint64_t xcr0 = read_xcr0();
  const bool os_avx = (xcr0 & 0x6) == 0x6;       // XMM and YMM state
  const bool os_avx512 = (xcr0 & 0xE6) == 0xE6;  // plus opmask, ZMM_Hi256, Hi16_ZMM
  const bool fma = cpuid_bit(1, 0, kEcx, 12), f16c = cpuid_bit(1, 0, kEcx, 29);
  const bool avx2 = os_avx && fma && f16c && cpuid_bit(7, 0, kEbx, 5);
  if (!avx2) return Isa::kScalar;
  const bool avx512 = os_avx512 && cpuid_bit(7, 0, kEbx, 16) /* F */ &&
                      cpuid_bit(7, 0, kEbx, 17) /* DQ */ && cpuid_bit(7, 0, kEbx, 30) /* BW */ &&
                      cpuid_bit(7, 0, kEbx, 31) /* VL */ && cpuid_bit(7, 0, kEcx, 11) /* VNNI */;
  return avx512 ? Isa::kAvx512 : Isa::kAvx2;
}

Isa compute_best_isa() {
  Isa isa = probe_isa();
  const char* env = std::getenv("ZTSLM_ISA");
  if (env != nullptr) {
    const std::string_view v(env);
    Isa want = isa;
    if (v == "scalar") want = Isa::kScalar;
    if (v == "avx2") want = Isa::kAvx2;
    if (v == "avx512") want = Isa::kAvx512;
    // The override can only lower the ISA: asking for more than the CPU has is ignored.
    if (static_cast<int>(want) < static_cast<int>(isa)) isa = want;
  }
  return isa;
}

}  // namespace

Isa best_isa() {
  static const Isa isa = compute_best_isa();
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "unknown";
}

TensorType activation_type(TensorType weight_type) {
  switch (weight_type) {
    case TensorType::kF16: return TensorType::kF16;
    case TensorType::kBF16: return TensorType::kBF16;
    case TensorType::kQ4_0:
    case TensorType::kQ5_0:
    case TensorType::kQ8_0: return TensorType::kQ8_0;
    case TensorType::kQ4_1:
    case TensorType::kQ5_1: return TensorType::kQ8_1;
    case TensorType::kQ2_K:
    case TensorType::kQ3_K:
    case TensorType::kQ4_K:
    case TensorType::kQ5_K:
    case TensorType::kQ6_K: return TensorType::kQ8_K;
    default: return TensorType::kF32;
  }
}

size_t activation_row_bytes(TensorType act_type, int64_t n_cols) {
  return row_bytes(act_type, n_cols);
}

void convert_activations(TensorType act_type, const float* x, int64_t n_cols, int64_t t0,
                         int64_t t1, std::byte* act, Isa isa) {
  const size_t rb = activation_row_bytes(act_type, n_cols);
  for (int64_t t = t0; t < t1; ++t) {
    const float* xr = x + t * n_cols;
    std::byte* out = act + static_cast<size_t>(t) * rb;
    bool done = false;
    if (isa == Isa::kAvx512) done = internal::convert_row_avx512(act_type, xr, n_cols, out);
    if (!done && isa != Isa::kScalar) done = internal::convert_row_avx2(act_type, xr, n_cols, out);
    if (!done) ref::convert_row(act_type, xr, n_cols, out);
  }
}

Result<Matrix> Matrix::create(TensorType type, int64_t n_cols, int64_t n_rows,
                              std::span<const std::byte> data, Isa isa) {
  if (!is_type_implemented(type)) {
    return Status::invalid_argument("matrix type {} is not implemented",
                                    gguf::tensor_type_name(type));
  }
  const int64_t be = block_elems(type);
  if (n_cols <= 0 || n_rows < 0 || n_cols % be != 0) {
    return Status::invalid_argument("matrix shape [{}, {}] is not a whole number of {}-element blocks",
                                    n_rows, n_cols, be);
  }
  // The activation format of K-quant weights uses 256-element blocks; so do the weights.
  const size_t rb = row_bytes(type, n_cols);
  uint64_t total = 0;
  if (!checked_mul<uint64_t>(rb, static_cast<uint64_t>(n_rows), &total) || total > data.size()) {
    return Status::invalid_argument("matrix data of {} bytes is smaller than {} rows of {} bytes",
                                    data.size(), n_rows, rb);
  }
  if (static_cast<int>(isa) > static_cast<int>(best_isa())) isa = best_isa();
  Matrix m;
  m.type_ = type;
  m.n_cols_ = n_cols;
  m.n_rows_ = n_rows;
  m.row_bytes_ = rb;
  m.isa_ = isa;
  m.row_granularity_ = 1;
  m.data_ = data.data();
  return m;
}

void Matrix::dequantize_row(int64_t r, float* out) const {
  ZTSLM_CHECK(r >= 0 && r < n_rows_);
  engine::dequantize_row(type_, data_ + static_cast<size_t>(r) * row_bytes_, out, n_cols_);
}

void Matrix::multiply(const std::byte* act, int64_t n_tokens, int64_t r0, int64_t r1, float* y,
                      int64_t ldy) const {
  ZTSLM_CHECK(r0 >= 0 && r0 <= r1 && r1 <= n_rows_ && n_tokens >= 0);
  if (r0 == r1 || n_tokens == 0) return;
  const size_t arb = activation_row_bytes(act_type(), n_cols_);
  internal::GemmArgs args{data_, row_bytes_, n_cols_, act, arb, n_tokens, r0, r1, y, ldy};
  if (isa_ == Isa::kAvx512 && internal::gemm_avx512(type_, args)) return;
  if (isa_ != Isa::kScalar && internal::gemm_avx2(type_, args)) return;
  const ref::DotFn dot = ref::dot_fn(type_);
  for (int64_t r = r0; r < r1; ++r) {
    const std::byte* w = data_ + static_cast<size_t>(r) * row_bytes_;
    for (int64_t t = 0; t < n_tokens; ++t) {
      y[t * ldy + r] = dot(n_cols_, w, act + static_cast<size_t>(t) * arb);
    }
  }
}

float dot_f32(const float* a, const float* b, int64_t n) {
  const Isa isa = best_isa();
  if (isa == Isa::kAvx512) return internal::dot_f32_avx512(a, b, n);
  if (isa == Isa::kAvx2) return internal::dot_f32_avx2(a, b, n);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void axpy_f32(float a, const float* x, float* y, int64_t n) {
  const Isa isa = best_isa();
  if (isa == Isa::kAvx512) return internal::axpy_f32_avx512(a, x, y, n);
  if (isa == Isa::kAvx2) return internal::axpy_f32_avx2(a, x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void attn_scores_f32(const float* q, const float* k, int64_t n, int64_t d, float* s) {
  const Isa isa = best_isa();
  if (isa == Isa::kAvx512 && internal::attn_scores_f32_avx512(q, k, n, d, s)) return;
  if (isa != Isa::kScalar && internal::attn_scores_f32_avx2(q, k, n, d, s)) return;
  for (int64_t j = 0; j < n; ++j) s[j] = dot_f32(q, k + j * d, d);
}

void attn_values_f32(const float* p, const float* v, int64_t n, int64_t d, float* out) {
  const Isa isa = best_isa();
  if (isa == Isa::kAvx512 && internal::attn_values_f32_avx512(p, v, n, d, out)) return;
  if (isa != Isa::kScalar && internal::attn_values_f32_avx2(p, v, n, d, out)) return;
  for (int64_t i = 0; i < d; ++i) out[i] = 0.0f;
  for (int64_t j = 0; j < n; ++j) axpy_f32(p[j], v + j * d, out, d);
}

}  // namespace ztslm::engine
