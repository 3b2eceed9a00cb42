// KvCache: one session's attention keys and values (spec/ENGINE.md §4.3), F32 (the default; it
// matches the reference data) or F16 (half the memory; K/V rounded to binary16 on store).
//
// Layout, chosen for attention: per layer, K then V, each [n_head_kv][n_ctx][head_dim], so the
// cached rows of one KV head are contiguous and a query head scans them front to back (scores
// are dot products with K rows; the output accumulates p_j * V row j).
// Cell `pos` holds the token at position `pos` of the session: the cache is a prefix of the
// session's history, and truncating the history just forgets (and wipes) the cells after it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/result.h"
#include "engine/kv/aligned_buffer.h"

namespace ztslm::engine {

enum class KvType { kF32, kF16 };

class KvCache final {
 public:
  KvCache() = default;

  // Allocates a zeroed cache of `n_ctx` cells for layers with `n_head_kv` KV heads each (one
  // entry per layer) of `head_dim` values. kResourceExhausted when the size exceeds `max_bytes`
  // (checked before allocating); kInvalidArgument for a zero dimension.
  static Result<KvCache> create(KvType type, std::span<const uint32_t> n_head_kv,
                                uint32_t head_dim, uint32_t n_ctx, size_t max_bytes);

  KvType type() const { return type_; }
  uint32_t n_ctx() const { return n_ctx_; }
  uint32_t head_dim() const { return head_dim_; }
  uint32_t n_layer() const { return static_cast<uint32_t>(layer_offset_.size()); }
  size_t bytes() const { return buf_.size(); }

  // Rows [n_ctx][head_dim] of KV head `h` in layer `il`; the pointer type must match type().
  float* k_f32(uint32_t il, uint32_t h) { return reinterpret_cast<float*>(k_ptr(il, h)); }
  float* v_f32(uint32_t il, uint32_t h) { return reinterpret_cast<float*>(v_ptr(il, h)); }
  uint16_t* k_f16(uint32_t il, uint32_t h) { return reinterpret_cast<uint16_t*>(k_ptr(il, h)); }
  uint16_t* v_f16(uint32_t il, uint32_t h) { return reinterpret_cast<uint16_t*>(v_ptr(il, h)); }

  // Writes cell `pos` of layer `il`: `k` and `v` hold n_head_kv(il) * head_dim values (heads
  // concatenated). Callers guarantee pos < n_ctx.
  void store(uint32_t il, uint32_t pos, const float* k, const float* v);

  // Wipes every cell (secure_zero).
  void clear() { buf_.wipe(); }
  // Wipes cells [begin, end) in every layer and head (`end` is clamped to n_ctx).
  void clear_cells(uint32_t begin, uint32_t end);
  bool is_zero_for_test() const { return buf_.is_zero(); }
  // True when every cell from `pos` on is zero, in every layer and head.
  bool cells_zero_from_for_test(uint32_t pos) const;

 private:
  size_t elem_bytes() const { return type_ == KvType::kF32 ? 4 : 2; }
  std::byte* k_ptr(uint32_t il, uint32_t h) {
    return buf_.data() + (layer_offset_[il] + size_t{h} * n_ctx_ * head_dim_) * elem_bytes();
  }
  std::byte* v_ptr(uint32_t il, uint32_t h) {
    return buf_.data() +
           (layer_offset_[il] + (size_t{n_head_kv_[il]} + h) * n_ctx_ * head_dim_) * elem_bytes();
  }

  KvType type_ = KvType::kF32;
  uint32_t n_ctx_ = 0;
  uint32_t head_dim_ = 0;
  std::vector<uint32_t> n_head_kv_;
  std::vector<size_t> layer_offset_;  // in elements
  kv::AlignedBuffer buf_;
};

}  // namespace ztslm::engine
