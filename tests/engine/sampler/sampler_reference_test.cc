// The sampler on real logits: llama.cpp's last-position logits from ../shared/testdata/reference
// (spec/ENGINE.md §8 row 7: greedy is covered by the reference greedy tokens).
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sampler/sampler.h"
#include "test_util.h"

namespace ztslm::engine {
namespace {

using ::ztslm::testing::testdata_path;

std::vector<uint8_t> base64_decode(const std::string& in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::vector<uint8_t> out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = val(c);
    if (v < 0) continue;  // '=' padding
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

std::vector<float> decode_logits(const nlohmann::json& j) {
  const std::vector<uint8_t> bytes = base64_decode(j.at("data").get<std::string>());
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);  // little-endian host (x86/arm64)
  EXPECT_EQ(out.size(), j.at("n").get<size_t>());
  return out;
}

TEST(SamplerReferenceTest, GreedyAndTopKMatchLlamaCppOnRealLogits) {
  ZTSLM_REQUIRE_SHARED();
  int checked = 0;
  for (const char* file : {"tiny-llama-spm-F32.json", "tiny-llama3-bpe-F32.json",
                           "tiny-qwen2-F32.json"}) {
    std::ifstream in(testdata_path(std::string("reference/") + file));
    ASSERT_TRUE(in.good()) << file;
    const nlohmann::json ref = nlohmann::json::parse(in);
    const int32_t n_vocab = ref.at("n_vocab").get<int32_t>();
    for (const auto& prompt : ref.at("prompts")) {
      const std::vector<float> logits = decode_logits(prompt.at("last_logits"));
      ASSERT_EQ(logits.size(), static_cast<size_t>(n_vocab));

      // Greedy: the first token of llama.cpp's greedy continuation, and its logit.
      SamplerParams greedy;
      greedy.temperature = 0.0f;
      auto g = Sampler::create(greedy, n_vocab);
      ASSERT_THAT(g, IsOk());
      const TokenId first = *g->sample(logits);
      EXPECT_EQ(first, prompt.at("greedy").at("tokens")[0].get<TokenId>()) << file;
      EXPECT_FLOAT_EQ(g->candidates_for_test()[0].logit,
                      prompt.at("greedy").at("logit")[0].get<float>()) << file;

      // top-k 20 keeps exactly llama.cpp's top-20, in descending order.
      SamplerParams topk;
      topk.top_k = 20;
      topk.top_p = 1.0f;
      topk.min_p = 0.0f;
      topk.temperature = 1.0f;
      topk.seed = 1;
      auto s = Sampler::create(topk, n_vocab);
      ASSERT_THAT(s, IsOk());
      ASSERT_THAT(s->sample(logits), IsOk());
      const auto cands = s->candidates_for_test();
      // top20 has one list per prompt position; the last one goes with last_logits.
      const auto& top20 = prompt.at("top20").back();
      ASSERT_EQ(cands.size(), top20.size());
      for (size_t i = 0; i < cands.size(); ++i) {
        EXPECT_EQ(cands[i].id, top20[i][0].get<TokenId>()) << file << " rank " << i;
        EXPECT_FLOAT_EQ(cands[i].logit, top20[i][1].get<float>()) << file << " rank " << i;
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 3);
}

}  // namespace
}  // namespace ztslm::engine
