// SHA-256 (FIPS 180-4) for manifests of the guard's own files (training data, model files).
// Not for secrets or signatures: those use the OpenSSL-backed code of identity/ and provenance/.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace ztslm::guard {

class Sha256 final {
 public:
  Sha256();
  void update(std::string_view data);
  std::array<uint8_t, 32> finish();

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

}  // namespace ztslm::guard
