#include "server/policy_authz.h"

#include <cmath>
#include <limits>

#include "core/utf8.h"

namespace ztslm::server {

namespace {

// A string as the policy sees it: valid UTF-8, each invalid byte replaced by U+FFFD.
std::string policy_string(const std::string& s) {
  if (is_valid_utf8(s)) return s;
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    size_t len = 0;
    if (decode_utf8(s, i, &cp, &len)) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

}  // namespace

policy::Value policy_value(const nlohmann::json& j) {
  using policy::Value;
  switch (j.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
    case nlohmann::json::value_t::binary:
      return Value::null();
    case nlohmann::json::value_t::boolean:
      return Value::boolean(j.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value::integer(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return Value::integer(static_cast<int64_t>(u));
      return Value::number(static_cast<double>(u));
    }
    case nlohmann::json::value_t::number_float: {
      const double d = j.get<double>();
      return std::isfinite(d) ? Value::number(d) : Value::null();  // as JSON text would carry it
    }
    case nlohmann::json::value_t::string:
      return Value::string(policy_string(j.get_ref<const std::string&>()));
    case nlohmann::json::value_t::array: {
      policy::Array items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(policy_value(e));
      return Value::array(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      policy::Entries entries;
      entries.reserve(j.size());
      for (const auto& [k, v] : j.items()) entries.emplace_back(Value::string(policy_string(k)), policy_value(v));
      return Value::object(std::move(entries));
    }
  }
  return Value::null();
}

Result<Decision> PolicyAuthorizer::authorize(const nlohmann::json& input) {
  // The input is ours (built by build_policy_input): converted in memory, no JSON text between.
  const policy::Decision pd = pdp_->decide(policy_value(input));
  Decision d;
  d.allow = pd.allow && pd.error.ok();
  d.reasons = pd.reasons;
  if (!pd.error.ok()) d.reasons.push_back("policy error: " + pd.error.to_string());
  const policy::Value cap = pd.obligations.get("max_tokens");
  if (cap.is_int() && cap.as_int() > 0) {
    d.max_tokens_cap = static_cast<uint32_t>(std::min<int64_t>(cap.as_int(), UINT32_MAX));
  }
  const policy::Value qc = pd.obligations.get("quota_class");
  if (qc.is_string()) d.quota_class = std::string(qc.as_string());
  // Guard obligations. SECURITY: an obligation the gateway cannot read is a deny, never an
  // obligation silently dropped.
  auto bad = [&d](std::string_view what) {
    d.allow = false;
    d.reasons.push_back("policy error: obligation '" + std::string(what) + "' has the wrong type");
  };
  if (const policy::Value v = pd.obligations.get("guard_profile"); v.is_defined()) {
    if (v.is_string()) d.guard_profile = v.as_string();
    else bad("guard_profile");
  }
  if (const policy::Value v = pd.obligations.get("injection_threshold"); v.is_defined()) {
    const double t = v.is_number() ? v.as_double() : -1.0;
    if (t > 0 && t <= 1) d.injection_threshold = t;
    else bad("injection_threshold");
  }
  if (const policy::Value v = pd.obligations.get("redact"); v.is_defined()) {
    if (!v.is_object()) {
      bad("redact");
    } else {
      for (const auto& [k, a] : v.entries()) {
        if (!k.is_string() || !a.is_string()) {
          bad("redact");
          break;
        }
        d.redact[k.as_string()] = a.as_string();
      }
    }
  }
  for (const char* name : {"spotlight", "strip", "canary"}) {
    const policy::Value v = pd.obligations.get(name);
    if (!v.is_defined()) continue;
    if (!v.is_bool()) {
      bad(name);
      continue;
    }
    const std::string_view n = name;
    (n == "spotlight" ? d.spotlight : n == "strip" ? d.strip : d.canary) = v.as_bool() ? 1 : 0;
  }
  return d;
}

Status load_policy(policy::DecisionPoint& pdp, const std::string& path) {
  if (path.empty()) return pdp.load(default_policy_files(), policy::Value::empty_object());
  ZTSLM_ASSIGN_OR_RETURN(auto files, policy::read_policy_files({path}));
  return pdp.load(files, policy::Value::empty_object());
}

}  // namespace ztslm::server
