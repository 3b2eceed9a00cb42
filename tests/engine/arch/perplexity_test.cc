// Perplexity of reference/perplexity-en.txt, computed as llama-perplexity does
// (reference/README.md: -c 128, chunks of 128 tokens, first token of each chunk replaced by BOS
// when the vocab adds one, fresh KV cache per chunk, logits 64..126 scoring tokens 65..127),
// compared with the mean_nll of every reference JSON.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/session.h"
#include "engine/thread_pool.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/vocab.h"
#include "test_util.h"

namespace ztslm::engine {
namespace {

using ::ztslm::testing::testdata_path;

struct PplCase {
  const char* name;  // reference JSON and model file stem
  size_t n_text_tokens;
  double tolerance;  // README: 1e-4 F32, 5e-3 F16, 0.05 quantised
};

class PerplexityTest : public ::testing::TestWithParam<PplCase> {};

TEST_P(PerplexityTest, MeanNllMatchesLlamaCpp) {
  ZTSLM_REQUIRE_SHARED();
  const PplCase& c = GetParam();
  std::ifstream jin(testdata_path(std::string("reference/") + c.name + ".json"));
  const nlohmann::json ref = nlohmann::json::parse(jin);
  const double want = ref.at("perplexity").at("mean_nll").get<double>();
  std::ifstream tin(testdata_path("reference/perplexity-en.txt"), std::ios::binary);
  std::stringstream text;
  text << tin.rdbuf();

  auto model = Model::open(testdata_path(std::string("models/") + c.name + ".gguf"));
  ASSERT_TRUE(model.has_value()) << model.error().to_string();
  auto vocab = tokenizer::Vocab::from_metadata((*model)->gguf().metadata);
  ASSERT_TRUE(vocab.has_value()) << vocab.error().to_string();
  auto tokens = tokenizer::tokenize(*vocab, text.str(), /*add_special=*/true,
                                    /*parse_special=*/false, 1 << 20);
  ASSERT_TRUE(tokens.has_value()) << tokens.error().to_string();
  EXPECT_EQ(tokens->size(), c.n_text_tokens);

  constexpr size_t kCtx = 128;
  ThreadPool pool(2);
  SessionOptions o;
  o.n_ctx = kCtx;
  o.n_batch = kCtx;
  o.max_logit_rows = kCtx;
  auto session = Session::create(*model, pool, o);
  ASSERT_TRUE(session.has_value());
  const size_t n_vocab = (*model)->n_vocab();
  const size_t n_chunks = tokens->size() / kCtx;
  double nll = 0;
  size_t count = 0;
  for (size_t ch = 0; ch < n_chunks; ++ch) {
    std::vector<int32_t> chunk(tokens->begin() + static_cast<ptrdiff_t>(ch * kCtx),
                               tokens->begin() + static_cast<ptrdiff_t>((ch + 1) * kCtx));
    if (vocab->add_bos()) chunk[0] = vocab->bos();
    session->reset();
    auto logits = session->decode(chunk, /*all_logits=*/true);
    ASSERT_TRUE(logits.has_value()) << logits.error().to_string();
    for (size_t j = kCtx / 2; j + 1 < kCtx; ++j) {
      const float* row = logits->data() + j * n_vocab;
      double mx = -INFINITY;
      for (size_t v = 0; v < n_vocab; ++v) mx = std::max(mx, static_cast<double>(row[v]));
      double sum = 0;
      for (size_t v = 0; v < n_vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - mx);
      nll += -(static_cast<double>(row[static_cast<size_t>(chunk[j + 1])]) - mx - std::log(sum));
      ++count;
    }
  }
  ASSERT_EQ(count, n_chunks * 63);
  const double mean_nll = nll / static_cast<double>(count);
  std::printf("| %-26s | mean_nll %.7f | reference %.7f | diff %.2e |\n", c.name, mean_nll, want,
              std::fabs(mean_nll - want));
  EXPECT_NEAR(mean_nll, want, c.tolerance);
}

INSTANTIATE_TEST_SUITE_P(
    Files, PerplexityTest,
    ::testing::Values(PplCase{"tiny-llama-spm-F32", 500, 1e-4},
                      PplCase{"tiny-llama3-bpe-F32", 460, 1e-4},
                      PplCase{"tiny-qwen2-F32", 459, 1e-4},
                      PplCase{"tiny-llama-spm-F16", 500, 5e-3},
                      PplCase{"tiny-llama-spm-Q8_0", 500, 0.05},
                      PplCase{"tiny-llama-spm-Q4_0", 500, 0.05},
                      PplCase{"tiny-llama-spm-Q4_K_M", 500, 0.05},
                      PplCase{"tiny-llama-spm-256-Q4_K_M", 500, 0.05},
                      PplCase{"tiny-llama-spm-256-Q6_K", 500, 0.05}),
    [](const ::testing::TestParamInfo<PplCase>& param_info) {
      std::string n = param_info.param.name;
      for (char& ch : n) {
        if (ch == '-') ch = '_';
      }
      return n;
    });

}  // namespace
}  // namespace ztslm::engine
