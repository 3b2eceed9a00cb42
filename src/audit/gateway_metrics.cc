#include "audit/gateway_metrics.h"

#include <vector>

namespace ztslm::audit {
namespace {
template <size_t N>
std::vector<double> v(const std::array<double, N>& a) {
  return std::vector<double>(a.begin(), a.end());
}
}  // namespace

GatewayMetrics::GatewayMetrics(Registry& r)
    : requests(r.counter("ztslm_http_requests_total", "HTTP requests by route and status.",
                         {"route", "status"})),
      request_seconds(r.histogram("ztslm_http_request_duration_seconds",
                                  "Time from request start to the last byte, by route.",
                                  v(kRequestBuckets), {"route"})),
      auth_failures(r.counter("ztslm_auth_failures_total",
                              "Authentication failures by internal reason.", {"reason"})),
      policy_denials(r.counter("ztslm_policy_denials_total", "Requests denied by policy.",
                               {"route"})),
      guard_findings(r.counter("ztslm_guard_findings_total", "Guard findings by stage (input, output) and type.",
                               {"stage", "type"})),
      tokens_in(r.counter("ztslm_prompt_tokens_total", "Prompt tokens processed.").get()),
      tokens_out(r.counter("ztslm_completion_tokens_total", "Completion tokens generated.").get()),
      ttft(r.histogram("ztslm_time_to_first_token_seconds", "Time to first token.",
                       v(kTtftBuckets))
               .get()),
      inter_token(r.histogram("ztslm_inter_token_latency_seconds",
                              "Time between streamed tokens.", v(kInterTokenBuckets))
                      .get()),
      overhead(r.histogram("ztslm_gateway_overhead_seconds",
                           "Gateway time per request: total minus model time.",
                           v(kOverheadBuckets))
                   .get()),
      active_sessions(r.gauge("ztslm_active_sessions", "Sessions currently held.").get()),
      active_requests(r.gauge("ztslm_active_requests", "Requests in flight.").get()),
      worker_restarts(r.counter("ztslm_worker_restarts_total", "Inference worker restarts.").get()),
      anomalies(r.counter("ztslm_anomalies_total", "Behaviour anomalies raised, by signal.",
                          {"signal"})),
      audit_records(r.counter("ztslm_audit_records_total", "Audit records committed.").get()),
      audit_failures(r.counter("ztslm_audit_failures_total",
                               "Audit appends that failed.")
                         .get()),
      http_rejections(r.counter("ztslm_http_rejections_total",
                                "Requests refused by the HTTP layer before the pipeline, by status.",
                                {"status"})),
      tls_handshake_failures(r.counter("ztslm_tls_handshake_failures_total",
                                       "TLS handshakes that failed.")
                                 .get()),
      generation_rejections(r.counter("ztslm_generation_rejections_total",
                                      "Generations refused at the concurrency limit (503).")
                                .get()),
      quota_denials(r.counter("ztslm_quota_denials_total", "Requests refused by a quota (429), by reason.",
                              {"reason"})) {}

}  // namespace ztslm::audit
