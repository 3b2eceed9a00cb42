// Malformed-input tests: one row per defect (specific StatusCode and message), truncations at
// every byte offset, and single-byte corruptions of a small valid file.
#include <functional>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "gguf/writer.h"
#include "gguf_test_util.h"
#include "test_util.h"

namespace ztslm::gguf {
namespace {

using testing::RawGguf;

constexpr int32_t kTypeU32 = static_cast<int32_t>(ValueType::kUint32);
constexpr int32_t kTypeString = static_cast<int32_t>(ValueType::kString);
constexpr int32_t kTypeArray = static_cast<int32_t>(ValueType::kArray);
constexpr uint32_t kF32 = 0;
constexpr uint32_t kQ8_0 = 8;

struct DefectCase {
  std::string name;
  std::vector<std::byte> bytes;
  StatusCode expected;
  std::string message;  // substring of the status message
  Limits limits = Limits();
};

// A header announcing one kv and no tensors; the row appends the (defective) kv.
RawGguf one_kv() { return std::move(RawGguf().header(0, 1)); }

// Two F32 tensors of 4 elements (16 bytes each, padded to 32) with the given offsets.
std::vector<std::byte> two_tensors(uint64_t off_a, uint64_t off_b) {
  return RawGguf()
      .header(2, 0)
      .tinfo("a", {4}, kF32, off_a)
      .tinfo("b", {4}, kF32, off_b)
      .pad_to(32)
      .zeros(64)
      .bytes();
}

std::vector<std::byte> one_tensor(std::string_view name, std::initializer_list<int64_t> ne,
                                  uint32_t type, size_t data_bytes = 64) {
  return RawGguf().header(1, 0).tinfo(name, ne, type, 0).pad_to(32).zeros(data_bytes).bytes();
}

std::vector<DefectCase> defect_cases() {
  const StatusCode M = StatusCode::kMalformed;
  const StatusCode R = StatusCode::kResourceExhausted;
  std::vector<DefectCase> c;
  // Header.
  c.push_back({"empty file", {}, M, "truncated header"});
  c.push_back({"truncated header", RawGguf().header(0, 0).bytes(), M, ""});
  c.back().bytes.resize(13);
  c.back().message = "truncated header";
  c.push_back({"bad magic", RawGguf().header(0, 0, 3, 0x4C4D4747).bytes(), M, "bad magic"});
  c.push_back({"version 0", RawGguf().header(0, 0, 0).bytes(), M, "version 0"});
  c.push_back({"version 1", RawGguf().header(0, 0, 1).bytes(), M, "version 1"});
  c.push_back({"version 4", RawGguf().header(0, 0, 4).bytes(), M, "version 4"});
  c.push_back({"byte-swapped v3", RawGguf().header(0, 0, 0x03000000).bytes(), M, "byte-swapped"});
  c.push_back({"negative tensor count", RawGguf().header(-1, 0).bytes(), M, "negative tensor count"});
  c.push_back({"negative kv count", RawGguf().header(0, -5).bytes(), M, "negative metadata count"});
  c.push_back({"huge tensor count", RawGguf().header(int64_t{1} << 40, 0).bytes(), R,
               "tensor count 1099511627776 exceeds limit 65536"});
  c.push_back({"huge kv count", RawGguf().header(0, int64_t{1} << 62).bytes(), R,
               "metadata count 4611686018427387904 exceeds limit 4096"});
  c.push_back({"kv count past eof", RawGguf().header(0, 100).kv_u32("a", 1).bytes(), M,
               "metadata count 100 cannot fit"});
  c.push_back({"tensor count past eof", RawGguf().header(1000, 0).zeros(100).bytes(), M,
               "tensor count 1000 cannot fit"});
  // Keys.
  c.push_back({"empty key", one_kv().kv_u32("", 1).bytes(), M, "empty metadata key"});
  c.push_back({"bad utf-8 key", one_kv().kv_u32("a\xC0\x80", 1).bytes(), M,
               "metadata key a\\xc0\\x80 is not valid utf-8"});
  c.push_back({"duplicate key", RawGguf().header(0, 2).kv_u32("dup", 1).kv_u32("dup", 2).bytes(),
               M, "duplicate metadata key dup"});
  c.push_back({"key over limit", one_kv().kv_u32(std::string(300, 'k'), 1).bytes(), R,
               "metadata key length 300 exceeds limit 256"});
  c.push_back({"key length past eof", one_kv().u64(50).zeros(10).bytes(), M,
               "metadata key length 50 runs past end of file (10 bytes left)"});
  // Values.
  c.push_back({"unknown value type", one_kv().str("k").i32(13).u32(0).bytes(), M,
               "metadata key k has unknown value type 13"});
  c.push_back({"negative value type", one_kv().str("k").i32(-1).u32(0).bytes(), M,
               "unknown value type -1"});
  c.push_back({"missing value type", one_kv().str("kkkkkkkkk").bytes(), M,
               "truncated value type of metadata key kkkkkkkkk"});
  c.push_back({"truncated u32 value", one_kv().str("k").i32(kTypeU32).u8(1).bytes(), M,
               "truncated u32 value of metadata key k"});
  c.push_back({"nested array", one_kv().str("k").i32(kTypeArray).i32(kTypeArray).u64(1).bytes(), M,
               "metadata key k holds a nested array"});
  c.push_back({"unknown array element type",
               one_kv().str("k").i32(kTypeArray).i32(42).u64(1).u32(0).bytes(), M,
               "array of metadata key k has unknown element type 42"});
  c.push_back({"array count over limit",
               one_kv().str("k").i32(kTypeArray).i32(kTypeU32).u64(uint64_t{1} << 40).bytes(), R,
               "array count 1099511627776 of metadata key k exceeds limit 4194304"});
  c.push_back({"array count past eof",
               one_kv().str("k").i32(kTypeArray).i32(kTypeU32).u64(1000).u32(1).u32(2).bytes(), M,
               "array of 1000 elements of metadata key k runs past end of file"});
  c.push_back({"string array element past eof",
               one_kv().str("k").i32(kTypeArray).i32(kTypeString).u64(2).str("ok").u64(9).bytes(),
               M, "string array element length 9 runs past end of file"});
  c.push_back({"string length past eof", one_kv().str("k").i32(kTypeString).u64(10).u32(0).bytes(),
               M, "string value length 10 runs past end of file (4 bytes left)"});
  c.push_back({"string length over limit",
               one_kv().str("k").i32(kTypeString).u64(uint64_t{1} << 40).bytes(), R,
               "string value length 1099511627776 exceeds limit 16777216"});
  c.push_back({"truncated string length", one_kv().str("k").i32(kTypeString).u32(3).bytes(), M,
               "truncated string value length"});
  {
    Limits small;
    small.max_metadata_bytes = 1000;
    RawGguf r;
    r.header(0, 1).str("big").i32(kTypeArray).i32(kTypeU32).u64(300);
    for (int i = 0; i < 300; ++i) r.u32(0);
    c.push_back({"metadata over budget", r.bytes(), R, "metadata size exceeds limit 1000 bytes at key big",
                 small});
  }
  // general.alignment.
  c.push_back({"alignment not a power of two",
               RawGguf().header(0, 1).kv_u32("general.alignment", 48).bytes(), M,
               "general.alignment 48 is not a non-zero power of two"});
  c.push_back({"alignment zero", RawGguf().header(0, 1).kv_u32("general.alignment", 0).bytes(), M,
               "general.alignment 0 is not"});
  c.push_back({"alignment wrong type", RawGguf().header(0, 1).kv_i32("general.alignment", 32).bytes(),
               M, "metadata key general.alignment has type i32, expected u32"});
  // Tensor infos.
  c.push_back({"tensor name too long", one_tensor(std::string(64, 'n'), {4}, kF32), M,
               "length 64 exceeds limit 63"});
  c.push_back({"empty tensor name", one_tensor("", {4}, kF32), M, "empty tensor name"});
  c.push_back({"bad utf-8 tensor name", one_tensor("w\xFF", {4}, kF32), M,
               "tensor name w\\xff is not valid utf-8"});
  c.push_back({"duplicate tensor name",
               RawGguf().header(2, 0).tinfo("w", {4}, kF32, 0).tinfo("w", {4}, kF32, 32).pad_to(32)
                   .zeros(64).bytes(),
               M, "duplicate tensor name w"});
  c.push_back({"n_dims 5", one_tensor("w", {1, 1, 1, 1, 1}, kF32), M, "tensor w has 5 dimensions"});
  c.push_back({"negative dimension", one_tensor("w", {4, -1}, kF32), M,
               "tensor w dimension 1 is negative"});
  c.push_back({"dimension over limit", one_tensor("w", {int64_t{1} << 40}, kF32), R,
               "tensor w dimension 0 size 1099511627776 exceeds limit 4294967296"});
  c.push_back({"element count overflow",
               one_tensor("w", {int64_t{1} << 32, int64_t{1} << 32, int64_t{1} << 32}, kF32), M,
               "tensor w element count overflows"});
  c.push_back({"byte size overflow", one_tensor("w", {int64_t{1} << 32, int64_t{1} << 29}, kF32),
               M, "tensor w byte size overflows"});
  c.push_back({"tensor bytes over limit", one_tensor("w", {int64_t{1} << 32, 1024}, kF32), R,
               "tensor w size 17592186044416 bytes exceeds limit 1099511627776"});
  c.push_back({"row not whole blocks", one_tensor("w", {31, 2}, kQ8_0), M,
               "tensor w row of 31 elements is not a multiple of the Q8_0 block (32)"});
  c.push_back({"retired tensor type", one_tensor("w", {32}, 4), M, "tensor w has unknown type 4"});
  c.push_back({"unknown tensor type", one_tensor("w", {32}, 99), M, "tensor w has unknown type 99"});
  c.push_back({"negative tensor type", one_tensor("w", {32}, 0xFFFFFFFFu), M,
               "tensor w has unknown type -1"});
  c.push_back({"first offset not zero", RawGguf().header(1, 0).tinfo("w", {4}, kF32, 32).pad_to(32)
                                            .zeros(64).bytes(),
               M, "tensor w offset 32 is not the expected 0"});
  c.push_back({"misaligned offset", two_tensors(0, 16), M, "tensor b offset 16 is not the expected 32"});
  c.push_back({"overlapping offsets", two_tensors(0, 0), M, "tensor b offset 0 is not the expected 32"});
  c.push_back({"gap between tensors", two_tensors(0, 64), M, "tensor b offset 64"});
  c.push_back({"truncated tensor info", RawGguf().header(1, 0).str("w").u32(2).i64(4).zeros(10)
                                            .bytes(),
               M, "truncated tensor w"});
  c.push_back({"tensor data past eof", one_tensor("w", {64}, kF32, 100), M,
               "tensor w data (256 bytes at offset 0) runs past end of file"});
  c.push_back({"data section past eof", RawGguf().header(1, 0).tinfo("w", {0}, kF32, 0).bytes(), M,
               "data section starts past end of file"});
  // Tokenizer semantics.
  c.push_back({"tokens not strings",
               RawGguf().header(0, 1).str("tokenizer.ggml.tokens").i32(kTypeArray).i32(kTypeU32)
                   .u64(1).u32(0).bytes(),
               M, "metadata key tokenizer.ggml.tokens has type array of u32, expected array of string"});
  c.push_back({"tokens a scalar",
               RawGguf().header(0, 1).kv_string("tokenizer.ggml.tokens", "a").bytes(), M,
               "tokenizer.ggml.tokens has type string"});
  c.push_back({"scores length mismatch",
               RawGguf().header(0, 2).kv_strings("tokenizer.ggml.tokens", {"a", "b", "c"})
                   .kv_f32s("tokenizer.ggml.scores", 2).bytes(),
               M, "metadata key tokenizer.ggml.scores has 2 entries but tokenizer.ggml.tokens has 3"});
  c.push_back({"token_type length mismatch",
               RawGguf().header(0, 2).kv_strings("tokenizer.ggml.tokens", {"a", "b"})
                   .kv_i32s("tokenizer.ggml.token_type", 3).bytes(),
               M, "tokenizer.ggml.token_type has 3 entries but tokenizer.ggml.tokens has 2"});
  c.push_back({"scores vs token_type without tokens",
               RawGguf().header(0, 2).kv_f32s("tokenizer.ggml.scores", 2)
                   .kv_i32s("tokenizer.ggml.token_type", 3).bytes(),
               M, "tokenizer.ggml.token_type has 3 entries but tokenizer.ggml.scores has 2"});
  c.push_back({"scores wrong type",
               RawGguf().header(0, 2).kv_strings("tokenizer.ggml.tokens", {"a", "b"})
                   .kv_i32s("tokenizer.ggml.scores", 2).bytes(),
               M, "tokenizer.ggml.scores has type array of i32, expected array of f32"});
  c.push_back({"merges wrong type",
               RawGguf().header(0, 1).kv_i32s("tokenizer.ggml.merges", 2).bytes(), M,
               "tokenizer.ggml.merges has type array of i32"});
  c.push_back({"bos id out of range",
               RawGguf().header(0, 2).kv_strings("tokenizer.ggml.tokens", {"a", "b", "c"})
                   .kv_u32("tokenizer.ggml.bos_token_id", 3).bytes(),
               M, "metadata key tokenizer.ggml.bos_token_id token id 3 out of range for 3 tokens"});
  c.push_back({"eom id out of range",
               RawGguf().header(0, 2).kv_strings("tokenizer.ggml.tokens", {"a"})
                   .kv_u32("tokenizer.ggml.eom_token_id", 0xFFFFFFFFu).bytes(),
               M, "tokenizer.ggml.eom_token_id token id 4294967295 out of range for 1 tokens"});
  c.push_back({"special id without tokens",
               RawGguf().header(0, 1).kv_u32("tokenizer.ggml.seperator_token_id", 0).bytes(), M,
               "tokenizer.ggml.seperator_token_id token id 0 out of range for 0 tokens"});
  return c;
}

TEST(GgufParseTest, RejectsEachDefect) {
  const std::vector<DefectCase> cases = defect_cases();
  EXPECT_GE(cases.size(), 24u);
  for (const DefectCase& c : cases) {
    SCOPED_TRACE(c.name);
    const auto r = parse(c.bytes, c.limits);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), c.expected) << r.error().to_string();
    EXPECT_NE(r.error().message().find(c.message), std::string::npos) << r.error().to_string();
  }
}

// The defect rows differ from a valid file only in the defect: the same builders with the
// defect removed parse (so each row tests what its name says).
TEST(GgufParseTest, DefectFreeBuildersParse) {
  EXPECT_THAT(parse(two_tensors(0, 32)), IsOk());
  EXPECT_THAT(parse(one_tensor("w", {4}, kF32)), IsOk());
  EXPECT_THAT(parse(one_tensor("w", {32, 2}, kQ8_0, 68)), IsOk());
  EXPECT_THAT(parse(one_tensor(std::string(63, 'n'), {4}, kF32)), IsOk());
  EXPECT_THAT(parse(one_tensor("w", {1, 1, 1, 1}, kF32)), IsOk());
  EXPECT_THAT(parse(one_kv().kv_u32(std::string(256, 'k'), 1).bytes()), IsOk());
  EXPECT_THAT(parse(RawGguf().header(0, 1).kv_u32("general.alignment", 64).bytes()), IsOk());
  EXPECT_THAT(parse(RawGguf().header(0, 0, 2).bytes()), IsOk());
  EXPECT_THAT(parse(RawGguf().header(0, 3).kv_strings("tokenizer.ggml.tokens", {"a", "b", "c"})
                        .kv_f32s("tokenizer.ggml.scores", 3)
                        .kv_u32("tokenizer.ggml.bos_token_id", 2).bytes()),
              IsOk());
  // A special id stored with another type is the loader's business, not the parser's.
  EXPECT_THAT(parse(RawGguf().header(0, 2).kv_strings("tokenizer.ggml.tokens", {"a"})
                        .kv_i32("tokenizer.ggml.bos_token_id", -1).bytes()),
              IsOk());
  auto tensor = parse(one_tensor("w", {4}, kF32));
  ASSERT_THAT(tensor, IsOk());
  EXPECT_EQ(tensor->data_offset, 64u);
  EXPECT_EQ(tensor->tensors[0].data.size(), 16u);
}

void expect_every_truncation_fails(const std::vector<std::byte>& file) {
  ASSERT_THAT(parse(file), IsOk());
  for (size_t n = 0; n < file.size(); ++n) {
    const auto r = parse(std::span<const std::byte>(file.data(), n));
    ASSERT_FALSE(r.has_value()) << "prefix of " << n << " bytes parsed";
    EXPECT_EQ(r.error().code(), StatusCode::kMalformed) << n << ": " << r.error().to_string();
    EXPECT_FALSE(r.error().message().empty());
  }
}

TEST(GgufParseTest, EveryTruncationFailsCleanly) {
  expect_every_truncation_fails(testing::small_valid_file());
  Writer w;
  testing::add_every_value_type(w.metadata());
  expect_every_truncation_fails(w.serialize());
}

// Single-byte corruptions never crash; whatever still parses round-trips to an equal File.
TEST(GgufParseTest, SingleByteCorruptionsAreHandled) {
  const std::vector<std::byte> good = testing::small_valid_file();
  size_t n_ok = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (int v : {0x00, 0x01, 0x7F, 0x80, 0xFF}) {
      std::vector<std::byte> bad = good;
      bad[i] = static_cast<std::byte>(v);
      const auto r = parse(bad);
      if (!r.has_value()) {
        EXPECT_TRUE(r.error().code() == StatusCode::kMalformed ||
                    r.error().code() == StatusCode::kResourceExhausted)
            << r.error().to_string();
        continue;
      }
      ++n_ok;
      const std::vector<std::byte> canonical = serialize(*r);
      const auto again = parse(canonical);
      ASSERT_THAT(again, IsOk());
      EXPECT_TRUE(*again == *r) << "byte " << i;
    }
  }
  EXPECT_GT(n_ok, 0u);  // tensor data bytes and string contents can change freely
}

}  // namespace
}  // namespace ztslm::gguf
