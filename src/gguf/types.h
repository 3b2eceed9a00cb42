// GGUF value types and ggml tensor types (spec/ENGINE.md §1.2, §1.3).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ztslm::gguf {

enum class ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

std::string_view value_type_name(ValueType t);

// ggml_type ids. Only the ones listed in ENGINE.md §1.3 are known; the engine implements a
// subset (see `engine/quant`).
enum class TensorType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
};

struct TypeTraits {
  std::string_view name;   // "Q4_K"
  uint32_t block_elems;    // elements per block (1 for plain types)
  uint32_t block_bytes;    // bytes per block
};

// Traits of a known tensor type id; nullopt for retired or unknown ids.
std::optional<TypeTraits> tensor_type_traits(uint32_t type_id);
inline std::optional<TypeTraits> tensor_type_traits(TensorType t) {
  return tensor_type_traits(static_cast<uint32_t>(t));
}
std::string_view tensor_type_name(TensorType t);
// Parses "Q8_0", "f16", … (case-insensitive); nullopt when unknown.
std::optional<TensorType> tensor_type_from_name(std::string_view name);

}  // namespace ztslm::gguf
