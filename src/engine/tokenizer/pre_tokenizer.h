// Hand-written pre-tokenizers of the byte-level BPE vocabs (spec/ENGINE.md §5.5): state machines
// equivalent to the R_LLAMA3, R_QWEN2 and R_GPT2 regexes and to the `\p{N}` split that precedes
// R_GPT2 for starcoder-style vocabs. No regex engine is involved.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "engine/tokenizer/vocab.h"

namespace ztslm::engine::tokenizer {

// Splits the code points `cpts` of one raw fragment into pieces and writes the exclusive end
// offset of each piece to `ends` (cleared first; the last end is cpts.size() when cpts is not
// empty). `scratch` is reused between calls. `pre` must not be kNone.
void pre_tokenize(PreTokenizer pre, std::span<const char32_t> cpts, std::vector<size_t>& ends,
                  std::vector<size_t>& scratch);

}  // namespace ztslm::engine::tokenizer
