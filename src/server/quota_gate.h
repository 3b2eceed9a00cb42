// Adapter: policy::QuotaStore (state_dir/quotas.db) as the pipeline's QuotaGate, with the
// limits of each quota class from the config (`quotas.classes`).
#pragma once

#include <memory>

#include "policy/quota.h"
#include "server/config/config.h"
#include "server/stages.h"

namespace ztslm::server {

class StoreQuotaGate final : public QuotaGate {
 public:
  // `store` must outlive the gate and every ticket it hands out.
  StoreQuotaGate(policy::QuotaStore& store, QuotaConfig cfg) : store_(&store), cfg_(std::move(cfg)) {}

  // Reserves `max_tokens` plus the prompt estimate for the principal and its tenant under the
  // limits of `quota_class`. A class the config does not define is refused (403): a policy
  // and a config that disagree fail closed.
  QuotaVerdict admit(const QuotaAsk& ask) override;

  // Tokens reserved for a prompt of `prompt_bytes` in `n_messages` messages (settled with the
  // real count at the end): a third of the bytes plus chat-template overhead.
  static uint64_t prompt_token_estimate(size_t prompt_bytes, size_t n_messages);

 private:
  policy::QuotaStore* store_;
  QuotaConfig cfg_;
};

}  // namespace ztslm::server
