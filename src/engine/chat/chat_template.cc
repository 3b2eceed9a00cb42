#include "engine/chat/chat_template.h"

#include <array>

#include "core/utf8.h"

namespace ztslm::engine {
namespace {

struct NamedFormat {
  std::string_view name;
  ChatFormat format;
};

constexpr std::array<NamedFormat, 16> kFormats = {{
    {"chatml", ChatFormat::kChatml},
    {"llama3", ChatFormat::kLlama3},
    {"llama2", ChatFormat::kLlama2},
    {"llama2-sys", ChatFormat::kLlama2Sys},
    {"llama2-sys-bos", ChatFormat::kLlama2SysBos},
    {"llama2-sys-strip", ChatFormat::kLlama2SysStrip},
    {"mistral-v1", ChatFormat::kMistralV1},
    {"mistral-v3", ChatFormat::kMistralV3},
    {"mistral-v3-tekken", ChatFormat::kMistralV3Tekken},
    {"mistral-v7", ChatFormat::kMistralV7},
    {"mistral-v7-tekken", ChatFormat::kMistralV7Tekken},
    {"phi3", ChatFormat::kPhi3},
    {"phi4", ChatFormat::kPhi4},
    {"zephyr", ChatFormat::kZephyr},
    {"gemma", ChatFormat::kGemma},
    {"smolvlm", ChatFormat::kSmolVlm},
}};

// Families §6.1 recognises (by name or by markers) that this engine does not render.
constexpr std::array<std::string_view, 28> kUnsupportedNames = {
    "falcon3",  "monarch",   "orion",       "openchat",   "vicuna",      "vicuna-orca",
    "deepseek", "deepseek2", "deepseek3",   "command-r",  "chatglm3",    "chatglm4",
    "glmedge",  "minicpm",   "exaone3",     "exaone4",    "exaone-moe",  "rwkv-world",
    "granite",  "gigachat",  "megrez",      "yandex",     "bailing",     "llama4",
    "hunyuan-moe", "hunyuan-dense", "kimi-k2", "dots1",
};

Status unsupported(std::string_view family) {
  return Status::failed_precondition(
      "unknown chat template: family {} is not supported, name a format explicitly", family);
}

// ASCII whitespace as C isspace: space, \t, \n, \v, \f, \r.
bool is_ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ascii_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ascii_space(s.back())) s.remove_suffix(1);
  return s;
}

// Appends markup and content, remembering where content went.
class Builder final {
 public:
  explicit Builder(size_t reserve) { out_.text.reserve(reserve); }
  void markup(std::string_view s) { out_.text.append(s); }
  void content(std::string_view s) {
    if (s.empty()) return;
    const size_t begin = out_.text.size();
    out_.text.append(s);
    out_.content_spans.emplace_back(begin, out_.text.size());
  }
  ChatPrompt take() { return std::move(out_); }

 private:
  ChatPrompt out_;
};

enum RoleBits : unsigned { kSystem = 1, kUser = 2, kAssistant = 4, kTool = 8 };

unsigned role_bit(std::string_view role) {
  if (role == "system") return kSystem;
  if (role == "user") return kUser;
  if (role == "assistant") return kAssistant;
  if (role == "tool") return kTool;
  return 0;
}

// Roles each format can express. Formats that print the role string accept "tool" too; the
// [INST] families and gemma have no place for it.
unsigned allowed_roles(ChatFormat f) {
  switch (f) {
    case ChatFormat::kChatml:
    case ChatFormat::kLlama3:
    case ChatFormat::kPhi3:
    case ChatFormat::kPhi4:
    case ChatFormat::kZephyr:
      return kSystem | kUser | kAssistant | kTool;
    default:
      return kSystem | kUser | kAssistant;
  }
}

// Upper bound of the markup one message adds in any format (the longest is llama2-sys's
// "<s>[INST] <<SYS>>\n...\n<</SYS>>\n\n", well under this).
constexpr size_t kMarkupPerMessage = 64;

void render_llama2(ChatFormat f, std::span<const ChatMessage> messages, Builder& b) {
  const bool has_sys = f != ChatFormat::kLlama2;
  const bool bos_inside = f == ChatFormat::kLlama2SysBos;
  const bool strip = f == ChatFormat::kLlama2SysStrip;
  bool inside_turn = true;  // the first [INST] is written up front; BOS comes from tokenize
  b.markup("[INST] ");
  for (const ChatMessage& m : messages) {
    const std::string_view c = strip ? trim(m.content) : m.content;
    if (!inside_turn) {
      inside_turn = true;
      b.markup(bos_inside ? "<s>[INST] " : "[INST] ");
    }
    if (m.role == "system") {
      if (has_sys) {
        b.markup("<<SYS>>\n");
        b.content(c);
        b.markup("\n<</SYS>>\n\n");
      } else {
        b.content(c);
        b.markup("\n");
      }
    } else if (m.role == "user") {
      b.content(c);
      b.markup(" [/INST]");
    } else {  // assistant
      b.content(c);
      b.markup("</s>");
      inside_turn = false;
    }
  }
}

void render_mistral_v1_v3(ChatFormat f, std::span<const ChatMessage> messages, Builder& b) {
  const std::string_view lead = f == ChatFormat::kMistralV1 ? " " : "";
  const std::string_view trail = f == ChatFormat::kMistralV3Tekken ? "" : " ";
  const bool trim_assistant = f == ChatFormat::kMistralV3;
  bool inside_turn = false;
  for (const ChatMessage& m : messages) {
    if (!inside_turn) {
      b.markup(lead);
      b.markup("[INST]");
      b.markup(trail);
      inside_turn = true;
    }
    if (m.role == "system") {
      b.content(m.content);
      b.markup("\n\n");
    } else if (m.role == "user") {
      b.content(m.content);
      b.markup(lead);
      b.markup("[/INST]");
    } else {  // assistant closes the turn
      b.markup(trail);
      b.content(trim_assistant ? trim(m.content) : m.content);
      b.markup("</s>");
      inside_turn = false;
    }
  }
}

void render_mistral_v7(ChatFormat f, std::span<const ChatMessage> messages, Builder& b) {
  const std::string_view sp = f == ChatFormat::kMistralV7 ? " " : "";
  for (const ChatMessage& m : messages) {
    if (m.role == "system") {
      b.markup("[SYSTEM_PROMPT]");
      b.markup(sp);
      b.content(m.content);
      b.markup("[/SYSTEM_PROMPT]");
    } else if (m.role == "user") {
      b.markup("[INST]");
      b.markup(sp);
      b.content(m.content);
      b.markup("[/INST]");
    } else {
      b.markup(sp);
      b.content(m.content);
      b.markup("</s>");
    }
  }
}

void render_gemma(std::span<const ChatMessage> messages, bool add_gen, Builder& b) {
  // System text has no turn of its own: it is held and written at the top of the next
  // non-model turn. Several system messages are concatenated (trimmed, no separator).
  std::vector<std::string_view> pending;
  for (const ChatMessage& m : messages) {
    if (m.role == "system") {
      pending.push_back(trim(m.content));
      continue;
    }
    const bool is_model = m.role == "assistant";
    b.markup("<start_of_turn>");
    b.markup(is_model ? std::string_view("model") : m.role);
    b.markup("\n");
    bool any_pending = false;
    for (std::string_view p : pending) any_pending = any_pending || !p.empty();
    if (any_pending && !is_model) {
      for (std::string_view p : pending) b.content(p);
      b.markup("\n\n");
      pending.clear();
    }
    b.content(trim(m.content));
    b.markup("<end_of_turn>\n");
  }
  if (add_gen) b.markup("<start_of_turn>model\n");
}

void render_role_line(std::span<const ChatMessage> messages, std::string_view open,
                      std::string_view after_role, std::string_view close, bool trim_content,
                      Builder& b) {
  for (const ChatMessage& m : messages) {
    b.markup(open);
    b.markup(m.role);
    b.markup(after_role);
    b.content(trim_content ? trim(m.content) : m.content);
    b.markup(close);
  }
}

void render_smolvlm(std::span<const ChatMessage> messages, bool add_gen, Builder& b) {
  b.markup("<|im_start|>");  // its BOS; the rest is not ChatML
  for (const ChatMessage& m : messages) {
    if (m.role == "system") {
      b.content(m.content);
      b.markup("\n\n");
    } else if (m.role == "user") {
      b.markup("User: ");
      b.content(m.content);
      b.markup("<end_of_utterance>\n");
    } else {
      b.markup("Assistant: ");
      b.content(m.content);
      b.markup("<end_of_utterance>\n");
    }
  }
  if (add_gen) b.markup("Assistant:");
}

}  // namespace

std::string_view chat_format_name(ChatFormat format) {
  for (const NamedFormat& nf : kFormats) {
    if (nf.format == format) return nf.name;
  }
  return "unknown";
}

Result<ChatFormat> detect_chat_format(std::string_view t) {
  // 1. An exact name.
  for (const NamedFormat& nf : kFormats) {
    if (t == nf.name) return nf.format;
  }
  for (std::string_view name : kUnsupportedNames) {
    if (t == name) return unsupported(name);
  }
  auto has = [t](std::string_view needle) { return t.find(needle) != std::string_view::npos; };

  // 2. ChatML and its look-alikes.
  if (has("<|im_start|>")) {
    if (has("<|im_sep|>")) return ChatFormat::kPhi4;
    if (has("<end_of_utterance>")) return ChatFormat::kSmolVlm;
    return ChatFormat::kChatml;
  }
  // 3. Mistral and Llama 2.
  if (t.starts_with("mistral") || has("[INST]")) {
    if (has("[SYSTEM_PROMPT]")) return ChatFormat::kMistralV7;
    if (has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]")) {
      if (has(" [INST]")) return ChatFormat::kMistralV1;
      if (has("\"[INST]\"")) return ChatFormat::kMistralV3Tekken;
      return ChatFormat::kMistralV3;
    }
    if (has("content.strip()")) return ChatFormat::kLlama2SysStrip;
    if (has("bos_token + '[INST]")) return ChatFormat::kLlama2SysBos;
    if (has("<<SYS>>")) return ChatFormat::kLlama2Sys;
    return ChatFormat::kLlama2;
  }
  // 4. Phi-3.
  if (has("<|assistant|>") && has("<|end|>")) return ChatFormat::kPhi3;
  // 5. GLM and Falcon 3 (not rendered here) take <|assistant|>/<|user|> templates before
  // zephyr is considered.
  if (has("[gMASK]<sop>")) return unsupported("chatglm4");
  if (has("<|assistant|>") && has("<|user|>")) {
    return unsupported(has("</s>") ? "falcon3" : "glmedge");
  }
  if (has("<|{{ item['role'] }}|>") && has("<|begin_of_image|>")) return unsupported("glmedge");
  // 6. Zephyr.
  if (has("<|user|>") && has("<|endoftext|>")) return ChatFormat::kZephyr;
  // 7. Monarch, then Gemma.
  if (has("bos_token + message['role']")) return unsupported("monarch");
  if (has("<start_of_turn>")) return ChatFormat::kGemma;
  // 8. Orion, OpenChat, Vicuna, DeepSeek, Command-R, then Llama 3.
  if (has("'\\n\\nAssistant: ' + eos_token")) return unsupported("orion");
  if (has("GPT4 Correct ")) return unsupported("openchat");
  if (has("USER: ") && has("ASSISTANT: ")) return unsupported("vicuna");
  if (has("### Instruction:") && has("<|EOT|>")) return unsupported("deepseek");
  if (has("<|START_OF_TURN_TOKEN|>") && has("<|USER_TOKEN|>")) return unsupported("command-r");
  if (has("<|start_header_id|>") && has("<|end_header_id|>")) return ChatFormat::kLlama3;
  // 9. Nothing matched.
  return Status::failed_precondition("unknown chat template, name a format explicitly");
}

Result<ChatPrompt> render_chat(ChatFormat format, std::span<const ChatMessage> messages,
                               bool add_generation_prompt, const ChatLimits& limits) {
  if (messages.size() > limits.max_messages) {
    return Status::resource_exhausted("chat has {} messages, limit {}", messages.size(),
                                      limits.max_messages);
  }
  const unsigned allowed = allowed_roles(format);
  size_t bound = kMarkupPerMessage;  // generation prompt and leading markup
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if ((role_bit(m.role) & allowed) == 0) {
      return Status::invalid_argument("chat message {} has role '{}', which format {} does not support",
                                      i, printable(m.role, 32), chat_format_name(format));
    }
    // Each term is bounded by the caller's memory, so the sum cannot wrap; compare as we go.
    bound += m.content.size() + m.role.size() + kMarkupPerMessage;
    if (bound > limits.max_output_bytes) {
      return Status::resource_exhausted("chat prompt exceeds {} bytes", limits.max_output_bytes);
    }
  }

  Builder b(bound);
  switch (format) {
    case ChatFormat::kChatml:
      render_role_line(messages, "<|im_start|>", "\n", "<|im_end|>\n", false, b);
      if (add_generation_prompt) b.markup("<|im_start|>assistant\n");
      break;
    case ChatFormat::kLlama3:
      render_role_line(messages, "<|start_header_id|>", "<|end_header_id|>\n\n", "<|eot_id|>",
                       true, b);
      if (add_generation_prompt) b.markup("<|start_header_id|>assistant<|end_header_id|>\n\n");
      break;
    case ChatFormat::kPhi3:
      render_role_line(messages, "<|", "|>\n", "<|end|>\n", false, b);
      if (add_generation_prompt) b.markup("<|assistant|>\n");
      break;
    case ChatFormat::kPhi4:
      render_role_line(messages, "<|im_start|>", "<|im_sep|>", "<|im_end|>", false, b);
      if (add_generation_prompt) b.markup("<|im_start|>assistant<|im_sep|>");
      break;
    case ChatFormat::kZephyr:
      render_role_line(messages, "<|", "|>\n", "<|endoftext|>\n", false, b);
      if (add_generation_prompt) b.markup("<|assistant|>\n");
      break;
    case ChatFormat::kGemma:
      render_gemma(messages, add_generation_prompt, b);
      break;
    case ChatFormat::kLlama2:
    case ChatFormat::kLlama2Sys:
    case ChatFormat::kLlama2SysBos:
    case ChatFormat::kLlama2SysStrip:
      render_llama2(format, messages, b);  // no generation suffix
      break;
    case ChatFormat::kMistralV1:
    case ChatFormat::kMistralV3:
    case ChatFormat::kMistralV3Tekken:
      render_mistral_v1_v3(format, messages, b);
      break;
    case ChatFormat::kMistralV7:
    case ChatFormat::kMistralV7Tekken:
      render_mistral_v7(format, messages, b);
      break;
    case ChatFormat::kSmolVlm:
      render_smolvlm(messages, add_generation_prompt, b);
      break;
  }
  return b.take();
}

Result<std::string> apply_chat_template(ChatFormat format, std::span<const ChatMessage> messages,
                                        bool add_generation_prompt, const ChatLimits& limits) {
  ZTSLM_ASSIGN_OR_RETURN(ChatPrompt p, render_chat(format, messages, add_generation_prompt, limits));
  return std::move(p.text);
}

}  // namespace ztslm::engine
