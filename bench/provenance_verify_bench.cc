// Verified model load: hash while copying a signed 500 MB model into a sealed memfd, against
// the plain SHA-256 of the same bytes (the floor), `sha256sum` and `cat > /dev/null` of the same
// file. Google Benchmark's bytes_per_second is in MiB/s ("M/s"); the wall_MBps and cpu_MBps
// counters are in MB/s (1e6 bytes) over elapsed and over CPU time.
// The file is written once to $TMPDIR and is in the page cache, so this is hash + copy speed,
// not disk speed.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>

#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

#include "core/byte_reader.h"
#include "core/check.h"
#include "provenance/encoding.h"
#include "provenance/model_signing.h"
#include "provenance/trust_store.h"
#include "sandbox/memfd.h"

namespace {

using namespace ztslm;
using namespace ztslm::provenance;

constexpr size_t kModelBytes = size_t{500} << 20;

struct Fixture {
  std::string path;
  std::string expected_sha256;
  TrustStore store;
  Fixture() {
    const char* tmp = std::getenv("TMPDIR");
    path = std::string(tmp != nullptr ? tmp : "/tmp") + "/ztslm_bench_model_" + std::to_string(::getpid()) + ".gguf";
    std::vector<char> chunk(size_t{1} << 20);
    std::mt19937_64 rng(1);
    Hasher h(HashType::kSha256);
    std::ofstream out(path, std::ios::binary);
    for (size_t done = 0; done < kModelBytes; done += chunk.size()) {
      for (size_t i = 0; i < chunk.size(); i += 8) {
        const uint64_t v = rng();
        std::memcpy(chunk.data() + i, &v, 8);
      }
      out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      h.update(as_bytes(chunk.data(), chunk.size()));
    }
    out.close();
    expected_sha256 = hex_encode(h.finish());
    auto key = PrivateKey::generate(Curve::kP256);
    ZTSLM_CHECK(key.has_value() && sign_model(path, *key).has_value());
    ZTSLM_CHECK(store.add_publisher("bench", key->public_key()).ok());
  }
  ~Fixture() {
    std::remove(path.c_str());
    std::remove((path + ".sig").c_str());
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

double cpu_seconds(int who) {
  rusage ru{};
  ::getrusage(who, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Counters in MB/s (1e6 bytes): `wall_MBps` over elapsed time, and `cpu_MBps` over the user+system
// CPU time of whoever did the work (this process, or the tool's child processes). On a shared,
// oversubscribed machine the second is the stable one.
class Throughput {
 public:
  explicit Throughput(int who) : who_(who), cpu0_(cpu_seconds(who)), t0_(std::chrono::steady_clock::now()) {}
  void report(benchmark::State& state) const {
    const double bytes = static_cast<double>(state.iterations()) * static_cast<double>(kModelBytes);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const double cpu = cpu_seconds(who_) - cpu0_;
    state.counters["wall_MBps"] = bytes / wall / 1e6;
    state.counters["cpu_MBps"] = cpu > 0 ? bytes / cpu / 1e6 : 0.0;
  }

 private:
  int who_;
  double cpu0_;
  std::chrono::steady_clock::time_point t0_;
};

void BM_VerifyIntoSealedMemfd(benchmark::State& state) {
  Fixture& f = fixture();
  const Throughput tp(RUSAGE_SELF);
  for (auto _ : state) {
    auto w = sandbox::SealedMemfdWriter::create("model", kModelBytes);
    ZTSLM_CHECK(w.has_value());
    auto info = verify_and_copy_model(f.path, f.store, LoadOptions{},
                                      [&](std::span<const std::byte> b) { return w->append(b); });
    ZTSLM_CHECK(info.has_value() && info->sha256 == f.expected_sha256 && info->signer == "bench");
    auto fd = w->seal();
    ZTSLM_CHECK(fd.has_value() && sandbox::require_sealed(fd->get()).ok());
  }
  tp.report(state);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kModelBytes));
}
BENCHMARK(BM_VerifyIntoSealedMemfd)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

void BM_Sha256Only(benchmark::State& state) {
  Fixture& f = fixture();
  const Throughput tp(RUSAGE_SELF);
  for (auto _ : state) {
    std::ifstream in(f.path, std::ios::binary);
    std::vector<char> buf(size_t{4} << 20);
    Hasher h(HashType::kSha256);
    while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
      h.update(as_bytes(buf.data(), static_cast<size_t>(in.gcount())));
    }
    ZTSLM_CHECK(hex_encode(h.finish()) == f.expected_sha256);
  }
  tp.report(state);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kModelBytes));
}
BENCHMARK(BM_Sha256Only)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

// The same file through the system's tools, in the same run: `sha256sum` (the hash alone, in
// another process) and `cat > /dev/null` (reading from the page cache, no hash, no copy).
void run_tool(benchmark::State& state, const std::string& command) {
  Fixture& f = fixture();
  const std::string cmd = command + " '" + f.path + "' > /dev/null";
  const Throughput tp(RUSAGE_CHILDREN);
  for (auto _ : state) {
    ZTSLM_CHECK(std::system(cmd.c_str()) == 0);
  }
  tp.report(state);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kModelBytes));
}

void BM_Sha256sumTool(benchmark::State& state) { run_tool(state, "sha256sum"); }
BENCHMARK(BM_Sha256sumTool)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

void BM_CatToDevNull(benchmark::State& state) { run_tool(state, "cat"); }
BENCHMARK(BM_CatToDevNull)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
