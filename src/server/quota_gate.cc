#include "server/quota_gate.h"

#include "core/utf8.h"

namespace ztslm::server {
namespace {

class StoreTicket final : public QuotaTicket {
 public:
  explicit StoreTicket(policy::QuotaLease lease) : lease_(std::move(lease)) {}
  void settle(uint64_t used_tokens) override { lease_.settle(used_tokens); }
  void refund() override { lease_.refund(); }

 private:
  policy::QuotaLease lease_;  // settles itself with the whole reservation when dropped
};

}  // namespace

uint64_t StoreQuotaGate::prompt_token_estimate(size_t prompt_bytes, size_t n_messages) {
  return static_cast<uint64_t>(prompt_bytes) / 3 + 8 * static_cast<uint64_t>(n_messages) + 8;
}

QuotaVerdict StoreQuotaGate::admit(const QuotaAsk& ask) {
  QuotaVerdict v;
  const std::string_view cls = ask.quota_class.empty() ? std::string_view("default") : ask.quota_class;
  auto it = cfg_.classes.find(std::string(cls));
  if (it == cfg_.classes.end()) {
    v.reason = "quota:unknown_class:" + printable(cls, 32);
    return v;
  }
  policy::QuotaRequest r;
  r.tenant = ask.principal->tenant;
  r.principal = ask.principal->id;
  r.principal_limits = it->second.principal;
  r.tenant_limits = it->second.tenant;
  r.reserve_tokens = ask.max_tokens + prompt_token_estimate(ask.prompt_bytes, ask.n_messages);
  r.now_unix = ask.unix_time;
  policy::QuotaDenial denial;
  auto lease = store_->admit(r, denial);
  if (!lease.has_value()) {
    if (lease.error().code() == StatusCode::kResourceExhausted) {
      v.reason = denial.reason();
      v.retry_after_s = denial.retry_after_s;
    } else {
      v.reason = "quota:error";
      v.error = lease.error();
    }
    return v;
  }
  v.allow = true;
  v.ticket = std::make_unique<StoreTicket>(std::move(lease).value());
  return v;
}

}  // namespace ztslm::server
