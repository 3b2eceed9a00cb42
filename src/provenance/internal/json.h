// Strict access to simdjson DOM objects for the bundle and statement parsers: duplicate member
// names are rejected (SPEC.md §7.5), members are looked up by name, types are checked.
#pragma once

#include <simdjson.h>

#include <optional>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/utf8.h"

namespace ztslm::provenance::internal {

// The members of one JSON object, checked for duplicate names.
class JsonObject final {
 public:
  // kMalformed when `e` is not an object or has a duplicate member name; `what` names it.
  static Result<JsonObject> from(simdjson::dom::element e, std::string_view what) {
    simdjson::dom::object obj;
    if (e.get_object().get(obj) != simdjson::SUCCESS) return Status::malformed("{} is not an object", what);
    JsonObject out;
    out.what_ = what;
    for (auto field : obj) {
      for (const auto& m : out.members_) {
        if (m.first == field.key) {
          return Status::malformed("{} has duplicate member {}", what, printable(field.key, 64));
        }
      }
      out.members_.emplace_back(field.key, field.value);
    }
    return out;
  }

  std::optional<simdjson::dom::element> find(std::string_view key) const {
    for (const auto& m : members_) {
      if (m.first == key) return m.second;
    }
    return std::nullopt;
  }
  bool has(std::string_view key) const { return find(key).has_value(); }

  // A required string member.
  Result<std::string_view> string(std::string_view key) const {
    auto e = find(key);
    if (!e) return Status::malformed("{} has no {}", what_, key);
    std::string_view s;
    if (e->get_string().get(s) != simdjson::SUCCESS) return Status::malformed("{}.{} is not a string", what_, key);
    return s;
  }
  // An optional string member (absent or null → nullopt).
  Result<std::optional<std::string_view>> optional_string(std::string_view key) const {
    auto e = find(key);
    if (!e || e->is_null()) return std::optional<std::string_view>();
    std::string_view s;
    if (e->get_string().get(s) != simdjson::SUCCESS) return Status::malformed("{}.{} is not a string", what_, key);
    return std::optional<std::string_view>(s);
  }
  Result<simdjson::dom::array> array(std::string_view key) const {
    auto e = find(key);
    if (!e) return Status::malformed("{} has no {}", what_, key);
    simdjson::dom::array a;
    if (e->get_array().get(a) != simdjson::SUCCESS) return Status::malformed("{}.{} is not an array", what_, key);
    return a;
  }
  Result<JsonObject> object(std::string_view key, std::string_view what) const {
    auto e = find(key);
    if (!e) return Status::malformed("{} has no {}", what_, key);
    return from(*e, what);
  }

 private:
  std::string_view what_;
  std::vector<std::pair<std::string_view, simdjson::dom::element>> members_;
};

}  // namespace ztslm::provenance::internal
