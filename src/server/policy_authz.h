// Adapter: policy::DecisionPoint (Rego, default query data.ztslm.authz) as the pipeline's
// Authorizer. Obligation `max_tokens` becomes the decision's cap.
#pragma once

#include <string>
#include <vector>

#include "policy/decision.h"
#include "server/stages.h"

namespace ztslm::server {

class PolicyAuthorizer final : public Authorizer {
 public:
  explicit PolicyAuthorizer(const policy::DecisionPoint& pdp) : pdp_(&pdp) {}
  Result<Decision> authorize(const nlohmann::json& input) override;

 private:
  const policy::DecisionPoint* pdp_;
};

// The policy's value of a JSON document (what parsing its JSON text would give; strings with
// invalid UTF-8 get U+FFFD, non-finite numbers become null).
policy::Value policy_value(const nlohmann::json& j);

// The shipped policy (policy/default.rego and policy/default_test.rego), compiled in.
std::vector<policy::SourceFile> default_policy_files();

// Loads the Rego files under `path` (a file or a directory of *.rego) into `pdp`, or the
// embedded default policy when `path` is ""; their test_ rules must pass.
Status load_policy(policy::DecisionPoint& pdp, const std::string& path);

}  // namespace ztslm::server
