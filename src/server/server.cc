#include "server/server.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "server/http/tls.h"
#include "server/policy_authz.h"
#include "server/quota_gate.h"

namespace ztslm::server {
namespace {

// mkdir -p with mode 0700 for each created level.
Status make_dirs(const std::string& path) {
  if (path.empty()) return Status::invalid_argument("empty directory path");
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos == path.size() || path[pos] == '/') {
      const std::string part = path.substr(0, pos);
      if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
        return Status::unavailable("cannot create {}: {}", part, std::strerror(errno));
      }
    }
  }
  return Status();
}

}  // namespace

Status make_state_dir(const std::string& dir) { return make_dirs(dir); }

Result<std::unique_ptr<Server>> Server::start(const ServerConfig& cfg, ServerParts parts) {
  if (parts.backend == nullptr) return Status::invalid_argument("server needs a backend");
  std::unique_ptr<Server> s(new Server());
  s->cfg_ = cfg;
  const Clock* clock = parts.clock != nullptr ? parts.clock : &s->system_clock_;
  ZTSLM_ASSIGN_OR_RETURN(s->state_dir_, resolve_state_dir(cfg));
  ZTSLM_TRY(make_dirs(s->state_dir_));

  http::TlsFiles tls;
  tls.min_version = cfg.tls.min_version;
  tls.client_ca_file = cfg.tls.client_ca_file;
  if (cfg.tls.cert_file.empty()) {
    ZTSLM_ASSIGN_OR_RETURN(http::GeneratedTls gen, http::ensure_local_ca(s->state_dir_ + "/tls"));
    tls.cert_file = gen.server_cert_file;
    tls.key_file = gen.server_key_file;
    s->ca_file_ = gen.ca_cert_file;
    s->created_tls_ = gen.created;
  } else {
    tls.cert_file = cfg.tls.cert_file;
    tls.key_file = cfg.tls.key_file;
  }

  if (parts.auth == nullptr) {
    s->own_auth_ = std::make_unique<MemoryKeyAuth>(*clock);
    parts.auth = s->own_auth_.get();
  }
  if (parts.authorizer == nullptr) {
    s->own_pdp_ = std::make_unique<policy::DecisionPoint>(policy::DecisionPoint::Options{});
    ZTSLM_TRY(load_policy(*s->own_pdp_, cfg.policy_path));
    s->own_authorizer_ = std::make_unique<PolicyAuthorizer>(*s->own_pdp_);
    parts.authorizer = s->own_authorizer_.get();
  }
  if (parts.input_guard == nullptr) {
    s->own_guard_ = std::make_unique<AllowAllGuard>();
    parts.input_guard = s->own_guard_.get();
  }
  if (parts.output_filter == nullptr) {
    s->own_filter_ = std::make_unique<PassThroughFilterFactory>();
    parts.output_filter = s->own_filter_.get();
  }
  if (parts.audit == nullptr) {
    s->own_audit_ = std::make_unique<SimpleAuditSink>(
        parts.audit_path == "-" ? std::string() : (parts.audit_path.empty() ? s->state_dir_ + "/audit.jsonl" : parts.audit_path));
    parts.audit = s->own_audit_.get();
  }
  if (parts.quotas == nullptr && cfg.quotas.enabled) {
    ZTSLM_ASSIGN_OR_RETURN(s->own_quota_store_,
                           policy::QuotaStore::open(s->state_dir_ + "/quotas.db",
                                                    policy::QuotaStore::Options{cfg.quotas.flush_interval_ms}));
    s->own_quota_gate_ = std::make_unique<StoreQuotaGate>(*s->own_quota_store_, cfg.quotas);
    parts.quotas = s->own_quota_gate_.get();
  }
  if ((parts.registry == nullptr) != (parts.metrics == nullptr)) {
    return Status::invalid_argument("server needs both a metrics registry and its metric set, or neither");
  }
  if (parts.registry == nullptr) {
    s->own_registry_ = std::make_unique<audit::Registry>();
    s->own_metrics_ = std::make_unique<audit::GatewayMetrics>(*s->own_registry_);
    parts.registry = s->own_registry_.get();
    parts.metrics = s->own_metrics_.get();
  }
  s->registry_ = parts.registry;
  s->metrics_ = parts.metrics;
  GatewayDeps deps;
  deps.backend = parts.backend;
  deps.auth = parts.auth;
  deps.authorizer = parts.authorizer;
  deps.input_guard = parts.input_guard;
  deps.output_filter = parts.output_filter;
  deps.audit = parts.audit;
  deps.registry = parts.registry;
  deps.metrics = parts.metrics;
  deps.clock = clock;
  deps.quotas = parts.quotas;
  s->gateway_ = std::make_unique<Gateway>(cfg, deps);
  ZTSLM_ASSIGN_OR_RETURN(s->http_, http::HttpServer::start(cfg.address, cfg.port, tls, cfg.limits,
                                                           cfg.io_threads, *s->gateway_));
  return s;
}

Server::~Server() { stop(); }

void Server::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (!gateway_) return;  // start() failed before the pipeline existed
  gateway_->set_ready(false);
  if (http_) http_->drain(cfg_.limits.drain_timeout_ms);
  gateway_->shutdown();  // cancels what did not finish in time, joins the generation threads
  if (http_) http_->stop();
}

}  // namespace ztslm::server
