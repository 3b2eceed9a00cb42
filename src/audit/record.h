// What the gateway audits: one record per request and per admin action, plus anomaly and system
// events. Each is turned into the canonical JSON body of a log line (chain.h) by encode_*().
// Secrets never enter a record: no API keys, tokens or passwords; bodies are stored according
// to BodyMode (HMAC-SHA256 by default).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "audit/keys.h"

namespace ztslm::audit {

// How prompt and response bodies are stored.
enum class BodyMode {
  kNone,       // not at all (only their byte counts)
  kHmac,       // keyed HMAC-SHA256: proves what was sent to whoever holds the key, reveals nothing
  kPlaintext,  // the text itself, cut at RecordLimits::max_plaintext_bytes
};
std::string_view body_mode_name(BodyMode mode);  // "none" | "hmac" | "plaintext"

enum class Decision { kNone, kAllow, kDeny };  // kNone: the request never reached the PDP
std::string_view decision_name(Decision d);    // "none" | "allow" | "deny"

struct GuardFinding {
  std::string type;    // detector name ("pii.email", "injection", "secret.aws_key")
  uint32_t count = 0;  // occurrences
};

struct ModelRef {
  std::string name;
  std::string digest;  // "sha256:<hex>" of the verified weights
  std::string signer;  // identity that signed the model manifest
};

// Durations in microseconds; a negative value means "not measured" and is omitted.
struct Timings {
  int64_t total_us = -1;
  int64_t auth_us = -1;
  int64_t policy_us = -1;
  int64_t guard_us = -1;
  int64_t queue_us = -1;
  int64_t model_us = -1;
  int64_t ttft_us = -1;     // time to first token
  int64_t overhead_us = -1;  // total minus model time
};

// One request through the PEP (allowed, denied, or rejected before authentication).
struct RequestRecord {
  int64_t time_us = 0;       // when the request arrived (Unix µs); 0: the log's clock
  std::string request_id;
  std::string principal;     // empty when authentication failed
  std::string tenant;
  std::string auth_method;   // "api_key" | "jwt" | "mtls" | "none"
  std::string auth_failure;  // internal reason for a 401 (never the credential itself)
  std::string client;        // client address
  std::string method;        // HTTP method
  std::string route;         // route template or path
  std::string session_id;
  ModelRef model;
  Decision decision = Decision::kNone;
  std::vector<std::string> reasons;  // policy reasons
  std::vector<GuardFinding> findings;
  double injection_score = -1;              // input guard's highest score; < 0: not scanned
                                            // (stored as guard.injection_score_milli)
  std::vector<std::string> guard_reasons;   // injection rules that fired (names only)
  std::string guard_action;                 // "spotlight", "strip", "deny", "block:<why>", ...
  uint64_t tokens_in = 0;
  uint64_t tokens_out = 0;
  uint64_t cached_tokens = 0;
  Timings timings;
  int status = 0;  // HTTP status sent
  // Bodies; views must stay valid during append(). Stored per BodyMode.
  std::string_view prompt;
  std::string_view response;
};

// One administrative action (key created or revoked, policy reloaded, ...).
struct AdminRecord {
  int64_t time_us = 0;
  std::string request_id;
  std::string principal;
  std::string tenant;
  std::string auth_method;
  std::string action;  // "keys.create", "keys.revoke", "policy.reload"
  std::string target;  // key id, policy name (never a secret)
  Decision decision = Decision::kNone;
  std::vector<std::string> reasons;
  int status = 0;
  std::vector<std::pair<std::string, std::string>> details;
};

// A gateway event that is not a request (worker restart, config reload, shutdown).
struct SystemEvent {
  int64_t time_us = 0;
  std::string event;
  std::vector<std::pair<std::string, std::string>> details;
};

// A principal departing from its baseline (produced by anomaly.h).
struct AnomalyEvent {
  int64_t time_us = 0;
  std::string principal;
  std::string tenant;
  std::string signal;     // "request_rate" | "tokens" | "deny_rate" | "guard_hit_rate"
  double observed = 0;    // value in the current window
  double baseline = 0;    // EWMA before this window
  double threshold = 0;   // the bound that was exceeded
};

// Bounds on what one record may hold, so a line always stays below the reader's limit.
struct RecordLimits {
  size_t max_field_bytes = 1024;         // each identity/route string; longer ones are cut
  size_t max_list_items = 64;            // reasons, findings, details
  size_t max_plaintext_bytes = 32 << 10;  // each body in kPlaintext mode
};

// How bodies are stored; `mac` is needed (and must outlive the encoder) for kHmac.
struct BodyEncoding {
  BodyMode mode = BodyMode::kHmac;
  const BodyMac* mac = nullptr;
};

// Canonical JSON bodies of each record kind. Strings are cut at a UTF-8 boundary with a "..."
// marker past `limits`; lists are cut with a "*_dropped" count. A zero time_us is replaced by
// `now_us`. Anomaly values are stored in thousandths (records hold no floating point).
std::string encode_request(const RequestRecord& r, const BodyEncoding& bodies,
                           const RecordLimits& limits, int64_t now_us);
std::string encode_admin(const AdminRecord& r, const RecordLimits& limits, int64_t now_us);
std::string encode_system(const SystemEvent& e, const RecordLimits& limits, int64_t now_us);
std::string encode_anomaly(const AnomalyEvent& e, const RecordLimits& limits, int64_t now_us);

}  // namespace ztslm::audit
