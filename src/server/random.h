// Random identifiers and secrets from the OpenSSL CSPRNG.
#pragma once

#include <string>

namespace ztslm::server {

// `n_bytes` random bytes as lowercase hex (2 * n_bytes characters). Aborts if the RNG fails.
std::string random_hex(size_t n_bytes);
// `n_bytes` random bytes as unpadded base64url.
std::string random_base64url(size_t n_bytes);

}  // namespace ztslm::server
