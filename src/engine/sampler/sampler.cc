#include "engine/sampler/sampler.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>

#include "core/utf8.h"

namespace ztslm::engine {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Candidates in the order the chain sorts them: logit descending, then id ascending, so the
// order (and the greedy tie rule) is deterministic.
bool logit_greater(const Sampler::Candidate& a, const Sampler::Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// expf(l - max_l) (§7), with +inf - +inf (a logit overflowed by temperature) counted as e^0.
float exp_shift(float l, float max_l) {
  const float d = l - max_l;
  return d == d ? std::exp(d) : 1.0f;
}

bool in_closed(float v, float lo, float hi) { return v >= lo && v <= hi; }  // false for NaN

}  // namespace

Status validate_sampler_params(const SamplerParams& p, const SamplerLimits& lim) {
  if (!in_closed(p.temperature, 0.0f, 100.0f)) {
    return Status::invalid_argument("temperature {} outside [0, 100]", p.temperature);
  }
  if (p.top_k < 0) return Status::invalid_argument("top_k {} is negative", p.top_k);
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
    return Status::invalid_argument("top_p {} outside (0, 1]", p.top_p);
  }
  if (!in_closed(p.min_p, 0.0f, 1.0f)) {
    return Status::invalid_argument("min_p {} outside [0, 1]", p.min_p);
  }
  if (!(p.repeat_penalty > 0.0f && p.repeat_penalty <= 100.0f)) {
    return Status::invalid_argument("repeat_penalty {} outside (0, 100]", p.repeat_penalty);
  }
  if (!in_closed(p.frequency_penalty, -100.0f, 100.0f)) {
    return Status::invalid_argument("frequency_penalty {} outside [-100, 100]",
                                    p.frequency_penalty);
  }
  if (!in_closed(p.presence_penalty, -100.0f, 100.0f)) {
    return Status::invalid_argument("presence_penalty {} outside [-100, 100]",
                                    p.presence_penalty);
  }
  if (p.penalty_last_n < 0 || p.penalty_last_n > lim.max_penalty_last_n) {
    return Status::invalid_argument("penalty_last_n {} outside [0, {}]", p.penalty_last_n,
                                    lim.max_penalty_last_n);
  }
  if (p.max_tokens == 0 || p.max_tokens > lim.max_tokens) {
    return Status::invalid_argument("max_tokens {} outside [1, {}]", p.max_tokens,
                                    lim.max_tokens);
  }
  if (p.logit_bias.size() > lim.max_logit_bias) {
    return Status::invalid_argument("logit_bias has {} entries, limit {}", p.logit_bias.size(),
                                    lim.max_logit_bias);
  }
  for (const LogitBias& b : p.logit_bias) {
    // -inf bans a token; +inf or NaN would poison the softmax.
    if (!(b.bias == kNegInf || in_closed(b.bias, -1e4f, 1e4f))) {
      return Status::invalid_argument("logit_bias for token {} is {}, outside [-10000, 10000]",
                                      b.token, b.bias);
    }
  }
  if (p.suppress_tokens.size() > lim.max_suppress_tokens) {
    return Status::invalid_argument("suppress_tokens has {} entries, limit {}",
                                    p.suppress_tokens.size(), lim.max_suppress_tokens);
  }
  if (p.stop.size() > lim.max_stop_strings) {
    return Status::invalid_argument("{} stop strings, limit {}", p.stop.size(),
                                    lim.max_stop_strings);
  }
  for (size_t i = 0; i < p.stop.size(); ++i) {
    const std::string& s = p.stop[i];
    if (s.empty()) return Status::invalid_argument("stop string {} is empty", i);
    if (s.size() > lim.max_stop_bytes) {
      return Status::invalid_argument("stop string {} has {} bytes, limit {}", i, s.size(),
                                      lim.max_stop_bytes);
    }
    if (!is_valid_utf8(s)) return Status::invalid_argument("stop string {} is not utf-8", i);
  }
  return Status();
}

Sampler::Sampler(const SamplerParams& params, int32_t n_vocab)
    : params_(params), n_vocab_(n_vocab) {}

Result<Sampler> Sampler::create(const SamplerParams& params, int32_t n_vocab,
                                const SamplerLimits& limits) {
  ZTSLM_TRY(validate_sampler_params(params, limits));
  if (n_vocab <= 0) return Status::invalid_argument("n_vocab {} is not positive", n_vocab);
  for (const LogitBias& b : params.logit_bias) {
    if (b.token < 0 || b.token >= n_vocab) {
      return Status::invalid_argument("logit_bias token {} outside [0, {})", b.token, n_vocab);
    }
  }
  for (TokenId t : params.suppress_tokens) {
    if (t < 0 || t >= n_vocab) {
      return Status::invalid_argument("suppress token {} outside [0, {})", t, n_vocab);
    }
  }
  Sampler s(params, n_vocab);
  const size_t n = static_cast<size_t>(n_vocab);
  s.cands_.resize(n);
  s.probs_.resize(n);
  s.sort_buf_.resize(n);
  const bool penalties_on =
      params.penalty_last_n > 0 && (params.repeat_penalty != 1.0f ||
                                    params.frequency_penalty != 0.0f ||
                                    params.presence_penalty != 0.0f);
  if (penalties_on) {
    s.window_.resize(static_cast<size_t>(params.penalty_last_n));
    s.counts_.assign(n, 0);
  }
  s.reset();
  return s;
}

void Sampler::reset() {
  if (params_.seed == kRandomSeed) {
    std::random_device rd;
    seed_ = rd();
  } else {
    seed_ = params_.seed;
  }
  rng_.seed(seed_);
  std::fill(counts_.begin(), counts_.end(), 0);
  window_head_ = 0;
  window_size_ = 0;
  n_cands_ = 0;
  sorted_ = false;
}

void Sampler::accept(TokenId token) {
  if (counts_.empty() || token < 0 || token >= n_vocab_) return;
  if (window_size_ < window_.size()) {
    window_[window_size_++] = token;
  } else {
    --counts_[static_cast<size_t>(window_[window_head_])];
    window_[window_head_] = token;
    window_head_ = (window_head_ + 1) % window_.size();
  }
  ++counts_[static_cast<size_t>(token)];
}

void Sampler::apply_bias_and_penalties() {
  // The list is still the full vocabulary in id order here, so cands_[id] is token id.
  for (const LogitBias& b : params_.logit_bias) cands_[static_cast<size_t>(b.token)].logit += b.bias;
  for (TokenId t : params_.suppress_tokens) cands_[static_cast<size_t>(t)].logit = kNegInf;
  if (counts_.empty()) return;
  const float repeat = params_.repeat_penalty;
  const float freq = params_.frequency_penalty;
  const float present = params_.presence_penalty;
  // Each distinct id of the window once: its count is negated while it is being visited.
  for (size_t i = 0; i < window_size_; ++i) {
    const size_t t = static_cast<size_t>(window_[i]);
    const int32_t c = counts_[t];
    if (c <= 0) continue;
    float& logit = cands_[t].logit;
    if (logit <= 0.0f) {
      logit *= repeat;
    } else {
      logit /= repeat;
    }
    logit -= static_cast<float>(c) * freq + static_cast<float>(c > 0) * present;
    counts_[t] = -c;
  }
  for (size_t i = 0; i < window_size_; ++i) {
    int32_t& c = counts_[static_cast<size_t>(window_[i])];
    if (c < 0) c = -c;
  }
}

void Sampler::apply_top_k(size_t k) {
  k = std::min(k, n_cands_);
  // A bounded heap over the list: one comparison for most candidates (§7: partial sort).
  std::partial_sort(cands_.begin(), cands_.begin() + static_cast<ptrdiff_t>(k),
                    cands_.begin() + static_cast<ptrdiff_t>(n_cands_), logit_greater);
  n_cands_ = k;
  sorted_ = true;
}

void Sampler::apply_top_p(float p, size_t min_keep) {
  if (p >= 1.0f || n_cands_ == 0) return;
  // softmax of the current logits, in F32 (§7).
  float max_l = kNegInf;
  if (sorted_) {
    max_l = cands_[0].logit;
  } else {
    for (size_t i = 0; i < n_cands_; ++i) max_l = std::max(max_l, cands_[i].logit);
  }
  float sum = 0.0f;
  for (size_t i = 0; i < n_cands_; ++i) sum += exp_shift(cands_[i].logit, max_l);

  // Walk the candidates in descending order. An unsorted list is first partially sorted into
  // sort_buf_ (the 256 best usually suffice), and fully only when the mass needs more.
  const Candidate* data = cands_.data();
  size_t k = n_cands_;
  if (!sorted_) {
    k = std::min<size_t>(256, n_cands_);
    std::partial_sort_copy(cands_.begin(), cands_.begin() + static_cast<ptrdiff_t>(n_cands_),
                           sort_buf_.begin(), sort_buf_.begin() + static_cast<ptrdiff_t>(k),
                           logit_greater);
    data = sort_buf_.data();
  }
  float cum = 0.0f;
  size_t last = n_cands_;
  for (size_t i = 0; i < n_cands_; ++i) {
    cum += exp_shift(data[i].logit, max_l) / sum;
    if (cum >= p && i + 1 >= min_keep) {
      last = i + 1;
      break;
    }
    if (!sorted_ && i + 1 == k && k < n_cands_) {
      k = n_cands_;
      std::copy(cands_.begin(), cands_.begin() + static_cast<ptrdiff_t>(n_cands_),
                sort_buf_.begin());
      std::sort(sort_buf_.begin(), sort_buf_.begin() + static_cast<ptrdiff_t>(n_cands_),
                logit_greater);
    }
  }
  if (!sorted_) {
    std::copy(sort_buf_.begin(), sort_buf_.begin() + static_cast<ptrdiff_t>(last), cands_.begin());
    sorted_ = true;
  }
  n_cands_ = last;
}

void Sampler::apply_min_p(float p, size_t min_keep) {
  if (p <= 0.0f || n_cands_ == 0) return;
  if (!sorted_) {
    // Keep the original order when enough candidates survive.
    float max_l = kNegInf;
    for (size_t i = 0; i < n_cands_; ++i) max_l = std::max(max_l, cands_[i].logit);
    const float min_logit = max_l + std::log(p);
    size_t n_keep = 0;
    for (size_t i = 0; i < n_cands_; ++i) n_keep += cands_[i].logit >= min_logit ? 1 : 0;
    if (n_keep > 0 && n_keep >= min_keep) {
      size_t out = 0;
      for (size_t i = 0; i < n_cands_; ++i) {
        if (cands_[i].logit >= min_logit) cands_[out++] = cands_[i];
      }
      n_cands_ = out;
      return;
    }
    std::sort(cands_.begin(), cands_.begin() + static_cast<ptrdiff_t>(n_cands_), logit_greater);
    sorted_ = true;
  }
  const float min_logit = cands_[0].logit + std::log(p);
  size_t i = 1;  // the first candidate always stays
  for (; i < n_cands_; ++i) {
    if (cands_[i].logit < min_logit && i >= min_keep) break;
  }
  n_cands_ = i;
}

void Sampler::apply_temperature(float temp) {
  for (size_t i = 0; i < n_cands_; ++i) cands_[i].logit /= temp;
}

size_t Sampler::dist_draw() {
  float max_l = cands_[0].logit;
  if (!sorted_) {
    for (size_t i = 1; i < n_cands_; ++i) max_l = std::max(max_l, cands_[i].logit);
  }
  double sum = 0.0;
  for (size_t i = 0; i < n_cands_; ++i) {
    const float e = exp_shift(cands_[i].logit, max_l);
    probs_[i] = e;
    sum += e;
  }
  // One draw even with a single candidate, so the stream matches the chain of §7.
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const double r = uniform(rng_);
  const double target = sum * r;
  double run = 0.0;
  size_t last_positive = 0;
  for (size_t i = 0; i < n_cands_; ++i) {
    if (!(probs_[i] > 0.0f)) continue;  // never pick a banned (-inf) candidate, even at r == 0
    run += probs_[i];
    last_positive = i;
    if (run >= target) return i;
  }
  return last_positive;
}

Result<TokenId> Sampler::sample(std::span<const float> logits) {
  if (logits.size() != static_cast<size_t>(n_vocab_)) {
    return Status::invalid_argument("logits size {} differs from n_vocab {}", logits.size(),
                                    n_vocab_);
  }
  const size_t n = logits.size();
  for (size_t i = 0; i < n; ++i) {
    const float l = logits[i];
    cands_[i] = {l != l ? kNegInf : std::min(l, FLT_MAX), static_cast<TokenId>(i)};
  }
  n_cands_ = n;
  sorted_ = false;
  apply_bias_and_penalties();

  if (params_.temperature == 0.0f) {
    // Greedy: strict '>' in id order, so ties go to the lowest id.
    size_t best = 0;
    for (size_t i = 1; i < n; ++i) {
      if (cands_[i].logit > cands_[best].logit) best = i;
    }
    if (cands_[best].logit == kNegInf) {
      return Status::failed_precondition("no candidate token left: every logit is -inf");
    }
    cands_[0] = cands_[best];
    n_cands_ = 1;
    sorted_ = true;
    return cands_[0].id;
  }

  if (params_.top_k > 0) apply_top_k(static_cast<size_t>(params_.top_k));
  float max_l = kNegInf;
  if (sorted_) {
    max_l = cands_[0].logit;
  } else {
    for (size_t i = 0; i < n_cands_; ++i) max_l = std::max(max_l, cands_[i].logit);
  }
  if (max_l == kNegInf) {
    return Status::failed_precondition("no candidate token left: every logit is -inf");
  }
  const size_t min_keep = params_.min_keep;
  apply_top_p(params_.top_p, min_keep);
  apply_min_p(params_.min_p, min_keep);
  apply_temperature(params_.temperature);
  return cands_[dist_draw()].id;
}

}  // namespace ztslm::engine
