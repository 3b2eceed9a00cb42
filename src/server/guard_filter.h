// Adapter: the output guards as the pipeline's per-request output filter.
//
// DLP (guard::StreamRedactor: secrets and PII, with validators): per finding type the request's
// policy says redact (replace by "[REDACTED:<type>]"), block (end the stream before the
// finding) or flag (leave it, count it); types the policy does not name are redacted. A
// finding is never emitted in part, even when it is split across chunks.
//
// System-prompt leak (guard/leak.h): when the request carries a canary or a system prompt, the
// raw model output is checked for the canary (also through case, confusables and invisibles)
// and for a long run of system-prompt words before any of it goes on; a leak ends the stream
// (block reason "system_prompt_leak"). The leak check holds back kLeakHoldBytes of output, so
// no byte of a canary is emitted before the check has seen all of it.
#pragma once

#include "guard/redact.h"
#include "server/stages.h"

namespace ztslm::server {

inline constexpr size_t kLeakHoldBytes = 256;

class RedactingFilterFactory final : public OutputFilterFactory {
 public:
  RedactingFilterFactory() = default;
  Result<std::unique_ptr<OutputFilter>> create(const OutputPolicy& policy) override;
  bool checks_leaks() const override { return true; }
};

// The redaction policy for `actions` (finding type -> "redact" | "block" | "flag"; unnamed
// types redact). kInvalidArgument names an unknown type or action.
Result<guard::RedactionPolicy> redaction_policy(const std::map<std::string, std::string>& actions);

}  // namespace ztslm::server
