// A running gateway: TLS material, the HTTP server and the pipeline, assembled from a config
// and the stages (stand-ins where the caller gives none). Used by `ztslm serve` and the tests.
#pragma once

#include <memory>
#include <string>

#include "audit/gateway_metrics.h"
#include "audit/metrics.h"
#include "core/result.h"
#include "server/backend.h"
#include "server/clock.h"
#include "server/config/config.h"
#include "server/gateway.h"
#include "server/http/http_server.h"
#include "policy/decision.h"
#include "policy/quota.h"
#include "server/stages.h"

namespace ztslm::server {

// Stages the caller provides; null ones get the stand-ins of stages.h (MemoryKeyAuth with no
// keys, the policy of `policy.path` (or the embedded policy/default.rego) through PolicyAuthorizer, AllowAllGuard, PassThroughFilterFactory, SimpleAuditSink writing
// state_dir/audit.jsonl unless `audit_path` is "-" for memory only).
struct ServerParts {
  Backend* backend = nullptr;  // required
  AuthStage* auth = nullptr;
  Authorizer* authorizer = nullptr;
  InputGuard* input_guard = nullptr;
  OutputFilterFactory* output_filter = nullptr;
  AuditSink* audit = nullptr;
  const Clock* clock = nullptr;
  std::string audit_path = "-";
  // Null with quotas.enabled: state_dir/quotas.db with the config's classes.
  QuotaGate* quotas = nullptr;
  // The metric set and the registry it lives on, both or neither (null: the server owns
  // them). A caller that creates them first can hand counters to its backend, e.g.
  // `worker_restarts` to a worker supervisor.
  audit::Registry* registry = nullptr;
  audit::GatewayMetrics* metrics = nullptr;
};

// Creates `dir` and its missing parents with mode 0700.
Status make_state_dir(const std::string& dir);

class Server final {
 public:
  // Resolves the state directory, generates the local CA when no certificate is configured,
  // binds and starts serving. Errors name what failed (bind, TLS file, state directory).
  static Result<std::unique_ptr<Server>> start(const ServerConfig& cfg, ServerParts parts);
  ~Server();

  uint16_t port() const { return http_->port(); }
  // The CA file clients should trust ("" when the certificate came from the config).
  const std::string& ca_file() const { return ca_file_; }
  const std::string& state_dir() const { return state_dir_; }
  bool created_tls() const { return created_tls_; }
  Gateway& gateway() { return *gateway_; }
  audit::GatewayMetrics& metrics() { return *metrics_; }
  audit::Registry& registry() { return *registry_; }
  http::HttpServer& http() { return *http_; }

  // Graceful stop: not ready, stop accepting, drain in-flight requests for up to
  // limits.drain_timeout_ms, cancel what remains, close every connection.
  void stop();

 private:
  Server() = default;
  ServerConfig cfg_;
  std::string state_dir_, ca_file_;
  bool created_tls_ = false;
  SystemClock system_clock_;
  std::unique_ptr<audit::Registry> own_registry_;
  std::unique_ptr<audit::GatewayMetrics> own_metrics_;
  audit::Registry* registry_ = nullptr;
  audit::GatewayMetrics* metrics_ = nullptr;
  std::unique_ptr<AuthStage> own_auth_;
  std::unique_ptr<policy::DecisionPoint> own_pdp_;
  std::unique_ptr<Authorizer> own_authorizer_;
  std::unique_ptr<InputGuard> own_guard_;
  std::unique_ptr<OutputFilterFactory> own_filter_;
  std::unique_ptr<AuditSink> own_audit_;
  std::unique_ptr<policy::QuotaStore> own_quota_store_;  // outlives the gateway's tickets
  std::unique_ptr<QuotaGate> own_quota_gate_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<http::HttpServer> http_;
  bool stopped_ = false;
};

}  // namespace ztslm::server
