#include "engine/tokenizer/unicode_tables.h"

#include "engine/tokenizer/pre_tokenizer.h"
#include "test_util.h"

namespace ztslm::engine::tokenizer {
namespace {

TEST(UnicodeTablesTest, RangesAreSortedAndCoverAllCodePoints) {
  ASSERT_GT(kUnicodeRangeCount, 1000u);
  EXPECT_EQ(kUnicodeRanges[0].first, 0u);
  for (size_t i = 1; i < kUnicodeRangeCount; ++i) {
    ASSERT_LT(kUnicodeRanges[i - 1].first, kUnicodeRanges[i].first) << i;
    ASSERT_NE(kUnicodeRanges[i - 1].flags, kUnicodeRanges[i].flags) << i;
  }
  EXPECT_LE(kUnicodeRanges[kUnicodeRangeCount - 1].first, 0x10FFFFu);
}

TEST(UnicodeTablesTest, CategoriesOfKnownCodePoints) {
  EXPECT_EQ(codepoint_flags('A'), kFlagLetter);
  EXPECT_EQ(codepoint_flags('7'), kFlagNumber);
  EXPECT_EQ(codepoint_flags('$'), kFlagSymbol);
  EXPECT_EQ(codepoint_flags('!'), kFlagPunctuation);
  EXPECT_EQ(codepoint_flags(' '), kFlagSeparator | kFlagWhitespace);
  EXPECT_EQ(codepoint_flags('\n'), kFlagControl | kFlagWhitespace);
  EXPECT_EQ(codepoint_flags(0xB2), kFlagNumber);     // ² (No)
  EXPECT_EQ(codepoint_flags(0xBD), kFlagNumber);     // ½ (No)
  EXPECT_EQ(codepoint_flags(0x200B), kFlagControl);  // zero-width space: Cf, not whitespace
  EXPECT_EQ(codepoint_flags(0xA0), kFlagSeparator | kFlagWhitespace);
  EXPECT_EQ(codepoint_flags(0x85), kFlagControl | kFlagWhitespace);
  EXPECT_EQ(codepoint_flags(0x0301), kFlagMark);
  EXPECT_EQ(codepoint_flags(0x4E2D), kFlagLetter);   // 中
  EXPECT_EQ(codepoint_flags(0x1F680), kFlagSymbol);  // 🚀
  EXPECT_EQ(codepoint_flags(0x0378), kFlagUndefined);
  EXPECT_EQ(codepoint_flags(0x2EBF0), kFlagLetter);  // CJK Ext I (Unicode 15.1)
  EXPECT_EQ(codepoint_flags(0x31EF), kFlagSymbol);   // Unicode 15.1
  EXPECT_EQ(codepoint_flags(0xE000), kFlagControl);  // private use
  EXPECT_EQ(codepoint_flags(0x10FFFF), kFlagUndefined);
  EXPECT_EQ(codepoint_flags(0x110000), 0);
  int n_space = 0;
  for (char32_t cp = 0; cp < 0x110000; ++cp) n_space += (codepoint_flags(cp) & kFlagWhitespace) != 0;
  EXPECT_EQ(n_space, 25);
}

std::vector<std::u32string> split(PreTokenizer pre, const std::u32string& text) {
  std::vector<size_t> ends, scratch;
  pre_tokenize(pre, std::span<const char32_t>(text.data(), text.size()), ends, scratch);
  std::vector<std::u32string> out;
  size_t begin = 0;
  for (const size_t end : ends) {
    out.push_back(text.substr(begin, end - begin));
    begin = end;
  }
  EXPECT_EQ(begin, text.size());
  return out;
}

TEST(PreTokenizerTest, Llama3Rules) {
  using V = std::vector<std::u32string>;
  EXPECT_EQ(split(PreTokenizer::kLlama3, U"I'VE 12345 (abc)  x\n\n y  "),
            (V{U"I", U"'VE", U" ", U"123", U"45", U" (", U"abc", U")", U" ", U" x", U"\n\n",
               U" y", U"  "}));
  EXPECT_EQ(split(PreTokenizer::kQwen2, U"a 123"), (V{U"a", U" ", U"1", U"2", U"3"}));
  EXPECT_EQ(split(PreTokenizer::kGpt2, U"I'VE 12  x"), (V{U"I", U"'", U"VE", U" 12", U" ", U" x"}));
  EXPECT_EQ(split(PreTokenizer::kStarcoder, U"ab12 c3"), (V{U"ab", U"1", U"2", U" c", U"3"}));
  EXPECT_TRUE(split(PreTokenizer::kLlama3, U"").empty());
}

}  // namespace
}  // namespace ztslm::engine::tokenizer
