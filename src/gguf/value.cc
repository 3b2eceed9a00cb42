// Value and Metadata: typed metadata values with type-strict accessors.
#include <bit>
#include <cstring>
#include <utility>

#include "core/check.h"
#include "core/utf8.h"
#include "gguf/gguf.h"

namespace ztslm::gguf {
namespace {

// The ValueType a vector alternative of Value::Array holds (kUint8 also covers kBool).
ValueType array_alt_type(const Value::Array& a) {
  switch (a.index()) {
    case 0: return ValueType::kUint8;
    case 1: return ValueType::kInt8;
    case 2: return ValueType::kUint16;
    case 3: return ValueType::kInt16;
    case 4: return ValueType::kUint32;
    case 5: return ValueType::kInt32;
    case 6: return ValueType::kFloat32;
    case 7: return ValueType::kString;
    case 8: return ValueType::kUint64;
    case 9: return ValueType::kInt64;
    default: return ValueType::kFloat64;
  }
}

// Floating-point vectors compare by bit pattern so that NaN payloads compare equal to
// themselves (a parsed file must equal its canonical re-serialisation).
template <typename T>
bool vector_equal(const std::vector<T>& a, const std::vector<T>& b) {
  if constexpr (std::is_floating_point_v<T>) {
    return a.size() == b.size() &&
           (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
  } else {
    return a == b;
  }
}

bool array_equal(const Value::Array& a, const Value::Array& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&b](const auto& va) {
        using V = std::decay_t<decltype(va)>;
        return vector_equal(va, std::get<V>(b));
      },
      a);
}

}  // namespace

template <typename T>
Value Value::scalar(ValueType t, T v) {
  Value out;
  out.type_ = t;
  if constexpr (std::is_same_v<T, bool>) {
    out.uint_ = v ? 1 : 0;
  } else if constexpr (std::is_same_v<T, float>) {
    out.uint_ = std::bit_cast<uint32_t>(v);
    out.float_ = static_cast<double>(v);
  } else if constexpr (std::is_same_v<T, double>) {
    out.uint_ = std::bit_cast<uint64_t>(v);
    out.float_ = v;
  } else if constexpr (std::is_signed_v<T>) {
    out.int_ = v;
  } else {
    out.uint_ = v;
  }
  return out;
}

template Value Value::scalar<uint8_t>(ValueType, uint8_t);
template Value Value::scalar<int8_t>(ValueType, int8_t);
template Value Value::scalar<uint16_t>(ValueType, uint16_t);
template Value Value::scalar<int16_t>(ValueType, int16_t);
template Value Value::scalar<uint32_t>(ValueType, uint32_t);
template Value Value::scalar<int32_t>(ValueType, int32_t);
template Value Value::scalar<uint64_t>(ValueType, uint64_t);
template Value Value::scalar<int64_t>(ValueType, int64_t);
template Value Value::scalar<float>(ValueType, float);
template Value Value::scalar<double>(ValueType, double);
template Value Value::scalar<bool>(ValueType, bool);

Value Value::string(std::string v) {
  Value out;
  out.type_ = ValueType::kString;
  out.str_ = std::move(v);
  return out;
}

Value Value::array(ValueType elem_type, Array items) {
  // Caller bug, not input: the element type must name the vector's alternative.
  const ValueType alt = array_alt_type(items);
  ZTSLM_CHECK(alt == elem_type || (elem_type == ValueType::kBool && alt == ValueType::kUint8));
  Value out;
  out.type_ = ValueType::kArray;
  out.elem_type_ = elem_type;
  out.array_ = std::move(items);
  return out;
}

size_t Value::array_size() const {
  if (type_ != ValueType::kArray) return 0;
  return std::visit([](const auto& v) { return v.size(); }, array_);
}

std::optional<uint32_t> Value::as_u32() const {
  if (type_ != ValueType::kUint32) return std::nullopt;
  return static_cast<uint32_t>(uint_);
}
std::optional<int32_t> Value::as_i32() const {
  if (type_ != ValueType::kInt32) return std::nullopt;
  return static_cast<int32_t>(int_);
}
std::optional<uint64_t> Value::as_u64() const {
  if (type_ != ValueType::kUint64) return std::nullopt;
  return uint_;
}
std::optional<int64_t> Value::as_i64() const {
  if (type_ != ValueType::kInt64) return std::nullopt;
  return int_;
}
std::optional<float> Value::as_f32() const {
  if (type_ != ValueType::kFloat32) return std::nullopt;
  return std::bit_cast<float>(static_cast<uint32_t>(uint_));
}
std::optional<double> Value::as_f64() const {
  if (type_ != ValueType::kFloat64) return std::nullopt;
  return std::bit_cast<double>(uint_);
}
std::optional<bool> Value::as_bool() const {
  if (type_ != ValueType::kBool) return std::nullopt;
  return uint_ != 0;
}
const std::string* Value::as_string() const {
  if (type_ != ValueType::kString) return nullptr;
  return &str_;
}

std::string Value::type_description() const {
  if (type_ != ValueType::kArray) return std::string(value_type_name(type_));
  return "array of " + std::string(value_type_name(elem_type_));
}

bool operator==(const Value& a, const Value& b) {
  if (a.type_ != b.type_) return false;
  switch (a.type_) {
    case ValueType::kString: return a.str_ == b.str_;
    case ValueType::kArray: return a.elem_type_ == b.elem_type_ && array_equal(a.array_, b.array_);
    case ValueType::kInt8:
    case ValueType::kInt16:
    case ValueType::kInt32:
    case ValueType::kInt64: return a.int_ == b.int_;
    default: return a.uint_ == b.uint_;  // unsigned, bool, and float bit patterns
  }
}

bool Metadata::add(std::string key, Value value) {
  if (index_.find(key) != index_.end()) return false;
  index_.emplace(key, entries_.size());
  entries_.emplace_back(std::move(key), std::move(value));
  return true;
}

const Value* Metadata::find(std::string_view key) const {
  const auto it = index_.find(key);
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

bool Metadata::set(std::string key, Value value) {
  const auto it = index_.find(key);
  if (it != index_.end()) {
    entries_[it->second].second = std::move(value);
    return false;
  }
  return add(std::move(key), std::move(value));
}

namespace {

// Looks `key` up and checks that its type is `want` (and, for arrays, `want_elem`).
Result<const Value*> find_typed(const Metadata& md, std::string_view key, ValueType want,
                                ValueType want_elem = ValueType::kUint8) {
  const Value* v = md.find(key);
  if (v == nullptr) return Status::not_found("metadata key {} not found", printable(key, 64));
  const bool ok = v->type() == want && (want != ValueType::kArray || v->elem_type() == want_elem);
  if (!ok) {
    const std::string wanted = want == ValueType::kArray
                                   ? "array of " + std::string(value_type_name(want_elem))
                                   : std::string(value_type_name(want));
    return Status::malformed("metadata key {} has type {}, expected {}", printable(key, 64),
                             v->type_description(), wanted);
  }
  return v;
}

}  // namespace

Result<uint32_t> Metadata::get_u32(std::string_view key) const {
  ZTSLM_ASSIGN_OR_RETURN(const Value* v, find_typed(*this, key, ValueType::kUint32));
  return *v->as_u32();
}
Result<int32_t> Metadata::get_i32(std::string_view key) const {
  ZTSLM_ASSIGN_OR_RETURN(const Value* v, find_typed(*this, key, ValueType::kInt32));
  return *v->as_i32();
}
Result<uint64_t> Metadata::get_u64(std::string_view key) const {
  ZTSLM_ASSIGN_OR_RETURN(const Value* v, find_typed(*this, key, ValueType::kUint64));
  return *v->as_u64();
}
Result<int64_t> Metadata::get_i64(std::string_view key) const {
  ZTSLM_ASSIGN_OR_RETURN(const Value* v, find_typed(*this, key, ValueType::kInt64));
  return *v->as_i64();
}
Result<float> Metadata::get_f32(std::string_view key) const {
  ZTSLM_ASSIGN_OR_RETURN(const Value* v, find_typed(*this, key, ValueType::kFloat32));
  return *v->as_f32();
}
Result<bool> Metadata::get_bool(std::string_view key) const {
  ZTSLM_ASSIGN_OR_RETURN(const Value* v, find_typed(*this, key, ValueType::kBool));
  return *v->as_bool();
}
Result<std::string_view> Metadata::get_string(std::string_view key) const {
  ZTSLM_ASSIGN_OR_RETURN(const Value* v, find_typed(*this, key, ValueType::kString));
  return std::string_view(*v->as_string());
}
Result<const std::vector<std::string>*> Metadata::get_string_array(std::string_view key) const {
  ZTSLM_ASSIGN_OR_RETURN(const Value* v,
                         find_typed(*this, key, ValueType::kArray, ValueType::kString));
  return v->as_array<std::string>();
}
Result<const std::vector<float>*> Metadata::get_f32_array(std::string_view key) const {
  ZTSLM_ASSIGN_OR_RETURN(const Value* v,
                         find_typed(*this, key, ValueType::kArray, ValueType::kFloat32));
  return v->as_array<float>();
}
Result<const std::vector<int32_t>*> Metadata::get_i32_array(std::string_view key) const {
  ZTSLM_ASSIGN_OR_RETURN(const Value* v,
                         find_typed(*this, key, ValueType::kArray, ValueType::kInt32));
  return v->as_array<int32_t>();
}
Result<const std::vector<uint32_t>*> Metadata::get_u32_array(std::string_view key) const {
  ZTSLM_ASSIGN_OR_RETURN(const Value* v,
                         find_typed(*this, key, ValueType::kArray, ValueType::kUint32));
  return v->as_array<uint32_t>();
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  for (const TensorInfo& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

namespace {

bool tensor_equal(const TensorInfo& a, const TensorInfo& b) {
  return a.name == b.name && a.type == b.type && a.n_dims == b.n_dims && a.ne == b.ne &&
         a.offset == b.offset && a.n_elements == b.n_elements && a.n_bytes == b.n_bytes &&
         a.row_bytes == b.row_bytes && a.data.size() == b.data.size() &&
         (a.data.empty() || std::memcmp(a.data.data(), b.data.data(), a.data.size()) == 0);
}

}  // namespace

bool operator==(const File& a, const File& b) {
  if (a.version != b.version || a.alignment != b.alignment || a.data_offset != b.data_offset ||
      !(a.metadata == b.metadata) || a.tensors.size() != b.tensors.size()) {
    return false;
  }
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    if (!tensor_equal(a.tensors[i], b.tensors[i])) return false;
  }
  return true;
}

}  // namespace ztslm::gguf
