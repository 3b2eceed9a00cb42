// Benchmarks of engine/quant and engine/kernels: dequantisation, activation conversion, GEMV
// (one token, decode) and GEMM (prefill) per weight type and ISA, at SmolLM2-135M and
// Qwen2.5-0.5B matrix shapes, plus a streaming-read benchmark for the machine's memory
// bandwidth. Every kernel benchmark first checks its output against the scalar path and
// fails (SkipWithError) when they disagree.
//
//   ztslm_engine_kernels_bench --benchmark_filter='gemv/Q4_0'
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/kernels/matmul.h"
#include "engine/quant/quant.h"

namespace ztslm::engine {
namespace {

using gguf::TensorType;

struct Shape {
  const char* name;
  int64_t n_rows, n_cols;
};
// [n_rows, n_cols] = [out, in] of the projections.
constexpr Shape kShapes[] = {
    {"smollm2_ffn_up_1536x576", 1536, 576},
    {"smollm2_ffn_down_576x1536", 576, 1536},
    {"qwen25_ffn_up_4864x896", 4864, 896},
    {"qwen25_ffn_down_896x4864", 896, 4864},
};
// Matrices far larger than the last-level cache, for GEMV only: a decode step streams every
// weight from DRAM, which the cache-resident shapes above do not show (an output projection
// of SmolLM2 is 49152 x 576, a Llama-3.2-1B FFN row is 8192 wide).
constexpr Shape kDramShapes[] = {
    {"dram_65536x576", 65536, 576},
    {"dram_16384x4608", 16384, 4608},
};
constexpr TensorType kTypes[] = {TensorType::kQ8_0, TensorType::kQ4_0, TensorType::kQ5_0,
                                 TensorType::kQ4_K, TensorType::kQ6_K, TensorType::kF32,
                                 TensorType::kF16,  TensorType::kQ4_1, TensorType::kQ5_1,
                                 TensorType::kQ5_K, TensorType::kBF16};
constexpr int64_t kPrefillTokens = 64;

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<std::byte> random_weights(TensorType type, int64_t n_rows, int64_t n_cols) {
  const size_t rb = row_bytes(type, n_cols);
  std::vector<std::byte> w(rb * static_cast<size_t>(n_rows));
  std::vector<float> row;
  for (int64_t r = 0; r < n_rows; ++r) {
    row = random_floats(static_cast<size_t>(n_cols), static_cast<uint32_t>(r + 1));
    quantize_row(type, row.data(), w.data() + static_cast<size_t>(r) * rb, n_cols);
  }
  return w;
}

// Checks `m` against the scalar path on the first rows: normalised squared error.
bool validate(const Matrix& m, std::span<const std::byte> w, const std::vector<std::byte>& act,
              int64_t n_tokens, std::string* why) {
  const int64_t rows = std::min<int64_t>(m.n_rows(), 16);
  auto ref = Matrix::create(m.type(), m.n_cols(), m.n_rows(), w, Isa::kScalar);
  if (!ref.has_value()) return false;
  std::vector<float> a(static_cast<size_t>(n_tokens * m.n_rows()), 0.0f), b = a;
  ref->multiply(act.data(), n_tokens, 0, rows, a.data(), m.n_rows());
  m.multiply(act.data(), n_tokens, 0, rows, b.data(), m.n_rows());
  double err = 0, nrm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err += (a[i] - b[i]) * static_cast<double>(a[i] - b[i]);
    nrm += a[i] * static_cast<double>(a[i]);
  }
  if (!(err <= 1e-10 * nrm)) {
    *why = "output differs from the scalar path: nmse " + std::to_string(err / nrm);
    return false;
  }
  return true;
}

void bm_matmul(benchmark::State& state, TensorType type, Shape shape, Isa isa, int64_t n_tokens) {
  const auto w = random_weights(type, shape.n_rows, shape.n_cols);
  auto m = Matrix::create(type, shape.n_cols, shape.n_rows, w, isa);
  if (!m.has_value() || m->isa() != isa) {
    state.SkipWithError("isa not available");
    return;
  }
  const auto x = random_floats(static_cast<size_t>(n_tokens * shape.n_cols), 99);
  std::vector<std::byte> act(activation_row_bytes(m->act_type(), shape.n_cols) *
                             static_cast<size_t>(n_tokens));
  convert_activations(m->act_type(), x.data(), shape.n_cols, 0, n_tokens, act.data(), isa);
  std::string why;
  if (!validate(*m, w, act, n_tokens, &why)) {
    state.SkipWithError(why.c_str());
    return;
  }
  std::vector<float> y(static_cast<size_t>(n_tokens * shape.n_rows));
  for (auto _ : state) {
    m->multiply(act.data(), n_tokens, 0, shape.n_rows, y.data(), shape.n_rows);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double iters = static_cast<double>(state.iterations());
  state.counters["weight_GB/s"] = benchmark::Counter(static_cast<double>(w.size()) * iters / 1e9,
                                                     benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * static_cast<double>(shape.n_rows * shape.n_cols * n_tokens) * iters / 1e9,
      benchmark::Counter::kIsRate);
}

void bm_dequant(benchmark::State& state, TensorType type) {
  const int64_t n = 4096 * 16;
  const auto w = random_weights(type, 1, n);
  std::vector<float> out(static_cast<size_t>(n));
  for (auto _ : state) {
    dequantize_row(type, w.data(), out.data(), n);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void bm_convert(benchmark::State& state, TensorType act_type, Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(best_isa())) {
    state.SkipWithError("isa not available");
    return;
  }
  const int64_t n = 4864;
  const auto x = random_floats(static_cast<size_t>(n) * 2, 5);
  const int64_t n_act = act_type == TensorType::kQ8_K ? 4864 / 256 * 256 : n;
  std::vector<std::byte> a(activation_row_bytes(act_type, n_act)), b(a.size());
  convert_activations(act_type, x.data(), n_act, 0, 1, a.data(), Isa::kScalar);
  convert_activations(act_type, x.data(), n_act, 0, 1, b.data(), isa);
  if (a != b) {
    state.SkipWithError("activation conversion differs from the scalar path");
    return;
  }
  for (auto _ : state) {
    convert_activations(act_type, x.data(), n_act, 0, 1, b.data(), isa);
    benchmark::DoNotOptimize(b.data());
  }
  state.SetItemsProcessed(state.iterations() * n_act);
}

// Streaming read of 256 MiB (two 128 MiB arrays through dot_f32): the memory bandwidth the
// GEMV numbers compare with.
void bm_stream_read(benchmark::State& state) {
  const size_t n = size_t{32} << 20;
  std::vector<float> a(n, 1.0f), b(n, 0.5f);
  for (auto _ : state) benchmark::DoNotOptimize(dot_f32(a.data(), b.data(), static_cast<int64_t>(n)));
  state.counters["read_GB/s"] = benchmark::Counter(
      2.0 * static_cast<double>(n) * sizeof(float) * static_cast<double>(state.iterations()) / 1e9,
      benchmark::Counter::kIsRate);
}

// Attention of one head over `n` cached positions of head size `d` (F32 cache): scores, then
// the weighted sum of values, each checked against plain double loops first.
void bm_attention(benchmark::State& state, int64_t d, int64_t n) {
  const auto q = random_floats(static_cast<size_t>(d), 1);
  const auto k = random_floats(static_cast<size_t>(n * d), 2);
  const auto v = random_floats(static_cast<size_t>(n * d), 3);
  std::vector<float> s(static_cast<size_t>(n)), out(static_cast<size_t>(d));
  attn_scores_f32(q.data(), k.data(), n, d, s.data());
  attn_values_f32(s.data(), v.data(), n, d, out.data());
  for (int64_t j = 0; j < n; ++j) {
    double ref = 0, mag = 0;
    for (int64_t i = 0; i < d; ++i) {
      ref += static_cast<double>(q[i]) * k[j * d + i];
      mag += std::fabs(static_cast<double>(q[i]) * k[j * d + i]);
    }
    if (std::fabs(s[j] - ref) > 1e-6 * mag) {
      state.SkipWithError("attention scores differ from the double product");
      return;
    }
  }
  for (int64_t i = 0; i < d; ++i) {
    double ref = 0, mag = 0;
    for (int64_t j = 0; j < n; ++j) {
      ref += static_cast<double>(s[j]) * v[j * d + i];
      mag += std::fabs(static_cast<double>(s[j]) * v[j * d + i]);
    }
    if (std::fabs(out[i] - ref) > 1e-6 * mag + 1e-30) {
      state.SkipWithError("attention values differ from the double product");
      return;
    }
  }
  for (auto _ : state) {
    attn_scores_f32(q.data(), k.data(), n, d, s.data());
    attn_values_f32(s.data(), v.data(), n, d, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void register_all() {
  for (int64_t d : {64, 128}) {
    for (int64_t n : {192, 1024}) {
      const std::string name =
          "attention_f32/head" + std::to_string(d) + "/pos" + std::to_string(n) + "/" + isa_name(best_isa());
      benchmark::RegisterBenchmark(name.c_str(), bm_attention, d, n)->Unit(benchmark::kMicrosecond);
    }
  }
  benchmark::RegisterBenchmark("stream_read_256MiB", bm_stream_read)->Unit(benchmark::kMillisecond);
  const Isa isas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512};
  for (TensorType t : kTypes) {
    const std::string tn(gguf::tensor_type_name(t));
    benchmark::RegisterBenchmark(("dequant/" + tn).c_str(), bm_dequant, t);
  }
  for (TensorType a : {TensorType::kQ8_0, TensorType::kQ8_1, TensorType::kQ8_K, TensorType::kF16,
                       TensorType::kBF16}) {
    for (Isa isa : isas) {
      const std::string name =
          "quantize_act/" + std::string(gguf::tensor_type_name(a)) + "/" + isa_name(isa);
      benchmark::RegisterBenchmark(name.c_str(), bm_convert, a, isa);
    }
  }
  for (TensorType t : kTypes) {
    const std::string tn(gguf::tensor_type_name(t));
    for (const Shape& s : kShapes) {
      // K-quants need n_cols % 256 == 0 (SmolLM2's 576 is not; llama-quantize falls back there).
      if (s.n_cols % block_elems(t) != 0) continue;
      for (Isa isa : isas) {
        const std::string suffix = tn + "/" + s.name + "/" + isa_name(isa);
        benchmark::RegisterBenchmark(("gemv/" + suffix).c_str(), bm_matmul, t, s, isa, int64_t{1})
            ->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark(("gemm" + std::to_string(kPrefillTokens) + "/" + suffix).c_str(),
                                     bm_matmul, t, s, isa, kPrefillTokens)
            ->Unit(benchmark::kMillisecond);
      }
    }
    for (const Shape& s : kDramShapes) {
      if (s.n_cols % block_elems(t) != 0) continue;
      for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
        const std::string suffix = tn + "/" + s.name + "/" + isa_name(isa);
        benchmark::RegisterBenchmark(("gemv/" + suffix).c_str(), bm_matmul, t, s, isa, int64_t{1})
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
}

}  // namespace
}  // namespace ztslm::engine

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  ztslm::engine::register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
