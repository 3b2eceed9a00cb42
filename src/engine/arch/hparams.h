// Hyper-parameters of the `llama` and `qwen2` architectures, read from GGUF metadata
// (spec/ENGINE.md §1.5 keys and defaults, §4.2 RoPE settings). Reads are type-strict: a known key
// stored with another type is kMalformed, never converted.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "gguf/gguf.h"

namespace ztslm::engine {

enum class Arch { kLlama, kQwen2 };
// NORM rotates adjacent pairs (x[2i], x[2i+1]); NEOX rotates (x[i], x[i + n_rot/2]).
enum class RopeType { kNorm, kNeox };
enum class RopeScaling { kNone, kLinear, kYarn };

std::string_view arch_name(Arch arch);

// Bounds on model shapes read from untrusted metadata; each is far above any small model.
struct HParamsLimits {
  uint32_t max_layers = 512;          // the largest dense llama-family models have < 130
  uint32_t max_embd = 1u << 16;       // 405B models have 16384
  uint32_t max_heads = 1024;          // per layer; real models have <= 128
  uint32_t max_head_dim = 1024;       // real models use 64..256
  uint32_t max_ff = 1u << 18;         // 53248 for 405B
  uint32_t max_ctx_train = 1u << 24;  // 16M positions
};

struct HParams {
  Arch arch = Arch::kLlama;
  uint32_t n_ctx_train = 0;
  uint32_t n_embd = 0;
  uint32_t n_layer = 0;
  uint32_t n_vocab = 0;  // 0 until the model sets it from token_embd (ARCH.vocab_size is checked)
  // Per layer (n_layer entries each): keys that take "u32 or array[n_layer]".
  std::vector<uint32_t> n_head_arr;
  std::vector<uint32_t> n_head_kv_arr;
  std::vector<uint32_t> n_ff_arr;
  uint32_t n_embd_head = 0;  // key_length == value_length (head_dim D)
  uint32_t n_rot = 0;        // rope.dimension_count, <= n_embd_head, even
  float rms_eps = 0.0f;

  RopeType rope_type = RopeType::kNorm;
  RopeScaling rope_scaling = RopeScaling::kLinear;
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;   // 1 / rope.scaling.factor (1 when the factor is 0 or absent)
  uint32_t n_ctx_orig = 0;        // rope.scaling.original_context_length (YaRN)
  // Derived context-level RoPE settings (§4.2): ext_factor is 1 for YaRN, else 0.
  float rope_ext_factor = 0.0f;
  float rope_attn_factor = 1.0f;
  float rope_beta_fast = 32.0f;
  float rope_beta_slow = 1.0f;

  uint32_t n_head(uint32_t il) const { return n_head_arr[il]; }
  uint32_t n_head_kv(uint32_t il) const { return n_head_kv_arr[il]; }
  uint32_t n_ff(uint32_t il) const { return n_ff_arr[il]; }
  uint32_t max_n_head() const;
  uint32_t max_n_head_kv() const;
  uint32_t max_n_ff() const;

  // Reads and validates the hyper-parameters of `md` (general.architecture must be `llama` or
  // `qwen2`). kMalformed names the key for a missing required key, a wrong type or an
  // inconsistent value (n_head_kv not dividing n_head, head_dim mismatch, odd rope dims);
  // kResourceExhausted names the key and the bound when a value exceeds `lim`; kInvalidArgument
  // for an unsupported architecture or feature (MoE, longrope, YaRN log multiplier).
  static Result<HParams> from_metadata(const gguf::Metadata& md,
                                       const HParamsLimits& lim = HParamsLimits());
};

}  // namespace ztslm::engine
