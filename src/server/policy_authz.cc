#include "server/policy_authz.h"

#include "policy/json.h"

namespace ztslm::server {

Result<Decision> PolicyAuthorizer::authorize(const nlohmann::json& input) {
  // The input is ours (built by build_policy_input); its text form is the policy's JSON.
  auto value = policy::parse_json(input.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  if (!value.has_value()) return value.error();
  const policy::Decision pd = pdp_->decide(*value);
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
