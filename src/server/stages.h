// The pipeline's seams (DESIGN.md "Request pipeline"): who the caller is, whether it may do
// what it asks, what the input guard and the output filter say, and where the audit record
// goes. The gateway only speaks to these interfaces; adapters in server/ connect identity/,
// policy/, guard/ and audit/, and the stand-ins below serve until (or without) them.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "audit/record.h"
#include "core/result.h"
#include "server/clock.h"

namespace ztslm::server {

// The authenticated caller. `method` is "api_key", "jwt" or "mtls".
struct Principal {
  std::string id;
  std::string tenant;
  std::vector<std::string> roles;
  std::map<std::string, std::string> attributes;
  std::string method;

  bool has_role(std::string_view r) const {
    for (const auto& x : roles) if (x == r) return true;
    return false;
  }
};

// What the authenticator sees of a request. Views into the connection; valid during the call.
struct AuthInput {
  std::string_view authorization;  // the Authorization header ("" when absent)
  std::string_view peer_cert_der;  // the verified client certificate (DER), "" when none
  std::string_view client_address;
};

// Why authentication failed; goes to the audit log and metrics only, never to the client.
struct AuthFailure {
  std::string reason;  // "missing", "malformed", "unknown_key", "expired", "revoked", ...
  std::string detail;  // the failed check ("jwt audience mismatch"); never a credential
};

class AuthStage {
 public:
  virtual ~AuthStage() = default;
  // The principal behind `in`, or kUnauthenticated with the internal reason in `failure`.
  virtual Result<Principal> authenticate(const AuthInput& in, AuthFailure& failure) = 0;
};

// The authorisation decision (policy output) and the obligations the gateway enforces.
struct Decision {
  bool allow = false;
  std::vector<std::string> reasons;
  uint32_t max_tokens_cap = 0;  // obligation: 0 = none
  std::string quota_class;      // obligation: "" = "default"
  std::string guard_profile;    // obligation: "strict", "standard" or "" (none)
  double injection_threshold = 0;  // obligation: refuse at or above this score; 0 = none
  std::map<std::string, std::string> redact;  // obligation: output finding type -> action
  int spotlight = -1;  // obligation: spotlight indirect input (1), do not (0), unset (-1)
  int strip = -1;      // obligation: send the stripped view of every part (1), do not (0), unset
  int canary = -1;     // obligation: no system-prompt canary (0); default: one when leaks are checked
};

class Authorizer {
 public:
  virtual ~Authorizer() = default;
  // Decides on `input`, the policy input document (src/server/README.md "Policy input").
  // A Status error means the decision could not be made; the gateway then denies.
  virtual Result<Decision> authorize(const nlohmann::json& input) = 0;
};

// Quota admission of one generation (DESIGN.md pipeline step 5).
struct QuotaAsk {
  const Principal* principal = nullptr;
  std::string_view quota_class;  // the policy's obligation ("default" when it names none)
  uint32_t max_tokens = 0;       // generation cap after the policy's
  size_t prompt_bytes = 0;       // message contents or prompt, for the prompt-token estimate
  size_t n_messages = 0;
  int64_t unix_time = 0;
};

// An admitted generation's hold on its quotas. Destroying it unsettled charges the whole
// reservation (a generation cut short is charged what it was allowed to use).
class QuotaTicket {
 public:
  virtual ~QuotaTicket() = default;
  // Charges the real token count and frees the concurrent slot.
  virtual void settle(uint64_t used_tokens) = 0;
  // Undoes the admission (for a request the server itself then refused).
  virtual void refund() = 0;
};

struct QuotaVerdict {
  bool allow = false;
  std::string reason;                   // audit reason of a denial: "quota:tokens_per_minute:tenant"
  int64_t retry_after_s = 0;            // 429 with Retry-After; 0 = not retryable (403)
  Status error;                         // the store failed: 503
  std::unique_ptr<QuotaTicket> ticket;  // set when allowed
};

class QuotaGate {
 public:
  virtual ~QuotaGate() = default;
  virtual QuotaVerdict admit(const QuotaAsk& ask) = 0;
};

// One message part the input guard scans. Parts from role "tool" and from the request's
// `documents` are indirect input: data that must not be taken as instructions.
struct GuardPart {
  std::string_view role;  // "system", "user", "assistant", "tool", "document" or "prompt"
  std::string_view text;  // valid UTF-8 (the parser rejects anything else)
  bool indirect = false;
};

// One finding's place in its part (byte offsets, end exclusive); never the text.
struct GuardPosition {
  std::string type;
  size_t start = 0;
  size_t end = 0;
};

struct GuardPartReport {
  std::string role;
  bool indirect = false;
  size_t bytes = 0;
  double injection_score = 0;
  std::vector<std::string> reasons;           // rules that fired, "model", "decoded:<encoding>"
  std::map<std::string, uint32_t> counts;     // finding type -> count
  std::vector<GuardPosition> positions;       // at most kMaxGuardPositions per part
};

inline constexpr size_t kMaxGuardPositions = 32;

// What the input guard found in a request: the policy decides on it (input.guard).
struct GuardReport {
  std::map<std::string, uint32_t> findings;  // finding type -> count over all parts
  std::map<std::string, std::string> severity;  // finding type -> "low", "medium", "high"
  double injection_score = 0;                // highest over the parts
  std::vector<std::string> reasons;          // union of the parts' reasons, sorted
  std::vector<GuardPartReport> parts;        // in request order
};

class InputGuard {
 public:
  virtual ~InputGuard() = default;
  // Scans every part. An error means the input could not be judged; the gateway then denies.
  virtual Result<GuardReport> scan(const std::vector<GuardPart>& parts) = 0;
  // `text` without the characters that hide content (tag characters, zero-width and other
  // format characters, bidi controls, variation selectors): the "strip" obligation.
  virtual std::string strip(std::string_view text) const { return std::string(text); }
};

// One response stream's output filter (created per request: it may hold text back across
// chunks, e.g. so that a secret split across chunks is never emitted partly).
class OutputFilter {
 public:
  virtual ~OutputFilter() = default;
  // Returns the text that may be sent now; `stop` set to true ends the stream.
  virtual std::string on_chunk(std::string_view text, bool& stop) = 0;
  // Returns what was held back at the end of the stream.
  virtual std::string finish() = 0;
  // Finding type -> count, for the audit record.
  virtual std::map<std::string, uint32_t> findings() const { return {}; }
  // Why the filter stopped the stream ("" while it has not): "system_prompt_leak" or
  // "dlp:<type>". Never contains the output text.
  virtual std::string block_reason() const { return {}; }
};

// The per-request output policy: what the filter does with each finding type, and the system
// prompt (with its canary) that must not leak.
struct OutputPolicy {
  std::map<std::string, std::string> actions;  // finding type -> "redact", "block" or "flag"
  std::string canary;                          // "" = none
  std::string system_prompt;                   // "" = no overlap check
};

class OutputFilterFactory {
 public:
  virtual ~OutputFilterFactory() = default;
  // kInvalidArgument for an unknown finding type or action (the request is then refused).
  virtual Result<std::unique_ptr<OutputFilter>> create(const OutputPolicy& policy) = 0;
  // True when the filters check OutputPolicy::canary and system_prompt (the gateway adds a
  // canary to the system prompt only then).
  virtual bool checks_leaks() const { return false; }
};

// One audit record (issue 3 item 6); prompt/response text never goes in here, only counts.
struct AuditRecord {
  int64_t time_unix = 0;
  std::string request_id;
  std::string principal;
  std::string tenant;
  std::string auth_method;
  std::string auth_failure;  // internal reason of a 401
  std::string route;
  std::string model;         // the model the request named
  std::string model_digest;  // "sha256:<hex>" of the served model's bytes (every record)
  std::string model_signer;  // its trusted publisher, or "unverified"
  std::string decision;  // "allow", "deny", "error"
  std::vector<std::string> reasons;
  std::map<std::string, uint32_t> guard_findings;
  double injection_score = -1;              // highest input-guard score; -1 = not scanned
  std::vector<std::string> guard_reasons;   // injection rules that fired (names only)
  std::string guard_action;                 // "", "spotlight", "strip", "deny", "block:<why>"
  uint64_t tokens_in = 0;
  uint64_t tokens_out = 0;
  uint64_t cached_tokens = 0;
  int http_status = 0;
  double total_ms = 0;
  double model_ms = 0;
  std::string client_address;
  std::string session;  // "" or the session id
  // Bodies for the audit log's body mode (HMAC by default); views valid during record().
  std::string_view prompt;
  std::string_view response;
};

class AuditSink {
 public:
  virtual ~AuditSink() = default;
  // Records `r` durably before the caller completes the response. A failure makes the
  // gateway answer 500 where it still can.
  virtual Status record(const AuditRecord& r) = 0;
  // Records a behaviour anomaly (audit/anomaly.h) durably. The default refuses, so a sink
  // that cannot keep them shows up in ztslm_audit_failures_total instead of dropping them.
  virtual Status record_anomaly(const audit::AnomalyEvent& e);
};

// ---- stand-ins ----

// API keys held in memory as SHA-256 digests ("ztslm_sk_<id>_<secret>"), compared in constant
// time; expiry against the injected clock, revocation effective at once. Stands in for
// identity's SQLite key store.
class MemoryKeyAuth final : public AuthStage {
 public:
  explicit MemoryKeyAuth(const Clock& clock) : clock_(&clock) {}
  // Creates a key and returns its full text (shown once). `expires_unix` 0 = never.
  std::string create_key(const std::string& principal, const std::string& tenant,
                         std::vector<std::string> roles, int64_t expires_unix = 0);
  // Revokes the key with id `key_id` (the part after "ztslm_sk_" up to the next "_").
  bool revoke(const std::string& key_id);
  // Adds a key known only by its digest (loaded from the state directory).
  void add_digest(const std::string& key_id, const std::string& sha256_hex, const std::string& principal,
                  const std::string& tenant, std::vector<std::string> roles, int64_t expires_unix);
  Result<Principal> authenticate(const AuthInput& in, AuthFailure& failure) override;

  // Splits "ztslm_sk_<id>_<secret>" into id and secret; false when malformed.
  static bool split_key(std::string_view key, std::string_view& id, std::string_view& secret);
  static std::string sha256_hex(std::string_view data);

 private:
  struct Entry {
    std::string digest_hex;
    Principal principal;
    int64_t expires_unix = 0;
    bool revoked = false;
  };
  const Clock* clock_;
  std::mutex mu_;
  std::map<std::string, Entry> keys_;
};

class AllowAllGuard final : public InputGuard {
 public:
  Result<GuardReport> scan(const std::vector<GuardPart>& parts) override;
};

class PassThroughFilterFactory final : public OutputFilterFactory {
 public:
  Result<std::unique_ptr<OutputFilter>> create(const OutputPolicy& policy) override;
};

// Keeps records in memory (tests) and optionally appends them as JSON lines to a file with
// fsync (no hash chain: audit/ provides that).
class SimpleAuditSink final : public AuditSink {
 public:
  explicit SimpleAuditSink(std::string path = "", size_t keep_in_memory = 1024)
      : path_(std::move(path)), keep_(keep_in_memory) {}
  ~SimpleAuditSink() override;
  Status record(const AuditRecord& r) override;
  Status record_anomaly(const audit::AnomalyEvent& e) override;
  std::vector<AuditRecord> records() const;
  std::vector<audit::AnomalyEvent> anomalies() const;

 private:
  Status append_line_locked(const std::string& line);
  std::string path_;
  size_t keep_;
  int fd_ = -1;
  mutable std::mutex mu_;
  std::deque<AuditRecord> recent_;
  std::deque<audit::AnomalyEvent> anomalies_;
};

// The JSON form of an audit record (one line of the log).
nlohmann::json audit_record_json(const AuditRecord& r);

}  // namespace ztslm::server
