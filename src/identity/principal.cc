#include "identity/principal.h"

#include <algorithm>
#include <chrono>

namespace ztslm::identity {

std::string_view auth_method_name(AuthMethod method) {
  switch (method) {
    case AuthMethod::kApiKey: return "api_key";
    case AuthMethod::kJwt: return "jwt";
    case AuthMethod::kMtls: return "mtls";
  }
  return "unknown";
}

bool Principal::has_role(std::string_view role) const {
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

int64_t system_unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace ztslm::identity
