// DLP throughput: clean prose (the common case; goal >= 500 MB/s per core), a 4 KiB text with
// findings (goal <= 20 us), and the streaming redactor on 16-byte chunks.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "guard/dlp.h"
#include "guard/redact.h"

namespace {

using namespace ztslm::guard;

std::string clean_text(size_t bytes) {
  static const char* kWords[] = {"the", "model", "answers", "questions", "about", "gardening",
                                 "and", "cooking", "with", "care,", "while", "every", "reply",
                                 "stays", "short.", "Please", "note", "that", "weather", "changes"};
  std::string s;
  uint64_t x = 42;
  while (s.size() < bytes) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    s += kWords[(x >> 33) % 20];
    s += ((x >> 40) % 13 == 0) ? "\n" : " ";
  }
  s.resize(bytes);
  return s;
}

std::string mixed_4k() {
  std::string s = clean_text(4096 - 200);
  s.insert(500, " mail jane.doe@example.com ");
  s.insert(1500, " card 4111 1111 1111 1111 ");
  s.insert(2500, " call +1 415-555-0100 ");
  s.insert(3000, " key AKIAIOSFODNN7EXAMPLE ");
  s.resize(4096);
  return s;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "benchmark validation failed: %s\n", what);
    std::abort();
  }
}

void BM_DlpCleanText(benchmark::State& state) {
  const std::string text = clean_text(static_cast<size_t>(state.range(0)));
  const DlpScanner& scanner = DlpScanner::shared();
  check(scanner.scan(text)->findings.empty(), "clean text has findings");
  for (auto _ : state) {
    auto r = scanner.scan(text);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(text.size()));
}
BENCHMARK(BM_DlpCleanText)->Arg(4096)->Arg(1 << 20);

void BM_DlpMixed4K(benchmark::State& state) {
  const std::string text = mixed_4k();
  const DlpScanner& scanner = DlpScanner::shared();
  check(scanner.scan(text)->findings.size() == 4, "mixed text should have 4 findings");
  for (auto _ : state) {
    auto r = scanner.scan(text);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 4096);
}
BENCHMARK(BM_DlpMixed4K);

void BM_StreamRedact4K(benchmark::State& state) {
  const std::string text = mixed_4k();
  const std::string expected = redact(text, RedactionPolicy{})->text;
  for (auto _ : state) {
    StreamRedactor r(RedactionPolicy{});
    std::string out;
    for (size_t pos = 0; pos < text.size(); pos += 16) out += *r.push(std::string_view(text).substr(pos, 16));
    out += *r.finish();
    check(out == expected, "streamed != whole");
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 4096);
}
BENCHMARK(BM_StreamRedact4K);

}  // namespace

BENCHMARK_MAIN();
