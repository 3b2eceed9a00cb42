// Rego values: null, boolean, number, string, array, set, object (plus "undefined", which is
// not a value but the absence of one). Values are immutable and cheap to copy: scalars are
// stored inline, strings and collections behind a shared pointer to const data, so one value
// can be shared by any number of threads and documents.
//
// Numbers keep integers exact as int64; a result that does not fit (or is not integral) is a
// double. Collections keep OPA's deterministic order: sets and objects are sorted by the total
// order over values (null < boolean < number < string < array < object < set).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ztslm::policy {

enum class Kind : uint8_t { kUndefined, kNull, kBool, kNumber, kString, kArray, kSet, kObject };

class Value;
using Array = std::vector<Value>;                  // in order
using SetItems = std::vector<Value>;               // sorted, unique
using Entries = std::vector<std::pair<Value, Value>>;  // sorted by key, keys unique

class Value final {
 public:
  Value() = default;  // undefined

  static Value null();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  // A double; an integral value within int64 range becomes an integer (1.0 == 1).
  static Value number(double d);
  static Value string(std::string s);
  static Value array(Array items);
  // Sorts and removes duplicates.
  static Value set(SetItems items);
  // Items already sorted and unique (the caller guarantees it).
  static Value set_sorted(SetItems items);
  // Sorts by key; for a duplicated key the last entry wins.
  static Value object(Entries entries);
  static Value object_sorted(Entries entries);
  static Value empty_object();
  static Value empty_set();
  static Value empty_array();

  Kind kind() const { return kind_; }
  bool is_defined() const { return kind_ != Kind::kUndefined; }
  bool is_null() const { return kind_ == Kind::kNull; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_number() const { return kind_ == Kind::kNumber; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool is_set() const { return kind_ == Kind::kSet; }
  bool is_object() const { return kind_ == Kind::kObject; }
  bool is_collection() const { return kind_ >= Kind::kArray; }

  bool as_bool() const { return b_; }
  bool is_int() const { return kind_ == Kind::kNumber && is_int_; }
  int64_t as_int() const { return i_; }
  double as_double() const { return is_int_ ? static_cast<double>(i_) : d_; }
  const std::string& as_string() const;
  const Array& as_array() const;     // array
  const SetItems& items() const;     // set
  const Entries& entries() const;    // object
  // Number of elements of a collection or bytes of a string; 0 otherwise.
  size_t size() const;

  // Object lookup; undefined when absent (or when this is not an object).
  Value get(const Value& key) const;
  Value get(std::string_view key) const;
  // Set membership.
  bool contains(const Value& v) const;
  // Generic index: array[int], object[key], set[elem] -> elem. Undefined when absent.
  Value index(const Value& key) const;

  // "null", "boolean", "number", "string", "array", "set", "object".
  std::string_view type_name() const;

  // Total order and equality (numbers by value across int/double).
  friend int compare(const Value& a, const Value& b);
  friend bool operator==(const Value& a, const Value& b) { return compare(a, b) == 0; }
  friend bool operator<(const Value& a, const Value& b) { return compare(a, b) < 0; }

  // Approximate bytes held (for memory accounting of results).
  size_t approx_bytes() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool is_int_ = true;
  bool b_ = false;
  union {
    int64_t i_ = 0;
    double d_;
  };
  std::shared_ptr<const void> p_;
};

int compare(const Value& a, const Value& b);

// Sorts and de-duplicates `items` in place.
void sort_unique(SetItems& items);

// Rego text for a value (`{"a": 1}`, `{1, 2}`, `set()`), as OPA prints terms.
std::string to_rego(const Value& v);
// JSON text (sets as arrays, non-string object keys as their JSON text). Undefined -> "".
std::string to_json(const Value& v);
// Appends a number in OPA's style: integers exactly, doubles in shortest round-trip form.
void append_number(std::string& out, const Value& v);
// A JSON string literal for `s` (escapes as Go's encoding/json without HTML escaping).
void append_json_string(std::string& out, std::string_view s);

}  // namespace ztslm::policy
