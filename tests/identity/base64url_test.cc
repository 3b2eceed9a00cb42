#include "identity/base64url.h"

#include "test_util.h"

namespace ztslm::identity {
namespace {

TEST(Base64UrlTest, RoundTripsAllLengths) {
  std::string bytes;
  for (int i = 0; i < 40; ++i) {
    const std::string enc = base64url_encode(bytes);
    EXPECT_EQ(enc.find('='), std::string::npos);
    auto dec = base64url_decode(enc, 1024);
    ASSERT_THAT(dec, IsOk()) << i;
    EXPECT_EQ(*dec, bytes);
    bytes.push_back(static_cast<char>(i * 37 + 200));
  }
}

TEST(Base64UrlTest, RejectsEachDefect) {
  struct Case {
    const char* name;
    std::string text;
    StatusCode expected;
  } const cases[] = {
      {"padding", "Zm8=", StatusCode::kMalformed},
      {"plus", "a+b_", StatusCode::kMalformed},
      {"slash", "a/b_", StatusCode::kMalformed},
      {"space", "Zm9v Zm9v", StatusCode::kMalformed},
      {"newline", "Zm9v\n", StatusCode::kMalformed},
      {"length 1 mod 4", "Zm9vZ", StatusCode::kMalformed},
      {"non-zero trailing bits (2 chars)", "Zh", StatusCode::kMalformed},
      {"non-zero trailing bits (3 chars)", "Zm9", StatusCode::kMalformed},
      {"nul", std::string("Zm\0v", 4), StatusCode::kMalformed},
      {"too long", std::string(2000, 'A'), StatusCode::kResourceExhausted},
  };
  for (const auto& c : cases) EXPECT_THAT(base64url_decode(c.text, 1000), StatusIs(c.expected)) << c.name;
}

TEST(Base64UrlTest, KnownAnswers) {
  EXPECT_EQ(*base64url_decode("Zm9v", 10), "foo");
  EXPECT_EQ(*base64url_decode("Zg", 10), "f");
  EXPECT_EQ(*base64url_decode("", 10), "");
  EXPECT_EQ(base64url_encode(std::string("\xfb\xff", 2)), "-_8");
}

}  // namespace
}  // namespace ztslm::identity
