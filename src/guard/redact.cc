#include "guard/redact.h"

#include <algorithm>
#include <cstring>

#include "core/secure.h"

namespace ztslm::guard {
namespace {

constexpr size_t kMinEmitBytes = 64;

// Appends `text[from, to)` with the findings in it applied; stops at a blocking finding.
// `offset` maps positions in `text` to stream offsets for the reported findings.
void apply(std::string_view text, size_t from, size_t to, const std::vector<DlpFinding>& findings,
           const RedactionPolicy& policy, size_t offset, std::string& out,
           std::vector<DlpFinding>& reported, bool& blocked) {
  size_t pos = from;
  for (const DlpFinding& f : findings) {
    if (f.start < from || f.end > to) continue;
    const DlpAction action = policy[f.type];
    reported.push_back({f.type, f.start + offset, f.end + offset});
    if (action == DlpAction::kFlag) continue;
    out.append(text.substr(pos, f.start - pos));
    if (action == DlpAction::kBlock) {
      blocked = true;
      return;
    }
    out.append(redaction_placeholder(f.type));
    pos = f.end;
  }
  out.append(text.substr(pos, to - pos));
}

}  // namespace

std::string redaction_placeholder(DlpType type) {
  std::string s = "[REDACTED:";
  s.append(dlp_type_name(type));
  s.push_back(']');
  return s;
}

Result<RedactResult> redact(std::string_view text, const RedactionPolicy& policy,
                            const DlpScanner& scanner) {
  ZTSLM_ASSIGN_OR_RETURN(DlpScan scan, scanner.scan(text, /*is_final=*/true));
  RedactResult r;
  apply(text, 0, text.size(), scan.findings, policy, 0, r.text, r.findings, r.blocked);
  return r;
}

StreamRedactor::StreamRedactor(const RedactionPolicy& policy, const DlpScanner& scanner)
    : policy_(policy), scanner_(scanner) {}

StreamRedactor::~StreamRedactor() {
  // SECURITY: held-back bytes may be the start of a secret.
  secure_zero(data_.data(), data_.size());
}

Result<std::string> StreamRedactor::push(std::string_view chunk) {
  if (blocked_ || finished_) return std::string();
  if (data_.size() + chunk.size() > data_.capacity()) {
    // Grow by hand so that the old allocation is wiped before it is released.
    std::string grown;
    grown.reserve(std::max(data_.capacity() * 2, data_.size() + chunk.size()));
    grown.append(data_);
    secure_zero(data_.data(), data_.size());
    data_ = std::move(grown);
  }
  data_.append(chunk);
  // Scan only once a batch beyond the hold-back has arrived (fewer rescans of small chunks; the
  // output is the same whatever the batching).
  if (held_bytes() <= scanner_.max_window() + kMinEmitBytes) return std::string();
  return step(/*is_final=*/false);
}

Result<std::string> StreamRedactor::finish() {
  if (blocked_ || finished_) return std::string();
  auto out = step(/*is_final=*/true);
  finished_ = true;
  return out;
}

Result<std::string> StreamRedactor::step(bool is_final) {
  // Scan the left context plus the held bytes (both in data_). The context is as long as the
  // longest bounded match, so every candidate that starts in the held bytes sees the same left
  // bytes as in a whole-text scan; candidates that start in the context ended before the held
  // bytes (see the cut rule below).
  const std::string_view scan_text = data_;
  ZTSLM_ASSIGN_OR_RETURN(DlpScan scan, scanner_.scan(scan_text, is_final));
  const size_t c = ctx_len_, n = scan_text.size();
  size_t cut = n;
  if (!is_final) {
    // Cut rule: hold back the last max_window() bytes (a bounded match ending later cannot
    // start before the cut), everything from an open token on, and never cut through a
    // validated candidate or a UTF-8 sequence.
    const size_t window = scanner_.max_window();
    cut = n > c + window ? n - window : c;
    if (scan.open_from < cut) cut = std::max(scan.open_from, c);
    bool moved = true;
    while (moved) {
      moved = false;
      for (const DlpFinding& f : scan.candidates) {
        if (f.start < cut && cut < f.end) {
          cut = std::max(f.start, c);
          moved = true;
        }
      }
      while (cut > c && cut < n && (static_cast<unsigned char>(scan_text[cut]) & 0xC0) == 0x80) {
        --cut;
        moved = true;
      }
    }
  }
  std::string out;
  out.reserve(cut - c);
  apply(scan_text, c, cut, scan.findings, policy_, base_ - c, out, findings_, blocked_);
  if (blocked_) {
    secure_zero(data_.data(), data_.size());
    data_.clear();
    ctx_len_ = 0;
    return out;
  }
  // Keep the last `window` bytes before the cut as the new context, and the rest; wipe the
  // bytes that move out of the buffer's live range.
  const size_t keep = std::min(cut, scanner_.max_window());
  const size_t drop = cut - keep;
  if (drop > 0) {
    std::memmove(data_.data(), data_.data() + drop, n - drop);
    secure_zero(data_.data() + (n - drop), drop);
    data_.resize(n - drop);
  }
  ctx_len_ = keep;
  base_ += cut - c;
  return out;
}

}  // namespace ztslm::guard
