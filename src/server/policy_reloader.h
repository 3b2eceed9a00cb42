// Keeps the policy in force in step with its files (`policy.path`): reload() on SIGHUP, and a
// watcher thread that polls the files' paths, sizes and modification times every
// `interval_ms` and, when they moved, compares a digest of their contents with the one in
// force. A reload is DecisionPoint::load: the new files must parse, compile and pass their
// `test_` rules, else the old policy stays in force. Every reload, good or bad, is audited.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "core/result.h"
#include "policy/decision.h"
#include "server/clock.h"
#include "server/stages.h"

namespace ztslm::server {

class PolicyReloader final {
 public:
  // `pdp` must already hold the policy loaded from `path`; all references must outlive this.
  // `interval_ms` 0 disables the watcher (SIGHUP only).
  PolicyReloader(policy::DecisionPoint& pdp, std::string path, AuditSink& audit, const Clock& clock,
                 uint32_t interval_ms);
  ~PolicyReloader();  // stops and joins the watcher
  PolicyReloader(const PolicyReloader&) = delete;
  PolicyReloader& operator=(const PolicyReloader&) = delete;

  // Reloads the files now. `trigger` ("sighup", "file_change") goes into the audit record.
  // Returns the load's error (the old policy then stays in force).
  Status reload(std::string_view trigger);
  // Looks at the files once (what the watcher does every interval): reloads when their
  // contents changed. True when a reload was attempted.
  bool check_for_change();

 private:
  std::string stat_fingerprint() const;
  void watch();

  policy::DecisionPoint* pdp_;
  std::string path_;
  AuditSink* audit_;
  const Clock* clock_;
  uint32_t interval_ms_;

  std::mutex mu_;  // one reload at a time; the fingerprints
  std::string stat_fp_;
  std::string content_digest_;

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread watcher_;
};

}  // namespace ztslm::server
