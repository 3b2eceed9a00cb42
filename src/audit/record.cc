#include "audit/record.h"

#include <algorithm>
#include <cmath>

#include "audit/canonical.h"
#include "core/utf8.h"

namespace ztslm::audit {
namespace {

// `s` cut to at most `max` bytes at a UTF-8 boundary, marked with "..." when cut.
std::string clip(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  const size_t keep = max >= 3 ? max - 3 : 0;
  std::string_view head = s.substr(0, keep);
  head.remove_suffix(utf8_incomplete_suffix(head));
  std::string out(head);
  out.append("...");
  return out;
}

Json clipped_list(const std::vector<std::string>& items, const RecordLimits& lim, Json* obj,
                  const char* dropped_key) {
  Json arr = Json::array();
  for (size_t i = 0; i < items.size() && i < lim.max_list_items; ++i) {
    arr.push_back(clip(items[i], lim.max_field_bytes));
  }
  if (items.size() > lim.max_list_items) (*obj)[dropped_key] = items.size() - lim.max_list_items;
  return arr;
}

Json details_json(const std::vector<std::pair<std::string, std::string>>& details,
                  const RecordLimits& lim, Json* obj) {
  Json d = Json::object();
  for (size_t i = 0; i < details.size() && i < lim.max_list_items; ++i) {
    d[clip(details[i].first, 64)] = clip(details[i].second, lim.max_field_bytes);
  }
  if (details.size() > lim.max_list_items) {
    (*obj)["details_dropped"] = details.size() - lim.max_list_items;
  }
  return d;
}

void put_body(Json* obj, const char* name, std::string_view text, const BodyEncoding& enc,
              const RecordLimits& lim) {
  const std::string n(name);
  (*obj)[n + "_bytes"] = text.size();
  switch (enc.mode) {
    case BodyMode::kNone: return;
    case BodyMode::kHmac:
      // SECURITY: the text never reaches the file; without the key the MAC reveals nothing,
      // even for short or guessable prompts.
      if (enc.mac != nullptr) (*obj)[n + "_hmac"] = enc.mac->hex(text);
      return;
    case BodyMode::kPlaintext: {
      std::string_view head = text.substr(0, std::min(text.size(), lim.max_plaintext_bytes));
      head.remove_suffix(utf8_incomplete_suffix(head));
      (*obj)[n] = std::string(head);  // invalid UTF-8 becomes U+FFFD in canonical_dump
      if (head.size() < text.size()) (*obj)[n + "_truncated"] = true;
      return;
    }
  }
}

int64_t thousandths(double v) {
  if (!std::isfinite(v)) return 0;
  const double scaled = v * 1000.0;
  if (scaled > 9.0e18) return INT64_MAX;
  if (scaled < -9.0e18) return INT64_MIN;
  return static_cast<int64_t>(std::llround(scaled));
}

}  // namespace

std::string_view body_mode_name(BodyMode mode) {
  switch (mode) {
    case BodyMode::kNone: return "none";
    case BodyMode::kHmac: return "hmac";
    case BodyMode::kPlaintext: return "plaintext";
  }
  return "none";
}

std::string_view decision_name(Decision d) {
  switch (d) {
    case Decision::kNone: return "none";
    case Decision::kAllow: return "allow";
    case Decision::kDeny: return "deny";
  }
  return "none";
}

std::string encode_request(const RequestRecord& r, const BodyEncoding& bodies,
                           const RecordLimits& lim, int64_t now_us) {
  const size_t f = lim.max_field_bytes;
  Json o = Json::object();
  o["time_us"] = r.time_us != 0 ? r.time_us : now_us;
  o["request_id"] = clip(r.request_id, f);
  o["principal"] = clip(r.principal, f);
  o["tenant"] = clip(r.tenant, f);
  Json auth = {{"method", clip(r.auth_method, f)}};
  if (!r.auth_failure.empty()) auth["failure"] = clip(r.auth_failure, f);
  o["auth"] = std::move(auth);
  if (!r.client.empty()) o["client"] = clip(r.client, f);
  o["method"] = clip(r.method, 16);
  o["route"] = clip(r.route, f);
  if (!r.session_id.empty()) o["session"] = clip(r.session_id, f);
  if (!r.model.name.empty() || !r.model.digest.empty() || !r.model.signer.empty()) {
    o["model"] = {{"name", clip(r.model.name, f)},
                  {"digest", clip(r.model.digest, f)},
                  {"signer", clip(r.model.signer, f)}};
  }
  Json decision = {{"result", std::string(decision_name(r.decision))}};
  decision["reasons"] = clipped_list(r.reasons, lim, &decision, "reasons_dropped");
  o["decision"] = std::move(decision);
  Json findings = Json::object();
  for (size_t i = 0; i < r.findings.size() && i < lim.max_list_items; ++i) {
    // Repeated types add up, so the record holds one count per type.
    Json& slot = findings[clip(r.findings[i].type, 128)];
    slot = (slot.is_null() ? uint64_t{0} : slot.get<uint64_t>()) + r.findings[i].count;
  }
  o["findings"] = std::move(findings);
  if (r.findings.size() > lim.max_list_items) {
    o["findings_dropped"] = r.findings.size() - lim.max_list_items;
  }
  if (r.injection_score >= 0 || !r.guard_reasons.empty() || !r.guard_action.empty()) {
    Json g = Json::object();
    // Records hold integers only: the score in thousandths.
    if (r.injection_score >= 0) {
      g["injection_score_milli"] = static_cast<int64_t>(std::lround(std::min(r.injection_score, 1.0) * 1000.0));
    }
    g["reasons"] = clipped_list(r.guard_reasons, lim, &g, "reasons_dropped");
    if (!r.guard_action.empty()) g["action"] = clip(r.guard_action, f);
    o["guard"] = std::move(g);
  }
  o["tokens"] = {{"in", r.tokens_in}, {"out", r.tokens_out}, {"cached", r.cached_tokens}};
  Json t = Json::object();
  const std::pair<const char*, int64_t> timings[] = {
      {"total", r.timings.total_us}, {"auth", r.timings.auth_us},   {"policy", r.timings.policy_us},
      {"guard", r.timings.guard_us}, {"queue", r.timings.queue_us}, {"model", r.timings.model_us},
      {"ttft", r.timings.ttft_us},   {"overhead", r.timings.overhead_us}};
  for (const auto& [name, us] : timings) {
    if (us >= 0) t[name] = us;
  }
  o["timings_us"] = std::move(t);
  o["status"] = r.status;
  put_body(&o, "prompt", r.prompt, bodies, lim);
  put_body(&o, "response", r.response, bodies, lim);
  return canonical_dump(o);
}

std::string encode_admin(const AdminRecord& r, const RecordLimits& lim, int64_t now_us) {
  const size_t f = lim.max_field_bytes;
  Json o = Json::object();
  o["time_us"] = r.time_us != 0 ? r.time_us : now_us;
  o["request_id"] = clip(r.request_id, f);
  o["principal"] = clip(r.principal, f);
  o["tenant"] = clip(r.tenant, f);
  o["auth"] = {{"method", clip(r.auth_method, f)}};
  o["action"] = clip(r.action, f);
  o["target"] = clip(r.target, f);
  Json decision = {{"result", std::string(decision_name(r.decision))}};
  decision["reasons"] = clipped_list(r.reasons, lim, &decision, "reasons_dropped");
  o["decision"] = std::move(decision);
  o["status"] = r.status;
  o["details"] = details_json(r.details, lim, &o);
  return canonical_dump(o);
}

std::string encode_system(const SystemEvent& e, const RecordLimits& lim, int64_t now_us) {
  Json o = Json::object();
  o["time_us"] = e.time_us != 0 ? e.time_us : now_us;
  o["event"] = clip(e.event, lim.max_field_bytes);
  o["details"] = details_json(e.details, lim, &o);
  return canonical_dump(o);
}

std::string encode_anomaly(const AnomalyEvent& e, const RecordLimits& lim, int64_t now_us) {
  Json o = Json::object();
  o["time_us"] = e.time_us != 0 ? e.time_us : now_us;
  o["principal"] = clip(e.principal, lim.max_field_bytes);
  o["tenant"] = clip(e.tenant, lim.max_field_bytes);
  o["signal"] = clip(e.signal, 64);
  o["observed_milli"] = thousandths(e.observed);
  o["baseline_milli"] = thousandths(e.baseline);
  o["threshold_milli"] = thousandths(e.threshold);
  return canonical_dump(o);
}

}  // namespace ztslm::audit
