#include "core/byte_reader.h"

#include <gtest/gtest.h>

#include <array>

#include "core/byte_writer.h"
#include "core/checked_math.h"

namespace ztslm {
namespace {

TEST(ByteReaderTest, ReadsLittleEndianIntegers) {
  const std::array<uint8_t, 7> raw{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
  ByteReader r(as_bytes(raw.data(), raw.size()));
  uint32_t a = 0;
  uint16_t b = 0;
  ASSERT_TRUE(r.read_u32_le(&a));
  ASSERT_TRUE(r.read_u16_le(&b));
  EXPECT_EQ(a, 0x04030201u);
  EXPECT_EQ(b, 0x0605u);
  EXPECT_EQ(r.size(), 1u);
  EXPECT_EQ(r.offset(), 6u);
}

TEST(ByteReaderTest, ShortReadLeavesReaderUnchanged) {
  const std::array<uint8_t, 3> raw{1, 2, 3};
  ByteReader r(as_bytes(raw.data(), raw.size()));
  uint32_t v = 0xDEADBEEF;
  EXPECT_FALSE(r.read_u32_le(&v));
  EXPECT_EQ(v, 0xDEADBEEFu);
  EXPECT_EQ(r.offset(), 0u);
  EXPECT_EQ(r.size(), 3u);
}

TEST(ByteReaderTest, PrefixedReadIsBoundedAndAtomic) {
  ByteWriter w;
  w.put_u64_le(3);
  w.put_string("abcXY");
  ByteReader r(w.bytes());
  ByteReader sub;
  ASSERT_TRUE(r.read_prefixed_u64_le(&sub));
  EXPECT_EQ(sub.as_string_view(), "abc");
  EXPECT_EQ(r.as_string_view(), "XY");

  ByteWriter w2;
  w2.put_u64_le(100);  // longer than what follows
  w2.put_string("abc");
  ByteReader r2(w2.bytes());
  EXPECT_FALSE(r2.read_prefixed_u64_le(&sub));
  EXPECT_EQ(r2.offset(), 0u);
}

TEST(ByteReaderTest, HugePrefixDoesNotWrap) {
  ByteWriter w;
  w.put_u64_le(~uint64_t{0});
  w.put_string("abc");
  ByteReader r(w.bytes());
  ByteReader sub;
  EXPECT_FALSE(r.read_prefixed_u64_le(&sub));
  EXPECT_FALSE(r.skip(~size_t{0}));
  EXPECT_EQ(r.offset(), 0u);
}

TEST(CheckedMathTest, DetectsOverflow) {
  uint64_t out = 0;
  EXPECT_TRUE(checked_add<uint64_t>(1, 2, &out));
  EXPECT_EQ(out, 3u);
  EXPECT_FALSE(checked_add<uint64_t>(~uint64_t{0}, 1, &out));
  EXPECT_FALSE(checked_mul<uint64_t>(uint64_t{1} << 33, uint64_t{1} << 33, &out));
  int64_t s = 0;
  EXPECT_FALSE(checked_mul<int64_t>(int64_t{1} << 62, 4, &s));
  EXPECT_TRUE(checked_align_up(33, 32, &out));
  EXPECT_EQ(out, 64u);
  EXPECT_FALSE(checked_align_up(~uint64_t{0} - 3, 32, &out));
  EXPECT_TRUE(is_power_of_two(32));
  EXPECT_FALSE(is_power_of_two(0));
  EXPECT_FALSE(is_power_of_two(48));
}

}  // namespace
}  // namespace ztslm
