#include "engine/tokenizer/tokenizer.h"

#include <algorithm>

#include "core/utf8.h"
#include "engine/tokenizer/pre_tokenizer.h"

namespace ztslm::engine::tokenizer {
namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581, SPM's visible space
constexpr size_t kMaxTextBytes = size_t{1} << 28;  // SPM words grow 3x; indices stay < 2^31

// Length of the UTF-8 sequence announced by lead byte `c` (a stray continuation byte counts 1).
size_t utf8_lead_len(char c) {
  const auto b = static_cast<uint8_t>(c);
  if (b < 0xC0) return 1;
  if (b < 0xE0) return 2;
  if (b < 0xF0) return 3;
  return 4;
}

bool c_isspace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

Status too_many_tokens(size_t max_tokens) {
  return Status::resource_exhausted("token count exceeds limit {}", max_tokens);
}

enum class Utf8Scan { kComplete, kInvalid, kTruncated };

// Classifies the bytes at s[i]: a complete well-formed sequence, an ill-formed maximal subpart
// (`*len` bytes to replace by one U+FFFD), or the start of a sequence that the end cuts short.
Utf8Scan scan_utf8(std::string_view s, size_t i, size_t* len) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  *len = 1;
  if (b0 < 0x80) return Utf8Scan::kComplete;
  size_t need = 0;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return Utf8Scan::kInvalid;
  }
  for (size_t k = 1; k < need; ++k) {
    if (i + k >= s.size()) {
      *len = k;
      return Utf8Scan::kTruncated;
    }
    const auto b = static_cast<uint8_t>(s[i + k]);
    const uint8_t min = k == 1 ? lo : 0x80;
    const uint8_t max = k == 1 ? hi : 0xBF;
    if (b < min || b > max) {
      *len = k;
      return Utf8Scan::kInvalid;
    }
  }
  *len = need;
  return Utf8Scan::kComplete;
}

// Appends the well-formed rendering of `s` to `out`; returns the number of bytes consumed. With
// `at_end` false, a truncated sequence at the end is not consumed.
size_t append_sanitized(std::string_view s, bool at_end, std::string& out) {
  size_t i = 0;
  while (i < s.size()) {
    size_t len = 0;
    switch (scan_utf8(s, i, &len)) {
      case Utf8Scan::kComplete:
        out.append(s.substr(i, len));
        break;
      case Utf8Scan::kInvalid:
        out.append("\xEF\xBF\xBD");
        break;
      case Utf8Scan::kTruncated:
        if (!at_end) return i;
        out.append("\xEF\xBF\xBD");
        break;
    }
    i += len;
  }
  return i;
}

// The three clean-up passes of §5.6 step 3, in place, as specified on a complete text.
void clean_spaces_in_place(std::string& text) {
  // (a) " ?", " !", " .", " ," lose the space.
  size_t total = text.empty() ? 0 : 1;
  for (size_t i = 1; i < text.size(); ++i) {
    const char x = text[i];
    if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
    text[total++] = x;
  }
  text.resize(total);
  // (b) " ' " becomes "'".
  total = text.empty() ? 0 : 1;
  for (size_t i = 1; i < text.size(); ++i) {
    const char x = text[i];
    if (x == '\'' && i + 1 < text.size() && text[i - 1] == ' ' && text[i + 1] == ' ') {
      --total;
      text[++i] = '\0';  // the skipped space must not count as "previous space" next
    }
    text[total++] = x;
  }
  text.resize(total);
  // (c) " 's", " 'm", " 're", " 've" lose the space (" 't", " 'd", " 'll" keep it).
  total = text.empty() ? 0 : 1;
  for (size_t i = 1; i < text.size(); ++i) {
    const char x = text[i];
    if (text[i - 1] == ' ' && x == '\'' && i + 1 < text.size()) {
      const char x1 = text[i + 1];
      if (x1 == 's' || x1 == 'm') {
        --total;
      } else if (x1 != 't' && x1 != 'd' && i + 2 < text.size()) {
        const char x2 = text[i + 2];
        if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) --total;
      }
    }
    text[total++] = x;
  }
  text.resize(total);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Encoding

namespace {
// True when [pos, pos + n) intersects one of the sorted, disjoint `spans`.
bool overlaps(std::span<const TextSpan> spans, size_t pos, size_t n) {
  for (const TextSpan& sp : spans) {
    if (sp.begin >= pos + n) return false;
    if (sp.end > pos && sp.begin < sp.end) return true;
  }
  return false;
}
}  // namespace

Status Tokenizer::split_special(std::string_view text, bool parse_special,
                                std::span<const TextSpan> untrusted) {
  fragments_.clear();
  if (!text.empty()) fragments_.push_back({kNoToken, 0, text.size()});
  const Vocab& v = *vocab_;
  for (const TokenId special : v.special_tokens()) {
    const uint32_t attrs = v.token_attrs(special);
    // CONTROL and UNKNOWN texts are plain text unless parse_special; USER_DEFINED always split.
    if (!parse_special && (attrs & (kAttrControl | kAttrUnknown)) != 0) continue;
    const std::string& needle = v.token_text(special);
    bool any = false;
    fragments_next_.clear();
    for (const Fragment& f : fragments_) {
      if (f.token != kNoToken) {
        fragments_next_.push_back(f);
        continue;
      }
      size_t offset = f.offset;
      size_t length = f.length;
      size_t search = offset;
      while (length > 0) {
        const size_t match = text.substr(0, offset + length).find(needle, search);
        if (match == std::string_view::npos) break;
        if (overlaps(untrusted, match, needle.size())) {
          // SECURITY: special-token text inside untrusted content stays plain text, so a user
          // cannot forge a role marker or control token through their message.
          search = match + 1;
          continue;
        }
        any = true;
        size_t left_len = match - offset;
        if ((attrs & kAttrLstrip) != 0) {
          while (left_len > 0 && c_isspace(text[offset + left_len - 1])) --left_len;
        }
        if (left_len > 0) fragments_next_.push_back({kNoToken, offset, left_len});
        fragments_next_.push_back({special, match, needle.size()});
        size_t right_off = match + needle.size();
        size_t right_len = offset + length - right_off;
        if ((attrs & kAttrRstrip) != 0) {
          while (right_len > 0 && c_isspace(text[right_off])) {
            ++right_off;
            --right_len;
          }
        }
        offset = right_off;
        length = right_len;
        search = offset;
      }
      if (length > 0) fragments_next_.push_back({kNoToken, offset, length});
    }
    if (any) fragments_.swap(fragments_next_);
  }
  return Status();
}

Result<std::vector<TokenId>> Tokenizer::encode(std::string_view text, bool add_special,
                                               bool parse_special, size_t max_tokens) {
  return encode_impl(text, add_special, parse_special, {}, max_tokens);
}

Result<std::vector<TokenId>> Tokenizer::encode_with_untrusted(std::string_view text,
                                                              std::span<const TextSpan> untrusted,
                                                              bool add_special, size_t max_tokens) {
  for (size_t i = 0; i < untrusted.size(); ++i) {
    const TextSpan& sp = untrusted[i];
    if (sp.begin > sp.end || sp.end > text.size() || (i > 0 && sp.begin < untrusted[i - 1].end)) {
      return Status::invalid_argument("untrusted span {} is not a sorted range inside the text", i);
    }
  }
  return encode_impl(text, add_special, /*parse_special=*/true, untrusted, max_tokens);
}

Result<std::vector<TokenId>> Tokenizer::encode_impl(std::string_view text, bool add_special,
                                                    bool parse_special,
                                                    std::span<const TextSpan> untrusted,
                                                    size_t max_tokens) {
  const Vocab& v = *vocab_;
  // SECURITY: symbol indices are int32; far larger than any prompt the server admits.
  if (text.size() > kMaxTextBytes) {
    return Status::resource_exhausted("text of {} bytes exceeds limit {}", text.size(), kMaxTextBytes);
  }
  std::vector<TokenId> out;
  ZTSLM_TRY(split_special(text, parse_special, untrusted));
  if (add_special && v.add_bos()) out.push_back(v.bos());
  bool prev_special = true;  // the start counts as "after a special token" for the SPM prefix
  for (const Fragment& f : fragments_) {
    if (f.token != kNoToken) {
      out.push_back(f.token);
      prev_special = true;
    } else if (v.kind() == TokenizerKind::kSpm) {
      ZTSLM_TRY(encode_spm(text.substr(f.offset, f.length), v.add_space_prefix() && prev_special,
                           out, max_tokens));
      prev_special = false;
    } else {
      ZTSLM_TRY(encode_bpe(text.substr(f.offset, f.length), out, max_tokens));
    }
    if (out.size() > max_tokens) return too_many_tokens(max_tokens);
  }
  if (add_special && v.add_eos()) out.push_back(v.eos());
  if (out.size() > max_tokens) return too_many_tokens(max_tokens);
  return out;
}

void Tokenizer::spm_add_bigram(int32_t left, int32_t right) {
  if (left < 0 || right < 0) return;
  const Symbol& l = symbols_[static_cast<size_t>(left)];
  const Symbol& r = symbols_[static_cast<size_t>(right)];
  const size_t size = l.n + r.n;
  const TokenId id = vocab_->find(std::string_view(word_).substr(l.start, size));
  if (id == kNoToken) return;
  heap_.push_back({left, right, vocab_->token_score(id), 0, size});
  // Highest score first; on a tie the smaller left index.
  std::push_heap(heap_.begin(), heap_.end(), [](const Bigram& a, const Bigram& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  });
}

Status Tokenizer::encode_spm(std::string_view fragment, bool add_prefix,
                             std::vector<TokenId>& out, size_t max_tokens) {
  const Vocab& v = *vocab_;
  word_.clear();
  if (add_prefix) word_.append(kSpmSpace);
  for (const char c : fragment) {
    if (c == ' ') {
      word_.append(kSpmSpace);
    } else {
      word_.push_back(c);
    }
  }
  symbols_.clear();
  heap_.clear();
  for (size_t offs = 0; offs < word_.size();) {
    const size_t n = std::min(utf8_lead_len(word_[offs]), word_.size() - offs);
    const auto index = static_cast<int32_t>(symbols_.size());
    offs += n;
    symbols_.push_back({offs - n, n, index - 1, offs == word_.size() ? -1 : index + 1, kNoToken});
  }
  for (size_t i = 1; i < symbols_.size(); ++i) {
    spm_add_bigram(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));
  }
  const auto cmp = [](const Bigram& a, const Bigram& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  while (!heap_.empty()) {
    std::pop_heap(heap_.begin(), heap_.end(), cmp);
    const Bigram bg = heap_.back();
    heap_.pop_back();
    Symbol& l = symbols_[static_cast<size_t>(bg.left)];
    Symbol& r = symbols_[static_cast<size_t>(bg.right)];
    if (l.n == 0 || r.n == 0 || l.n + r.n != bg.size) continue;  // stale
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) symbols_[static_cast<size_t>(r.next)].prev = bg.left;
    spm_add_bigram(l.prev, bg.left);
    spm_add_bigram(bg.left, l.next);
  }
  // Every merged symbol is a token (only token bigrams merge); single characters that are not
  // fall back to byte tokens. The unknown token is never produced.
  for (int32_t i = symbols_.empty() ? -1 : 0; i != -1; i = symbols_[static_cast<size_t>(i)].next) {
    const Symbol& s = symbols_[static_cast<size_t>(i)];
    const std::string_view text = std::string_view(word_).substr(s.start, s.n);
    if (const TokenId id = v.find(text); id != kNoToken) {
      out.push_back(id);
    } else {
      for (const char c : text) {
        const TokenId id_byte = v.spm_byte_token(static_cast<uint8_t>(c));
        if (id_byte == kNoToken) {
          return Status::failed_precondition("vocab has no byte token for 0x{}{}",
                                             "0123456789ABCDEF"[(static_cast<uint8_t>(c) >> 4)],
                                             "0123456789ABCDEF"[(static_cast<uint8_t>(c) & 15)]);
        }
        out.push_back(id_byte);
      }
    }
    if (out.size() > max_tokens) return too_many_tokens(max_tokens);
  }
  return Status();
}

void Tokenizer::bpe_add_bigram(int32_t left, int32_t right) {
  if (left < 0 || right < 0) return;
  const Symbol& l = symbols_[static_cast<size_t>(left)];
  const Symbol& r = symbols_[static_cast<size_t>(right)];
  int32_t rank = -1;
  if (l.id != kNoToken && r.id != kNoToken) {
    rank = vocab_->find_merge(l.id, r.id).rank;
  } else {
    const std::string_view w(word_);
    rank = vocab_->find_merge_text(w.substr(l.start, l.n), w.substr(r.start, r.n));
  }
  if (rank < 0) return;
  heap_.push_back({left, right, 0.0f, rank, l.n + r.n});
  // Lowest rank first; on a tie the smaller left index.
  std::push_heap(heap_.begin(), heap_.end(), [](const Bigram& a, const Bigram& b) {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  });
}

void Tokenizer::bpe_word(std::string_view raw_utf8, std::vector<TokenId>& out) {
  const Vocab& v = *vocab_;
  // Byte-encode: every byte of the (re-encoded, well-formed) piece maps to one character.
  word_.clear();
  symbols_.clear();
  heap_.clear();
  for (const char c : raw_utf8) {
    const auto b = static_cast<uint8_t>(c);
    const std::string_view t = bpe_byte_to_text(b);
    const auto index = static_cast<int32_t>(symbols_.size());
    symbols_.push_back({word_.size(), t.size(), index - 1, index + 1, v.bpe_byte_symbol(b)});
    word_.append(t);
  }
  if (symbols_.empty()) return;
  symbols_.back().next = -1;
  if (v.ignore_merges()) {
    if (const TokenId id = v.find(word_); id != kNoToken) {
      out.push_back(id);
      return;
    }
  }
  for (size_t i = 1; i < symbols_.size(); ++i) {
    bpe_add_bigram(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));
  }
  const auto cmp = [](const Bigram& a, const Bigram& b) {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  };
  while (!heap_.empty()) {
    std::pop_heap(heap_.begin(), heap_.end(), cmp);
    const Bigram bg = heap_.back();
    heap_.pop_back();
    Symbol& l = symbols_[static_cast<size_t>(bg.left)];
    Symbol& r = symbols_[static_cast<size_t>(bg.right)];
    // Both alive means r is still l's neighbour, so equal lengths mean equal text.
    if (l.n == 0 || r.n == 0 || l.n + r.n != bg.size) continue;
    if (l.id != kNoToken && r.id != kNoToken) {
      l.id = v.find_merge(l.id, r.id).merged;
    } else {
      l.id = v.find(std::string_view(word_).substr(l.start, l.n + r.n));
    }
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) symbols_[static_cast<size_t>(r.next)].prev = bg.left;
    bpe_add_bigram(l.prev, bg.left);
    bpe_add_bigram(bg.left, l.next);
  }
  for (int32_t i = 0; i != -1; i = symbols_[static_cast<size_t>(i)].next) {
    const Symbol& s = symbols_[static_cast<size_t>(i)];
    if (s.id != kNoToken) {
      out.push_back(s.id);
      continue;
    }
    // Not a token: each byte of the symbol's text on its own, silently dropped when absent.
    for (const char c : std::string_view(word_).substr(s.start, s.n)) {
      const TokenId id = v.raw_byte_token(static_cast<uint8_t>(c));
      if (id != kNoToken) out.push_back(id);
    }
  }
}

Status Tokenizer::encode_bpe(std::string_view fragment, std::vector<TokenId>& out,
                             size_t max_tokens) {
  // Decode to code points; each byte of an ill-formed sequence becomes U+FFFD (§5.4).
  cpts_.clear();
  for (size_t i = 0; i < fragment.size();) {
    char32_t cp = 0;
    size_t len = 1;
    if (!decode_utf8(fragment, i, &cp, &len)) {
      cp = 0xFFFD;
      len = 1;
    }
    cpts_.push_back(cp);
    i += len;
  }
  pre_tokenize(vocab_->pre_tokenizer(), cpts_, piece_ends_, piece_ends_tmp_);
  std::string piece;
  size_t begin = 0;
  for (const size_t end : piece_ends_) {
    piece.clear();
    for (size_t i = begin; i < end; ++i) append_utf8(piece, cpts_[i]);
    begin = end;
    bpe_word(piece, out);
    if (out.size() > max_tokens) return too_many_tokens(max_tokens);
  }
  return Status();
}

Result<std::vector<TokenId>> tokenize(const Vocab& vocab, std::string_view text, bool add_special,
                                      bool parse_special, size_t max_tokens) {
  Tokenizer t(vocab);
  return t.encode(text, add_special, parse_special, max_tokens);
}

// ---------------------------------------------------------------------------------------------
// Decoding

std::string token_to_piece(const Vocab& vocab, TokenId id, int lstrip, bool special) {
  if (!vocab.is_valid(id)) return {};
  if (!special && (vocab.token_attrs(id) & (kAttrControl | kAttrUnknown)) != 0) return {};
  std::string_view piece = vocab.token_piece(id);
  for (int i = 0; i < lstrip && !piece.empty() && piece.front() == ' '; ++i) piece.remove_prefix(1);
  return std::string(piece);
}

std::string detokenize(const Vocab& vocab, std::span<const TokenId> tokens, bool remove_special,
                       bool unparse_special) {
  bool remove_space = vocab.add_space_prefix();
  if (remove_special && vocab.add_bos() && !tokens.empty() && tokens.front() == vocab.bos()) {
    remove_space = false;
    tokens = tokens.subspan(1);
  }
  if (remove_special && vocab.add_eos() && !tokens.empty() && tokens.back() == vocab.eos()) {
    tokens = tokens.first(tokens.size() - 1);
  }
  std::string text;
  for (const TokenId id : tokens) {
    text += token_to_piece(vocab, id, remove_space ? 1 : 0, unparse_special);
    remove_space = false;
  }
  if (vocab.clean_spaces()) clean_spaces_in_place(text);
  return text;
}

std::string utf8_replace_invalid(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  append_sanitized(s, /*at_end=*/true, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Streaming

StreamingDetokenizer::StreamingDetokenizer(const Vocab& vocab, bool unparse_special,
                                           bool strip_leading_space)
    : vocab_(&vocab), unparse_special_(unparse_special), strip_next_(strip_leading_space) {}

std::string StreamingDetokenizer::push(TokenId id) {
  const std::string piece = token_to_piece(*vocab_, id, strip_next_ ? 1 : 0, unparse_special_);
  strip_next_ = false;
  const std::string cleaned = vocab_->clean_spaces() ? clean(piece, false) : piece;
  utf8_pending_ += cleaned;
  return take_utf8(false);
}

std::string StreamingDetokenizer::finish() {
  if (vocab_->clean_spaces()) utf8_pending_ += clean({}, true);
  return take_utf8(true);
}

std::string StreamingDetokenizer::take_utf8(bool at_end) {
  std::string out;
  const size_t used = append_sanitized(utf8_pending_, at_end, out);
  utf8_pending_.erase(0, used);
  return out;
}

// The passes of clean_spaces_in_place as a pipeline of stages that each keep back only the bytes
// whose fate depends on input not seen yet. `p1_`, `p2_`, `p3_` are the undecided inputs of the
// stages; pass (b) also holds its last output byte when it is a space it may still remove.
std::string StreamingDetokenizer::clean(std::string_view raw, bool at_end) {
  // (a): a space is decided by the byte after it.
  p1_.append(raw);
  std::string s1;
  size_t i = 0;
  for (; i < p1_.size(); ++i) {
    const char c = p1_[i];
    if (c != ' ') {
      s1.push_back(c);
      continue;
    }
    if (i + 1 >= p1_.size()) break;
    const char x = p1_[i + 1];
    if (x != '?' && x != '!' && x != '.' && x != ',') s1.push_back(' ');
  }
  p1_.erase(0, i);
  if (at_end) {
    s1 += p1_;
    p1_.clear();
  }
  // (b): a quote after a space is decided by the byte after the quote. A trailing output space
  // is held back (p2_held_space_) because a following " ' " match removes it.
  p2_.append(s1);
  std::string s2;
  if (p2_held_space_) s2.push_back(' ');
  p2_held_space_ = false;
  size_t j = 0;
  for (; j < p2_.size(); ++j) {
    const char x = p2_[j];
    if (!p2_started_) {
      p2_started_ = true;
      s2.push_back(x);
      p2_prev_ = x;
      continue;
    }
    if (x == '\'' && p2_prev_ == ' ') {
      if (j + 1 >= p2_.size() && !at_end) break;
      if (j + 1 < p2_.size() && p2_[j + 1] == ' ') {
        s2.pop_back();  // the space before the quote: always the last output byte
        s2.push_back('\'');
        p2_prev_ = '\0';  // the skipped space does not count as a previous space
        ++j;
        continue;
      }
    }
    s2.push_back(x);
    p2_prev_ = x;
  }
  p2_.erase(0, j);
  if (!at_end && !s2.empty() && s2.back() == ' ') {
    s2.pop_back();
    p2_held_space_ = true;
  }
  // (c): a space is decided by up to three bytes after it.
  p3_.append(s2);
  std::string s3;
  size_t k = 0;
  for (; k < p3_.size(); ++k) {
    const char c = p3_[k];
    if (c != ' ') {
      s3.push_back(c);
      continue;
    }
    if (k + 3 >= p3_.size() && !at_end) break;
    bool drop = false;
    if (k + 1 < p3_.size() && p3_[k + 1] == '\'' && k + 2 < p3_.size()) {
      const char x1 = p3_[k + 2];
      if (x1 == 's' || x1 == 'm') {
        drop = true;
      } else if (x1 != 't' && x1 != 'd' && k + 3 < p3_.size()) {
        const char x2 = p3_[k + 3];
        drop = (x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e');
      }
    }
    if (!drop) s3.push_back(' ');
  }
  p3_.erase(0, k);
  return s3;
}

}  // namespace ztslm::engine::tokenizer
