// Output DLP: detectors for personal data and secrets in model output (or any text).
//
// Candidates come from one Hyperscan database compiled once (leftmost start of match); each
// candidate is then checked by a C++ validator (Luhn, IBAN mod-97, SSN ranges, octet ranges,
// IPv6 grammar, JWT header, GitHub token CRC32, entropy for generic secrets, placeholders) and
// by 1-byte boundary checks. Long tokens (JWT, PEM blocks, OpenAI/Anthropic keys) are found by a
// short trigger and extended in C++ over their alphabet, so that the Hyperscan patterns stay
// short and the streaming hold-back small.
//
// ztslm's own API keys are `zt_` followed by 32..64 base62 characters (no tenant part); the
// identity component issues keys in that format (docs/guard-dlp-eval.md).
//
// Offsets are bytes into the scanned text, end exclusive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ztslm::guard {

enum class DlpType : uint8_t {
  kEmail,
  kPhone,
  kCreditCard,
  kIban,
  kUsSsn,
  kIpv4,
  kIpv6,
  kAwsAccessKeyId,
  kAwsSecretAccessKey,
  kGithubToken,
  kSlackToken,
  kSlackWebhook,
  kOpenaiApiKey,
  kAnthropicApiKey,
  kGoogleApiKey,
  kJwt,
  kPrivateKey,
  kUrlPassword,
  kZtslmApiKey,
  kGenericSecret,
};
inline constexpr size_t kNumDlpTypes = 20;

// Stable lowercase name ("credit_card"); these are the names in placeholders and JSON.
std::string_view dlp_type_name(DlpType type);
// The type whose name is `name`, if any.
std::optional<DlpType> dlp_type_from_name(std::string_view name);
// True for credentials (keys, tokens, passwords), false for personal data.
bool dlp_type_is_secret(DlpType type);

struct DlpFinding {
  DlpType type;
  size_t start = 0;
  size_t end = 0;
  friend bool operator==(const DlpFinding&, const DlpFinding&) = default;
};

// Result of a scan. `open_from` is meaningful for partial text (`is_final` false): the smallest
// start of a candidate whose extent depends on bytes not yet seen (a PEM block without its END
// line, a token run that reaches the end of the text); SIZE_MAX when there is none.
struct DlpScan {
  std::vector<DlpFinding> findings;   // sorted by start, non-overlapping
  std::vector<DlpFinding> candidates; // every validated candidate before overlap resolution
  size_t open_from = SIZE_MAX;
};

struct DlpLimits {
  size_t max_pem_bytes = 16u << 10;   // longest PEM block followed (RSA-8192 fits)
  size_t max_token_bytes = 8u << 10;  // longest JWT / key run followed
};

// An immutable scanner: the compiled database is shared by every thread; each scan uses a
// thread-local Hyperscan scratch.
class DlpScanner final {
 public:
  // Compiles the patterns. kInternal when Hyperscan rejects them (a bug in this file).
  static Result<std::unique_ptr<DlpScanner>> create(const DlpLimits& limits = {});
  // The process-wide scanner, compiled on first use (aborts if the patterns do not compile).
  static const DlpScanner& shared();
  ~DlpScanner();
  DlpScanner(const DlpScanner&) = delete;
  DlpScanner& operator=(const DlpScanner&) = delete;

  // Scans `text` (any bytes). `is_final` false means more bytes may follow `text` (streaming):
  // token runs that reach the end stay open (see DlpScan::open_from). Returns kInternal only
  // when Hyperscan fails at run time (scratch allocation).
  Result<DlpScan> scan(std::string_view text, bool is_final = true) const;

  // The longest match any Hyperscan-bounded pattern can produce, plus one byte of context:
  // a streaming redactor holds back at least this many bytes.
  size_t max_window() const { return max_window_; }
  const DlpLimits& limits() const { return limits_; }

 private:
  DlpScanner() = default;
  struct Db;
  std::unique_ptr<Db> db_;
  size_t max_window_ = 0;
  DlpLimits limits_;
};

// Validators (exposed for tests and fuzzers). Inputs are the candidate bytes.
bool luhn_valid(std::string_view digits_and_separators);
bool iban_valid(std::string_view iban_with_spaces);
bool us_ssn_valid(std::string_view ssn);  // "AAA-GG-SSSS" or 9 digits
bool ipv4_valid(std::string_view s);
bool ipv6_valid(std::string_view s);
bool jwt_valid(std::string_view s);
bool github_token_checksum_valid(std::string_view token);  // classic ghp_/gho_/... tokens
// Shannon entropy of `s` in bits per byte.
double shannon_entropy(std::string_view s);
// True for obvious placeholders: ${VAR}, $VAR, <...>, xxxx, ****, YOUR_..., "changeme".
bool is_placeholder(std::string_view value);

}  // namespace ztslm::guard
