#include "bpe.h"

#include <map>
#include <unordered_map>
#include <utility>

#include "core/utf8.h"
#include "engine/tokenizer/pre_tokenizer.h"

namespace ztslm::demo {

const char* const kChatmlTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' "
    "}}{% endif %}";

namespace {

// GPT-2 byte map (§5.4): printable bytes map to themselves, the other 68 to U+0100 upwards.
std::vector<std::string> byte_symbols() {
  std::vector<std::string> sym(256);
  char32_t next = 0x100;
  for (int b = 0; b < 256; ++b) {
    const bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    append_utf8(sym[static_cast<size_t>(b)], keep ? static_cast<char32_t>(b) : next++);
  }
  return sym;
}

}  // namespace

BpeVocab train_bpe(const std::vector<std::string>& fragments, size_t vocab_size) {
  const std::vector<std::string> sym = byte_symbols();
  // Pre-tokenize every fragment as the engine does and count the pieces (as raw bytes).
  std::map<std::string, int64_t> piece_counts;
  std::vector<char32_t> cpts;
  std::vector<size_t> starts, ends, scratch;
  for (const std::string& f : fragments) {
    cpts.clear();
    starts.clear();
    for (size_t pos = 0; pos < f.size();) {
      char32_t cp = 0;
      size_t len = 1;
      if (!decode_utf8(f, pos, &cp, &len)) cp = 0xFFFD;
      starts.push_back(pos);
      cpts.push_back(cp);
      pos += len;
    }
    if (cpts.empty()) continue;
    starts.push_back(f.size());
    engine::tokenizer::pre_tokenize(engine::tokenizer::PreTokenizer::kQwen2, cpts, ends, scratch);
    size_t begin = 0;
    for (size_t end : ends) {
      piece_counts[f.substr(starts[begin], starts[end] - starts[begin])]++;
      begin = end;
    }
  }

  BpeVocab v;
  v.tokens = sym;
  v.types.assign(256, 1);
  std::unordered_map<std::string, int32_t> id_of;
  for (int32_t i = 0; i < 256; ++i) id_of[sym[static_cast<size_t>(i)]] = i;

  struct Word {
    std::vector<int32_t> ids;
    int64_t count;
  };
  std::vector<Word> words;
  words.reserve(piece_counts.size());
  for (const auto& [piece, count] : piece_counts) {
    Word w{{}, count};
    for (unsigned char c : piece) w.ids.push_back(static_cast<int32_t>(c));
    if (w.ids.size() > 1) words.push_back(std::move(w));
  }

  const size_t n_specials = 3;
  while (v.tokens.size() + n_specials < vocab_size) {
    std::map<std::pair<int32_t, int32_t>, int64_t> pairs;
    for (const Word& w : words) {
      for (size_t i = 0; i + 1 < w.ids.size(); ++i) pairs[{w.ids[i], w.ids[i + 1]}] += w.count;
    }
    std::pair<int32_t, int32_t> best{-1, -1};
    int64_t best_count = 1;
    for (const auto& [p, c] : pairs) {
      if (c > best_count) {
        best = p;
        best_count = c;
      }
    }
    if (best.first < 0) break;
    const std::string& left = v.tokens[static_cast<size_t>(best.first)];
    const std::string& right = v.tokens[static_cast<size_t>(best.second)];
    const std::string merged = left + right;
    v.merges.push_back(left + " " + right);
    int32_t id;
    auto it = id_of.find(merged);
    if (it != id_of.end()) {
      id = it->second;
    } else {
      id = static_cast<int32_t>(v.tokens.size());
      v.tokens.push_back(merged);
      v.types.push_back(1);
      id_of[merged] = id;
    }
    for (Word& w : words) {
      std::vector<int32_t>& ids = w.ids;
      size_t out = 0;
      for (size_t i = 0; i < ids.size(); ++i) {
        if (i + 1 < ids.size() && ids[i] == best.first && ids[i + 1] == best.second) {
          ids[out++] = id;
          ++i;
        } else {
          ids[out++] = ids[i];
        }
      }
      ids.resize(out);
    }
  }
  v.endoftext = static_cast<int32_t>(v.tokens.size());
  v.tokens.push_back("<|endoftext|>");
  v.im_start = v.endoftext + 1;
  v.tokens.push_back("<|im_start|>");
  v.im_end = v.endoftext + 2;
  v.tokens.push_back("<|im_end|>");
  v.types.insert(v.types.end(), {3, 3, 3});
  return v;
}

void add_vocab_metadata(const BpeVocab& v, gguf::Metadata& md) {
  using gguf::Value;
  using gguf::ValueType;
  md.set("tokenizer.ggml.model", Value::string("gpt2"));
  md.set("tokenizer.ggml.pre", Value::string("qwen2"));
  md.set("tokenizer.ggml.tokens", Value::array(ValueType::kString, v.tokens));
  md.set("tokenizer.ggml.token_type", Value::array(ValueType::kInt32, v.types));
  md.set("tokenizer.ggml.merges", Value::array(ValueType::kString, v.merges));
  md.set("tokenizer.ggml.bos_token_id", Value::u32(static_cast<uint32_t>(v.endoftext)));
  md.set("tokenizer.ggml.eos_token_id", Value::u32(static_cast<uint32_t>(v.im_end)));
  md.set("tokenizer.ggml.padding_token_id", Value::u32(static_cast<uint32_t>(v.endoftext)));
  md.set("tokenizer.ggml.add_bos_token", Value::boolean(false));
  md.set("tokenizer.chat_template", Value::string(kChatmlTemplate));
}

}  // namespace ztslm::demo
