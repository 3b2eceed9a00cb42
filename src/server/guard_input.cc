#include "server/guard_input.h"

#include <algorithm>
#include <fstream>
#include <set>

#include "core/utf8.h"
#include "guard/decode.h"
#include "guard/dlp.h"
#include "guard/unicode.h"

namespace ztslm::server {

std::string_view guard_severity(std::string_view type) {
  if (type == "tag_character") return "high";
  if (type == "bidi_control" || type == "variation_selector" || type == "prompt_injection") return "medium";
  if (const auto dlp = guard::dlp_type_from_name(type)) {
    // SECURITY: a credential pasted into a prompt reaches the model, its context and whatever
    // the model repeats; personal data is the policy's call (flag, not refuse, by default).
    if (guard::dlp_type_is_secret(*dlp)) return "high";
    switch (*dlp) {
      case guard::DlpType::kCreditCard:
      case guard::DlpType::kIban:
      case guard::DlpType::kUsSsn: return "medium";
      default: return "low";
    }
  }
  return "low";
}

namespace {

guard::PartSource source_of(const GuardPart& p) {
  if (p.role == "system") return guard::PartSource::kSystem;
  if (p.role == "tool") return guard::PartSource::kTool;
  if (p.indirect) return guard::PartSource::kDocument;
  return guard::PartSource::kUser;
}

void add_finding(GuardPartReport& pr, std::string type, size_t start, size_t end) {
  ++pr.counts[type];
  if (pr.positions.size() < kMaxGuardPositions) pr.positions.push_back({std::move(type), start, end});
}

}  // namespace

Result<GuardReport> GuardInputStage::scan(const std::vector<GuardPart>& parts) {
  GuardReport r;
  std::set<std::string> reasons;
  guard::DecodeLimits dl;
  dl.include_rot13 = false;  // a ROT13 view of every text is not a finding
  for (const GuardPart& p : parts) {
    GuardPartReport pr;
    pr.role = std::string(p.role);
    pr.indirect = p.indirect;
    pr.bytes = p.text.size();
    auto uni = guard::check_input(p.text);
    // SECURITY: input the checks cannot read is refused, never passed on unjudged.
    if (!uni.has_value()) return uni.error().with_context("input guard");
    for (const auto& f : uni->findings) add_finding(pr, std::string(guard::unicode_kind_name(f.kind)), f.start, f.end);
    if (uni->n_findings_dropped > 0) {
      // Counted, not listed: the kinds of dropped findings are unknown here, so they count as
      // invisibles (the least severe kind) rather than vanishing.
      pr.counts["invisible"] += static_cast<uint32_t>(std::min<size_t>(uni->n_findings_dropped, UINT32_MAX));
    }
    for (const auto& v : guard::decode_payloads(p.text, dl)) {
      // Depth-1 views have offsets into the part itself; deeper ones point into their parent.
      if (v.depth == 1) add_finding(pr, "decoded_" + std::string(guard::encoding_name(v.encoding)), v.start, v.end);
      else ++pr.counts["decoded_" + std::string(guard::encoding_name(v.encoding))];
    }
    // Personal data and secrets in the part, with positions (the text stays here).
    ZTSLM_ASSIGN_OR_RETURN(guard::DlpScan dlp, guard::DlpScanner::shared().scan(p.text));
    for (const auto& f : dlp.findings) add_finding(pr, std::string(guard::dlp_type_name(f.type)), f.start, f.end);
    ZTSLM_ASSIGN_OR_RETURN(guard::InjectionResult inj, detector_->score(p.text, source_of(p)));
    pr.injection_score = inj.score;
    pr.reasons = std::move(inj.reasons);
    if (inj.is_attack) add_finding(pr, "prompt_injection", 0, p.text.size());
    r.injection_score = std::max(r.injection_score, pr.injection_score);
    for (const auto& s : pr.reasons) reasons.insert(s);
    for (const auto& [type, n] : pr.counts) {
      r.findings[type] += n;
      r.severity[type] = std::string(guard_severity(type));
    }
    r.parts.push_back(std::move(pr));
  }
  r.reasons.assign(reasons.begin(), reasons.end());
  return r;
}

std::string GuardInputStage::strip(std::string_view text) const {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    char32_t cp = 0;
    size_t len = 1;
    if (!decode_utf8(text, i, &cp, &len)) {
      ++i;  // not reached for parsed requests (valid UTF-8); bad bytes are dropped
      continue;
    }
    if (!guard::is_invisible(cp)) out.append(text.substr(i, len));
    i += len;
  }
  return out;
}

Result<std::unique_ptr<guard::InjectionDetector>> load_injection_detector(const std::string& path, bool* rules_only) {
  if (rules_only != nullptr) *rules_only = path.empty();
  guard::InjectionModel model;
  if (path.empty()) {
    model.n_buckets = 1;
    model.weights.assign(1, 0.0f);
    model.bias = -4.0f;
    model.threshold = 0.5f;
    model.rule_weights.assign(guard::injection_rule_names().size(), 4.5f);
    model.rule_floors.assign(guard::injection_rule_names().size(), 0.0f);
    return guard::InjectionDetector::create(std::move(model));
  }
  constexpr size_t kMaxModelBytes = 64u << 20;
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return Status::not_found("cannot open injection model {}", path);
  const auto size = in.tellg();
  if (size < 0) return Status::internal("cannot size injection model {}", path);
  if (static_cast<size_t>(size) > kMaxModelBytes) {
    return Status::resource_exhausted("injection model {} exceeds {} bytes", path, kMaxModelBytes);
  }
  std::string bytes(static_cast<size_t>(size), '\0');
  in.seekg(0);
  in.read(bytes.data(), size);
  if (!in) return Status::internal("cannot read injection model {}", path);
  auto parsed = guard::InjectionModel::parse(std::span(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()));
  if (!parsed.has_value()) return parsed.error().with_context(path);
  return guard::InjectionDetector::create(std::move(parsed).value());
}

}  // namespace ztslm::server
