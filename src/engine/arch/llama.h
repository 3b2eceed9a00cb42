// Forward pass of the `llama` and `qwen2` architectures (spec/ENGINE.md §4): RMSNorm, RoPE
// (NORM for llama, NEOX for qwen2; frequency factors; linear/YaRN scaling), GQA attention over
// an F32 or F16 KV cache, SwiGLU, residuals, logits.
//
// The pass is SPMD on a ThreadPool: every thread walks the whole graph and does its share of each
// op (tokens for embeddings, norms, RoPE and activation conversion; weight rows, in multiples of
// Matrix::row_granularity(), for matmuls; (token, head) pairs for attention), with a barrier
// between dependent ops. Every output value is computed by exactly one thread in an order that
// does not depend on the split, so results are bit-identical for any thread count.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/result.h"
#include "engine/kv/aligned_buffer.h"
#include "engine/kv/kv_cache.h"
#include "engine/model.h"
#include "engine/thread_pool.h"

namespace ztslm::engine {

// Activation buffers of one session, allocated once for at most `max_batch` tokens per pass and
// `n_threads` threads, wiped on destruction (they hold prompt-derived values).
class ForwardScratch final {
 public:
  ForwardScratch() = default;
  // kResourceExhausted when the buffers would exceed `max_bytes`.
  static Result<ForwardScratch> create(const Model& model, uint32_t max_batch, uint32_t n_ctx,
                                       int n_threads, size_t max_bytes);

  uint32_t max_batch() const { return max_batch_; }
  uint32_t n_ctx() const { return n_ctx_; }
  int n_threads() const { return n_threads_; }
  size_t bytes() const { return buf_.size(); }
  void wipe() { buf_.wipe(); }
  bool is_zero_for_test() const { return buf_.is_zero(); }

 private:
  friend struct ForwardPass;
  uint32_t max_batch_ = 0;
  uint32_t n_ctx_ = 0;
  int n_threads_ = 0;
  size_t act_bytes_ = 0;  // one activation region
  // Offsets (bytes) of each array in buf_.
  size_t off_x_ = 0, off_h_ = 0, off_q_ = 0, off_k_ = 0, off_v_ = 0, off_attn_ = 0, off_tmp_ = 0,
         off_gate_ = 0, off_up_ = 0, off_rope_ = 0, off_act_ = 0, off_scores_ = 0;
  size_t scores_stride_ = 0;  // bytes per thread
  kv::AlignedBuffer buf_;
};

// Evaluates `n_tokens` tokens (ids already checked < n_vocab) at positions n_past..n_past+n-1,
// appending their K/V to `kv` (cells n_past.. must exist: n_past + n_tokens <= kv.n_ctx()), with
// n_tokens <= scratch.max_batch() and pool.size() <= scratch.n_threads(). Writes logits
// [n_out, n_vocab] to `logits`, where n_out = n_tokens if `all_logits`, else 1 (the last token).
void forward(const Model& model, KvCache& kv, ForwardScratch& scratch, ThreadPool& pool,
             const int32_t* tokens, uint32_t n_tokens, uint32_t n_past, bool all_logits,
             float* logits);

}  // namespace ztslm::engine
