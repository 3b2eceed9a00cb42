// Writer tests: round trips of every value type, arrays, tensors and alignments; write_file;
// the committed fuzz seeds (regenerated with ZTSLM_WRITE_GGUF_SEEDS=<dir>).
#include "gguf/writer.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/mapped_file.h"
#include "gguf_test_util.h"
#include "test_util.h"

namespace ztslm::gguf {
namespace {

using testing::add_every_value_type;
using testing::add_pattern_tensor;
using testing::pattern_bytes;

TEST(GgufWriterTest, RoundTripsEveryValueType) {
  Writer w;
  add_every_value_type(w.metadata());
  const std::vector<std::byte> bytes = w.serialize();
  auto f = parse(bytes);
  ASSERT_THAT(f, IsOk());
  EXPECT_TRUE(f->metadata == w.metadata());
  const Metadata& md = f->metadata;
  EXPECT_EQ(md.find("t.u8")->raw_uint(), 200u);
  EXPECT_EQ(md.find("t.i8")->raw_int(), -100);
  EXPECT_EQ(md.find("t.u16")->raw_uint(), 60000u);
  EXPECT_EQ(md.find("t.i16")->raw_int(), -30000);
  EXPECT_EQ(*md.get_u32("t.u32"), 4000000000u);
  EXPECT_EQ(*md.get_i32("t.i32"), -2000000000);
  EXPECT_EQ(*md.get_f32("t.f32"), 1.5f);
  EXPECT_EQ(*md.get_bool("t.bool"), true);
  EXPECT_EQ(*md.get_string("t.string"), "h\xC3\xA9llo");
  EXPECT_EQ(*md.get_u64("t.u64"), 0xFFFFFFFFFFFFFFFFull);
  EXPECT_EQ(*md.get_i64("t.i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(*md.find("t.f64")->as_f64(), -2.25);
  EXPECT_EQ(*md.find("a.i8")->as_array<int8_t>(), (std::vector<int8_t>{-128, 0, 127}));
  EXPECT_EQ(*md.find("a.u16")->as_array<uint16_t>(), (std::vector<uint16_t>{1, 65535}));
  EXPECT_EQ(*md.find("a.i16")->as_array<int16_t>(), (std::vector<int16_t>{-32768, 32767}));
  EXPECT_EQ(**md.get_u32_array("a.u32"), (std::vector<uint32_t>{7, 8, 9}));
  EXPECT_EQ(**md.get_i32_array("a.i32"), (std::vector<int32_t>{-1, 2}));
  EXPECT_EQ(**md.get_f32_array("a.f32"), (std::vector<float>{0.5f, -0.0f, 1e30f}));
  EXPECT_EQ(md.find("a.bool")->elem_type(), ValueType::kBool);
  EXPECT_EQ(*md.find("a.bool")->as_array<uint8_t>(), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ((**md.get_string_array("a.string"))[2], "\xE2\x96\x81x");
  EXPECT_EQ(*md.find("a.u64")->as_array<uint64_t>(), (std::vector<uint64_t>{1ull << 63}));
  EXPECT_EQ(*md.find("a.f64")->as_array<double>(), (std::vector<double>{3.25, -1e300}));
  EXPECT_EQ(md.find("a.empty")->array_size(), 0u);
  // Keys keep file order.
  EXPECT_EQ(md.entries().front().first, "t.u8");
  EXPECT_EQ(md.entries().back().first, "a.empty");
  // Canonical form is a fixed point.
  EXPECT_EQ(serialize(*f), bytes);
}

TEST(GgufWriterTest, TypedGettersAreStrict) {
  Metadata md;
  add_every_value_type(md);
  EXPECT_THAT(md.get_u32("missing"), StatusIs(StatusCode::kNotFound));
  const auto wrong = md.get_u32("t.i32");
  EXPECT_THAT(wrong, StatusIs(StatusCode::kMalformed));
  EXPECT_EQ(wrong.error().message(), "metadata key t.i32 has type i32, expected u32");
  const auto arr = md.get_f32_array("a.i32");
  EXPECT_THAT(arr, StatusIs(StatusCode::kMalformed));
  EXPECT_EQ(arr.error().message(), "metadata key a.i32 has type array of i32, expected array of f32");
  EXPECT_THAT(md.get_string("t.string"), IsOk());
  EXPECT_THAT(md.get_string("a.string"), StatusIs(StatusCode::kMalformed));
  EXPECT_THAT(md.get_string_array("t.string"), StatusIs(StatusCode::kMalformed));
  EXPECT_THAT(md.get_bool("t.u8"), StatusIs(StatusCode::kMalformed));
  EXPECT_THAT(md.get_f32("t.f64"), StatusIs(StatusCode::kMalformed));
  EXPECT_FALSE(md.add("t.u8", Value::u8(1)));  // duplicate refused
  EXPECT_FALSE(md.set("t.u8", Value::u8(1)));  // replaced in place
  EXPECT_EQ(md.find("t.u8")->raw_uint(), 1u);
}

TEST(GgufWriterTest, ValueEqualityIsTypeAndBitExact) {
  EXPECT_TRUE(Value::u32(1) == Value::u32(1));
  EXPECT_FALSE(Value::u32(1) == Value::i32(1));
  EXPECT_FALSE(Value::u32(1) == Value::u64(1));
  EXPECT_FALSE(Value::f32(0.0f) == Value::f32(-0.0f));
  const float nan = std::nanf("");
  EXPECT_TRUE(Value::f32(nan) == Value::f32(nan));
  EXPECT_TRUE(Value::array(ValueType::kFloat32, std::vector<float>{nan}) ==
              Value::array(ValueType::kFloat32, std::vector<float>{nan}));
  EXPECT_FALSE(Value::array(ValueType::kBool, std::vector<uint8_t>{1}) ==
               Value::array(ValueType::kUint8, std::vector<uint8_t>{1}));
  EXPECT_FALSE(Value::string("a") == Value::string("b"));
}

void expect_tensor_round_trip(uint32_t alignment) {
  Writer w(alignment);
  w.metadata().add("general.name", Value::string("t"));
  add_pattern_tensor(w, "a", TensorType::kF32, {3}, 1);           // 12 bytes: padding follows
  add_pattern_tensor(w, "b", TensorType::kQ8_0, {64, 3}, 2);       // 204 bytes
  add_pattern_tensor(w, "c", TensorType::kQ4_K, {256, 2}, 3);      // 288 bytes
  add_pattern_tensor(w, "d", TensorType::kF16, {2, 3, 4, 5}, 4);
  const std::vector<std::byte> bytes = w.serialize();
  auto f = parse(bytes);
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->alignment, alignment);
  EXPECT_EQ(f->data_offset % alignment, 0u);
  if (alignment != 32) {
    EXPECT_EQ(*f->metadata.get_u32("general.alignment"), alignment);
  } else {
    EXPECT_FALSE(f->metadata.contains("general.alignment"));
  }
  ASSERT_EQ(f->tensors.size(), 4u);
  uint64_t expect = 0;
  for (const TensorInfo& t : f->tensors) {
    EXPECT_EQ(t.offset, expect) << t.name;
    EXPECT_EQ(t.offset % alignment, 0u);
    expect += (t.n_bytes + alignment - 1) / alignment * alignment;
  }
  const TensorInfo* b = f->find_tensor("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->n_elements, 192u);
  EXPECT_EQ(b->row_bytes, 68u);
  EXPECT_EQ(b->n_bytes, 204u);
  EXPECT_EQ(b->n_rows(), 3);
  EXPECT_EQ(std::vector<std::byte>(b->data.begin(), b->data.end()), pattern_bytes(204, 2));
  const TensorInfo* d = f->find_tensor("d");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->n_dims, 4u);
  EXPECT_EQ(d->ne, (std::array<int64_t, 4>{2, 3, 4, 5}));
  EXPECT_EQ(d->n_bytes, 240u);
  EXPECT_EQ(bytes.size(), f->data_offset + expect);
  EXPECT_EQ(serialize(*f), bytes);
}

TEST(GgufWriterTest, RoundTripsTensorsAlign32) { expect_tensor_round_trip(32); }
TEST(GgufWriterTest, RoundTripsTensorsAlign64) { expect_tensor_round_trip(64); }
TEST(GgufWriterTest, RoundTripsTensorsAlign8) { expect_tensor_round_trip(8); }

TEST(GgufWriterTest, FixesAConflictingAlignmentKey) {
  Writer w(64);
  w.metadata().add("general.alignment", Value::i32(16));  // wrong type and value
  add_pattern_tensor(w, "a", TensorType::kF32, {3}, 1);
  auto f = parse(w.serialize());
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->alignment, 64u);
  EXPECT_EQ(*f->metadata.get_u32("general.alignment"), 64u);
}

TEST(GgufWriterTest, RejectsInvalidTensors) {
  Writer w;
  const std::vector<int64_t> ne{30};
  EXPECT_THAT(w.add_tensor("q", TensorType::kQ8_0, ne, std::vector<std::byte>(34)),
              StatusIs(StatusCode::kInvalidArgument));  // not whole blocks
  EXPECT_THAT(w.add_tensor("f", TensorType::kF32, ne, std::vector<std::byte>(4)),
              StatusIs(StatusCode::kInvalidArgument));  // size mismatch
  EXPECT_THAT(w.add_tensor("", TensorType::kF32, ne, std::vector<std::byte>(120)),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(w.add_tensor(std::string(64, 'x'), TensorType::kF32, ne, std::vector<std::byte>(120)),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(w.add_tensor("u", static_cast<TensorType>(4), ne, std::vector<std::byte>(120)),
              StatusIs(StatusCode::kInvalidArgument));
  const std::vector<int64_t> five{1, 1, 1, 1, 1};
  EXPECT_THAT(w.add_tensor("5d", TensorType::kF32, five, std::vector<std::byte>(4)),
              StatusIs(StatusCode::kInvalidArgument));
  const std::vector<int64_t> huge{int64_t{1} << 40, int64_t{1} << 40};
  EXPECT_THAT(w.add_tensor_lazy("h", TensorType::kF32, huge, [](std::span<std::byte>) {}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(w.add_tensor("ok", TensorType::kF32, ne, std::vector<std::byte>(120)), IsOk());
  EXPECT_THAT(w.add_tensor("ok", TensorType::kF32, ne, std::vector<std::byte>(120)),
              StatusIs(StatusCode::kInvalidArgument));  // duplicate
}

std::string temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "gguf_writer_XXXXXX").string();
  ZTSLM_CHECK(::mkdtemp(tmpl.data()) != nullptr);
  return tmpl;
}

TEST(GgufWriterTest, WriteFileMatchesSerializeAndFillsLazyTensors) {
  Writer w;
  w.metadata().add("general.architecture", Value::string("llama"));
  add_pattern_tensor(w, "eager", TensorType::kF16, {5, 3}, 7);
  const std::vector<int64_t> ne{32, 4};
  ASSERT_THAT(w.add_tensor_lazy("lazy", TensorType::kQ8_0, ne,
                                [](std::span<std::byte> out) {
                                  for (size_t i = 0; i < out.size(); ++i) {
                                    out[i] = static_cast<std::byte>(i * 7);
                                  }
                                }),
              IsOk());
  const std::string dir = temp_dir();
  const std::string path = dir + "/model.gguf";
  ASSERT_THAT(w.write_file(path), IsOk());
  auto mapped = MappedFile::open(path);
  ASSERT_THAT(mapped, IsOk());
  const std::vector<std::byte> in_memory = w.serialize();
  ASSERT_EQ(mapped->size(), in_memory.size());
  EXPECT_TRUE(std::equal(in_memory.begin(), in_memory.end(), mapped->bytes().begin()));
  auto f = parse(mapped->bytes());
  ASSERT_THAT(f, IsOk());
  const TensorInfo* lazy = f->find_tensor("lazy");
  ASSERT_NE(lazy, nullptr);
  ASSERT_EQ(lazy->data.size(), 136u);
  EXPECT_EQ(lazy->data[135], static_cast<std::byte>((135 * 7) & 0xFF));
  // Only the final file is left behind (no temporary).
  size_t n_files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) n_files += e.is_regular_file();
  EXPECT_EQ(n_files, 1u);
  std::filesystem::remove_all(dir);
}

TEST(GgufWriterTest, WriteFileFailsCleanlyInAMissingFolder) {
  Writer w;
  EXPECT_THAT(w.write_file("/nonexistent-ztslm-dir/x.gguf"), StatusIs(StatusCode::kNotFound));
}

// Every seed parses, equals its canonical form, and matches the committed corpus file.
TEST(GgufWriterTest, FuzzSeedsAreValidAndCommitted) {
  const char* out_dir = std::getenv("ZTSLM_WRITE_GGUF_SEEDS");
  const std::string corpus = std::string(ZTSLM_SOURCE_DIR) + "/fuzz/corpus/gguf_reader/";
  for (const auto& [name, bytes] : testing::seed_files()) {
    SCOPED_TRACE(name);
    EXPECT_LT(bytes.size(), 64u * 1024);
    auto f = parse(bytes);
    ASSERT_THAT(f, IsOk());
    const std::vector<std::byte> canonical = serialize(*f);
    auto again = parse(canonical);
    ASSERT_THAT(again, IsOk());
    EXPECT_TRUE(*again == *f);
    if (out_dir != nullptr) {
      std::ofstream(std::string(out_dir) + "/" + name, std::ios::binary)
          .write(reinterpret_cast<const char*>(bytes.data()),
                 static_cast<std::streamsize>(bytes.size()));
    } else {
      std::ifstream in(corpus + name, std::ios::binary);
      ASSERT_TRUE(in.good()) << "missing seed; regenerate with ZTSLM_WRITE_GGUF_SEEDS=" << corpus;
      const std::vector<char> committed((std::istreambuf_iterator<char>(in)),
                                        std::istreambuf_iterator<char>());
      EXPECT_EQ(committed.size(), bytes.size());
    }
  }
}

}  // namespace
}  // namespace ztslm::gguf
