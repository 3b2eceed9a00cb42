// Model: the immutable weights and hyper-parameters of one `llama` or `qwen2` GGUF file, shared
// read-only by every session (std::shared_ptr<const Model>; no method mutates it, so any number
// of threads and sessions may use one Model at once).
//
// Ownership: the weights are not copied. Each 2-D weight is a kernels Matrix viewing the file's
// bytes; norms and biases (small, F32) are copied. The Model keeps the bytes alive itself: it
// owns the MappedFile it was loaded from (or the `owner` handle given to from_bytes), so the
// mapping lives exactly as long as the last session that holds the Model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/result.h"
#include "engine/arch/hparams.h"
#include "engine/kernels/matmul.h"
#include "gguf/gguf.h"

namespace ztslm::engine {

struct ModelOptions {
  gguf::Limits gguf_limits;
  HParamsLimits hparams_limits;
  uint32_t max_vocab = 1u << 21;  // largest real vocabularies are ~262k tokens
  Isa isa = best_isa();
};

// Weights of one transformer block. Optional biases are empty when the file has none.
struct LayerWeights {
  std::vector<float> attn_norm;  // [n_embd]
  Matrix wq;                     // [n_head * head_dim, n_embd]
  Matrix wk;                     // [n_head_kv * head_dim, n_embd]
  Matrix wv;                     // [n_head_kv * head_dim, n_embd]
  Matrix wo;                     // [n_embd, n_head * head_dim]
  std::vector<float> bq, bk, bv, bo;
  std::vector<float> ffn_norm;   // [n_embd]
  Matrix ffn_gate;               // [n_ff, n_embd]
  Matrix ffn_up;                 // [n_ff, n_embd]
  Matrix ffn_down;               // [n_embd, n_ff]
  std::vector<float> b_gate, b_up, b_down;
};

class Model final {
 public:
  // Loads `file` (moved into the Model). kMalformed for a file that does not parse or has a
  // missing, wrongly shaped or unexpected tensor (the message names it); kInvalidArgument for an
  // unsupported architecture, feature or tensor type (named); kResourceExhausted past a limit.
  static Result<std::shared_ptr<const Model>> load(MappedFile file,
                                                   const ModelOptions& opt = ModelOptions());
  // Maps `path` and loads it (errors as MappedFile::open and load).
  static Result<std::shared_ptr<const Model>> open(const std::string& path,
                                                   const ModelOptions& opt = ModelOptions());
  // Loads a GGUF image held in memory; `owner` keeps `bytes` alive and is held by the Model.
  static Result<std::shared_ptr<const Model>> from_bytes(std::shared_ptr<const void> owner,
                                                         std::span<const std::byte> bytes,
                                                         const ModelOptions& opt = ModelOptions());

  const HParams& hparams() const { return hp_; }
  // The parsed container: metadata for the tokenizer and chat template.
  const gguf::File& gguf() const { return file_; }
  const Matrix& token_embd() const { return token_embd_; }   // [n_vocab, n_embd]
  const Matrix& output() const { return output_; }           // [n_vocab, n_embd]
  bool has_tied_output() const { return tied_output_; }
  std::span<const float> output_norm() const { return output_norm_; }
  std::span<const float> output_bias() const { return output_bias_; }  // empty when absent
  std::span<const float> rope_freqs() const { return rope_freqs_; }    // [n_rot/2] or empty
  const LayerWeights& layer(uint32_t il) const { return layers_[il]; }
  uint32_t n_vocab() const { return hp_.n_vocab; }
  Isa isa() const { return isa_; }

 private:
  Model() = default;
  Status init(const ModelOptions& opt);

  std::shared_ptr<const void> storage_;  // keeps the bytes that file_ and the Matrices view
  gguf::File file_;
  HParams hp_;
  Isa isa_ = Isa::kScalar;
  Matrix token_embd_;
  Matrix output_;
  bool tied_output_ = false;
  std::vector<float> output_norm_;
  std::vector<float> output_bias_;
  std::vector<float> rope_freqs_;
  std::vector<LayerWeights> layers_;
};

}  // namespace ztslm::engine
