#include "identity/internal/json.h"

#include <algorithm>
#include <vector>

namespace ztslm::identity::internal {
namespace {

// Walks `el` and rejects any object with a repeated member name. Depth is already bounded by
// the parser, so the recursion is too.
bool has_duplicate_keys(simdjson::dom::element el) {
  simdjson::dom::object obj;
  simdjson::dom::array arr;
  if (el.get_object().get(obj) == simdjson::SUCCESS) {
    std::vector<std::string_view> keys;
    keys.reserve(obj.size());
    for (auto field : obj) {
      keys.push_back(field.key);
      if (has_duplicate_keys(field.value)) return true;
    }
    std::sort(keys.begin(), keys.end());
    return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
  }
  if (el.get_array().get(arr) == simdjson::SUCCESS) {
    for (simdjson::dom::element child : arr) {
      if (has_duplicate_keys(child)) return true;
    }
  }
  return false;
}

}  // namespace

Status JsonDoc::parse(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return Status::resource_exhausted("json document of {} bytes exceeds limit {}", text.size(),
                                      limits.max_bytes);
  }
  if (parser_.capacity() < std::max<size_t>(text.size(), 64) || parser_.max_depth() != limits.max_depth) {
    if (parser_.allocate(std::max<size_t>(text.size(), 64), limits.max_depth) != simdjson::SUCCESS) {
      return Status::resource_exhausted("json parser allocation failed");
    }
  }
  // realloc_if_needed copies the text into a padded buffer owned by the parser.
  const auto err = parser_.parse(text.data(), text.size(), /*realloc_if_needed=*/true).get(root_);
  if (err != simdjson::SUCCESS) {
    return Status::malformed("json: {}", simdjson::error_message(err));
  }
  if (has_duplicate_keys(root_)) return Status::malformed("json: duplicate member name");
  return Status();
}

Result<std::optional<std::string_view>> get_string(simdjson::dom::object obj, std::string_view key) {
  simdjson::dom::element el;
  if (obj.at_key(key).get(el) != simdjson::SUCCESS) return std::optional<std::string_view>();
  std::string_view s;
  if (el.get_string().get(s) != simdjson::SUCCESS) {
    return Status::malformed("json member \"{}\" is not a string", key);
  }
  return std::optional<std::string_view>(s);
}

}  // namespace ztslm::identity::internal
