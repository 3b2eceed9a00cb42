// GGUF v2/v3 reader (spec/ENGINE.md §1). Every field comes through ByteReader; every count and
// size is checked against `Limits` and the bytes left before anything is allocated.
#include <array>
#include <limits>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/byte_reader.h"
#include "core/checked_math.h"
#include "core/utf8.h"
#include "gguf/gguf.h"

namespace ztslm::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kDefaultAlignment = 32;
constexpr uint32_t kNumValueTypes = 13;
// Decoded-size charge per entry, so that many tiny entries also count against the budget.
constexpr uint64_t kEntryOverhead = 64;
constexpr uint64_t kStringOverhead = sizeof(std::string);
// Smallest possible encodings, used to reject counts the remaining bytes cannot hold.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;              // empty key, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // empty name, n_dims 0, type, offset

// Encoded size of one scalar of type `t` (strings: their length prefix; arrays: 0).
uint64_t encoded_scalar_bytes(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool: return 1;
    case ValueType::kUint16:
    case ValueType::kInt16: return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32: return 4;
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64:
    case ValueType::kString: return 8;
    case ValueType::kArray: return 0;
  }
  return 0;
}

// Decoded (in-memory) size of one array element of type `t`.
uint64_t decoded_elem_bytes(ValueType t) {
  return t == ValueType::kString ? kStringOverhead : encoded_scalar_bytes(t);
}

class Parser final {
 public:
  Parser(std::span<const std::byte> file, const Limits& limits)
      : file_(file), in_(file), lim_(limits) {}

  Result<File> run();

 private:
  // Reads a u64-length-prefixed string as a view into the file. A length above `max_len` is
  // kResourceExhausted (checked first); a length past the end of the file is kMalformed.
  Result<std::string_view> read_string(std::string_view what, uint64_t max_len);
  // Adds `n` decoded bytes to the metadata budget; kResourceExhausted past the limit.
  Status charge(uint64_t n, std::string_view key);
  Status read_kv(File& out);
  Result<Value> read_scalar(ValueType t, std::string_view key);
  Result<Value> read_array(std::string_view key);
  template <typename T, typename ReadFn>
  Result<Value> read_numeric_array(ValueType t, uint64_t count, std::string_view key,
                                   ReadFn read_one);
  Status read_alignment(File& out);
  Status read_tensor_info(uint64_t* expect_offset, uint32_t alignment, TensorInfo* out);

  std::span<const std::byte> file_;
  ByteReader in_;
  const Limits& lim_;
  uint64_t metadata_bytes_ = 0;
  std::set<std::string_view> tensor_names_;  // views into `file_`; a tree, so no hash flooding
};

Result<std::string_view> Parser::read_string(std::string_view what, uint64_t max_len) {
  uint64_t len = 0;
  if (!in_.read_u64_le(&len)) return Status::malformed("truncated {} length", what);
  if (len > max_len) {
    return Status::resource_exhausted("{} length {} exceeds limit {}", what, len, max_len);
  }
  std::span<const std::byte> bytes;
  if (len > in_.size() || !in_.read_bytes(static_cast<size_t>(len), &bytes)) {
    return Status::malformed("{} length {} runs past end of file ({} bytes left)", what, len,
                             in_.size());
  }
  return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

Status Parser::charge(uint64_t n, std::string_view key) {
  uint64_t total = 0;
  if (!checked_add(metadata_bytes_, n, &total) || total > lim_.max_metadata_bytes) {
    return Status::resource_exhausted("metadata size exceeds limit {} bytes at key {}",
                                      lim_.max_metadata_bytes, printable(key, 64));
  }
  metadata_bytes_ = total;
  return Status();
}

Result<Value> Parser::read_scalar(ValueType t, std::string_view key) {
  bool ok = false;
  Value v;
  switch (t) {
    case ValueType::kUint8: {
      uint8_t x = 0;
      ok = in_.read_u8(&x), v = Value::u8(x);
      break;
    }
    case ValueType::kInt8: {
      int8_t x = 0;
      ok = in_.read_i8(&x), v = Value::i8(x);
      break;
    }
    case ValueType::kUint16: {
      uint16_t x = 0;
      ok = in_.read_u16_le(&x), v = Value::u16(x);
      break;
    }
    case ValueType::kInt16: {
      int16_t x = 0;
      ok = in_.read_i16_le(&x), v = Value::i16(x);
      break;
    }
    case ValueType::kUint32: {
      uint32_t x = 0;
      ok = in_.read_u32_le(&x), v = Value::u32(x);
      break;
    }
    case ValueType::kInt32: {
      int32_t x = 0;
      ok = in_.read_i32_le(&x), v = Value::i32(x);
      break;
    }
    case ValueType::kFloat32: {
      float x = 0;
      ok = in_.read_f32_le(&x), v = Value::f32(x);
      break;
    }
    case ValueType::kBool: {
      uint8_t x = 0;  // any non-zero byte means true
      ok = in_.read_u8(&x), v = Value::boolean(x != 0);
      break;
    }
    case ValueType::kUint64: {
      uint64_t x = 0;
      ok = in_.read_u64_le(&x), v = Value::u64(x);
      break;
    }
    case ValueType::kInt64: {
      int64_t x = 0;
      ok = in_.read_i64_le(&x), v = Value::i64(x);
      break;
    }
    case ValueType::kFloat64: {
      double x = 0;
      ok = in_.read_f64_le(&x), v = Value::f64(x);
      break;
    }
    case ValueType::kString: {
      ZTSLM_ASSIGN_OR_RETURN(std::string_view s, read_string("string value", lim_.max_string_bytes));
      ZTSLM_TRY(charge(s.size() + kStringOverhead, key));
      return Value::string(std::string(s));
    }
    case ValueType::kArray: return read_array(key);
  }
  if (!ok) {
    return Status::malformed("truncated {} value of metadata key {}", value_type_name(t),
                             printable(key, 64));
  }
  return v;
}

template <typename T, typename ReadFn>
Result<Value> Parser::read_numeric_array(ValueType t, uint64_t count, std::string_view key,
                                         ReadFn read_one) {
  std::vector<T> items;
  items.reserve(static_cast<size_t>(count));  // bounded: count <= limit and <= bytes left
  for (uint64_t i = 0; i < count; ++i) {
    T x{};
    if (!read_one(&x)) {
      return Status::malformed("truncated array of metadata key {}", printable(key, 64));
    }
    items.push_back(x);
  }
  return Value::array(t, std::move(items));
}

Result<Value> Parser::read_array(std::string_view key) {
  int32_t elem_raw = 0;
  uint64_t count = 0;
  if (!in_.read_i32_le(&elem_raw)) {
    return Status::malformed("truncated array type of metadata key {}", printable(key, 64));
  }
  if (elem_raw < 0 || static_cast<uint32_t>(elem_raw) >= kNumValueTypes) {
    return Status::malformed("array of metadata key {} has unknown element type {}",
                             printable(key, 64), elem_raw);
  }
  const auto elem = static_cast<ValueType>(elem_raw);
  if (elem == ValueType::kArray) {
    return Status::malformed("metadata key {} holds a nested array", printable(key, 64));
  }
  if (!in_.read_u64_le(&count)) {
    return Status::malformed("truncated array count of metadata key {}", printable(key, 64));
  }
  if (count > lim_.max_array_elems) {
    return Status::resource_exhausted("array count {} of metadata key {} exceeds limit {}", count,
                                      printable(key, 64), lim_.max_array_elems);
  }
  // SECURITY: count <= 2^22-ish and elem size <= 8, so the products cannot overflow, but use
  // checked math anyway: Limits may be raised by a caller.
  uint64_t min_bytes = 0;
  uint64_t decoded = 0;
  if (!checked_mul(count, encoded_scalar_bytes(elem), &min_bytes) || min_bytes > in_.size()) {
    return Status::malformed("array of {} elements of metadata key {} runs past end of file",
                             count, printable(key, 64));
  }
  if (!checked_mul(count, decoded_elem_bytes(elem), &decoded)) {
    return Status::resource_exhausted("array of metadata key {} too large", printable(key, 64));
  }
  ZTSLM_TRY(charge(decoded, key));

  switch (elem) {
    case ValueType::kUint8:
      return read_numeric_array<uint8_t>(elem, count, key, [&](uint8_t* x) { return in_.read_u8(x); });
    case ValueType::kBool:
      return read_numeric_array<uint8_t>(elem, count, key, [&](uint8_t* x) {
        if (!in_.read_u8(x)) return false;
        *x = *x != 0 ? 1 : 0;  // canonical 0/1, like scalar bools
        return true;
      });
    case ValueType::kInt8:
      return read_numeric_array<int8_t>(elem, count, key, [&](int8_t* x) { return in_.read_i8(x); });
    case ValueType::kUint16:
      return read_numeric_array<uint16_t>(elem, count, key,
                                          [&](uint16_t* x) { return in_.read_u16_le(x); });
    case ValueType::kInt16:
      return read_numeric_array<int16_t>(elem, count, key,
                                         [&](int16_t* x) { return in_.read_i16_le(x); });
    case ValueType::kUint32:
      return read_numeric_array<uint32_t>(elem, count, key,
                                          [&](uint32_t* x) { return in_.read_u32_le(x); });
    case ValueType::kInt32:
      return read_numeric_array<int32_t>(elem, count, key,
                                         [&](int32_t* x) { return in_.read_i32_le(x); });
    case ValueType::kFloat32:
      return read_numeric_array<float>(elem, count, key,
                                       [&](float* x) { return in_.read_f32_le(x); });
    case ValueType::kUint64:
      return read_numeric_array<uint64_t>(elem, count, key,
                                          [&](uint64_t* x) { return in_.read_u64_le(x); });
    case ValueType::kInt64:
      return read_numeric_array<int64_t>(elem, count, key,
                                         [&](int64_t* x) { return in_.read_i64_le(x); });
    case ValueType::kFloat64:
      return read_numeric_array<double>(elem, count, key,
                                        [&](double* x) { return in_.read_f64_le(x); });
    case ValueType::kString: {
      std::vector<std::string> items;
      items.reserve(static_cast<size_t>(count));  // bounded as above (>= 8 input bytes each)
      for (uint64_t i = 0; i < count; ++i) {
        ZTSLM_ASSIGN_OR_RETURN(std::string_view s,
                               read_string("string array element", lim_.max_string_bytes));
        ZTSLM_TRY(charge(s.size(), key));
        items.emplace_back(s);
      }
      return Value::array(elem, std::move(items));
    }
    case ValueType::kArray: break;  // rejected above
  }
  return Status::internal("unreachable array element type");
}

Status Parser::read_kv(File& out) {
  ZTSLM_ASSIGN_OR_RETURN(std::string_view key, read_string("metadata key", lim_.max_key_bytes));
  if (key.empty()) return Status::malformed("empty metadata key");
  if (!is_valid_utf8(key)) {
    return Status::malformed("metadata key {} is not valid utf-8", printable(key, 64));
  }
  if (out.metadata.contains(key)) {
    return Status::malformed("duplicate metadata key {}", printable(key, 64));
  }
  ZTSLM_TRY(charge(key.size() + kEntryOverhead, key));
  int32_t type_raw = 0;
  if (!in_.read_i32_le(&type_raw)) {
    return Status::malformed("truncated value type of metadata key {}", printable(key, 64));
  }
  if (type_raw < 0 || static_cast<uint32_t>(type_raw) >= kNumValueTypes) {
    return Status::malformed("metadata key {} has unknown value type {}", printable(key, 64),
                             type_raw);
  }
  ZTSLM_ASSIGN_OR_RETURN(Value value, read_scalar(static_cast<ValueType>(type_raw), key));
  out.metadata.add(std::string(key), std::move(value));
  return Status();
}

Status Parser::read_alignment(File& out) {
  out.alignment = kDefaultAlignment;
  const Value* v = out.metadata.find("general.alignment");
  if (v == nullptr) return Status();
  const std::optional<uint32_t> a = v->as_u32();
  if (!a.has_value()) {
    return Status::malformed("metadata key general.alignment has type {}, expected u32",
                             v->type_description());
  }
  if (!is_power_of_two(*a)) {
    return Status::malformed("general.alignment {} is not a non-zero power of two", *a);
  }
  out.alignment = *a;
  return Status();
}

Status Parser::read_tensor_info(uint64_t* expect_offset, uint32_t alignment, TensorInfo* out) {
  // Tensor names are a format rule (< 64 bytes), so a long one is malformed, not a limit.
  ZTSLM_ASSIGN_OR_RETURN(std::string_view name,
                         read_string("tensor name", std::numeric_limits<uint64_t>::max()));
  if (name.empty()) return Status::malformed("empty tensor name");
  if (name.size() > lim_.max_tensor_name_bytes) {
    return Status::malformed("tensor name {} length {} exceeds limit {}", printable(name, 64),
                             name.size(), lim_.max_tensor_name_bytes);
  }
  const std::string pname = printable(name, 64);
  if (!is_valid_utf8(name)) return Status::malformed("tensor name {} is not valid utf-8", pname);
  if (!tensor_names_.insert(name).second) {
    return Status::malformed("duplicate tensor name {}", pname);
  }
  uint32_t n_dims = 0;
  if (!in_.read_u32_le(&n_dims)) return Status::malformed("truncated tensor {} n_dims", pname);
  if (n_dims > lim_.max_dims || n_dims > 4) {
    return Status::malformed("tensor {} has {} dimensions, limit {}", pname, n_dims,
                             lim_.max_dims < 4 ? lim_.max_dims : 4);
  }
  std::array<int64_t, 4> ne{1, 1, 1, 1};
  for (uint32_t i = 0; i < n_dims; ++i) {
    if (!in_.read_i64_le(&ne[i])) return Status::malformed("truncated tensor {} shape", pname);
    if (ne[i] < 0) return Status::malformed("tensor {} dimension {} is negative", pname, i);
    if (ne[i] > lim_.max_dim) {
      return Status::resource_exhausted("tensor {} dimension {} size {} exceeds limit {}", pname,
                                        i, ne[i], lim_.max_dim);
    }
  }
  int32_t type_raw = 0;
  uint64_t offset = 0;
  if (!in_.read_i32_le(&type_raw)) return Status::malformed("truncated tensor {} type", pname);
  if (!in_.read_u64_le(&offset)) return Status::malformed("truncated tensor {} offset", pname);
  const std::optional<TypeTraits> traits =
      type_raw < 0 ? std::nullopt : tensor_type_traits(static_cast<uint32_t>(type_raw));
  if (!traits.has_value()) {
    return Status::malformed("tensor {} has unknown type {}", pname, type_raw);
  }
  if (ne[0] % traits->block_elems != 0) {
    return Status::malformed("tensor {} row of {} elements is not a multiple of the {} block ({})",
                             pname, ne[0], traits->name, traits->block_elems);
  }
  // SECURITY: a wrapped element count or byte size would let a small file claim a huge
  // tensor (or a huge one a small size) and defeat the bounds checks below.
  int64_t n_elements = 1;
  for (int64_t d : ne) {
    if (!checked_mul(n_elements, d, &n_elements)) {
      return Status::malformed("tensor {} element count overflows", pname);
    }
  }
  uint64_t row_bytes = 0;
  uint64_t n_bytes = 0;
  if (!checked_mul(static_cast<uint64_t>(ne[0]) / traits->block_elems,
                   uint64_t{traits->block_bytes}, &row_bytes) ||
      !checked_mul(row_bytes, static_cast<uint64_t>(ne[1]), &n_bytes) ||
      !checked_mul(n_bytes, static_cast<uint64_t>(ne[2]), &n_bytes) ||
      !checked_mul(n_bytes, static_cast<uint64_t>(ne[3]), &n_bytes) ||
      n_bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::malformed("tensor {} byte size overflows", pname);
  }
  if (n_bytes > lim_.max_tensor_bytes) {
    return Status::resource_exhausted("tensor {} size {} bytes exceeds limit {}", pname, n_bytes,
                                      lim_.max_tensor_bytes);
  }
  // Strict offset rule (§1.4): offsets are exactly the running padded sizes, so tensors are
  // aligned and cannot overlap.
  if (offset != *expect_offset) {
    return Status::malformed("tensor {} offset {} is not the expected {}", pname, offset,
                             *expect_offset);
  }
  uint64_t padded = 0;
  if (!checked_align_up(n_bytes, alignment, &padded) ||
      !checked_add(*expect_offset, padded, expect_offset)) {
    return Status::malformed("tensor {} data section size overflows", pname);
  }
  out->name = std::string(name);
  out->type = static_cast<TensorType>(type_raw);
  out->n_dims = n_dims;
  out->ne = ne;
  out->offset = offset;
  out->n_elements = static_cast<uint64_t>(n_elements);
  out->n_bytes = n_bytes;
  out->row_bytes = row_bytes;
  return Status();
}

// Well-known tokenizer keys whose consistency the engine relies on (STYLE.md §5: the parser
// returns a semantically valid object).
Status check_tokenizer(const Metadata& md) {
  constexpr std::string_view kTokens = "tokenizer.ggml.tokens";
  std::optional<uint64_t> n_tokens;
  if (const Value* v = md.find(kTokens)) {
    if (v->type() != ValueType::kArray || v->elem_type() != ValueType::kString) {
      return Status::malformed("metadata key {} has type {}, expected array of string", kTokens,
                               v->type_description());
    }
    n_tokens = v->array_size();
  }
  if (const Value* v = md.find("tokenizer.ggml.merges")) {
    if (v->type() != ValueType::kArray || v->elem_type() != ValueType::kString) {
      return Status::malformed(
          "metadata key tokenizer.ggml.merges has type {}, expected array of string",
          v->type_description());
    }
  }
  struct PerToken {
    std::string_view key;
    ValueType elem;
  };
  constexpr std::array<PerToken, 2> kPerToken{{
      {"tokenizer.ggml.scores", ValueType::kFloat32},
      {"tokenizer.ggml.token_type", ValueType::kInt32},
  }};
  std::optional<uint64_t> n_per_token;
  std::string_view first_key;
  for (const PerToken& p : kPerToken) {
    const Value* v = md.find(p.key);
    if (v == nullptr) continue;
    if (v->type() != ValueType::kArray || v->elem_type() != p.elem) {
      return Status::malformed("metadata key {} has type {}, expected array of {}", p.key,
                               v->type_description(), value_type_name(p.elem));
    }
    const uint64_t n = v->array_size();
    if (n_tokens.has_value() && n != *n_tokens) {
      return Status::malformed("metadata key {} has {} entries but {} has {}", p.key, n, kTokens,
                               *n_tokens);
    }
    if (n_per_token.has_value() && n != *n_per_token) {
      return Status::malformed("metadata key {} has {} entries but {} has {}", p.key, n,
                               first_key, *n_per_token);
    }
    n_per_token = n;
    first_key = p.key;
  }
  constexpr std::array<std::string_view, 7> kSpecial{
      "tokenizer.ggml.bos_token_id",     "tokenizer.ggml.eos_token_id",
      "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
      "tokenizer.ggml.seperator_token_id", "tokenizer.ggml.eot_token_id",
      "tokenizer.ggml.eom_token_id",
  };
  for (std::string_view key : kSpecial) {
    const Value* v = md.find(key);
    if (v == nullptr || !v->as_u32().has_value()) continue;
    const uint32_t id = *v->as_u32();
    const uint64_t n = n_tokens.value_or(0);
    if (id >= n) {
      return Status::malformed("metadata key {} token id {} out of range for {} tokens", key, id,
                               n);
    }
  }
  return Status();
}

Result<File> Parser::run() {
  File out;
  uint32_t magic = 0;
  int64_t n_tensors = 0;
  int64_t n_kv = 0;
  if (!in_.read_u32_le(&magic)) return Status::malformed("truncated header");
  if (magic != kMagic) return Status::malformed("bad magic: not a gguf file");
  if (!in_.read_u32_le(&out.version)) return Status::malformed("truncated header");
  if (out.version == 0) return Status::malformed("unsupported gguf version 0");
  if ((out.version & 0xFFFFu) == 0) {
    return Status::malformed("gguf version {} looks byte-swapped (big-endian file)", out.version);
  }
  if (out.version == 1) return Status::malformed("unsupported gguf version 1 (32-bit counts)");
  if (out.version > 3) return Status::malformed("unsupported gguf version {}", out.version);
  if (!in_.read_i64_le(&n_tensors) || !in_.read_i64_le(&n_kv)) {
    return Status::malformed("truncated header");
  }
  if (n_tensors < 0) return Status::malformed("negative tensor count {}", n_tensors);
  if (n_kv < 0) return Status::malformed("negative metadata count {}", n_kv);
  if (static_cast<uint64_t>(n_tensors) > lim_.max_tensors) {
    return Status::resource_exhausted("tensor count {} exceeds limit {}", n_tensors,
                                      lim_.max_tensors);
  }
  if (static_cast<uint64_t>(n_kv) > lim_.max_kv) {
    return Status::resource_exhausted("metadata count {} exceeds limit {}", n_kv, lim_.max_kv);
  }
  if (static_cast<uint64_t>(n_kv) > in_.size() / kMinKvBytes) {
    return Status::malformed("metadata count {} cannot fit in the {} bytes left", n_kv,
                             in_.size());
  }
  for (int64_t i = 0; i < n_kv; ++i) ZTSLM_TRY(read_kv(out));
  ZTSLM_TRY(read_alignment(out));
  ZTSLM_TRY(check_tokenizer(out.metadata));

  if (static_cast<uint64_t>(n_tensors) > in_.size() / kMinTensorInfoBytes) {
    return Status::malformed("tensor count {} cannot fit in the {} bytes left", n_tensors,
                             in_.size());
  }
  out.tensors.resize(static_cast<size_t>(n_tensors));
  uint64_t data_bytes = 0;
  for (TensorInfo& t : out.tensors) ZTSLM_TRY(read_tensor_info(&data_bytes, out.alignment, &t));

  // The padding before the data section exists only when there are tensors (§1.1).
  out.data_offset = in_.offset();
  if (n_tensors > 0) {
    if (!checked_align_up(out.data_offset, out.alignment, &out.data_offset) ||
        out.data_offset > file_.size()) {
      return Status::malformed("data section starts past end of file ({} bytes)", file_.size());
    }
  }
  for (TensorInfo& t : out.tensors) {
    uint64_t begin = 0;
    uint64_t end = 0;
    if (!checked_add(out.data_offset, t.offset, &begin) || !checked_add(begin, t.n_bytes, &end) ||
        end > file_.size()) {
      return Status::malformed("tensor {} data ({} bytes at offset {}) runs past end of file",
                               printable(t.name, 64), t.n_bytes, t.offset);
    }
    t.data = file_.subspan(static_cast<size_t>(begin), static_cast<size_t>(t.n_bytes));
  }
  return out;
}

}  // namespace

Result<File> parse(std::span<const std::byte> file, const Limits& limits) {
  Parser parser(file, limits);
  return parser.run();
}

}  // namespace ztslm::gguf
