// `ztslm serve` (the real binary) with the engine in sandboxed workers, end to end over TLS
// with libcurl: answers equal the in-process engine's, workers are locked down, a killed worker
// is replaced without losing the next request, and the restart is counted in /metrics.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/byte_reader.h"
#include "sandbox/lockdown.h"
#include "sandbox/memfd.h"
#include "server/e2e_util.h"
#include "server/scheduler/worker_backend.h"
#include "server/server.h"
#include "test_util.h"

namespace ztslm::server {
namespace {

using ::ztslm::testing::testdata_path;

// One `ztslm serve` child; stdout is read until it prints its address.
class ServeProcess {
 public:
  ServeProcess(const std::string& config, const std::string& model, const std::string& state_dir) {
    int p[2];
    ZTSLM_CHECK(::pipe(p) == 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(p[1], 1);
      ::close(p[0]);
      ::close(p[1]);
      ::execl(ZTSLM_BINARY, ZTSLM_BINARY, "serve", "--config", config.c_str(), "--model", model.c_str(),
              "--state-dir", state_dir.c_str(), "--port", "0", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(p[1]);
    out_ = ::fdopen(p[0], "r");
    char line[4096];
    while (std::fgets(line, sizeof line, out_) != nullptr) {
      const std::string l(line);
      const std::string key_tag = "admin API key (shown once, store it now): ";
      if (l.starts_with(key_tag)) key_ = l.substr(key_tag.size(), l.find_last_not_of("\n") + 1 - key_tag.size());
      if (l.starts_with("ztslm serve: https://")) {
        const size_t colon = l.find(':', std::string("ztslm serve: https://").size());
        port_ = static_cast<uint16_t>(std::stoi(l.substr(colon + 1)));
        const size_t ca = l.find(", CA ");
        if (ca != std::string::npos) ca_ = l.substr(ca + 5, l.find_last_not_of("\n") + 1 - (ca + 5));
        break;
      }
    }
  }
  ~ServeProcess() { stop(); }
  int stop() {
    if (pid_ <= 0) return status_;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, &status_, 0);
    pid_ = -1;
    if (out_ != nullptr) std::fclose(out_);
    out_ = nullptr;
    return status_;
  }
  bool started() const { return port_ != 0 && !key_.empty() && !ca_.empty(); }
  HttpResp post(const std::string& path, const std::string& body) const {
    return curl_request(port_, ca_, "POST", path, body, {bearer(key_)});
  }
  HttpResp get(const std::string& path) const { return curl_request(port_, ca_, "GET", path, "", {bearer(key_)}); }
  pid_t pid() const { return pid_; }

  // Children of the server process (its workers).
  std::vector<pid_t> children() const {
    std::vector<pid_t> out;
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      const std::string name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream in(e.path() / "stat");
      std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      const size_t rp = stat.rfind(')');
      if (rp == std::string::npos) continue;
      std::istringstream rest(stat.substr(rp + 2));
      char state = 0;
      int ppid = 0;
      rest >> state >> ppid;
      if (ppid == pid_ && state != 'Z') out.push_back(static_cast<pid_t>(std::stoi(name)));
    }
    return out;
  }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  FILE* out_ = nullptr;
  uint16_t port_ = 0;
  std::string key_, ca_;
};

std::string write_config(const std::string& dir, const std::string& mode) {
  const std::string path = dir + "/ztslm.yaml";
  std::ofstream out(path);
  out << "model:\n  id: tiny\n  n_ctx: 256\n  threads: 1\n  allow_unsigned: true\n"
      << "worker:\n  mode: " << mode << "\n  count: 1\n  threads: 1\n  ping_interval_ms: 100\n  restart_backoff_ms: 10\n"
      << "  allow_degraded_lockdown: " << (sandbox::landlock_abi_version() == 0 ? "true" : "false") << "\n";
  return path;
}

std::string chat_body(bool stream, int max_tokens = 10) {
  json b = {{"model", "tiny"},
            {"messages", json::array({{{"role", "user"}, {"content", "Hello there, who are you?"}}})},
            {"max_tokens", max_tokens},
            {"temperature", 0},
            {"seed", 7},
            {"stream", stream}};
  return b.dump();
}

std::string status_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ServeWorkerE2eTest, ServesThroughASandboxedWorkerAndSurvivesItsDeath) {
  ZTSLM_REQUIRE_SHARED();
  const std::string model = testdata_path("models/tiny-llama-spm-Q8_0.gguf");
  const std::string dir_w = make_temp_dir();
  const std::string dir_i = make_temp_dir();

  std::string inprocess_answer;
  {
    ServeProcess serve(write_config(dir_i, "inprocess"), model, dir_i);
    ASSERT_TRUE(serve.started());
    const HttpResp r = serve.post("/v1/chat/completions", chat_body(false));
    ASSERT_EQ(r.status, 200) << r.body;
    inprocess_answer = r.j()["choices"][0]["message"]["content"].get<std::string>();
    EXPECT_TRUE(serve.children().empty());
    EXPECT_EQ(serve.stop(), 0);
  }

  ServeProcess serve(write_config(dir_w, "sandboxed"), model, dir_w);
  ASSERT_TRUE(serve.started());
  const HttpResp r = serve.post("/v1/chat/completions", chat_body(false));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j()["choices"][0]["message"]["content"].get<std::string>(), inprocess_answer);
  const HttpResp s = serve.post("/v1/chat/completions", chat_body(true));
  ASSERT_EQ(s.status, 200) << s.body;
  EXPECT_NE(s.body.find("data: [DONE]"), std::string::npos);

  std::vector<pid_t> workers = serve.children();
  ASSERT_EQ(workers.size(), 1u);
  const std::string st = status_of(workers[0]);
  EXPECT_NE(st.find("Seccomp:\t2"), std::string::npos) << st;
  EXPECT_NE(st.find("NoNewPrivs:\t1"), std::string::npos) << st;

  // The worker dies; the next request is served by its replacement.
  ASSERT_EQ(::kill(workers[0], SIGKILL), 0);
  const HttpResp after = serve.post("/v1/chat/completions", chat_body(false));
  ASSERT_EQ(after.status, 200) << after.body;
  EXPECT_EQ(after.j()["choices"][0]["message"]["content"].get<std::string>(), inprocess_answer);
  const std::vector<pid_t> now = serve.children();
  ASSERT_EQ(now.size(), 1u);
  EXPECT_NE(now[0], workers[0]);
  const HttpResp m = serve.get("/metrics");
  ASSERT_EQ(m.status, 200) << m.body;
  EXPECT_NE(m.body.find("ztslm_worker_restarts_total 1"), std::string::npos) << m.body;

  EXPECT_EQ(serve.stop(), 0);
  std::filesystem::remove_all(dir_w);
  std::filesystem::remove_all(dir_i);
}

// Kills the worker serving a generation when its first text arrives (when armed): the failure
// a crashed worker causes, at a known point of the stream.
class KillOnFirstText final : public Backend {
 public:
  explicit KillOnFirstText(scheduler::WorkerBackend& inner) : inner_(&inner) {}
  ModelInfo model_info() const override { return inner_->model_info(); }
  Result<std::unique_ptr<BackendSession>> create_session() override { return inner_->create_session(); }
  Result<GenerateResult> generate(const GenerateRequest& req, const TokenCallback& on_text) override {
    bool killed = false;
    return inner_->generate(req, [&](std::string_view piece) {
      if (armed_ && !killed) {
        killed = true;
        for (const auto& w : inner_->workers()) {
          if (w.busy) ::kill(w.pid, SIGKILL);
        }
      }
      return on_text(piece);
    });
  }
  bool armed_ = false;

 private:
  scheduler::WorkerBackend* inner_;
};

TEST(GatewayWorkerE2eTest, AWorkerKilledMidGenerationFailsOnlyThatRequest) {
  ZTSLM_REQUIRE_SHARED();
  std::ifstream in(testdata_path("models/tiny-llama-spm-Q8_0.gguf"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto w = sandbox::SealedMemfdWriter::create("model", bytes.size());
  ASSERT_TRUE(w.has_value());
  ASSERT_TRUE(w->append(as_bytes(bytes)).ok());
  auto memfd = w->seal();
  ASSERT_TRUE(memfd.has_value());
  scheduler::WorkerBackendOptions wo;
  wo.binary = ZTSLM_BINARY;
  wo.model_fd = memfd->get();
  wo.model_id = "tiny";
  wo.n_ctx = 256;
  wo.count = 1;
  wo.restart_backoff_ms = 10;
  wo.allow_degraded_lockdown = sandbox::landlock_abi_version() == 0;
  wo.drop_user = ::geteuid() == 0;
  auto wb = scheduler::WorkerBackend::create(wo);
  ASSERT_TRUE(wb.has_value()) << wb.error().to_string();
  KillOnFirstText backend(**wb);

  ManualClock clock;
  MemoryKeyAuth auth(clock);
  SimpleAuditSink audit("", 4096);
  const std::string key = auth.create_key("alice", "t1", {"user"});
  const std::string dir = make_temp_dir();
  ServerConfig cfg = test_server_config(dir);
  cfg.model.allow_unsigned = true;
  ServerParts parts;
  parts.backend = &backend;
  parts.auth = &auth;
  parts.audit = &audit;
  parts.clock = &clock;
  auto srv = Server::start(cfg, parts);
  ASSERT_TRUE(srv.has_value()) << srv.error().to_string();
  auto post = [&](bool stream) {
    // 64 tokens: the kill at the first text lands while the worker is still generating (a
    // worker that had already sent GenerateEnd would rightly give the whole answer).
    return curl_request((*srv)->port(), (*srv)->ca_file(), "POST", "/v1/chat/completions", chat_body(stream, 64),
                        {bearer(key)});
  };

  // Not streaming: nothing was sent yet, so the client gets a clean 503.
  backend.armed_ = true;
  const HttpResp plain = post(false);
  EXPECT_EQ(plain.status, 503) << plain.body;
  EXPECT_EQ(plain.j()["error"]["type"], "server_error") << plain.body;
  // Streaming: the stream ends with an error event and [DONE].
  ASSERT_TRUE((*wb)->wait_until_up_for_test(1, 30000));
  const HttpResp stream = post(true);
  EXPECT_EQ(stream.status, 200);
  EXPECT_NE(stream.body.find("\"error\""), std::string::npos) << stream.body;
  EXPECT_NE(stream.body.find("data: [DONE]"), std::string::npos) << stream.body;
  // The next request is served by the restarted worker.
  backend.armed_ = false;
  ASSERT_TRUE((*wb)->wait_until_up_for_test(2, 30000));
  const HttpResp after = post(false);
  EXPECT_EQ(after.status, 200) << after.body;
  bool audited_503 = false;
  for (const auto& r : audit.records()) {
    if (r.route == "POST /v1/chat/completions" && r.http_status == 503) audited_503 = true;
  }
  EXPECT_TRUE(audited_503);
  (*srv)->stop();
  std::filesystem::remove_all(dir);
}

// A worker (the fake of fake_worker.cc, mode die_after_end) that sends a whole answer and
// GenerateEnd, then dies before the gateway has finished the request: the client gets the whole
// answer, streamed or not, and the death is audited.
TEST(GatewayWorkerE2eTest, AWorkerDyingAfterGenerateEndStillAnswersInFull) {
  auto w = sandbox::SealedMemfdWriter::create("fake-model", 16);
  ASSERT_TRUE(w.has_value());
  ASSERT_TRUE(w->append(as_bytes(std::string("fake worker model"))).ok());
  auto memfd = w->seal();
  ASSERT_TRUE(memfd.has_value());
  ::setenv("ZTSLM_FAKE_WORKER_MODE", "die_after_end", 1);
  ManualClock clock;
  MemoryKeyAuth auth(clock);
  SimpleAuditSink audit("", 4096);
  scheduler::WorkerBackendOptions wo;
  wo.binary = "/proc/self/exe";  // this test executable, run as the fake worker
  wo.model_fd = memfd->get();
  wo.model_id = "tiny";
  wo.count = 1;
  wo.restart_backoff_ms = 10;
  wo.drop_user = ::geteuid() == 0;
  wo.audit = &audit;
  // Set for the whole test: every restarted worker is forked from this process.
  auto wb = scheduler::WorkerBackend::create(wo);
  ASSERT_TRUE(wb.has_value()) << wb.error().to_string();
  const std::string key = auth.create_key("alice", "t1", {"user"});
  const std::string dir = make_temp_dir();
  ServerConfig cfg = test_server_config(dir);
  cfg.model.allow_unsigned = true;
  ServerParts parts;
  parts.backend = wb->get();
  parts.auth = &auth;
  parts.audit = &audit;
  parts.clock = &clock;
  auto srv = Server::start(cfg, parts);
  ASSERT_TRUE(srv.has_value()) << srv.error().to_string();
  auto post = [&](bool stream) {
    return curl_request((*srv)->port(), (*srv)->ca_file(), "POST", "/v1/chat/completions", chat_body(stream),
                        {bearer(key)});
  };

  const HttpResp plain = post(false);
  ASSERT_EQ(plain.status, 200) << plain.body;
  EXPECT_EQ(plain.j()["choices"][0]["message"]["content"], "complete answer") << plain.body;
  EXPECT_EQ(plain.j()["choices"][0]["finish_reason"], "stop") << plain.body;
  ASSERT_TRUE((*wb)->wait_until_up_for_test(1, 30000));
  const HttpResp stream = post(true);
  EXPECT_EQ(stream.status, 200);
  std::string streamed;
  for (size_t at = stream.body.find("\"content\":\""); at != std::string::npos;
       at = stream.body.find("\"content\":\"", at + 1)) {
    const size_t start = at + 11;
    streamed += stream.body.substr(start, stream.body.find('"', start) - start);
  }
  EXPECT_EQ(streamed, "complete answer") << stream.body;
  EXPECT_EQ(stream.body.find("\"error\""), std::string::npos) << stream.body;
  EXPECT_NE(stream.body.find("data: [DONE]"), std::string::npos) << stream.body;
  ASSERT_TRUE((*wb)->wait_until_up_for_test(2, 30000));
  (*srv)->stop();
  ::unsetenv("ZTSLM_FAKE_WORKER_MODE");
  size_t ok_requests = 0, worker_deaths = 0;
  for (const auto& r : audit.records()) {
    if (r.route == "POST /v1/chat/completions" && r.http_status == 200) ++ok_requests;
    if (r.route == "worker" && r.decision == "error") ++worker_deaths;
  }
  EXPECT_EQ(ok_requests, 2u);
  EXPECT_EQ(worker_deaths, 2u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ztslm::server
