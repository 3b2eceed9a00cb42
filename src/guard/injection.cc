#include "guard/injection.h"

#include <hs/hs.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/byte_reader.h"
#include "core/byte_writer.h"
#include "core/check.h"
#include "core/utf8.h"
#include "guard/decode.h"
#include "guard/unicode.h"

namespace ztslm::guard {
namespace {

struct Rule {
  const char* name;
  const char* regex;
};

// Curated tier-1 rules over lower-cased analysis views. Each is a known injection or jailbreak
// device; the model learns how much each one counts, so a rule may be broad.
constexpr Rule kRules[] = {
    {"ignore_previous_instructions",
     R"((ignore|disregard|forget|skip|override|bypass|neglect|drop)\W+((all|any|the|your|my|these|those|every|previous|prior|above|earlier|preceding|initial|original|system|former|old)\W+){0,4}(instructions?|prompts?|rules?|directions?|guidelines?|context|messages?|commands?|orders?|constraints?|programming))"},
    {"ignore_everything", R"((ignore|forget|disregard)\W+(everything|all\W+that|what\W+(i|you)))"},
    {"new_instructions", R"((new|updated|real|actual|true|additional|secret|hidden)\W+(instructions?|task|rules?|directive|objective)\W*:)"},
    {"system_prompt_request",
     R"((reveal|show|print|repeat|output|display|tell\W+me|leak|give\W+me|share|write\W+out|spell\W+out|what\W+(is|are|was|were))\W+((\w+\W+){0,4})(system\W+(prompt|message|instructions?)|initial\W+(prompt|instructions?)|hidden\W+(prompt|instructions?)|original\W+(prompt|instructions?)|your\W+(instructions|prompt|rules|guidelines)|pre-?prompt|secret\W+(key|password|word)))"},
    {"repeat_above", R"((repeat|print|output|copy)\W+(the\W+)?(words|text|everything|all|content)\W+(above|before|prior))"},
    {"prompt_boundary", R"((beginning|start|top)\W+of\W+(the|this|your)\W+(conversation|prompt|context|document))"},
    {"dan", R"(\bdan\b|do\W+anything\W+now|\bstan\b|\bdude\b\W+mode|\baim\b\W)"},
    {"developer_mode", R"((developer|dev|debug|god|admin|sudo|jailbreak|unrestricted|evil)\W+mode)"},
    {"jailbreak_word", R"(jail\W?br(ea|o)k)"},
    {"no_restrictions",
     R"((no|without|free\W+(of|from)|not\W+bound\W+by|ignore\W+(all|any))\W+((\w+\W+){0,2})(ethical|moral|content|safety)?\W*(restrictions|limitations|limits|filters|guidelines|censorship|rules|boundaries|policies|constraints))"},
    {"unfiltered_persona", R"((unfiltered|uncensored|amoral|unrestricted|unethical|immoral|unbound|rogue)\W+((\w+\W+){0,2})(ai|assistant|model|chatbot|bot|response|version|character|entity))"},
    {"role_override", R"((you\W+are\W+(now|no\W+longer)|from\W+now\W+on\W+(you|your)|pretend\W+(to\W+be|you\W+are|that)|act\W+as\W+(an?|my|if)|stay\W+in\W+character|you\W+will\W+now\W+(act|be|play)|roleplay\W+as|simulate\W+(an?|being)))"},
    {"dual_response", R"((answer|respond|reply)\W+(as|in)\W+(both|two)|two\W+(different\W+)?(responses|answers|paragraphs)|\[?(classic|jailbreak|normal|developer)\W+(output|response)\]?)"},
    {"fake_system_tag", R"((\[(system|admin|developer|instruction)\]|<\|?(system|im_start|im_end|endoftext)\|?>|#{2,}\W*(system|instruction|new\W+instruction)|\bsystem\W*(override|update|message)\W*:))"},
    {"markdown_exfil", R"(!\[[^\]]{0,64}\]\(https?://)"},
    {"send_data", R"((send|forward|post|upload|exfiltrate|transmit|email)\W+((\w+\W+){0,5})(to|at)\W+(https?://|\S+@\S+|the\W+(following|url|address|link)))"},
    {"pwned", R"((say|print|output|respond\W+with|write|reply\W+with|return)\W+["']?(i\W+have\W+been\W+pwned|pwned|hacked|owned|haha))"},
    {"decode_and_follow", R"((decode|decrypt|translate|reverse|deobfuscate)\W+((\w+\W+){0,3})(base64|rot13|hex|cipher|reversed|encoded|following)\W+((\w+\W+){0,6})(follow|execute|obey|do|answer|respond))"},
    {"stop_and_do", R"((stop|halt|cease)\W+(everything|what\W+you\W+are\W+doing|all\W+previous)|now\W+(instead|forget))"},
    {"german_ignore", R"((vergiss|ignoriere|ignorieren\W+sie|vergessen\W+sie)\W+((alle|alles|die|deine|ihre|vorherigen|bisherigen|obigen|vorangegangenen)\W+){0,3})"},
    {"german_role", R"((nun\W+bist\W+du|du\W+bist\W+(jetzt|nun)|stell\W+dir\W+vor\W+du\W+bist|tu\W+so\W+als))"},
    {"hypothetical_evasion", R"((hypothetical(ly)?|fictional|imaginary|in\W+a\W+world\W+where)\W+((\w+\W+){0,6})(no\W+(rules|laws|restrictions)|illegal|without\W+consequences))"},
    {"token_smuggle", R"((say|print|output|complete)\W+((\w+\W+){0,3})(the\W+)?(password|secret|key|flag|access\W+code))"},
    {"opposite_day", R"((opposite|reverse)\W+(day|mode|psychology)|always\W+(lie|answer\W+the\W+opposite))"},
    {"refusal_suppression", R"((never|don'?t|do\W+not|must\W+not|cannot|can'?t)\W+((\w+\W+){0,2})(refuse|decline|apologi[sz]e|say\W+(no|sorry|you\W+can'?t)|warn|remind|mention\W+(ethics|legality|morality)))"},
    {"begin_with", R"((start|begin)\W+(your|each|every)\W+(response|answer|reply|message)\W+with)"},
    {"instruction_hierarchy", R"((above|previous|prior|earlier)\W+(instructions?|prompt|rules?)\W+((\w+\W+){0,3})(are|were|is)\W+((\w+\W+){0,2})(void|invalid|cancel+ed|obsolete|fake|wrong|test|null))"},
    {"hidden_instruction_doc", R"((assistant|ai|model|chatbot|llm)\W*[,:]\W*((please\W+)?)(ignore|instead|now|you\W+must|do\W+not|forward|send|reply|summari[sz]e\W+as))"},
};
constexpr size_t kNumRules = std::size(kRules);

constexpr const char* kSignals[] = {
    "unicode:tag_character", "unicode:bidi_control", "unicode:invisible",
    "unicode:variation_selector", "unicode:mixed_script", "decoded:base64", "decoded:hex",
    "decoded:url", "decoded:tag_characters", "decoded:variation_selectors",
    "obfuscation:leetspeak", "obfuscation:split_words",
    // Appended later (a model with fewer signal weights gives the missing ones weight 0).
    "obfuscation:invisible_in_words", "obfuscation:mixed_script_words",
    "obfuscation:spaced_letters",
};
constexpr size_t kNumSignals = std::size(kSignals);
constexpr size_t kFirstPayloadSignal = 5;
constexpr size_t kLeetSignal = 10;
constexpr size_t kSplitSignal = 11;
constexpr size_t kInvisibleInWordsSignal = 12;
constexpr size_t kMixedScriptWordsSignal = 13;
constexpr size_t kSpacedLettersSignal = 14;

// The rule database is process-wide and never freed, so a thread sizes its scratch once
// (hs_alloc_scratch validates the whole database on every call: too slow per scan).
struct RuleScratch {
  hs_scratch_t* scratch = nullptr;
  bool ready = false;
  ~RuleScratch() { hs_free_scratch(scratch); }
};
thread_local RuleScratch t_rule_scratch;

class RuleSet {
 public:
  static const RuleSet& shared() {
    static const RuleSet* set = [] {
      auto* s = new RuleSet();
      std::vector<const char*> exprs;
      std::vector<unsigned> flags, ids;
      for (size_t i = 0; i < kNumRules; ++i) {
        exprs.push_back(kRules[i].regex);
        flags.push_back(HS_FLAG_CASELESS | HS_FLAG_SINGLEMATCH);
        ids.push_back(static_cast<unsigned>(i));
      }
      hs_compile_error_t* err = nullptr;
      const hs_error_t rc =
          hs_compile_multi(exprs.data(), flags.data(), ids.data(), static_cast<unsigned>(kNumRules),
                           HS_MODE_BLOCK, nullptr, &s->db_, &err);
      if (rc != HS_SUCCESS) {
        std::fprintf(stderr, "injection rule %d: %s\n", err ? err->expression : -1,
                     err ? err->message : "?");
      }
      ZTSLM_CHECK(rc == HS_SUCCESS);
      return s;
    }();
    return *set;
  }

  // Sets hits[i] = 1 for every rule matching `text`.
  Status match(std::string_view text, std::vector<uint8_t>& hits) const {
    if (text.empty()) return Status();
    if (!t_rule_scratch.ready) {
      if (hs_alloc_scratch(db_, &t_rule_scratch.scratch) != HS_SUCCESS) {
        return Status::internal("hyperscan scratch allocation failed");
      }
      t_rule_scratch.ready = true;
    }
    auto on_match = [](unsigned int id, unsigned long long, unsigned long long, unsigned int,
                       void* ctx) -> int {
      (*static_cast<std::vector<uint8_t>*>(ctx))[id] = 1;
      return 0;
    };
    const hs_error_t rc = hs_scan(db_, text.data(), static_cast<unsigned>(text.size()), 0,
                                  t_rule_scratch.scratch, on_match, &hits);
    if (rc != HS_SUCCESS) return Status::internal("hyperscan rule scan failed: {}", rc);
    return Status();
  }

 private:
  hs_database_t* db_ = nullptr;
};

uint64_t fnv1a(std::string_view s, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ull ^ seed;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

uint32_t mix(uint64_t h, uint32_t n_buckets) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return static_cast<uint32_t>(h & (n_buckets - 1));
}

std::string deleet(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    switch (c) {
      case '0': c = 'o'; break;
      case '1': c = 'i'; break;
      case '3': c = 'e'; break;
      case '4': c = 'a'; break;
      case '5': c = 's'; break;
      case '7': c = 't'; break;
      case '8': c = 'b'; break;
      case '9': c = 'g'; break;
      case '@': c = 'a'; break;
      case '$': c = 's'; break;
      default: break;
    }
  }
  return out;
}

std::string reverse_codepoints(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    out.append(s.substr(start, end - start));
    end = start;
  }
  return out;
}

// `text` with each ill-formed UTF-8 byte replaced by U+FFFD.
std::string valid_copy(std::string_view text) {
  if (is_valid_utf8(text)) return std::string(text);
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    char32_t cp = 0;
    size_t len = 1;
    if (decode_utf8(text, pos, &cp, &len)) {
      out.append(text.substr(pos, len));
    } else {
      append_utf8(out, 0xFFFD);
    }
    pos += len;
  }
  return out;
}

double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

}  // namespace

std::span<const char* const> injection_rule_names() {
  static const std::vector<const char*> names = [] {
    std::vector<const char*> v;
    for (const Rule& r : kRules) v.push_back(r.name);
    return v;
  }();
  return names;
}

namespace {

bool is_word_byte(unsigned char c) { return std::isalnum(c) || c >= 0x80; }

void add_byte_grams(std::string_view s, size_t lo, size_t hi, uint64_t salt, uint32_t n_buckets,
                    std::vector<uint32_t>& out) {
  for (size_t n = lo; n <= hi; ++n) {
    if (s.size() < n) break;
    for (size_t i = 0; i + n <= s.size(); ++i) {
      out.push_back(mix(fnv1a(s.substr(i, n), n + salt), n_buckets));
    }
  }
}

}  // namespace

std::span<const char* const> injection_signal_names() { return kSignals; }

namespace {

// Leetspeak: at least 3 words, and a fifth of all words, are leet words: letters with a
// look-alike digit (0/1/3/4/5/7) between two letters, or with two such digits ("v1", "7th" and
// "python3" are not).
bool looks_leet(std::string_view view) {
  auto alpha = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; };
  auto leet_digit = [](char c) {
    return c == '0' || c == '1' || c == '3' || c == '4' || c == '5' || c == '7';
  };
  size_t words = 0, leet = 0, pos = 0;
  while (pos < view.size()) {
    while (pos < view.size() && !std::isalnum(static_cast<unsigned char>(view[pos]))) ++pos;
    size_t end = pos;
    while (end < view.size() && std::isalnum(static_cast<unsigned char>(view[end]))) ++end;
    if (end == pos) break;
    size_t letters = 0, digits = 0;
    bool inner = false;
    for (size_t i = pos; i < end; ++i) {
      letters += alpha(view[i]) ? 1 : 0;
      if (!leet_digit(view[i])) continue;
      ++digits;
      inner |= i > pos && i + 1 < end && alpha(view[i - 1]) && alpha(view[i + 1]);
    }
    ++words;
    leet += letters > 0 && (inner || digits >= 2) ? 1 : 0;
    pos = end;
  }
  return leet >= 3 && leet * 5 >= words;
}

// Words split over lines: at least 6 non-empty lines, 60 % of them 1..4 bytes long.
bool looks_split(std::string_view text) {
  size_t lines = 0, short_lines = 0, pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    size_t n = end - pos;
    if (n > 0 && text[end - 1] == '\r') --n;
    if (n > 0) {
      ++lines;
      short_lines += n <= 4 ? 1 : 0;
    }
    pos = end + 1;
  }
  return lines >= 6 && short_lines * 5 >= lines * 3;
}

bool is_ascii_letter(char32_t cp) { return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'); }
bool is_greek_or_cyrillic_letter(char32_t cp) {
  return (cp >= 0x0370 && cp <= 0x03FF) || (cp >= 0x0400 && cp <= 0x04FF);
}
bool is_letter_like(char32_t cp) {
  return is_ascii_letter(cp) || (cp >= 0x00C0 && cp <= 0x024F) || is_greek_or_cyrillic_letter(cp);
}

// Obfuscation counts of the original text (valid UTF-8): invisible characters with a letter on
// each side (words cut by zero-width characters), and words that mix Latin letters with Greek
// or Cyrillic look-alikes (homoglyph substitution). A Russian or Greek sentence has words of one
// script, and zero-width characters in ordinary text sit between words, not inside them.
struct ObfuscationCounts {
  size_t invisible_in_words = 0;
  size_t mixed_script_words = 0;
};

ObfuscationCounts count_obfuscation(std::string_view text) {
  ObfuscationCounts c;
  char32_t prev_visible = 0;
  bool pending_invisible = false;
  bool word_latin = false, word_other = false;
  auto end_word = [&] {
    if (word_latin && word_other) ++c.mixed_script_words;
    word_latin = word_other = false;
  };
  size_t pos = 0;
  while (pos < text.size()) {
    char32_t cp = 0;
    size_t len = 1;
    if (!decode_utf8(text, pos, &cp, &len)) {
      pos += 1;
      continue;
    }
    pos += len;
    if (is_invisible(cp)) {
      pending_invisible = pending_invisible || is_letter_like(prev_visible);
      continue;
    }
    if (pending_invisible && is_letter_like(cp)) ++c.invisible_in_words;
    pending_invisible = false;
    prev_visible = cp;
    if (is_ascii_letter(cp)) {
      word_latin = true;
    } else if (is_greek_or_cyrillic_letter(cp)) {
      word_other = true;
    } else if (!is_letter_like(cp)) {
      end_word();
    }
  }
  end_word();
  return c;
}

// Letters spelled out one by one ("s a y  t h a t"): a run of at least 6 single-letter tokens.
// Returns `text` with every such run joined, one space between the letters marking a word and
// two or more whitespace bytes a word boundary ("say that"), or "" when there is no run.
std::string join_spaced_letters(std::string_view text) {
  struct Token {
    std::string_view text;
    size_t gap = 0;  // whitespace bytes after it
  };
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  std::vector<Token> tokens;
  size_t pos = 0;
  while (pos < text.size() && space(text[pos])) ++pos;
  while (pos < text.size()) {
    size_t end = pos;
    while (end < text.size() && !space(text[end])) ++end;
    size_t next = end;
    while (next < text.size() && space(text[next])) ++next;
    tokens.push_back({text.substr(pos, end - pos), next - end});
    pos = next;
  }
  auto single = [](const Token& t) {
    return t.text.size() == 1 && std::isalpha(static_cast<unsigned char>(t.text[0])) != 0;
  };
  std::string out;
  out.reserve(text.size());
  bool found = false;
  for (size_t i = 0; i < tokens.size();) {
    size_t j = i;
    while (j < tokens.size() && single(tokens[j])) ++j;
    if (j - i >= 6) {
      found = true;
      for (size_t k = i; k < j; ++k) {
        out += tokens[k].text;
        if (k + 1 == j || tokens[k].gap >= 2) out.push_back(' ');
      }
      i = j;
      continue;
    }
    for (size_t k = i; k < std::max(j, i + 1); ++k) {
      out += tokens[k].text;
      out.push_back(' ');
    }
    i = std::max(j, i + 1);
  }
  return found ? out : std::string();
}

}  // namespace

FeatureVector extract_features(std::string_view view, uint32_t n_buckets, uint32_t features,
                               size_t max_bytes) {
  FeatureVector f;
  if (view.size() > max_bytes) view = view.substr(0, max_bytes);
  const bool squeezed = (features & kFeatureSqueezed) != 0;
  f.buckets.reserve(view.size() * (squeezed ? 6 : 4));
  // Byte 3..5-grams (the view is space-collapsed and lower case).
  add_byte_grams(view, 3, 5, 0, n_buckets, f.buckets);
  // Words (runs of letters/digits/non-ASCII), unigrams, bigrams and (optionally) trigrams.
  uint64_t prev = 0, prev2 = 0;
  size_t pos = 0;
  while (pos < view.size()) {
    while (pos < view.size() && !is_word_byte(static_cast<unsigned char>(view[pos]))) ++pos;
    size_t end = pos;
    while (end < view.size() && is_word_byte(static_cast<unsigned char>(view[end]))) ++end;
    if (end == pos) break;
    const uint64_t h = fnv1a(view.substr(pos, end - pos), 0x77);
    f.buckets.push_back(mix(h, n_buckets));
    if (prev != 0) f.buckets.push_back(mix(prev * 31 + h, n_buckets));
    if ((features & kFeatureWordTrigrams) != 0 && prev2 != 0) {
      f.buckets.push_back(mix((prev2 * 31 + prev) * 37 + h + 0x3A3A, n_buckets));
    }
    prev2 = prev;
    prev = h;
    pos = end;
  }
  if (squeezed) {
    // Words split by spaces, newlines or punctuation ("ign ore", "i-g-n-o-r-e") join up again.
    std::string sq;
    sq.reserve(view.size());
    for (const char c : view) {
      if (is_word_byte(static_cast<unsigned char>(c))) sq.push_back(c);
    }
    add_byte_grams(sq, 4, 5, 0x5100, n_buckets, f.buckets);
  }
  if ((features & kFeatureBinary) != 0) {
    std::sort(f.buckets.begin(), f.buckets.end());
    f.buckets.erase(std::unique(f.buckets.begin(), f.buckets.end()), f.buckets.end());
  }
  f.value = f.buckets.empty() ? 0.0f : static_cast<float>(1.0 / std::sqrt(static_cast<double>(f.buckets.size())));
  return f;
}

std::vector<FeatureVector> view_features(std::string_view view, uint32_t n_buckets,
                                         uint32_t features) {
  std::vector<FeatureVector> out;
  out.push_back(extract_features(view, n_buckets, features));
  if (view.size() <= kWindowBytes + kWindowStride / 2) return out;
  for (size_t start = 0; start < view.size() && out.size() <= kMaxWindows; start += kWindowStride) {
    size_t s0 = start;
    while (s0 > 0 && (static_cast<unsigned char>(view[s0]) & 0xC0) == 0x80) --s0;
    size_t e = std::min(view.size(), s0 + kWindowBytes);
    while (e < view.size() && (static_cast<unsigned char>(view[e]) & 0xC0) == 0x80) --e;
    out.push_back(extract_features(view.substr(s0, e - s0), n_buckets, features));
    if (e == view.size()) break;
  }
  return out;
}

double InjectionModel::logit(const FeatureVector& f, std::span<const uint8_t> rule_hits) const {
  double z = bias;
  double dot = 0.0;
  for (const uint32_t b : f.buckets) dot += weights[b];
  z += dot * f.value;
  for (size_t i = 0; i < rule_hits.size() && i < rule_weights.size(); ++i) {
    if (rule_hits[i]) z += rule_weights[i];
  }
  return z;
}

double InjectionModel::floor(std::span<const uint8_t> rule_hits) const {
  double f = 0.0;
  for (size_t i = 0; i < rule_hits.size() && i < rule_floors.size(); ++i) {
    if (rule_hits[i]) f = std::max(f, static_cast<double>(rule_floors[i]));
  }
  return f;
}

std::vector<std::byte> InjectionModel::serialize() const {
  ByteWriter w;
  w.put_string("ZTIM");
  w.put_u32_le(3);
  w.put_u32_le(n_buckets);
  w.put_u32_le(static_cast<uint32_t>(rule_weights.size()));
  w.put_u32_le(features);
  w.put_f32_le(bias);
  w.put_f32_le(threshold);
  float max_abs = 0.0f;
  for (const float v : weights) {
    if (std::isfinite(v)) max_abs = std::max(max_abs, std::fabs(v));
  }
  float scale = max_abs > 0.0f ? max_abs / 32767.0f : 1.0f;
  if (!(scale > 0.0f)) scale = 1.0f;  // subnormal weights underflow: they quantise to 0
  w.put_f32_le(scale);
  for (const float v : weights) {
    // Non-finite weights (never produced by training) are clamped, so the file stays valid.
    const float q = std::isnan(v) ? 0.0f : std::clamp(v / scale, -32767.0f, 32767.0f);
    w.put_i16_le(static_cast<int16_t>(std::lround(q)));
  }
  for (const float v : rule_weights) w.put_f32_le(v);
  for (size_t i = 0; i < rule_weights.size(); ++i) {
    w.put_f32_le(i < rule_floors.size() ? rule_floors[i] : 0.0f);
  }
  return w.take();
}

Result<InjectionModel> InjectionModel::parse(std::span<const std::byte> bytes) {
  ByteReader r(bytes);
  std::span<const std::byte> magic;
  uint32_t version = 0, n_buckets = 0, n_rules = 0;
  InjectionModel m;
  float scale = 0.0f;
  if (!r.read_bytes(4, &magic) || std::memcmp(magic.data(), "ZTIM", 4) != 0) {
    return Status::malformed("injection model: bad magic");
  }
  if (!r.read_u32_le(&version) || (version != 2 && version != 3)) {
    return Status::malformed("injection model: unsupported version");
  }
  if (!r.read_u32_le(&n_buckets) || !r.read_u32_le(&n_rules) ||
      (version >= 3 && !r.read_u32_le(&m.features)) || !r.read_f32_le(&m.bias) ||
      !r.read_f32_le(&m.threshold) || !r.read_f32_le(&scale)) {
    return Status::malformed("injection model: truncated header");
  }
  if ((m.features & ~kKnownFeatures) != 0) {
    return Status::malformed("injection model: unknown feature flags {:#x}", m.features);
  }
  if (n_buckets == 0 || (n_buckets & (n_buckets - 1)) != 0) {
    return Status::malformed("injection model: bucket count {} is not a power of two", n_buckets);
  }
  if (n_buckets > (1u << 22)) {
    return Status::resource_exhausted("injection model: bucket count {} exceeds limit {}",
                                      n_buckets, 1u << 22);
  }
  if (n_rules > 4096) {
    return Status::resource_exhausted("injection model: rule count {} exceeds limit 4096", n_rules);
  }
  // The scale must keep every dequantised weight finite (|q| <= 32768); serialize() writes a
  // positive one.
  if (!std::isfinite(m.bias) || !std::isfinite(m.threshold) || !(scale > 0.0f) ||
      !std::isfinite(scale * 32768.0f) || m.threshold < 0.0f || m.threshold > 1.0f) {
    return Status::malformed("injection model: non-finite or out-of-range header value");
  }
  if (r.size() != static_cast<size_t>(n_buckets) * 2 + static_cast<size_t>(n_rules) * 8) {
    return Status::malformed("injection model: body of {} bytes does not match the header",
                             r.size());
  }
  m.n_buckets = n_buckets;
  m.weights.resize(n_buckets);
  for (uint32_t i = 0; i < n_buckets; ++i) {
    int16_t q = 0;
    if (!r.read_i16_le(&q)) return Status::malformed("injection model: truncated weights");
    m.weights[i] = static_cast<float>(q) * scale;
  }
  m.rule_weights.resize(n_rules);
  for (uint32_t i = 0; i < n_rules; ++i) {
    if (!r.read_f32_le(&m.rule_weights[i]) || !std::isfinite(m.rule_weights[i])) {
      return Status::malformed("injection model: bad rule weight {}", i);
    }
  }
  m.rule_floors.resize(n_rules);
  for (uint32_t i = 0; i < n_rules; ++i) {
    if (!r.read_f32_le(&m.rule_floors[i]) || !(m.rule_floors[i] >= 0.0f && m.rule_floors[i] <= 1.0f)) {
      return Status::malformed("injection model: bad rule floor {}", i);
    }
  }
  return m;
}

Result<AnalysedText> analyse_for_training(std::string_view text) {
  const std::string valid = valid_copy(text);
  AnalysedText a;
  a.rule_hits.assign(kNumRules + kNumSignals, 0);
  ZTSLM_ASSIGN_OR_RETURN(a.view, analysis_view(valid));
  auto report = check_input(valid);
  if (report.has_value()) {
    for (size_t k = 0; k < 5; ++k) {
      const auto kind = static_cast<UnicodeKind>(k);
      if (report->count(kind) > 0) {
        a.smuggling.emplace_back(unicode_kind_name(kind));
        a.rule_hits[kNumRules + k] = 1;
      }
    }
  }
  const RuleSet& rules = RuleSet::shared();
  ZTSLM_TRY(rules.match(a.view, a.rule_hits));
  ZTSLM_TRY(rules.match(rot13(a.view), a.rule_hits));
  ZTSLM_TRY(rules.match(reverse_codepoints(a.view), a.rule_hits));
  std::string leet = deleet(a.view);
  ZTSLM_TRY(rules.match(leet, a.rule_hits));
  DecodeLimits dl;
  dl.include_rot13 = false;  // matched above on the view
  for (DecodedView& d : decode_payloads(valid, dl)) {
    const std::string payload = valid_copy(d.text);
    auto v = analysis_view(payload);
    if (!v.has_value() || v->empty()) continue;
    ZTSLM_TRY(rules.match(*v, a.rule_hits));
    const size_t enc = static_cast<size_t>(d.encoding);
    // Encoding order: base64, hex, url, rot13 (not decoded here), tag, variation selector.
    const size_t signal = enc < 3 ? enc : enc - 1;
    if (d.encoding != Encoding::kRot13 && signal < 5) a.rule_hits[kNumRules + kFirstPayloadSignal + signal] = 1;
    a.payload_kinds.emplace_back(encoding_name(d.encoding));
    a.payload_views.push_back(std::move(v).value());
  }
  // A recognised leetspeak text is also scored de-leeted.
  if (looks_leet(a.view)) {
    a.rule_hits[kNumRules + kLeetSignal] = 1;
    a.payload_kinds.emplace_back("leetspeak");
    a.payload_views.push_back(std::move(leet));
  }
  if (looks_split(valid)) a.rule_hits[kNumRules + kSplitSignal] = 1;
  const ObfuscationCounts oc = count_obfuscation(valid);
  if (oc.invisible_in_words >= 3) a.rule_hits[kNumRules + kInvisibleInWordsSignal] = 1;
  if (oc.mixed_script_words >= 2) a.rule_hits[kNumRules + kMixedScriptWordsSignal] = 1;
  // Letters spelled out with spaces are joined and the result scored as another view.
  const std::string joined = join_spaced_letters(valid);
  if (!joined.empty()) {
    a.rule_hits[kNumRules + kSpacedLettersSignal] = 1;
    auto v = analysis_view(joined);
    if (v.has_value() && !v->empty()) {
      ZTSLM_TRY(rules.match(*v, a.rule_hits));
      a.payload_kinds.emplace_back("spaced_letters");
      a.payload_views.push_back(std::move(v).value());
    }
  }
  return a;
}

struct InjectionDetector::Rules {};

InjectionDetector::~InjectionDetector() = default;

Result<std::unique_ptr<InjectionDetector>> InjectionDetector::create(InjectionModel model) {
  // A model trained before some signals existed gives the missing ones weight 0 (signals are
  // only ever appended).
  if (model.rule_weights.size() >= kNumRules && model.rule_weights.size() < kNumRules + kNumSignals) {
    model.rule_weights.resize(kNumRules + kNumSignals, 0.0f);
  }
  if (model.rule_weights.size() != kNumRules + kNumSignals) {
    return Status::invalid_argument(
        "injection model has {} rule weights, the rule table {} (+{} signals)",
        model.rule_weights.size(), kNumRules, kNumSignals);
  }
  model.rule_floors.resize(kNumRules + kNumSignals, 0.0f);
  if (model.weights.size() != model.n_buckets) {
    return Status::invalid_argument("injection model weight count does not match buckets");
  }
  (void)RuleSet::shared();  // compile once, now
  std::unique_ptr<InjectionDetector> d(new InjectionDetector());
  d->model_ = std::move(model);
  return d;
}

Result<AnalysedText> InjectionDetector::analyse(std::string_view text) const {
  return analyse_for_training(text);
}

double InjectionDetector::probability(const AnalysedText& a) const {
  return probability(a, nullptr);
}

double InjectionDetector::probability(const AnalysedText& a, double* model_only) const {
  // The rules add the same amount to every candidate's logit.
  double rules = 0.0;
  for (size_t i = 0; i < a.rule_hits.size() && i < model_.rule_weights.size(); ++i) {
    if (a.rule_hits[i]) rules += model_.rule_weights[i];
  }
  const std::vector<uint8_t> no_rules;
  double best_view = -1e300;
  for (const FeatureVector& f : view_features(a.view, model_.n_buckets, model_.features)) {
    best_view = std::max(best_view, model_.logit(f, no_rules));
  }
  double best = best_view;
  for (const std::string& v : a.payload_views) {
    for (const FeatureVector& f : view_features(v, model_.n_buckets, model_.features)) {
      best = std::max(best, model_.logit(f, no_rules));
    }
  }
  if (model_only != nullptr) *model_only = sigmoid(best_view);
  return std::max(sigmoid(best + rules), model_.floor(a.rule_hits));
}

Result<InjectionResult> InjectionDetector::score(std::string_view text, PartSource source) const {
  (void)source;
  InjectionLimits limits;
  if (text.size() > limits.max_text_bytes) {
    text = text.substr(0, limits.max_text_bytes - utf8_incomplete_suffix(
                                                       text.substr(0, limits.max_text_bytes)));
  }
  ZTSLM_ASSIGN_OR_RETURN(AnalysedText a, analyse(text));
  InjectionResult r;
  double model_only = 0.0;
  r.score = probability(a, &model_only);
  r.is_attack = r.score >= model_.threshold;
  for (size_t i = 0; i < kNumRules; ++i) {
    if (a.rule_hits[i]) r.reasons.emplace_back(kRules[i].name);
  }
  if (model_only >= model_.threshold) r.reasons.emplace_back("model");
  for (const size_t k : {kSplitSignal, kInvisibleInWordsSignal, kMixedScriptWordsSignal}) {
    if (a.rule_hits[kNumRules + k]) r.reasons.emplace_back(kSignals[k]);
  }
  for (const std::string& k : a.payload_kinds) r.reasons.push_back("decoded:" + k);
  for (const std::string& k : a.smuggling) r.reasons.push_back("unicode:" + k);
  return r;
}

}  // namespace ztslm::guard
