// OpenAI response bodies (chat.completion, text_completion, their stream chunks, model list),
// written with nlohmann::json (never hand-escaped). Model text that is not valid UTF-8 is
// replaced, never passed through.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "server/backend.h"

namespace ztslm::server::openai {

struct ResponseMeta {
  bool is_chat = true;
  std::string id;  // "chatcmpl-..." / "cmpl-..."
  int64_t created = 0;
  std::string model;
};

// The usage object: prompt/completion/total tokens and prompt_tokens_details.cached_tokens.
std::string usage_json(const GenerateResult& r);
// A whole non-streaming response.
std::string completion_json(const ResponseMeta& m, std::string_view text, const GenerateResult& r);
// One SSE "data:" line (with the blank line after it) for a streamed piece. `with_role` adds
// the assistant role (first chat chunk); `finish_reason` non-null ends the choice; `usage`
// non-null adds the usage object.
std::string chunk_sse(const ResponseMeta& m, std::string_view text, bool with_role, const char* finish_reason,
                      const GenerateResult* usage);
// The final usage-only chunk of stream_options.include_usage (empty choices).
std::string usage_chunk_sse(const ResponseMeta& m, const GenerateResult& r);
// GET /v1/models.
std::string models_json(const ModelInfo& info);

}  // namespace ztslm::server::openai
