// Parsing cost of a GGUF file whose metadata is a large BPE vocabulary (the size of Llama 3's:
// 128k tokens, 280k merges), built with our writer so the benchmark needs no fixtures.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/check.h"
#include "gguf/gguf.h"
#include "gguf/writer.h"

namespace ztslm::gguf {
namespace {

std::vector<std::byte> big_vocab_file() {
  Writer w;
  std::vector<std::string> tokens, merges;
  std::vector<int32_t> types;
  for (int i = 0; i < 128256; ++i) {
    std::string t = "tok";
    t += std::to_string(i * 7919);
    tokens.push_back(std::move(t));
    types.push_back(1);
  }
  for (int i = 0; i < 280147; ++i) {
    std::string m = "m";  // built piecewise: GCC 12 warns falsely on operator+ chains
    m += std::to_string(i);
    m += " x";
    m += std::to_string(i % 977);
    merges.push_back(std::move(m));
  }
  w.metadata().add("general.architecture", Value::string("llama"));
  w.metadata().add("tokenizer.ggml.model", Value::string("gpt2"));
  w.metadata().add("tokenizer.ggml.tokens", Value::array(ValueType::kString, std::move(tokens)));
  w.metadata().add("tokenizer.ggml.token_type", Value::array(ValueType::kInt32, std::move(types)));
  w.metadata().add("tokenizer.ggml.merges", Value::array(ValueType::kString, std::move(merges)));
  w.metadata().add("tokenizer.ggml.bos_token_id", Value::u32(128000));
  return w.serialize();
}

void BM_ParseLargeVocab(benchmark::State& state) {
  const std::vector<std::byte> file = big_vocab_file();
  ZTSLM_CHECK(parse(file).has_value());  // validate before timing
  for (auto _ : state) {
    auto parsed = parse(file);
    benchmark::DoNotOptimize(parsed);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(file.size()));
}
BENCHMARK(BM_ParseLargeVocab)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ztslm::gguf

BENCHMARK_MAIN();
