// Fuzzes the tokenizers (engine/tokenizer) with arbitrary text on small vocabs built once.
// Input: byte 0 selects the vocab and flags, the rest is the text. Properties: every id is in
// range, the id count stays within a linear bound, the streaming detokeniser emits well-formed
// UTF-8 equal to the batch result, and detokenize(tokenize(text)) == text where the tokenizer is
// lossless (BPE vocabs without space clean-up, and SPM on text without U+2581; both on valid UTF-8).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/check.h"
#include "core/utf8.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/tiny_vocabs.h"

namespace {

using ztslm::engine::tokenizer::TokenId;
using ztslm::engine::tokenizer::Vocab;

const Vocab& make(const ztslm::gguf::Metadata& md) {
  auto v = Vocab::from_metadata(md);
  ZTSLM_CHECK(v.has_value());
  return *new Vocab(std::move(v).value());  // lives for the whole process
}

struct Vocabs {
  const Vocab& spm = make(ztslm::engine::tokenizer::testing::tiny_spm_metadata());
  const Vocab& qwen2 = make(ztslm::engine::tokenizer::testing::tiny_bpe_metadata("qwen2"));
  const Vocab& smollm = make(ztslm::engine::tokenizer::testing::tiny_bpe_metadata("smollm"));
  const Vocab& llama3 = make(ztslm::engine::tokenizer::testing::tiny_bpe_metadata("llama3"));
  const Vocab& gpt2 = make(ztslm::engine::tokenizer::testing::tiny_bpe_metadata("gpt-2"));
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ztslm::engine::tokenizer;
  static const Vocabs vocabs;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const Vocab* all[] = {&vocabs.spm, &vocabs.qwen2, &vocabs.smollm, &vocabs.llama3, &vocabs.gpt2};
  const Vocab& vocab = *all[mode % 5];
  const bool add_special = (mode & 0x08) != 0;
  const bool parse_special = (mode & 0x10) != 0;

  Tokenizer tok(vocab);
  auto ids = tok.encode(text, add_special, parse_special, size_t{1} << 20);
  ZTSLM_CHECK(ids.has_value());
  ZTSLM_CHECK(ids->size() <= 4 * text.size() + 4);
  for (const TokenId id : *ids) ZTSLM_CHECK(vocab.is_valid(id));

  // A tight max_tokens fails cleanly instead of truncating.
  if (!ids->empty()) {
    auto capped = tok.encode(text, add_special, parse_special, ids->size() - 1);
    ZTSLM_CHECK(!capped.has_value());
  }

  const std::string batch = detokenize(vocab, *ids, false, true);
  StreamingDetokenizer stream(vocab, /*unparse_special=*/true);
  std::string streamed;
  for (const TokenId id : *ids) {
    const std::string chunk = stream.push(id);
    ZTSLM_CHECK(ztslm::is_valid_utf8(chunk));
    streamed += chunk;
  }
  const std::string tail = stream.finish();
  ZTSLM_CHECK(ztslm::is_valid_utf8(tail));
  streamed += tail;
  ZTSLM_CHECK(streamed == utf8_replace_invalid(batch));

  if (!add_special && !parse_special) {
    if (&vocab == &vocabs.qwen2 || &vocab == &vocabs.smollm) {
      if (ztslm::is_valid_utf8(text)) ZTSLM_CHECK(batch == text);
    } else if (&vocab == &vocabs.spm) {
      // Bytes after an invalid lead byte join its "character" and fall back to byte tokens, so a
      // space there comes back as U+2581's bytes: exact only for well-formed text.
      if (ztslm::is_valid_utf8(text) && text.find("\xE2\x96\x81") == std::string_view::npos) {
        ZTSLM_CHECK(batch == text);
      }
    }
  }
  return 0;
}
