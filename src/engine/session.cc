#include "engine/session.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "core/checked_math.h"
#include "core/secure.h"

namespace ztslm::engine {
namespace {

std::atomic<void (*)(const Session&)> g_release_hook{nullptr};

}  // namespace

Result<Session> Session::create(std::shared_ptr<const Model> model, ThreadPool& pool,
                                const SessionOptions& opt) {
  if (model == nullptr) return Status::invalid_argument("session needs a model");
  if (opt.n_ctx == 0 || opt.n_ctx > opt.max_ctx) {
    return Status::invalid_argument("n_ctx {} outside [1, {}]", opt.n_ctx, opt.max_ctx);
  }
  if (opt.n_batch == 0) return Status::invalid_argument("n_batch must be positive");
  if (opt.max_logit_rows == 0) return Status::invalid_argument("max_logit_rows must be positive");
  Session s;
  s.opt_ = opt;
  s.opt_.n_batch = std::min(opt.n_batch, opt.n_ctx);
  s.opt_.max_logit_rows = std::min(opt.max_logit_rows, opt.n_ctx);
  s.pool_ = &pool;
  const HParams& hp = model->hparams();
  ZTSLM_ASSIGN_OR_RETURN(s.kv_, KvCache::create(opt.kv_type, hp.n_head_kv_arr, hp.n_embd_head,
                                                opt.n_ctx, opt.max_kv_bytes));
  ZTSLM_ASSIGN_OR_RETURN(s.scratch_, ForwardScratch::create(*model, s.opt_.n_batch, opt.n_ctx,
                                                            pool.size(), opt.max_scratch_bytes));
  size_t logit_bytes = 0;
  if (!checked_mul<size_t>(size_t{s.opt_.max_logit_rows} * hp.n_vocab, sizeof(float),
                           &logit_bytes) ||
      logit_bytes > opt.max_scratch_bytes - std::min(opt.max_scratch_bytes, s.scratch_.bytes())) {
    return Status::resource_exhausted("logits for {} rows exceed the scratch limit of {} bytes",
                                      s.opt_.max_logit_rows, opt.max_scratch_bytes);
  }
  s.logits_ = kv::AlignedBuffer(logit_bytes);
  s.history_ = kv::AlignedBuffer(size_t{opt.n_ctx} * sizeof(int32_t));
  s.model_ = std::move(model);
  return s;
}

Session::~Session() {
  if (model_ == nullptr) return;  // moved from
  wipe();
  if (auto* hook = g_release_hook.load(std::memory_order_acquire)) hook(*this);
}

void Session::set_release_hook_for_test(void (*hook)(const Session&)) {
  g_release_hook.store(hook, std::memory_order_release);
}

void Session::wipe() {
  kv_.clear();
  scratch_.wipe();
  history_.wipe();
  logits_.wipe();
  n_past_ = 0;
  last_dropped_ = 0;
}

void Session::reset() { wipe(); }

bool Session::is_zeroed_for_test() const {
  return kv_.is_zero_for_test() && scratch_.is_zero_for_test() && history_.is_zero() &&
         logits_.is_zero() && n_past_ == 0;
}

Result<std::span<const float>> Session::decode(std::span<const int32_t> tokens, bool all_logits) {
  if (tokens.empty()) return Status::invalid_argument("decode of an empty token list");
  const int64_t n_vocab = model_->n_vocab();
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= n_vocab) {
      return Status::invalid_argument("token id {} at index {} outside [0, {})", tokens[i], i,
                                      n_vocab);
    }
  }
  uint32_t dropped = 0;
  const size_t room = opt_.n_ctx - n_past_;
  if (tokens.size() > room) {
    if (!opt_.truncate_prompt || room == 0) {
      return Status::out_of_range("{} tokens after {} in the context exceed n_ctx {}",
                                  tokens.size(), n_past_, opt_.n_ctx);
    }
    dropped = static_cast<uint32_t>(tokens.size() - room);
    tokens = tokens.last(room);
  }
  const uint32_t n = static_cast<uint32_t>(tokens.size());
  const uint32_t n_out = all_logits ? n : 1;
  if (n_out > opt_.max_logit_rows) {
    return Status::invalid_argument("{} logit rows requested, max_logit_rows is {}", n_out,
                                    opt_.max_logit_rows);
  }
  float* logits = logits_.as<float>();
  for (uint32_t done = 0; done < n;) {
    const uint32_t chunk = std::min(opt_.n_batch, n - done);
    float* out = all_logits ? logits + size_t{done} * n_vocab : logits;
    forward(*model_, kv_, scratch_, *pool_, tokens.data() + done, chunk, n_past_ + done,
            all_logits, out);
    done += chunk;
  }
  std::copy(tokens.begin(), tokens.end(), history_.as<int32_t>() + n_past_);
  n_past_ += n;
  last_dropped_ = dropped;
  return std::span<const float>(logits, size_t{n_out} * n_vocab);
}

Status Session::truncate(uint32_t n_keep) {
  if (n_keep > n_past_) {
    return Status::out_of_range("cannot keep {} tokens of a history of {}", n_keep, n_past_);
  }
  // Only cells [0, n_past) were ever written (decode stores at n_past onwards and validates
  // before it writes; reset and truncate wipe what they drop), so those past n_past are zero
  // already: wiping the whole tail again would cost a full pass over the cache per turn.
  kv_.clear_cells(n_keep, n_past_);
  secure_zero(history_.as<int32_t>() + n_keep, size_t{n_past_ - n_keep} * sizeof(int32_t));
  n_past_ = n_keep;
  return Status();
}

uint32_t Session::common_prefix(std::span<const int32_t> tokens) const {
  const uint32_t n = static_cast<uint32_t>(std::min<size_t>(tokens.size(), n_past_));
  const int32_t* h = history_.as<int32_t>();
  uint32_t i = 0;
  while (i < n && h[i] == tokens[i]) ++i;
  return i;
}

}  // namespace ztslm::engine
