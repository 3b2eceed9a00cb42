// Chat prompt → token ids, with message content treated as untrusted: the template's markup may
// contain special tokens (role markers, end-of-turn), the content never does.
#pragma once

#include <span>
#include <vector>

#include "core/result.h"
#include "engine/chat/chat_template.h"
#include "engine/tokenizer/tokenizer.h"

namespace ztslm::engine {

// Renders `messages` in `format` (adding the assistant prefix when `add_generation_prompt`) and
// tokenises the result with BOS/EOS per the vocabulary. Special-token text inside any message's
// content is tokenised as plain text (SECURITY: no forged role markers or control tokens).
// Errors as render_chat and Tokenizer::encode_with_untrusted.
Result<std::vector<tokenizer::TokenId>> tokenize_chat(tokenizer::Tokenizer& tok, ChatFormat format,
                                                      std::span<const ChatMessage> messages,
                                                      bool add_generation_prompt, size_t max_tokens);

}  // namespace ztslm::engine
