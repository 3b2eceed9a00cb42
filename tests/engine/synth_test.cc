#include "engine/synth.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "core/mapped_file.h"
#include "engine/model.h"
#include "engine/session.h"
#include "engine/tokenizer/tokenizer.h"
#include "gguf/gguf.h"
#include "test_util.h"

namespace ztslm::engine {
namespace {

SynthShape tiny_shape(uint32_t n_embd, uint32_t n_ff) {
  SynthShape s;
  s.name = "tiny";
  s.arch = "llama";
  s.n_vocab = 32000;
  s.n_embd = n_embd;
  s.n_layer = 2;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.n_ff = n_ff;
  s.n_ctx_train = 512;
  return s;
}

// The Q4_K_M mix follows llama-quantize: compare every tensor type with the real quantised
// files of the same shapes (models/README.md "What each file really contains").
TEST(SynthTest, QuantMixMatchesLlamaQuantize) {
  ZTSLM_REQUIRE_SHARED();
  struct Case {
    const char* file;
    uint32_t n_embd, n_ff;
  } cases[] = {{"models/tiny-llama-spm-Q4_K_M.gguf", 128, 384},
               {"models/tiny-llama-spm-256-Q4_K_M.gguf", 256, 512}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    auto mapped = MappedFile::open(testing::testdata_path(c.file));
    ASSERT_TRUE(mapped.has_value());
    auto real = gguf::parse(mapped->bytes());
    ASSERT_TRUE(real.has_value());
    auto recipe = parse_synth_recipe("Q4_K_M");
    ASSERT_TRUE(recipe.has_value());
    auto writer = build_synth_model(tiny_shape(c.n_embd, c.n_ff), *recipe, 1);
    ASSERT_TRUE(writer.has_value());
    const std::vector<std::byte> bytes = writer->serialize();
    auto synth = gguf::parse(bytes);
    ASSERT_TRUE(synth.has_value()) << synth.error().to_string();
    size_t n_checked = 0;
    for (const gguf::TensorInfo& t : real->tensors) {
      const gguf::TensorInfo* s = synth->find_tensor(t.name);
      ASSERT_NE(s, nullptr) << t.name;
      EXPECT_EQ(s->type, t.type) << t.name;
      EXPECT_EQ(s->ne, t.ne) << t.name;
      ++n_checked;
    }
    EXPECT_EQ(n_checked, synth->tensors.size());
  }
}

TEST(SynthTest, RejectsUnknownPresetAndType) {
  EXPECT_THAT(find_synth_preset("gpt-5"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(parse_synth_recipe("Q3_K_XS"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(parse_synth_recipe("Q8_1"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_TRUE(find_synth_preset("qwen2.5-0.5b").has_value());
}

// A small synthetic model loads, runs and tokenises: every part of the file is real.
TEST(SynthTest, SmallModelLoadsRunsAndTokenises) {
  for (const char* type : {"F32", "Q8_0", "Q4_K_M"}) {
    SCOPED_TRACE(type);
    SynthShape shape = tiny_shape(256, 512);
    shape.arch = "qwen2";
    shape.qkv_bias = true;
    shape.n_vocab = 2000;
    auto recipe = parse_synth_recipe(type);
    ASSERT_TRUE(recipe.has_value());
    auto writer = build_synth_model(shape, *recipe, 7);
    ASSERT_TRUE(writer.has_value());
    auto bytes = std::make_shared<std::vector<std::byte>>(writer->serialize());
    auto model = Model::from_bytes(bytes, *bytes);
    ASSERT_TRUE(model.has_value()) << model.error().to_string();
    EXPECT_EQ((*model)->n_vocab(), 2000u);

    auto vocab = tokenizer::Vocab::from_metadata((*model)->gguf().metadata);
    ASSERT_TRUE(vocab.has_value()) << vocab.error().to_string();
    auto ids = tokenizer::tokenize(*vocab, "hello world, zero trust!", true, false, 256);
    ASSERT_TRUE(ids.has_value());
    EXPECT_EQ(ids->front(), 1);  // BOS
    auto plain = tokenizer::tokenize(*vocab, "hello world, zero trust!", false, false, 256);
    ASSERT_TRUE(plain.has_value());
    EXPECT_EQ(tokenizer::detokenize(*vocab, *plain, false, false), "hello world, zero trust!");
    EXPECT_LT(plain->size(), 24u);  // merged pieces, not one token per byte

    ThreadPool pool(1);
    SessionOptions so;
    so.n_ctx = 64;
    auto session = Session::create(*model, pool, so);
    ASSERT_TRUE(session.has_value());
    auto logits = session->decode(*ids, false);
    ASSERT_TRUE(logits.has_value());
    ASSERT_EQ(logits->size(), 2000u);
    for (float l : *logits) ASSERT_TRUE(std::isfinite(l));
  }
}

}  // namespace
}  // namespace ztslm::engine
