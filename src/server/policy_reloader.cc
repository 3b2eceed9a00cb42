#include "server/policy_reloader.h"

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <system_error>
#include <vector>

#include "server/policy_authz.h"

namespace ztslm::server {
namespace {

// SHA-256 over each file's name and text, length-prefixed.
std::string digest_files(const std::vector<policy::SourceFile>& files) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (const auto& f : files) {
    for (const std::string* s : {&f.name, &f.text}) {
      const uint64_t n = s->size();
      EVP_DigestUpdate(ctx, &n, sizeof n);
      EVP_DigestUpdate(ctx, s->data(), s->size());
    }
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  return std::string(reinterpret_cast<const char*>(md), len);
}

}  // namespace

PolicyReloader::PolicyReloader(policy::DecisionPoint& pdp, std::string path, AuditSink& audit, const Clock& clock,
                               uint32_t interval_ms)
    : pdp_(&pdp), path_(std::move(path)), audit_(&audit), clock_(&clock), interval_ms_(interval_ms) {
  stat_fp_ = stat_fingerprint();
  if (auto files = policy::read_policy_files({path_}); files.has_value()) content_digest_ = digest_files(*files);
  if (interval_ms_ > 0) watcher_ = std::thread([this] { watch(); });
}

PolicyReloader::~PolicyReloader() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

std::string PolicyReloader::stat_fingerprint() const {
  namespace fs = std::filesystem;
  std::vector<std::string> entries;
  auto add = [&](const fs::path& p) {
    std::error_code ec;
    const auto size = fs::file_size(p, ec);
    if (ec) return;
    const auto mtime = fs::last_write_time(p, ec);
    if (ec) return;
    entries.push_back(p.string() + '\0' + std::to_string(size) + '\0' +
                      std::to_string(mtime.time_since_epoch().count()));
  };
  std::error_code ec;
  if (fs::is_directory(path_, ec)) {
    for (fs::recursive_directory_iterator it(path_, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().extension() == ".rego") add(it->path());
    }
  } else {
    add(path_);
  }
  std::sort(entries.begin(), entries.end());
  std::string fp;
  for (const auto& e : entries) fp += e + '\n';
  return fp;
}

Status PolicyReloader::reload(std::string_view trigger) {
  std::lock_guard<std::mutex> lock(mu_);
  stat_fp_ = stat_fingerprint();
  Status s;
  auto files = policy::read_policy_files({path_});
  if (!files.has_value()) {
    s = files.error();
  } else {
    s = pdp_->load(*files, policy::Value::empty_object());
    // The digest of the files tried, good or bad: a bad file is not retried until it changes.
    content_digest_ = digest_files(*files);
  }
  AuditRecord r;
  r.time_unix = clock_->unix_seconds();
  r.route = "policy reload";
  r.decision = s.ok() ? "allow" : "error";
  r.reasons.emplace_back(trigger);
  r.reasons.push_back(s.ok() ? "policy generation " + std::to_string(pdp_->generation())
                             : "kept the policy in force: " + s.to_string());
  (void)audit_->record(r);
  return s;
}

bool PolicyReloader::check_for_change() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string fp = stat_fingerprint();
    if (fp == stat_fp_) return false;
    stat_fp_ = fp;
    auto files = policy::read_policy_files({path_});
    // Same contents (touched, or rewritten identically): nothing to do.
    if (files.has_value() && digest_files(*files) == content_digest_) return false;
  }
  (void)reload("file_change");
  return true;
}

void PolicyReloader::watch() {
  std::unique_lock<std::mutex> lock(stop_mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, std::chrono::milliseconds(interval_ms_), [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    (void)check_for_change();
    lock.lock();
  }
}

}  // namespace ztslm::server
