#include "server/openai/response.h"

#include <nlohmann/json.hpp>

namespace ztslm::server::openai {
namespace {

using nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json usage_obj(const GenerateResult& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.completion_tokens},
          {"total_tokens", r.prompt_tokens + r.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", r.cached_tokens}}}};
}

json base(const ResponseMeta& m, bool chunk) {
  return {{"id", m.id},
          {"object", m.is_chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
          {"created", m.created},
          {"model", m.model},
          {"system_fingerprint", "ztslm"}};
}

}  // namespace

std::string usage_json(const GenerateResult& r) { return dump(usage_obj(r)); }

std::string completion_json(const ResponseMeta& m, std::string_view text, const GenerateResult& r) {
  json j = base(m, false);
  json choice = {{"index", 0}, {"finish_reason", r.finish_reason}, {"logprobs", nullptr}};
  if (m.is_chat) {
    choice["message"] = {{"role", "assistant"}, {"content", std::string(text)}, {"refusal", nullptr}};
  } else {
    choice["text"] = std::string(text);
  }
  j["choices"] = json::array({choice});
  j["usage"] = usage_obj(r);
  return dump(j);
}

std::string chunk_sse(const ResponseMeta& m, std::string_view text, bool with_role, const char* finish_reason,
                      const GenerateResult* usage) {
  json j = base(m, true);
  json choice = {{"index", 0}, {"logprobs", nullptr},
                 {"finish_reason", finish_reason != nullptr ? json(finish_reason) : json(nullptr)}};
  if (m.is_chat) {
    json delta = json::object();
    if (with_role) delta["role"] = "assistant";
    if (!text.empty() || with_role) delta["content"] = std::string(text);
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = std::string(text);
  }
  j["choices"] = json::array({choice});
  if (usage != nullptr) j["usage"] = usage_obj(*usage);
  return "data: " + dump(j) + "\n\n";
}

std::string usage_chunk_sse(const ResponseMeta& m, const GenerateResult& r) {
  json j = base(m, true);
  j["choices"] = json::array();
  j["usage"] = usage_obj(r);
  return "data: " + dump(j) + "\n\n";
}

std::string models_json(const ModelInfo& info) {
  // "ztslm" is an extension object: OpenAI clients ignore members they do not know.
  json j = {{"object", "list"},
            {"data", json::array({{{"id", info.id}, {"object", "model"}, {"created", info.created_unix},
                                   {"owned_by", "ztslm"},
                                   {"ztslm", {{"digest", info.digest}, {"signer", info.signer},
                                              {"verified", info.verified}}}}})}};
  return dump(j);
}

}  // namespace ztslm::server::openai
