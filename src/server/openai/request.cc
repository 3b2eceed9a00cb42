#include "server/openai/request.h"

#include <simdjson.h>

#include <cmath>
#include <memory>

#include "core/utf8.h"

namespace ztslm::server::openai {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// One parser per thread, sized once for the largest body (simdjson reuses its buffers).
Result<element> parse_json(std::string_view body, const ParseLimits& lim) {
  if (body.size() > lim.max_body_bytes) {
    return Status::resource_exhausted("request body of {} bytes exceeds limit {}", body.size(), lim.max_body_bytes);
  }
  thread_local std::unique_ptr<simdjson::dom::parser> parser;
  thread_local size_t capacity = 0, depth = 0;
  if (!parser || capacity < body.size() || depth != lim.max_depth) {
    parser = std::make_unique<simdjson::dom::parser>();
    const size_t want = std::max<size_t>(body.size(), 64 * 1024);
    if (parser->allocate(want, lim.max_depth) != simdjson::SUCCESS) {
      parser.reset();
      return Status::resource_exhausted("cannot allocate a json parser for {} bytes", want);
    }
    capacity = want;
    depth = lim.max_depth;
  }
  element doc;
  const auto err = parser->parse(body.data(), body.size(), /*realloc_if_needed=*/true).get(doc);
  if (err == simdjson::DEPTH_ERROR) return Status::malformed("request body nests deeper than {}", lim.max_depth);
  if (err == simdjson::UTF8_ERROR) return Status::malformed("request body is not valid UTF-8");
  if (err != simdjson::SUCCESS) return Status::malformed("request body is not valid JSON");
  return doc;
}

Status field_type(std::string_view key, const char* want) {
  return Status::invalid_argument("'{}' must be {}", printable(key, 48), want);
}

Result<std::string> get_string(element v, std::string_view key, size_t max_bytes) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) return field_type(key, "a string");
  if (s.size() > max_bytes) {
    return Status::resource_exhausted("'{}' of {} bytes exceeds limit {}", printable(key, 48), s.size(), max_bytes);
  }
  return std::string(s);
}

Result<double> get_number(element v, std::string_view key, double lo, double hi) {
  double d = 0;
  if (v.get_double().get(d) != simdjson::SUCCESS) return field_type(key, "a number");
  if (!(d >= lo && d <= hi)) return Status::invalid_argument("'{}' outside [{}, {}]", printable(key, 48), lo, hi);
  return d;
}

Result<int64_t> get_int(element v, std::string_view key) {
  int64_t i = 0;
  if (v.get_int64().get(i) == simdjson::SUCCESS) return i;
  uint64_t u = 0;
  if (v.get_uint64().get(u) == simdjson::SUCCESS) return static_cast<int64_t>(u & 0x7fffffffffffffffULL);
  return field_type(key, "an integer");
}

Result<bool> get_bool(element v, std::string_view key) {
  bool b = false;
  if (v.get_bool().get(b) != simdjson::SUCCESS) return field_type(key, "a boolean");
  return b;
}

Status unsupported(std::string_view key) {
  return Status::invalid_argument("unsupported field '{}'", printable(key, 48));
}

// Text of a message: a string, or an array of {"type":"text","text":...} parts.
Result<std::string> message_content(element v, const ParseLimits& lim) {
  if (v.type() == element_type::STRING) return get_string(v, "content", lim.max_message_bytes);
  simdjson::dom::array parts;
  if (v.get_array().get(parts) != simdjson::SUCCESS) return field_type("content", "a string or an array of text parts");
  std::string out;
  for (element part : parts) {
    simdjson::dom::object po;
    if (part.get_object().get(po) != simdjson::SUCCESS) return field_type("content[]", "an object");
    std::string_view type, text;
    bool has_text = false;
    for (auto f : po) {
      if (f.key == "type") {
        if (f.value.get_string().get(type) != simdjson::SUCCESS) return field_type("type", "a string");
      } else if (f.key == "text") {
        if (f.value.get_string().get(text) != simdjson::SUCCESS) return field_type("text", "a string");
        has_text = true;
      } else {
        return unsupported(f.key);
      }
    }
    if (type != "text" || !has_text) return Status::invalid_argument("only content parts of type 'text' are supported");
    if (out.size() + text.size() > lim.max_message_bytes) {
      return Status::resource_exhausted("message content exceeds limit {} bytes", lim.max_message_bytes);
    }
    out.append(text);
  }
  return out;
}

Result<std::vector<Message>> parse_messages(element v, const ParseLimits& lim) {
  simdjson::dom::array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS) return field_type("messages", "an array");
  const size_t n = arr.size();
  if (n == 0) return Status::invalid_argument("'messages' is empty");
  if (n > lim.max_messages) return Status::resource_exhausted("{} messages exceed limit {}", n, lim.max_messages);
  std::vector<Message> out;
  out.reserve(n);
  for (element m : arr) {
    simdjson::dom::object mo;
    if (m.get_object().get(mo) != simdjson::SUCCESS) return field_type("messages[]", "an object");
    Message msg;
    bool has_role = false, has_content = false;
    for (auto f : mo) {
      if (f.key == "role") {
        if (has_role) return Status::invalid_argument("duplicate field 'role'");
        ZTSLM_ASSIGN_OR_RETURN(msg.role, get_string(f.value, "role", 32));
        has_role = true;
      } else if (f.key == "content") {
        if (has_content) return Status::invalid_argument("duplicate field 'content'");
        ZTSLM_ASSIGN_OR_RETURN(msg.content, message_content(f.value, lim));
        has_content = true;
      } else {
        return unsupported(f.key);
      }
    }
    if (!has_role || !has_content) return Status::invalid_argument("each message needs 'role' and 'content'");
    if (msg.role == "developer") msg.role = "system";
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant" && msg.role != "tool") {
      return Status::invalid_argument("unsupported message role '{}'", printable(msg.role, 32));
    }
    out.push_back(std::move(msg));
  }
  return out;
}

Result<std::vector<std::string>> parse_documents(element v, const ParseLimits& lim) {
  simdjson::dom::array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS) return field_type("documents", "an array");
  if (arr.size() > lim.max_messages) {
    return Status::resource_exhausted("{} documents exceed limit {}", arr.size(), lim.max_messages);
  }
  std::vector<std::string> out;
  for (element d : arr) {
    if (d.type() == element_type::STRING) {
      ZTSLM_ASSIGN_OR_RETURN(std::string s, get_string(d, "documents[]", lim.max_message_bytes));
      out.push_back(std::move(s));
      continue;
    }
    simdjson::dom::object o;
    if (d.get_object().get(o) != simdjson::SUCCESS) return field_type("documents[]", "a string or an object");
    bool has_text = false;
    std::string text;
    for (auto f : o) {
      if (f.key != "text") return unsupported(f.key);
      if (has_text) return Status::invalid_argument("duplicate field 'text'");
      ZTSLM_ASSIGN_OR_RETURN(text, get_string(f.value, "text", lim.max_message_bytes));
      has_text = true;
    }
    if (!has_text) return Status::invalid_argument("each document needs 'text'");
    out.push_back(std::move(text));
  }
  return out;
}

Result<std::vector<std::string>> parse_stop(element v, const ParseLimits& lim) {
  std::vector<std::string> out;
  if (v.type() == element_type::STRING) {
    ZTSLM_ASSIGN_OR_RETURN(std::string s, get_string(v, "stop", lim.max_stop_bytes));
    if (!s.empty()) out.push_back(std::move(s));
    return out;
  }
  simdjson::dom::array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS) return field_type("stop", "a string or an array of strings");
  if (arr.size() > lim.max_stop_strings) {
    return Status::invalid_argument("'stop' has {} strings, at most {} allowed", arr.size(), lim.max_stop_strings);
  }
  for (element s : arr) {
    ZTSLM_ASSIGN_OR_RETURN(std::string str, get_string(s, "stop[]", lim.max_stop_bytes));
    if (str.empty()) return Status::invalid_argument("'stop' strings must not be empty");
    out.push_back(std::move(str));
  }
  return out;
}

enum Field : uint32_t {
  kModel = 1u << 0, kMessages = 1u << 1, kPrompt = 1u << 2, kMaxTokens = 1u << 3,
  kMaxCompletionTokens = 1u << 4, kTemperature = 1u << 5, kTopP = 1u << 6, kStop = 1u << 7,
  kSeed = 1u << 8, kStream = 1u << 9, kStreamOptions = 1u << 10, kUser = 1u << 11, kN = 1u << 12,
  kFrequency = 1u << 13, kPresence = 1u << 14, kDocuments = 1u << 15,
};

Result<ApiRequest> parse_request(std::string_view body, const ParseLimits& lim, bool is_chat) {
  ZTSLM_ASSIGN_OR_RETURN(element doc, parse_json(body, lim));
  simdjson::dom::object root;
  if (doc.get_object().get(root) != simdjson::SUCCESS) return Status::invalid_argument("request body must be a JSON object");
  ApiRequest r;
  r.is_chat = is_chat;
  uint32_t seen = 0;
  for (auto f : root) {
    const std::string_view key = f.key;
    const element v = f.value;
    uint32_t bit = 0;
    if (key == "model") bit = kModel;
    else if (key == "messages" && is_chat) bit = kMessages;
    else if (key == "prompt" && !is_chat) bit = kPrompt;
    else if (key == "max_tokens") bit = kMaxTokens;
    else if (key == "max_completion_tokens" && is_chat) bit = kMaxCompletionTokens;
    else if (key == "temperature") bit = kTemperature;
    else if (key == "top_p") bit = kTopP;
    else if (key == "stop") bit = kStop;
    else if (key == "seed") bit = kSeed;
    else if (key == "stream") bit = kStream;
    else if (key == "stream_options") bit = kStreamOptions;
    else if (key == "user") bit = kUser;
    else if (key == "n") bit = kN;
    else if (key == "frequency_penalty") bit = kFrequency;
    else if (key == "presence_penalty") bit = kPresence;
    else if (key == "documents" && is_chat) bit = kDocuments;
    else return unsupported(key);
    // SECURITY: a duplicate key could mean different things to us and to a policy or log reader.
    if (seen & bit) return Status::invalid_argument("duplicate field '{}'", printable(key, 48));
    seen |= bit;
    if (v.is_null() && bit != kModel && bit != kMessages && bit != kPrompt) continue;
    switch (bit) {
      case kModel: { ZTSLM_ASSIGN_OR_RETURN(r.model, get_string(v, key, lim.max_name_bytes)); break; }
      case kMessages: { ZTSLM_ASSIGN_OR_RETURN(r.messages, parse_messages(v, lim)); break; }
      case kDocuments: { ZTSLM_ASSIGN_OR_RETURN(r.documents, parse_documents(v, lim)); break; }
      case kPrompt: {
        if (v.type() == element_type::ARRAY) {
          simdjson::dom::array arr = v.get_array().value_unsafe();
          if (arr.size() != 1) return Status::invalid_argument("'prompt' must be a string (or an array of one string)");
          ZTSLM_ASSIGN_OR_RETURN(r.prompt, get_string(arr.at(0).value_unsafe(), "prompt", lim.max_message_bytes));
        } else {
          ZTSLM_ASSIGN_OR_RETURN(r.prompt, get_string(v, key, lim.max_message_bytes));
        }
        break;
      }
      case kMaxTokens:
      case kMaxCompletionTokens: {
        if (r.max_tokens_given) return Status::invalid_argument("give 'max_tokens' or 'max_completion_tokens', not both");
        ZTSLM_ASSIGN_OR_RETURN(int64_t n, get_int(v, key));
        if (n < 1 || n > static_cast<int64_t>(lim.max_tokens)) {
          return Status::invalid_argument("'{}' outside [1, {}]", key, lim.max_tokens);
        }
        r.sampling.max_tokens = static_cast<uint32_t>(n);
        r.max_tokens_given = true;
        break;
      }
      case kTemperature: { ZTSLM_ASSIGN_OR_RETURN(double d, get_number(v, key, 0.0, 2.0)); r.sampling.temperature = static_cast<float>(d); break; }
      case kTopP: {
        ZTSLM_ASSIGN_OR_RETURN(double d, get_number(v, key, 0.0, 1.0));
        if (!(static_cast<float>(d) > 0.0f)) return Status::invalid_argument("'top_p' outside (0, 1]");
        r.sampling.top_p = static_cast<float>(d);
        break;
      }
      case kFrequency: { ZTSLM_ASSIGN_OR_RETURN(double d, get_number(v, key, -2.0, 2.0)); r.sampling.frequency_penalty = static_cast<float>(d); break; }
      case kPresence: { ZTSLM_ASSIGN_OR_RETURN(double d, get_number(v, key, -2.0, 2.0)); r.sampling.presence_penalty = static_cast<float>(d); break; }
      case kStop: { ZTSLM_ASSIGN_OR_RETURN(r.sampling.stop, parse_stop(v, lim)); break; }
      case kSeed: {
        ZTSLM_ASSIGN_OR_RETURN(int64_t s, get_int(v, key));
        r.sampling.has_seed = true;
        // 0xFFFFFFFF means "random" to the engine: fold it so every given seed is reproducible.
        r.sampling.seed = static_cast<uint32_t>(static_cast<uint64_t>(s) % 0xFFFFFFFFull);
        break;
      }
      case kStream: { ZTSLM_ASSIGN_OR_RETURN(r.stream, get_bool(v, key)); break; }
      case kStreamOptions: {
        simdjson::dom::object so;
        if (v.get_object().get(so) != simdjson::SUCCESS) return field_type(key, "an object");
        for (auto g : so) {
          if (g.key != "include_usage") return unsupported(g.key);
          if (g.value.is_null()) continue;
          ZTSLM_ASSIGN_OR_RETURN(r.include_usage, get_bool(g.value, g.key));
        }
        break;
      }
      case kUser: { ZTSLM_ASSIGN_OR_RETURN(r.user, get_string(v, key, lim.max_name_bytes)); break; }
      case kN: {
        ZTSLM_ASSIGN_OR_RETURN(int64_t n, get_int(v, key));
        if (n != 1) return Status::invalid_argument("'n' must be 1 (several choices are not supported)");
        break;
      }
      default: return Status::internal("unhandled field");
    }
  }
  if (r.model.empty()) return Status::invalid_argument("'model' is required");
  if (is_chat && r.messages.empty()) return Status::invalid_argument("'messages' is required");
  if (!is_chat && !(seen & kPrompt)) return Status::invalid_argument("'prompt' is required");
  if ((seen & kStreamOptions) && !r.stream && r.include_usage) {
    return Status::invalid_argument("'stream_options' is only allowed with 'stream': true");
  }
  return r;
}

}  // namespace

Result<ApiRequest> parse_chat_request(std::string_view body, const ParseLimits& limits) {
  return parse_request(body, limits, /*is_chat=*/true);
}

Result<ApiRequest> parse_completion_request(std::string_view body, const ParseLimits& limits) {
  return parse_request(body, limits, /*is_chat=*/false);
}

}  // namespace ztslm::server::openai
