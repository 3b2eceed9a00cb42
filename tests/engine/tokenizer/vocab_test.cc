#include "engine/tokenizer/vocab.h"

#include <cmath>
#include <limits>

#include "engine/tokenizer/tokenizer_test_util.h"
#include "test_util.h"

namespace ztslm::engine::tokenizer {
namespace {

using testing::i32s;
using testing::load_vocab;
using testing::strings;

// Copies `md` with `key` replaced by `value` (or removed when `value` is null).
gguf::Metadata with(const gguf::Metadata& md, const std::string& key, const gguf::Value* value) {
  gguf::Metadata out;
  bool done = false;
  for (const auto& [k, v] : md.entries()) {
    if (k == key) {
      if (value != nullptr) out.add(k, *value);
      done = true;
    } else {
      out.add(k, v);
    }
  }
  if (!done && value != nullptr) out.add(key, *value);
  return out;
}

TEST(VocabTest, RefusesUnsupportedTokenizersWithTheirName) {
  const gguf::Metadata bpe = testing::tiny_bpe_metadata();
  struct Case {
    const char* key;
    gguf::Value value;
    const char* named;
  };
  const Case cases[] = {
      {"tokenizer.ggml.model", gguf::Value::string("bert"), "'bert'"},
      {"tokenizer.ggml.model", gguf::Value::string("t5"), "'t5'"},
      {"tokenizer.ggml.pre", gguf::Value::string("deepseek-llm"), "'deepseek-llm'"},
      {"tokenizer.ggml.pre", gguf::Value::string("falcon"), "'falcon'"},
      {"tokenizer.ggml.pre", gguf::Value::string(""), "'default'"},
  };
  for (const Case& c : cases) {
    auto v = Vocab::from_metadata(with(bpe, c.key, &c.value));
    ASSERT_THAT(v, StatusIs(StatusCode::kFailedPrecondition)) << c.named;
    EXPECT_NE(v.error().message().find(c.named), std::string::npos) << v.error().message();
  }
  auto no_pre = Vocab::from_metadata(with(bpe, "tokenizer.ggml.pre", nullptr));
  EXPECT_THAT(no_pre, StatusIs(StatusCode::kFailedPrecondition));
}

TEST(VocabTest, RejectsEachDefect) {
  const gguf::Metadata bpe = testing::tiny_bpe_metadata();
  const gguf::Metadata spm = testing::tiny_spm_metadata();
  std::vector<std::string> dup_tokens = {"a", "b", "a"};
  std::vector<float> nan_scores(spm.find("tokenizer.ggml.tokens")->array_size(), 0.0f);
  nan_scores[5] = std::numeric_limits<float>::quiet_NaN();
  std::vector<std::string> bad_byte = *spm.find("tokenizer.ggml.tokens")->as_array<std::string>();
  bad_byte[3] = "<0xZZ>";
  struct Case {
    const char* name;
    const gguf::Metadata* base;
    const char* key;
    gguf::Value value;
    bool remove;
    StatusCode expected;
  };
  const Case cases[] = {
      {"no tokens", &bpe, "tokenizer.ggml.tokens", {}, true, StatusCode::kNotFound},
      {"tokens not strings", &bpe, "tokenizer.ggml.tokens", i32s({1, 2}), false, StatusCode::kMalformed},
      {"empty token list", &bpe, "tokenizer.ggml.tokens", strings({}), false, StatusCode::kMalformed},
      {"duplicate token", &spm, "tokenizer.ggml.tokens", strings(dup_tokens), false, StatusCode::kMalformed},
      {"merge without space", &bpe, "tokenizer.ggml.merges", strings({"he"}), false, StatusCode::kMalformed},
      {"merge with leading space only", &bpe, "tokenizer.ggml.merges", strings({" h"}), false, StatusCode::kMalformed},
      {"missing merges", &bpe, "tokenizer.ggml.merges", {}, true, StatusCode::kNotFound},
      {"short token types", &bpe, "tokenizer.ggml.token_type", i32s({1}), false, StatusCode::kMalformed},
      {"eos id wrong type", &bpe, "tokenizer.ggml.eos_token_id", gguf::Value::i32(3), false, StatusCode::kMalformed},
      {"add_bos wrong type", &bpe, "tokenizer.ggml.add_bos_token", gguf::Value::u32(1), false, StatusCode::kMalformed},
      {"NaN score", &spm, "tokenizer.ggml.scores", testing::f32s(nan_scores), false, StatusCode::kMalformed},
      {"short scores", &spm, "tokenizer.ggml.scores", testing::f32s({0.0f}), false, StatusCode::kMalformed},
      {"malformed byte token", &spm, "tokenizer.ggml.tokens", strings(bad_byte), false, StatusCode::kMalformed},
      {"model not a string", &bpe, "tokenizer.ggml.model", gguf::Value::u32(2), false, StatusCode::kMalformed},
  };
  for (const Case& c : cases) {
    const gguf::Metadata md = with(*c.base, c.key, c.remove ? nullptr : &c.value);
    EXPECT_THAT(Vocab::from_metadata(md), StatusIs(c.expected)) << c.name;
  }
  VocabLimits small;
  small.max_tokens = 100;
  EXPECT_THAT(Vocab::from_metadata(bpe, small), StatusIs(StatusCode::kResourceExhausted));
  small = VocabLimits();
  small.max_merges = 2;
  EXPECT_THAT(Vocab::from_metadata(bpe, small), StatusIs(StatusCode::kResourceExhausted));
  small = VocabLimits();
  small.max_token_bytes = 8;
  EXPECT_THAT(Vocab::from_metadata(bpe, small), StatusIs(StatusCode::kResourceExhausted));
}

TEST(VocabTest, OutOfRangeSpecialIdsKeepTheDefault) {
  const gguf::Metadata spm = testing::tiny_spm_metadata();
  const gguf::Value big = gguf::Value::u32(1u << 30);
  auto v = Vocab::from_metadata(with(spm, "tokenizer.ggml.bos_token_id", &big));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->bos(), 1);
  // BPE default bos/eos 11 exist in the tiny vocab; an add_bos without any bos is refused.
  auto bpe = Vocab::from_metadata(testing::tiny_bpe_metadata());
  ASSERT_TRUE(bpe.has_value());
  EXPECT_EQ(bpe->bos(), 11);
  EXPECT_FALSE(bpe->add_bos());
}

TEST(VocabTest, RealVocabFlagsAndSpecialTokens) {
  ZTSLM_REQUIRE_SHARED();
  const Vocab& llama3 = load_vocab("vocab/ggml-vocab-llama-bpe.gguf");
  EXPECT_EQ(llama3.kind(), TokenizerKind::kBpe);
  EXPECT_EQ(llama3.pre_tokenizer(), PreTokenizer::kLlama3);
  EXPECT_TRUE(llama3.add_bos());
  EXPECT_TRUE(llama3.ignore_merges());
  EXPECT_TRUE(llama3.clean_spaces());
  EXPECT_EQ(llama3.bos(), 128000);
  EXPECT_EQ(llama3.eot(), llama3.find("<|eot_id|>"));
  EXPECT_EQ(llama3.eom(), llama3.find("<|eom_id|>"));
  EXPECT_TRUE(llama3.is_eog(128001));
  EXPECT_TRUE(llama3.is_eog(llama3.find("<|eot_id|>")));
  EXPECT_FALSE(llama3.is_eog(128000));

  const Vocab& qwen = load_vocab("vocab/ggml-vocab-qwen2.gguf");
  EXPECT_EQ(qwen.pre_tokenizer(), PreTokenizer::kQwen2);
  EXPECT_FALSE(qwen.add_bos());
  EXPECT_FALSE(qwen.clean_spaces());
  EXPECT_TRUE(qwen.is_eog(151645));  // <|im_end|>
  EXPECT_TRUE(qwen.is_eog(151643));  // <|endoftext|>
  EXPECT_NE(qwen.token_attrs(qwen.find("<tool_call>")) & kAttrUserDefined, 0u);
  EXPECT_NE(qwen.token_attrs(qwen.find("[PAD151700]")) & kAttrUnused, 0u);
  EXPECT_EQ(qwen.token_piece(qwen.find("[PAD151700]")), "");

  const Vocab& spm = load_vocab("vocab/ggml-vocab-llama-spm.gguf");
  EXPECT_EQ(spm.kind(), TokenizerKind::kSpm);
  EXPECT_TRUE(spm.add_space_prefix());
  EXPECT_TRUE(spm.is_eog(2));
  EXPECT_EQ(spm.token_piece(spm.find("<0x0A>")), "\n");

  const Vocab& phi3 = load_vocab("vocab/ggml-vocab-phi-3.gguf");
  EXPECT_TRUE(phi3.is_eog(phi3.find("<|end|>")));
  EXPECT_NE(phi3.token_attrs(phi3.find("<|end|>")) & kAttrControl, 0u);
  EXPECT_NE(phi3.token_attrs(phi3.find("<|assistant|>")) & kAttrRstrip, 0u);
  EXPECT_EQ(phi3.token_attrs(phi3.find("<s>")) & kAttrRstrip, 0u);

  const Vocab& star = load_vocab("vocab/ggml-vocab-starcoder.gguf");
  EXPECT_EQ(star.pre_tokenizer(), PreTokenizer::kStarcoder);
  EXPECT_TRUE(star.is_eog(0));
  EXPECT_TRUE(star.is_eog(star.find("<fim_pad>")));
}

}  // namespace
}  // namespace ztslm::engine::tokenizer
