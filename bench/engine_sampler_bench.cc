// One sampling step over a Qwen-sized vocabulary with llama-server's default chain.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "core/check.h"
#include "engine/sampler/sampler.h"

namespace ztslm::engine {
namespace {

void BM_SampleDefaultChain(benchmark::State& state) {
  const auto n_vocab = static_cast<int32_t>(state.range(0));
  std::mt19937 gen(3);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  for (float& l : logits) l = nd(gen);
  SamplerParams p;  // top-k 40, top-p 0.95, min-p 0.05, temperature 0.8
  p.repeat_penalty = 1.1f;
  p.seed = 1;
  auto s = Sampler::create(p, n_vocab);
  ZTSLM_CHECK(s.has_value());
  for (int i = 0; i < 64; ++i) s->accept(static_cast<TokenId>(i * 997 % n_vocab));
  // Validate first: the sampled token is one of the 40 largest logits.
  {
    auto tok = s->sample(logits);
    ZTSLM_CHECK(tok.has_value());
    int larger = 0;
    for (float l : logits) larger += l > logits[static_cast<size_t>(*tok)] ? 1 : 0;
    ZTSLM_CHECK(larger < 40);
  }
  for (auto _ : state) {
    auto tok = s->sample(logits);
    benchmark::DoNotOptimize(tok);
    s->accept(*tok);
  }
}
BENCHMARK(BM_SampleDefaultChain)->Arg(49152)->Arg(151936)->Unit(benchmark::kMicrosecond);

void BM_SampleGreedy(benchmark::State& state) {
  const auto n_vocab = static_cast<int32_t>(state.range(0));
  std::mt19937 gen(4);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  for (float& l : logits) l = nd(gen);
  SamplerParams p;
  p.temperature = 0.0f;
  auto s = Sampler::create(p, n_vocab);
  ZTSLM_CHECK(s.has_value());
  for (auto _ : state) {
    auto tok = s->sample(logits);
    benchmark::DoNotOptimize(tok);
  }
}
BENCHMARK(BM_SampleGreedy)->Arg(151936)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace ztslm::engine

BENCHMARK_MAIN();
