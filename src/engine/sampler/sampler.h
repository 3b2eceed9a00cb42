// Token sampling: the parameter set a request carries, its validation, and the sampler that
// turns one row of logits into a token id (spec/ENGINE.md §7).
//
// Chain, in this order (a disabled stage is a no-op):
//   logit bias (+ suppress tokens = -inf) -> penalties -> top-k -> top-p -> min-p
//   -> temperature -> dist (std::mt19937 + uniform_real_distribution<double>)
// temperature == 0 selects greedy decoding instead: argmax of the biased, penalised logits,
// ties to the lowest id, no random draw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"

namespace ztslm::engine {

using TokenId = int32_t;

// `SamplerParams::seed` value that asks for a non-deterministic seed (std::random_device).
inline constexpr uint32_t kRandomSeed = 0xFFFFFFFFu;

struct LogitBias {
  TokenId token = 0;
  float bias = 0.0f;  // added to the logit; -inf bans the token
};

// What a request asks of the sampler. Defaults are llama-server's (§7), except max_tokens.
struct SamplerParams {
  float temperature = 0.8f;        // 0 = greedy; [0, 100]
  int32_t top_k = 40;              // 0 = disabled; >= 0
  float top_p = 0.95f;             // 1 = disabled; (0, 1]
  float min_p = 0.05f;             // 0 = disabled; [0, 1]
  float repeat_penalty = 1.0f;     // 1 = disabled; (0, 100]
  float frequency_penalty = 0.0f;  // 0 = disabled; [-100, 100]
  float presence_penalty = 0.0f;   // 0 = disabled; [-100, 100]
  int32_t penalty_last_n = 64;     // window of accepted tokens the penalties see; 0 = disabled
  uint32_t seed = kRandomSeed;     // kRandomSeed = random
  uint32_t min_keep = 0;           // top-p / min-p keep at least this many candidates
  std::vector<LogitBias> logit_bias;
  std::vector<TokenId> suppress_tokens;  // tokenizer.ggml.suppress_tokens: forced to -inf
  uint32_t max_tokens = 256;             // generated tokens at most; >= 1
  std::vector<std::string> stop;         // stop strings (see StopMatcher)
};

// Bounds on what a request may ask for. Defaults are generous for real clients.
struct SamplerLimits {
  uint32_t max_tokens = 1u << 20;       // far above any SLM context
  int32_t max_penalty_last_n = 1 << 16; // window is a ring buffer of this many ids
  size_t max_logit_bias = 1024;         // OpenAI allows 300 entries
  size_t max_suppress_tokens = 4096;    // Whisper-style lists have < 100
  size_t max_stop_strings = 16;         // OpenAI allows 4
  size_t max_stop_bytes = 256;          // one stop string, in bytes
};

// Checks every field of `params` against its range and `limits`. Returns kInvalidArgument
// naming the field and the bound ("top_p 1.5 outside (0, 1]"); NaN fails every range.
// Token ids are checked against the vocabulary by Sampler::create.
Status validate_sampler_params(const SamplerParams& params,
                               const SamplerLimits& limits = SamplerLimits());

// One request's sampler. Owns its candidate buffers (sized to the vocabulary once, at
// create), its penalty window and its RNG; sample() allocates nothing. Not thread-safe: one
// per sequence.
class Sampler final {
 public:
  // Validates `params` (see validate_sampler_params) and that every logit-bias and suppress
  // token id is in [0, n_vocab). kInvalidArgument otherwise, or when n_vocab <= 0.
  static Result<Sampler> create(const SamplerParams& params, int32_t n_vocab,
                                const SamplerLimits& limits = SamplerLimits());

  // Picks the next token from `logits` ([n_vocab], one row of the model's output). Does not
  // record the token: call accept() with the token actually used. NaN logits count as -inf.
  // kInvalidArgument when logits.size() != n_vocab; kFailedPrecondition when every
  // candidate is -inf (e.g. all banned).
  Result<TokenId> sample(std::span<const float> logits);

  // Records `token` in the penalty window. Feed the prompt tokens too (llama-server does), then
  // every generated token. Ids outside [0, n_vocab) are ignored.
  void accept(TokenId token);

  // Empties the penalty window and re-seeds the RNG as at creation.
  void reset();

  const SamplerParams& params() const { return params_; }
  int32_t n_vocab() const { return n_vocab_; }
  // The seed in use (the drawn one when params().seed was kRandomSeed).
  uint32_t seed() const { return seed_; }

  // The candidate list after the last sample(), for tests: ids and logits as the chain left
  // them before the dist draw (after temperature), in the chain's order.
  struct Candidate {
    float logit;
    TokenId id;
  };
  std::span<const Candidate> candidates_for_test() const { return {cands_.data(), n_cands_}; }

 private:
  Sampler(const SamplerParams& params, int32_t n_vocab);

  void apply_bias_and_penalties();
  void apply_top_k(size_t k);
  void apply_top_p(float p, size_t min_keep);
  void apply_min_p(float p, size_t min_keep);
  void apply_temperature(float temp);
  size_t dist_draw();

  SamplerParams params_;
  int32_t n_vocab_ = 0;
  uint32_t seed_ = 0;
  std::mt19937 rng_;

  std::vector<Candidate> cands_;  // [n_vocab], the working list; first n_cands_ are live
  std::vector<float> probs_;      // [n_vocab], scratch probabilities parallel to cands_
  std::vector<Candidate> sort_buf_;  // [n_vocab], scratch for top-p's partial sorts
  size_t n_cands_ = 0;
  bool sorted_ = false;  // cands_[0..n_cands_) sorted by logit descending

  std::vector<TokenId> window_;  // ring buffer of the last penalty_last_n accepted ids
  size_t window_head_ = 0;       // next slot to overwrite once full
  size_t window_size_ = 0;
  std::vector<int32_t> counts_;  // [n_vocab] occurrences in the window (empty when disabled)
};

}  // namespace ztslm::engine
