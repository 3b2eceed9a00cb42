// The policy enforcement point (DESIGN.md "Request pipeline"): every request passes
//   authenticate → parse/validate → authorise → input guard → session → admission
//   → backend (streamed) → output filter → audit record
// in this order; a failure at any step answers with OpenAI's error JSON (server/openai/errors.h)
// and leaves no state behind. Health routes alone skip authentication.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "audit/anomaly.h"
#include "audit/gateway_metrics.h"
#include "audit/metrics.h"

#include "server/backend.h"
#include "server/clock.h"
#include "server/config/config.h"
#include "server/http/http_server.h"
#include "server/openai/request.h"
#include "server/session/session_store.h"
#include "server/stages.h"

namespace ztslm::server {

// Everything the gateway talks to; all must outlive it.
struct GatewayDeps {
  Backend* backend = nullptr;
  AuthStage* auth = nullptr;
  Authorizer* authorizer = nullptr;
  InputGuard* input_guard = nullptr;
  OutputFilterFactory* output_filter = nullptr;
  AuditSink* audit = nullptr;
  audit::Registry* registry = nullptr;      // rendered on GET /metrics
  audit::GatewayMetrics* metrics = nullptr;  // the metric set, on `registry`
  const Clock* clock = nullptr;
  QuotaGate* quotas = nullptr;  // null: no quotas
};

// The policy input document of one request (src/server/README.md "Policy input").
struct PolicyInputArgs {
  const Principal* principal = nullptr;
  std::string_view method, path, action;
  const openai::ApiRequest* request = nullptr;  // null for routes without a body
  std::string_view model_id;
  std::string_view session_id;
  std::string_view client_address;
  int64_t unix_time = 0;
  bool model_allow_unsigned = false;  // config model.allow_unsigned
  // The served model's provenance (ModelInfo): "sha256:<hex>" of the executed bytes, the trusted
  // publisher (or "unverified"), and whether its signature verified.
  std::string_view model_digest;
  std::string_view model_signer;
  bool model_verified = false;
  const GuardReport* guard = nullptr;  // the input guard's report (generation routes)
};
nlohmann::json build_policy_input(const PolicyInputArgs& a);

class Gateway final : public http::Handler {
 public:
  Gateway(const ServerConfig& cfg, GatewayDeps deps);
  ~Gateway() override;

  void handle(http::Request req, std::shared_ptr<http::Responder> responder) override;
  void on_rejected(int status, std::string_view reason, std::string_view client_address) override;

  // /readyz answers 200 only while ready and not shutting down.
  void set_ready(bool ready) { ready_.store(ready); }
  // Cancels generations still running and joins the generation threads.
  void shutdown();

  SessionStore& sessions() { return sessions_; }
  uint32_t active_generations() const { return active_gens_.load(); }

 private:
  struct Ctx;
  struct GenJob;
  void route(Ctx& c);
  bool authenticate(Ctx& c);
  bool authorize(Ctx& c, std::string_view action, const openai::ApiRequest* req,
                 const GuardReport* guard = nullptr);
  void handle_generate(Ctx& c, bool is_chat);
  bool admit_quota(Ctx& c, const openai::ApiRequest& api, std::unique_ptr<QuotaTicket>& out);
  void handle_models(Ctx& c);
  void handle_metrics(Ctx& c);
  void handle_create_session(Ctx& c);
  void handle_delete_session(Ctx& c, const std::string& id);
  void run_generation(GenJob& job);
  void reply(Ctx& c, int status, std::string_view content_type, std::string body, http::Headers headers = {});
  void reply_error(Ctx& c, const Status& s, int http_override = 0, http::Headers headers = {});
  void finish_record(Ctx& c, int status);
  void count_audit(const Status& s);
  void observe_outcome(const Ctx& c);
  void worker_loop();

  ServerConfig cfg_;
  GatewayDeps d_;
  openai::ParseLimits parse_limits_;
  SessionStore sessions_;
  std::unique_ptr<audit::AnomalyDetector> anomaly_;  // null when anomaly.enabled is false
  std::string model_id_;
  ModelInfo model_;  // the served model's provenance, fixed at start
  std::string request_prefix_;
  std::string canary_key_;  // HMAC key of the per-session canaries (wiped on destruction)
  std::atomic<uint64_t> request_seq_{0};
  std::atomic<bool> ready_{true};
  std::atomic<bool> stopping_{false};
  std::atomic<uint32_t> active_gens_{0};

  std::mutex jobs_mu_;
  std::condition_variable jobs_cv_;
  std::deque<std::unique_ptr<GenJob>> jobs_;
  std::vector<std::thread> workers_;
};

}  // namespace ztslm::server
