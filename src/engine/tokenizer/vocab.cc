#include "engine/tokenizer/vocab.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/utf8.h"

namespace ztslm::engine::tokenizer {
namespace {

constexpr std::string_view kKeyModel = "tokenizer.ggml.model";
constexpr std::string_view kKeyPre = "tokenizer.ggml.pre";
constexpr std::string_view kKeyTokens = "tokenizer.ggml.tokens";
constexpr std::string_view kKeyScores = "tokenizer.ggml.scores";
constexpr std::string_view kKeyTypes = "tokenizer.ggml.token_type";
constexpr std::string_view kKeyMerges = "tokenizer.ggml.merges";

// Token type values of tokenizer.ggml.token_type (§5.3).
constexpr int32_t kTypeNormal = 1, kTypeUnknown = 2, kTypeControl = 3, kTypeUserDefined = 4,
                  kTypeUnused = 5, kTypeByte = 6;

uint32_t attrs_of_type(int32_t type) {
  switch (type) {
    case kTypeNormal: return kAttrNormal;
    case kTypeUnknown: return kAttrUnknown;
    case kTypeControl: return kAttrControl;
    case kTypeUserDefined: return kAttrUserDefined;
    case kTypeUnused: return kAttrUnused;
    case kTypeByte: return kAttrByte;
    default: return kAttrUndefined;
  }
}

struct PreInfo {
  std::string_view name;
  PreTokenizer pre;
  bool ignore_merges;
  bool add_bos;
  bool clean_spaces;
};

// The supported tokenizer.ggml.pre values (§5.5) with the defaults of table §5.3.
constexpr PreInfo kPreTable[] = {
    {"llama3", PreTokenizer::kLlama3, true, true, true},
    {"llama-v3", PreTokenizer::kLlama3, true, true, true},
    {"llama-bpe", PreTokenizer::kLlama3, true, true, true},
    {"falcon3", PreTokenizer::kLlama3, true, true, true},
    {"pixtral", PreTokenizer::kLlama3, true, true, true},
    {"dbrx", PreTokenizer::kLlama3, false, false, true},
    {"smaug-bpe", PreTokenizer::kLlama3, false, false, true},
    {"qwen2", PreTokenizer::kQwen2, false, false, false},
    {"deepseek-r1-qwen", PreTokenizer::kQwen2, false, false, false},
    {"stablelm2", PreTokenizer::kQwen2, false, false, true},
    {"gpt-2", PreTokenizer::kGpt2, false, false, true},
    {"phi-2", PreTokenizer::kGpt2, false, false, true},
    {"mpt", PreTokenizer::kGpt2, false, false, true},
    {"olmo", PreTokenizer::kGpt2, false, false, true},
    {"jais", PreTokenizer::kGpt2, false, false, true},
    {"roberta-bpe", PreTokenizer::kGpt2, false, false, true},
    {"starcoder", PreTokenizer::kStarcoder, false, false, true},
    {"refact", PreTokenizer::kStarcoder, false, false, true},
    {"smollm", PreTokenizer::kStarcoder, false, false, false},
    {"command-r", PreTokenizer::kStarcoder, false, false, false},
    {"codeshell", PreTokenizer::kStarcoder, false, false, true},
    {"exaone", PreTokenizer::kStarcoder, false, false, true},
};

// Texts auto-detected as EOT / EOM / FIM tokens when their id keys are absent (§5.3).
constexpr std::string_view kEotTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "[EOT]", "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",
    "<end_of_utterance>"};
constexpr std::string_view kEomTexts[] = {"<|eom_id|>"};
constexpr std::string_view kFimPreTexts[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>",
    "<PRE>", "\xE2\x96\x81<PRE>", "<|code_prefix|>"};
constexpr std::string_view kFimSufTexts[] = {
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>",
    "<SUF>", "\xE2\x96\x81<SUF>", "<|code_suffix|>"};
constexpr std::string_view kFimMidTexts[] = {
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>",
    "<MID>", "\xE2\x96\x81<MID>", "<|code_middle|>"};
constexpr std::string_view kFimPadTexts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>"};
constexpr std::string_view kFimRepTexts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                             "<REPO>", "<reponame>"};
constexpr std::string_view kFimSepTexts[] = {"<|file_sep|>"};
// Texts that end generation (the EOG list of §5.3).
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>", "[e~["};

uint64_t hash_text(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a, then a murmur finaliser to spread the low bits
  for (const char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

uint64_t hash_pair(uint64_t key) {
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdull;
  key ^= key >> 33;
  key *= 0xc4ceb9fe1a85ec53ull;
  key ^= key >> 33;
  return key;
}

uint64_t table_size_for(size_t n) {
  uint64_t size = 16;
  while (size < 2 * static_cast<uint64_t>(n)) size <<= 1;
  return size;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// The byte of a "<0xHH>" token text, or -1.
int byte_token_value(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  const int hi = hex_value(text[3]);
  const int lo = hex_value(text[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

struct ByteMap {
  std::array<std::string, 256> text;       // byte -> UTF-8 of its stand-in code point
  std::array<int16_t, 0x144> byte_of_cpt;  // code point -> byte, -1 when not in the map
};

const ByteMap& byte_map() {
  static const ByteMap map = [] {
    ByteMap m;
    m.byte_of_cpt.fill(-1);
    int next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const int cp = printable ? b : next++;
      append_utf8(m.text[static_cast<size_t>(b)], static_cast<char32_t>(cp));
      m.byte_of_cpt[static_cast<size_t>(cp)] = static_cast<int16_t>(b);
    }
    return m;
  }();
  return map;
}

// Reads an optional u32 token id key into `*id`: absent keeps the default; an id >= n_tokens is
// ignored (the default stays, §1.5); any other type is kMalformed.
Status read_id(const gguf::Metadata& md, std::string_view key, size_t n_tokens, TokenId* id) {
  const gguf::Value* v = md.find(key);
  if (v == nullptr) return Status();
  const std::optional<uint32_t> u = v->as_u32();
  if (!u.has_value()) return Status::malformed("{} is not a u32", key);
  if (*u < n_tokens) *id = static_cast<TokenId>(*u);
  return Status();
}

Status read_bool(const gguf::Metadata& md, std::string_view key, bool* out) {
  const gguf::Value* v = md.find(key);
  if (v == nullptr) return Status();
  const std::optional<bool> b = v->as_bool();
  if (!b.has_value()) return Status::malformed("{} is not a bool", key);
  *out = *b;
  return Status();
}

}  // namespace

std::string_view bpe_byte_to_text(uint8_t b) { return byte_map().text[b]; }

int bpe_codepoint_to_byte(char32_t cp) {
  return cp < 0x144 ? byte_map().byte_of_cpt[cp] : -1;
}

TokenId Vocab::find(std::string_view text) const {
  if (index_.empty()) return kNoToken;
  for (uint64_t slot = hash_text(text) & index_mask_;; slot = (slot + 1) & index_mask_) {
    const TokenId id = index_[slot];
    if (id == kNoToken) return kNoToken;
    if (texts_[static_cast<size_t>(id)] == text) return id;
  }
}

bool Vocab::is_eog(TokenId id) const {
  return std::binary_search(eog_ids_.begin(), eog_ids_.end(), id);
}

Vocab::Merge Vocab::find_merge(TokenId left, TokenId right) const {
  if (merges_.empty() || left < 0 || right < 0) return {};
  const uint64_t key = (static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right);
  for (uint64_t slot = hash_pair(key) & merges_mask_;; slot = (slot + 1) & merges_mask_) {
    const MergeSlot& s = merges_[slot];
    if (s.key == key) return {s.rank, s.merged};
    if (s.rank < 0) return {};
  }
}

int32_t Vocab::find_merge_text(std::string_view left, std::string_view right) const {
  if (text_merges_.empty() || left.empty()) return -1;
  // A merge's first part never holds a space after its first byte (it is split there).
  if (left.find(' ', 1) != std::string_view::npos) return -1;
  std::string key;
  key.reserve(left.size() + 1 + right.size());
  key.append(left).append(1, ' ').append(right);
  const auto it = text_merges_.find(key);
  return it == text_merges_.end() ? -1 : it->second;
}

Status Vocab::build_index() {
  const uint64_t size = table_size_for(texts_.size());
  index_.assign(size, kNoToken);
  index_mask_ = size - 1;
  for (size_t i = 0; i < texts_.size(); ++i) {
    uint64_t slot = hash_text(texts_[i]) & index_mask_;
    for (;; slot = (slot + 1) & index_mask_) {
      const TokenId other = index_[slot];
      if (other == kNoToken) break;
      if (texts_[static_cast<size_t>(other)] == texts_[i]) {
        return Status::malformed("duplicate token text '{}' at ids {} and {}",
                                 printable(texts_[i], 32), other, i);
      }
    }
    index_[slot] = static_cast<TokenId>(i);
  }
  return Status();
}

Result<Vocab> Vocab::from_metadata(const gguf::Metadata& md, const VocabLimits& limits) {
  Vocab v;

  // Tokenizer model and pre-tokenizer: refuse what we cannot tokenise exactly.
  ZTSLM_ASSIGN_OR_RETURN(const std::string_view model, md.get_string(kKeyModel));
  v.model_ = std::string(model);
  std::string_view pre;
  if (md.contains(kKeyPre)) {
    ZTSLM_ASSIGN_OR_RETURN(pre, md.get_string(kKeyPre));
  }
  v.pre_name_ = std::string(pre);
  if (model == "llama") {
    v.kind_ = TokenizerKind::kSpm;
    v.pre_ = PreTokenizer::kNone;
    v.add_space_prefix_ = true;
    v.add_bos_ = true;
    v.clean_spaces_ = false;
  } else if (model == "gpt2") {
    v.kind_ = TokenizerKind::kBpe;
    const std::string_view pre_name = pre.empty() ? std::string_view("default") : pre;
    const PreInfo* info = nullptr;
    for (const PreInfo& p : kPreTable) {
      if (p.name == pre_name) info = &p;
    }
    if (info == nullptr) {
      return Status::failed_precondition("unsupported pre-tokenizer tokenizer.ggml.pre '{}'",
                                         printable(pre_name, 64));
    }
    v.pre_ = info->pre;
    v.ignore_merges_ = info->ignore_merges;
    v.add_bos_ = info->add_bos;
    v.clean_spaces_ = info->clean_spaces;
    v.add_space_prefix_ = false;
  } else {
    return Status::failed_precondition("unsupported tokenizer model tokenizer.ggml.model '{}'",
                                       printable(model, 64));
  }
  ZTSLM_TRY(read_bool(md, "tokenizer.ggml.add_space_prefix", &v.add_space_prefix_));

  // Tokens, scores, types.
  ZTSLM_ASSIGN_OR_RETURN(const std::vector<std::string>* tokens, md.get_string_array(kKeyTokens));
  const size_t n = tokens->size();
  if (n == 0) return Status::malformed("{} is empty", kKeyTokens);
  if (n > limits.max_tokens) {
    return Status::resource_exhausted("token count {} exceeds limit {}", n, limits.max_tokens);
  }
  v.texts_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& t = (*tokens)[i];
    if (t.size() > limits.max_token_bytes) {
      return Status::resource_exhausted("token {} has {} bytes, limit {}", i, t.size(),
                                        limits.max_token_bytes);
    }
    v.texts_[i] = t.empty() ? str_format("[EMPTY_{}]", i) : t;
  }
  v.scores_.assign(n, 0.0f);
  if (const gguf::Value* s = md.find(kKeyScores); s != nullptr) {
    if (const auto* f = s->as_array<float>(); f != nullptr) {
      if (f->size() < n) return Status::malformed("{} has {} entries, need {}", kKeyScores, f->size(), n);
      for (size_t i = 0; i < n; ++i) {
        // SECURITY: a NaN score would break the strict weak order of the SPM merge queue.
        if (std::isnan((*f)[i])) return Status::malformed("{}[{}] is NaN", kKeyScores, i);
        v.scores_[i] = (*f)[i];
      }
    } else if (const auto* iv = s->as_array<int32_t>(); iv != nullptr) {
      if (iv->size() < n) return Status::malformed("{} has {} entries, need {}", kKeyScores, iv->size(), n);
      for (size_t i = 0; i < n; ++i) v.scores_[i] = static_cast<float>((*iv)[i]);
    } else {
      return Status::malformed("{} is not an f32 or i32 array", kKeyScores);
    }
  }
  v.attrs_.assign(n, kAttrNormal);
  if (md.contains(kKeyTypes)) {
    ZTSLM_ASSIGN_OR_RETURN(const std::vector<int32_t>* types, md.get_i32_array(kKeyTypes));
    if (types->size() < n) {
      return Status::malformed("{} has {} entries, need {}", kKeyTypes, types->size(), n);
    }
    for (size_t i = 0; i < n; ++i) v.attrs_[i] = attrs_of_type((*types)[i]);
  }
  ZTSLM_TRY(v.build_index());

  // Special ids: defaults per tokenizer (an out-of-range default is "none"), then the metadata.
  TokenId fim_pre = kNoToken, fim_suf = kNoToken, fim_mid = kNoToken, fim_pad = kNoToken,
          fim_rep = kNoToken, fim_sep = kNoToken, mask = kNoToken;
  if (v.kind_ == TokenizerKind::kSpm) {
    v.bos_ = 1;
    v.eos_ = 2;
    v.unk_ = 0;
  } else {
    v.bos_ = 11;
    v.eos_ = 11;
  }
  for (TokenId* id : {&v.bos_, &v.eos_, &v.unk_}) {
    if (*id >= 0 && static_cast<size_t>(*id) >= n) *id = kNoToken;
  }
  const std::pair<std::string_view, TokenId*> id_keys[] = {
      {"tokenizer.ggml.bos_token_id", &v.bos_},
      {"tokenizer.ggml.eos_token_id", &v.eos_},
      {"tokenizer.ggml.eot_token_id", &v.eot_},
      {"tokenizer.ggml.eom_token_id", &v.eom_},
      {"tokenizer.ggml.unknown_token_id", &v.unk_},
      {"tokenizer.ggml.seperator_token_id", &v.sep_},
      {"tokenizer.ggml.padding_token_id", &v.pad_},
      {"tokenizer.ggml.mask_token_id", &mask},
      {"tokenizer.ggml.fim_pre_token_id", &fim_pre},
      {"tokenizer.ggml.fim_suf_token_id", &fim_suf},
      {"tokenizer.ggml.fim_mid_token_id", &fim_mid},
      {"tokenizer.ggml.fim_pad_token_id", &fim_pad},
      {"tokenizer.ggml.fim_rep_token_id", &fim_rep},
      {"tokenizer.ggml.fim_sep_token_id", &fim_sep},
      {"tokenizer.ggml.prefix_token_id", &fim_pre},
      {"tokenizer.ggml.suffix_token_id", &fim_suf},
      {"tokenizer.ggml.middle_token_id", &fim_mid},
  };
  for (const auto& [key, id] : id_keys) ZTSLM_TRY(read_id(md, key, n, id));
  ZTSLM_TRY(read_bool(md, "tokenizer.ggml.add_bos_token", &v.add_bos_));
  ZTSLM_TRY(read_bool(md, "tokenizer.ggml.add_eos_token", &v.add_eos_));
  if (v.add_bos_ && v.bos_ == kNoToken) {
    return Status::malformed("tokenizer.ggml.add_bos_token is set but there is no bos token");
  }
  if (v.add_eos_ && v.eos_ == kNoToken) {
    return Status::malformed("tokenizer.ggml.add_eos_token is set but there is no eos token");
  }

  // Auto-detection by text (§5.3). llama.cpp walks a hash map, so its pick among several
  // candidates is unspecified; we take the first text of each list that the vocab has (so
  // "<|eot_id|>" wins over "<|end_of_text|>"). The chosen token becomes CONTROL.
  const auto detect = [&](TokenId* id, const auto& list) {
    if (*id != kNoToken) return;
    for (const std::string_view text : list) {
      if (const TokenId found = v.find(text); found != kNoToken) {
        *id = found;
        v.attrs_[static_cast<size_t>(found)] |= kAttrControl;
        return;
      }
    }
  };
  detect(&v.eot_, kEotTexts);
  detect(&v.eom_, kEomTexts);
  detect(&fim_pre, kFimPreTexts);
  detect(&fim_suf, kFimSufTexts);
  detect(&fim_mid, kFimMidTexts);
  detect(&fim_pad, kFimPadTexts);
  detect(&fim_rep, kFimRepTexts);
  detect(&fim_sep, kFimSepTexts);
  for (size_t i = 0; i < n; ++i) {
    if ((v.attrs_[i] & kAttrControl) != 0 && v.texts_[i].find("unused") != std::string::npos) {
      v.attrs_[i] |= kAttrUnused;
    }
  }
  // EOG set.
  std::vector<TokenId> eog;
  for (const TokenId id : {fim_pad, fim_rep, fim_sep}) {
    if (id != kNoToken) eog.push_back(id);
  }
  for (const std::string_view text : kEogTexts) {
    if (const TokenId id = v.find(text); id != kNoToken) {
      eog.push_back(id);
      v.attrs_[static_cast<size_t>(id)] |= kAttrControl;
    }
  }
  for (const std::string_view text : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {
    // Always rendered (gpt-oss).
    if (const TokenId id = v.find(text); id != kNoToken) v.attrs_[static_cast<size_t>(id)] = kAttrUserDefined;
  }
  for (const TokenId id : {v.eos_, v.eot_, v.eom_}) {
    if (id != kNoToken) eog.push_back(id);
  }
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
  {
    bool has_return = false, has_call = false, has_flush = false, has_tool_response = false;
    TokenId end_id = kNoToken, s_id = kNoToken;
    for (const TokenId id : eog) {
      const std::string& t = v.texts_[static_cast<size_t>(id)];
      if (t == "<|return|>") has_return = true;
      if (t == "<|call|>" || t == "<|calls|>") has_call = true;
      if (t == "<|flush|>") has_flush = true;
      if (t == "<|end|>") end_id = id;
      if (t == "<|tool_response>") has_tool_response = true;
      if (t == "</s>") s_id = id;
    }
    // o200k_harmony / solar-open: "<|end|>" ends a message, not the generation.
    if (end_id != kNoToken && has_call && (has_return || has_flush)) {
      eog.erase(std::find(eog.begin(), eog.end(), end_id));
      v.attrs_[static_cast<size_t>(end_id)] = kAttrUserDefined;
    }
    if (s_id != kNoToken && has_tool_response) {
      eog.erase(std::find(eog.begin(), eog.end(), s_id));
      v.attrs_[static_cast<size_t>(s_id)] = kAttrNormal;
    }
  }
  v.eog_ids_ = std::move(eog);

  // Special tokens for the pre-split, longest first (ties by id for determinism).
  for (size_t i = 0; i < n; ++i) {
    if ((v.attrs_[i] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) != 0) {
      v.special_tokens_.push_back(static_cast<TokenId>(i));
    }
  }
  std::stable_sort(v.special_tokens_.begin(), v.special_tokens_.end(),
                   [&](TokenId a, TokenId b) {
                     return v.texts_[static_cast<size_t>(a)].size() >
                            v.texts_[static_cast<size_t>(b)].size();
                   });

  // Byte tokens and pieces (special = true rendering).
  v.pieces_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t a = v.attrs_[i];
    const std::string& text = v.texts_[i];
    std::string& piece = v.pieces_[i];
    if ((a & (kAttrControl | kAttrUnknown | kAttrUserDefined)) != 0) {
      piece = text;
    } else if ((a & kAttrNormal) != 0) {
      if (v.kind_ == TokenizerKind::kSpm) {
        for (size_t p = 0; p < text.size();) {
          if (text.compare(p, 3, "\xE2\x96\x81") == 0) {
            piece.push_back(' ');
            p += 3;
          } else {
            piece.push_back(text[p++]);
          }
        }
      } else {
        for (size_t p = 0; p < text.size();) {
          char32_t cp = 0;
          size_t len = 1;
          if (!decode_utf8(text, p, &cp, &len)) cp = 0xFFFD;
          const int b = bpe_codepoint_to_byte(cp);
          if (b >= 0) {
            piece.push_back(static_cast<char>(b));
          } else {
            std::string utf8;
            append_utf8(utf8, cp);
            piece += "[UNK_BYTE_0x";
            for (const char c : utf8) piece += str_format("{}{}", "0123456789abcdef"[(c >> 4) & 15], "0123456789abcdef"[c & 15]);
            piece += text + "]";
          }
          p += len;
        }
      }
    } else if ((a & kAttrByte) != 0) {
      const int b = byte_token_value(text);
      if (b < 0) return Status::malformed("byte token {} is not <0xHH>", i);
      piece.push_back(static_cast<char>(b));
    }
  }
  for (int b = 0; b < 256; ++b) {
    const auto ub = static_cast<uint8_t>(b);
    static constexpr char kHex[] = "0123456789ABCDEF";
    const char hex_text[6] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
    const char raw[1] = {static_cast<char>(b)};
    const TokenId raw_id = v.find(std::string_view(raw, 1));
    const TokenId hex_id = v.find(std::string_view(hex_text, 6));
    v.spm_byte_token_[ub] = hex_id != kNoToken ? hex_id : raw_id;
    v.raw_byte_token_[ub] = raw_id;
    v.bpe_byte_symbol_[ub] = v.find(bpe_byte_to_text(ub));
  }

  // Per-model attributes (llama.cpp sets these by model name): Phi-3 strips the whitespace after
  // its special tokens.
  if (const gguf::Value* name_v = md.find("general.name"); name_v != nullptr && name_v->as_string()) {
    std::string name = *name_v->as_string();
    for (char& c : name) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    }
    if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
      for (const TokenId id : v.special_tokens_) v.attrs_[static_cast<size_t>(id)] |= kAttrRstrip;
      if (const TokenId id = v.find("</s>"); id != kNoToken) v.attrs_[static_cast<size_t>(id)] |= kAttrRstrip;
      for (const std::string_view t : {"<unk>", "<s>", "<|endoftext|>"}) {
        if (const TokenId id = v.find(t); id != kNoToken) v.attrs_[static_cast<size_t>(id)] &= ~kAttrRstrip;
      }
    }
  }

  // BPE merges: "A B" split at the first space after the first byte; the rank is the index and
  // the first occurrence of a pair wins.
  if (v.kind_ == TokenizerKind::kBpe) {
    ZTSLM_ASSIGN_OR_RETURN(const std::vector<std::string>* merges, md.get_string_array(kKeyMerges));
    if (merges->size() > limits.max_merges) {
      return Status::resource_exhausted("merge count {} exceeds limit {}", merges->size(),
                                        limits.max_merges);
    }
    if (merges->size() > static_cast<size_t>(INT32_MAX)) {
      return Status::resource_exhausted("merge count {} exceeds int32", merges->size());
    }
    const uint64_t size = table_size_for(merges->size());
    v.merges_.assign(size, MergeSlot{});
    v.merges_mask_ = size - 1;
    std::string joined;
    for (size_t i = 0; i < merges->size(); ++i) {
      const std::string& m = (*merges)[i];
      const size_t sp = m.size() < 2 ? std::string::npos : m.find(' ', 1);
      if (sp == std::string::npos) {
        return Status::malformed("merge {} '{}' is not \"A B\"", i, printable(m, 32));
      }
      const std::string_view left(m.data(), sp);
      const std::string_view right(m.data() + sp + 1, m.size() - sp - 1);
      const TokenId l = v.find(left);
      const TokenId r = v.find(right);
      if (l == kNoToken || r == kNoToken) {
        v.text_merges_.emplace(m, static_cast<int32_t>(i));
        continue;
      }
      const uint64_t key = (static_cast<uint64_t>(l) << 32) | static_cast<uint32_t>(r);
      uint64_t slot = hash_pair(key) & v.merges_mask_;
      while (v.merges_[slot].rank >= 0 && v.merges_[slot].key != key) slot = (slot + 1) & v.merges_mask_;
      if (v.merges_[slot].rank >= 0) continue;  // duplicate pair: the lower rank stays
      joined.assign(left).append(right);
      v.merges_[slot] = MergeSlot{key, static_cast<int32_t>(i), v.find(joined)};
    }
  }
  return v;
}

}  // namespace ztslm::engine::tokenizer
