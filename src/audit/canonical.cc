#include "audit/canonical.h"

#include <openssl/sha.h>

#include <simdjson.h>

#include <string>

namespace ztslm::audit {
namespace {

// simdjson DOM -> Json. Depth is already bounded by the parser's max_depth.
Result<Json> to_json(simdjson::dom::element e) {
  using simdjson::dom::element_type;
  switch (e.type()) {
    case element_type::OBJECT: {
      Json obj = Json::object();
      for (simdjson::dom::key_value_pair kv : simdjson::dom::object(e)) {
        ZTSLM_ASSIGN_OR_RETURN(Json v, to_json(kv.value));
        // A duplicate key overwrites the first; the canonical comparison then fails.
        obj[std::string(kv.key)] = std::move(v);
      }
      return obj;
    }
    case element_type::ARRAY: {
      Json arr = Json::array();
      for (simdjson::dom::element item : simdjson::dom::array(e)) {
        ZTSLM_ASSIGN_OR_RETURN(Json v, to_json(item));
        arr.push_back(std::move(v));
      }
      return arr;
    }
    case element_type::INT64: return Json(int64_t(e));
    case element_type::UINT64: return Json(uint64_t(e));
    case element_type::DOUBLE: return Status::malformed("floating-point number in record");
    case element_type::STRING: return Json(std::string(std::string_view(e)));
    case element_type::BOOL: return Json(bool(e));
    case element_type::NULL_VALUE: return Json(nullptr);
  }
  return Status::malformed("unknown json element");
}

}  // namespace

std::string canonical_dump(const Json& value) {
  try {
    return value.dump(-1, ' ', false, Json::error_handler_t::replace);
  } catch (...) {
    // dump() throws only on invalid UTF-8 with the strict handler; `replace` never does. Keep a
    // defined result anyway: an empty string never verifies.
    return std::string();
  }
}

struct RecordParser::Impl {
  simdjson::dom::parser parser;
  std::string padded;  // line copy with SIMDJSON_PADDING spare bytes
};

RecordParser::RecordParser(const ParseLimits& limits) : limits_(limits), impl_(new Impl) {
  impl_->parser = simdjson::dom::parser(limits_.max_line_bytes);
  // Fixes max_depth for every later parse (simdjson keeps it on reallocation).
  const simdjson::error_code err = impl_->parser.allocate(4096, limits_.max_depth);
  (void)err;  // on failure the first parse() allocates again and reports MEMALLOC
}

RecordParser::~RecordParser() = default;

Result<Json> RecordParser::parse(std::string_view line) {
  if (line.size() > limits_.max_line_bytes) {
    return Status::resource_exhausted("record of {} bytes exceeds limit {}", line.size(),
                                      limits_.max_line_bytes);
  }
  if (line.empty() || line.front() != '{') return Status::malformed("record is not a json object");
  std::string& buf = impl_->padded;
  buf.reserve(line.size() + simdjson::SIMDJSON_PADDING);
  buf.assign(line);
  simdjson::dom::element root;
  const simdjson::error_code err = impl_->parser.parse(buf.data(), buf.size(), false).get(root);
  if (err == simdjson::DEPTH_ERROR) {
    return Status::resource_exhausted("record nesting exceeds depth {}", limits_.max_depth);
  }
  if (err == simdjson::CAPACITY) {
    return Status::resource_exhausted("record exceeds {} bytes", limits_.max_line_bytes);
  }
  if (err != simdjson::SUCCESS) {
    return Status::malformed("record is not valid json ({})", simdjson::error_message(err));
  }
  if (root.type() != simdjson::dom::element_type::OBJECT) {
    return Status::malformed("record is not a json object");
  }
  Result<Json> value = [&]() -> Result<Json> {
    try {
      return to_json(root);
    } catch (...) {
      return Status::malformed("record could not be converted");
    }
  }();
  if (!value.has_value()) return value;
  if (canonical_dump(*value) != line) return Status::malformed("record is not in canonical form");
  return value;
}

std::string to_hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return out;
}

bool from_hex(std::string_view hex, std::span<uint8_t> out) {
  if (hex.size() != out.size() * 2) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

std::string sha256_hex(std::string_view data) {
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return to_hex(digest);
}

}  // namespace ztslm::audit
