// The cost of running the engine in a sandboxed worker process instead of in the gateway: the
// same model, prompt and greedy sampling through cli::InProcessBackend and through
// server::scheduler::WorkerBackend (one worker), in one run. The benchmark binary is its own
// worker (`<bench> worker ...` runs `ztslm worker`), so both paths run the engine from the same
// machine code, as `ztslm serve` does: a separate binary's code layout alone moves the model's
// speed by about a percent, which is not a cost of the process boundary.
// One iteration is one whole generation on each path (the order alternates); the argument is
// max_tokens: 64 for decode, 1 for time to first token (more samples per second).
// Counters (per path, prefix inproc_ / worker_; medians over the iterations):
//   decode_tok_s  tokens after the first / time from the first text piece to the end
//   ttft_us       time from the generate() call to the first text piece
// and decode_cost_pct (worker's median decode rate below in-process, %), ttft_extra_us (median
// of the per-iteration differences, worker minus in-process), pairs (iterations).
// The benchmark first checks that both paths produce the same text.
//
//   build/release/bench/ztslm_server_worker_bench [--benchmark_repetitions=5]
//   ZTSLM_BENCH_MODEL=path.gguf overrides the model (default: tiny-qwen2-F32.gguf from ../shared,
//   or from $ZTSLM_SHARED_DIR).
#include <benchmark/benchmark.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli.h"
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

server::GenerateRequest request(uint32_t max_tokens) {
  server::GenerateRequest r;
  r.is_chat = false;
  r.prompt = "The quick brown fox jumps over the lazy dog, and then";
  r.sampling.temperature = 0.0f;
  r.sampling.max_tokens = max_tokens;
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
    // As `ztslm serve` does in every mode, both paths map the same sealed memfd (its pages are
    // shmem, not the file's page cache); ZTSLM_BENCH_INPROCESS_FILE=1 maps the file instead.
    const char* file_env = std::getenv("ZTSLM_BENCH_INPROCESS_FILE");
    if (file_env == nullptr || std::string(file_env) != "1") io.model_fd = memfd.get();
    io.n_ctx = 512;
    io.threads = kThreads;
    auto ib = cli::InProcessBackend::create(io);
    if (!ib.has_value()) {
      std::fprintf(stderr, "in-process backend: %s\n", ib.error().to_string().c_str());
      return;
    }
    inprocess = std::move(ib).value();
    server::scheduler::WorkerBackendOptions wo;
    wo.binary = "/proc/self/exe";
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
  double model_us = 0;  // the backend's own time in the model (prefill + decode)
};

Run generate_once(server::Backend& b, uint32_t max_tokens) {
  Run run;
  const auto t0 = Clock::now();
  Clock::time_point t_first{};
  auto r = b.generate(request(max_tokens), [&](std::string_view piece) {
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
  run.model_us = r->model_ms * 1000.0;
  return run;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// Runs both paths once per iteration, in alternating order, so that machine load hits both
// alike. Per-path counters are medians over the iterations; ttft_extra_us is the median of the
// paired differences (worker minus in-process, same iteration), decode_cost_pct compares the
// median decode rates. `state.range(0)` is max_tokens: 64 measures decode, 1 measures time to
// first token with many more samples.
void BM_WorkerVersusInProcess(benchmark::State& state) {
  Backends& b = backends();
  if (!b.ok) {
    state.SkipWithError("backends could not start (model from ../shared missing?)");
    return;
  }
  const auto max_tokens = static_cast<uint32_t>(state.range(0));
  const Run a = generate_once(*b.inprocess, max_tokens);
  const Run w = generate_once(*b.worker, max_tokens);
  if (!a.ok || !w.ok || a.text != w.text || a.tokens != w.tokens || a.tokens < std::min<uint32_t>(2, max_tokens)) {
    state.SkipWithError("worker and in-process outputs differ");
    return;
  }
  std::vector<double> ttft_us[2], rate[2], model_us[2], ttft_diff_us;
  uint64_t n = 0;
  for (auto _ : state) {
    double t[2] = {0, 0};
    for (int k = 0; k < 2; ++k) {
      const int path = (n % 2 == 0) ? k : 1 - k;
      const Run r = generate_once(path == 0 ? static_cast<server::Backend&>(*b.inprocess) : *b.worker, max_tokens);
      if (!r.ok || r.tokens != a.tokens) {
        state.SkipWithError("generation failed");
        return;
      }
      t[path] = r.ttft_us;
      ttft_us[path].push_back(r.ttft_us);
      model_us[path].push_back(r.model_us);
      if (r.tokens > 1 && r.decode_s > 0) rate[path].push_back(static_cast<double>(r.tokens - 1) / r.decode_s);
    }
    ttft_diff_us.push_back(t[1] - t[0]);
    ++n;
  }
  state.counters["inproc_ttft_us"] = median(ttft_us[0]);
  state.counters["worker_ttft_us"] = median(ttft_us[1]);
  state.counters["ttft_extra_us"] = median(ttft_diff_us);
  state.counters["inproc_model_us"] = median(model_us[0]);
  state.counters["worker_model_us"] = median(model_us[1]);
  if (max_tokens > 1) {
    const double rate_in = median(rate[0]);
    const double rate_w = median(rate[1]);
    state.counters["inproc_decode_tok_s"] = rate_in;
    state.counters["worker_decode_tok_s"] = rate_w;
    state.counters["decode_cost_pct"] = 100.0 * (rate_in - rate_w) / rate_in;
  }
  state.counters["pairs"] = static_cast<double>(n);
}
BENCHMARK(BM_WorkerVersusInProcess)->Arg(kMaxTokens)->Arg(1)->Unit(benchmark::kMillisecond)->MinTime(3.0);

}  // namespace

// Memory of one process as /proc/<pid>/smaps_rollup reports it (kB), or all zero when it cannot
// be read (a worker runs non-dumpable: reading it needs root or CAP_SYS_PTRACE).
struct Smaps {
  double rss_kb = 0, pss_kb = 0, shared_kb = 0, anon_kb = 0;
};

Smaps read_smaps(pid_t pid) {
  Smaps m;
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string key;
  double kb = 0;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    if (!(ls >> key >> kb)) continue;
    if (key == "Rss:") m.rss_kb = kb;
    if (key == "Pss:") m.pss_kb = kb;
    // memfd pages are shmem, dirty by nature: a page other workers map too is Shared_Dirty.
    if (key == "Shared_Clean:" || key == "Shared_Dirty:") m.shared_kb += kb;
    if (key == "Anonymous:") m.anon_kb = kb;
  }
  return m;
}

// Per-tenant isolation: the memory each additional tenant's worker costs. Four tenants come in
// one after another (one short generation each, no session), each getting its own worker on the
// same sealed memfd; after each, the PSS of every worker is summed. Counters (MiB):
//   model_mb             the sealed memfd
//   first_worker_rss_mb  / first_worker_pss_mb   the only worker, after its first request
//   extra_pss_mb         (PSS summed over 4 workers - PSS of 1) / 3: the cost of one more worker
//   worker_anon_mb       private anonymous memory of one worker (KV cache, scratch, heap), median
//   worker_shared_mb     pages of one worker that other workers map too (the weights), median
void BM_PerTenantWorkerMemory(benchmark::State& state) {
  Backends& b = backends();
  if (!b.ok) {
    state.SkipWithError("backends could not start");
    return;
  }
  constexpr int kTenants = 4;
  server::scheduler::WorkerBackendOptions wo;
  wo.binary = "/proc/self/exe";
  wo.model_fd = b.memfd.get();
  wo.model_id = "bench";
  wo.n_ctx = 512;
  wo.count = kTenants;
  wo.per_tenant = true;
  wo.threads = kThreads;
  wo.allow_degraded_lockdown = sandbox::landlock_abi_version() == 0;
  wo.drop_user = ::geteuid() == 0;
  auto wb = server::scheduler::WorkerBackend::create(wo);
  if (!wb.has_value()) {
    state.SkipWithError(wb.error().to_string().c_str());
    return;
  }
  struct stat st {};
  ::fstat(b.memfd.get(), &st);
  double pss_mb[kTenants + 1] = {};
  std::vector<double> anon_mb, shared_mb;
  double first_rss_mb = 0;
  for (auto _ : state) {
    for (int t = 1; t <= kTenants; ++t) {
      server::GenerateRequest r = request(8);
      r.tenant = "tenant-" + std::to_string(t);
      auto res = (*wb)->generate(r, [](std::string_view) { return true; });
      if (!res.has_value()) {
        state.SkipWithError(res.error().to_string().c_str());
        return;
      }
      double sum = 0;
      for (const auto& w : (*wb)->workers()) {
        if (w.pid <= 0) continue;
        const Smaps m = read_smaps(w.pid);
        if (m.rss_kb == 0) {
          state.SkipWithError("cannot read a worker's smaps_rollup (run as root)");
          return;
        }
        sum += m.pss_kb / 1024.0;
        if (t == 1) first_rss_mb = m.rss_kb / 1024.0;
        if (t == kTenants) {
          anon_mb.push_back(m.anon_kb / 1024.0);
          shared_mb.push_back(m.shared_kb / 1024.0);
        }
      }
      pss_mb[t] = sum;
    }
  }
  state.counters["model_mb"] = static_cast<double>(st.st_size) / (1024.0 * 1024.0);
  state.counters["first_worker_rss_mb"] = first_rss_mb;
  state.counters["first_worker_pss_mb"] = pss_mb[1];
  state.counters["pss_total_4_workers_mb"] = pss_mb[kTenants];
  state.counters["extra_pss_mb"] = (pss_mb[kTenants] - pss_mb[1]) / (kTenants - 1);
  state.counters["worker_anon_mb"] = median(anon_mb);
  state.counters["worker_shared_mb"] = median(shared_mb);
}
BENCHMARK(BM_PerTenantWorkerMemory)->Iterations(1)->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  // Started by WorkerBackend as the worker: run `ztslm worker` with the same arguments.
  if (argc > 1 && std::string(argv[1]) == "worker") return ztslm::cli::run(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
