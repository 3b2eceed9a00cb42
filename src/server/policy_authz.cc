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
  return d;
}

Status load_policy(policy::DecisionPoint& pdp, const std::string& path) {
  if (path.empty()) return pdp.load(default_policy_files(), policy::Value::empty_object());
  ZTSLM_ASSIGN_OR_RETURN(auto files, policy::read_policy_files({path}));
  return pdp.load(files, policy::Value::empty_object());
}

}  // namespace ztslm::server
