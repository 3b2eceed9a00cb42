// Adapter: guard/ (Unicode smuggling checks, decoded payload views, DLP detectors, the injection
// detector) as the pipeline's input guard. Each message part yields finding counts and positions
// (never its text), the decoded payloads it carries, the personal data and secrets in it (DLP
// type names, guard/dlp.h) and its injection score with the reasons that fired;
// the gateway hands the report to the policy (input.guard) and enforces the decision.
#pragma once

#include <memory>
#include <string>

#include "guard/injection.h"
#include "server/stages.h"

namespace ztslm::server {

// Severity of an input finding type, for the policy: "high" for tag characters (invisible
// ASCII copies have no legitimate use in a prompt) and for secrets (private keys, cloud and API
// keys, tokens, JWTs, passwords in URLs: `dlp_type_is_secret`), "medium" for bidi controls,
// variation selector abuse, a part the detector judges an injection, payment cards, IBANs and
// US SSNs, "low" otherwise (e-mail addresses, phone numbers, IP addresses, invisibles, decoded
// payloads).
std::string_view guard_severity(std::string_view type);

class GuardInputStage final : public InputGuard {
 public:
  explicit GuardInputStage(std::shared_ptr<const guard::InjectionDetector> detector)
      : detector_(std::move(detector)) {}
  Result<GuardReport> scan(const std::vector<GuardPart>& parts) override;
  std::string strip(std::string_view text) const override;

 private:
  std::shared_ptr<const guard::InjectionDetector> detector_;
};

// The injection detector from model file `path` (see guard/injection.h). An empty `path` means
// the curated rules alone, each of which crosses the threshold (`*rules_only` is then true).
// A `path` that cannot be read or parsed is an error: a configured model never silently falls
// back.
Result<std::unique_ptr<guard::InjectionDetector>> load_injection_detector(const std::string& path,
                                                                          bool* rules_only = nullptr);

}  // namespace ztslm::server
