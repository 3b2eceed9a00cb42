// Session: one conversation's state on a shared Model: its KV cache, token history, activation
// scratch and logits. Sessions never share mutable state, so one principal's context cannot leak
// into another's (DESIGN.md "context isolation"); everything a session holds is wiped with
// secure_zero on reset() and on destruction.
//
// Threading: a Session is used by one caller at a time. Its passes run on the ThreadPool given at
// creation; sessions that share a pool must not decode concurrently (ThreadPool::run is not
// re-entrant). Any number of sessions may share one Model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "core/result.h"
#include "engine/arch/llama.h"
#include "engine/kv/aligned_buffer.h"
#include "engine/kv/kv_cache.h"
#include "engine/model.h"
#include "engine/thread_pool.h"

namespace ztslm::engine {

struct SessionOptions {
  uint32_t n_ctx = 2048;        // context cells (KV cache size); 1..max_ctx
  uint32_t n_batch = 512;       // most tokens per forward pass; longer inputs run in chunks
  uint32_t max_logit_rows = 1;  // most rows decode(..., all_logits = true) may return
  KvType kv_type = KvType::kF32;
  // When a decode() input does not fit after the history: false → kOutOfRange; true → its
  // oldest tokens are dropped so the newest ones fill the remaining cells (see last_dropped()).
  bool truncate_prompt = false;
  uint32_t max_ctx = 1u << 20;               // bound on n_ctx
  size_t max_kv_bytes = size_t{16} << 30;     // bound on the KV cache
  size_t max_scratch_bytes = size_t{8} << 30; // bound on activations + logits
};

class Session final {
 public:
  // A session on `model` whose passes run on `pool` (which must outlive the session).
  // kInvalidArgument for out-of-range options; kResourceExhausted when the KV cache or the
  // scratch would exceed the limits in `opt`.
  static Result<Session> create(std::shared_ptr<const Model> model, ThreadPool& pool,
                                const SessionOptions& opt = SessionOptions());

  Session(Session&&) noexcept = default;
  Session& operator=(Session&&) noexcept = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  // Appends `tokens` to the history and evaluates them at the next positions. Returns logits
  // [n_out, n_vocab] (n_out = number of evaluated tokens if `all_logits`, else 1: the last one),
  // valid until the next call. Errors leave the session unchanged: kInvalidArgument for an empty
  // input, a token id outside [0, n_vocab) or more logit rows than max_logit_rows; kOutOfRange
  // when the tokens do not fit in n_ctx (unless truncate_prompt, which fails only when the
  // context is already full).
  Result<std::span<const float>> decode(std::span<const int32_t> tokens, bool all_logits);

  // Keeps only the first `n_keep` history tokens (reuse of a shared prefix, or rollback); the
  // dropped cells are wiped. kOutOfRange when n_keep > n_past().
  Status truncate(uint32_t n_keep);
  // Length of the common prefix of the history and `tokens`.
  uint32_t common_prefix(std::span<const int32_t> tokens) const;
  // Wipes the KV cache, history, scratch and logits; the session is empty again.
  void reset();

  uint32_t n_past() const { return n_past_; }
  uint32_t n_ctx() const { return opt_.n_ctx; }
  std::span<const int32_t> history() const { return {history_.as<int32_t>(), n_past_}; }
  // Input tokens dropped by truncate_prompt in the last decode().
  uint32_t last_dropped() const { return last_dropped_; }
  const Model& model() const { return *model_; }
  const SessionOptions& options() const { return opt_; }
  size_t kv_bytes() const { return kv_.bytes(); }

  // True when the KV cache, history, scratch and logits are all zero bytes.
  bool is_zeroed_for_test() const;
  // True when every KV cell at or past n_past() is zero (what truncate relies on).
  bool kv_tail_is_zero_for_test() const { return kv_.cells_zero_from_for_test(n_past_); }
  // Called by the destructor after the wipe and before the memory is freed (nullptr: none).
  static void set_release_hook_for_test(void (*hook)(const Session&));

 private:
  Session() = default;
  void wipe();

  std::shared_ptr<const Model> model_;
  ThreadPool* pool_ = nullptr;
  SessionOptions opt_;
  KvCache kv_;
  ForwardScratch scratch_;
  kv::AlignedBuffer history_;  // int32 [n_ctx]
  kv::AlignedBuffer logits_;   // float [max_logit_rows, n_vocab]
  uint32_t n_past_ = 0;
  uint32_t last_dropped_ = 0;
};

}  // namespace ztslm::engine
