#include "cli/inprocess_backend.h"

#include <chrono>
#include <filesystem>

#include "engine/chat_prompt.h"
#include "engine/sampler/sampler.h"
#include "engine/sampler/stop_matcher.h"
#include "engine/session.h"
#include "engine/tokenizer/tokenizer.h"

namespace ztslm::cli {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

class EngineSession final : public server::BackendSession {
 public:
  explicit EngineSession(engine::Session s) : session(std::move(s)) {}
  size_t memory_bytes() const override { return session.kv_bytes(); }
  engine::Session session;  // its destructor wipes the KV cache and history
};

}  // namespace

Result<std::unique_ptr<InProcessBackend>> InProcessBackend::create(const InProcessBackendOptions& opt) {
  ZTSLM_ASSIGN_OR_RETURN(LoadedModel lm,
                         opt.model_fd >= 0 ? load_model_fd(opt.model_fd, opt.model_path) : load_model(opt.model_path));
  std::unique_ptr<InProcessBackend> b(new InProcessBackend(std::move(lm), opt.threads > 0 ? opt.threads : default_threads()));
  std::string fmt = opt.chat_format;
  if (fmt.empty()) {
    auto t = b->lm_.model->gguf().metadata.get_string("tokenizer.chat_template");
    fmt = t.has_value() ? std::string(*t) : "chatml";
  }
  auto f = engine::detect_chat_format(fmt);
  if (!f.has_value()) {
    if (!opt.chat_format.empty()) return f.error();
    f = engine::ChatFormat::kChatml;  // a template this engine does not render: fall back
  }
  b->format_ = *f;
  const uint32_t train = b->lm_.model->hparams().n_ctx_train;
  b->n_ctx_ = std::max<uint32_t>(16, std::min(opt.n_ctx, train > 0 ? train : opt.n_ctx));
  b->info_.id = opt.model_id.empty() ? std::filesystem::path(opt.model_path).stem().string() : opt.model_id;
  b->info_.n_ctx = b->n_ctx_;
  b->info_.digest = opt.provenance.digest;
  b->info_.signer = opt.provenance.signer;
  b->info_.verified = opt.provenance.verified;
  b->info_.created_unix = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch()).count();
  return b;
}

Result<std::unique_ptr<server::BackendSession>> InProcessBackend::create_session() {
  engine::SessionOptions so;
  so.n_ctx = n_ctx_;
  ZTSLM_ASSIGN_OR_RETURN(engine::Session s, engine::Session::create(lm_.model, pool_, so));
  return std::unique_ptr<server::BackendSession>(new EngineSession(std::move(s)));
}

Result<std::vector<int32_t>> InProcessBackend::build_prompt(const server::GenerateRequest& req,
                                                            size_t max_tokens) const {
  engine::tokenizer::Tokenizer tok(*lm_.vocab);
  if (!req.is_chat) {
    // SECURITY: the prompt is untrusted text: special-token text in it stays text.
    return tok.encode(req.prompt, /*add_special=*/true, /*parse_special=*/false, max_tokens);
  }
  std::vector<engine::ChatMessage> msgs;
  msgs.reserve(req.messages.size());
  for (const auto& m : req.messages) msgs.push_back({m.role, m.content});
  return engine::tokenize_chat(tok, format_, msgs, /*add_generation_prompt=*/true, max_tokens);
}

Result<server::GenerateResult> InProcessBackend::generate(const server::GenerateRequest& req,
                                                          const server::TokenCallback& on_text) {
  const auto t_call = Clock::now();
  auto prompt = build_prompt(req, n_ctx_);
  if (!prompt.has_value()) {
    if (prompt.error().code() == StatusCode::kResourceExhausted) {
      return Status::invalid_argument("the prompt does not fit the context of {} tokens", n_ctx_);
    }
    return Status::invalid_argument("the prompt cannot be rendered: {}", prompt.error().message());
  }
  if (prompt->empty()) return Status::invalid_argument("the prompt is empty");
  if (prompt->size() >= n_ctx_) {
    return Status::invalid_argument("prompt of {} tokens does not fit the context of {}", prompt->size(), n_ctx_);
  }

  engine::SamplerParams sp;
  sp.temperature = req.sampling.temperature;
  sp.top_p = req.sampling.top_p;
  sp.top_k = 0;  // OpenAI semantics: no top-k, no min-p
  sp.min_p = 0.0f;
  sp.frequency_penalty = req.sampling.frequency_penalty;
  sp.presence_penalty = req.sampling.presence_penalty;
  sp.seed = req.sampling.has_seed ? req.sampling.seed : engine::kRandomSeed;
  sp.max_tokens = req.sampling.max_tokens;
  sp.stop = req.sampling.stop;
  ZTSLM_ASSIGN_OR_RETURN(engine::Sampler sampler, engine::Sampler::create(sp, static_cast<int32_t>(lm_.model->n_vocab())));
  ZTSLM_ASSIGN_OR_RETURN(engine::StopMatcher stop, engine::StopMatcher::create(sp.stop));

  std::lock_guard<std::mutex> lock(mu_);
  std::optional<engine::Session> fresh;
  // However the request ends, its fresh session is wiped (reset) and kept as the spare.
  struct ReturnSpare {
    std::optional<engine::Session>& fresh;
    std::optional<engine::Session>& spare;
    ~ReturnSpare() {
      if (!fresh.has_value()) return;
      fresh->reset();
      if (!spare.has_value()) spare.emplace(std::move(*fresh));
      fresh.reset();
    }
  } return_spare{fresh, spare_};
  engine::Session* s = nullptr;
  uint32_t n_keep = 0;
  if (req.session != nullptr) {
    s = &static_cast<EngineSession*>(req.session)->session;
    n_keep = s->common_prefix(*prompt);
    // The last prompt token is always evaluated again: its logits start the generation.
    if (n_keep >= prompt->size()) n_keep = static_cast<uint32_t>(prompt->size()) - 1;
    ZTSLM_TRY(s->truncate(n_keep));
  } else if (spare_.has_value()) {
    fresh.emplace(std::move(*spare_));
    spare_.reset();
    s = &*fresh;
  } else {
    engine::SessionOptions so;
    so.n_ctx = n_ctx_;
    ZTSLM_ASSIGN_OR_RETURN(engine::Session created, engine::Session::create(lm_.model, pool_, so));
    fresh.emplace(std::move(created));
    s = &*fresh;
  }
  for (int32_t t : *prompt) sampler.accept(t);

  server::GenerateResult r;
  r.prompt_tokens = static_cast<uint32_t>(prompt->size());
  r.cached_tokens = n_keep;
  r.finish_reason = "length";
  const auto t_model = Clock::now();
  auto logits = s->decode(std::span<const int32_t>(prompt->data() + n_keep, prompt->size() - n_keep), false);
  if (!logits.has_value()) {
    s->reset();
    return logits.error();
  }
  engine::tokenizer::StreamingDetokenizer detok(*lm_.vocab, /*unparse_special=*/false);
  uint32_t n_gen = 0;
  bool cancelled = false;
  auto deliver = [&](const std::string& text) {
    if (text.empty() || cancelled) return;
    if (r.first_token_ms == 0) r.first_token_ms = ms_between(t_call, Clock::now());
    if (!on_text(text)) cancelled = true;
  };
  while (n_gen < sp.max_tokens) {
    auto tok = sampler.sample(*logits);
    if (!tok.has_value()) return tok.error();
    sampler.accept(*tok);
    ++n_gen;
    if (lm_.vocab->is_eog(*tok)) {
      r.finish_reason = "stop";
      break;
    }
    auto out = stop.feed(detok.push(*tok));
    deliver(out.text);
    if (out.stopped) {
      r.finish_reason = "stop";
      break;
    }
    if (cancelled || n_gen == sp.max_tokens || s->n_past() >= n_ctx_) break;
    const int32_t next = *tok;
    logits = s->decode(std::span<const int32_t>(&next, 1), false);
    if (!logits.has_value()) {
      s->reset();
      return logits.error();
    }
  }
  if (!stop.stopped() && !cancelled) deliver(stop.feed(detok.finish()).text + stop.finish());
  r.completion_tokens = n_gen;
  r.model_ms = ms_between(t_model, Clock::now());
  if (cancelled) return Status::cancelled("generation cancelled");
  return r;
}

}  // namespace ztslm::cli
