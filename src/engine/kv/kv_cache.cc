#include "engine/kv/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "core/checked_math.h"
#include "core/secure.h"
#include "engine/kv/half.h"

namespace ztslm::engine {

Result<KvCache> KvCache::create(KvType type, std::span<const uint32_t> n_head_kv,
                                uint32_t head_dim, uint32_t n_ctx, size_t max_bytes) {
  if (n_head_kv.empty() || head_dim == 0 || n_ctx == 0) {
    return Status::invalid_argument("kv cache needs layers, head_dim and n_ctx > 0");
  }
  KvCache c;
  c.type_ = type;
  c.n_ctx_ = n_ctx;
  c.head_dim_ = head_dim;
  c.n_head_kv_.assign(n_head_kv.begin(), n_head_kv.end());
  size_t total = 0;
  for (uint32_t h : n_head_kv) {
    if (h == 0) return Status::invalid_argument("kv cache layer with 0 heads");
    c.layer_offset_.push_back(total);
    size_t layer = 0;
    if (!checked_mul<size_t>(size_t{2} * h, size_t{n_ctx} * head_dim, &layer) ||
        !checked_add(total, layer, &total)) {
      return Status::resource_exhausted("kv cache size overflows");
    }
  }
  size_t n_bytes = 0;
  if (!checked_mul(total, c.elem_bytes(), &n_bytes) || n_bytes > max_bytes) {
    return Status::resource_exhausted("kv cache of {} cells needs more than the limit of {} bytes",
                                      n_ctx, max_bytes);
  }
  c.buf_ = kv::AlignedBuffer(n_bytes);
  return c;
}

void KvCache::store(uint32_t il, uint32_t pos, const float* k, const float* v) {
  const uint32_t n_kv = n_head_kv_[il];
  const size_t d = head_dim_;
  for (uint32_t h = 0; h < n_kv; ++h) {
    if (type_ == KvType::kF32) {
      std::memcpy(k_f32(il, h) + pos * d, k + h * d, d * sizeof(float));
      std::memcpy(v_f32(il, h) + pos * d, v + h * d, d * sizeof(float));
    } else {
      uint16_t* kd = k_f16(il, h) + pos * d;
      uint16_t* vd = v_f16(il, h) + pos * d;
      for (size_t i = 0; i < d; ++i) {
        kd[i] = kv::f32_to_f16(k[h * d + i]);
        vd[i] = kv::f32_to_f16(v[h * d + i]);
      }
    }
  }
}

bool KvCache::cells_zero_from_for_test(uint32_t pos) const {
  if (pos >= n_ctx_) return true;
  const size_t row = size_t{head_dim_} * elem_bytes();
  auto* self = const_cast<KvCache*>(this);  // the pointer helpers are not const; nothing is written
  for (uint32_t il = 0; il < n_layer(); ++il) {
    for (uint32_t h = 0; h < n_head_kv_[il]; ++h) {
      for (const std::byte* base : {self->k_ptr(il, h), self->v_ptr(il, h)}) {
        for (size_t i = pos * row; i < size_t{n_ctx_} * row; ++i) {
          if (base[i] != std::byte{0}) return false;
        }
      }
    }
  }
  return true;
}

void KvCache::clear_cells(uint32_t begin, uint32_t end) {
  end = std::min(end, n_ctx_);
  if (begin >= end || buf_.size() == 0) return;
  const size_t row = size_t{head_dim_} * elem_bytes();
  const size_t n = size_t{end - begin} * row;
  for (uint32_t il = 0; il < n_layer(); ++il) {
    for (uint32_t h = 0; h < n_head_kv_[il]; ++h) {
      secure_zero(k_ptr(il, h) + begin * row, n);
      secure_zero(v_ptr(il, h) + begin * row, n);
    }
  }
}

}  // namespace ztslm::engine
