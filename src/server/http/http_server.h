// HTTP/1.1 over TLS (Boost.Beast/Asio + OpenSSL 3), keep-alive, with the limits of
// config/ztslm.yaml: header and body size (431/413), header/body/idle/write timeouts so that a
// slow or silent client is dropped (slow-loris), a connection cap (503 and close), and a
// graceful drain. Asio is used only through error_code overloads; nothing here throws.
//
// Requests are handed to a Handler with a Responder, which may be used from any thread; the
// connection reads its next request only after the response has been written.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"
#include "server/config/config.h"

namespace ztslm::server::http {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // target without the query string
  std::string authorization;
  std::string session_id;  // X-Session-Id
  std::string body;
  std::string client_address;
  std::string peer_cert_der;  // verified client certificate, "" when none
  int64_t received_ns = 0;    // steady clock, when the whole request had arrived
};

using Headers = std::vector<std::pair<std::string, std::string>>;

class Responder {
 public:
  virtual ~Responder() = default;
  // A whole response (once).
  virtual void send(int status, std::string_view content_type, std::string body, Headers headers = {}) = 0;
  // Starts a chunked response; then write() pieces and end() it.
  virtual void start_stream(int status, std::string_view content_type, Headers headers = {}) = 0;
  // Queues one chunk; false when the client is gone (the caller should stop).
  virtual bool write(std::string data) = 0;
  virtual void end() = 0;
  virtual bool client_gone() const = 0;
};

class Handler {
 public:
  virtual ~Handler() = default;
  virtual void handle(Request req, std::shared_ptr<Responder> responder) = 0;
  // A request the HTTP layer refused itself (`status` 408/413/431/400/503), for metrics/audit.
  virtual void on_rejected(int status, std::string_view reason, std::string_view client_address) = 0;
};

struct TlsFiles {
  std::string cert_file;  // PEM chain
  std::string key_file;   // PEM private key
  std::string client_ca_file;  // "" = no client certificates requested
  std::string min_version = "1.3";
};

class HttpServer {
 public:
  virtual ~HttpServer() = default;
  // Binds `address:port` (port 0 = any free one), loads the TLS files and starts `io_threads`
  // threads. kInvalidArgument for a bad address or TLS file, kUnavailable when bind fails.
  static Result<std::unique_ptr<HttpServer>> start(const std::string& address, uint16_t port,
                                                   const TlsFiles& tls, const Limits& limits,
                                                   uint32_t io_threads, Handler& handler);
  virtual uint16_t port() const = 0;
  // Stops accepting, lets requests in flight finish (at most `drain_ms`); responses written
  // meanwhile carry "Connection: close".
  virtual void drain(uint32_t drain_ms) = 0;
  // Closes every connection and joins the threads (after drain, or at once).
  virtual void stop() = 0;
  virtual size_t active_connections() const = 0;
  virtual size_t in_flight() const = 0;
};

}  // namespace ztslm::server::http
