// Backend: where the model runs, behind the pipeline. The gateway never loads or parses model
// bytes (STYLE.md §2); an implementation lives outside server/ (the in-process engine in cli/,
// later the sandboxed worker or an upstream OpenAI-compatible server).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ztslm::server {

// Per-request sampling, already validated by the OpenAI parser.
struct SamplingOptions {
  float temperature = 1.0f;
  float top_p = 1.0f;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  uint32_t max_tokens = 256;
  std::vector<std::string> stop;
  bool has_seed = false;
  uint32_t seed = 0;
};

struct Message {
  std::string role;     // "system", "user", "assistant"
  std::string content;  // valid UTF-8 (untrusted text: never parsed as control tokens)
};

// A backend-side conversation state (a KV cache). Owned by the gateway's session store; its
// destructor releases and wipes the state. Used by one request at a time.
class BackendSession {
 public:
  virtual ~BackendSession() = default;
  // Bytes of memory this state holds (KV cache, history); the session store's byte bound
  // counts it. Fixed for the session's life.
  virtual size_t memory_bytes() const { return 0; }
};

struct GenerateRequest {
  bool is_chat = true;
  std::vector<Message> messages;  // chat
  std::string prompt;             // completion
  SamplingOptions sampling;
  BackendSession* session = nullptr;  // nullptr: a fresh context, wiped after the request
  std::string tenant;                 // the principal's tenant (per-tenant worker isolation)
};

struct GenerateResult {
  uint32_t prompt_tokens = 0;
  uint32_t cached_tokens = 0;  // prompt tokens whose KV came from the session
  uint32_t completion_tokens = 0;
  std::string finish_reason;   // "stop" or "length"
  double model_ms = 0;         // time spent in the model (prefill + decode)
  double first_token_ms = 0;   // from the call to the first text piece
};

// The served model and its provenance, as the loader established it before the first request.
struct ModelInfo {
  std::string id;
  uint32_t n_ctx = 0;
  int64_t created_unix = 0;
  std::string digest;     // "sha256:<hex>" of the bytes the engine executes; "" when not known
  std::string signer;     // trusted publisher whose signature verified, or "unverified"
  bool verified = false;  // true only when the signature and the digest both checked out
};

// Receives each piece of generated text (whole UTF-8 characters). Returning false cancels the
// generation (client gone or the output filter stopped it).
using TokenCallback = std::function<bool(std::string_view text)>;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual ModelInfo model_info() const = 0;
  // Runs one generation, calling `on_text` as text becomes final. kInvalidArgument/kOutOfRange
  // for a request the model cannot take (prompt longer than the context), kCancelled when the
  // callback cancelled, kUnavailable when the backend cannot serve now.
  virtual Result<GenerateResult> generate(const GenerateRequest& req, const TokenCallback& on_text) = 0;
  // A new empty conversation state.
  virtual Result<std::unique_ptr<BackendSession>> create_session() = 0;
};

}  // namespace ztslm::server
