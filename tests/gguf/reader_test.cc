// Reader tests against the shared model and vocabulary files (../shared/testdata).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "gguf/gguf.h"
#include "gguf/writer.h"
#include "test_util.h"

namespace ztslm::gguf {
namespace {

using ::ztslm::testing::testdata_path;

struct ModelCase {
  const char* file;
  const char* arch;
  uint32_t n_embd;
  uint32_t n_layer;
  uint32_t n_ff;
  uint64_t n_vocab;
  // Types per the "What each file really contains" table of models/README.md.
  TensorType token_embd;
  TensorType attn_q;  // also attn_k, attn_output, ffn_gate, ffn_up
  TensorType attn_v_blk0;  // also ffn_down of blk.0
  TensorType attn_v_blk1;  // also ffn_down of blk.1
};

constexpr TensorType F32 = TensorType::kF32;
constexpr TensorType F16 = TensorType::kF16;
constexpr TensorType Q8_0 = TensorType::kQ8_0;
constexpr TensorType Q4_0 = TensorType::kQ4_0;
constexpr TensorType Q5_0 = TensorType::kQ5_0;
constexpr TensorType Q4_K = TensorType::kQ4_K;
constexpr TensorType Q6_K = TensorType::kQ6_K;

const ModelCase kModels[] = {
    {"tiny-llama-spm-F32.gguf", "llama", 128, 2, 384, 32000, F32, F32, F32, F32},
    {"tiny-llama-spm-F16.gguf", "llama", 128, 2, 384, 32000, F16, F16, F16, F16},
    {"tiny-llama-spm-Q8_0.gguf", "llama", 128, 2, 384, 32000, Q8_0, Q8_0, Q8_0, Q8_0},
    {"tiny-llama-spm-Q4_0.gguf", "llama", 128, 2, 384, 32000, Q8_0, Q4_0, Q4_0, Q4_0},
    {"tiny-llama-spm-Q4_K_M.gguf", "llama", 128, 2, 384, 32000, Q8_0, Q5_0, Q5_0, Q8_0},
    {"tiny-llama3-bpe-F32.gguf", "llama", 64, 2, 192, 128256, F32, F32, F32, F32},
    {"tiny-qwen2-F32.gguf", "qwen2", 64, 2, 160, 151936, F32, F32, F32, F32},
    {"tiny-llama-spm-256-Q4_K_M.gguf", "llama", 256, 2, 512, 32000, Q6_K, Q4_K, Q4_K, Q6_K},
    {"tiny-llama-spm-256-Q6_K.gguf", "llama", 256, 2, 512, 32000, Q6_K, Q6_K, Q6_K, Q6_K},
};

void expect_type(const File& f, const std::string& name, TensorType want, const char* file) {
  const TensorInfo* t = f.find_tensor(name);
  ASSERT_NE(t, nullptr) << file << ": " << name;
  EXPECT_EQ(t->type, want) << file << ": " << name << " is " << tensor_type_name(t->type);
}

TEST(GgufReaderTest, ParsesEverySharedModel) {
  ZTSLM_REQUIRE_SHARED();
  for (const ModelCase& c : kModels) {
    SCOPED_TRACE(c.file);
    auto mapped = MappedFile::open(testdata_path(std::string("models/") + c.file));
    ASSERT_THAT(mapped, IsOk());
    auto parsed = parse(mapped->bytes());
    ASSERT_THAT(parsed, IsOk());
    const File& f = *parsed;
    const Metadata& md = f.metadata;
    EXPECT_EQ(f.alignment, 32u);
    EXPECT_EQ(f.data_offset % 32, 0u);
    ASSERT_THAT(md.get_string("general.architecture"), IsOk());
    EXPECT_EQ(*md.get_string("general.architecture"), c.arch);
    const std::string arch = c.arch;
    EXPECT_EQ(*md.get_u32(arch + ".embedding_length"), c.n_embd);
    EXPECT_EQ(*md.get_u32(arch + ".block_count"), c.n_layer);
    EXPECT_EQ(*md.get_u32(arch + ".feed_forward_length"), c.n_ff);
    EXPECT_EQ(*md.get_u32(arch + ".context_length"), 512u);
    ASSERT_THAT(md.get_string_array("tokenizer.ggml.tokens"), IsOk());
    EXPECT_EQ((*md.get_string_array("tokenizer.ggml.tokens"))->size(), c.n_vocab);

    // Tied output: no output.weight; token_embd is [n_embd, n_vocab].
    EXPECT_EQ(f.find_tensor("output.weight"), nullptr);
    const TensorInfo* emb = f.find_tensor("token_embd.weight");
    ASSERT_NE(emb, nullptr);
    EXPECT_EQ(emb->n_dims, 2u);
    EXPECT_EQ(emb->ne[0], c.n_embd);
    EXPECT_EQ(static_cast<uint64_t>(emb->ne[1]), c.n_vocab);
    EXPECT_EQ(emb->data.size(), emb->n_bytes);
    const size_t per_layer = arch == "qwen2" ? 12 : 9;
    EXPECT_EQ(f.tensors.size(), 2 + c.n_layer * per_layer);

    expect_type(f, "token_embd.weight", c.token_embd, c.file);
    expect_type(f, "output_norm.weight", F32, c.file);
    for (uint32_t il = 0; il < c.n_layer; ++il) {
      const std::string blk = "blk." + std::to_string(il) + ".";
      for (const char* n : {"attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"}) {
        expect_type(f, blk + n + ".weight", c.attn_q, c.file);
      }
      const TensorType v = il == 0 ? c.attn_v_blk0 : c.attn_v_blk1;
      expect_type(f, blk + "attn_v.weight", v, c.file);
      expect_type(f, blk + "ffn_down.weight", v, c.file);
      expect_type(f, blk + "attn_norm.weight", F32, c.file);
      expect_type(f, blk + "ffn_norm.weight", F32, c.file);
      const TensorInfo* ffn_down = f.find_tensor(blk + "ffn_down.weight");
      ASSERT_NE(ffn_down, nullptr);
      EXPECT_EQ(ffn_down->ne[0], c.n_ff);
      EXPECT_EQ(ffn_down->ne[1], c.n_embd);
      if (arch == "qwen2") expect_type(f, blk + "attn_q.bias", F32, c.file);
    }
    // Tensors are inside the file and do not overlap (the strict offset rule).
    for (const TensorInfo& t : f.tensors) {
      EXPECT_GE(t.data.data(), mapped->bytes().data() + f.data_offset);
      EXPECT_LE(t.data.data() + t.data.size(), mapped->bytes().data() + mapped->size());
      EXPECT_EQ(t.offset % f.alignment, 0u) << t.name;
    }
  }
}

struct VocabCase {
  const char* file;
  const char* model;
  uint64_t n_tokens;
};

const VocabCase kVocabs[] = {
    {"ggml-vocab-llama-spm.gguf", "llama", 32000},
    {"ggml-vocab-phi-3.gguf", "llama", 32064},
    {"ggml-vocab-llama-bpe.gguf", "gpt2", 128256},
    {"ggml-vocab-qwen2.gguf", "gpt2", 151936},
    {"ggml-vocab-gpt-2.gguf", "gpt2", 50257},
    {"ggml-vocab-starcoder.gguf", "gpt2", 49152},
};

TEST(GgufReaderTest, ParsesEverySharedVocab) {
  ZTSLM_REQUIRE_SHARED();
  for (const VocabCase& c : kVocabs) {
    SCOPED_TRACE(c.file);
    auto mapped = MappedFile::open(testdata_path(std::string("vocab/") + c.file));
    ASSERT_THAT(mapped, IsOk());
    auto parsed = parse(mapped->bytes());
    ASSERT_THAT(parsed, IsOk());
    EXPECT_TRUE(parsed->tensors.empty());
    EXPECT_EQ(*parsed->metadata.get_string("tokenizer.ggml.model"), c.model);
    auto tokens = parsed->metadata.get_string_array("tokenizer.ggml.tokens");
    ASSERT_THAT(tokens, IsOk());
    EXPECT_EQ((*tokens)->size(), c.n_tokens);
    if (parsed->metadata.contains("tokenizer.ggml.token_type")) {
      EXPECT_EQ((*parsed->metadata.get_i32_array("tokenizer.ggml.token_type"))->size(), c.n_tokens);
    }
    if (std::string(c.model) == "gpt2") {
      auto merges = parsed->metadata.get_string_array("tokenizer.ggml.merges");
      ASSERT_THAT(merges, IsOk());
      EXPECT_GT((*merges)->size(), 10000u);
    } else {
      EXPECT_EQ((*parsed->metadata.get_f32_array("tokenizer.ggml.scores"))->size(), c.n_tokens);
    }
  }
}

TEST(GgufReaderTest, KnownVocabValues) {
  ZTSLM_REQUIRE_SHARED();
  auto mapped = MappedFile::open(testdata_path("vocab/ggml-vocab-llama-bpe.gguf"));
  ASSERT_THAT(mapped, IsOk());
  auto parsed = parse(mapped->bytes());
  ASSERT_THAT(parsed, IsOk());
  const Metadata& md = parsed->metadata;
  EXPECT_EQ(*md.get_u32("tokenizer.ggml.bos_token_id"), 128000u);
  EXPECT_EQ(*md.get_u32("tokenizer.ggml.eos_token_id"), 128001u);
  EXPECT_EQ((**md.get_string_array("tokenizer.ggml.tokens"))[128000], "<|begin_of_text|>");
  EXPECT_EQ((*md.get_string_array("tokenizer.ggml.merges"))->size(), 280147u);
  EXPECT_EQ(*md.get_string("tokenizer.ggml.pre"), "llama-bpe");
  // Type-strict getters.
  EXPECT_THAT(md.get_i32("tokenizer.ggml.bos_token_id"), StatusIs(StatusCode::kMalformed));
  EXPECT_THAT(md.get_u32("no.such.key"), StatusIs(StatusCode::kNotFound));
}

// Every shared file re-serialises to its canonical form, which parses equal and is
// byte-identical to the original file.
TEST(GgufReaderTest, SharedFilesRoundTrip) {
  ZTSLM_REQUIRE_SHARED();
  std::vector<std::string> files;
  for (const ModelCase& c : kModels) files.push_back(std::string("models/") + c.file);
  for (const VocabCase& c : kVocabs) files.push_back(std::string("vocab/") + c.file);
  for (const std::string& rel : files) {
    SCOPED_TRACE(rel);
    auto mapped = MappedFile::open(testdata_path(rel));
    ASSERT_THAT(mapped, IsOk());
    auto first = parse(mapped->bytes());
    ASSERT_THAT(first, IsOk());
    const std::vector<std::byte> canonical = serialize(*first);
    auto again = parse(canonical);
    ASSERT_THAT(again, IsOk());
    EXPECT_TRUE(*again == *first);
    // gguf-py and llama-quantize write exactly our canonical form: byte-identical output.
    ASSERT_EQ(canonical.size(), mapped->size());
    EXPECT_TRUE(std::equal(canonical.begin(), canonical.end(), mapped->bytes().begin()));
  }
}

}  // namespace
}  // namespace ztslm::gguf
