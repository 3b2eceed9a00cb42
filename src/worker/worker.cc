#include "worker/worker.h"

#include <malloc.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/mapped_file.h"
#include "core/utf8.h"
#include "engine/chat_prompt.h"
#include "engine/model.h"
#include "engine/sampler/sampler.h"
#include "engine/sampler/stop_matcher.h"
#include "engine/session.h"
#include "engine/thread_pool.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/vocab.h"
#include "sandbox/memfd.h"
#include "worker/protocol/endpoint.h"
#include "worker/protocol/transport.h"

namespace ztslm::worker {
namespace {

namespace proto = protocol;
using Clock = std::chrono::steady_clock;

uint64_t us_since(Clock::time_point t0) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
}

void log_line(const char* what, const Status& s) {
  std::fprintf(stderr, "ztslm worker: %s: %s\n", what, s.to_string().c_str());
}

// Closes every descriptor above 2 except `keep`.
void close_inherited(int keep) {
  constexpr unsigned kMax = ~0u;
  if (keep > 3) ::syscall(SYS_close_range, 3u, static_cast<unsigned>(keep - 1), 0u);
  ::syscall(SYS_close_range, static_cast<unsigned>(keep < 3 ? 3 : keep + 1), kMax, 0u);
}

struct Loaded {
  std::shared_ptr<const engine::Model> model;
  std::unique_ptr<engine::tokenizer::Vocab> vocab;
  std::optional<engine::ChatFormat> chat_format;
};

Result<Loaded> load(const WorkerOptions& opt) {
  if (opt.require_sealed_model) ZTSLM_TRY(sandbox::require_sealed(opt.model_fd));
  ZTSLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::from_fd(opt.model_fd));
  Loaded l;
  ZTSLM_ASSIGN_OR_RETURN(l.model, engine::Model::load(std::move(file)));
  ZTSLM_ASSIGN_OR_RETURN(engine::tokenizer::Vocab vocab, engine::tokenizer::Vocab::from_metadata(l.model->gguf().metadata));
  if (vocab.n_tokens() != l.model->n_vocab()) {
    return Status::malformed("vocabulary has {} tokens but the model has {} logits", vocab.n_tokens(), l.model->n_vocab());
  }
  l.vocab = std::make_unique<engine::tokenizer::Vocab>(std::move(vocab));
  // The chat format: the configured one, else the model's template, else chatml (as the
  // in-process backend does, so both paths render a chat identically).
  std::string fmt = opt.chat_format;
  if (fmt.empty()) {
    auto tmpl = l.model->gguf().metadata.get_string("tokenizer.chat_template");
    fmt = tmpl.has_value() ? std::string(*tmpl) : std::string("chatml");
  }
  auto f = engine::detect_chat_format(fmt);
  if (!f.has_value() && !opt.chat_format.empty()) return f.error();
  l.chat_format = f.has_value() ? *f : engine::ChatFormat::kChatml;
  return l;
}

void send_startup_error(int fd, const Status& s, const proto::Limits& limits);

class Worker final {
 public:
  Worker(const WorkerOptions& opt, Loaded loaded, engine::ThreadPool& pool, std::string report)
      : opt_(opt), l_(std::move(loaded)), pool_(pool), report_(std::move(report)), ep_(opt.limits) {}

  int serve() {
    for (;;) {
      auto got = proto::recv_datagram(opt_.socket_fd, buf_, opt_.limits.max_frame_bytes, /*wait=*/true);
      if (!got.has_value()) return transport_end(got.error());
      auto frame = ep_.on_receive(**got);
      if (!frame.has_value()) return violation(frame.error());
      const int rc = handle(*frame);
      if (rc >= 0) return rc;
    }
  }

 private:
  int transport_end(const Status& s) {
    if (s.code() == StatusCode::kUnavailable) return kExitPeerClosed;
    log_line("transport", s);
    // An oversized datagram is the gateway's violation, anything else a socket failure.
    return s.code() == StatusCode::kResourceExhausted ? kExitViolation : kExitTransport;
  }
  int violation(const Status& s) {
    log_line("gateway protocol violation", s);
    return kExitViolation;
  }
  // Sends `f`; returns -1 on success, an exit code otherwise.
  int send(const proto::Frame& f) {
    auto bytes = ep_.on_send(f);
    if (!bytes.has_value()) {
      log_line("internal: refusing to send", bytes.error());
      return kExitTransport;
    }
    const Status s = proto::send_datagram(opt_.socket_fd, *bytes);
    if (!s.ok()) return transport_end(s);
    return -1;
  }

  // Handles one accepted frame outside a generation; -1 to go on, else the exit code.
  int handle(proto::Frame& f) {
    switch (proto::type_of(f)) {
      case proto::FrameType::kHello: {
        const auto& h = std::get<proto::Hello>(f);
        n_ctx_ = std::min({h.n_ctx, opt_.max_n_ctx, l_.model->hparams().n_ctx_train});
        max_sessions_ = std::min(h.max_sessions, opt_.max_sessions);
        // The first session is made now: its KV size is what Ready reports (every session
        // here has the same n_ctx), a worker that cannot hold one fails at start, not at the
        // first request, and that request finds it ready.
        auto first = new_session();
        if (!first.has_value()) {
          log_line("session", first.error());
          send_startup_error(opt_.socket_fd, first.error(), opt_.limits);
          return kExitStartup;
        }
        proto::Ready r;
        r.session_kv_bytes = first->kv_bytes();
        spare_.emplace(std::move(first).value());
        r.n_vocab = l_.model->n_vocab();
        r.n_ctx_train = l_.model->hparams().n_ctx_train;
        r.n_ctx = n_ctx_;
        r.max_sessions = max_sessions_;
        r.lockdown = report_.substr(0, opt_.limits.max_report_bytes);
        return send(r);
      }
      case proto::FrameType::kGenerate:
        return generate(std::get<proto::Generate>(f));
      case proto::FrameType::kPing:
        return send(proto::Pong{std::get<proto::Ping>(f).nonce});
      case proto::FrameType::kCloseSession:
        return close_session(std::get<proto::CloseSession>(f).session_id);
      case proto::FrameType::kCancel:
        return -1;  // the generation it names already ended
      default:
        return violation(Status::failed_precondition("unexpected frame"));
    }
  }

  Result<engine::Session> new_session() {
    engine::SessionOptions so;
    so.n_ctx = n_ctx_;
    return engine::Session::create(l_.model, pool_, so);
  }

  int close_session(uint64_t id) {
    auto it = sessions_.find(id);
    if (it != sessions_.end()) {
      // reset() wipes the KV cache, history, scratch and logits, as the destructor would; the
      // wiped session is kept as the spare, so the next new session id costs no allocation and
      // no zeroing pass over a whole cache before its first token.
      it->second.reset();
      if (!spare_.has_value()) spare_.emplace(std::move(it->second));
      sessions_.erase(it);
    }
    return send(proto::SessionClosed{id});
  }

  int fail_generation(uint64_t id, const Status& s) {
    proto::Error e;
    e.session_id = id;
    e.code = static_cast<uint8_t>(s.code());
    e.message = printable(s.message(), 200);
    return send(e);
  }

  Result<std::vector<int32_t>> prompt_tokens(const proto::Generate& g) {
    const size_t max = n_ctx_;
    switch (g.kind) {
      case proto::PromptKind::kText:
        // SECURITY: special-token text in a prompt stays text (no forged control tokens).
        return engine::tokenizer::tokenize(*l_.vocab, g.text, /*add_special=*/true, /*parse_special=*/false, max);
      case proto::PromptKind::kTokens:
        for (int32_t t : g.tokens) {
          if (t >= static_cast<int32_t>(l_.model->n_vocab())) return Status::invalid_argument("prompt token {} outside the vocabulary", t);
        }
        return g.tokens;
      case proto::PromptKind::kChat: {
        if (!l_.chat_format.has_value()) return Status::failed_precondition("the model has no usable chat template");
        std::vector<engine::ChatMessage> msgs;
        msgs.reserve(g.messages.size());
        for (const auto& m : g.messages) msgs.push_back({m.role, m.content});
        engine::tokenizer::Tokenizer tok(*l_.vocab);
        return engine::tokenize_chat(tok, *l_.chat_format, msgs, /*add_generation_prompt=*/true, max);
      }
    }
    return Status::invalid_argument("unknown prompt kind");
  }

  static engine::SamplerParams sampler_params(const proto::Sampling& s) {
    engine::SamplerParams p;
    p.temperature = s.temperature;
    p.top_k = s.top_k;
    p.top_p = s.top_p;
    p.min_p = s.min_p;
    p.repeat_penalty = s.repeat_penalty;
    p.frequency_penalty = s.frequency_penalty;
    p.presence_penalty = s.presence_penalty;
    p.penalty_last_n = s.penalty_last_n;
    p.seed = s.seed;
    if (p.seed == engine::kRandomSeed) {
      // std::random_device may need /dev/urandom, which the sandbox denies; getrandom is allowed.
      uint32_t seed = 0;
      while (::getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed)) {
      }
      p.seed = seed == engine::kRandomSeed ? 0 : seed;
    }
    p.max_tokens = s.max_tokens;
    p.stop = s.stop;
    for (const auto& b : s.logit_bias) p.logit_bias.push_back({b.token, b.bias});
    return p;
  }

  // Polls for frames that may arrive during a generation. Returns -1 to go on, an exit code, or
  // -2 when the generation was cancelled.
  int poll_during_generation(uint64_t id) {
    for (;;) {
      auto got = proto::recv_datagram(opt_.socket_fd, buf_, opt_.limits.max_frame_bytes, /*wait=*/false);
      if (!got.has_value()) return transport_end(got.error());
      if (!got->has_value()) return -1;
      auto frame = ep_.on_receive(**got);
      if (!frame.has_value()) return violation(frame.error());
      switch (proto::type_of(*frame)) {
        case proto::FrameType::kPing:
          if (const int rc = send(proto::Pong{std::get<proto::Ping>(*frame).nonce}); rc >= 0) return rc;
          break;
        case proto::FrameType::kCancel:
          if (std::get<proto::Cancel>(*frame).session_id == id) return -2;
          break;
        case proto::FrameType::kCloseSession:
          if (const int rc = close_session(std::get<proto::CloseSession>(*frame).session_id); rc >= 0) return rc;
          break;
        default:
          return violation(Status::failed_precondition("unexpected frame during generation"));
      }
    }
  }

  int generate(const proto::Generate& g) {
    const uint64_t id = g.session_id;
    auto it = sessions_.find(id);
    if (it == sessions_.end()) {
      if (sessions_.size() >= max_sessions_) {
        return fail_generation(id, Status::resource_exhausted("worker holds {} sessions, the limit", sessions_.size()));
      }
      if (spare_.has_value()) {
        it = sessions_.emplace(id, std::move(*spare_)).first;
        spare_.reset();
      } else {
        auto s = new_session();
        if (!s.has_value()) return fail_generation(id, s.error());
        it = sessions_.emplace(id, std::move(s).value()).first;
      }
    }
    engine::Session& session = it->second;
    auto prompt = prompt_tokens(g);
    if (!prompt.has_value()) return fail_generation(id, prompt.error());
    if (prompt->empty()) return fail_generation(id, Status::invalid_argument("the prompt is empty"));
    if (prompt->size() >= session.n_ctx()) {
      return fail_generation(id, Status::out_of_range("prompt of {} tokens does not fit the context of {}",
                                                      prompt->size(), session.n_ctx()));
    }
    auto sampler = engine::Sampler::create(sampler_params(g.sampling), static_cast<int32_t>(l_.model->n_vocab()));
    if (!sampler.has_value()) return fail_generation(id, sampler.error());
    auto stop = engine::StopMatcher::create(g.sampling.stop);
    if (!stop.has_value()) return fail_generation(id, stop.error());

    // Reuse the session's matching prefix; at least one token is evaluated for fresh logits.
    uint32_t n_keep = session.common_prefix(*prompt);
    if (n_keep >= prompt->size()) n_keep = static_cast<uint32_t>(prompt->size() - 1);
    if (Status s = session.truncate(n_keep); !s.ok()) return fail_generation(id, s);
    for (int32_t t : *prompt) sampler->accept(t);

    proto::GenerateEnd end;
    end.session_id = id;
    end.prompt_tokens = static_cast<uint32_t>(prompt->size());
    end.cached_tokens = n_keep;
    const auto t_prefill = Clock::now();
    auto logits = session.decode(std::span<const int32_t>(prompt->data() + n_keep, prompt->size() - n_keep), false);
    if (!logits.has_value()) return fail_generation(id, logits.error());
    end.prefill_us = us_since(t_prefill);

    engine::tokenizer::StreamingDetokenizer detok(*l_.vocab, /*unparse_special=*/false);
    const auto t_decode = Clock::now();
    end.finish = proto::FinishReason::kLength;
    uint32_t pending_tokens = 0;
    std::string pending_text;
    const auto flush = [&]() -> int {
      if (pending_text.empty() && pending_tokens == 0) return -1;
      proto::TokenChunk c{id, std::move(pending_text), pending_tokens};
      pending_text.clear();
      pending_tokens = 0;
      return send(c);
    };
    while (end.completion_tokens < g.sampling.max_tokens) {
      auto tok = sampler->sample(*logits);
      if (!tok.has_value()) return fail_generation(id, tok.error());
      sampler->accept(*tok);
      ++end.completion_tokens;
      ++pending_tokens;
      if (l_.vocab->is_eog(*tok)) {
        end.finish = proto::FinishReason::kStop;
        break;
      }
      auto out = stop->feed(detok.push(*tok));
      pending_text += out.text;
      if (out.stopped) {
        end.finish = proto::FinishReason::kStop;
        break;
      }
      if (!pending_text.empty()) {
        if (const int rc = flush(); rc >= 0) return rc;
      }
      if (const int rc = poll_during_generation(id); rc != -1) {
        if (rc != -2) return rc;
        end.finish = proto::FinishReason::kCancelled;
        break;
      }
      if (end.completion_tokens == g.sampling.max_tokens) break;
      if (session.n_past() >= session.n_ctx()) {
        end.finish = proto::FinishReason::kContextFull;
        break;
      }
      const int32_t next = *tok;
      logits = session.decode(std::span<const int32_t>(&next, 1), false);
      if (!logits.has_value()) return fail_generation(id, logits.error());
    }
    if (!stop->stopped() && end.finish != proto::FinishReason::kCancelled) {
      pending_text += stop->feed(detok.finish()).text;
      pending_text += stop->finish();
    }
    if (const int rc = flush(); rc >= 0) return rc;
    end.decode_us = us_since(t_decode);
    return send(end);
  }

  const WorkerOptions& opt_;
  Loaded l_;
  engine::ThreadPool& pool_;
  std::string report_;
  proto::WorkerEndpoint ep_;
  std::vector<std::byte> buf_;
  std::map<uint64_t, engine::Session> sessions_;
  std::optional<engine::Session> spare_;  // a closed session, wiped; reused for the next new id
  uint32_t n_ctx_ = 0;
  uint32_t max_sessions_ = 0;
};

// Best effort: tells the gateway why the worker is exiting before Ready.
void send_startup_error(int fd, const Status& s, const proto::Limits& limits) {
  proto::Error e;
  e.session_id = 0;
  e.code = static_cast<uint8_t>(s.code());
  e.message = printable(s.message(), 200);
  auto bytes = proto::encode(e, limits);
  if (bytes.has_value()) (void)proto::send_datagram(fd, *bytes);
}

}  // namespace

int run_worker(const WorkerOptions& opt) {
  // Per-request buffers (sampler, tokenizer scratch: a few hundred KiB for a large vocabulary)
  // sit above glibc's initial 128 KiB mmap threshold, so each request would map, fault in and
  // unmap fresh pages. glibc raises that threshold itself once a large mapped block is freed,
  // which a worker that keeps its sessions rarely does; fix it where that adjustment would end
  // (32 MiB, trimming past twice that) so those buffers are reused from the heap.
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 64 << 20);
  auto loaded = load(opt);
  if (!loaded.has_value()) {
    log_line("model", loaded.error());
    send_startup_error(opt.socket_fd, loaded.error(), opt.limits);
    return kExitStartup;
  }
  // The mapping keeps the pages; the fd itself is not needed any more.
  close_inherited(opt.socket_fd);
  auto report = sandbox::lock_down(opt.lockdown);
  if (!report.has_value()) {
    log_line("lock-down", report.error());
    send_startup_error(opt.socket_fd, report.error(), opt.limits);
    return kExitStartup;
  }
  engine::ThreadPool pool(opt.n_threads > 0 ? opt.n_threads : 1);
  Worker w(opt, std::move(loaded).value(), pool, report->to_string());
  return w.serve();
}

}  // namespace ztslm::worker
