// The gateway's whole input stage on a 4 KiB prompt, one core: the input guard's scan of every
// part (Unicode findings, decoded payloads, injection score with the shipped model) plus the
// policy input document that carries its report; the tool variant also spotlights the part.
// Reported as per-call percentiles of this thread's CPU time (preemption by other processes on
// a shared host is left out).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "guard/leak.h"
#include "server/gateway.h"
#include "server/guard_input.h"

namespace {

using namespace ztslm;
using namespace ztslm::server;

GuardInputStage& stage() {
  static GuardInputStage* s = [] {
    auto det = load_injection_detector(std::string(ZTSLM_SOURCE_DIR) + "/models/guard/injection.ztim");
    if (!det.has_value()) {
      std::fprintf(stderr, "cannot load the shipped model\n");
      std::abort();
    }
    return new GuardInputStage(std::shared_ptr<const guard::InjectionDetector>(std::move(det).value()));
  }();
  return *s;
}

double thread_cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

std::string prompt_4k() {
  std::string text;
  while (text.size() < 4096) text += "Please summarise the attached quarterly report and list the three main risks. ";
  text.resize(4096);
  return text;
}

// Out of line: GCC 12 sees a false maybe-uninitialized in the inlined string assignments.
[[gnu::noinline]] Principal make_principal() {
  Principal p;
  p.id = "alice";
  p.tenant = "t1";
  p.roles = {"user"};
  p.method = "api_key";
  return p;
}

void run(benchmark::State& state, bool as_tool) {
  const std::string text = prompt_4k();
  const std::string system = "You are a careful assistant.";
  std::vector<GuardPart> parts = {{"system", system, false}, {as_tool ? "tool" : "user", text, as_tool}};
  const Principal p = make_principal();
  openai::ApiRequest req;
  req.model = "m";
  req.messages = {{"system", system}, {as_tool ? "tool" : "user", text}};
  std::vector<double> us;
  for (auto _ : state) {
    const double t0 = thread_cpu_us();
    auto r = stage().scan(parts);
    if (!r.has_value() || r->injection_score >= 0.5) std::abort();  // the benign prompt scores benign
    PolicyInputArgs a;
    a.principal = &p;
    a.method = "POST";
    a.path = "/v1/chat/completions";
    a.action = "generate";
    a.request = &req;
    a.model_id = "m";
    a.guard = &*r;
    auto in = build_policy_input(a);
    benchmark::DoNotOptimize(in);
    if (as_tool) {
      auto sp = guard::spotlight(text, "0a1b2c3d");
      benchmark::DoNotOptimize(sp);
    }
    us.push_back(thread_cpu_us() - t0);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(text.size() + system.size()));
  std::sort(us.begin(), us.end());
  if (!us.empty()) {
    state.counters["p50_us"] = us[us.size() / 2];
    state.counters["p99_us"] = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  }
}

void BM_InputStage4KUser(benchmark::State& state) { run(state, false); }
void BM_InputStage4KToolSpotlighted(benchmark::State& state) { run(state, true); }
BENCHMARK(BM_InputStage4KUser);
BENCHMARK(BM_InputStage4KToolSpotlighted);

}  // namespace

BENCHMARK_MAIN();
