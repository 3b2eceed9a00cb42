// Matrix: a weight matrix ready for the kernels, and the matmul contract the forward pass uses.
//
// W is [n_rows, n_cols] in a ggml tensor type (row r holds n_cols contiguous elements, i.e. a
// GGUF tensor with ne = [n_cols, n_rows]). Before W·x, activations are converted to the type's
// vec_dot_type exactly as llama.cpp's x86 build does (spec/ENGINE.md §3.1–3.3): F16 for F16
// weights, BF16 for BF16, Q8_0 blocks for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for K-quants,
// F32 untouched. Each output is one dot product, so results do not depend on the thread split.
//
// Threading: the forward pass is SPMD (engine/thread_pool.h). Each thread converts its share of
// activation rows, barrier, then multiplies its share of weight rows [r0, r1) — r0 and r1 must be
// multiples of row_granularity() (or n_rows).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/result.h"
#include "gguf/types.h"

namespace ztslm::engine {

enum class Isa { kScalar, kAvx2, kAvx512 };

// The best ISA this CPU supports (probed once), unless ZTSLM_ISA=scalar|avx2|avx512 in the
// environment lowers it.
Isa best_isa();
const char* isa_name(Isa isa);

// The vec_dot_type of a weight type (the activation format W·x uses).
gguf::TensorType activation_type(gguf::TensorType weight_type);
// Bytes of one activation row of `n_cols` values converted to `act_type`.
size_t activation_row_bytes(gguf::TensorType act_type, int64_t n_cols);
// Converts rows [t0, t1) of x ([n_tokens, n_cols] F32, row stride n_cols) to `act_type`,
// writing activation_row_bytes() per row starting at act + t0 * row_bytes.
void convert_activations(gguf::TensorType act_type, const float* x, int64_t n_cols, int64_t t0,
                         int64_t t1, std::byte* act, Isa isa);

class Matrix final {
 public:
  // `data` holds n_rows rows of the type's row size and must outlive the Matrix (weights are
  // mapped, not copied) unless the kernels repack them into an owned layout. kInvalidArgument
  // for a type the engine does not implement or a row size that is not a whole number of blocks.
  static Result<Matrix> create(gguf::TensorType type, int64_t n_cols, int64_t n_rows,
                               std::span<const std::byte> data, Isa isa = best_isa());

  gguf::TensorType type() const { return type_; }
  gguf::TensorType act_type() const { return activation_type(type_); }
  int64_t n_cols() const { return n_cols_; }
  int64_t n_rows() const { return n_rows_; }
  Isa isa() const { return isa_; }
  int64_t row_granularity() const { return row_granularity_; }

  // Row `r` dequantised to F32 (`out` holds n_cols values); used for embedding lookups.
  void dequantize_row(int64_t r, float* out) const;

  // y[t * ldy + r] = dot(W row r, activation row t) for r in [r0, r1), t in [0, n_tokens).
  // `act` holds n_tokens rows converted to act_type() (convert_activations).
  void multiply(const std::byte* act, int64_t n_tokens, int64_t r0, int64_t r1, float* y,
                int64_t ldy) const;

 private:
  gguf::TensorType type_ = gguf::TensorType::kF32;
  int64_t n_cols_ = 0;
  int64_t n_rows_ = 0;
  size_t row_bytes_ = 0;
  Isa isa_ = Isa::kScalar;
  int64_t row_granularity_ = 1;
  const std::byte* data_ = nullptr;          // original rows, or repacked_ below
  std::shared_ptr<std::vector<std::byte>> repacked_;  // kernel-specific layout, when used
};

// Small F32 vector kernels for attention and norms (dispatched like the matmul).
float dot_f32(const float* a, const float* b, int64_t n);
// y += a * x
void axpy_f32(float a, const float* x, float* y, int64_t n);

// Attention over an F32 KV cache, rows of `d` values at stride d:
// s[j] = dot(q, k row j) for j in [0, n) (each dot summed in F32; the order depends on the ISA).
void attn_scores_f32(const float* q, const float* k, int64_t n, int64_t d, float* s);
// out[i] = sum_j p[j] * v[j * d + i], accumulated over j in order with one fused multiply-add
// per term (out is overwritten; the same result as zeroing out and axpy_f32 per row).
void attn_values_f32(const float* p, const float* v, int64_t n, int64_t d, float* out);

}  // namespace ztslm::engine
