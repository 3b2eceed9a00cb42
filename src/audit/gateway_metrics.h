// The gateway's metric set, defined in one place (names, help, labels, buckets). The server
// builds one GatewayMetrics on its Registry and serves Registry::render() on GET /metrics
// (admin only). Label values are fixed by the gateway (route templates, status codes, reason
// and finding names), never raw request text.
#pragma once

#include <array>

#include "audit/metrics.h"

namespace ztslm::audit {

// Latency buckets in seconds. Overhead goals are p50 <= 50 us and p99 <= 500 us, so its
// buckets resolve 2.5 us .. 1 s, finely below 500 us; model latencies span 1 ms .. 60 s.
inline constexpr std::array<double, 25> kOverheadBuckets = {
    2.5e-6, 5e-6, 7.5e-6, 10e-6, 15e-6, 20e-6, 25e-6, 30e-6, 40e-6, 50e-6, 75e-6, 100e-6, 150e-6,
    200e-6, 250e-6, 350e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 1.0};
inline constexpr std::array<double, 14> kTtftBuckets = {
    1e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0};
inline constexpr std::array<double, 12> kInterTokenBuckets = {
    1e-3, 2.5e-3, 5e-3, 10e-3, 20e-3, 30e-3, 50e-3, 75e-3, 100e-3, 250e-3, 500e-3, 1.0};
inline constexpr std::array<double, 14> kRequestBuckets = {
    1e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0};

struct GatewayMetrics {
  explicit GatewayMetrics(Registry& registry);

  CounterFamily& requests;         // ztslm_http_requests_total{route,status}
  HistogramFamily& request_seconds;  // ztslm_http_request_duration_seconds{route}
  CounterFamily& auth_failures;    // ztslm_auth_failures_total{reason}
  CounterFamily& policy_denials;   // ztslm_policy_denials_total{route}
  CounterFamily& guard_findings;   // ztslm_guard_findings_total{stage,type}
  Counter& tokens_in;              // ztslm_prompt_tokens_total
  Counter& tokens_out;             // ztslm_completion_tokens_total
  Histogram& ttft;                 // ztslm_time_to_first_token_seconds
  Histogram& inter_token;          // ztslm_inter_token_latency_seconds
  Histogram& overhead;             // ztslm_gateway_overhead_seconds (total minus model time)
  Gauge& active_sessions;          // ztslm_active_sessions
  Gauge& active_requests;          // ztslm_active_requests
  Counter& worker_restarts;        // ztslm_worker_restarts_total
  CounterFamily& anomalies;        // ztslm_anomalies_total{signal}
  Counter& audit_records;          // ztslm_audit_records_total
  Counter& audit_failures;         // ztslm_audit_failures_total
  CounterFamily& http_rejections;  // ztslm_http_rejections_total{status}: refused by the HTTP
                                   //   layer before the pipeline (431, 413, 408, 503 at the cap)
  Counter& tls_handshake_failures;  // ztslm_tls_handshake_failures_total
  Counter& generation_rejections;   // ztslm_generation_rejections_total: 503 at the generation cap
  CounterFamily& quota_denials;     // ztslm_quota_denials_total{reason}: 429 from a quota
};

}  // namespace ztslm::audit
