#include "gguf/types.h"

#include <array>
#include <cctype>

namespace ztslm::gguf {
namespace {

struct TypeRow {
  uint32_t id;
  TypeTraits traits;
};

// spec/ENGINE.md §1.3. Retired ids (4, 5, 31–33) and everything unlisted are unknown.
constexpr std::array<TypeRow, 20> kTypes{{
    {0, {"F32", 1, 4}},      {1, {"F16", 1, 2}},      {2, {"Q4_0", 32, 18}},
    {3, {"Q4_1", 32, 20}},   {6, {"Q5_0", 32, 22}},   {7, {"Q5_1", 32, 24}},
    {8, {"Q8_0", 32, 34}},   {9, {"Q8_1", 32, 36}},   {10, {"Q2_K", 256, 84}},
    {11, {"Q3_K", 256, 110}}, {12, {"Q4_K", 256, 144}}, {13, {"Q5_K", 256, 176}},
    {14, {"Q6_K", 256, 210}}, {15, {"Q8_K", 256, 292}}, {24, {"I8", 1, 1}},
    {25, {"I16", 1, 2}},     {26, {"I32", 1, 4}},     {27, {"I64", 1, 8}},
    {28, {"F64", 1, 8}},     {30, {"BF16", 1, 2}},
}};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) !=
        std::toupper(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string_view value_type_name(ValueType t) {
  switch (t) {
    case ValueType::kUint8: return "u8";
    case ValueType::kInt8: return "i8";
    case ValueType::kUint16: return "u16";
    case ValueType::kInt16: return "i16";
    case ValueType::kUint32: return "u32";
    case ValueType::kInt32: return "i32";
    case ValueType::kFloat32: return "f32";
    case ValueType::kBool: return "bool";
    case ValueType::kString: return "string";
    case ValueType::kArray: return "array";
    case ValueType::kUint64: return "u64";
    case ValueType::kInt64: return "i64";
    case ValueType::kFloat64: return "f64";
  }
  return "unknown";
}

std::optional<TypeTraits> tensor_type_traits(uint32_t type_id) {
  for (const TypeRow& row : kTypes) {
    if (row.id == type_id) return row.traits;
  }
  return std::nullopt;
}

std::string_view tensor_type_name(TensorType t) {
  const auto traits = tensor_type_traits(t);
  return traits ? traits->name : std::string_view("unknown");
}

std::optional<TensorType> tensor_type_from_name(std::string_view name) {
  for (const TypeRow& row : kTypes) {
    if (iequals(row.traits.name, name)) return static_cast<TensorType>(row.id);
  }
  return std::nullopt;
}

}  // namespace ztslm::gguf
