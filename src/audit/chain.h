// The audit hash chain: how records are framed into lines (ChainWriter) and how a log is checked
// (ChainVerifier). Neither does I/O; audit_log.h and log_reader.h do.
//
// Grammar (version 1), one canonical JSON object per line (canonical.h), each line ending '\n':
//   {"body":{...},"hash":H,"prev":P,"seq":N,"ts":T,"type":TYPE,"v":1}
//   H    = hex SHA-256 of the canonical line with the "hash" member removed
//   P    = H of the previous record; 64 zeros for the first record of the file
//   N    = 0, 1, 2, ... without gaps;  T = microseconds since the Unix epoch (writer's clock)
//   TYPE = "open" | "recovery" | "request" | "admin" | "anomaly" | "event" | "checkpoint"
// A session starts with "open" (after a closing checkpoint or at the start of the file) or with
// "recovery" (after a session that ended without one: crash, torn last line). Checkpoints:
//   body = {"closing":B,"pubkey":K,"reason":"count"|"time"|"close","records":R,"sig":S}
//   K = the session's Ed25519 public key (hex; also in its open/recovery record), R = records
//   since the session start or the previous checkpoint, S = Ed25519 signature (hex) of
//   "ztslm-audit-checkpoint-v1\n" + the canonical line without "hash" and without body.sig.
// A complete log ends with a closing checkpoint, so every record is covered by a signature.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "audit/canonical.h"
#include "audit/keys.h"
#include "core/result.h"

namespace ztslm::audit {

inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";
inline constexpr std::string_view kCheckpointDomain = "ztslm-audit-checkpoint-v1\n";

// Where the chain continues: the next sequence number and the previous record's hash.
struct ChainHead {
  uint64_t next_seq = 0;
  std::string prev_hash = std::string(kGenesisHash);
};

// Frames records into lines. Not thread-safe (the log's writer thread owns one).
class ChainWriter final {
 public:
  explicit ChainWriter(ChainHead head = ChainHead()) : head_(std::move(head)) {}

  // Appends the line for a record of `type` whose body is `body_json` (a canonical_dump of an
  // object) to `out`, '\n' included, and advances the head. Returns the record's hash.
  std::string append(std::string_view type, std::string_view body_json, int64_t ts_us,
                     std::string* out);

  // Appends a checkpoint signed by `signer` covering the records since the last one.
  Result<std::string> append_checkpoint(const Signer& signer, std::string_view reason,
                                        bool closing, int64_t ts_us, std::string* out);

  // Marks the start of a session (the counter of records since the last checkpoint restarts).
  void start_session() { since_checkpoint_ = 0; }

  const ChainHead& head() const { return head_; }
  uint64_t records_since_checkpoint() const { return since_checkpoint_; }

 private:
  std::string frame(std::string_view type, std::string_view body_json, int64_t ts_us,
                    std::string* without_hash);

  ChainHead head_;
  uint64_t since_checkpoint_ = 0;
};

struct VerifyOptions {
  // Every checkpoint (and every open/recovery record) must carry this Ed25519 key (64 hex).
  // Without it, signatures are checked against the key the log itself names (not pinned).
  std::optional<std::string> pinned_pubkey;
  // Accept records after the last checkpoint (a live log). Those are hash-chained but not
  // signed: someone who can write the file could rewrite them undetected.
  bool allow_open_tail = false;
  ParseLimits limits;
};

struct VerifyReport {
  bool ok = false;
  uint64_t bad_line = 0;     // 1-based line of the first defect (0 when ok)
  std::string reason;        // what is wrong there
  uint64_t n_lines = 0;      // complete lines read
  uint64_t n_records = 0;    // valid records (checkpoints included)
  uint64_t n_checkpoints = 0;
  uint64_t n_sessions = 0;
  uint64_t n_recoveries = 0;
  uint64_t unsigned_tail = 0;  // records after the last checkpoint
  bool closed = false;         // ends with a closing checkpoint
  std::string last_hash;
  std::string signer_pubkey;  // key of the last checkpoint
};

// A record checked on its own: canonical, well-formed envelope, hash matching its content (the
// link to its predecessor is not checked). open() uses it on the last line of a log.
struct RecordSummary {
  uint64_t seq = 0;
  std::string hash;
  std::string type;
  bool closing = false;  // a closing checkpoint
};
// Checks a log line by line. Stops at the first defect.
class ChainVerifier final {
 public:
  explicit ChainVerifier(VerifyOptions options = VerifyOptions());

  // Checks the next complete line (without its '\n'). False once a defect was found.
  bool feed(std::string_view line);
  // Ends the input. `torn_tail_bytes` > 0 when the file ended with that many bytes and no '\n'.
  VerifyReport finish(size_t torn_tail_bytes);

  // The report so far (ok reflects only the lines fed).
  const VerifyReport& report() const { return report_; }

 private:
  bool fail(std::string reason);
  Status check_record(std::string_view line);
  Status check_session(const Json& rec, const RecordSummary& summary, Json& unhashed);

  VerifyOptions options_;
  RecordParser parser_;
  VerifyReport report_;
  ChainHead expect_;
  bool failed_ = false;
  bool in_session_ = false;
  bool session_closed_ = false;
  std::string session_pubkey_;
  uint64_t since_checkpoint_ = 0;
};

Result<RecordSummary> check_single_record(std::string_view line, RecordParser& parser);

// Verifies a whole log held in memory.
VerifyReport verify_bytes(std::string_view file, const VerifyOptions& options);

}  // namespace ztslm::audit
