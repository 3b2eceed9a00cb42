// Load on the gateway: GET /v1/models (authenticated with a real API key from identity's SQLite
// store, role check, audit record, metrics) over keep-alive TLS 1.3 on loopback. Each benchmark
// thread is one client connection; one iteration is one request and its whole response.
// Reports requests/s (items_per_second) and the gateway overhead p50/p99 from the server's own
// histogram (ztslm_gateway_overhead_seconds: request read → response handed to the socket).
// The backend is a stub (no model): this measures the gateway alone.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "audit/metrics.h"
#include "identity/api_key.h"
#include "identity/authenticator.h"
#include "server/identity_auth.h"
#include "server/server.h"

namespace {

using namespace ztslm;

class StubBackend final : public server::Backend {
 public:
  server::ModelInfo model_info() const override {
    server::ModelInfo m;
    m.id = "stub-model";
    m.n_ctx = 2048;
    m.created_unix = 1700000000;
    return m;
  }
  Result<server::GenerateResult> generate(const server::GenerateRequest&, const server::TokenCallback&) override {
    return Status::unavailable("stub");
  }
  Result<std::unique_ptr<server::BackendSession>> create_session() override {
    return Status::unavailable("stub");
  }
};

struct Fixture {
  std::string dir;
  StubBackend backend;
  std::shared_ptr<identity::ApiKeyStore> keys;
  std::unique_ptr<server::IdentityAuthStage> auth;
  std::unique_ptr<server::SimpleAuditSink> audit;
  std::unique_ptr<server::Server> srv;
  std::string request;  // the bytes of one request
  SSL_CTX* client_ctx = nullptr;

  Fixture() {
    std::signal(SIGPIPE, SIG_IGN);
    std::string tmpl = (std::filesystem::temp_directory_path() / "ztslm-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    dir = tmpl;
    auto store = identity::ApiKeyStore::open(dir + "/keys.db", identity::system_unix_now);
    if (!store.has_value()) std::abort();
    keys = std::shared_ptr<identity::ApiKeyStore>(std::move(store).value());
    identity::NewApiKey nk;
    nk.name = "bench";
    nk.tenant = "t";
    nk.roles = {"user"};
    auto key = keys->create(nk);
    if (!key.has_value()) std::abort();
    auth = std::make_unique<server::IdentityAuthStage>(std::make_shared<const identity::Authenticator>(keys, nullptr, nullptr));
    audit = std::make_unique<server::SimpleAuditSink>("", 1);
    server::ServerConfig cfg = *server::default_config();
    cfg.port = 0;
    cfg.state_dir = dir;
    cfg.io_threads = 1;
    server::ServerParts parts;
    parts.backend = &backend;
    parts.auth = auth.get();
    parts.audit = audit.get();
    auto s = server::Server::start(cfg, parts);
    if (!s.has_value()) {
      std::fprintf(stderr, "%s\n", s.error().to_string().c_str());
      std::abort();
    }
    srv = std::move(s).value();
    request = "GET /v1/models HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + key->token + "\r\n\r\n";
    client_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(client_ctx, srv->ca_file().c_str(), nullptr);
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, nullptr);
  }
};

Fixture& fixture() {
  static Fixture* f = new Fixture();  // lives to process exit: threads of every run use it
  return *f;
}

// One keep-alive TLS client connection.
class Client {
 public:
  explicit Client(Fixture& f) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(f.srv->port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    ssl_ = SSL_new(f.client_ctx);
    SSL_set_fd(ssl_, fd_);
    ok_ = SSL_connect(ssl_) == 1;
  }
  ~Client() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }
  // Sends `req`, reads one response (headers + Content-Length body). Returns the status code.
  int roundtrip(const std::string& req, std::string* body) {
    if (!ok_ || SSL_write(ssl_, req.data(), static_cast<int>(req.size())) <= 0) return -1;
    buf_.clear();
    size_t head_end = std::string::npos;
    while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return -1;
    }
    const size_t cl = buf_.find("Content-Length: ");
    if (cl == std::string::npos || cl > head_end) return -1;
    const size_t len = std::strtoul(buf_.c_str() + cl + 16, nullptr, 10);
    while (buf_.size() < head_end + 4 + len) {
      if (!fill()) return -1;
    }
    if (body != nullptr) *body = buf_.substr(head_end + 4, len);
    return std::atoi(buf_.c_str() + 9);
  }

 private:
  bool fill() {
    char tmp[16384];
    const int n = SSL_read(ssl_, tmp, sizeof tmp);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  bool ok_ = false;
  std::string buf_;
};

void BM_ModelsKeepAliveTls(benchmark::State& state) {
  Fixture& f = fixture();
  Client c(f);
  std::string body;
  // Validate before measuring: an authenticated 200 with the model list.
  if (c.roundtrip(f.request, &body) != 200 || body.find("\"stub-model\"") == std::string::npos) {
    state.SkipWithError("GET /v1/models did not return the model list");
    return;
  }
  // The server's histogram is cumulative: the run's share is the difference of two snapshots.
  audit::Histogram::Snapshot before;
  if (state.thread_index() == 0) before = f.srv->metrics().overhead.snapshot();
  for (auto _ : state) {
    if (c.roundtrip(f.request, nullptr) != 200) {
      state.SkipWithError("request failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    audit::Histogram::Snapshot run = f.srv->metrics().overhead.snapshot();
    for (size_t i = 0; i < run.counts.size() && i < before.counts.size(); ++i) run.counts[i] -= before.counts[i];
    run.count -= before.count;
    run.sum -= before.sum;
    state.counters["overhead_p50_us"] = run.quantile(0.50) * 1e6;
    state.counters["overhead_p99_us"] = run.quantile(0.99) * 1e6;
  }
}
BENCHMARK(BM_ModelsKeepAliveTls)->Threads(1)->Threads(2)->Threads(4)->Threads(8)->UseRealTime()->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
