// Principal: the authenticated caller every later pipeline stage (policy, quotas, sessions,
// audit) works with. Produced only by identity/ after a credential verified.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ztslm::identity {

// How the caller proved who it is.
enum class AuthMethod { kApiKey, kJwt, kMtls };

// "api_key", "jwt" or "mtls" (the audit log and policy input use these names).
std::string_view auth_method_name(AuthMethod method);

struct Principal {
  std::string id;                 // stable subject: "apikey:<key id>", "<iss>#<sub>", SPIFFE ID
  std::string tenant;             // isolation boundary for sessions, KV cache and quotas
  std::vector<std::string> roles; // sorted, unique
  std::map<std::string, std::string> attributes;  // method-specific facts (key_id, kid, iss...)
  AuthMethod method = AuthMethod::kApiKey;

  // True when `role` is one of `roles`.
  bool has_role(std::string_view role) const;
};

// Seconds since the Unix epoch. Injected everywhere a decision depends on time so tests never
// sleep.
using UnixClock = std::function<int64_t()>;

// The system wall clock as a UnixClock.
int64_t system_unix_now();

}  // namespace ztslm::identity
