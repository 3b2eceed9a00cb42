// A byte-level BPE vocabulary trained on the demo dataset, stored as the engine reads it
// (spec/ENGINE.md §5.4/§5.5): tokenizer.ggml.model "gpt2", tokenizer.ggml.pre "qwen2" (digits
// are pre-split one by one, so numbers are always copied digit by digit), the 256 byte symbols of
// the GPT-2 byte map first, then the merged tokens, then the ChatML control tokens.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "gguf/gguf.h"

namespace ztslm::demo {

struct BpeVocab {
  std::vector<std::string> tokens;  // byte-encoded texts (specials as written)
  std::vector<int32_t> types;       // 1 NORMAL, 3 CONTROL
  std::vector<std::string> merges;  // "A B", rank = index
  int32_t endoftext = -1, im_start = -1, im_end = -1;
};

// Trains merges on `fragments` (raw text between special tokens) until the vocabulary holds
// `vocab_size` tokens (256 byte symbols + merges + 3 specials) or no pair occurs twice.
// Deterministic: ties between pair counts go to the pair that is smaller as (left id, right id).
BpeVocab train_bpe(const std::vector<std::string>& fragments, size_t vocab_size);

// Adds the tokenizer.* keys (and the ChatML chat template) to `md`.
void add_vocab_metadata(const BpeVocab& vocab, gguf::Metadata& md);

// The ChatML template stored in tokenizer.chat_template.
extern const char* const kChatmlTemplate;

}  // namespace ztslm::demo
