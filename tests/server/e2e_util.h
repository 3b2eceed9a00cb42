// Helpers of the end-to-end gateway tests: temp dirs, a libcurl client, a raw TLS client.
#pragma once

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/inprocess_backend.h"
#include "core/check.h"
#include "server/backend.h"
#include "server/config/config.h"
#include "test_util.h"

namespace ztslm::server {

using nlohmann::json;

// Clients here write to sockets the server may have closed: EPIPE, not a fatal SIGPIPE.
inline const bool kSigpipeIgnored = [] {
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}();

// The ModelInfo of a stub backend: an unsigned model with a fixed context and date.
inline ModelInfo stub_model_info(std::string id) {
  ModelInfo m;
  m.id = std::move(id);
  m.n_ctx = 2048;
  m.created_unix = 1700000000;
  return m;
}

// A test gateway's config: the embedded default on an ephemeral port, state in `state_dir`.
inline ServerConfig test_server_config(std::string state_dir) {
  ServerConfig cfg = *default_config();
  cfg.port = 0;
  cfg.state_dir = std::move(state_dir);
  return cfg;
}

// The tiny test model from ../shared served in process, one thread.
inline Result<std::unique_ptr<cli::InProcessBackend>> tiny_in_process_backend(uint32_t n_ctx) {
  cli::InProcessBackendOptions bo;
  bo.model_path = ::ztslm::testing::testdata_path("models/tiny-llama-spm-Q8_0.gguf");
  bo.n_ctx = n_ctx;
  bo.threads = 1;
  return cli::InProcessBackend::create(bo);
}

inline std::string make_temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "ztslm-gw-XXXXXX").string();
  ZTSLM_CHECK(mkdtemp(tmpl.data()) != nullptr);
  return tmpl;
}

struct HttpResp {
  long status = 0;
  std::string body;
  std::string headers;
  json j() const { return json::parse(body, nullptr, false); }
};

inline size_t collect(char* p, size_t sz, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(p, sz * n);
  return sz * n;
}

inline HttpResp curl_request(uint16_t port, const std::string& ca, const std::string& method, const std::string& path,
                      const std::string& body = "", const std::vector<std::string>& headers = {},
                      const std::string& client_cert = "", const std::string& client_key = "") {
  HttpResp r;
  CURL* c = curl_easy_init();
  const std::string url = "https://127.0.0.1:" + std::to_string(port) + path;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CAINFO, ca.c_str());
  curl_easy_setopt(c, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_3);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!client_cert.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLCERT, client_cert.c_str());
    curl_easy_setopt(c, CURLOPT_SSLKEY, client_key.c_str());
  }
  if (method == "POST") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_slist* hl = nullptr;
  hl = curl_slist_append(hl, "Content-Type: application/json");
  hl = curl_slist_append(hl, "Expect:");
  for (const auto& h : headers) hl = curl_slist_append(hl, h.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
  const CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  else r.status = -static_cast<long>(rc);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  return r;
}

inline std::string bearer(const std::string& key) { return "Authorization: Bearer " + key; }

// A raw TLS client: connect + handshake against the generated CA, with a receive deadline so
// that a server bug fails the test instead of hanging it.
class RawTls {
 public:
  RawTls(uint16_t port, const std::string& ca) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    connected_ = SSL_connect(ssl_) == 1;
  }
  ~RawTls() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  bool connected() const { return connected_; }
  bool send(const std::string& s) { return SSL_write(ssl_, s.data(), static_cast<int>(s.size())) > 0; }
  // Everything until the server closes (or the receive deadline).
  std::string read_all() {
    std::string out;
    char buf[4096];
    for (;;) {
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool connected_ = false;
};

}  // namespace ztslm::server
