#include "server/http/http_server.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include "server/http/tls.h"

namespace ztslm::server::http {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

const char* reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

std::string status_head(int status, std::string_view content_type, const Headers& headers, bool keep_alive) {
  std::string h;
  h.reserve(256);
  h += "HTTP/1.1 ";
  h += std::to_string(status);
  h += ' ';
  h += reason_phrase(status);
  h += "\r\nContent-Type: ";
  h += content_type;
  h += "\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n";
  for (const auto& [k, v] : headers) {
    h += k;
    h += ": ";
    h += v;
    h += "\r\n";
  }
  h += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  return h;
}

std::string error_json(int status, const char* message) {
  // Fixed texts only: no untrusted input reaches these bodies.
  std::string code = status == 413 ? "request_too_large" : status == 431 ? "headers_too_large"
                     : status == 408 ? "timeout" : status == 503 ? "overloaded" : "bad_request";
  return std::string("{\"error\":{\"message\":\"") + message + "\",\"type\":\"" +
         (status >= 500 ? "server_error" : "invalid_request_error") + "\",\"param\":null,\"code\":\"" + code + "\"}}";
}

class ServerImpl;

class Connection final : public std::enable_shared_from_this<Connection>, public Responder {
 public:
  Connection(tcp::socket&& socket, ssl::context& ctx, ServerImpl* srv, bool reject);
  ~Connection() override;
  // Only when no io thread runs (server stop).
  void close_socket_now() {
    error_code ignored;
    beast::get_lowest_layer(stream_).socket().close(ignored);
  }

  void start();

  // Responder
  void send(int status, std::string_view content_type, std::string body, Headers headers) override;
  void start_stream(int status, std::string_view content_type, Headers headers) override;
  bool write(std::string data) override;
  void end() override;
  bool client_gone() const override { return dead_.load(std::memory_order_relaxed); }

 private:
  void on_handshake(const error_code& ec);
  void read_request();
  void on_idle_read(const error_code& ec, size_t n);
  void read_header();
  void on_header(const error_code& ec);
  void on_body(const error_code& ec);
  void dispatch();
  void enqueue(std::string data, bool last);
  void do_write();
  void on_write(const error_code& ec);
  void reject(int status, const char* message, const char* reason);
  void close();
  void drain_then_close();
  bool keep_alive_now() const;

  beast::ssl_stream<beast::tcp_stream> stream_;
  ServerImpl* srv_;
  bool reject_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string client_addr_;
  std::string peer_der_;
  bool first_request_ = true;
  bool request_keep_alive_ = false;
  bool counted_in_flight_ = false;
  // Write side, touched only on the connection's strand.
  std::deque<std::string> outbox_;
  std::string writing_buf_;
  bool writing_ = false;
  bool response_done_ = false;
  bool close_after_ = false;
  bool closing_ = false;
  // After an early rejection the client may still be sending its body: read and discard it
  // (bounded) before closing, so the kernel does not answer unread data with a reset that
  // destroys the response in flight (a "lingering close").
  bool linger_ = false;
  size_t drained_bytes_ = 0;
  std::array<char, 16384> drain_buf_{};
  std::atomic<bool> dead_{false};
};

class ServerImpl final : public HttpServer {
 public:
  ServerImpl(const Limits& limits, uint32_t io_threads, Handler& handler)
      : limits_(limits), n_threads_(io_threads), handler_(handler), ssl_ctx_(ssl::context::tls_server), acceptor_(ioc_) {}
  ~ServerImpl() override { stop(); }

  Status init(const std::string& address, uint16_t port, const TlsFiles& tls) {
    ZTSLM_TRY(configure_server_context(ssl_ctx_.native_handle(), tls.cert_file, tls.key_file,
                                       tls.client_ca_file, tls.min_version));
    error_code ec;
    const auto addr = net::ip::make_address(address, ec);
    if (ec) return Status::invalid_argument("listen address {} is not an IP address", address);
    const tcp::endpoint ep(addr, port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return Status::unavailable("cannot listen on {}:{}: {}", address, port, ec.message());
    port_ = acceptor_.local_endpoint(ec).port();
    do_accept();
    for (uint32_t i = 0; i < n_threads_; ++i) {
      threads_.emplace_back([this] {
        for (;;) {
          try {
            ioc_.run();
            return;
          } catch (...) {
            // Handlers do not throw; if a dependency does, keep serving the others.
          }
        }
      });
    }
    return Status();
  }

  uint16_t port() const override { return port_; }
  size_t active_connections() const override { return n_conn_.load(); }
  size_t in_flight() const override { return in_flight_.load(); }

  void drain(uint32_t drain_ms) override {
    draining_.store(true);
    net::post(ioc_, [this] {
      error_code ec;
      acceptor_.close(ec);
    });
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(drain_ms), [this] { return in_flight_.load() == 0; });
  }

  void stop() override {
    if (stopped_.exchange(true)) return;
    draining_.store(true);
    ioc_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    // No thread runs handlers now: close every socket so that clients see the end at once;
    // the connections themselves go with the io_context's pending handlers.
    std::lock_guard<std::mutex> lock(conn_mu_);
    for (Connection* c : conns_) c->close_socket_now();
  }

  void register_connection(Connection* c) {
    std::lock_guard<std::mutex> lock(conn_mu_);
    conns_.insert(c);
  }
  void unregister_connection(Connection* c) {
    std::lock_guard<std::mutex> lock(conn_mu_);
    conns_.erase(c);
  }

  void request_started() { in_flight_.fetch_add(1); }
  void request_finished() {
    if (in_flight_.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    }
  }

  const Limits& limits() const { return limits_; }
  Handler& handler() { return handler_; }
  bool draining() const { return draining_.load(std::memory_order_relaxed); }
  void connection_closed() { n_conn_.fetch_sub(1); }

 private:
  void do_accept() {
    acceptor_.async_accept(net::make_strand(ioc_), [this](const error_code& ec, tcp::socket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
        do_accept();  // e.g. EMFILE: keep the listener alive
        return;
      }
      const size_t n = n_conn_.fetch_add(1) + 1;
      if (n > limits_.max_connections + limits_.max_connections / 4 + 8) {
        // SECURITY: far past the cap no TLS work is spent on the flood; the socket just closes.
        n_conn_.fetch_sub(1);
        error_code ignored;
        socket.close(ignored);
        handler_.on_rejected(503, "connection limit", "");
      } else {
        socket.set_option(tcp::no_delay(true));
        std::make_shared<Connection>(std::move(socket), ssl_ctx_, this, n > limits_.max_connections)->start();
      }
      do_accept();
    });
  }

  Limits limits_;
  uint32_t n_threads_;
  Handler& handler_;
  net::io_context ioc_;
  ssl::context ssl_ctx_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  std::atomic<size_t> n_conn_{0};
  std::atomic<size_t> in_flight_{0};
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopped_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::mutex conn_mu_;
  std::unordered_set<Connection*> conns_;
};

Connection::Connection(tcp::socket&& socket, ssl::context& ctx, ServerImpl* srv, bool reject)
    : stream_(std::move(socket), ctx), srv_(srv), reject_(reject) {
  srv_->register_connection(this);
}

Connection::~Connection() {
  if (counted_in_flight_) srv_->request_finished();
  srv_->unregister_connection(this);
  srv_->connection_closed();
}

void Connection::start() {
  error_code ec;
  const auto ep = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
  if (!ec) client_addr_ = ep.address().to_string();
  // SECURITY: the handshake shares the header deadline, so a silent client costs one timer.
  beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(srv_->limits().header_timeout_ms));
  stream_.async_handshake(ssl::stream_base::server,
                          [self = shared_from_this()](const error_code& e) { self->on_handshake(e); });
}

void Connection::on_handshake(const error_code& ec) {
  if (ec) {
    srv_->handler().on_rejected(0, "tls handshake failed", client_addr_);
    return close();
  }
  if (reject_) {
    srv_->handler().on_rejected(503, "connection limit", client_addr_);
    close_after_ = true;
    return reject(503, "too many connections", nullptr);
  }
  SSL* ssl = stream_.native_handle();
  if (X509* peer = SSL_get0_peer_certificate(ssl); peer != nullptr && SSL_get_verify_result(ssl) == X509_V_OK) {
    unsigned char* der = nullptr;
    const int n = i2d_X509(peer, &der);
    if (n > 0) peer_der_.assign(reinterpret_cast<const char*>(der), static_cast<size_t>(n));
    OPENSSL_free(der);
  }
  read_request();
}

void Connection::read_request() {
  if (srv_->draining() && !first_request_) return close();
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(std::min<size_t>(srv_->limits().max_header_bytes, UINT32_MAX)));
  parser_->body_limit(srv_->limits().max_body_bytes);
  if (buffer_.size() > 0 || first_request_) return read_header();
  // Keep-alive: wait for the first byte of the next request under the idle timeout; the header
  // deadline starts with it.
  beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(srv_->limits().idle_timeout_ms));
  stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](const error_code& ec, size_t n) {
    self->on_idle_read(ec, n);
  });
}

void Connection::on_idle_read(const error_code& ec, size_t n) {
  if (ec) return close();
  buffer_.commit(n);
  read_header();
}

void Connection::read_header() {
  if (first_request_) {
    // The deadline set before the handshake still runs: handshake + header share it.
  } else {
    beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(srv_->limits().header_timeout_ms));
  }
  bhttp::async_read_header(stream_, buffer_, *parser_, [self = shared_from_this()](const error_code& ec, size_t) {
    self->on_header(ec);
  });
}

void Connection::on_header(const error_code& ec) {
  first_request_ = false;
  if (ec == bhttp::error::header_limit) return reject(431, "request headers too large", "header limit");
  if (ec == bhttp::error::body_limit) return reject(413, "request body too large", "body limit");
  if (ec == beast::error::timeout) {
    // SECURITY: slow-loris: the deadline already closed the socket; nothing more is spent.
    srv_->handler().on_rejected(408, "header timeout", client_addr_);
    return close();
  }
  if (ec == bhttp::error::end_of_stream || ec == net::error::eof || ec == net::ssl::error::stream_truncated) return close();
  if (ec) {
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() || ec == bhttp::error::bad_method) {
      return reject(400, "malformed request", "bad http");
    }
    return close();
  }
  const auto& req = parser_->get();
  if (const auto len = parser_->content_length(); len && *len > srv_->limits().max_body_bytes) {
    return reject(413, "request body too large", "body limit");
  }
  request_keep_alive_ = req.keep_alive();
  beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(srv_->limits().body_timeout_ms));
  auto expect = req.find(bhttp::field::expect);
  if (expect != req.end() && beast::iequals(expect->value(), "100-continue")) {
    // Clients that wait for it (curl above 1 MiB) would otherwise stall until their own timeout.
    static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    error_code wec;
    net::write(stream_, net::buffer(kContinue), wec);
    if (wec) return close();
  }
  bhttp::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](const error_code& e, size_t) {
    self->on_body(e);
  });
}

void Connection::on_body(const error_code& ec) {
  if (ec == bhttp::error::body_limit) return reject(413, "request body too large", "body limit");
  if (ec == beast::error::timeout) {
    srv_->handler().on_rejected(408, "body timeout", client_addr_);
    return close();
  }
  if (ec) {
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category()) return reject(400, "malformed request", "bad http");
    return close();
  }
  dispatch();
}

void Connection::dispatch() {
  auto msg = parser_->release();
  parser_.reset();
  Request r;
  r.method = std::string(msg.method_string());
  const std::string_view target(msg.target().data(), msg.target().size());
  r.path = std::string(target.substr(0, target.find('?')));
  if (auto it = msg.find(bhttp::field::authorization); it != msg.end()) r.authorization = std::string(it->value());
  if (auto it = msg.find("X-Session-Id"); it != msg.end()) r.session_id = std::string(it->value());
  r.body = std::move(msg.body());
  r.client_address = client_addr_;
  r.peer_cert_der = peer_der_;
  r.received_ns = steady_ns();
  srv_->request_started();
  counted_in_flight_ = true;
  // No timer runs while the handler works; each write re-arms the write deadline.
  beast::get_lowest_layer(stream_).expires_never();
  srv_->handler().handle(std::move(r), shared_from_this());
}

bool Connection::keep_alive_now() const { return request_keep_alive_ && !srv_->draining() && !close_after_; }

void Connection::send(int status, std::string_view content_type, std::string body, Headers headers) {
  std::string out = status_head(status, content_type, headers, keep_alive_now());
  out += "Content-Length: ";
  out += std::to_string(body.size());
  out += "\r\n\r\n";
  out += body;
  enqueue(std::move(out), true);
}

void Connection::start_stream(int status, std::string_view content_type, Headers headers) {
  std::string out = status_head(status, content_type, headers, keep_alive_now());
  out += "Transfer-Encoding: chunked\r\n\r\n";
  enqueue(std::move(out), false);
}

bool Connection::write(std::string data) {
  if (dead_.load(std::memory_order_relaxed)) return false;
  if (data.empty()) return true;
  char len[24];
  const int n = std::snprintf(len, sizeof len, "%zx\r\n", data.size());
  std::string chunk;
  chunk.reserve(static_cast<size_t>(n) + data.size() + 2);
  chunk.append(len, static_cast<size_t>(n));
  chunk += data;
  chunk += "\r\n";
  enqueue(std::move(chunk), false);
  return true;
}

void Connection::end() { enqueue("0\r\n\r\n", true); }

void Connection::enqueue(std::string data, bool last) {
  net::dispatch(stream_.get_executor(), [self = shared_from_this(), data = std::move(data), last]() mutable {
    if (self->closing_) return;
    self->outbox_.push_back(std::move(data));
    if (last) self->response_done_ = true;
    if (!self->writing_) self->do_write();
  });
}

void Connection::do_write() {
  writing_ = true;
  writing_buf_.clear();
  while (!outbox_.empty()) {  // coalesce queued chunks into one TLS record run
    writing_buf_ += outbox_.front();
    outbox_.pop_front();
  }
  beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(srv_->limits().write_timeout_ms));
  net::async_write(stream_, net::buffer(writing_buf_), [self = shared_from_this()](const error_code& ec, size_t) {
    self->on_write(ec);
  });
}

void Connection::on_write(const error_code& ec) {
  writing_ = false;
  if (ec) {
    dead_.store(true);
    return close();
  }
  if (!outbox_.empty()) return do_write();
  beast::get_lowest_layer(stream_).expires_never();
  if (!response_done_) return;
  response_done_ = false;
  if (counted_in_flight_) {
    counted_in_flight_ = false;
    srv_->request_finished();
  }
  if (!keep_alive_now()) return close();
  read_request();
}

void Connection::reject(int status, const char* message, const char* reason) {
  if (reason != nullptr) srv_->handler().on_rejected(status, reason, client_addr_);
  close_after_ = true;
  linger_ = true;
  // The client may still be sending: a short write deadline bounds this last response.
  std::string out = status_head(status, "application/json", {}, false);
  const std::string body = error_json(status, message);
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  outbox_.push_back(std::move(out));
  response_done_ = true;
  if (!writing_) do_write();
}

void Connection::drain_then_close() {
  // Bounded in time and bytes: a client that keeps sending cannot hold the connection.
  constexpr size_t kMaxDrainBytes = size_t{4} << 20;
  beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(500));
  stream_.async_read_some(net::buffer(drain_buf_), [self = shared_from_this()](const error_code& ec, size_t n) {
    self->drained_bytes_ += n;
    if (ec || self->drained_bytes_ > kMaxDrainBytes) return self->close();
    self->drain_then_close();
  });
}

void Connection::close() {
  if (linger_ && !closing_) {
    linger_ = false;
    return drain_then_close();
  }
  if (closing_) return;
  closing_ = true;
  dead_.store(true);
  // TLS close_notify under a short deadline, then the socket goes with the last reference.
  beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(200));
  stream_.async_shutdown([self = shared_from_this()](const error_code&) {
    error_code ignored;
    beast::get_lowest_layer(self->stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(self->stream_).close();
  });
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::start(const std::string& address, uint16_t port,
                                                      const TlsFiles& tls, const Limits& limits,
                                                      uint32_t io_threads, Handler& handler) {
  try {
    auto s = std::make_unique<ServerImpl>(limits, io_threads, handler);
    ZTSLM_TRY(s->init(address, port, tls));
    return std::unique_ptr<HttpServer>(std::move(s));
  } catch (const std::exception&) {
    // Asio's ssl::context constructor throws when OpenSSL cannot make a context.
    return Status::internal("cannot create the tls context");
  }
}

}  // namespace ztslm::server::http
