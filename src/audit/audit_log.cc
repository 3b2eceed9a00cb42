#include "audit/audit_log.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>

#include "audit/canonical.h"

namespace ztslm::audit {
namespace {

std::string default_path(const std::string& dir, const char* name) {
  return (dir.empty() ? std::string(".") : dir) + "/" + name;
}

std::string pub_path_for(const std::string& key_path) {
  const std::string suffix = ".key";
  if (key_path.size() > suffix.size() &&
      key_path.compare(key_path.size() - suffix.size(), suffix.size(), suffix) == 0) {
    return key_path.substr(0, key_path.size() - suffix.size()) + ".pub";
  }
  return key_path + ".pub";
}

// Writes the public key next to the private one (0644; public by design) so operators can pin
// it in `ztslm audit verify --pubkey`.
void write_public_key(const std::string& path, const std::string& hex) {
  {
    std::ifstream in(path);
    std::string existing;
    if (in && std::getline(in, existing) && existing == hex) return;
  }
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return;
  const std::string line = hex + "\n";
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (ok) (void)::rename(tmp.c_str(), path.c_str());
  else (void)::unlink(tmp.c_str());
}

Status pread_all(int fd, char* out, size_t n, off_t at) {
  while (n > 0) {
    const ssize_t r = ::pread(fd, out, n, at);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Status::unavailable("audit log read failed");
    out += r;
    n -= static_cast<size_t>(r);
    at += r;
  }
  return Status();
}

}  // namespace

AuditLog::AuditLog(AuditLogOptions options, int fd, BodyMac mac, Signer signer)
    : options_(std::move(options)), fd_(fd), mac_(std::move(mac)), signer_(std::move(signer)) {}

int64_t AuditLog::now_us() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::unique_ptr<AuditLog>> AuditLog::open(AuditLogOptions options) {
  if (options.path.empty()) return Status::invalid_argument("audit log path is empty");
  if (options.queue_capacity == 0 || options.max_batch == 0) {
    return Status::invalid_argument("audit queue capacity and batch size must be positive");
  }
  if (options.hmac_key_path.empty()) {
    options.hmac_key_path = default_path(options.state_dir, "audit-hmac.key");
  }
  if (options.signing_key_path.empty()) {
    options.signing_key_path = default_path(options.state_dir, "audit-signing.key");
  }
  ZTSLM_ASSIGN_OR_RETURN(SecretKey hmac_key, load_or_create_key_file(options.hmac_key_path));
  ZTSLM_ASSIGN_OR_RETURN(SecretKey seed, load_or_create_key_file(options.signing_key_path));
  ZTSLM_ASSIGN_OR_RETURN(Signer signer, Signer::from_seed(seed));
  write_public_key(pub_path_for(options.signing_key_path), signer.public_key_hex());

  const int fd = ::open(options.path.c_str(),
                        O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::unavailable("cannot open audit log {}: {}", options.path, std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() ||
      (st.st_mode & 022) != 0 ||
      (options.body_mode == BodyMode::kPlaintext && (st.st_mode & 077) != 0)) {
    ::close(fd);
    return Status::permission_denied("audit log {} must be a regular file owned by this user and "
                                     "writable by it alone (readable by it alone in plaintext "
                                     "mode)", options.path);
  }
  // SECURITY: two writers would fork the chain; the second one is refused.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return Status::failed_precondition("audit log {} is in use by another process", options.path);
  }
  std::unique_ptr<AuditLog> log(
      new AuditLog(std::move(options), fd, BodyMac(std::move(hmac_key)), std::move(signer)));
  ZTSLM_TRY(log->recover_and_start());
  return log;
}

Status AuditLog::recover_and_start() {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return Status::unavailable("audit log stat failed");
  const size_t size = static_cast<size_t>(st.st_size);
  const size_t max_line = options_.parse_limits.max_line_bytes;
  ChainHead head;
  bool clean = true;
  std::string torn_sha;
  size_t good_end = 0;
  if (size > 0) {
    // The last complete line and the torn bytes after it both fit in 2 * (max_line + 1).
    const size_t window = std::min(size, 2 * (max_line + 1));
    std::string buf(window, '\0');
    ZTSLM_TRY(pread_all(fd_, buf.data(), window, static_cast<off_t>(size - window)));
    const size_t base = size - window;
    const size_t last_nl = buf.rfind('\n');
    if (last_nl == std::string::npos) {
      if (base != 0) {
        return Status::malformed("audit log {} ends with more than {} bytes without a newline",
                                 options_.path, window);
      }
      good_end = 0;  // the whole file is one torn line
    } else {
      good_end = base + last_nl + 1;
      const size_t start = last_nl == 0 ? std::string::npos : buf.rfind('\n', last_nl - 1);
      if (start == std::string::npos && base != 0) {
        return Status::malformed("audit log {}: last record exceeds {} bytes", options_.path,
                                 max_line);
      }
      const size_t line_begin = start == std::string::npos ? 0 : start + 1;
      RecordParser parser(options_.parse_limits);
      Result<RecordSummary> last = check_single_record(
          std::string_view(buf).substr(line_begin, last_nl - line_begin), parser);
      if (!last.has_value()) {
        return Status::malformed("audit log {}: last complete record is corrupt ({}); run "
                                 "`ztslm audit verify`", options_.path, last.error().message());
      }
      head.next_seq = last->seq + 1;
      head.prev_hash = last->hash;
      clean = last->closing;
      recovery_.last_good_seq = last->seq;
      recovery_.last_good_hash = last->hash;
    }
    recovery_.torn_bytes = size - good_end;
    if (recovery_.torn_bytes > 0) {
      torn_sha = sha256_hex(std::string_view(buf).substr(good_end - base));
      // The torn bytes were never acknowledged: cut them so the file is whole lines again.
      if (::ftruncate(fd_, static_cast<off_t>(good_end)) != 0 || ::fsync(fd_) != 0) {
        return Status::unavailable("cannot cut the torn tail of audit log {}", options_.path);
      }
      clean = false;
    }
  }
  chain_ = ChainWriter(head);
  chain_.start_session();
  const int64_t now = now_us();
  Json body = {{"body_mode", std::string(body_mode_name(options_.body_mode))},
               {"hmac_key_id", mac_.key_id()},
               {"pubkey", signer_.public_key_hex()},
               {"pid", static_cast<int64_t>(::getpid())},
               {"checkpoint_every_records", options_.checkpoint_every_records},
               {"checkpoint_every_us", options_.checkpoint_every_us}};
  const char* type = "open";
  if (!clean) {
    type = "recovery";
    recovery_.recovered = true;
    recovery_.reason = recovery_.torn_bytes > 0 ? "torn tail" : "unclean shutdown";
    if (recovery_.last_good_hash.empty()) recovery_.last_good_hash = std::string(kGenesisHash);
    body["reason"] = recovery_.reason;
    body["last_good_hash"] = recovery_.last_good_hash;
    if (good_end > 0) body["last_good_seq"] = recovery_.last_good_seq;
    body["torn_bytes"] = recovery_.torn_bytes;
    if (!torn_sha.empty()) body["torn_sha256"] = torn_sha;
  }
  std::string out;
  (void)chain_.append(type, canonical_dump(body), now, &out);
  ZTSLM_TRY(write_durable(out));
  last_checkpoint_us_ = now;
  stats_.records = 1;
  writer_ = std::thread([this] { writer_loop(); });
  return Status();
}

AuditLog::~AuditLog() {
  (void)close();
  if (fd_ >= 0) ::close(fd_);
}

Status AuditLog::close() {
  {
    std::unique_lock lk(mu_);
    if (!writer_.joinable()) return failed_;
    stopping_ = true;
  }
  work_cv_.notify_all();
  space_cv_.notify_all();
  writer_.join();
  std::unique_lock lk(mu_);
  return failed_;
}

Status AuditLog::write_durable(const std::string& bytes) {
  const char* p = bytes.data();
  size_t n = bytes.size();
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::unavailable("audit log write failed: {}", std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  int rc = 0;
  switch (options_.sync) {
    case SyncMode::kFdatasync: rc = ::fdatasync(fd_); break;
    case SyncMode::kFsync: rc = ::fsync(fd_); break;
    case SyncMode::kNone: break;
  }
  // SECURITY: after a failed fsync the kernel may have dropped the dirty pages; retrying could
  // report success for data that is gone. The log fails closed instead.
  if (rc != 0) return Status::unavailable("audit log sync failed: {}", std::strerror(errno));
  return Status();
}

Result<AppendReceipt> AuditLog::submit(Kind kind, const char* type, std::string body) {
  if (kind == Kind::kRecord && body.size() + 256 > options_.parse_limits.max_line_bytes) {
    return Status::resource_exhausted("audit record of {} bytes exceeds the line limit {}",
                                      body.size(), options_.parse_limits.max_line_bytes);
  }
  auto pending = std::make_shared<Pending>();
  pending->kind = kind;
  pending->type = type;
  pending->body = std::move(body);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(options_.append_timeout_ms);
  std::unique_lock lk(mu_);
  auto wait = [&](std::condition_variable& cv, auto pred) {
    if (options_.append_timeout_ms <= 0) {
      cv.wait(lk, pred);
      return true;
    }
    return cv.wait_until(lk, deadline, pred);
  };
  // Back-pressure: wait for room rather than drop.
  const bool has_room = wait(space_cv_, [&] {
    return stopping_ || !failed_.ok() || queue_.size() < options_.queue_capacity;
  });
  if (!failed_.ok()) return failed_;
  if (stopping_ || !writer_.joinable()) return Status::unavailable("audit log is closed");
  if (!has_room) return Status::unavailable("audit queue full for {} ms", options_.append_timeout_ms);
  queue_.push_back(pending);
  work_cv_.notify_one();
  if (!wait(done_cv_, [&] { return pending->done; })) {
    // The record stays queued and will still be written; the caller is told it is not durable.
    return Status::unavailable("audit commit took longer than {} ms", options_.append_timeout_ms);
  }
  if (!pending->status.ok()) return pending->status;
  return pending->receipt;
}

void AuditLog::writer_loop() {
  std::unique_lock lk(mu_);
  for (;;) {
    if (queue_.empty() && !stopping_) {
      if (options_.checkpoint_every_us > 0) {
        const auto idle = std::chrono::microseconds(
            std::clamp<int64_t>(options_.checkpoint_every_us, 1000, 1'000'000));
        work_cv_.wait_for(lk, idle);
      } else {
        work_cv_.wait(lk, [&] { return !queue_.empty() || stopping_; });
      }
    }
    std::deque<std::shared_ptr<Pending>> batch;
    while (!queue_.empty() && batch.size() < options_.max_batch) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    space_cv_.notify_all();
    const bool closing = stopping_ && queue_.empty();
    Status failed = failed_;
    lk.unlock();
    // An idle wake-up runs an empty batch: it writes a time checkpoint when one is due.
    Status st = failed.ok() ? write_batch(batch, closing) : failed;
    lk.lock();
    if (!st.ok() && failed_.ok()) failed_ = st;
    for (auto& p : batch) {
      if (!st.ok()) p->status = st;
      p->done = true;
    }
    if (!batch.empty()) {
      ++stats_.batches;
      stats_.max_batch = std::max<uint64_t>(stats_.max_batch, batch.size());
    }
    done_cv_.notify_all();
    if (closing) break;
  }
}

Status AuditLog::write_batch(std::deque<std::shared_ptr<Pending>>& batch, bool closing) {
  std::string buf;
  const int64_t now = now_us();
  uint64_t n_records = 0;
  uint64_t n_checkpoints = 0;
  auto checkpoint = [&](std::string_view reason, bool is_closing) -> Status {
    ZTSLM_ASSIGN_OR_RETURN(std::string h,
                           chain_.append_checkpoint(signer_, reason, is_closing, now, &buf));
    (void)h;
    last_checkpoint_us_ = now;
    ++n_records;
    ++n_checkpoints;
    return Status();
  };
  for (auto& p : batch) {
    switch (p->kind) {
      case Kind::kRecord: {
        p->receipt.seq = chain_.head().next_seq;
        p->receipt.hash = chain_.append(p->type, p->body, now, &buf);
        ++n_records;
        if (options_.checkpoint_every_records > 0 &&
            chain_.records_since_checkpoint() >= options_.checkpoint_every_records) {
          ZTSLM_TRY(checkpoint("count", false));
        }
        break;
      }
      case Kind::kCheckpoint:
        if (chain_.records_since_checkpoint() > 0) ZTSLM_TRY(checkpoint("manual", false));
        break;
      case Kind::kTick: break;
    }
  }
  if (!closing && options_.checkpoint_every_us > 0 && chain_.records_since_checkpoint() > 0 &&
      now - last_checkpoint_us_ >= options_.checkpoint_every_us) {
    ZTSLM_TRY(checkpoint("time", false));
  }
  if (closing) ZTSLM_TRY(checkpoint("close", true));
  if (buf.empty()) return Status();
  ZTSLM_TRY(write_durable(buf));
  std::unique_lock lk(mu_);
  stats_.records += n_records;
  stats_.checkpoints += n_checkpoints;
  return Status();
}

Result<AppendReceipt> AuditLog::append(const RequestRecord& record) {
  const BodyEncoding enc{options_.body_mode, &mac_};
  return submit(Kind::kRecord, "request",
                encode_request(record, enc, options_.record_limits, now_us()));
}
Result<AppendReceipt> AuditLog::append(const AdminRecord& record) {
  return submit(Kind::kRecord, "admin", encode_admin(record, options_.record_limits, now_us()));
}
Result<AppendReceipt> AuditLog::append(const SystemEvent& event) {
  return submit(Kind::kRecord, "event", encode_system(event, options_.record_limits, now_us()));
}
Result<AppendReceipt> AuditLog::append(const AnomalyEvent& event) {
  return submit(Kind::kRecord, "anomaly", encode_anomaly(event, options_.record_limits, now_us()));
}

Status AuditLog::tick() { return submit(Kind::kTick, "", std::string()).status(); }
Status AuditLog::checkpoint() { return submit(Kind::kCheckpoint, "", std::string()).status(); }

AuditLogStats AuditLog::stats() const {
  std::unique_lock lk(mu_);
  AuditLogStats s = stats_;
  s.queue_depth = queue_.size();
  return s;
}

}  // namespace ztslm::audit
