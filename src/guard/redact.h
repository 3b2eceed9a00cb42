// Redaction of DLP findings, in one piece or on a stream of chunks with a bounded hold-back.
//
// Per finding type the policy chooses an action: redact (replace the span by
// "[REDACTED:<type>]"), block (end the output before the finding; the caller ends the stream
// with an error event) or flag (leave the text, report the finding).
//
// Streaming guarantee (tested for random chunkings of every corpus line, and fuzzed): the
// concatenation of everything `StreamRedactor` emits equals `redact()` of the whole text, and no
// byte of a finding that is redacted or blocked is ever emitted. The redactor holds back at most
// `DlpScanner::max_window()` bytes, more only while a long token (PEM block, JWT, API key run)
// is still open, and then at most the scanner's token/PEM limits.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "guard/dlp.h"

namespace ztslm::guard {

enum class DlpAction : uint8_t { kRedact, kBlock, kFlag };

struct RedactionPolicy {
  std::array<DlpAction, kNumDlpTypes> action{};  // default: redact every type
  DlpAction& operator[](DlpType t) { return action[static_cast<size_t>(t)]; }
  DlpAction operator[](DlpType t) const { return action[static_cast<size_t>(t)]; }
};

// "[REDACTED:credit_card]".
std::string redaction_placeholder(DlpType type);

struct RedactResult {
  std::string text;                  // the output (ends before a blocking finding)
  std::vector<DlpFinding> findings;  // offsets into the input; never the sensitive bytes
  bool blocked = false;
};

// Redacts `text` in one piece.
Result<RedactResult> redact(std::string_view text, const RedactionPolicy& policy,
                            const DlpScanner& scanner = DlpScanner::shared());

class StreamRedactor final {
 public:
  // `scanner` must outlive the redactor.
  explicit StreamRedactor(const RedactionPolicy& policy,
                          const DlpScanner& scanner = DlpScanner::shared());
  ~StreamRedactor();

  // Appends `chunk` and returns the bytes that are now safe to emit (possibly empty). After a
  // block, returns empty strings. Emitted bytes never split a UTF-8 sequence of valid input.
  Result<std::string> push(std::string_view chunk);
  // End of stream: returns the rest.
  Result<std::string> finish();

  bool blocked() const { return blocked_; }
  // Findings so far (offsets into the whole stream), in order.
  const std::vector<DlpFinding>& findings() const { return findings_; }
  // Bytes currently held back.
  size_t held_bytes() const { return data_.size() - ctx_len_; }

 private:
  Result<std::string> step(bool is_final);

  RedactionPolicy policy_;
  const DlpScanner& scanner_;
  // The last emitted input bytes (left context for the next scan, the first ctx_len_ bytes)
  // followed by the input bytes not emitted yet. One buffer, so a scan copies nothing.
  std::string data_;
  size_t ctx_len_ = 0;
  size_t base_ = 0;   // stream offset of data_[ctx_len_]
  bool blocked_ = false;
  bool finished_ = false;
  std::vector<DlpFinding> findings_;
};

}  // namespace ztslm::guard
