// Adapter: audit::AuditLog (hash-chained, group-committed, Ed25519 checkpoints) as the
// pipeline's AuditSink. record() returns once the record is durable.
#pragma once

#include "audit/audit_log.h"
#include "server/stages.h"

namespace ztslm::server {

class AuditLogSink final : public AuditSink {
 public:
  explicit AuditLogSink(audit::AuditLog& log) : log_(&log) {}
  Status record(const AuditRecord& r) override;
  Status record_anomaly(const audit::AnomalyEvent& e) override;

 private:
  audit::AuditLog* log_;
};

// The audit/ form of `r` (bodies are views into `r`).
audit::RequestRecord to_request_record(const AuditRecord& r);

}  // namespace ztslm::server
