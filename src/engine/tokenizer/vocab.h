// Vocab: the tokenizer vocabulary of a GGUF model, validated and immutable.
//
// Accepts the `tokenizer.*` keys of spec/ENGINE.md §1.5 (GGUF metadata, llama.cpp commit
// 34af94cd): tokenizer.ggml.model `llama` (SentencePiece-style, §5.2) or `gpt2` (byte-level BPE,
// §5.4) with tokenizer.ggml.pre in the supported list (§5.5). Any other model or pre-tokenizer is
// refused with kFailedPrecondition naming the value, never tokenised with a wrong rule.
// Token types, special ids, EOG set and add_* flags follow §5.3.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "gguf/gguf.h"

namespace ztslm::engine::tokenizer {

using TokenId = int32_t;
inline constexpr TokenId kNoToken = -1;

// Token attribute bits (a token can carry several, e.g. CONTROL | UNUSED).
inline constexpr uint32_t kAttrUndefined = 0;
inline constexpr uint32_t kAttrUnknown = 1u << 0;
inline constexpr uint32_t kAttrUnused = 1u << 1;
inline constexpr uint32_t kAttrNormal = 1u << 2;
inline constexpr uint32_t kAttrControl = 1u << 3;
inline constexpr uint32_t kAttrUserDefined = 1u << 4;
inline constexpr uint32_t kAttrByte = 1u << 5;
inline constexpr uint32_t kAttrLstrip = 1u << 7;  // whitespace left of the token is dropped
inline constexpr uint32_t kAttrRstrip = 1u << 8;  // whitespace right of the token is dropped

enum class TokenizerKind { kSpm, kBpe };

// The pre-tokenizer regex list of a BPE vocab (§5.5); kNone for SPM.
enum class PreTokenizer {
  kNone,       // SPM: no pre-split
  kLlama3,     // [R_LLAMA3]: digits in groups of up to 3
  kQwen2,      // [R_QWEN2]: digits one at a time
  kGpt2,       // [R_GPT2]
  kStarcoder,  // [\p{N}, R_GPT2]
};

// Bounds for an untrusted vocabulary. Defaults admit every real llama-family SLM vocab.
struct VocabLimits {
  size_t max_tokens = size_t{1} << 20;       // largest real vocabs have ~262k tokens
  size_t max_token_bytes = size_t{1} << 16;  // real tokens are < 1 KiB (long whitespace runs)
  size_t max_merges = size_t{1} << 21;       // llama3 has 280k merges
};

class Vocab final {
 public:
  // Validates the tokenizer keys of `md` (types, array sizes against `limits`, ids in range,
  // merges "A B", unique token texts) and builds the lookup tables. kFailedPrecondition for an
  // unsupported tokenizer model or pre-tokenizer, kMalformed or kResourceExhausted otherwise.
  static Result<Vocab> from_metadata(const gguf::Metadata& md, const VocabLimits& limits = {});

  Vocab(Vocab&&) noexcept = default;
  Vocab& operator=(Vocab&&) noexcept = default;
  Vocab(const Vocab&) = delete;
  Vocab& operator=(const Vocab&) = delete;

  TokenizerKind kind() const { return kind_; }
  PreTokenizer pre_tokenizer() const { return pre_; }
  const std::string& model_name() const { return model_; }  // "llama" / "gpt2"
  const std::string& pre_name() const { return pre_name_; }  // as in the metadata

  size_t n_tokens() const { return texts_.size(); }
  bool is_valid(TokenId id) const { return id >= 0 && static_cast<size_t>(id) < texts_.size(); }
  // Text, score and attribute bits of a valid id (`id` must satisfy is_valid).
  const std::string& token_text(TokenId id) const { return texts_[static_cast<size_t>(id)]; }
  float token_score(TokenId id) const { return scores_[static_cast<size_t>(id)]; }
  uint32_t token_attrs(TokenId id) const { return attrs_[static_cast<size_t>(id)]; }
  // The rendering of a valid id with special = true, lstrip = 0 (§5.6), computed at load.
  const std::string& token_piece(TokenId id) const { return pieces_[static_cast<size_t>(id)]; }

  // Id of the token whose text is exactly `text`, or kNoToken.
  TokenId find(std::string_view text) const;

  TokenId bos() const { return bos_; }
  TokenId eos() const { return eos_; }
  TokenId eot() const { return eot_; }
  TokenId eom() const { return eom_; }
  TokenId unk() const { return unk_; }
  TokenId pad() const { return pad_; }
  TokenId sep() const { return sep_; }
  // True when generation stops at `id` (EOG set of §5.3). False for invalid ids.
  bool is_eog(TokenId id) const;
  const std::vector<TokenId>& eog_ids() const { return eog_ids_; }  // sorted

  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  bool clean_spaces() const { return clean_spaces_; }
  bool ignore_merges() const { return ignore_merges_; }

  // CONTROL, USER_DEFINED and UNKNOWN tokens, longest text first (§5.1).
  const std::vector<TokenId>& special_tokens() const { return special_tokens_; }

  // Internal lookups of the tokenizers.
  // SPM: the byte-fallback token of byte `b` (<0xHH>, else the 1-byte token), or kNoToken.
  TokenId spm_byte_token(uint8_t b) const { return spm_byte_token_[b]; }
  // BPE: token of the byte-encoded character of byte `b`, or kNoToken.
  TokenId bpe_byte_symbol(uint8_t b) const { return bpe_byte_symbol_[b]; }
  // BPE: token whose text is the single raw byte `b` (the final fallback of §5.4), or kNoToken.
  TokenId raw_byte_token(uint8_t b) const { return raw_byte_token_[b]; }
  // BPE merge of two token ids: rank (-1 when absent) and the id of the merged text.
  struct Merge {
    int32_t rank = -1;
    TokenId merged = kNoToken;
  };
  Merge find_merge(TokenId left, TokenId right) const;
  // Merge rank of two texts of which at least one is not a token; -1 when absent.
  int32_t find_merge_text(std::string_view left, std::string_view right) const;

 private:
  Vocab() = default;
  Status build_index();

  TokenizerKind kind_ = TokenizerKind::kSpm;
  PreTokenizer pre_ = PreTokenizer::kNone;
  std::string model_;
  std::string pre_name_;

  std::vector<std::string> texts_;
  std::vector<float> scores_;
  std::vector<uint32_t> attrs_;
  std::vector<std::string> pieces_;
  std::vector<TokenId> index_;  // open addressing over texts_, kNoToken = empty slot
  uint64_t index_mask_ = 0;

  struct MergeSlot {
    uint64_t key = ~uint64_t{0};  // (left << 32) | right; all ones = empty
    int32_t rank = -1;
    TokenId merged = kNoToken;
  };
  std::vector<MergeSlot> merges_;
  uint64_t merges_mask_ = 0;
  std::unordered_map<std::string, int32_t> text_merges_;  // "A B" where A or B is no token

  TokenId bos_ = kNoToken, eos_ = kNoToken, eot_ = kNoToken, eom_ = kNoToken;
  TokenId unk_ = kNoToken, pad_ = kNoToken, sep_ = kNoToken;
  std::vector<TokenId> eog_ids_;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
  bool clean_spaces_ = false, ignore_merges_ = false;
  std::vector<TokenId> special_tokens_;
  std::array<TokenId, 256> spm_byte_token_{};
  std::array<TokenId, 256> bpe_byte_symbol_{};
  std::array<TokenId, 256> raw_byte_token_{};

};

// The GPT-2 byte-to-unicode map of §5.4: the UTF-8 text of the code point that stands for `b`.
std::string_view bpe_byte_to_text(uint8_t b);
// The byte that code point `cp` stands for in that map; -1 when `cp` is not in it.
int bpe_codepoint_to_byte(char32_t cp);

}  // namespace ztslm::engine::tokenizer
