#include "core/secure.h"

#include <gtest/gtest.h>

#include <array>

namespace ztslm {
namespace {

TEST(SecureTest, ConstantTimeEqualityComparesContentAndLength) {
  EXPECT_TRUE(ct_equal("zt_secret", "zt_secret"));
  EXPECT_FALSE(ct_equal("zt_secret", "zt_secreT"));
  EXPECT_FALSE(ct_equal("zt_secret", "zt_secre"));
  EXPECT_TRUE(ct_equal("", ""));
}

TEST(SecureTest, SecureZeroWipes) {
  std::array<unsigned char, 16> buf;
  buf.fill(0xAB);
  secure_zero(buf.data(), buf.size());
  for (unsigned char c : buf) EXPECT_EQ(c, 0);
  secure_zero(nullptr, 0);  // no-op
}

}  // namespace
}  // namespace ztslm
