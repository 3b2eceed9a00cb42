#include "server/guard_filter.h"

#include "core/secure.h"
#include "core/utf8.h"
#include "guard/leak.h"

namespace ztslm::server {
namespace {

class GuardedFilter final : public OutputFilter {
 public:
  GuardedFilter(const guard::RedactionPolicy& p, const OutputPolicy& op)
      : policy_(p), redactor_(p), canary_(op.canary), system_prompt_(op.system_prompt),
        leak_check_(!op.canary.empty() || !op.system_prompt.empty()) {}
  ~GuardedFilter() override {
    // The canary and the raw output may hold the system prompt; wiped with the filter.
    secure_zero(canary_.data(), canary_.size());
    secure_zero(raw_.data(), raw_.size());
  }

  std::string on_chunk(std::string_view text, bool& stop) override {
    if (stopped_) {
      stop = true;
      return {};
    }
    if (!leak_check_) return redact(text, stop);
    raw_.append(text);
    if (raw_.size() < released_ + 2 * kLeakHoldBytes) return {};
    if (leaked()) {
      stop = true;
      return {};
    }
    // Release all but the hold-back, cut at a UTF-8 boundary.
    size_t upto = raw_.size() - kLeakHoldBytes;
    while (upto > released_ && (static_cast<unsigned char>(raw_[upto]) & 0xC0) == 0x80) --upto;
    const std::string_view out = std::string_view(raw_).substr(released_, upto - released_);
    released_ = upto;
    return redact(out, stop);
  }

  std::string finish() override {
    if (stopped_) return {};
    std::string out;
    if (leak_check_) {
      if (leaked()) return {};
      bool stop = false;
      out = redact(std::string_view(raw_).substr(released_), stop);
      released_ = raw_.size();
      if (stopped_) return out;
    }
    auto rest = redactor_.finish();
    if (!rest.has_value() || redactor_.blocked()) {
      stopped_ = true;
      if (reason_.empty()) reason_ = rest.has_value() ? block_type() : "output_guard_error";
      return out;
    }
    return out + std::move(rest).value();
  }

  std::map<std::string, uint32_t> findings() const override {
    std::map<std::string, uint32_t> m;
    for (const auto& f : redactor_.findings()) ++m[std::string(guard::dlp_type_name(f.type))];
    if (reason_ == "system_prompt_leak") ++m["system_prompt_leak"];
    return m;
  }
  std::string block_reason() const override { return reason_; }

 private:
  std::string redact(std::string_view text, bool& stop) {
    auto out = redactor_.push(text);
    // SECURITY: a redactor failure stops the stream rather than letting text through unchecked.
    if (!out.has_value() || redactor_.blocked()) {
      stop = true;
      stopped_ = true;
      reason_ = out.has_value() ? block_type() : "output_guard_error";
    }
    return out.has_value() ? std::move(out).value() : std::string();
  }

  std::string block_type() const {
    for (const auto& f : redactor_.findings()) {
      if (policy_action(f.type) == guard::DlpAction::kBlock) return "dlp:" + std::string(guard::dlp_type_name(f.type));
    }
    return "dlp";
  }
  guard::DlpAction policy_action(guard::DlpType t) const { return policy_[t]; }

  // Runs the leak detector over everything generated so far.
  bool leaked() {
    auto r = guard::detect_leak(raw_, canary_, system_prompt_);
    // SECURITY: a detector failure counts as a leak (fail closed).
    if (!r.has_value() || r->leaked) {
      stopped_ = true;
      reason_ = "system_prompt_leak";
      return true;
    }
    return false;
  }

  guard::RedactionPolicy policy_;
  guard::StreamRedactor redactor_;
  std::string canary_;
  std::string system_prompt_;
  bool leak_check_;
  std::string raw_;       // raw model output (leak check only)
  size_t released_ = 0;   // bytes of raw_ passed on to the redactor
  bool stopped_ = false;
  std::string reason_;
};

}  // namespace

Result<guard::RedactionPolicy> redaction_policy(const std::map<std::string, std::string>& actions) {
  guard::RedactionPolicy p;
  for (const auto& [type, action] : actions) {
    const auto t = guard::dlp_type_from_name(type);
    if (!t.has_value()) return Status::invalid_argument("redaction obligation names unknown finding type '{}'", printable(type, 48));
    if (action == "redact") p[*t] = guard::DlpAction::kRedact;
    else if (action == "block") p[*t] = guard::DlpAction::kBlock;
    else if (action == "flag") p[*t] = guard::DlpAction::kFlag;
    else return Status::invalid_argument("redaction obligation for '{}' has unknown action '{}'", type, printable(action, 32));
  }
  return p;
}

Result<std::unique_ptr<OutputFilter>> RedactingFilterFactory::create(const OutputPolicy& policy) {
  ZTSLM_ASSIGN_OR_RETURN(guard::RedactionPolicy p, redaction_policy(policy.actions));
  return std::unique_ptr<OutputFilter>(std::make_unique<GuardedFilter>(p, policy));
}

}  // namespace ztslm::server
