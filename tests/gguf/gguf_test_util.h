// Builders shared by the gguf tests: a raw byte-level GGUF builder (for malformed files the
// Writer refuses to produce) and a set of small valid files (unit tests and fuzz seeds).
#pragma once

#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/byte_writer.h"
#include "core/check.h"
#include "gguf/gguf.h"
#include "gguf/writer.h"

namespace ztslm::gguf::testing {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF"

// Appends GGUF fields one by one; nothing is validated.
class RawGguf {
 public:
  RawGguf& header(int64_t n_tensors, int64_t n_kv, uint32_t version = 3, uint32_t magic = kMagic) {
    w_.put_u32_le(magic);
    w_.put_u32_le(version);
    w_.put_i64_le(n_tensors);
    w_.put_i64_le(n_kv);
    return *this;
  }
  RawGguf& str(std::string_view s) {
    w_.put_u64_le(s.size());
    w_.put_string(s);
    return *this;
  }
  RawGguf& u8(uint8_t v) { return w_.put_u8(v), *this; }
  RawGguf& u32(uint32_t v) { return w_.put_u32_le(v), *this; }
  RawGguf& i32(int32_t v) { return w_.put_i32_le(v), *this; }
  RawGguf& u64(uint64_t v) { return w_.put_u64_le(v), *this; }
  RawGguf& i64(int64_t v) { return w_.put_i64_le(v), *this; }
  RawGguf& f32(float v) { return w_.put_f32_le(v), *this; }
  RawGguf& kv_u32(std::string_view key, uint32_t v) {
    return str(key).i32(static_cast<int32_t>(ValueType::kUint32)).u32(v);
  }
  RawGguf& kv_i32(std::string_view key, int32_t v) {
    return str(key).i32(static_cast<int32_t>(ValueType::kInt32)).i32(v);
  }
  RawGguf& kv_string(std::string_view key, std::string_view v) {
    return str(key).i32(static_cast<int32_t>(ValueType::kString)).str(v);
  }
  RawGguf& kv_strings(std::string_view key, std::initializer_list<std::string_view> items) {
    str(key).i32(static_cast<int32_t>(ValueType::kArray)).i32(static_cast<int32_t>(ValueType::kString));
    u64(items.size());
    for (std::string_view s : items) str(s);
    return *this;
  }
  RawGguf& kv_f32s(std::string_view key, size_t n) {
    str(key).i32(static_cast<int32_t>(ValueType::kArray)).i32(static_cast<int32_t>(ValueType::kFloat32));
    u64(n);
    for (size_t i = 0; i < n; ++i) f32(static_cast<float>(i));
    return *this;
  }
  RawGguf& kv_i32s(std::string_view key, size_t n) {
    str(key).i32(static_cast<int32_t>(ValueType::kArray)).i32(static_cast<int32_t>(ValueType::kInt32));
    u64(n);
    for (size_t i = 0; i < n; ++i) i32(1);
    return *this;
  }
  RawGguf& tinfo(std::string_view name, std::initializer_list<int64_t> ne, uint32_t type,
                 uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (int64_t d : ne) i64(d);
    return i32(static_cast<int32_t>(type)).u64(offset);
  }
  RawGguf& pad_to(size_t alignment) {
    w_.put_zeros((alignment - w_.size() % alignment) % alignment);
    return *this;
  }
  RawGguf& zeros(size_t n) { return w_.put_zeros(n), *this; }
  size_t size() const { return w_.size(); }
  std::vector<std::byte> bytes() const { return w_.bytes(); }

 private:
  ByteWriter w_;
};

inline std::vector<std::byte> pattern_bytes(size_t n, uint8_t seed) {
  std::vector<std::byte> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<std::byte>((i * 131 + seed) & 0xFF);
  return out;
}

// Adds a tensor filled with a byte pattern; the shape must be valid for `type`.
inline void add_pattern_tensor(Writer& w, const std::string& name, TensorType type,
                               std::vector<int64_t> ne, uint8_t seed) {
  const TypeTraits tr = *tensor_type_traits(type);
  uint64_t n = static_cast<uint64_t>(ne.empty() ? 1 : ne[0]) / tr.block_elems * tr.block_bytes;
  for (size_t i = 1; i < ne.size(); ++i) n *= static_cast<uint64_t>(ne[i]);
  ZTSLM_CHECK(w.add_tensor(name, type, ne, pattern_bytes(static_cast<size_t>(n), seed)).ok());
}

// Metadata with one value of every scalar type and one array of every element type.
inline void add_every_value_type(Metadata& md) {
  md.add("t.u8", Value::u8(200));
  md.add("t.i8", Value::i8(-100));
  md.add("t.u16", Value::u16(60000));
  md.add("t.i16", Value::i16(-30000));
  md.add("t.u32", Value::u32(4000000000u));
  md.add("t.i32", Value::i32(-2000000000));
  md.add("t.f32", Value::f32(1.5f));
  md.add("t.bool", Value::boolean(true));
  md.add("t.string", Value::string("h\xC3\xA9llo"));
  md.add("t.u64", Value::u64(0xFFFFFFFFFFFFFFFFull));
  md.add("t.i64", Value::i64(std::numeric_limits<int64_t>::min()));
  md.add("t.f64", Value::f64(-2.25));
  md.add("a.u8", Value::array(ValueType::kUint8, std::vector<uint8_t>{0, 1, 255}));
  md.add("a.i8", Value::array(ValueType::kInt8, std::vector<int8_t>{-128, 0, 127}));
  md.add("a.u16", Value::array(ValueType::kUint16, std::vector<uint16_t>{1, 65535}));
  md.add("a.i16", Value::array(ValueType::kInt16, std::vector<int16_t>{-32768, 32767}));
  md.add("a.u32", Value::array(ValueType::kUint32, std::vector<uint32_t>{7, 8, 9}));
  md.add("a.i32", Value::array(ValueType::kInt32, std::vector<int32_t>{-1, 2}));
  md.add("a.f32", Value::array(ValueType::kFloat32, std::vector<float>{0.5f, -0.0f, 1e30f}));
  md.add("a.bool", Value::array(ValueType::kBool, std::vector<uint8_t>{1, 0, 1}));
  md.add("a.string", Value::array(ValueType::kString, std::vector<std::string>{"a", "", "\xE2\x96\x81x"}));
  md.add("a.u64", Value::array(ValueType::kUint64, std::vector<uint64_t>{1ull << 63}));
  md.add("a.i64", Value::array(ValueType::kInt64, std::vector<int64_t>{-1, 1ll << 62}));
  md.add("a.f64", Value::array(ValueType::kFloat64, std::vector<double>{3.25, -1e300}));
  md.add("a.empty", Value::array(ValueType::kUint32, std::vector<uint32_t>{}));
}

// A tiny tokenizer block that passes the semantic checks.
inline void add_tiny_tokenizer(Metadata& md) {
  md.add("tokenizer.ggml.model", Value::string("gpt2"));
  md.add("tokenizer.ggml.tokens",
         Value::array(ValueType::kString, std::vector<std::string>{"<s>", "</s>", "a", "b", "ab"}));
  md.add("tokenizer.ggml.scores",
         Value::array(ValueType::kFloat32, std::vector<float>{0, 0, -1, -2, -3}));
  md.add("tokenizer.ggml.token_type",
         Value::array(ValueType::kInt32, std::vector<int32_t>{3, 3, 1, 1, 1}));
  md.add("tokenizer.ggml.merges", Value::array(ValueType::kString, std::vector<std::string>{"a b"}));
  md.add("tokenizer.ggml.bos_token_id", Value::u32(0));
  md.add("tokenizer.ggml.eos_token_id", Value::u32(1));
}

// A small valid file with metadata and two tensors (used for truncation tests).
inline std::vector<std::byte> small_valid_file() {
  Writer w;
  w.metadata().add("general.architecture", Value::string("llama"));
  w.metadata().add("llama.block_count", Value::u32(1));
  add_tiny_tokenizer(w.metadata());
  add_pattern_tensor(w, "token_embd.weight", TensorType::kQ8_0, {32, 5}, 1);
  add_pattern_tensor(w, "output_norm.weight", TensorType::kF32, {32}, 2);
  return w.serialize();
}

// Small valid files covering the grammar: fuzz seeds and round-trip inputs.
inline std::vector<std::pair<std::string, std::vector<std::byte>>> seed_files() {
  std::vector<std::pair<std::string, std::vector<std::byte>>> out;
  {
    Writer w;
    out.emplace_back("empty_v3.gguf", w.serialize());
  }
  out.emplace_back("empty_v2.gguf", RawGguf().header(0, 0, 2).bytes());
  {
    Writer w;
    add_every_value_type(w.metadata());
    out.emplace_back("every_value_type.gguf", w.serialize());
  }
  {
    Writer w;
    add_tiny_tokenizer(w.metadata());
    out.emplace_back("tiny_tokenizer.gguf", w.serialize());
  }
  out.emplace_back("small_model.gguf", small_valid_file());
  {
    Writer w;
    add_pattern_tensor(w, "f32", TensorType::kF32, {3, 2}, 1);
    add_pattern_tensor(w, "f16", TensorType::kF16, {5}, 2);
    add_pattern_tensor(w, "q8_0", TensorType::kQ8_0, {64, 2}, 3);
    add_pattern_tensor(w, "q4_0", TensorType::kQ4_0, {32}, 4);
    add_pattern_tensor(w, "q5_0", TensorType::kQ5_0, {32}, 5);
    add_pattern_tensor(w, "q4_k", TensorType::kQ4_K, {256}, 6);
    add_pattern_tensor(w, "q6_k", TensorType::kQ6_K, {256}, 7);
    out.emplace_back("tensor_types.gguf", w.serialize());
  }
  {
    Writer w;
    for (TensorType t : {TensorType::kQ4_1, TensorType::kQ5_1, TensorType::kQ8_1,
                         TensorType::kQ2_K, TensorType::kQ3_K, TensorType::kQ5_K,
                         TensorType::kQ8_K, TensorType::kI8, TensorType::kI16, TensorType::kI32,
                         TensorType::kI64, TensorType::kF64, TensorType::kBF16}) {
      const TypeTraits tr = *tensor_type_traits(t);
      add_pattern_tensor(w, std::string(tr.name), t, {tr.block_elems}, 9);
    }
    out.emplace_back("rare_tensor_types.gguf", w.serialize());
  }
  {
    Writer w(64);
    w.metadata().add("general.name", Value::string("aligned"));
    add_pattern_tensor(w, "a", TensorType::kF32, {3}, 1);
    add_pattern_tensor(w, "b", TensorType::kF16, {7, 3}, 2);
    out.emplace_back("align64.gguf", w.serialize());
  }
  {
    Writer w(1);
    add_pattern_tensor(w, "a", TensorType::kF16, {3}, 1);
    add_pattern_tensor(w, "b", TensorType::kI8, {5}, 2);
    out.emplace_back("align1.gguf", w.serialize());
  }
  {
    Writer w;
    ZTSLM_CHECK(w.add_tensor("scalar", TensorType::kF32, std::vector<int64_t>{},
                             pattern_bytes(4, 3)).ok());
    ZTSLM_CHECK(w.add_tensor("empty", TensorType::kQ8_0, std::vector<int64_t>{32, 0},
                             std::vector<std::byte>{}).ok());
    add_pattern_tensor(w, "four_d", TensorType::kF16, {2, 3, 2, 2}, 4);
    out.emplace_back("odd_shapes.gguf", w.serialize());
  }
  {
    Writer w;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    w.metadata().add("nan.f32", Value::f32(-nan));
    w.metadata().add("nan.f64", Value::f64(std::numeric_limits<double>::signaling_NaN()));
    w.metadata().add("nan.a", Value::array(ValueType::kFloat32, std::vector<float>{nan, -0.0f}));
    w.metadata().add("inf", Value::f32(std::numeric_limits<float>::infinity()));
    out.emplace_back("nan_values.gguf", w.serialize());
  }
  {
    // Non-canonical bool bytes (2, 0xFF), v2 header and trailing bytes after the data.
    RawGguf r;
    r.header(1, 3, 2)
        .str("b").i32(static_cast<int32_t>(ValueType::kBool)).u8(2)
        .str("ba").i32(static_cast<int32_t>(ValueType::kArray)).i32(static_cast<int32_t>(ValueType::kBool))
        .u64(2).u8(0xFF).u8(0)
        .kv_u32("general.alignment", 16)
        .tinfo("t", {4}, 0, 0)
        .pad_to(16)
        .zeros(16 + 5);
    out.emplace_back("noncanonical.gguf", r.bytes());
  }
  {
    Writer w;
    w.metadata().add("\xE6\x97\xA5\xE6\x9C\xAC.key", Value::string("\x01\x02 not utf-8 \xFF"));
    w.metadata().add("general.alignment", Value::u32(32));
    add_pattern_tensor(w, "\xC3\xA9t\xC3\xA9", TensorType::kF32, {1}, 5);
    out.emplace_back("unicode_names.gguf", w.serialize());
  }
  {
    Writer w;
    w.metadata().add("tokenizer.ggml.tokens",
                     Value::array(ValueType::kString, std::vector<std::string>{"x", "y"}));
    w.metadata().add("tokenizer.ggml.padding_token_id", Value::u32(1));
    w.metadata().add("tokenizer.ggml.unknown_token_id", Value::i32(-1));  // not u32: not checked
    out.emplace_back("special_ids.gguf", w.serialize());
  }
  return out;
}

}  // namespace ztslm::gguf::testing
