// Helpers shared by the unit tests: the ../shared fixture folder, Status matchers.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/result.h"

namespace ztslm::testing {

// The ../shared folder next to the checkout, or "" when it is absent.
inline std::string shared_dir() {
  const char* env = std::getenv("ZTSLM_SHARED_DIR");
  std::string dir = env != nullptr ? env : ZTSLM_SHARED_DIR;
  std::error_code ec;
  return std::filesystem::is_directory(dir + "/testdata", ec) ? dir : std::string();
}

// Path of `rel` under ../shared/testdata ("models/tiny-qwen2-F32.gguf").
inline std::string testdata_path(const std::string& rel) { return shared_dir() + "/testdata/" + rel; }

// Path of `rel` under the repository's tests/data.
inline std::string repo_data_path(const std::string& rel) {
  return std::string(ZTSLM_SOURCE_DIR) + "/tests/data/" + rel;
}

}  // namespace ztslm::testing

// Skips the current test with a clear message when ../shared is not there.
#define ZTSLM_REQUIRE_SHARED()                                                        \
  do {                                                                                \
    if (::ztslm::testing::shared_dir().empty())                                       \
      GTEST_SKIP() << "../shared/testdata not found (set ZTSLM_SHARED_DIR); skipping"; \
  } while (0)

// EXPECT_THAT(result_or_status, StatusIs(StatusCode::kMalformed))
MATCHER_P(StatusIs, code, "has status code " + std::string(::ztslm::status_code_name(code))) {
  const ::ztslm::Status s = ::ztslm::internal_error(arg);
  *result_listener << "status is " << s.to_string();
  return s.code() == code;
}
MATCHER(IsOk, "is ok") {
  const ::ztslm::Status s = ::ztslm::internal_error(arg);
  *result_listener << "status is " << s.to_string();
  return s.ok();
}
