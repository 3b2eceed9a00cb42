#include "engine/chat_prompt.h"

namespace ztslm::engine {

Result<std::vector<tokenizer::TokenId>> tokenize_chat(tokenizer::Tokenizer& tok, ChatFormat format,
                                                      std::span<const ChatMessage> messages,
                                                      bool add_generation_prompt, size_t max_tokens) {
  ZTSLM_ASSIGN_OR_RETURN(const ChatPrompt prompt, render_chat(format, messages, add_generation_prompt));
  std::vector<tokenizer::TextSpan> untrusted;
  untrusted.reserve(prompt.content_spans.size());
  for (const auto& [begin, end] : prompt.content_spans) untrusted.push_back({begin, end});
  return tok.encode_with_untrusted(prompt.text, untrusted, /*add_special=*/true, max_tokens);
}

}  // namespace ztslm::engine
