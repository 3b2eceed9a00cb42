// Test helper: a file's bytes in a sealed memfd, as `ztslm serve` hands a verified model to its
// engines (the tests here skip the verification).
#pragma once

#include <fstream>
#include <iterator>
#include <string>

#include "core/byte_reader.h"
#include "sandbox/memfd.h"
#include "test_util.h"

namespace ztslm::testing {

inline sandbox::UniqueFd sealed_copy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto w = sandbox::SealedMemfdWriter::create("model", bytes.size());
  EXPECT_TRUE(w.has_value());
  EXPECT_THAT(w->append(as_bytes(bytes)), IsOk());
  auto fd = w->seal();
  EXPECT_TRUE(fd.has_value());
  return std::move(fd).value();
}

}  // namespace ztslm::testing
