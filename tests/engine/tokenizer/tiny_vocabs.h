// Small vocabularies built in memory for the tokenizer tests and the fuzzer (no gtest here).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "engine/tokenizer/vocab.h"
#include "gguf/gguf.h"

namespace ztslm::engine::tokenizer::testing {

inline gguf::Value strings(std::vector<std::string> v) {
  return gguf::Value::array(gguf::ValueType::kString, std::move(v));
}
inline gguf::Value i32s(std::vector<int32_t> v) {
  return gguf::Value::array(gguf::ValueType::kInt32, std::move(v));
}
inline gguf::Value f32s(std::vector<float> v) {
  return gguf::Value::array(gguf::ValueType::kFloat32, std::move(v));
}

// A byte-level BPE vocab with all 256 byte characters, a few merges and two special tokens;
// `pre` selects the pre-tokenizer (clean_spaces follows its defaults).
inline gguf::Metadata tiny_bpe_metadata(const std::string& pre = "gpt-2") {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.emplace_back(bpe_byte_to_text(static_cast<uint8_t>(b)));
  const std::vector<std::string> merges = {"h e", "l l", "he ll", "hell o", "\xC4\xA0 w",
                                           "o r", "\xC4\xA0w or", "l d", "\xC4\xA0wor ld"};
  for (const std::string& m : merges) {
    const size_t sp = m.find(' ', 1);
    tokens.push_back(m.substr(0, sp) + m.substr(sp + 1));
  }
  tokens.emplace_back("<|endoftext|>");
  tokens.emplace_back("<tool>");
  std::vector<int32_t> types(tokens.size(), 1);
  types[types.size() - 2] = 3;  // CONTROL
  types[types.size() - 1] = 4;  // USER_DEFINED
  gguf::Metadata md;
  md.add("tokenizer.ggml.model", gguf::Value::string("gpt2"));
  md.add("tokenizer.ggml.pre", gguf::Value::string(pre));
  md.add("tokenizer.ggml.tokens", strings(tokens));
  md.add("tokenizer.ggml.token_type", i32s(types));
  md.add("tokenizer.ggml.merges", strings(merges));
  md.add("tokenizer.ggml.eos_token_id",
         gguf::Value::u32(static_cast<uint32_t>(tokens.size() - 2)));
  return md;
}

// An SPM vocab with byte-fallback tokens <0x00>..<0xFF>, a few pieces with scores, <s> and </s>.
inline gguf::Metadata tiny_spm_metadata() {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<int32_t> types = {2, 3, 3};
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">");
    scores.push_back(0);
    types.push_back(6);
  }
  const std::vector<std::pair<std::string, float>> pieces = {
      {"\xE2\x96\x81", -1}, {"h", -2}, {"e", -2}, {"l", -2}, {"o", -2}, {"he", -3},
      {"ll", -3}, {"hell", -4}, {"hello", -5}, {"\xE2\x96\x81hello", -6}, {"\xC3\xA9", -2}};
  for (const auto& [t, s] : pieces) {
    tokens.push_back(t);
    scores.push_back(s);
    types.push_back(1);
  }
  gguf::Metadata md;
  md.add("tokenizer.ggml.model", gguf::Value::string("llama"));
  md.add("tokenizer.ggml.tokens", strings(tokens));
  md.add("tokenizer.ggml.scores", f32s(scores));
  md.add("tokenizer.ggml.token_type", i32s(types));
  return md;
}

}  // namespace ztslm::engine::tokenizer::testing
