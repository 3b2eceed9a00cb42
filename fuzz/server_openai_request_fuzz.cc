// libFuzzer target for the OpenAI request parser (server/openai/request.h). Properties: the
// parser never crashes; an accepted request respects every limit; and re-serialising an
// accepted request and parsing it again gives the same request (canonical form is stable).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/check.h"
#include "server/openai/request.h"

namespace {

using ztslm::server::openai::ApiRequest;
using ztslm::server::openai::ParseLimits;

ParseLimits fuzz_limits() {
  ParseLimits l;
  l.max_body_bytes = 64 * 1024;
  l.max_messages = 16;
  l.max_message_bytes = 4096;
  l.max_tokens = 1000;
  return l;
}

std::string canonical(const ApiRequest& r) {
  nlohmann::json j;
  j["model"] = r.model;
  if (r.is_chat) {
    j["messages"] = nlohmann::json::array();
    for (const auto& m : r.messages) j["messages"].push_back({{"role", m.role}, {"content", m.content}});
  } else {
    j["prompt"] = r.prompt;
  }
  if (r.max_tokens_given) j["max_tokens"] = r.sampling.max_tokens;
  j["temperature"] = r.sampling.temperature;
  j["top_p"] = r.sampling.top_p;
  j["frequency_penalty"] = r.sampling.frequency_penalty;
  j["presence_penalty"] = r.sampling.presence_penalty;
  if (!r.sampling.stop.empty()) j["stop"] = r.sampling.stop;
  if (r.sampling.has_seed) j["seed"] = r.sampling.seed;
  j["stream"] = r.stream;
  if (r.stream) j["stream_options"] = {{"include_usage", r.include_usage}};
  if (!r.user.empty()) j["user"] = r.user;
  return j.dump();
}

void check_limits(const ApiRequest& r, const ParseLimits& l) {
  ZTSLM_CHECK(!r.model.empty() && r.model.size() <= l.max_name_bytes);
  ZTSLM_CHECK(r.messages.size() <= l.max_messages);
  for (const auto& m : r.messages) {
    ZTSLM_CHECK(m.content.size() <= l.max_message_bytes);
    ZTSLM_CHECK(m.role == "system" || m.role == "user" || m.role == "assistant");
  }
  ZTSLM_CHECK(r.sampling.stop.size() <= l.max_stop_strings);
  ZTSLM_CHECK(r.sampling.max_tokens >= 1 && (!r.max_tokens_given || r.sampling.max_tokens <= l.max_tokens));
  ZTSLM_CHECK(r.sampling.temperature >= 0.0f && r.sampling.temperature <= 2.0f);
  ZTSLM_CHECK(r.sampling.top_p > 0.0f && r.sampling.top_p <= 1.0f);
}

void same(const ApiRequest& a, const ApiRequest& b) {
  ZTSLM_CHECK(a.model == b.model && a.prompt == b.prompt && a.stream == b.stream && a.user == b.user);
  ZTSLM_CHECK(a.messages.size() == b.messages.size());
  for (size_t i = 0; i < a.messages.size(); ++i) {
    ZTSLM_CHECK(a.messages[i].role == b.messages[i].role && a.messages[i].content == b.messages[i].content);
  }
  ZTSLM_CHECK(a.sampling.stop == b.sampling.stop && a.sampling.max_tokens == b.sampling.max_tokens);
  ZTSLM_CHECK(a.sampling.has_seed == b.sampling.has_seed && a.sampling.seed == b.sampling.seed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ParseLimits lim = fuzz_limits();
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  for (bool chat : {true, false}) {
    auto r = chat ? ztslm::server::openai::parse_chat_request(body, lim)
                  : ztslm::server::openai::parse_completion_request(body, lim);
    if (!r.has_value()) continue;
    check_limits(*r, lim);
    const std::string again_text = canonical(*r);
    auto again = chat ? ztslm::server::openai::parse_chat_request(again_text, lim)
                      : ztslm::server::openai::parse_completion_request(again_text, lim);
    ZTSLM_CHECK(again.has_value());
    same(*r, *again);
  }
  return 0;
}
