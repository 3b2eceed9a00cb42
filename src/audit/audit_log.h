// AuditLog: the gateway's tamper-evident, durable audit trail (chain.h gives the file format).
//
// Threads: any number of callers append() concurrently. Each call encodes its record in the
// calling thread (HMACs included), queues it, and blocks until a single writer thread has
// framed it into the hash chain, written it and fsync'ed the file together with whatever else
// was queued meanwhile (group commit). So when append() returns OK the record is on disk and
// the server may complete the response. The queue is bounded: when it is full callers wait
// (back-pressure) up to `append_timeout_ms`, then get kUnavailable; nothing is dropped silently.
// After a write or fsync error the log fails closed: every later append() returns kUnavailable.
//
// Crash safety: open() inspects the end of an existing file. A last line without '\n' (torn
// write) is reported, cut off, and the chain continues with a "recovery" record naming the last
// good hash and the torn bytes' length and SHA-256; so does a session that ended without a
// closing checkpoint. Torn bytes were never acknowledged (fsync precedes every return).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "audit/chain.h"
#include "audit/keys.h"
#include "audit/record.h"
#include "core/result.h"

namespace ztslm::audit {

enum class SyncMode {
  kFdatasync,  // default: data and the size are durable before append() returns
  kFsync,      // also metadata such as mtime
  kNone,       // no sync (tests and benchmarks only: a crash may lose acknowledged records)
};

struct AuditLogOptions {
  std::string path;       // the log file (created 0600 when absent)
  std::string state_dir;  // keys live here unless the paths below are set
  std::string hmac_key_path;     // default: <state_dir>/audit-hmac.key
  std::string signing_key_path;  // default: <state_dir>/audit-signing.key (a .pub is written next to it)
  BodyMode body_mode = BodyMode::kHmac;
  RecordLimits record_limits;
  ParseLimits parse_limits;                  // a record longer than max_line_bytes is refused
  uint64_t checkpoint_every_records = 1000;  // 0: never by count
  int64_t checkpoint_every_us = 60'000'000;  // 0: never by time
  size_t queue_capacity = 4096;              // records waiting for the writer
  size_t max_batch = 1024;                   // records per write + fsync
  int64_t append_timeout_ms = 10'000;        // wait for queue space and commit; 0: forever
  SyncMode sync = SyncMode::kFdatasync;
  // Wall clock in Unix microseconds (injected by tests); default: std::chrono::system_clock.
  std::function<int64_t()> clock;
};

// Where a committed record landed in the chain.
struct AppendReceipt {
  uint64_t seq = 0;
  std::string hash;
};

// What open() found at the end of an existing file.
struct RecoveryInfo {
  bool recovered = false;      // a recovery record was written
  size_t torn_bytes = 0;       // bytes cut from an incomplete last line
  std::string reason;          // "torn tail" | "unclean shutdown"
  uint64_t last_good_seq = 0;
  std::string last_good_hash;
};

struct AuditLogStats {
  uint64_t records = 0;       // committed by this process (checkpoints included)
  uint64_t checkpoints = 0;
  uint64_t batches = 0;       // write+fsync rounds
  uint64_t max_batch = 0;
  size_t queue_depth = 0;
};

class AuditLog final {
 public:
  // Loads or creates the keys, opens and locks the file (kFailedPrecondition when another
  // process holds it), recovers a torn tail, writes the session's open or recovery record and
  // starts the writer thread. kMalformed when the last complete record is not a valid record
  // (the file needs `ztslm audit verify` and a person).
  static Result<std::unique_ptr<AuditLog>> open(AuditLogOptions options);

  ~AuditLog();  // close()
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Each appends one record and returns once it is durable (see above). kUnavailable when the
  // log is closed, failed or the wait timed out; kResourceExhausted when the encoded record
  // exceeds the line limit.
  Result<AppendReceipt> append(const RequestRecord& record);
  Result<AppendReceipt> append(const AdminRecord& record);
  Result<AppendReceipt> append(const SystemEvent& event);
  Result<AppendReceipt> append(const AnomalyEvent& event);

  // Writes a time checkpoint if one is due by the clock (the writer also checks by itself when
  // idle); returns once done. For tests with an injected clock and for server timers.
  Status tick();
  // Writes a checkpoint now (if any record is unsigned) and returns once it is durable.
  Status checkpoint();
  // Drains the queue, writes the closing checkpoint, syncs and stops the writer. Idempotent.
  Status close();

  const RecoveryInfo& recovery() const { return recovery_; }
  const std::string& public_key_hex() const { return signer_.public_key_hex(); }
  AuditLogStats stats() const;
  const AuditLogOptions& options() const { return options_; }

 private:
  enum class Kind { kRecord, kTick, kCheckpoint };
  struct Pending {
    Kind kind = Kind::kRecord;
    const char* type = "";
    std::string body;
    // Filled by the writer under mu_.
    bool done = false;
    Status status;
    AppendReceipt receipt;
  };

  AuditLog(AuditLogOptions options, int fd, BodyMac mac, Signer signer);
  Result<AppendReceipt> submit(Kind kind, const char* type, std::string body);
  Status recover_and_start();
  void writer_loop();
  // Builds and writes one batch; returns the status for every item in it.
  Status write_batch(std::deque<std::shared_ptr<Pending>>& batch, bool closing);
  Status write_durable(const std::string& bytes);
  int64_t now_us() const;

  AuditLogOptions options_;
  int fd_ = -1;
  BodyMac mac_;
  Signer signer_;
  RecoveryInfo recovery_;

  // Writer-thread state.
  ChainWriter chain_;
  int64_t last_checkpoint_us_ = 0;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;   // writer waits for work
  std::condition_variable space_cv_;  // producers wait for queue space
  std::condition_variable done_cv_;   // producers wait for commit
  std::deque<std::shared_ptr<Pending>> queue_;
  bool stopping_ = false;
  bool stopped_ = false;
  Status failed_;
  AuditLogStats stats_;
  std::thread writer_;
};

}  // namespace ztslm::audit
