#include "engine/sampler/sampler.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <random>
#include <vector>

#include "test_util.h"

namespace ztslm::engine {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Every stage off except the ones a test turns on; temperature 1 leaves logits unchanged.
SamplerParams neutral_params() {
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  p.frequency_penalty = 0.0f;
  p.presence_penalty = 0.0f;
  p.penalty_last_n = 64;
  p.seed = 1234;
  return p;
}

Sampler make(const SamplerParams& p, int32_t n_vocab) {
  auto s = Sampler::create(p, n_vocab);
  EXPECT_TRUE(s.has_value()) << s.error().to_string();
  return std::move(s).value();
}

std::vector<TokenId> ids_of(const Sampler& s) {
  std::vector<TokenId> ids;
  for (const auto& c : s.candidates_for_test()) ids.push_back(c.id);
  return ids;
}

// ---------------------------------------------------------------- penalties (§7)

TEST(SamplerTest, PenaltiesFollowSignRuleAndCounts) {
  SamplerParams p = neutral_params();
  p.repeat_penalty = 2.0f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  Sampler s = make(p, 5);
  for (TokenId t : {0, 1, 2, 1}) s.accept(t);  // counts: 0->1, 1->2, 2->1
  const std::vector<float> logits = {2.0f, -1.0f, 0.0f, 3.0f, -0.5f};
  ASSERT_THAT(s.sample(logits), IsOk());
  const auto c = s.candidates_for_test();
  ASSERT_EQ(c.size(), 5u);  // nothing filtered, still in id order
  // positive logit: divided by repeat; then minus c*freq + present.
  EXPECT_FLOAT_EQ(c[0].logit, 2.0f / 2.0f - (1 * 0.5f + 0.25f));   // 0.25
  // negative logit: multiplied by repeat.
  EXPECT_FLOAT_EQ(c[1].logit, -1.0f * 2.0f - (2 * 0.5f + 0.25f));  // -3.25
  // zero counts as "<= 0": multiplied (stays 0), then the additive terms.
  EXPECT_FLOAT_EQ(c[2].logit, 0.0f - (1 * 0.5f + 0.25f));          // -0.75
  EXPECT_FLOAT_EQ(c[3].logit, 3.0f);                                // not in the window
  EXPECT_FLOAT_EQ(c[4].logit, -0.5f);
}

TEST(SamplerTest, PenaltyWindowForgetsOldTokens) {
  SamplerParams p = neutral_params();
  p.repeat_penalty = 2.0f;
  p.penalty_last_n = 2;
  Sampler s = make(p, 3);
  for (TokenId t : {0, 1, 2}) s.accept(t);  // window now {1, 2}
  ASSERT_THAT(s.sample(std::vector<float>{4.0f, 4.0f, -4.0f}), IsOk());
  const auto c = s.candidates_for_test();
  EXPECT_FLOAT_EQ(c[0].logit, 4.0f);
  EXPECT_FLOAT_EQ(c[1].logit, 2.0f);
  EXPECT_FLOAT_EQ(c[2].logit, -8.0f);
  s.reset();  // empties the window
  ASSERT_THAT(s.sample(std::vector<float>{4.0f, 4.0f, -4.0f}), IsOk());
  EXPECT_FLOAT_EQ(s.candidates_for_test()[1].logit, 4.0f);
}

TEST(SamplerTest, PenaltiesOffWhenLastNIsZero) {
  SamplerParams p = neutral_params();
  p.repeat_penalty = 3.0f;
  p.penalty_last_n = 0;
  Sampler s = make(p, 2);
  s.accept(0);
  ASSERT_THAT(s.sample(std::vector<float>{3.0f, 1.0f}), IsOk());
  EXPECT_FLOAT_EQ(s.candidates_for_test()[0].logit, 3.0f);
}

// ---------------------------------------------------------------- logit bias

TEST(SamplerTest, LogitBiasAddsAndSuppressBans) {
  SamplerParams p = neutral_params();
  p.temperature = 0.0f;
  p.logit_bias = {{2, 1.5f}, {2, 0.25f}};  // entries for one token accumulate
  p.suppress_tokens = {0};
  Sampler s = make(p, 3);
  // id 0 is the raw argmax but suppressed; id 2 wins with 1.0 + 1.75.
  EXPECT_EQ(*s.sample(std::vector<float>{9.0f, 2.0f, 1.0f}), 2);
  EXPECT_FLOAT_EQ(s.candidates_for_test()[0].logit, 2.75f);
}

// ---------------------------------------------------------------- top-k

TEST(SamplerTest, TopKKeepsLargestSortedWithTiesToLowestId) {
  SamplerParams p = neutral_params();
  p.top_k = 3;
  Sampler s = make(p, 5);
  ASSERT_THAT(s.sample(std::vector<float>{1.0f, 5.0f, 3.0f, 5.0f, 2.0f}), IsOk());
  EXPECT_EQ(ids_of(s), (std::vector<TokenId>{1, 3, 2}));
  // k larger than the vocabulary: everything, sorted.
  p.top_k = 100;
  Sampler all = make(p, 5);
  ASSERT_THAT(all.sample(std::vector<float>{1.0f, 5.0f, 3.0f, 5.0f, 2.0f}), IsOk());
  EXPECT_EQ(ids_of(all), (std::vector<TokenId>{1, 3, 2, 4, 0}));
}

// ---------------------------------------------------------------- top-p

// Logits whose softmax is {0.5, 0.25, 0.125, 0.125}.
const std::vector<float> kQuarterLogits = {std::log(4.0f), std::log(2.0f), 0.0f, 0.0f};

TEST(SamplerTest, TopPKeepsSmallestPrefixReachingP) {
  SamplerParams p = neutral_params();
  p.top_p = 0.7f;  // 0.5 < 0.7 <= 0.75: two tokens
  Sampler s = make(p, 4);
  ASSERT_THAT(s.sample(kQuarterLogits), IsOk());
  EXPECT_EQ(ids_of(s), (std::vector<TokenId>{0, 1}));

  p.top_p = 0.4f;  // the first token alone reaches it
  Sampler one = make(p, 4);
  ASSERT_THAT(one.sample(kQuarterLogits), IsOk());
  EXPECT_EQ(ids_of(one), (std::vector<TokenId>{0}));

  p.min_keep = 3;  // ... but min_keep wins
  Sampler keep = make(p, 4);
  ASSERT_THAT(keep.sample(kQuarterLogits), IsOk());
  EXPECT_EQ(ids_of(keep), (std::vector<TokenId>{0, 1, 2}));
}

TEST(SamplerTest, TopPSameResultOnSortedAndUnsortedInput) {
  SamplerParams p = neutral_params();
  p.top_p = 0.8f;
  const std::vector<float> logits = {0.0f, std::log(2.0f), 0.0f, std::log(4.0f)};  // shuffled
  Sampler unsorted = make(p, 4);
  ASSERT_THAT(unsorted.sample(logits), IsOk());
  p.top_k = 4;  // top-k sorts first
  Sampler sorted = make(p, 4);
  ASSERT_THAT(sorted.sample(logits), IsOk());
  // 0.5 + 0.25 < 0.8 <= 0.875: three tokens, the tie between ids 0 and 2 to the lower id.
  EXPECT_EQ(ids_of(unsorted), (std::vector<TokenId>{3, 1, 0}));
  EXPECT_EQ(ids_of(sorted), ids_of(unsorted));
}

TEST(SamplerTest, TopPNeedsMoreThanThePartialSortOnLargeFlatVocab) {
  // 1000 equal logits: the 256-candidate partial sort is not enough, the full sort takes over.
  SamplerParams p = neutral_params();
  p.top_p = 0.9f;
  Sampler s = make(p, 1000);
  ASSERT_THAT(s.sample(std::vector<float>(1000, 0.0f)), IsOk());
  // §7 in F32: each probability is 1/1000, accumulated until cum >= 0.9.
  float cum = 0.0f;
  size_t expected = 0;
  while (expected < 1000) {
    cum += 1.0f / 1000.0f;
    ++expected;
    if (cum >= 0.9f) break;
  }
  const auto ids = ids_of(s);
  ASSERT_EQ(ids.size(), expected);
  for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], static_cast<TokenId>(i));
}

// ---------------------------------------------------------------- min-p

TEST(SamplerTest, MinPKeepsTokensAboveThresholdInOriginalOrder) {
  SamplerParams p = neutral_params();
  p.min_p = 0.3f;  // threshold: max + ln 0.3 = -1.204
  Sampler s = make(p, 4);
  ASSERT_THAT(s.sample(std::vector<float>{-2.0f, 0.0f, -1.0f, -3.0f}), IsOk());
  EXPECT_EQ(ids_of(s), (std::vector<TokenId>{1, 2}));  // unsorted input keeps its order

  p.min_keep = 3;  // too few survive: falls back to the sorted path
  Sampler keep = make(p, 4);
  ASSERT_THAT(keep.sample(std::vector<float>{-2.0f, 0.0f, -1.0f, -3.0f}), IsOk());
  EXPECT_EQ(ids_of(keep), (std::vector<TokenId>{1, 2, 0}));

  p.min_keep = 0;
  p.top_k = 4;  // sorted input
  Sampler sorted = make(p, 4);
  ASSERT_THAT(sorted.sample(std::vector<float>{-2.0f, 0.0f, -1.0f, -3.0f}), IsOk());
  EXPECT_EQ(ids_of(sorted), (std::vector<TokenId>{1, 2}));
}

TEST(SamplerTest, MinPBoundaryIsInclusive) {
  SamplerParams p = neutral_params();
  p.min_p = 0.5f;
  const float edge = 1.0f + std::log(0.5f);  // exactly max + logf(p)
  Sampler s = make(p, 3);
  ASSERT_THAT(s.sample(std::vector<float>{1.0f, edge, std::nextafter(edge, -kInf)}), IsOk());
  EXPECT_EQ(ids_of(s), (std::vector<TokenId>{0, 1}));
}

// ---------------------------------------------------------------- temperature, greedy

TEST(SamplerTest, TemperatureDividesLogits) {
  SamplerParams p = neutral_params();
  p.temperature = 0.5f;
  Sampler s = make(p, 3);
  ASSERT_THAT(s.sample(std::vector<float>{1.0f, -2.0f, 3.0f}), IsOk());
  const auto c = s.candidates_for_test();
  EXPECT_FLOAT_EQ(c[0].logit, 2.0f);
  EXPECT_FLOAT_EQ(c[1].logit, -4.0f);
  EXPECT_FLOAT_EQ(c[2].logit, 6.0f);
}

TEST(SamplerTest, GreedyIsArgmaxWithTiesToLowestId) {
  SamplerParams p = SamplerParams();  // defaults for everything but temperature
  p.temperature = 0.0f;
  Sampler s = make(p, 5);
  EXPECT_EQ(*s.sample(std::vector<float>{1.0f, 3.0f, 0.5f, 3.0f, 2.0f}), 1);
  EXPECT_EQ(*s.sample(std::vector<float>{-kInf, kNaN, -7.0f, -7.0f, -9.0f}), 2);
  // Deterministic whatever the seed: no draw is involved.
  p.seed = kRandomSeed;
  Sampler r = make(p, 5);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(*r.sample(std::vector<float>{0, 0, 0, 1, 1}), 3);
}

TEST(SamplerTest, AllBannedIsFailedPrecondition) {
  SamplerParams p = neutral_params();
  p.suppress_tokens = {1};
  for (float temp : {0.0f, 0.8f}) {
    p.temperature = temp;
    Sampler s = make(p, 2);
    EXPECT_THAT(s.sample(std::vector<float>{-kInf, 5.0f}),
                StatusIs(StatusCode::kFailedPrecondition));
    EXPECT_THAT(s.sample(std::vector<float>{kNaN, 1.0f}),
                StatusIs(StatusCode::kFailedPrecondition));
  }
}

TEST(SamplerTest, NeverPicksBannedTokenAmongFiniteOnes) {
  SamplerParams p = neutral_params();
  p.suppress_tokens = {0, 2};
  Sampler s = make(p, 4);
  for (int i = 0; i < 2000; ++i) {
    const TokenId t = *s.sample(std::vector<float>{10.0f, 0.0f, 10.0f, 0.0f});
    ASSERT_TRUE(t == 1 || t == 3) << t;
  }
}

TEST(SamplerTest, LogitsSizeMismatchIsInvalidArgument) {
  Sampler s = make(neutral_params(), 4);
  EXPECT_THAT(s.sample(std::vector<float>(3, 0.0f)), StatusIs(StatusCode::kInvalidArgument));
}

// ---------------------------------------------------------------- dist and RNG

// The draw of §7, written out independently: mt19937(seed), one uniform double per token,
// first candidate whose running double sum of expf(l - max) reaches sum * r.
std::vector<TokenId> reference_draws(uint32_t seed, const std::vector<float>& logits, int n) {
  std::mt19937 rng(seed);
  std::vector<TokenId> out;
  const float max_l = *std::max_element(logits.begin(), logits.end());
  for (int k = 0; k < n; ++k) {
    double sum = 0.0;
    for (float l : logits) sum += std::exp(l - max_l);
    const double r = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    double run = 0.0;
    for (size_t i = 0; i < logits.size(); ++i) {
      run += std::exp(logits[i] - max_l);
      if (run >= sum * r) {
        out.push_back(static_cast<TokenId>(i));
        break;
      }
    }
  }
  return out;
}

TEST(SamplerTest, DistMatchesTheSpecifiedRandomStream) {
  const std::vector<float> logits = {0.3f, -1.0f, 2.0f, 0.0f, 1.5f, -0.2f, 0.9f};
  for (uint32_t seed : {0u, 42u, 0xDEADBEEFu}) {
    SamplerParams p = neutral_params();
    p.seed = seed;
    Sampler s = make(p, static_cast<int32_t>(logits.size()));
    std::vector<TokenId> got;
    for (int k = 0; k < 300; ++k) got.push_back(*s.sample(logits));
    EXPECT_EQ(got, reference_draws(seed, logits, 300)) << "seed " << seed;
    s.reset();  // same seed again: same stream
    for (int k = 0; k < 300; ++k) ASSERT_EQ(*s.sample(logits), got[static_cast<size_t>(k)]);
  }
}

TEST(SamplerTest, SingleCandidateStillConsumesADraw) {
  // Pick a seed whose first two uniforms fall on opposite sides of 0.5, so the second token
  // tells which number of the stream was used.
  uint32_t seed = 0;
  double second = 0.0;
  for (;; ++seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    const double first = u(rng);
    second = u(rng);
    if ((first <= 0.5) != (second <= 0.5)) break;
  }
  SamplerParams p = neutral_params();
  p.min_p = 1.0f;  // keeps only the maximal logits
  p.seed = seed;
  Sampler s = make(p, 2);
  EXPECT_EQ(*s.sample(std::vector<float>{5.0f, 0.0f}), 0);
  ASSERT_EQ(s.candidates_for_test().size(), 1u);
  // {0, 0}: both kept, token 0 iff r <= 0.5 (run 1 >= 2r).
  EXPECT_EQ(*s.sample(std::vector<float>{0.0f, 0.0f}), second <= 0.5 ? 0 : 1);
}

TEST(SamplerTest, SameSeedSameTokensDifferentSeedDifferentTokens) {
  std::mt19937 gen(99);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::vector<float> logits(512);
  for (float& l : logits) l = nd(gen);
  auto run = [&](uint32_t seed) {
    SamplerParams p;  // the default chain
    p.seed = seed;
    Sampler s = make(p, 512);
    std::vector<TokenId> out;
    for (int i = 0; i < 200; ++i) {
      const TokenId t = *s.sample(logits);
      s.accept(t);
      out.push_back(t);
    }
    return out;
  };
  EXPECT_EQ(run(5), run(5));
  EXPECT_NE(run(5), run(6));
}

TEST(SamplerTest, DrawFrequenciesMatchTheDistribution) {
  const std::vector<double> probs = {0.1, 0.2, 0.3, 0.4};
  std::vector<float> logits;
  for (double q : probs) logits.push_back(static_cast<float>(std::log(q)));
  SamplerParams p = neutral_params();
  p.seed = 2024;
  Sampler s = make(p, 4);
  constexpr int kN = 200000;
  std::vector<int> hist(4, 0);
  for (int i = 0; i < kN; ++i) ++hist[static_cast<size_t>(*s.sample(logits))];
  double chi2 = 0.0;
  for (size_t i = 0; i < 4; ++i) {
    const double expected = probs[i] * kN;
    chi2 += (hist[i] - expected) * (hist[i] - expected) / expected;
    const double sigma = std::sqrt(probs[i] * (1 - probs[i]) / kN);
    EXPECT_NEAR(static_cast<double>(hist[i]) / kN, probs[i], 5 * sigma) << "token " << i;
  }
  EXPECT_LT(chi2, 16.27);  // 3 degrees of freedom, p = 0.001
}

TEST(SamplerTest, TemperatureSharpensDrawFrequencies) {
  // temp 0.5 squares the probabilities: {1, 2} -> {1/5, 4/5}.
  SamplerParams p = neutral_params();
  p.temperature = 0.5f;
  p.seed = 11;
  Sampler s = make(p, 2);
  const std::vector<float> logits = {std::log(1.0f), std::log(2.0f)};
  int ones = 0;
  constexpr int kN = 100000;
  for (int i = 0; i < kN; ++i) ones += *s.sample(logits) == 1 ? 1 : 0;
  EXPECT_NEAR(static_cast<double>(ones) / kN, 0.8, 5 * std::sqrt(0.16 / kN));
}

// ---------------------------------------------------------------- validation

TEST(SamplerTest, ValidationRejectsEachBadField) {
  struct Row {
    const char* name;
    void (*edit)(SamplerParams&);
  };
  const Row rows[] = {
      {"temperature < 0", [](SamplerParams& p) { p.temperature = -0.1f; }},
      {"temperature > 100", [](SamplerParams& p) { p.temperature = 100.5f; }},
      {"temperature NaN", [](SamplerParams& p) { p.temperature = kNaN; }},
      {"temperature inf", [](SamplerParams& p) { p.temperature = kInf; }},
      {"top_k < 0", [](SamplerParams& p) { p.top_k = -1; }},
      {"top_p 0", [](SamplerParams& p) { p.top_p = 0.0f; }},
      {"top_p > 1", [](SamplerParams& p) { p.top_p = 1.01f; }},
      {"top_p NaN", [](SamplerParams& p) { p.top_p = kNaN; }},
      {"min_p < 0", [](SamplerParams& p) { p.min_p = -0.01f; }},
      {"min_p > 1", [](SamplerParams& p) { p.min_p = 1.5f; }},
      {"min_p NaN", [](SamplerParams& p) { p.min_p = kNaN; }},
      {"repeat 0", [](SamplerParams& p) { p.repeat_penalty = 0.0f; }},
      {"repeat NaN", [](SamplerParams& p) { p.repeat_penalty = kNaN; }},
      {"repeat inf", [](SamplerParams& p) { p.repeat_penalty = kInf; }},
      {"frequency inf", [](SamplerParams& p) { p.frequency_penalty = kInf; }},
      {"frequency NaN", [](SamplerParams& p) { p.frequency_penalty = kNaN; }},
      {"presence -inf", [](SamplerParams& p) { p.presence_penalty = -kInf; }},
      {"presence NaN", [](SamplerParams& p) { p.presence_penalty = kNaN; }},
      {"last_n < 0", [](SamplerParams& p) { p.penalty_last_n = -1; }},
      {"last_n too big", [](SamplerParams& p) { p.penalty_last_n = (1 << 16) + 1; }},
      {"max_tokens 0", [](SamplerParams& p) { p.max_tokens = 0; }},
      {"max_tokens too big", [](SamplerParams& p) { p.max_tokens = (1u << 20) + 1; }},
      {"bias NaN", [](SamplerParams& p) { p.logit_bias = {{1, kNaN}}; }},
      {"bias +inf", [](SamplerParams& p) { p.logit_bias = {{1, kInf}}; }},
      {"bias huge", [](SamplerParams& p) { p.logit_bias = {{1, 1e6f}}; }},
      {"too many biases",
       [](SamplerParams& p) { p.logit_bias.assign(1025, LogitBias{1, 1.0f}); }},
      {"too many suppress", [](SamplerParams& p) { p.suppress_tokens.assign(4097, 1); }},
      {"too many stops", [](SamplerParams& p) { p.stop.assign(17, "x"); }},
      {"empty stop", [](SamplerParams& p) { p.stop = {"ok", ""}; }},
      {"long stop", [](SamplerParams& p) { p.stop = {std::string(257, 'a')}; }},
      {"stop not utf-8", [](SamplerParams& p) { p.stop = {"a\xC3"}; }},
  };
  EXPECT_THAT(validate_sampler_params(SamplerParams()), IsOk());
  for (const Row& r : rows) {
    SamplerParams p;
    r.edit(p);
    const Status st = validate_sampler_params(p);
    EXPECT_THAT(st, StatusIs(StatusCode::kInvalidArgument)) << r.name;
    EXPECT_FALSE(st.message().empty()) << r.name;
    EXPECT_THAT(Sampler::create(p, 10), StatusIs(StatusCode::kInvalidArgument)) << r.name;
  }
}

TEST(SamplerTest, ValidationAcceptsTheEdges) {
  SamplerParams p;
  p.temperature = 100.0f;
  p.top_p = 1.0f;
  p.min_p = 1.0f;
  p.top_k = 0;
  p.repeat_penalty = 100.0f;
  p.frequency_penalty = -100.0f;
  p.presence_penalty = 100.0f;
  p.penalty_last_n = 0;
  p.max_tokens = 1;
  p.logit_bias = {{0, -kInf}, {1, 10000.0f}};
  p.stop.assign(16, std::string(256, 'z'));
  EXPECT_THAT(validate_sampler_params(p), IsOk());
}

TEST(SamplerTest, MessagesNameFieldAndBound) {
  SamplerParams p;
  p.top_p = 1.5f;
  EXPECT_EQ(validate_sampler_params(p).message(), "top_p 1.5 outside (0, 1]");
}

TEST(SamplerTest, CreateChecksTokenIdsAgainstVocab) {
  SamplerParams p;
  p.logit_bias = {{10, 1.0f}};
  EXPECT_THAT(Sampler::create(p, 10), StatusIs(StatusCode::kInvalidArgument));
  p.logit_bias = {{-1, 1.0f}};
  EXPECT_THAT(Sampler::create(p, 10), StatusIs(StatusCode::kInvalidArgument));
  p.logit_bias.clear();
  p.suppress_tokens = {10};
  EXPECT_THAT(Sampler::create(p, 10), StatusIs(StatusCode::kInvalidArgument));
  p.suppress_tokens.clear();
  EXPECT_THAT(Sampler::create(p, 0), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Sampler::create(p, 10), IsOk());
}

TEST(SamplerTest, RandomSeedIsDrawnAndReported) {
  SamplerParams p;
  p.seed = kRandomSeed;
  Sampler a = make(p, 4);
  Sampler b = make(p, 4);
  // Two draws from random_device agree with probability 2^-32.
  EXPECT_NE(a.seed(), b.seed());
  p.seed = 77;
  EXPECT_EQ(make(p, 4).seed(), 77u);
}

}  // namespace
}  // namespace ztslm::engine
