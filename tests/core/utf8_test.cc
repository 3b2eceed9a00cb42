#include "core/utf8.h"

#include <gtest/gtest.h>

namespace ztslm {
namespace {

TEST(Utf8Test, ValidatesWellFormedAndRejectsIllFormed) {
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("\xC3\xA7" "a va \xE4\xBB\x8A\xF0\x9F\x8C\x8D"));
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\x80"));              // stray continuation
  EXPECT_FALSE(is_valid_utf8("\xE4\xBB"));          // truncated
}

TEST(Utf8Test, DecodesAndEncodesRoundTrip) {
  for (char32_t cp : {U'A', U'\u00E7', U'\u4ECA', U'\U0001F30D', U'\u2581'}) {
    std::string s;
    append_utf8(s, cp);
    char32_t back = 0;
    size_t len = 0;
    ASSERT_TRUE(decode_utf8(s, 0, &back, &len));
    EXPECT_EQ(back, cp);
    EXPECT_EQ(len, s.size());
  }
}

TEST(Utf8Test, IncompleteSuffixHoldsBackOnlyPossibleSequences) {
  EXPECT_EQ(utf8_incomplete_suffix("abc"), 0u);
  EXPECT_EQ(utf8_incomplete_suffix("ab\xF0\x9F"), 2u);
  EXPECT_EQ(utf8_incomplete_suffix("ab\xF0\x9F\x8C"), 3u);
  EXPECT_EQ(utf8_incomplete_suffix("ab\xF0\x9F\x8C\x8D"), 0u);
  EXPECT_EQ(utf8_incomplete_suffix("\xE4"), 1u);
  EXPECT_EQ(utf8_incomplete_suffix("\xC0"), 0u);   // can never complete (overlong)
  EXPECT_EQ(utf8_incomplete_suffix("\xED\xA0"), 0u);  // would be a surrogate
  EXPECT_EQ(utf8_valid_prefix("ok\xFFrest"), 2u);
}

TEST(Utf8Test, PrintableEscapesAndTruncates) {
  EXPECT_EQ(printable("abc"), "abc");
  EXPECT_EQ(printable("a\nb"), "a\\x0ab");
  EXPECT_EQ(printable(std::string(100, 'x'), 8), "xxxxxxxx...");
}

}  // namespace
}  // namespace ztslm
