// Adapter: guard::StreamRedactor (DLP: secrets and PII, with validators) as the pipeline's
// output filter. A finding is replaced by "[REDACTED:<type>]" and never emitted in part, even
// when it is split across chunks; a blocking finding ends the stream (finish_reason
// "content_filter").
#pragma once

#include "guard/redact.h"
#include "server/stages.h"

namespace ztslm::server {

class RedactingFilterFactory final : public OutputFilterFactory {
 public:
  explicit RedactingFilterFactory(guard::RedactionPolicy policy = {}) : policy_(policy) {}
  std::unique_ptr<OutputFilter> create() override;

 private:
  guard::RedactionPolicy policy_;
};

}  // namespace ztslm::server
