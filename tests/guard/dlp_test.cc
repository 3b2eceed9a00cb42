#include "guard/dlp.h"

#include <cstdio>
#include <cstdlib>
#include <map>

#include "corpus.h"

namespace ztslm::guard {
namespace {

using ::ztslm::guard::testing::byte_offset;
using ::ztslm::guard::testing::read_jsonl;

std::vector<DlpFinding> scan(std::string_view text) {
  auto r = DlpScanner::shared().scan(text);
  EXPECT_TRUE(r.has_value());
  return r.has_value() ? r->findings : std::vector<DlpFinding>{};
}

bool finds(std::string_view text, DlpType type, std::string_view item) {
  for (const DlpFinding& f : scan(text)) {
    if (f.type == type && text.substr(f.start, f.end - f.start) == item) return true;
  }
  return false;
}

TEST(DlpValidatorTest, Luhn) {
  EXPECT_TRUE(luhn_valid("4111 1111 1111 1111"));
  EXPECT_FALSE(luhn_valid("4111 1111 1111 1112"));
  EXPECT_FALSE(luhn_valid("4111"));
}

TEST(DlpValidatorTest, Iban) {
  EXPECT_TRUE(iban_valid("DE89 3704 0044 0532 0130 00"));
  EXPECT_TRUE(iban_valid("GB82WEST12345698765432"));
  EXPECT_FALSE(iban_valid("GB82WEST12345698765433"));
  EXPECT_FALSE(iban_valid("XX82WEST12345698765432"));
}

TEST(DlpValidatorTest, SsnRanges) {
  EXPECT_TRUE(us_ssn_valid("123-45-6789"));
  EXPECT_FALSE(us_ssn_valid("000-45-6789"));
  EXPECT_FALSE(us_ssn_valid("666-45-6789"));
  EXPECT_FALSE(us_ssn_valid("912-45-6789"));
  EXPECT_FALSE(us_ssn_valid("123-00-6789"));
  EXPECT_FALSE(us_ssn_valid("123-45-0000"));
}

TEST(DlpValidatorTest, IpAddresses) {
  EXPECT_TRUE(ipv4_valid("192.168.1.20"));
  EXPECT_FALSE(ipv4_valid("401.66.224.106"));
  EXPECT_FALSE(ipv4_valid("01.2.3.4"));
  EXPECT_TRUE(ipv6_valid("2001:db8::8a2e:370:7334"));
  EXPECT_TRUE(ipv6_valid("2001:a9b8:684e:2fef:2a66:fa56:1c64:b155"));
  EXPECT_FALSE(ipv6_valid("09:26:10"));
  EXPECT_FALSE(ipv6_valid("1::2::3"));
}

TEST(DlpValidatorTest, PlaceholdersAndEntropy) {
  EXPECT_TRUE(is_placeholder("${DB_PASSWORD}"));
  EXPECT_TRUE(is_placeholder("YOUR_SECRET_HERE"));
  EXPECT_FALSE(is_placeholder("Tr0ub4dorSdQ3eFhD2024"));
  EXPECT_GT(shannon_entropy("aB3$kL9!mN2@"), 3.0);
  EXPECT_EQ(shannon_entropy("aaaa"), 0.0);
}

TEST(DlpScannerTest, FindsEachTypeWithExactSpan) {
  EXPECT_TRUE(finds("mail jane.doe+x@example.co.uk now", DlpType::kEmail, "jane.doe+x@example.co.uk"));
  EXPECT_TRUE(finds("call +1 415-555-0100 today", DlpType::kPhone, "+1 415-555-0100"));
  EXPECT_TRUE(finds("card 4111 1111 1111 1111.", DlpType::kCreditCard, "4111 1111 1111 1111"));
  EXPECT_TRUE(finds("iban DE89 3704 0044 0532 0130 00 ok", DlpType::kIban,
                    "DE89 3704 0044 0532 0130 00"));
  EXPECT_TRUE(finds("ssn 123-45-6789", DlpType::kUsSsn, "123-45-6789"));
  EXPECT_TRUE(finds("host 10.0.0.1:80", DlpType::kIpv4, "10.0.0.1"));
  EXPECT_TRUE(finds("id AKIAIOSFODNN7EXAMPLE", DlpType::kAwsAccessKeyId, "AKIAIOSFODNN7EXAMPLE"));
  EXPECT_TRUE(finds("key AIzaSyA1234567890abcdefghijklmnopqrstuv", DlpType::kGoogleApiKey,
                    "AIzaSyA1234567890abcdefghijklmnopqrstuv"));
  EXPECT_TRUE(finds("use zt_k3y1d0ab_4fQ9xLm2Pz8RtY6bN1cV3wK7sD5gH0jA please", DlpType::kZtslmApiKey,
                    "zt_k3y1d0ab_4fQ9xLm2Pz8RtY6bN1cV3wK7sD5gH0jA"));
  EXPECT_TRUE(finds("postgres://admin:Xk29fLq8@db:5432/app", DlpType::kUrlPassword, "Xk29fLq8"));
  const std::string pem =
      "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";
  EXPECT_TRUE(finds("x\n" + pem + "\ny", DlpType::kPrivateKey, pem));
}

TEST(DlpScannerTest, RejectsNearMisses) {
  for (const char* text : {"order 4111 1111 1111 1112", "ssn 666-12-3456", "ip 300.1.2.3",
                           "version 10.0.21521.2532", "iban GB82WEST12345698765433",
                           "key AKIA123", "placeholder postgres://user:${PASSWORD}@db/x",
                           "sha 7c60ef4cc8d8ea321a6f4a8bdb9c81963e926db1"}) {
    EXPECT_TRUE(scan(text).empty()) << text;
  }
}

TEST(DlpScannerTest, HoldBackWindowIsBounded) {
  EXPECT_GT(DlpScanner::shared().max_window(), 40u);
  EXPECT_LT(DlpScanner::shared().max_window(), 512u);
}

// Precision and recall per span type over ../shared/corpus/pii-dev.jsonl, exact span and
// overlap. Prints a markdown table (docs/guard-dlp-eval.md is made from it).
TEST(DlpCorpusTest, PrecisionRecallPerType) {
  ZTSLM_REQUIRE_SHARED();
  const auto lines = read_jsonl("pii-dev.jsonl");
  ASSERT_GT(lines.size(), 1000u);
  struct Counts {
    size_t truth = 0, found = 0, tp_exact = 0, tp_overlap = 0, found_matching = 0;
  };
  std::map<std::string, Counts> per;
  size_t clean_lines = 0, clean_flagged = 0;
  for (const auto& line : lines) {
    const std::string text = line["text"];
    struct Span {
      std::string type;
      size_t start, end;
    };
    std::vector<Span> truth;
    for (const auto& s : line["spans"]) {
      truth.push_back({s["type"], byte_offset(text, s["start"]), byte_offset(text, s["end"])});
    }
    const auto found = scan(text);
    if (line["label"] == "clean") {
      ++clean_lines;
      clean_flagged += found.empty() ? 0 : 1;
      if (!found.empty() && std::getenv("ZTSLM_DLP_VERBOSE")) {
        std::printf("FP clean: %s\n", text.c_str());
      }
    }
    for (const Span& t : truth) {
      Counts& c = per[t.type];
      ++c.truth;
      bool exact = false, overlap = false;
      for (const DlpFinding& f : found) {
        if (dlp_type_name(f.type) != t.type) continue;
        exact |= f.start == t.start && f.end == t.end;
        overlap |= f.start < t.end && t.start < f.end;
      }
      c.tp_exact += exact;
      c.tp_overlap += overlap;
      if (!overlap && std::getenv("ZTSLM_DLP_VERBOSE")) {
        std::printf("FN %s: [%s] in %s\n", t.type.c_str(),
                    text.substr(t.start, t.end - t.start).c_str(), text.substr(0, 200).c_str());
      }
    }
    for (const DlpFinding& f : found) {
      const std::string name(dlp_type_name(f.type));
      Counts& c = per[name];
      ++c.found;
      bool match = false;
      for (const Span& t : truth) {
        match |= t.type == name && f.start < t.end && t.start < f.end;
      }
      c.found_matching += match;
      if (!match && std::getenv("ZTSLM_DLP_VERBOSE")) {
        std::printf("FP %s: [%s] in %s\n", name.c_str(),
                    text.substr(f.start, f.end - f.start).c_str(), text.substr(0, 200).c_str());
      }
    }
  }
  std::printf("| type | spans | found | precision (overlap) | recall (overlap) | recall (exact span) |\n");
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  auto ratio = [](size_t a, size_t b) { return b == 0 ? 1.0 : static_cast<double>(a) / static_cast<double>(b); };
  for (const auto& [type, c] : per) {
    std::printf("| %s | %zu | %zu | %.3f | %.3f | %.3f |\n", type.c_str(), c.truth, c.found,
                ratio(c.found_matching, c.found), ratio(c.tp_overlap, c.truth),
                ratio(c.tp_exact, c.truth));
  }
  std::printf("clean lines with any finding: %zu / %zu\n", clean_flagged, clean_lines);
  // Goals of issue 5: >= 99 % on cards, IBAN, SSN, keys, JWT, PEM, e-mail; >= 95 % on phones.
  for (const char* type : {"credit_card", "iban", "us_ssn", "aws_access_key_id",
                           "aws_secret_access_key", "github_token", "slack_token", "slack_webhook",
                           "openai_api_key", "anthropic_api_key", "jwt", "private_key", "email"}) {
    const Counts& c = per[type];
    EXPECT_GE(ratio(c.found_matching, c.found), 0.99) << type << " precision";
    EXPECT_GE(ratio(c.tp_overlap, c.truth), 0.99) << type << " recall";
  }
  EXPECT_GE(ratio(per["phone"].found_matching, per["phone"].found), 0.95);
  EXPECT_GE(ratio(per["phone"].tp_overlap, per["phone"].truth), 0.95);
}

}  // namespace
}  // namespace ztslm::guard
