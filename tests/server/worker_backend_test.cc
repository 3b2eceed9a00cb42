// The worker supervisor with real worker processes: the real `ztslm` binary (ZTSLM_BINARY) run
// as `ztslm worker` on a sealed memfd of a model from ../shared, and, for protocol violations, a
// fake worker (fake_worker.cc: this test executable started in its place).
#include "server/scheduler/worker_backend.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <sstream>

#include "cli/inprocess_backend.h"
#include "core/byte_reader.h"
#include "sandbox/lockdown.h"
#include "sandbox/memfd.h"
#include "sandbox/sealed_copy.h"
#include "server/clock.h"
#include "server/e2e_util.h"
#include "server/session/session_store.h"
#include "test_util.h"

namespace ztslm::server::scheduler {
namespace {

using ::ztslm::testing::sealed_copy;
using ::ztslm::testing::testdata_path;

std::string model_path() { return testdata_path("models/tiny-llama-spm-Q8_0.gguf"); }

// Records what the supervisor audits.
class MemoryAudit final : public AuditSink {
 public:
  Status record(const AuditRecord& r) override {
    std::lock_guard<std::mutex> lock(mu_);
    records_.push_back(r);
    return Status();
  }
  std::vector<AuditRecord> records() const {
    std::lock_guard<std::mutex> lock(mu_);
    return records_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<AuditRecord> records_;
};

class WorkerBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::ztslm::testing::shared_dir().empty()) GTEST_SKIP() << "../shared/testdata not found; skipping";
    memfd_ = sealed_copy(model_path());
  }

  WorkerBackendOptions options() {
    WorkerBackendOptions o;
    o.binary = ZTSLM_BINARY;
    o.model_fd = memfd_.get();
    o.model_id = "tiny";
    o.n_ctx = 256;
    o.count = 2;
    o.threads = 1;
    o.allow_degraded_lockdown = sandbox::landlock_abi_version() == 0;
    o.drop_user = ::geteuid() == 0;
    o.restart_backoff_ms = 10;
    o.restart_backoff_max_ms = 200;
    o.audit = &audit_;
    return o;
  }

  // The same model served in process, with the workers' context size and one thread.
  static Result<std::unique_ptr<cli::InProcessBackend>> in_process() {
    return tiny_in_process_backend(256);
  }

  static GenerateRequest chat(const std::string& text, uint32_t max_tokens = 12) {
    GenerateRequest r;
    r.is_chat = true;
    r.messages = {{"system", "You are terse."}, {"user", text}};
    r.sampling.temperature = 0.0f;
    r.sampling.max_tokens = max_tokens;
    r.sampling.has_seed = true;
    r.sampling.seed = 42;
    return r;
  }

  struct Out {
    Result<GenerateResult> result;
    std::string text;
  };
  static Out run(Backend& b, const GenerateRequest& r) {
    std::string text;
    auto res = b.generate(r, [&](std::string_view piece) {
      text.append(piece);
      return true;
    });
    return {std::move(res), text};
  }

  static std::string proc_status(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  sandbox::UniqueFd memfd_;
  MemoryAudit audit_;
};

TEST_F(WorkerBackendTest, ChatThroughAWorkerEqualsInProcess) {
  auto wb = WorkerBackend::create(options());
  ASSERT_TRUE(wb.has_value()) << wb.error().to_string();
  auto ib = in_process();
  ASSERT_TRUE(ib.has_value()) << ib.error().to_string();
  EXPECT_EQ((*wb)->model_info().n_ctx, 256u);
  EXPECT_EQ((*wb)->model_info().id, "tiny");

  for (const std::string prompt : {"Hello there", "Name three colours.", "Ünïcödé ✓"}) {
    Out w = run(**wb, chat(prompt));
    Out i = run(**ib, chat(prompt));
    ASSERT_TRUE(w.result.has_value()) << w.result.error().to_string();
    ASSERT_TRUE(i.result.has_value()) << i.result.error().to_string();
    EXPECT_FALSE(w.text.empty());
    EXPECT_EQ(w.text, i.text) << prompt;
    EXPECT_EQ(w.result->prompt_tokens, i.result->prompt_tokens);
    EXPECT_EQ(w.result->completion_tokens, i.result->completion_tokens);
    EXPECT_EQ(w.result->finish_reason, i.result->finish_reason);
  }
  // A completion prompt too.
  GenerateRequest c = chat("");
  c.is_chat = false;
  c.messages.clear();
  c.prompt = "Once upon a time";
  Out w = run(**wb, c);
  Out i = run(**ib, c);
  ASSERT_TRUE(w.result.has_value());
  ASSERT_TRUE(i.result.has_value());
  EXPECT_EQ(w.text, i.text);
}

// A session-less request runs on the wiped session a previous one left behind (the spare):
// nothing of that request's context may carry over, on either path.
TEST_F(WorkerBackendTest, ASessionLessRequestStartsFromAnEmptyContext) {
  WorkerBackendOptions o = options();
  o.count = 1;
  auto wb = WorkerBackend::create(o);
  ASSERT_TRUE(wb.has_value()) << wb.error().to_string();
  auto ib = in_process();
  ASSERT_TRUE(ib.has_value()) << ib.error().to_string();
  for (Backend* b : {static_cast<Backend*>(wb->get()), static_cast<Backend*>(ib->get())}) {
    Out first = run(*b, chat("Tell me a story."));
    Out second = run(*b, chat("Tell me a story."));
    ASSERT_TRUE(first.result.has_value() && second.result.has_value());
    EXPECT_EQ(second.result->cached_tokens, 0u);
    EXPECT_EQ(second.text, first.text);
  }
}

TEST_F(WorkerBackendTest, SessionKeepsItsCacheOnItsWorkerAndIsWipedWhenDestroyed) {
  auto wb = WorkerBackend::create(options());
  ASSERT_TRUE(wb.has_value()) << wb.error().to_string();
  auto session = (*wb)->create_session();
  ASSERT_TRUE(session.has_value());
  GenerateRequest r = chat("Tell me a story.");
  r.session = session->get();
  Out first = run(**wb, r);
  ASSERT_TRUE(first.result.has_value()) << first.result.error().to_string();
  EXPECT_EQ(first.result->cached_tokens, 0u);
  r.messages.push_back({"assistant", first.text});
  r.messages.push_back({"user", "And then?"});
  Out second = run(**wb, r);
  ASSERT_TRUE(second.result.has_value()) << second.result.error().to_string();
  EXPECT_GT(second.result->cached_tokens, 0u);
  // Destroying the session closes it in the worker; the worker stays up and serves on.
  session->reset();
  Out third = run(**wb, chat("Hello"));
  ASSERT_TRUE(third.result.has_value()) << third.result.error().to_string();
  EXPECT_EQ((*wb)->restarts(), 0u);
}

TEST_F(WorkerBackendTest, WorkersRunLockedDownAndTheLockdownIsAudited) {
  auto wb = WorkerBackend::create(options());
  ASSERT_TRUE(wb.has_value()) << wb.error().to_string();
  const auto ws = (*wb)->workers();
  ASSERT_EQ(ws.size(), 2u);
  for (const auto& w : ws) {
    ASSERT_GT(w.pid, 0);
    const std::string st = proc_status(w.pid);
    EXPECT_NE(st.find("Seccomp:\t2"), std::string::npos) << st;
    EXPECT_NE(st.find("NoNewPrivs:\t1"), std::string::npos) << st;
    if (::geteuid() == 0) {
      EXPECT_EQ(st.find("Uid:\t0"), std::string::npos) << st;  // dropped to an unprivileged user
    }
    EXPECT_NE(w.lockdown.find("seccomp kill"), std::string::npos) << w.lockdown;
  }
  size_t started = 0;
  for (const auto& r : audit_.records()) {
    if (r.route != "worker") continue;
    ++started;
    ASSERT_FALSE(r.reasons.empty());
    EXPECT_EQ(r.reasons[0], "worker started");
    EXPECT_EQ(r.decision, sandbox::landlock_abi_version() == 0 ? "degraded" : "allow");
  }
  EXPECT_EQ(started, 2u);
}

TEST_F(WorkerBackendTest, AWorkerKilledMidStreamFailsOnlyThatRequestAndIsReplaced) {
  auto wb = WorkerBackend::create(options());
  ASSERT_TRUE(wb.has_value()) << wb.error().to_string();
  uint64_t hooked = 0;
  (*wb)->set_restart_hook([&] { ++hooked; });
  pid_t victim = -1;
  pid_t survivor = -1;
  std::string text;
  auto res = (*wb)->generate(chat("Count to ten.", 64), [&](std::string_view piece) {
    text.append(piece);
    if (victim < 0) {
      for (const auto& w : (*wb)->workers()) {
        if (w.busy) {
          victim = w.pid;
        } else {
          survivor = w.pid;
        }
      }
      ::kill(victim, SIGKILL);
    }
    return true;
  });
  EXPECT_THAT(res, StatusIs(StatusCode::kUnavailable));
  EXPECT_FALSE(text.empty());
  ASSERT_GT(victim, 0);
  ASSERT_TRUE((*wb)->wait_until_up_for_test(1, 30000));
  EXPECT_EQ((*wb)->restarts(), 1u);
  EXPECT_EQ(hooked, 1u);
  // The other worker carried on; the killed one was replaced.
  bool survivor_kept = false;
  for (const auto& w : (*wb)->workers()) {
    EXPECT_NE(w.pid, victim);
    if (w.pid == survivor) survivor_kept = true;
  }
  EXPECT_TRUE(survivor_kept);
  for (int i = 0; i < 3; ++i) {
    Out o = run(**wb, chat("Hello"));
    EXPECT_TRUE(o.result.has_value()) << o.result.error().to_string();
  }
  bool audited = false;
  for (const auto& r : audit_.records()) {
    if (r.route == "worker" && r.decision == "error") audited = true;
  }
  EXPECT_TRUE(audited);
}

TEST_F(WorkerBackendTest, AWorkerThatDiedWhileIdleCostsNoRequest) {
  WorkerBackendOptions o = options();
  o.count = 1;
  o.ping_interval_ms = 600000;  // the death is found by the request, not by a ping
  auto wb = WorkerBackend::create(o);
  ASSERT_TRUE(wb.has_value()) << wb.error().to_string();
  const pid_t pid = (*wb)->workers()[0].pid;
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  Out out = run(**wb, chat("Hello"));
  EXPECT_TRUE(out.result.has_value()) << out.result.error().to_string();
  EXPECT_EQ((*wb)->restarts(), 1u);
  EXPECT_NE((*wb)->workers()[0].pid, pid);
}

TEST_F(WorkerBackendTest, CancellingStopsTheGenerationAndKeepsTheWorker) {
  auto wb = WorkerBackend::create(options());
  ASSERT_TRUE(wb.has_value()) << wb.error().to_string();
  size_t pieces = 0;
  auto res = (*wb)->generate(chat("Count to one hundred.", 200), [&](std::string_view) { return ++pieces < 2; });
  EXPECT_THAT(res, StatusIs(StatusCode::kCancelled));
  EXPECT_EQ(pieces, 2u);
  Out o = run(**wb, chat("Hello"));
  EXPECT_TRUE(o.result.has_value()) << o.result.error().to_string();
  EXPECT_EQ((*wb)->restarts(), 0u);
}

TEST_F(WorkerBackendTest, AHungWorkerIsFoundByPingAndReplaced) {
  WorkerBackendOptions o = options();
  o.count = 1;
  o.ping_interval_ms = 20;
  o.ping_deadline_ms = 300;
  auto wb = WorkerBackend::create(o);
  ASSERT_TRUE(wb.has_value()) << wb.error().to_string();
  const pid_t pid = (*wb)->workers()[0].pid;
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  ASSERT_TRUE((*wb)->wait_until_up_for_test(1, 30000));
  EXPECT_NE((*wb)->workers()[0].pid, pid);
  bool hung_audited = false;
  for (const auto& r : audit_.records()) {
    for (const auto& why : r.reasons) {
      if (r.route == "worker" && why.find("hung") != std::string::npos) hung_audited = true;
    }
  }
  EXPECT_TRUE(hung_audited);
  Out out = run(**wb, chat("Hello"));
  EXPECT_TRUE(out.result.has_value()) << out.result.error().to_string();
}

TEST_F(WorkerBackendTest, PerTenantWorkersAreSeparateProcesses) {
  WorkerBackendOptions o = options();
  o.per_tenant = true;
  o.count = 2;
  auto wb = WorkerBackend::create(o);
  ASSERT_TRUE(wb.has_value()) << wb.error().to_string();
  auto pid_of = [&](const std::string& tenant) {
    for (const auto& w : (*wb)->workers()) {
      if (w.tenant == tenant) return w.pid;
    }
    return pid_t{-1};
  };
  GenerateRequest a = chat("Hello");
  a.tenant = "acme";
  GenerateRequest b = chat("Hello");
  b.tenant = "globex";
  ASSERT_TRUE(run(**wb, a).result.has_value());
  const pid_t pa = pid_of("acme");
  ASSERT_TRUE(run(**wb, b).result.has_value());
  const pid_t pb = pid_of("globex");
  ASSERT_GT(pa, 0);
  ASSERT_GT(pb, 0);
  EXPECT_NE(pa, pb);
  // The same tenant keeps its worker, with or without a session.
  auto session = (*wb)->create_session();
  ASSERT_TRUE(session.has_value());
  a.session = session->get();
  ASSERT_TRUE(run(**wb, a).result.has_value());
  ASSERT_TRUE(run(**wb, a).result.has_value());
  EXPECT_EQ(pid_of("acme"), pa);
  // A third tenant replaces the least recently used worker (globex), never sharing one.
  GenerateRequest c = chat("Hello");
  c.tenant = "initech";
  ASSERT_TRUE(run(**wb, c).result.has_value());
  const pid_t pc = pid_of("initech");
  EXPECT_GT(pc, 0);
  EXPECT_NE(pc, pa);
  EXPECT_NE(pc, pb);
  EXPECT_EQ(pid_of("acme"), pa);
  EXPECT_EQ(pid_of("globex"), -1);
  EXPECT_EQ((*wb)->restarts(), 0u);
}

// The weights of per-tenant workers are the sealed memfd's pages, mapped by every worker: no
// worker holds a private copy (no anonymous pages in that mapping) and what one has resident
// the other maps too, so an extra tenant costs its KV caches and scratch, not the model.
TEST_F(WorkerBackendTest, PerTenantWorkersShareTheModelPages) {
  WorkerBackendOptions o = options();
  o.per_tenant = true;
  o.count = 2;
  auto wb = WorkerBackend::create(o);
  ASSERT_TRUE(wb.has_value()) << wb.error().to_string();
  for (const char* tenant : {"acme", "globex"}) {
    GenerateRequest r = chat("Hello");
    r.tenant = tenant;
    ASSERT_TRUE(run(**wb, r).result.has_value());
  }
  std::vector<pid_t> pids;
  for (const auto& w : (*wb)->workers()) {
    if (w.pid > 0) pids.push_back(w.pid);
  }
  ASSERT_EQ(pids.size(), 2u);
  struct stat st {};
  ASSERT_EQ(::fstat(memfd_.get(), &st), 0);
  for (pid_t pid : pids) {
    // The fields of the memfd's mapping(s) in /proc/<pid>/smaps, in kB.
    std::ifstream in("/proc/" + std::to_string(pid) + "/smaps");
    if (!in) GTEST_SKIP() << "cannot read a worker's smaps (it is not dumpable: needs root or CAP_SYS_PTRACE)";
    std::map<std::string, uint64_t> kb;
    bool in_memfd = false;
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') < 16) {
        in_memfd = line.find("/memfd:model") != std::string::npos;  // a new mapping starts
        continue;
      }
      if (!in_memfd) continue;
      std::istringstream ls(line);
      std::string key;
      uint64_t v = 0;
      if (ls >> key >> v) kb[key] += v;
    }
    ASSERT_GT(kb["Rss:"], 0u) << "pid " << pid << ": no resident memfd mapping";
    EXPECT_LE(kb["Rss:"] * 1024, static_cast<uint64_t>(st.st_size) + 4096);
    EXPECT_EQ(kb["Anonymous:"], 0u) << "pid " << pid << ": weights copied into private memory";
    // shmem pages are dirty by nature: shared ones show as Shared_Dirty.
    const uint64_t shared = kb["Shared_Clean:"] + kb["Shared_Dirty:"];
    EXPECT_GE(shared * 10, kb["Rss:"] * 9) << "pid " << pid << ": rss " << kb["Rss:"] << " kB, shared " << shared;
  }
}

TEST_F(WorkerBackendTest, AStartFailureIsReportedWithTheWorkersReason) {
  WorkerBackendOptions o = options();
  // A sealed memfd that is not a model: the worker reports why it cannot start.
  auto w = sandbox::SealedMemfdWriter::create("junk", 16);
  ASSERT_TRUE(w.has_value());
  const std::string junk = "not a gguf file at all";
  ASSERT_THAT(w->append(as_bytes(junk)), IsOk());
  auto fd = w->seal();
  ASSERT_TRUE(fd.has_value());
  o.model_fd = fd->get();
  auto wb = WorkerBackend::create(o);
  ASSERT_FALSE(wb.has_value());
  EXPECT_EQ(wb.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(wb.error().message().find("could not start"), std::string::npos) << wb.error().to_string();
}

class FakeWorkerTest : public WorkerBackendTest {
 protected:
  WorkerBackendOptions fake_options(const char* mode) {
    ::setenv("ZTSLM_FAKE_WORKER_MODE", mode, 1);
    WorkerBackendOptions o = options();
    o.binary = "/proc/self/exe";
    o.count = 1;
    return o;
  }
  void TearDown() override { ::unsetenv("ZTSLM_FAKE_WORKER_MODE"); }
};

TEST_F(FakeWorkerTest, AMalformedFrameEndsThatWorker) {
  for (const char* mode : {"malformed", "wrong_session"}) {
    auto wb = WorkerBackend::create(fake_options(mode));
    ASSERT_TRUE(wb.has_value()) << wb.error().to_string();
    const pid_t pid = (*wb)->workers()[0].pid;
    Out out = run(**wb, chat("Hello"));
    EXPECT_THAT(out.result, StatusIs(StatusCode::kUnavailable)) << mode;
    EXPECT_TRUE(out.text.empty());
    // The fake stays alive on its own: the supervisor ended it.
    EXPECT_NE(::kill(pid, 0), 0) << mode;
    ASSERT_TRUE((*wb)->wait_until_up_for_test(1, 30000));
    EXPECT_NE((*wb)->workers()[0].pid, pid);
    bool audited = false;
    for (const auto& r : audit_.records()) {
      if (r.route == "worker" && r.decision == "error") audited = true;
    }
    EXPECT_TRUE(audited) << mode;
  }
}

TEST_F(FakeWorkerTest, AWorkerThatDiesAfterGenerateEndCostsNoAnswer) {
  auto wb = WorkerBackend::create(fake_options("die_after_end"));
  ASSERT_TRUE(wb.has_value()) << wb.error().to_string();
  for (int round = 1; round <= 2; ++round) {
    const pid_t pid = (*wb)->workers()[0].pid;
    Out out = run(**wb, chat("Hello"));
    ASSERT_TRUE(out.result.has_value()) << out.result.error().to_string();
    EXPECT_EQ(out.text, "complete answer");
    EXPECT_EQ(out.result->completion_tokens, 2u);
    EXPECT_EQ(out.result->finish_reason, "stop");
    // The worker is replaced (and audited) all the same.
    ASSERT_TRUE((*wb)->wait_until_up_for_test(static_cast<uint64_t>(round), 30000));
    EXPECT_NE((*wb)->workers()[0].pid, pid);
  }
  size_t audited = 0;
  for (const auto& r : audit_.records()) {
    if (r.route != "worker" || r.decision != "error") continue;
    for (const auto& why : r.reasons) {
      if (why.find("after the generation ended") != std::string::npos) ++audited;
    }
  }
  EXPECT_EQ(audited, 2u);
}

TEST_F(WorkerBackendTest, SessionsCountTheWorkersKvBytesAgainstTheByteBound) {
  auto wb = WorkerBackend::create(options());
  ASSERT_TRUE(wb.has_value()) << wb.error().to_string();
  // A worker session weighs what the same session weighs in process.
  auto ib = in_process();
  ASSERT_TRUE(ib.has_value()) << ib.error().to_string();
  auto in_session = (*ib)->create_session();
  ASSERT_TRUE(in_session.has_value());
  const uint64_t per_session = (*in_session)->memory_bytes();
  ASSERT_GT(per_session, 0u);
  auto probe = (*wb)->create_session();
  ASSERT_TRUE(probe.has_value());
  EXPECT_EQ((*probe)->memory_bytes(), per_session);

  // Room for two sessions: the third evicts the least recently used, whose cache the worker
  // wipes, and the survivors keep working.
  ManualClock clock;
  SessionConfig cfg;
  cfg.max_sessions = 16;
  cfg.max_per_principal = 16;
  cfg.max_bytes = 2 * per_session + per_session / 2;
  SessionStore store(cfg, clock, [&] { return (*wb)->create_session(); });
  const SessionOwner alice{"alice", "t1"};
  auto a = store.create(alice);
  auto b = store.create(alice);
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(store.bytes(), 2 * per_session);
  {
    auto lease = store.acquire(b->id, alice);
    ASSERT_TRUE(lease.has_value());
    GenerateRequest r = chat("Hello");
    r.session = lease->backend();
    Out out = run(**wb, r);
    ASSERT_TRUE(out.result.has_value()) << out.result.error().to_string();
  }
  auto c = store.create(alice);
  ASSERT_TRUE(c.has_value()) << c.error().to_string();
  EXPECT_EQ(store.evictions(), 1u);
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.bytes(), 2 * per_session);
  EXPECT_THAT(store.acquire(a->id, alice), StatusIs(StatusCode::kNotFound));
  // A bound below one session refuses to create any.
  SessionConfig tiny = cfg;
  tiny.max_bytes = per_session - 1;
  SessionStore none(tiny, clock, [&] { return (*wb)->create_session(); });
  EXPECT_THAT(none.create(alice), StatusIs(StatusCode::kResourceExhausted));
  {
    auto lease = store.acquire(c->id, alice);
    ASSERT_TRUE(lease.has_value());
    GenerateRequest r = chat("Hello again");
    r.session = lease->backend();
    Out out = run(**wb, r);
    ASSERT_TRUE(out.result.has_value()) << out.result.error().to_string();
  }
  EXPECT_EQ((*wb)->restarts(), 0u);
}

}  // namespace
}  // namespace ztslm::server::scheduler
