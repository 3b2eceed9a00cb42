// Tokenising a 4 KB English prompt with the real Llama 3 (128k tokens) and SentencePiece
// vocabularies from ../shared/testdata (skipped when absent).
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <string>

#include "core/check.h"
#include "core/mapped_file.h"
#include "core/utf8.h"
#include "engine/tokenizer/tokenizer.h"
#include "gguf/gguf.h"

namespace ztslm::engine::tokenizer {
namespace {

std::string shared_path(const std::string& rel) {
  const char* env = std::getenv("ZTSLM_SHARED_DIR");
  return std::string(env != nullptr ? env : ZTSLM_SHARED_DIR) + "/testdata/" + rel;
}

void BM_Encode4K(benchmark::State& state, const char* vocab_rel) {
  auto mapped = MappedFile::open(shared_path(vocab_rel));
  std::ifstream in(shared_path("reference/perplexity-en.txt"));
  if (!mapped.has_value() || !in) {
    state.SkipWithError("../shared/testdata not found (set ZTSLM_SHARED_DIR)");
    for (auto _ : state) {
    }
    return;
  }
  auto file = gguf::parse(mapped->bytes());
  ZTSLM_CHECK(file.has_value());
  auto vocab = Vocab::from_metadata(file->metadata);
  ZTSLM_CHECK(vocab.has_value());
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  while (text.size() < 4096) text += text;
  text.resize(4096 - utf8_incomplete_suffix(text.substr(0, 4096)));
  Tokenizer tok(*vocab);
  auto ids = tok.encode(text, true, true, 1u << 16);
  ZTSLM_CHECK(ids.has_value());
  ZTSLM_CHECK(detokenize(*vocab, *ids, true, false).size() >= text.size() - 1);  // validate first
  for (auto _ : state) {
    auto r = tok.encode(text, true, true, 1u << 16);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(text.size()));
  state.counters["tokens"] = static_cast<double>(ids->size());
}
BENCHMARK_CAPTURE(BM_Encode4K, llama_bpe, "vocab/ggml-vocab-llama-bpe.gguf")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Encode4K, qwen2, "vocab/ggml-vocab-qwen2.gguf")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Encode4K, llama_spm, "vocab/ggml-vocab-llama-spm.gguf")->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace ztslm::engine::tokenizer

BENCHMARK_MAIN();
