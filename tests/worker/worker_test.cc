// The worker process end to end: a forked child runs run_worker() on a sealed memfd of a real
// model and one end of a SOCK_SEQPACKET socketpair; this process plays the gateway.
#include "worker/worker.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "core/byte_reader.h"
#include "engine/model.h"
#include "engine/session.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/vocab.h"
#include "sandbox/memfd.h"
#include "sandbox/sealed_copy.h"
#include "test_util.h"
#include "worker/protocol/endpoint.h"
#include "worker/protocol/transport.h"

namespace ztslm::worker {
namespace {

namespace proto = protocol;
using ::ztslm::testing::sealed_copy;
using ::ztslm::testing::testdata_path;

std::string model_path() { return testdata_path("models/tiny-llama-spm-Q8_0.gguf"); }

class WorkerProcess {
 public:
  explicit WorkerProcess(const std::string& model) {
    sandbox::UniqueFd memfd = sealed_copy(model);
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(sv[0]);
      WorkerOptions opt;
      opt.socket_fd = sv[1];
      opt.model_fd = memfd.get();
      opt.n_threads = 2;
      opt.lockdown.allow_degraded = sandbox::landlock_abi_version() == 0;
      ::_exit(run_worker(opt));
    }
    ::close(sv[1]);
    fd_ = sv[0];
  }
  ~WorkerProcess() {
    if (fd_ >= 0) ::close(fd_);
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  proto::GatewayEndpoint& ep() { return ep_; }

  void send(const proto::Frame& f) {
    auto bytes = ep_.on_send(f);
    ASSERT_TRUE(bytes.has_value()) << bytes.error().to_string();
    ASSERT_THAT(proto::send_datagram(fd_, *bytes), IsOk());
  }
  void send_raw(std::span<const std::byte> bytes) { ASSERT_THAT(proto::send_datagram(fd_, bytes), IsOk()); }
  Result<proto::Frame> recv() {
    auto got = proto::recv_datagram(fd_, buf_, ep_.limits().max_frame_bytes, /*wait=*/true);
    if (!got.has_value()) return got.error();
    return ep_.on_receive(**got);
  }
  // Closes our end and returns the worker's wait status.
  int close_and_wait() {
    ::close(fd_);
    fd_ = -1;
    return wait();
  }
  int wait() {
    int st = 0;
    ::waitpid(pid_, &st, 0);
    reaped_ = true;
    return st;
  }
  void handshake() {
    send(proto::Hello{proto::kProtocolVersion, 4, 256});
    auto r = recv();
    ASSERT_TRUE(r.has_value()) << r.error().to_string();
    ready_ = std::get<proto::Ready>(*r);
  }
  const proto::Ready& ready() const { return ready_; }

  // Runs one generation; returns the concatenated text and the end frame.
  std::pair<std::string, proto::GenerateEnd> generate(const proto::Generate& g) {
    send(g);
    std::string text;
    for (;;) {
      auto f = recv();
      EXPECT_TRUE(f.has_value()) << f.error().to_string();
      if (!f.has_value()) return {text, {}};
      if (auto* c = std::get_if<proto::TokenChunk>(&*f)) {
        text += c->text;
        continue;
      }
      if (auto* e = std::get_if<proto::GenerateEnd>(&*f)) return {text, *e};
      ADD_FAILURE() << "unexpected frame " << proto::frame_type_name(proto::type_of(*f));
      return {text, {}};
    }
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  bool reaped_ = false;
  proto::GatewayEndpoint ep_;
  std::vector<std::byte> buf_;
  proto::Ready ready_;
};

proto::Generate greedy(uint64_t session, std::string prompt, uint32_t max_tokens) {
  proto::Generate g;
  g.session_id = session;
  g.kind = proto::PromptKind::kText;
  g.text = std::move(prompt);
  g.sampling.temperature = 0;
  g.sampling.max_tokens = max_tokens;
  return g;
}

std::string proc_field(pid_t pid, const std::string& name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) == 0) {
      size_t v = name.size() + 1;
      while (v < line.size() && (line[v] == ' ' || line[v] == '\t')) ++v;
      return line.substr(v);
    }
  }
  return "";
}

// The same greedy generation in this process, for comparison.
std::string in_process_greedy(const std::string& prompt, uint32_t max_tokens) {
  auto model = engine::Model::open(model_path());
  EXPECT_TRUE(model.has_value());
  auto vocab = engine::tokenizer::Vocab::from_metadata((*model)->gguf().metadata);
  engine::ThreadPool pool(1);
  engine::SessionOptions so;
  so.n_ctx = 256;
  auto session = engine::Session::create(*model, pool, so);
  auto tokens = engine::tokenizer::tokenize(*vocab, prompt, true, false, 256);
  auto logits = session->decode(*tokens, false);
  engine::tokenizer::StreamingDetokenizer detok(*vocab, false);
  std::string out;
  for (uint32_t i = 0; i < max_tokens; ++i) {
    const auto row = *logits;
    int32_t best = 0;
    for (size_t j = 1; j < row.size(); ++j) {
      if (row[j] > row[static_cast<size_t>(best)]) best = static_cast<int32_t>(j);
    }
    if (vocab->is_eog(best)) break;
    out += detok.push(best);
    if (i + 1 == max_tokens) break;
    logits = session->decode(std::span<const int32_t>(&best, 1), false);
  }
  return out + detok.finish();
}

TEST(WorkerTest, LockedDownWorkerGeneratesWhatTheEngineGenerates) {
  ZTSLM_REQUIRE_SHARED();
  std::string text;
  {
    WorkerProcess w(model_path());
    w.handshake();
    EXPECT_GT(w.ready().n_vocab, 0u);
    EXPECT_EQ(w.ready().n_ctx, 256u);
    {
      auto model = engine::Model::open(model_path());
      ASSERT_TRUE(model.has_value());
      engine::ThreadPool pool(1);
      engine::SessionOptions so;
      so.n_ctx = 256;
      auto session = engine::Session::create(*model, pool, so);
      ASSERT_TRUE(session.has_value());
      EXPECT_EQ(w.ready().session_kv_bytes, session->kv_bytes());
    }
    EXPECT_NE(w.ready().lockdown.find("seccomp kill"), std::string::npos) << w.ready().lockdown;
    // The running worker is confined.
    EXPECT_EQ(proc_field(w.pid(), "Seccomp"), "2");
    EXPECT_EQ(proc_field(w.pid(), "NoNewPrivs"), "1");
    if (::geteuid() == 0) {
      EXPECT_EQ(proc_field(w.pid(), "Uid").substr(0, 5), "65534");
    }

    auto [out, end] = w.generate(greedy(7, "Once upon a time", 24));
    text = out;
    EXPECT_EQ(end.session_id, 7u);
    EXPECT_GT(end.prompt_tokens, 0u);
    EXPECT_GT(end.completion_tokens, 0u);
    EXPECT_LE(end.completion_tokens, 24u);

    // The same session continues: the prompt prefix comes from its KV cache.
    auto [out2, end2] = w.generate(greedy(7, "Once upon a time", 24));
    EXPECT_EQ(out2, out);
    EXPECT_EQ(end2.cached_tokens, end2.prompt_tokens - 1);

    w.send(proto::Ping{42});
    auto pong = w.recv();
    ASSERT_TRUE(pong.has_value());
    EXPECT_EQ(std::get<proto::Pong>(*pong).nonce, 42u);
    w.send(proto::CloseSession{7});
    auto closed = w.recv();
    ASSERT_TRUE(closed.has_value()) << closed.error().to_string();
    EXPECT_EQ(std::get<proto::SessionClosed>(*closed).session_id, 7u);

    const int st = w.close_and_wait();
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == kExitPeerClosed) << "status " << st;
  }
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(text, in_process_greedy("Once upon a time", 24));
}

TEST(WorkerTest, MalformedFrameEndsTheWorker) {
  ZTSLM_REQUIRE_SHARED();
  struct Row {
    const char* name;
    std::vector<std::byte> bytes;
  };
  std::vector<Row> rows;
  rows.push_back({"garbage", std::vector<std::byte>(16, std::byte{0xAB})});
  auto second_hello = proto::encode(proto::Hello{proto::kProtocolVersion, 1, 16});
  rows.push_back({"out-of-state hello", *second_hello});
  auto pong = proto::encode(proto::Pong{1});
  rows.push_back({"worker-only frame", *pong});
  auto bad_len = *proto::encode(proto::Ping{1});
  bad_len[4] = std::byte{9};
  rows.push_back({"wrong payload length", bad_len});
  for (const Row& row : rows) {
    WorkerProcess w(model_path());
    w.handshake();
    w.send_raw(row.bytes);
    auto r = w.recv();
    EXPECT_THAT(r, StatusIs(StatusCode::kUnavailable)) << row.name;  // the worker hung up
    const int st = w.wait();
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == kExitViolation) << row.name << ": status " << st;
  }
}

TEST(WorkerTest, KillingTheWorkerMidStreamIsObservedAndANewWorkerServes) {
  ZTSLM_REQUIRE_SHARED();
  {
    WorkerProcess w(model_path());
    w.handshake();
    proto::Generate g = greedy(1, "The", 200);
    g.sampling.temperature = 1.0f;
    g.sampling.seed = 5;
    w.send(g);
    auto first = w.recv();
    ASSERT_TRUE(first.has_value()) << first.error().to_string();
    ASSERT_TRUE(std::holds_alternative<proto::TokenChunk>(*first));
    ASSERT_EQ(::kill(w.pid(), SIGKILL), 0);
    // Whatever was queued drains, then the stream ends with the peer gone (no GenerateEnd).
    Result<proto::Frame> f = w.recv();
    while (f.has_value() && std::holds_alternative<proto::TokenChunk>(*f)) f = w.recv();
    EXPECT_THAT(f, StatusIs(StatusCode::kUnavailable));
    const int st = w.wait();
    EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  }
  WorkerProcess next(model_path());
  next.handshake();
  auto [text, end] = next.generate(greedy(1, "The", 8));
  EXPECT_GT(end.completion_tokens, 0u);
}

TEST(WorkerTest, CancelEndsTheGenerationAndBadRequestsGetAnError) {
  ZTSLM_REQUIRE_SHARED();
  WorkerProcess w(model_path());
  w.handshake();
  proto::Generate g = greedy(3, "The", 200);
  g.sampling.temperature = 1.0f;
  g.sampling.seed = 9;
  w.send(g);
  auto first = w.recv();
  ASSERT_TRUE(first.has_value());
  w.send(proto::Cancel{3});
  proto::GenerateEnd end;
  for (;;) {
    auto f = w.recv();
    ASSERT_TRUE(f.has_value()) << f.error().to_string();
    if (auto* e = std::get_if<proto::GenerateEnd>(&*f)) {
      end = *e;
      break;
    }
  }
  EXPECT_TRUE(end.finish == proto::FinishReason::kCancelled || end.completion_tokens == 200u);
  // A token id outside the vocabulary is the request's error, not a protocol violation.
  proto::Generate bad;
  bad.session_id = 4;
  bad.kind = proto::PromptKind::kTokens;
  bad.tokens = {1, static_cast<int32_t>(w.ready().n_vocab)};
  w.send(bad);
  auto err = w.recv();
  ASSERT_TRUE(err.has_value()) << err.error().to_string();
  ASSERT_TRUE(std::holds_alternative<proto::Error>(*err));
  EXPECT_EQ(std::get<proto::Error>(*err).code, static_cast<uint8_t>(StatusCode::kInvalidArgument));
  // And the worker still serves.
  auto [text, end2] = w.generate(greedy(5, "Hello", 4));
  EXPECT_GT(end2.completion_tokens, 0u);
}

TEST(WorkerTest, UnsealedModelFdIsRefusedBeforeLoading) {
  ZTSLM_REQUIRE_SHARED();
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(sv[0]);
    WorkerOptions opt;
    opt.socket_fd = sv[1];
    opt.model_fd = ::open(model_path().c_str(), O_RDONLY);
    ::_exit(run_worker(opt));
  }
  ::close(sv[1]);
  proto::GatewayEndpoint ep;
  ASSERT_TRUE(ep.on_send(proto::Hello{proto::kProtocolVersion, 1, 16}).has_value());
  std::vector<std::byte> buf;
  auto got = proto::recv_datagram(sv[0], buf, ep.limits().max_frame_bytes, true);
  ASSERT_TRUE(got.has_value());
  auto f = ep.on_receive(**got);
  ASSERT_TRUE(f.has_value()) << f.error().to_string();
  ASSERT_TRUE(std::holds_alternative<proto::Error>(*f));
  EXPECT_EQ(std::get<proto::Error>(*f).session_id, 0u);
  EXPECT_EQ(std::get<proto::Error>(*f).code, static_cast<uint8_t>(StatusCode::kPermissionDenied));
  int st = 0;
  ::waitpid(pid, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == kExitStartup);
  ::close(sv[0]);
}

}  // namespace
}  // namespace ztslm::worker
