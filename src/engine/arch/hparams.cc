#include "engine/arch/hparams.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/utf8.h"

namespace ztslm::engine {
namespace {

std::string key_of(Arch arch, std::string_view suffix) {
  std::string k(arch_name(arch));
  k.push_back('.');
  k.append(suffix);
  return k;
}

Result<uint32_t> required_u32(const gguf::Metadata& md, const std::string& key) {
  if (!md.contains(key)) return Status::malformed("missing required key {}", key);
  return md.get_u32(key);
}

Result<uint32_t> optional_u32(const gguf::Metadata& md, const std::string& key, uint32_t dflt) {
  if (!md.contains(key)) return dflt;
  return md.get_u32(key);
}

Result<float> optional_f32(const gguf::Metadata& md, const std::string& key, float dflt) {
  if (!md.contains(key)) return dflt;
  ZTSLM_ASSIGN_OR_RETURN(const float v, md.get_f32(key));
  if (!std::isfinite(v)) return Status::malformed("{} is not finite", key);
  return v;
}

Status check_range(const std::string& key, uint32_t v, uint32_t lo, uint32_t hi) {
  if (v < lo) return Status::malformed("{} = {} is below {}", key, v, lo);
  if (v > hi) return Status::resource_exhausted("{} = {} exceeds limit {}", key, v, hi);
  return Status();
}

// A key that holds either one u32 for every layer or an array of exactly n_layer integers
// (u32, or i32 with non-negative values). Absent: `dflt` (empty = use `fallback`).
Result<std::vector<uint32_t>> u32_or_array(const gguf::Metadata& md, const std::string& key,
                                           uint32_t n_layer, const std::vector<uint32_t>& fallback) {
  const gguf::Value* v = md.find(key);
  if (v == nullptr) return fallback;
  if (v->type() != gguf::ValueType::kArray) {
    ZTSLM_ASSIGN_OR_RETURN(const uint32_t x, md.get_u32(key));
    return std::vector<uint32_t>(n_layer, x);
  }
  if (v->array_size() != n_layer) {
    return Status::malformed("{} has {} elements, expected n_layer = {}", key, v->array_size(),
                             n_layer);
  }
  if (const auto* a = v->as_array<uint32_t>(); a != nullptr && v->elem_type() == gguf::ValueType::kUint32) {
    return *a;
  }
  if (const auto* a = v->as_array<int32_t>(); a != nullptr && v->elem_type() == gguf::ValueType::kInt32) {
    std::vector<uint32_t> out;
    out.reserve(a->size());
    for (int32_t x : *a) {
      if (x < 0) return Status::malformed("{} has a negative element {}", key, x);
      out.push_back(static_cast<uint32_t>(x));
    }
    return out;
  }
  return Status::malformed("{} has type {}, expected u32 or array of u32", key,
                           v->type_description());
}

}  // namespace

std::string_view arch_name(Arch arch) {
  switch (arch) {
    case Arch::kLlama:
      return "llama";
    case Arch::kQwen2:
      return "qwen2";
  }
  return "?";
}

uint32_t HParams::max_n_head() const {
  return n_head_arr.empty() ? 0 : *std::max_element(n_head_arr.begin(), n_head_arr.end());
}
uint32_t HParams::max_n_head_kv() const {
  return n_head_kv_arr.empty() ? 0 : *std::max_element(n_head_kv_arr.begin(), n_head_kv_arr.end());
}
uint32_t HParams::max_n_ff() const {
  return n_ff_arr.empty() ? 0 : *std::max_element(n_ff_arr.begin(), n_ff_arr.end());
}

Result<HParams> HParams::from_metadata(const gguf::Metadata& md, const HParamsLimits& lim) {
  HParams hp;
  if (!md.contains("general.architecture")) {
    return Status::malformed("missing required key general.architecture");
  }
  ZTSLM_ASSIGN_OR_RETURN(const std::string_view arch, md.get_string("general.architecture"));
  if (arch == "llama") {
    hp.arch = Arch::kLlama;
    hp.rope_type = RopeType::kNorm;
  } else if (arch == "qwen2") {
    hp.arch = Arch::kQwen2;
    hp.rope_type = RopeType::kNeox;
  } else {
    return Status::invalid_argument("unsupported architecture '{}' (supported: llama, qwen2)",
                                    printable(arch, 64));
  }
  const Arch a = hp.arch;
  auto key = [a](std::string_view suffix) { return key_of(a, suffix); };

  // Sizes.
  ZTSLM_ASSIGN_OR_RETURN(hp.n_ctx_train, required_u32(md, key("context_length")));
  ZTSLM_TRY(check_range(key("context_length"), hp.n_ctx_train, 1, lim.max_ctx_train));
  ZTSLM_ASSIGN_OR_RETURN(hp.n_embd, required_u32(md, key("embedding_length")));
  ZTSLM_TRY(check_range(key("embedding_length"), hp.n_embd, 1, lim.max_embd));
  ZTSLM_ASSIGN_OR_RETURN(hp.n_layer, required_u32(md, key("block_count")));
  ZTSLM_TRY(check_range(key("block_count"), hp.n_layer, 1, lim.max_layers));
  const uint32_t n_layer = hp.n_layer;

  ZTSLM_ASSIGN_OR_RETURN(const uint32_t n_expert, optional_u32(md, key("expert_count"), 0));
  if (n_expert != 0) {
    return Status::invalid_argument("{} = {}: mixture-of-experts models are not supported",
                                    key("expert_count"), n_expert);
  }

  const std::vector<uint32_t> zeros(n_layer, 0);
  ZTSLM_ASSIGN_OR_RETURN(hp.n_ff_arr, u32_or_array(md, key("feed_forward_length"), n_layer, zeros));
  ZTSLM_ASSIGN_OR_RETURN(hp.n_head_arr,
                         u32_or_array(md, key("attention.head_count"), n_layer, zeros));
  ZTSLM_ASSIGN_OR_RETURN(hp.n_head_kv_arr,
                         u32_or_array(md, key("attention.head_count_kv"), n_layer, hp.n_head_arr));
  for (uint32_t il = 0; il < n_layer; ++il) {
    ZTSLM_TRY(check_range(key("feed_forward_length"), hp.n_ff_arr[il], 1, lim.max_ff));
    ZTSLM_TRY(check_range(key("attention.head_count"), hp.n_head_arr[il], 1, lim.max_heads));
    ZTSLM_TRY(check_range(key("attention.head_count_kv"), hp.n_head_kv_arr[il], 1,
                          hp.n_head_arr[il]));
    if (hp.n_head_arr[il] % hp.n_head_kv_arr[il] != 0) {
      return Status::malformed("layer {}: head_count_kv {} does not divide head_count {}", il,
                               hp.n_head_kv_arr[il], hp.n_head_arr[il]);
    }
  }

  // Head dimensions: key_length/value_length default to n_embd / n_head (layer 0).
  const bool has_key_len = md.contains(key("attention.key_length"));
  const bool has_val_len = md.contains(key("attention.value_length"));
  if ((!has_key_len || !has_val_len) && hp.n_embd % hp.n_head_arr[0] != 0) {
    return Status::malformed("embedding_length {} is not a multiple of head_count {}", hp.n_embd,
                             hp.n_head_arr[0]);
  }
  const uint32_t head_dflt = hp.n_embd / hp.n_head_arr[0];
  ZTSLM_ASSIGN_OR_RETURN(const uint32_t n_embd_head_k,
                         optional_u32(md, key("attention.key_length"), head_dflt));
  ZTSLM_ASSIGN_OR_RETURN(const uint32_t n_embd_head_v,
                         optional_u32(md, key("attention.value_length"), head_dflt));
  ZTSLM_TRY(check_range(key("attention.key_length"), n_embd_head_k, 1, lim.max_head_dim));
  if (n_embd_head_v != n_embd_head_k) {
    return Status::invalid_argument("value_length {} != key_length {} is not supported",
                                    n_embd_head_v, n_embd_head_k);
  }
  hp.n_embd_head = n_embd_head_k;
  ZTSLM_ASSIGN_OR_RETURN(hp.n_rot, optional_u32(md, key("rope.dimension_count"), hp.n_embd_head));
  if (hp.arch == Arch::kLlama && hp.n_rot != hp.n_embd_head) {
    return Status::malformed("rope.dimension_count {} != key_length {} (required for llama)",
                             hp.n_rot, hp.n_embd_head);
  }
  if (hp.n_rot == 0 || hp.n_rot > hp.n_embd_head || hp.n_rot % 2 != 0) {
    return Status::malformed("rope.dimension_count {} must be even and in [2, {}]", hp.n_rot,
                             hp.n_embd_head);
  }

  // Norm epsilon: required for both architectures.
  if (!md.contains(key("attention.layer_norm_rms_epsilon"))) {
    return Status::malformed("missing required key {}", key("attention.layer_norm_rms_epsilon"));
  }
  ZTSLM_ASSIGN_OR_RETURN(hp.rms_eps, optional_f32(md, key("attention.layer_norm_rms_epsilon"), 0));
  if (!(hp.rms_eps > 0.0f && hp.rms_eps < 1.0f)) {
    return Status::malformed("{} = {} outside (0, 1)", key("attention.layer_norm_rms_epsilon"),
                             hp.rms_eps);
  }

  ZTSLM_ASSIGN_OR_RETURN(hp.n_vocab, optional_u32(md, key("vocab_size"), 0));

  // RoPE (§1.5, §4.2).
  ZTSLM_ASSIGN_OR_RETURN(hp.rope_freq_base, optional_f32(md, key("rope.freq_base"), 10000.0f));
  if (!(hp.rope_freq_base > 0.0f)) {
    return Status::malformed("{} = {} is not positive", key("rope.freq_base"), hp.rope_freq_base);
  }
  std::string_view scaling = "linear";
  if (md.contains(key("rope.scaling.type"))) {
    ZTSLM_ASSIGN_OR_RETURN(scaling, md.get_string(key("rope.scaling.type")));
  }
  if (scaling == "none") {
    hp.rope_scaling = RopeScaling::kNone;
  } else if (scaling == "linear") {
    hp.rope_scaling = RopeScaling::kLinear;
  } else if (scaling == "yarn") {
    hp.rope_scaling = RopeScaling::kYarn;
  } else if (scaling == "longrope") {
    return Status::invalid_argument("rope scaling type longrope is not supported");
  } else {
    return Status::malformed("{} has unknown value '{}'", key("rope.scaling.type"),
                             printable(scaling, 32));
  }
  float factor = 0.0f;
  if (md.contains(key("rope.scaling.factor"))) {
    ZTSLM_ASSIGN_OR_RETURN(factor, optional_f32(md, key("rope.scaling.factor"), 0.0f));
  } else {
    ZTSLM_ASSIGN_OR_RETURN(factor, optional_f32(md, key("rope.scale_linear"), 0.0f));
  }
  if (factor < 0.0f) return Status::malformed("rope scaling factor {} is negative", factor);
  hp.rope_freq_scale = factor == 0.0f ? 1.0f : 1.0f / factor;
  if (hp.rope_scaling == RopeScaling::kNone) hp.rope_freq_scale = 1.0f;
  ZTSLM_ASSIGN_OR_RETURN(hp.n_ctx_orig, optional_u32(md, key("rope.scaling.original_context_length"),
                                                     hp.n_ctx_train));
  ZTSLM_TRY(check_range(key("rope.scaling.original_context_length"), hp.n_ctx_orig, 1,
                        lim.max_ctx_train));
  ZTSLM_ASSIGN_OR_RETURN(const float attn_factor_md,
                         optional_f32(md, key("rope.scaling.attn_factor"), 1.0f));
  ZTSLM_ASSIGN_OR_RETURN(const float yarn_log_mul,
                         optional_f32(md, key("rope.scaling.yarn_log_multiplier"), 0.0f));
  if (md.contains(key("rope.scaling.finetuned"))) {
    ZTSLM_TRY(md.get_bool(key("rope.scaling.finetuned")));  // informational; type-checked only
  }
  if (hp.rope_scaling == RopeScaling::kYarn) {
    if (yarn_log_mul != 0.0f) {
      return Status::invalid_argument("rope.scaling.yarn_log_multiplier {} is not supported",
                                      yarn_log_mul);
    }
    const float f = 1.0f / hp.rope_freq_scale;
    float af = f > 1.0f ? 0.1f * std::log(f) + 1.0f : 1.0f;
    // The kernel multiplies by (1 + 0.1 ln(1/freq_scale)); cancel it here (§4.2).
    af *= 1.0f / (1.0f + 0.1f * std::log(f));
    hp.rope_attn_factor = af * attn_factor_md;
    hp.rope_ext_factor = 1.0f;
  }
  return hp;
}

}  // namespace ztslm::engine
