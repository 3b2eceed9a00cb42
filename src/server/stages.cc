#include "server/stages.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/check.h"
#include "core/secure.h"
#include "server/random.h"

namespace ztslm::server {

std::string random_hex(size_t n_bytes) {
  std::string raw(n_bytes, '\0');
  ZTSLM_CHECK(RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(n_bytes)) == 1);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n_bytes);
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  secure_zero(raw.data(), raw.size());
  return out;
}

std::string random_base64url(size_t n_bytes) {
  std::string raw(n_bytes, '\0');
  ZTSLM_CHECK(RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(n_bytes)) == 1);
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : raw) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  secure_zero(raw.data(), raw.size());
  return out;
}

// ---- MemoryKeyAuth ----

std::string MemoryKeyAuth::sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  ZTSLM_CHECK(EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr) == 1);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

bool MemoryKeyAuth::split_key(std::string_view key, std::string_view& id, std::string_view& secret) {
  constexpr std::string_view kPrefix = "ztslm_sk_";
  if (key.size() > 256 || key.substr(0, kPrefix.size()) != kPrefix) return false;
  const std::string_view rest = key.substr(kPrefix.size());
  const size_t us = rest.find('_');
  if (us == std::string_view::npos || us == 0 || us + 1 >= rest.size()) return false;
  id = rest.substr(0, us);
  secret = rest.substr(us + 1);
  return true;
}

std::string MemoryKeyAuth::create_key(const std::string& principal, const std::string& tenant,
                                      std::vector<std::string> roles, int64_t expires_unix) {
  const std::string id = random_hex(8);
  std::string secret = random_base64url(32);
  std::string key = "ztslm_sk_" + id + "_" + secret;
  add_digest(id, sha256_hex(key), principal, tenant, std::move(roles), expires_unix);
  secure_zero(secret.data(), secret.size());
  return key;
}

void MemoryKeyAuth::add_digest(const std::string& key_id, const std::string& sha256_hex_digest,
                               const std::string& principal, const std::string& tenant,
                               std::vector<std::string> roles, int64_t expires_unix) {
  Entry e;
  e.digest_hex = sha256_hex_digest;
  e.principal.id = principal;
  e.principal.tenant = tenant;
  e.principal.roles = std::move(roles);
  e.principal.method = "api_key";
  e.principal.attributes["key_id"] = key_id;
  e.expires_unix = expires_unix;
  std::lock_guard<std::mutex> lock(mu_);
  keys_[key_id] = std::move(e);
}

bool MemoryKeyAuth::revoke(const std::string& key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = keys_.find(key_id);
  if (it == keys_.end()) return false;
  it->second.revoked = true;
  return true;
}

Result<Principal> MemoryKeyAuth::authenticate(const AuthInput& in, AuthFailure& failure) {
  constexpr std::string_view kBearer = "Bearer ";
  if (in.authorization.empty()) {
    failure.reason = "missing";
    return Status::unauthenticated("invalid or missing credentials");
  }
  if (in.authorization.size() <= kBearer.size() || in.authorization.substr(0, kBearer.size()) != kBearer) {
    failure.reason = "malformed";
    return Status::unauthenticated("invalid or missing credentials");
  }
  const std::string_view key = in.authorization.substr(kBearer.size());
  std::string_view id, secret;
  if (!split_key(key, id, secret)) {
    failure.reason = "malformed";
    return Status::unauthenticated("invalid or missing credentials");
  }
  const std::string digest = sha256_hex(key);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = keys_.find(std::string(id));
  // SECURITY: digest compared in constant time; an unknown id still costs one hash above.
  if (it == keys_.end() || !ct_equal(std::string_view(it->second.digest_hex), std::string_view(digest))) {
    failure.reason = "unknown_key";
    return Status::unauthenticated("invalid or missing credentials");
  }
  if (it->second.revoked) {
    failure.reason = "revoked";
    return Status::unauthenticated("invalid or missing credentials");
  }
  if (it->second.expires_unix != 0 && clock_->unix_seconds() >= it->second.expires_unix) {
    failure.reason = "expired";
    return Status::unauthenticated("invalid or missing credentials");
  }
  return it->second.principal;
}

// ---- output filter ----

namespace {
class PassThroughFilter final : public OutputFilter {
 public:
  std::string on_chunk(std::string_view text, bool&) override { return std::string(text); }
  std::string finish() override { return {}; }
};
}  // namespace

Result<std::unique_ptr<OutputFilter>> PassThroughFilterFactory::create(const OutputPolicy&) {
  return std::unique_ptr<OutputFilter>(std::make_unique<PassThroughFilter>());
}

// ---- input guard ----

Result<GuardReport> AllowAllGuard::scan(const std::vector<GuardPart>& parts) {
  GuardReport r;
  for (const auto& p : parts) {
    GuardPartReport pr;
    pr.role = std::string(p.role);
    pr.indirect = p.indirect;
    pr.bytes = p.text.size();
    r.parts.push_back(std::move(pr));
  }
  return r;
}

// ---- audit ----

nlohmann::json audit_record_json(const AuditRecord& r) {
  nlohmann::json j = {
      {"time", r.time_unix},          {"request_id", r.request_id},
      {"principal", r.principal},     {"tenant", r.tenant},
      {"auth_method", r.auth_method}, {"route", r.route},
      {"model", r.model},             {"decision", r.decision},
      {"reasons", r.reasons},         {"guard_findings", r.guard_findings},
      {"tokens_in", r.tokens_in},     {"tokens_out", r.tokens_out},
      {"cached_tokens", r.cached_tokens}, {"status", r.http_status},
      {"total_ms", r.total_ms},       {"model_ms", r.model_ms},
      {"client", r.client_address},   {"session", r.session},
  };
  if (!r.auth_failure.empty()) j["auth_failure"] = r.auth_failure;
  if (!r.model_digest.empty()) j["model_digest"] = r.model_digest;
  if (!r.model_signer.empty()) j["model_signer"] = r.model_signer;
  if (r.injection_score >= 0) j["injection_score"] = r.injection_score;
  if (!r.guard_reasons.empty()) j["guard_reasons"] = r.guard_reasons;
  if (!r.guard_action.empty()) j["guard_action"] = r.guard_action;
  return j;
}

SimpleAuditSink::~SimpleAuditSink() {
  if (fd_ >= 0) ::close(fd_);
}

Status AuditSink::record_anomaly(const audit::AnomalyEvent&) {
  return Status::failed_precondition("this audit sink does not record anomalies");
}

Status SimpleAuditSink::append_line_locked(const std::string& line) {
  if (path_.empty()) return Status();
  if (fd_ < 0) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd_ < 0) return Status::unavailable("cannot open audit log: {}", std::strerror(errno));
  }
  size_t off = 0;
  while (off < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::unavailable("audit write failed");
    off += static_cast<size_t>(n);
  }
  if (::fdatasync(fd_) != 0) return Status::unavailable("audit fsync failed");
  return Status();
}

Status SimpleAuditSink::record_anomaly(const audit::AnomalyEvent& e) {
  std::lock_guard<std::mutex> lock(mu_);
  const nlohmann::json j = {{"kind", "anomaly"},        {"time_us", e.time_us},
                            {"principal", e.principal}, {"tenant", e.tenant},
                            {"signal", e.signal},       {"observed", e.observed},
                            {"baseline", e.baseline},   {"threshold", e.threshold}};
  ZTSLM_TRY(append_line_locked(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"));
  if (keep_ > 0) {
    if (anomalies_.size() >= keep_) anomalies_.pop_front();
    anomalies_.push_back(e);
  }
  return Status();
}

std::vector<audit::AnomalyEvent> SimpleAuditSink::anomalies() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {anomalies_.begin(), anomalies_.end()};
}

Status SimpleAuditSink::record(const AuditRecord& r) {
  std::lock_guard<std::mutex> lock(mu_);
  ZTSLM_TRY(append_line_locked(
      audit_record_json(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"));
  if (keep_ > 0) {
    if (recent_.size() >= keep_) recent_.pop_front();
    recent_.push_back(r);
    recent_.back().prompt = {};  // views die with the request
    recent_.back().response = {};
  }
  return Status();
}

std::vector<AuditRecord> SimpleAuditSink::records() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {recent_.begin(), recent_.end()};
}

}  // namespace ztslm::server
