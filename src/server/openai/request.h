// OpenAI request bodies (untrusted JSON) → validated requests.
//
// Accepted grammar (JSON per RFC 8259, UTF-8 validated by simdjson; duplicate keys rejected):
//   chat:       {model, messages, max_tokens | max_completion_tokens, temperature, top_p, stop,
//                seed, stream, stream_options{include_usage}, user, n (= 1 only),
//                frequency_penalty, presence_penalty}
//               messages: [{role: system|developer|user|assistant|tool,
//                           content: string | [{type: "text", text: string}]}]
//               documents (a ztslm extension): [string | {text: string}], untrusted reference
//                           text (retrieved documents) that the input guard scans as indirect
//                           input and the gateway spotlights before the model sees it
//   completion: {model, prompt (string or one-element array), same sampling fields}
// Any other field (tools, tool_choice, functions, logprobs, n > 1, ...) is kInvalidArgument
// naming the field: nothing is silently ignored. A null value counts as absent.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "server/backend.h"

namespace ztslm::server::openai {

struct ParseLimits {
  size_t max_body_bytes = 1 << 20;     // the HTTP layer enforces it first (413)
  uint32_t max_depth = 16;             // the accepted grammar nests 5 deep
  uint32_t max_messages = 256;
  size_t max_message_bytes = 256 * 1024;
  uint32_t max_stop_strings = 4;       // OpenAI's bound
  size_t max_stop_bytes = 256;
  uint32_t max_tokens = 4096;          // cap on max_tokens
  size_t max_name_bytes = 256;         // model, user
};

struct ApiRequest {
  bool is_chat = true;
  std::string model;
  std::vector<Message> messages;
  std::vector<std::string> documents;  // chat only; at most max_messages, each max_message_bytes
  std::string prompt;
  SamplingOptions sampling;
  bool max_tokens_given = false;
  bool stream = false;
  bool include_usage = false;
  std::string user;
};

// kMalformed for a body that is not JSON (or not UTF-8, or nests past max_depth),
// kInvalidArgument for a well-formed body that breaks the grammar or a range,
// kResourceExhausted past a size limit.
Result<ApiRequest> parse_chat_request(std::string_view body, const ParseLimits& limits);
Result<ApiRequest> parse_completion_request(std::string_view body, const ParseLimits& limits);

}  // namespace ztslm::server::openai
