#include "server/audit_sink.h"

namespace ztslm::server {

audit::RequestRecord to_request_record(const AuditRecord& r) {
  audit::RequestRecord o;
  o.time_us = r.time_unix * 1000000;
  o.request_id = r.request_id;
  o.principal = r.principal;
  o.tenant = r.tenant;
  o.auth_method = r.auth_method.empty() ? "none" : r.auth_method;
  o.auth_failure = r.auth_failure;
  o.client = r.client_address;
  const size_t sp = r.route.find(' ');
  o.method = sp == std::string::npos ? "" : r.route.substr(0, sp);
  o.route = sp == std::string::npos ? r.route : r.route.substr(sp + 1);
  o.session_id = r.session;
  o.model.name = r.model;
  o.model.digest = r.model_digest;
  o.model.signer = r.model_signer;
  o.decision = r.decision == "allow" ? audit::Decision::kAllow
               : r.decision == "deny" ? audit::Decision::kDeny : audit::Decision::kNone;
  o.reasons = r.reasons;
  for (const auto& [type, n] : r.guard_findings) o.findings.push_back({type, n});
  o.injection_score = r.injection_score;
  o.guard_reasons = r.guard_reasons;
  o.guard_action = r.guard_action;
  o.tokens_in = r.tokens_in;
  o.tokens_out = r.tokens_out;
  o.cached_tokens = r.cached_tokens;
  o.timings.total_us = static_cast<int64_t>(r.total_ms * 1000.0);
  if (r.model_ms > 0) o.timings.model_us = static_cast<int64_t>(r.model_ms * 1000.0);
  o.timings.overhead_us = static_cast<int64_t>((r.total_ms - r.model_ms) * 1000.0);
  o.status = r.http_status;
  o.prompt = r.prompt;
  o.response = r.response;
  return o;
}

Status AuditLogSink::record(const AuditRecord& r) {
  auto receipt = log_->append(to_request_record(r));
  if (!receipt.has_value()) return receipt.error();
  return Status();
}

Status AuditLogSink::record_anomaly(const audit::AnomalyEvent& e) {
  auto receipt = log_->append(e);
  if (!receipt.has_value()) return receipt.error();
  return Status();
}

}  // namespace ztslm::server
