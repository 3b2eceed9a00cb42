// The cost of running the engine in a sandboxed worker process instead of in the gateway: the
// same model, prompt and greedy sampling through cli::InProcessBackend and through
// server::scheduler::WorkerBackend (one worker, `ztslm worker` from ZTSLM_BINARY), in one run.
// One iteration is one whole generation of `kMaxTokens` tokens on each path, alternating.
// Counters (per path, prefix inproc_ / worker_):
//   decode_tok_s  tokens after the first / time from the first text piece to the end
//   ttft_us       time from the generate() call to the first text piece
// and decode_cost_pct (worker's decode rate below in-process, %), ttft_extra_us.
// The benchmark first checks that both paths produce the same text.
//
//   build/release/bench/ztslm_server_worker_bench [--benchmark_repetitions=5]
//   ZTSLM_BENCH_MODEL=path.gguf overrides the model (default: tiny-qwen2-F32.gguf from ../shared,
//   or from $ZTSLM_SHARED_DIR).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "cli/inprocess_backend.h"
#include "core/byte_reader.h"
#include "sandbox/lockdown.h"
#include "sandbox/memfd.h"
#include "server/scheduler/worker_backend.h"

namespace {

using namespace ztslm;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kMaxTokens = 64;
constexpr int kThreads = 1;

std::string model_path() {
  const char* env = std::getenv("ZTSLM_BENCH_MODEL");
  if (env != nullptr) return env;
  const char* shared = std::getenv("ZTSLM_SHARED_DIR");
  return std::string(shared != nullptr ? shared : ZTSLM_SHARED_DIR) + "/testdata/models/tiny-qwen2-F32.gguf";
}

server::GenerateRequest request() {
  server::GenerateRequest r;
  r.is_chat = false;
  r.prompt = "The quick brown fox jumps over the lazy dog, and then";
  r.sampling.temperature = 0.0f;
  r.sampling.max_tokens = kMaxTokens;
  r.sampling.has_seed = true;
  r.sampling.seed = 1;
  return r;
}

struct Backends {
  sandbox::UniqueFd memfd;
  std::unique_ptr<cli::InProcessBackend> inprocess;
  std::unique_ptr<server::scheduler::WorkerBackend> worker;
  bool ok = false;

  Backends() {
    const std::string path = model_path();
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto w = sandbox::SealedMemfdWriter::create("model", bytes.size());
    if (!w.has_value() || !w->append(as_bytes(bytes)).ok()) return;
    auto fd = w->seal();
    if (!fd.has_value()) return;
    memfd = std::move(fd).value();
    cli::InProcessBackendOptions io;
    io.model_path = path;
    io.n_ctx = 512;
    io.threads = kThreads;
    auto ib = cli::InProcessBackend::create(io);
    if (!ib.has_value()) {
      std::fprintf(stderr, "in-process backend: %s\n", ib.error().to_string().c_str());
      return;
    }
    inprocess = std::move(ib).value();
    server::scheduler::WorkerBackendOptions wo;
    wo.binary = ZTSLM_BINARY;
    wo.model_fd = memfd.get();
    wo.model_id = "bench";
    wo.n_ctx = 512;
    wo.count = 1;
    wo.threads = kThreads;
    wo.allow_degraded_lockdown = sandbox::landlock_abi_version() == 0;
    wo.drop_user = ::geteuid() == 0;
    auto wb = server::scheduler::WorkerBackend::create(wo);
    if (!wb.has_value()) {
      std::fprintf(stderr, "worker backend: %s\n", wb.error().to_string().c_str());
      return;
    }
    worker = std::move(wb).value();
    ok = true;
  }
};

Backends& backends() {
  static Backends b;
  return b;
}

struct Run {
  bool ok = false;
  std::string text;
  uint32_t tokens = 0;
  double ttft_us = 0;
  double decode_s = 0;
};

Run generate_once(server::Backend& b) {
  Run run;
  const auto t0 = Clock::now();
  Clock::time_point t_first{};
  auto r = b.generate(request(), [&](std::string_view piece) {
    if (run.text.empty()) t_first = Clock::now();
    run.text.append(piece);
    return true;
  });
  const auto t_end = Clock::now();
  if (!r.has_value() || run.text.empty()) return run;
  run.ok = true;
  run.tokens = r->completion_tokens;
  run.ttft_us = std::chrono::duration<double, std::micro>(t_first - t0).count();
  run.decode_s = std::chrono::duration<double>(t_end - t_first).count();
  return run;
}

// Alternates the two paths every iteration so that machine load hits both alike.
void BM_WorkerVersusInProcess(benchmark::State& state) {
  Backends& b = backends();
  if (!b.ok) {
    state.SkipWithError("backends could not start (model from ../shared missing?)");
    return;
  }
  const Run a = generate_once(*b.inprocess);
  const Run w = generate_once(*b.worker);
  if (!a.ok || !w.ok || a.text != w.text || a.tokens != w.tokens || a.tokens < 2) {
    state.SkipWithError("worker and in-process outputs differ");
    return;
  }
  double ttft_us[2] = {0, 0}, decode_s[2] = {0, 0};
  uint64_t decode_tokens[2] = {0, 0}, n = 0;
  for (auto _ : state) {
    for (int path = 0; path < 2; ++path) {
      const Run r = generate_once(path == 0 ? static_cast<server::Backend&>(*b.inprocess) : *b.worker);
      if (!r.ok) {
        state.SkipWithError("generation failed");
        return;
      }
      ttft_us[path] += r.ttft_us;
      decode_s[path] += r.decode_s;
      decode_tokens[path] += r.tokens - 1;
    }
    ++n;
  }
  const double rate_in = static_cast<double>(decode_tokens[0]) / decode_s[0];
  const double rate_w = static_cast<double>(decode_tokens[1]) / decode_s[1];
  state.counters["inproc_decode_tok_s"] = rate_in;
  state.counters["worker_decode_tok_s"] = rate_w;
  state.counters["decode_cost_pct"] = 100.0 * (rate_in - rate_w) / rate_in;
  state.counters["inproc_ttft_us"] = ttft_us[0] / static_cast<double>(n);
  state.counters["worker_ttft_us"] = ttft_us[1] / static_cast<double>(n);
  state.counters["ttft_extra_us"] = (ttft_us[1] - ttft_us[0]) / static_cast<double>(n);
  state.counters["tokens"] = static_cast<double>(w.tokens);
}
BENCHMARK(BM_WorkerVersusInProcess)->Unit(benchmark::kMillisecond)->MinTime(3.0);

}  // namespace

BENCHMARK_MAIN();
