// Built-in chat templates (spec/ENGINE.md §6): classifying a model's Jinja chat template (or a
// format name) into one of the hard-coded formats, and rendering a conversation with it. No
// Jinja is evaluated: the template text is only searched for marker substrings.
//
// The rendered prompt carries no BOS (that comes from tokenisation with add_special) and is
// meant to be tokenised with special-token parsing for the markup only: render_chat() reports
// which byte ranges are message content, so a caller can tokenise those with parse_special off.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace ztslm::engine {

enum class ChatFormat {
  kChatml,
  kLlama3,
  kLlama2,            // [INST] ... [/INST], no <<SYS>> block
  kLlama2Sys,         // with <<SYS>>
  kLlama2SysBos,      // with <<SYS>>, and <s> before each later [INST]
  kLlama2SysStrip,    // with <<SYS>>, every content trimmed
  kMistralV1,
  kMistralV3,
  kMistralV3Tekken,
  kMistralV7,
  kMistralV7Tekken,
  kPhi3,
  kPhi4,
  kZephyr,
  kGemma,
  kSmolVlm,
};

// The format's name as §6.1 spells it ("chatml", "mistral-v3-tekken", ...).
std::string_view chat_format_name(ChatFormat format);

// Classifies `template_or_name` by the rules of §6.1, in their order: an exact format name
// first, then marker substrings of the template text. A template of a family this engine does
// not render (chatglm, falcon3, monarch, vicuna, command-r, ...) or one that matches nothing
// is kFailedPrecondition ("unknown chat template"); the caller may then name a format.
Result<ChatFormat> detect_chat_format(std::string_view template_or_name);

// One message. Views: the strings must outlive the call.
struct ChatMessage {
  std::string_view role;     // "system", "user", "assistant", or "tool" where the format has it
  std::string_view content;  // emitted as given (UTF-8 is the caller's to validate)
};

struct ChatLimits {
  size_t max_messages = 4096;         // a long agent transcript has a few hundred
  size_t max_output_bytes = 8u << 20; // far above any SLM context, bounded before building
};

struct ChatPrompt {
  std::string text;
  // [begin, end) byte ranges of `text` copied from message content, in order. Everything
  // else is template markup and role names.
  std::vector<std::pair<size_t, size_t>> content_spans;
};

// Renders `messages` in `format` (§6.2), adding the assistant prefix when
// `add_generation_prompt` and the format has one. kInvalidArgument for a role the format does
// not support (naming the message index and role), kResourceExhausted above `limits`.
Result<ChatPrompt> render_chat(ChatFormat format, std::span<const ChatMessage> messages,
                               bool add_generation_prompt, const ChatLimits& limits = ChatLimits());

// render_chat(...).text.
Result<std::string> apply_chat_template(ChatFormat format, std::span<const ChatMessage> messages,
                                        bool add_generation_prompt,
                                        const ChatLimits& limits = ChatLimits());

}  // namespace ztslm::engine
