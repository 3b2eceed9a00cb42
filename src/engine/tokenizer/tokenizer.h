// Text <-> token ids for a Vocab (spec/ENGINE.md §5): special-token pre-split (§5.1), SPM (§5.2),
// byte-level BPE with hand-written pre-tokenizers (§5.4, §5.5), detokenisation (§5.6) and a
// streaming detokeniser that only ever emits well-formed UTF-8.
//
// The Vocab is shared and immutable; all scratch state of one call lives in a Tokenizer (one per
// session or thread, STYLE.md E6).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "engine/tokenizer/vocab.h"

namespace ztslm::engine::tokenizer {

// A byte range [begin, end) of a text.
struct TextSpan {
  size_t begin = 0;
  size_t end = 0;
};

// A tokenizer session: reusable scratch buffers for encoding. Not thread-safe; `vocab` must
// outlive it.
class Tokenizer final {
 public:
  explicit Tokenizer(const Vocab& vocab) : vocab_(&vocab) {}

  // Encodes `text` (any bytes; invalid UTF-8 is handled as §5.2/§5.4 say). `add_special` adds
  // BOS/EOS as the vocab asks; `parse_special` turns CONTROL/UNKNOWN token texts into their ids
  // (USER_DEFINED ones always are). kResourceExhausted when more than `max_tokens` ids would be
  // produced or `text` exceeds 256 MiB; kFailedPrecondition when an SPM vocab lacks a
  // byte-fallback token that is needed.
  Result<std::vector<TokenId>> encode(std::string_view text, bool add_special, bool parse_special,
                                      size_t max_tokens);

  // Encodes a rendered chat prompt: special-token text is parsed everywhere except inside the
  // `untrusted` spans (message content: sorted, disjoint, inside `text`), where no special token
  // of any kind is recognised. Raw text on both sides of a span boundary is tokenised as one
  // fragment, so benign content tokenises exactly as with parse_special = true.
  // kInvalidArgument for spans that are unsorted, overlapping or outside `text`.
  Result<std::vector<TokenId>> encode_with_untrusted(std::string_view text,
                                                     std::span<const TextSpan> untrusted,
                                                     bool add_special, size_t max_tokens);

 private:
  struct Fragment {
    TokenId token;  // kNoToken for raw text
    size_t offset;
    size_t length;
  };
  struct Symbol {
    size_t start;  // into the current word
    size_t n;      // bytes; 0 once merged into its left neighbour
    int32_t prev;
    int32_t next;
    TokenId id;  // BPE: token of the symbol's text or kNoToken
  };
  struct Bigram {
    int32_t left;
    int32_t right;
    float score;   // SPM
    int32_t rank;  // BPE
    size_t size;
  };

  Result<std::vector<TokenId>> encode_impl(std::string_view text, bool add_special,
                                           bool parse_special, std::span<const TextSpan> untrusted,
                                           size_t max_tokens);
  Status split_special(std::string_view text, bool parse_special,
                       std::span<const TextSpan> untrusted);
  Status encode_spm(std::string_view fragment, bool add_prefix, std::vector<TokenId>& out,
                    size_t max_tokens);
  Status encode_bpe(std::string_view fragment, std::vector<TokenId>& out, size_t max_tokens);
  void bpe_word(std::string_view word, std::vector<TokenId>& out);
  void spm_add_bigram(int32_t left, int32_t right);
  void bpe_add_bigram(int32_t left, int32_t right);

  const Vocab* vocab_;
  std::vector<Fragment> fragments_, fragments_next_;
  std::vector<Symbol> symbols_;
  std::vector<Bigram> heap_;
  std::string word_;
  std::vector<char32_t> cpts_;
  std::vector<size_t> piece_ends_, piece_ends_tmp_;
};

// One-shot form of Tokenizer::encode.
Result<std::vector<TokenId>> tokenize(const Vocab& vocab, std::string_view text, bool add_special,
                                      bool parse_special, size_t max_tokens);

// The text of token `id` (§5.6): empty for an invalid id, and for CONTROL/UNKNOWN tokens unless
// `special`. Up to `lstrip` leading spaces are removed.
std::string token_to_piece(const Vocab& vocab, TokenId id, int lstrip, bool special);

// Concatenates the pieces of `tokens` (§5.6), dropping a leading BOS / trailing EOS when
// `remove_special` (and the vocab adds them), rendering CONTROL tokens when `unparse_special`,
// and applying the vocab's clean-up of spaces. The result may be ill-formed UTF-8 (pieces of
// byte tokens); see utf8_replace_invalid. Invalid ids contribute nothing.
std::string detokenize(const Vocab& vocab, std::span<const TokenId> tokens, bool remove_special,
                       bool unparse_special);

// `s` with each maximal ill-formed subsequence replaced by U+FFFD (Unicode §3.9 best practice).
std::string utf8_replace_invalid(std::string_view s);

// Detokenises a token stream incrementally. The concatenation of everything push() and finish()
// return equals utf8_replace_invalid(detokenize(all tokens, false, unparse_special)), and every
// returned chunk is well-formed UTF-8: an incomplete multi-byte sequence at the end is held back
// until the next token completes it, and finish() turns a dangling one into U+FFFD.
class StreamingDetokenizer final {
 public:
  // `vocab` must outlive this object. `strip_leading_space` removes one leading space of the first
  // piece (what detokenize does for vocabs with add_space_prefix); pass false when continuing
  // text that already has a start.
  StreamingDetokenizer(const Vocab& vocab, bool unparse_special, bool strip_leading_space);
  StreamingDetokenizer(const Vocab& vocab, bool unparse_special)
      : StreamingDetokenizer(vocab, unparse_special, vocab.add_space_prefix()) {}

  // Adds one token; returns the text that became final (possibly empty).
  std::string push(TokenId id);
  // Ends the stream; returns the remaining text.
  std::string finish();

 private:
  std::string clean(std::string_view raw, bool at_end);
  std::string take_utf8(bool at_end);

  const Vocab* vocab_;
  bool unparse_special_;
  bool strip_next_;
  // Clean-up stages (§5.6 step 3): each holds back the few bytes its rule still depends on.
  std::string p1_, p2_, p3_;
  char p2_prev_ = 0;  // last byte pass (b) consumed ('\0' after a " ' " match)
  bool p2_started_ = false;
  bool p2_held_space_ = false;
  std::string utf8_pending_;
};

}  // namespace ztslm::engine::tokenizer
