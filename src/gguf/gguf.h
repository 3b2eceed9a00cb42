// GGUF container: parsed, fully validated file (metadata + tensor table) and its limits.
//
// Grammar (GGUF v2 and v3, little-endian; spec/ENGINE.md §1):
//   file    := "GGUF" u32:version i64:n_tensors i64:n_kv kv{n_kv} tinfo{n_tensors} pad data
//   kv      := string:key i32:type value
//   value   := scalar | string | (i32:elem_type u64:count value{count})   ; no nested arrays
//   string  := u64:len byte{len}
//   tinfo   := string:name u32:n_dims i64:ne{n_dims} i32:type u64:offset
// Accepted: versions 2 and 3. Everything is checked against `Limits` and the file size with
// overflow-safe arithmetic before use (STYLE.md §5).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/result.h"
#include "gguf/types.h"

namespace ztslm::gguf {

// Bounds for parsing untrusted GGUF files. Defaults admit every real llama-family SLM file.
struct Limits {
  uint64_t max_kv = 4096;                    // real files have < 100 keys
  uint64_t max_tensors = 65536;              // 1B models have ~150; MoE files a few thousand
  uint64_t max_key_bytes = 256;              // longest llama.cpp key is < 64 bytes
  uint64_t max_string_bytes = 16u << 20;     // chat templates are < 64 KiB; generous
  uint64_t max_array_elems = 1u << 22;       // largest vocab ~ 262k tokens, merges ~ 300k
  uint64_t max_metadata_bytes = 256u << 20;  // total decoded metadata (tokens + merges ~ 10 MB)
  uint64_t max_tensor_name_bytes = 63;       // GGML_MAX_NAME - 1
  uint32_t max_dims = 4;                     // GGML_MAX_DIMS
  int64_t max_dim = int64_t{1} << 32;        // one dimension
  uint64_t max_tensor_bytes = uint64_t{1} << 40;
};

// One metadata value. Scalars and arrays are stored decoded; strings are owned copies (the
// metadata is small compared to the weights, and owning it keeps `Metadata` independent of the
// file mapping).
class Value final {
 public:
  using Array = std::variant<std::vector<uint8_t>, std::vector<int8_t>, std::vector<uint16_t>,
                             std::vector<int16_t>, std::vector<uint32_t>, std::vector<int32_t>,
                             std::vector<float>, std::vector<std::string>, std::vector<uint64_t>,
                             std::vector<int64_t>, std::vector<double>>;
  // Bool arrays are stored as std::vector<uint8_t> with elem_type kBool.

  Value() = default;
  static Value u8(uint8_t v) { return scalar(ValueType::kUint8, v); }
  static Value i8(int8_t v) { return scalar(ValueType::kInt8, v); }
  static Value u16(uint16_t v) { return scalar(ValueType::kUint16, v); }
  static Value i16(int16_t v) { return scalar(ValueType::kInt16, v); }
  static Value u32(uint32_t v) { return scalar(ValueType::kUint32, v); }
  static Value i32(int32_t v) { return scalar(ValueType::kInt32, v); }
  static Value u64(uint64_t v) { return scalar(ValueType::kUint64, v); }
  static Value i64(int64_t v) { return scalar(ValueType::kInt64, v); }
  static Value f32(float v) { return scalar(ValueType::kFloat32, v); }
  static Value f64(double v) { return scalar(ValueType::kFloat64, v); }
  static Value boolean(bool v) { return scalar(ValueType::kBool, v); }
  static Value string(std::string v);
  // `elem_type` must match the vector's element type (kBool with std::vector<uint8_t>).
  static Value array(ValueType elem_type, Array items);

  ValueType type() const { return type_; }
  ValueType elem_type() const { return elem_type_; }  // arrays only
  size_t array_size() const;                           // 0 for non-arrays

  // Exact-type accessors: nullptr / nullopt when the type differs (the loader is type-strict).
  std::optional<uint32_t> as_u32() const;
  std::optional<int32_t> as_i32() const;
  std::optional<uint64_t> as_u64() const;
  std::optional<float> as_f32() const;
  std::optional<bool> as_bool() const;
  const std::string* as_string() const;
  template <typename T>
  const std::vector<T>* as_array() const {
    if (type_ != ValueType::kArray) return nullptr;
    return std::get_if<std::vector<T>>(&array_);
  }
  std::optional<int64_t> as_i64() const;
  std::optional<double> as_f64() const;
  // "u32", "string", "array of f32": for messages.
  std::string type_description() const;
  // Scalar payload as the widest type of its kind (for printing and serialising). For f32 and
  // f64 scalars `raw_uint()` holds the exact bit pattern (so NaN payloads survive a round trip).
  uint64_t raw_uint() const { return uint_; }
  int64_t raw_int() const { return int_; }
  double raw_float() const { return float_; }
  const Array& raw_array() const { return array_; }

  friend bool operator==(const Value& a, const Value& b);

 private:
  template <typename T>
  static Value scalar(ValueType t, T v);

  ValueType type_ = ValueType::kUint8;
  ValueType elem_type_ = ValueType::kUint8;
  uint64_t uint_ = 0;   // unsigned scalars, bool (0/1), and the bit pattern of f32/f64 scalars
  int64_t int_ = 0;     // signed scalars
  double float_ = 0;    // f32 (exactly widened) and f64
  std::string str_;
  Array array_;
};

// Metadata: key → value, keys unique, in file order.
class Metadata final {
 public:
  // Adds `key`; false when it is already present.
  bool add(std::string key, Value value);
  // Replaces the value of `key` in place (keeping its position) or adds it; true when added.
  bool set(std::string key, Value value);
  const Value* find(std::string_view key) const;
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  size_t size() const { return entries_.size(); }
  const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }

  // Typed getters. kNotFound when absent; kMalformed (naming the key) when the stored type
  // differs from the requested one.
  Result<uint32_t> get_u32(std::string_view key) const;
  Result<int32_t> get_i32(std::string_view key) const;
  Result<uint64_t> get_u64(std::string_view key) const;
  Result<int64_t> get_i64(std::string_view key) const;
  Result<float> get_f32(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<std::string_view> get_string(std::string_view key) const;
  Result<const std::vector<std::string>*> get_string_array(std::string_view key) const;
  Result<const std::vector<float>*> get_f32_array(std::string_view key) const;
  Result<const std::vector<int32_t>*> get_i32_array(std::string_view key) const;
  Result<const std::vector<uint32_t>*> get_u32_array(std::string_view key) const;

  friend bool operator==(const Metadata& a, const Metadata& b) { return a.entries_ == b.entries_; }

 private:
  std::vector<std::pair<std::string, Value>> entries_;
  std::map<std::string, size_t, std::less<>> index_;
};

struct TensorInfo {
  std::string name;
  TensorType type = TensorType::kF32;
  uint32_t n_dims = 0;
  std::array<int64_t, 4> ne{1, 1, 1, 1};  // ne[0] innermost; missing dims are 1
  uint64_t offset = 0;                    // relative to the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;                   // ne[0]/block_elems*block_bytes * ne[1]*ne[2]*ne[3]
  uint64_t row_bytes = 0;                 // bytes of one ne[0] row
  std::span<const std::byte> data;        // view into the file; empty for writer-side infos

  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
};

// A parsed GGUF file. Tensor `data` spans view the buffer given to `parse`, which must outlive
// this object.
struct File {
  uint32_t version = 3;
  uint32_t alignment = 32;
  uint64_t data_offset = 0;  // start of the data section in the file
  Metadata metadata;
  std::vector<TensorInfo> tensors;  // in file order

  const TensorInfo* find_tensor(std::string_view name) const;
};

// Equal metadata, tensor infos and tensor bytes (not the buffer addresses).
bool operator==(const File& a, const File& b);

// `parse` validates `file` as a GGUF v2/v3 container and returns its metadata and tensor table.
// Tensor data is not copied: the result views `file`, which must outlive it. Beyond the grammar
// it checks: unique non-empty UTF-8 keys and tensor names (< 64 bytes), known tensor types,
// whole blocks per row, the strict offset rule of ENGINE.md §1.4, every tensor inside the file,
// and the well-known tokenizer keys (tokens a string array; scores/token_type of its length; u32
// special token ids < n_tokens). Returns kMalformed for a structural or semantic defect and
// kResourceExhausted when `limits` are exceeded; messages name the key or tensor. Never
// allocates more than a small multiple of `file.size()` (bounded by `limits`).
Result<File> parse(std::span<const std::byte> file, const Limits& limits = Limits());

}  // namespace ztslm::gguf
