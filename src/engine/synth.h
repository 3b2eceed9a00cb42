// Synthetic models: random-weight GGUF files with the exact shapes, tensor names, metadata and
// tensor-type mix of real small language models (for benchmarks, shape tests and demos). The
// tokenizer is a generated SentencePiece vocabulary of the preset's size (byte fallback, ChatML
// control tokens), so `ztslm generate` runs on these files too.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "gguf/types.h"
#include "gguf/writer.h"

namespace ztslm::engine {

struct SynthShape {
  std::string name;           // preset name, e.g. "smollm2-135m"
  std::string arch;           // "llama" or "qwen2"
  uint32_t n_vocab = 0;
  uint32_t n_embd = 0;
  uint32_t n_layer = 0;
  uint32_t n_head = 0;
  uint32_t n_head_kv = 0;
  uint32_t n_ff = 0;
  uint32_t n_ctx_train = 0;
  float rope_freq_base = 10000.0f;
  float rms_eps = 1e-5f;
  bool tied_output = true;
  bool qkv_bias = false;       // qwen2
  bool llama3_rope = false;    // rope_freqs.weight with Llama 3.1+ frequency scaling
};

// The known presets: smollm2-135m, smollm2-360m, qwen2.5-0.5b, llama3.2-1b, tinyllama-1.1b.
std::span<const SynthShape> synth_presets();
// kNotFound (listing the presets) for an unknown name.
Result<SynthShape> find_synth_preset(std::string_view name);

// The weight-type recipe: a single type for every 2-D weight ("Q8_0", "F16", …, falling back
// like llama-quantize when a row is not a multiple of 256 for a K-quant), or a llama-quantize
// mix ("Q4_K_M", "Q5_K_M").
struct SynthRecipe {
  std::string name;  // as given: "Q4_K_M", "Q8_0", …
  // The type of tensor `name` (2-D weights) with `n_cols` elements per row in layer `il` of
  // `n_layer` (il = -1 for token_embd / output).
  gguf::TensorType type_for(std::string_view tensor, int64_t n_cols, int il, int n_layer) const;
  // The `general.file_type` value llama-quantize writes for this recipe.
  uint32_t file_type() const;
  bool is_mix = false;
  gguf::TensorType base = gguf::TensorType::kQ8_0;
  bool k_medium = false;  // Q4_K_M (true) / Q5_K_M: base K type Q4_K or Q5_K
};
// kInvalidArgument (listing the choices) for an unknown or unimplemented recipe name.
Result<SynthRecipe> parse_synth_recipe(std::string_view name);

// Builds the GGUF writer for `shape` with `recipe`; tensor bytes are generated (deterministically
// from `seed`) only when the file is written, one tensor at a time.
Result<gguf::Writer> build_synth_model(const SynthShape& shape, const SynthRecipe& recipe,
                                       uint64_t seed);

}  // namespace ztslm::engine
