// Forward pass, KV cache and sessions against llama.cpp's reference logits
// (../shared/testdata/reference/*.json, produced with F32 KV cache, flash attention off).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/session.h"
#include "engine/thread_pool.h"
#include "test_util.h"

namespace ztslm::engine {
namespace {

using ::ztslm::testing::testdata_path;

struct Prompt {
  std::string name;
  std::vector<int32_t> tokens;
  std::vector<std::vector<std::pair<int32_t, float>>> top20;  // per position
  std::vector<float> last_logits;
  std::vector<int32_t> greedy_tokens;
  std::vector<float> greedy_logits;
};

struct Reference {
  std::string model_file;
  int64_t n_vocab = 0;
  double mean_nll = 0;
  std::vector<Prompt> prompts;
};

std::vector<float> decode_base64_f32(const std::string& s) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<uint8_t> bytes;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    const size_t v = kAlphabet.find(c);
    if (v == std::string::npos) continue;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<uint8_t>((acc >> bits) & 0xFF));
    }
  }
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

Reference load_reference(const std::string& json_name) {
  std::ifstream in(testdata_path("reference/" + json_name));
  const nlohmann::json j = nlohmann::json::parse(in);
  Reference r;
  r.model_file = j.at("model_file").get<std::string>();
  r.n_vocab = j.at("n_vocab").get<int64_t>();
  r.mean_nll = j.at("perplexity").at("mean_nll").get<double>();
  for (const auto& p : j.at("prompts")) {
    Prompt pr;
    pr.name = p.at("name").get<std::string>();
    pr.tokens = p.at("tokens").get<std::vector<int32_t>>();
    for (const auto& pos : p.at("top20")) {
      std::vector<std::pair<int32_t, float>> row;
      for (const auto& e : pos) row.emplace_back(e.at(0).get<int32_t>(), e.at(1).get<float>());
      pr.top20.push_back(std::move(row));
    }
    pr.last_logits = decode_base64_f32(p.at("last_logits").at("data").get<std::string>());
    pr.greedy_tokens = p.at("greedy").at("tokens").get<std::vector<int32_t>>();
    pr.greedy_logits = p.at("greedy").at("logit").get<std::vector<float>>();
    r.prompts.push_back(std::move(pr));
  }
  return r;
}

std::shared_ptr<const Model> load_model(const std::string& file) {
  auto m = Model::open(testdata_path("models/" + file));
  EXPECT_TRUE(m.has_value()) << file << ": " << m.error().to_string();
  return m.has_value() ? *m : nullptr;
}

// Argmax with ties to the lowest id (strict >), as the reference greedy sampler.
int32_t argmax(std::span<const float> row) {
  size_t best = 0;
  for (size_t i = 1; i < row.size(); ++i) {
    if (row[i] > row[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

struct Stats {
  double max_abs = 0;            // over every compared logit
  double median_pos_max = 0;     // median over positions of the per-position max
  double top1_agree = 0;         // fraction of prompt positions with the same argmax
  int greedy_identical = 0;      // prompts whose 32 greedy tokens all match
  int n_prompts = 0;
  double greedy_max_abs = 0;     // max |Δ| of the chosen logit while both sequences agree
};

SessionOptions ref_options() {
  SessionOptions o;
  o.n_ctx = 512;
  o.n_batch = 512;
  o.max_logit_rows = 512;
  return o;
}

// Runs every prompt of `ref` (prompt pass with all logits, then 32 greedy steps) and compares.
Stats compare_with_reference(const Reference& ref, const std::shared_ptr<const Model>& model,
                             ThreadPool& pool, KvType kv_type = KvType::kF32) {
  SessionOptions o = ref_options();
  o.kv_type = kv_type;
  auto session = Session::create(model, pool, o);
  EXPECT_TRUE(session.has_value()) << session.error().to_string();
  Stats st;
  std::vector<double> pos_max;
  int top1_same = 0, n_pos = 0;
  for (const Prompt& p : ref.prompts) {
    session->reset();
    auto logits = session->decode(p.tokens, /*all_logits=*/true);
    EXPECT_TRUE(logits.has_value()) << logits.error().to_string();
    if (!logits.has_value()) continue;
    const size_t n_vocab = static_cast<size_t>(ref.n_vocab);
    EXPECT_EQ(logits->size(), p.tokens.size() * n_vocab);
    for (size_t i = 0; i < p.tokens.size(); ++i) {
      const std::span<const float> row = logits->subspan(i * n_vocab, n_vocab);
      double m = 0;
      for (const auto& [id, want] : p.top20[i]) {
        m = std::max(m, std::fabs(static_cast<double>(row[static_cast<size_t>(id)]) - want));
      }
      if (i + 1 == p.tokens.size()) {
        for (size_t v = 0; v < n_vocab; ++v) {
          m = std::max(m, std::fabs(static_cast<double>(row[v]) - p.last_logits[v]));
        }
      }
      pos_max.push_back(m);
      st.max_abs = std::max(st.max_abs, m);
      top1_same += argmax(row) == p.top20[i][0].first ? 1 : 0;
      ++n_pos;
    }
    // Greedy: argmax of the last prompt row, then one token at a time.
    std::vector<float> last(logits->end() - static_cast<ptrdiff_t>(n_vocab), logits->end());
    bool same = true;
    for (size_t step = 0; step < p.greedy_tokens.size(); ++step) {
      const int32_t tok = argmax(last);
      if (tok != p.greedy_tokens[step]) {
        same = false;
        break;
      }
      st.greedy_max_abs = std::max(
          st.greedy_max_abs,
          std::fabs(static_cast<double>(last[static_cast<size_t>(tok)]) - p.greedy_logits[step]));
      if (step + 1 == p.greedy_tokens.size()) break;
      const int32_t one[1] = {tok};
      auto next = session->decode(one, /*all_logits=*/false);
      EXPECT_TRUE(next.has_value()) << next.error().to_string();
      if (!next.has_value()) break;
      last.assign(next->begin(), next->end());
    }
    st.greedy_identical += same ? 1 : 0;
    ++st.n_prompts;
  }
  std::sort(pos_max.begin(), pos_max.end());
  if (!pos_max.empty()) {
    const size_t k = pos_max.size();
    st.median_pos_max = k % 2 == 1 ? pos_max[k / 2] : 0.5 * (pos_max[k / 2 - 1] + pos_max[k / 2]);
  }
  st.top1_agree = n_pos == 0 ? 0 : static_cast<double>(top1_same) / n_pos;
  return st;
}

void print_row(const std::string& name, const Stats& s) {
  std::printf("| %-32s | %10.3g | %10.3g | %6.1f%% | %d/%d | %10.3g |\n", name.c_str(), s.max_abs,
              s.median_pos_max, 100.0 * s.top1_agree, s.greedy_identical, s.n_prompts,
              s.greedy_max_abs);
  std::fflush(stdout);
}

// Bounds per file, set a little above what this engine measured (see the test's output table).
// F32 files: the 1e-4 the README states for an F32 engine. Quantised files: our kernels
// reproduce llama.cpp's activation quantisation, so the remaining error is summation order
// amplified by the random 2-layer models.
struct FileCase {
  const char* json;
  double max_abs;
  double median;
  double min_top1;
  int min_greedy_identical;  // of 4 prompts
  double greedy_max_abs;     // chosen-token logits while the greedy sequences agree
};

class ReferenceTest : public ::testing::TestWithParam<FileCase> {};

TEST_P(ReferenceTest, MatchesLlamaCpp) {
  ZTSLM_REQUIRE_SHARED();
  const FileCase& c = GetParam();
  const Reference ref = load_reference(c.json);
  auto model = load_model(ref.model_file);
  ASSERT_NE(model, nullptr);
  ASSERT_EQ(model->n_vocab(), ref.n_vocab);
  ThreadPool pool(1);
  const Stats st = compare_with_reference(ref, model, pool);
  std::printf("| %-32s | %10s | %10s | %7s | %3s | %10s |  (isa %s)\n", "file", "max|d|",
              "median", "top-1", "greedy", "greedy max", isa_name(model->isa()));
  print_row(ref.model_file, st);
  EXPECT_LE(st.max_abs, c.max_abs);
  EXPECT_LE(st.median_pos_max, c.median);
  EXPECT_GE(st.top1_agree, c.min_top1);
  EXPECT_GE(st.greedy_identical, c.min_greedy_identical);
  EXPECT_LE(st.greedy_max_abs, c.greedy_max_abs);
}

INSTANTIATE_TEST_SUITE_P(
    Files, ReferenceTest,
    // Measured (max / median / top-1 / greedy identical / greedy logit max) with the scalar,
    // avx2 and avx512 kernels (ZTSLM_ISA); each bound is the worst of the three plus ~40 %:
    //   F16        7.5e-3 / 2.8e-3 / 100 % / 4 / 5.5e-3
    //   Q8_0       0.201  / 1.9e-6 / 99.3 % / 4 / 0.122   (avx512: exact, 0)
    //   Q4_0       0.035  / 1.9e-6 / 100 % / 4 / 0.072   (scalar: 3.8e-6)
    //   Q4_K_M     0.025  / 1.9e-6 / 100 % / 4 / 3.8e-6  (Q5_0 + Q8_0 tensors; SIMD: exact)
    //   256-Q4_K_M 0.096  / 3.8e-6 / 100 % / 3 / 0.30    (one near-tie flips a greedy step)
    //   256-Q6_K   0.263  / 3.8e-6 / 100 % / 3 / 0.165
    // The medians show the activation quantisation is reproduced; the maxima are rare
    // round-to-nearest flips of one activation, amplified by the random models. All are far
    // below the 1.5 / 0.8 an F32-activation engine needs.
    ::testing::Values(FileCase{"tiny-llama-spm-F32.json", 1e-4, 1e-4, 1.0, 4, 1e-4},
                      FileCase{"tiny-llama3-bpe-F32.json", 1e-4, 1e-4, 1.0, 4, 1e-4},
                      FileCase{"tiny-qwen2-F32.json", 1e-4, 1e-4, 1.0, 4, 1e-4},
                      FileCase{"tiny-llama-spm-F16.json", 0.012, 0.004, 1.0, 4, 0.012},
                      FileCase{"tiny-llama-spm-Q8_0.json", 0.3, 1e-4, 0.98, 4, 0.2},
                      FileCase{"tiny-llama-spm-Q4_0.json", 0.05, 1e-4, 1.0, 4, 0.1},
                      FileCase{"tiny-llama-spm-Q4_K_M.json", 0.04, 1e-4, 1.0, 4, 0.04},
                      FileCase{"tiny-llama-spm-256-Q4_K_M.json", 0.15, 1e-4, 1.0, 3, 0.4},
                      FileCase{"tiny-llama-spm-256-Q6_K.json", 0.35, 1e-4, 1.0, 3, 0.25}),
    [](const ::testing::TestParamInfo<FileCase>& param_info) {
      std::string n = param_info.param.json;
      n = n.substr(0, n.size() - 5);
      std::replace(n.begin(), n.end(), '-', '_');
      return n;
    });

// Logits of a prompt pass with all rows plus `n_steps` greedy steps, concatenated.
std::vector<float> run_prompt(const std::shared_ptr<const Model>& model, ThreadPool& pool,
                              const std::vector<int32_t>& tokens, int n_steps,
                              KvType kv_type = KvType::kF32) {
  SessionOptions o = ref_options();
  o.kv_type = kv_type;
  auto s = Session::create(model, pool, o);
  EXPECT_TRUE(s.has_value());
  auto l = s->decode(tokens, true);
  EXPECT_TRUE(l.has_value());
  std::vector<float> out(l->begin(), l->end());
  int32_t tok = argmax(l->last(model->n_vocab()));
  for (int i = 0; i < n_steps; ++i) {
    const int32_t one[1] = {tok};
    auto n = s->decode(one, false);
    EXPECT_TRUE(n.has_value());
    out.insert(out.end(), n->begin(), n->end());
    tok = argmax(*n);
  }
  return out;
}

TEST(SessionTest, OneAndTwoThreadsAreBitIdentical) {
  ZTSLM_REQUIRE_SHARED();
  for (const char* json : {"tiny-qwen2-F32.json", "tiny-llama-spm-Q4_0.json",
                           "tiny-llama-spm-256-Q4_K_M.json", "tiny-llama-spm-F16.json"}) {
    const Reference ref = load_reference(json);
    auto model = load_model(ref.model_file);
    ASSERT_NE(model, nullptr);
    ThreadPool one(1), two(2), three(3);
    const auto a = run_prompt(model, one, ref.prompts[1].tokens, 4);
    const auto b = run_prompt(model, two, ref.prompts[1].tokens, 4);
    const auto c = run_prompt(model, three, ref.prompts[1].tokens, 4);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << json;
    EXPECT_EQ(0, std::memcmp(a.data(), c.data(), a.size() * sizeof(float))) << json;
  }
}

TEST(SessionTest, BatchedPrefillMatchesTokenByToken) {
  ZTSLM_REQUIRE_SHARED();
  for (const char* json : {"tiny-llama-spm-F32.json", "tiny-qwen2-F32.json"}) {
    const Reference ref = load_reference(json);
    auto model = load_model(ref.model_file);
    ASSERT_NE(model, nullptr);
    ThreadPool pool(2);
    const std::vector<int32_t>& tokens = ref.prompts[0].tokens;
    const auto batch = run_prompt(model, pool, tokens, 0);
    auto s = Session::create(model, pool, ref_options());
    ASSERT_TRUE(s.has_value());
    const size_t n_vocab = model->n_vocab();
    double max_diff = 0;
    for (size_t i = 0; i < tokens.size(); ++i) {
      const int32_t one[1] = {tokens[i]};
      auto l = s->decode(one, true);
      ASSERT_TRUE(l.has_value());
      for (size_t v = 0; v < n_vocab; ++v) {
        max_diff = std::max(max_diff, std::fabs(static_cast<double>((*l)[v]) -
                                                batch[i * n_vocab + v]));
      }
    }
    EXPECT_LE(max_diff, 1e-4) << json;
    // Chunked prefill (n_batch smaller than the prompt) gives the same rows too.
    SessionOptions o = ref_options();
    o.n_batch = 7;
    auto c = Session::create(model, pool, o);
    ASSERT_TRUE(c.has_value());
    auto l = c->decode(tokens, true);
    ASSERT_TRUE(l.has_value());
    double chunk_diff = 0;
    for (size_t k = 0; k < l->size(); ++k) {
      chunk_diff = std::max(chunk_diff, std::fabs(static_cast<double>((*l)[k]) - batch[k]));
    }
    EXPECT_LE(chunk_diff, 1e-4) << json;
  }
}

TEST(SessionTest, SessionsSharingAModelAreIndependent) {
  ZTSLM_REQUIRE_SHARED();
  const Reference ref = load_reference("tiny-llama3-bpe-F32.json");
  auto model = load_model(ref.model_file);
  ASSERT_NE(model, nullptr);
  ThreadPool pool(2);
  const auto alone_a = run_prompt(model, pool, ref.prompts[0].tokens, 0);
  const auto alone_b = run_prompt(model, pool, ref.prompts[2].tokens, 0);
  auto a = Session::create(model, pool, ref_options());
  auto b = Session::create(model, pool, ref_options());
  ASSERT_TRUE(a.has_value() && b.has_value());
  // Interleave: half of A, all of B, rest of A.
  const auto& ta = ref.prompts[0].tokens;
  const size_t half = ta.size() / 2;
  auto a1 = a->decode(std::span(ta).first(half), true);
  ASSERT_TRUE(a1.has_value());
  std::vector<float> got_a(a1->begin(), a1->end());
  auto b1 = b->decode(ref.prompts[2].tokens, true);
  ASSERT_TRUE(b1.has_value());
  EXPECT_EQ(std::vector<float>(b1->begin(), b1->end()), alone_b);
  auto a2 = a->decode(std::span(ta).subspan(half), true);
  ASSERT_TRUE(a2.has_value());
  got_a.insert(got_a.end(), a2->begin(), a2->end());
  ASSERT_EQ(got_a.size(), alone_a.size());
  double diff = 0;
  for (size_t k = 0; k < got_a.size(); ++k) {
    diff = std::max(diff, std::fabs(static_cast<double>(got_a[k]) - alone_a[k]));
  }
  EXPECT_LE(diff, 1e-4);
  EXPECT_EQ(a->n_past(), ta.size());
  EXPECT_EQ(b->n_past(), ref.prompts[2].tokens.size());
}

TEST(SessionTest, TruncateReusesThePrefix) {
  ZTSLM_REQUIRE_SHARED();
  const Reference ref = load_reference("tiny-qwen2-F32.json");
  auto model = load_model(ref.model_file);
  ASSERT_NE(model, nullptr);
  ThreadPool pool(1);
  const auto& t = ref.prompts[3].tokens;
  const auto full = run_prompt(model, pool, t, 0);
  auto s = Session::create(model, pool, ref_options());
  ASSERT_TRUE(s.has_value());
  const std::vector<int32_t> other = ref.prompts[0].tokens;
  ASSERT_TRUE(s->decode(std::span(t).first(10), false).has_value());
  ASSERT_TRUE(s->decode(other, false).has_value());
  EXPECT_EQ(s->common_prefix(t), 10u);
  ASSERT_THAT(s->truncate(10), IsOk());
  EXPECT_THAT(s->truncate(11), StatusIs(StatusCode::kOutOfRange));
  auto l = s->decode(std::span(t).subspan(10), false);
  ASSERT_TRUE(l.has_value());
  const size_t n_vocab = model->n_vocab();
  double diff = 0;
  for (size_t v = 0; v < n_vocab; ++v) {
    diff = std::max(diff, std::fabs(static_cast<double>((*l)[v]) -
                                    full[(t.size() - 1) * n_vocab + v]));
  }
  EXPECT_LE(diff, 1e-4);
}

TEST(SessionTest, TruncateWipesTheDroppedCellsAndTheTailStaysZero) {
  ZTSLM_REQUIRE_SHARED();
  auto model = load_model("tiny-llama-spm-F32.gguf");
  ASSERT_NE(model, nullptr);
  ThreadPool pool(1);
  const std::vector<int32_t> tokens = {1, 450, 4996, 17354, 1701, 29916};
  auto s = Session::create(model, pool, ref_options());
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->kv_tail_is_zero_for_test());
  ASSERT_TRUE(s->decode(tokens, false).has_value());
  EXPECT_TRUE(s->kv_tail_is_zero_for_test());
  ASSERT_THAT(s->truncate(2), IsOk());
  EXPECT_EQ(s->n_past(), 2u);
  EXPECT_TRUE(s->kv_tail_is_zero_for_test());  // cells 2..5 were wiped
  ASSERT_TRUE(s->decode(std::span(tokens).first(3), false).has_value());
  EXPECT_TRUE(s->kv_tail_is_zero_for_test());
  ASSERT_THAT(s->truncate(0), IsOk());
  EXPECT_TRUE(s->kv_tail_is_zero_for_test());
  EXPECT_THAT(s->truncate(0), IsOk());  // nothing left to drop
  s->reset();
  EXPECT_TRUE(s->is_zeroed_for_test());
}

bool g_hook_called = false;
bool g_hook_saw_zero = false;

TEST(SessionTest, MemoryIsZeroedOnResetAndRelease) {
  ZTSLM_REQUIRE_SHARED();
  auto model = load_model("tiny-llama-spm-F32.gguf");
  ASSERT_NE(model, nullptr);
  ThreadPool pool(2);
  const std::vector<int32_t> tokens = {1, 450, 4996, 17354, 1701, 29916};
  {
    auto s = Session::create(model, pool, ref_options());
    ASSERT_TRUE(s.has_value());
    EXPECT_TRUE(s->is_zeroed_for_test());
    ASSERT_TRUE(s->decode(tokens, true).has_value());
    EXPECT_FALSE(s->is_zeroed_for_test());
    s->reset();
    EXPECT_TRUE(s->is_zeroed_for_test());
    EXPECT_EQ(s->n_past(), 0u);
    ASSERT_TRUE(s->decode(tokens, false).has_value());
    EXPECT_FALSE(s->is_zeroed_for_test());
    Session::set_release_hook_for_test(+[](const Session& released) {
      g_hook_called = true;
      g_hook_saw_zero = released.is_zeroed_for_test();
    });
  }
  Session::set_release_hook_for_test(nullptr);
  EXPECT_TRUE(g_hook_called);
  EXPECT_TRUE(g_hook_saw_zero);
}

TEST(SessionTest, ContextLimits) {
  ZTSLM_REQUIRE_SHARED();
  auto model = load_model("tiny-llama-spm-F32.gguf");
  ASSERT_NE(model, nullptr);
  ThreadPool pool(1);
  SessionOptions o;
  o.n_ctx = 16;
  auto s = Session::create(model, pool, o);
  ASSERT_TRUE(s.has_value());
  std::vector<int32_t> tokens(17, 100);
  EXPECT_THAT(s->decode(tokens, false), StatusIs(StatusCode::kOutOfRange));
  EXPECT_EQ(s->n_past(), 0u);
  ASSERT_TRUE(s->decode(std::span(tokens).first(10), false).has_value());
  EXPECT_THAT(s->decode(std::span(tokens).first(7), false), StatusIs(StatusCode::kOutOfRange));
  EXPECT_EQ(s->n_past(), 10u);
  EXPECT_THAT(s->decode(std::vector<int32_t>{32000}, false),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(s->decode(std::vector<int32_t>{-1}, false), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(s->decode(std::vector<int32_t>{}, false), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(s->decode(std::vector<int32_t>{5, 6}, true),
              StatusIs(StatusCode::kInvalidArgument));  // max_logit_rows = 1

  // With truncation the newest tokens fill the remaining cells.
  o.truncate_prompt = true;
  auto t = Session::create(model, pool, o);
  ASSERT_TRUE(t.has_value());
  std::vector<int32_t> long_prompt(20);
  for (size_t i = 0; i < long_prompt.size(); ++i) long_prompt[i] = static_cast<int32_t>(100 + i);
  ASSERT_TRUE(t->decode(long_prompt, false).has_value());
  EXPECT_EQ(t->n_past(), 16u);
  EXPECT_EQ(t->last_dropped(), 4u);
  EXPECT_EQ(t->history()[0], 104);
  EXPECT_THAT(t->decode(std::vector<int32_t>{1}, false), StatusIs(StatusCode::kOutOfRange));
}

TEST(SessionTest, F16KvCacheStaysCloseToF32) {
  ZTSLM_REQUIRE_SHARED();
  for (const char* json : {"tiny-llama-spm-F32.json", "tiny-qwen2-F32.json"}) {
    const Reference ref = load_reference(json);
    auto model = load_model(ref.model_file);
    ASSERT_NE(model, nullptr);
    ThreadPool pool(2);
    const Stats st = compare_with_reference(ref, model, pool, KvType::kF16);
    print_row(std::string(ref.model_file) + " (F16 KV)", st);
    // llama.cpp's own F16-KV (+FA) runs differ from this data by 0.04-0.06 (README).
    EXPECT_LE(st.max_abs, 0.1) << json;
    EXPECT_GT(st.max_abs, 0.0) << json;  // the F16 path really rounds
  }
}

}  // namespace
}  // namespace ztslm::engine
