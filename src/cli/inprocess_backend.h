// The in-process engine behind server::Backend (DESIGN.md: "While the worker does not exist
// yet, cli/ may wire the engine in process behind the same backend interface"). Lives in cli/
// because only cli/ may use both engine/ and server/; the sandboxed worker backend replaces it
// without touching the pipeline.
//
// One Model shared read-only; one engine::Session per server session (KV reuse for the shared
// prefix via Session::common_prefix/truncate) and a fresh one per session-less request, wiped
// when destroyed. Generations run one at a time on one ThreadPool (ThreadPool::run is not
// re-entrant); the gateway's admission bounds how many wait.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "cli/engine_setup.h"
#include "core/result.h"
#include "engine/chat/chat_template.h"
#include "engine/session.h"
#include "engine/thread_pool.h"
#include "server/backend.h"

namespace ztslm::cli {

struct InProcessBackendOptions {
  // The model: `model_fd` >= 0 maps that fd (the sealed memfd of a verified model, see
  // cli/verified_model.h; the caller keeps owning it) and `model_path` only names it; otherwise
  // `model_path` is opened.
  int model_fd = -1;
  std::string model_path;
  // Provenance reported by model_info() (digest, signer, verified); the rest of it is ignored.
  server::ModelInfo provenance;
  std::string model_id;     // "" = file name without ".gguf"
  std::string chat_format;  // "" = from the model's template, else chatml
  uint32_t n_ctx = 2048;    // clamped to the model's training context
  int threads = 0;          // 0 = default_threads()
};

class InProcessBackend final : public server::Backend {
 public:
  // Loads the model (errors name the file) and resolves the chat format.
  static Result<std::unique_ptr<InProcessBackend>> create(const InProcessBackendOptions& opt);

  server::ModelInfo model_info() const override { return info_; }
  Result<server::GenerateResult> generate(const server::GenerateRequest& req,
                                          const server::TokenCallback& on_text) override;
  Result<std::unique_ptr<server::BackendSession>> create_session() override;

 private:
  InProcessBackend(LoadedModel lm, int threads) : lm_(std::move(lm)), pool_(threads) {}
  Result<std::vector<int32_t>> build_prompt(const server::GenerateRequest& req, size_t max_tokens) const;

  LoadedModel lm_;
  engine::ThreadPool pool_;
  engine::ChatFormat format_ = engine::ChatFormat::kChatml;
  uint32_t n_ctx_ = 0;
  server::ModelInfo info_;
  std::mutex mu_;  // one generation at a time on pool_
  // A session-less request's wiped session, kept for the next one (under mu_): a new one would
  // cost an allocation and a zeroing pass over a whole KV cache before the first token.
  std::optional<engine::Session> spare_;
};

}  // namespace ztslm::cli
