// `ztslm bench`: prefill and decode speed, time to first token and peak memory, like
// llama-bench's pp/tg tests (random prompt tokens, no sampling), as text or JSON.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/engine_setup.h"
#include "engine/session.h"

namespace ztslm::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchArgs {
  std::string model;
  uint32_t n_prompt = 128;
  uint32_t n_gen = 64;
  std::string threads;  // "1,2"
  int repetitions = 3;
  bool json = false;
  bool bandwidth = false;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0.0 : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

// Bytes of weights one decode step reads: every layer matrix and the output projection (the
// embedding table contributes one row, which is negligible).
uint64_t decode_weight_bytes(const engine::Model& m) {
  uint64_t total = 0;
  for (const gguf::TensorInfo& t : m.gguf().tensors) {
    if (t.name == "token_embd.weight" && !m.has_tied_output()) continue;
    total += t.n_bytes;
  }
  return total;
}

// Sustained read bandwidth of this machine with `n_threads` threads (GB/s): each thread sums its
// part of a 1 GiB buffer, best of three passes.
double measure_read_bandwidth(int n_threads) {
  const size_t n = (size_t{1} << 30) / sizeof(uint64_t);
  std::vector<uint64_t> buf(n);
  for (size_t i = 0; i < n; ++i) buf[i] = i;
  double best = 0;
  for (int pass = 0; pass < 3; ++pass) {
    std::vector<uint64_t> sums(static_cast<size_t>(n_threads));
    const auto t0 = Clock::now();
    std::vector<std::thread> ts;
    for (int t = 0; t < n_threads; ++t) {
      ts.emplace_back([&, t] {
        const size_t b = n * static_cast<size_t>(t) / static_cast<size_t>(n_threads);
        const size_t e = n * static_cast<size_t>(t + 1) / static_cast<size_t>(n_threads);
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t i = b; i + 3 < e; i += 4) {
          s0 += buf[i], s1 += buf[i + 1], s2 += buf[i + 2], s3 += buf[i + 3];
        }
        sums[static_cast<size_t>(t)] = s0 + s1 + s2 + s3;
      });
    }
    for (auto& t : ts) t.join();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    uint64_t check = 0;
    for (uint64_t v : sums) check += v;
    if (check == 0) return 0;  // keeps the sums alive
    best = std::max(best, static_cast<double>(n * sizeof(uint64_t)) / s / 1e9);
  }
  return best;
}

Result<std::vector<int>> parse_thread_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1 || v > 1024) {
      return Status::invalid_argument("bad thread count '{}' (want e.g. 1,2)", item);
    }
    out.push_back(static_cast<int>(v));
  }
  return out;
}

int run_bench(const BenchArgs& a) {
  if (a.n_prompt == 0 && a.n_gen == 0) return fail(Status::invalid_argument("nothing to measure"));
  if (a.repetitions < 1 || a.repetitions > 100) {
    return fail(Status::invalid_argument("repetitions must be in [1, 100]"));
  }
  std::vector<int> thread_counts{default_threads()};
  if (!a.threads.empty()) {
    auto tc = parse_thread_list(a.threads);
    if (!tc.has_value()) return fail(tc.error());
    thread_counts = *tc;
  }
  auto lm = load_model(a.model);
  if (!lm.has_value()) return fail(lm.error());
  const engine::Model& model = *lm->model;
  const uint32_t n_vocab = model.n_vocab();
  const uint64_t weight_bytes = decode_weight_bytes(model);

  nlohmann::json results = nlohmann::json::array();
  for (int nt : thread_counts) {
    engine::ThreadPool pool(nt);
    engine::SessionOptions so;
    so.n_ctx = a.n_prompt + a.n_gen + 1;
    so.n_batch = std::max<uint32_t>(a.n_prompt, 1);
    auto session = engine::Session::create(lm->model, pool, so);
    if (!session.has_value()) return fail(session.error());
    // Deterministic pseudo-random prompt ids (a fixed LCG), as llama-bench uses random tokens.
    std::vector<int32_t> prompt(a.n_prompt);
    uint32_t x = 12345;
    for (auto& t : prompt) {
      x = x * 1664525u + 1013904223u;
      t = static_cast<int32_t>(x % n_vocab);
    }
    // Warm-up: touch every weight page once so the first repetition is not a page-fault test.
    {
      const int32_t t0 = 1;
      auto r = session->decode(std::span<const int32_t>(&t0, 1), false);
      if (!r.has_value()) return fail(r.error());
      session->reset();
    }
    std::vector<double> pp, tg, ttft;
    for (int rep = 0; rep < a.repetitions; ++rep) {
      session->reset();
      if (a.n_prompt > 0) {
        const auto t0 = Clock::now();
        auto r = session->decode(prompt, false);
        if (!r.has_value()) return fail(r.error());
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        pp.push_back(a.n_prompt / s);
        ttft.push_back(s * 1000.0);
      }
      if (a.n_gen > 0) {
        int32_t tok = 1;
        const auto t0 = Clock::now();
        for (uint32_t i = 0; i < a.n_gen; ++i) {
          auto r = session->decode(std::span<const int32_t>(&tok, 1), false);
          if (!r.has_value()) return fail(r.error());
          tok = static_cast<int32_t>((static_cast<uint32_t>(tok) * 2654435761u + i) % n_vocab);
        }
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        tg.push_back(a.n_gen / s);
      }
    }
    nlohmann::json row;
    row["threads"] = nt;
    row["isa"] = engine::isa_name(model.isa());
    row["n_prompt"] = a.n_prompt;
    row["n_gen"] = a.n_gen;
    row["repetitions"] = a.repetitions;
    if (!pp.empty()) {
      row["prefill_tok_s"] = median(pp);
      row["prefill_tok_s_all"] = pp;
      row["ttft_ms"] = median(ttft);
    }
    if (!tg.empty()) {
      row["decode_tok_s"] = median(tg);
      row["decode_tok_s_all"] = tg;
      row["decode_weight_gb_s"] = median(tg) * static_cast<double>(weight_bytes) / 1e9;
    }
    results.push_back(row);
  }

  nlohmann::json out;
  out["model"] = a.model;
  out["model_name"] = std::string(model.gguf().metadata.get_string("general.name").has_value()
                                      ? *model.gguf().metadata.get_string("general.name")
                                      : "");
  uint64_t tensor_bytes = 0;
  for (const auto& t : model.gguf().tensors) tensor_bytes += t.n_bytes;
  out["weight_bytes"] = tensor_bytes;
  out["decode_weight_bytes_per_token"] = weight_bytes;
  out["load_ms"] = lm->load_ms;
  out["results"] = results;
  if (a.bandwidth) {
    nlohmann::json bw = nlohmann::json::object();
    for (int nt : thread_counts) bw[std::to_string(nt)] = measure_read_bandwidth(nt);
    out["read_bandwidth_gb_s"] = bw;
  }
  out["peak_rss_bytes"] = peak_rss_bytes();

  if (a.json) {
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("model %s (%s), %.1f MiB of weights, %.1f MiB read per decoded token, load %.0f ms\n",
              a.model.c_str(), out["model_name"].get<std::string>().c_str(),
              static_cast<double>(tensor_bytes) / 1048576.0, static_cast<double>(weight_bytes) / 1048576.0,
              lm->load_ms);
  std::printf("%8s %8s %14s %12s %14s %16s\n", "threads", "isa", "prefill tok/s", "ttft ms", "decode tok/s",
              "decode GB/s");
  for (const auto& r : results) {
    std::printf("%8d %8s %14.1f %12.1f %14.1f %16.2f\n", r["threads"].get<int>(),
                r["isa"].get<std::string>().c_str(), r.value("prefill_tok_s", 0.0), r.value("ttft_ms", 0.0),
                r.value("decode_tok_s", 0.0), r.value("decode_weight_gb_s", 0.0));
  }
  if (a.bandwidth) {
    for (const auto& [k, v] : out["read_bandwidth_gb_s"].items()) {
      std::printf("measured read bandwidth, %s thread(s): %.2f GB/s\n", k.c_str(), v.get<double>());
    }
  }
  std::printf("peak RSS %.1f MiB (prompt %u, generation %u, median of %d)\n",
              static_cast<double>(peak_rss_bytes()) / 1048576.0, a.n_prompt, a.n_gen, a.repetitions);
  return 0;
}

}  // namespace

void register_bench_command(CLI::App& app) {
  static BenchArgs a;
  CLI::App* cmd = app.add_subcommand("bench", "measure prefill/decode tokens per second, time to first token, memory");
  cmd->add_option("-m,--model", a.model, "GGUF model file")->required();
  cmd->add_option("-p,--n-prompt", a.n_prompt, "prompt tokens (prefill test)")->capture_default_str();
  cmd->add_option("-n,--n-gen", a.n_gen, "generated tokens (decode test)")->capture_default_str();
  cmd->add_option("-t,--threads", a.threads, "comma-separated thread counts (default: all CPUs)");
  cmd->add_option("-r,--repetitions", a.repetitions, "repetitions; the median is reported")->capture_default_str();
  cmd->add_flag("--json", a.json, "JSON output");
  cmd->add_flag("--bandwidth", a.bandwidth, "also measure this machine's memory read bandwidth");
  cmd->callback([] { set_exit_code(run_bench(a)); });
}

}  // namespace ztslm::cli
