#include "provenance/statement.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "provenance/encoding.h"
#include "provenance/internal/json.h"

namespace ztslm::provenance {
namespace {

using internal::JsonObject;

std::string_view hash_name(HashType t) { return t == HashType::kSha256 ? "sha256" : "blake2b"; }

Result<uint64_t> parse_decimal(std::string_view s) {
  uint64_t v = 0;
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return Status::malformed("shard bound is not a decimal");
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return Status::malformed("shard bound is not a decimal");
  return v;
}

Result<Serialization> parse_serialization(const JsonObject& o, const StatementLimits& lim) {
  Serialization s;
  ZTSLM_ASSIGN_OR_RETURN(std::string_view method, o.string("method"));
  if (method == "files") {
    s.method = Method::kFiles;
  } else if (method == "shards") {
    s.method = Method::kShards;
  } else {
    return Status::malformed("serialization method {} is not files or shards", printable(method, 32));
  }
  ZTSLM_ASSIGN_OR_RETURN(std::string_view hash, o.string("hash_type"));
  if (hash == "sha256") {
    s.hash_type = HashType::kSha256;
  } else if (hash == "blake2b") {
    s.hash_type = HashType::kBlake2b;
  } else {
    return Status::malformed("serialization hash_type {} is not supported", printable(hash, 32));
  }
  auto sym = o.find("allow_symlinks");
  if (!sym.has_value() || sym->get_bool().get(s.allow_symlinks) != simdjson::SUCCESS) {
    return Status::malformed("serialization.allow_symlinks is missing or not a bool");
  }
  if (s.method == Method::kShards) {
    auto size = o.find("shard_size");
    if (!size.has_value()) return Status::malformed("shards serialization has no shard_size");
    uint64_t u = 0;
    double d = 0;
    if (size->get_uint64().get(u) == simdjson::SUCCESS) {
      s.shard_size = u;
    } else if (size->get_double().get(d) == simdjson::SUCCESS && d >= 1 && d <= 9007199254740992.0 &&
               std::floor(d) == d) {
      s.shard_size = static_cast<uint64_t>(d);
    } else {
      return Status::malformed("serialization.shard_size is not a positive integral number");
    }
    if (s.shard_size == 0) return Status::malformed("serialization.shard_size is 0");
  }
  if (o.has("ignore_paths")) {
    ZTSLM_ASSIGN_OR_RETURN(simdjson::dom::array paths, o.array("ignore_paths"));
    if (paths.size() > lim.max_ignore_paths) {
      return Status::resource_exhausted("ignore_paths has {} entries, limit {}", paths.size(), lim.max_ignore_paths);
    }
    for (simdjson::dom::element p : paths) {
      std::string_view v;
      if (p.get_string().get(v) != simdjson::SUCCESS) return Status::malformed("ignore_paths entry is not a string");
      if (v.size() > lim.max_name_bytes || !is_safe_relative_path(v)) {
        return Status::malformed("ignore_paths entry {} is not a relative path", printable(v, 64));
      }
      s.ignore_paths.emplace_back(v);
    }
  }
  return s;
}

Status parse_resource(const JsonObject& o, const Serialization& ser, const StatementLimits& lim, Resource& r) {
  ZTSLM_ASSIGN_OR_RETURN(std::string_view name, o.string("name"));
  if (name.size() > lim.max_name_bytes) {
    return Status::resource_exhausted("resource name of {} bytes exceeds limit {}", name.size(), lim.max_name_bytes);
  }
  r.name = std::string(name);
  std::string_view path = name;
  if (ser.method == Method::kShards) {
    const size_t c2 = name.rfind(':');
    const size_t c1 = c2 == std::string_view::npos || c2 == 0 ? std::string_view::npos : name.rfind(':', c2 - 1);
    if (c1 == std::string_view::npos) {
      return Status::malformed("shard resource {} is not path:start:end", printable(name, 64));
    }
    path = name.substr(0, c1);
    ZTSLM_ASSIGN_OR_RETURN(r.start, parse_decimal(name.substr(c1 + 1, c2 - c1 - 1)));
    ZTSLM_ASSIGN_OR_RETURN(r.end, parse_decimal(name.substr(c2 + 1)));
    if (r.start >= r.end || r.end - r.start > ser.shard_size || r.start % ser.shard_size != 0) {
      return Status::malformed("shard resource {} has an invalid range", printable(name, 64));
    }
  }
  if (path != "." && !is_safe_relative_path(path)) {
    return Status::malformed("resource name {} is not a normalised relative path", printable(name, 64));
  }
  r.path = std::string(path);
  ZTSLM_ASSIGN_OR_RETURN(std::string_view algorithm, o.string("algorithm"));
  const std::string_view hash = hash_name(ser.hash_type);
  bool algorithm_ok = algorithm == hash;
  if (!algorithm_ok && ser.method == Method::kShards) {
    algorithm_ok = algorithm == std::string(hash) + "-sharded-" + std::to_string(ser.shard_size);
  }
  if (!algorithm_ok) {
    return Status::malformed("resource {} algorithm {} does not match hash_type {}", printable(name, 64),
                             printable(algorithm, 40), hash);
  }
  ZTSLM_ASSIGN_OR_RETURN(std::string_view digest, o.string("digest"));
  auto bytes = hex_decode(digest, Hasher::digest_bytes(ser.hash_type));
  if (!bytes.has_value()) return bytes.error().with_context("resource " + printable(name, 64));
  r.digest = std::move(bytes).value();
  return Status();
}

}  // namespace

bool is_safe_relative_path(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.back() == '/') return false;
  if (path.find('\\') != std::string_view::npos || path.find('\0') != std::string_view::npos) return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view comp = path.substr(start, end - start);
    if (comp.empty() || comp == "." || comp == "..") return false;
    start = end + 1;
  }
  return true;
}

Sha256Digest root_digest_of(std::span<const Resource> resources) {
  Hasher h(HashType::kSha256);
  for (const Resource& r : resources) h.update(r.digest);
  const std::vector<std::byte> d = h.finish();
  Sha256Digest out{};
  std::copy(d.begin(), d.end(), out.begin());
  return out;
}

Result<Statement> parse_statement(std::span<const std::byte> payload, const StatementLimits& lim) {
  if (payload.size() > lim.max_payload_bytes) {
    return Status::resource_exhausted("statement of {} bytes exceeds limit {}", payload.size(), lim.max_payload_bytes);
  }
  const std::string_view text(reinterpret_cast<const char*>(payload.data()), payload.size());
  simdjson::dom::parser parser;
  if (parser.allocate(std::max<size_t>(text.size(), 1), lim.max_depth) != simdjson::SUCCESS) {
    return Status::resource_exhausted("cannot allocate json parser for {} bytes", text.size());
  }
  const simdjson::padded_string padded(text);
  simdjson::dom::element root;
  if (const auto err = parser.parse(padded).get(root); err != simdjson::SUCCESS) {
    return Status::malformed("statement is not valid json: {}", simdjson::error_message(err));
  }
  ZTSLM_ASSIGN_OR_RETURN(JsonObject top, JsonObject::from(root, "statement"));
  ZTSLM_ASSIGN_OR_RETURN(std::string_view type, top.string("_type"));
  if (type != kStatementType) return Status::malformed("statement _type {} is not {}", printable(type, 64), kStatementType);
  ZTSLM_ASSIGN_OR_RETURN(std::string_view pred_type, top.string("predicateType"));
  if (pred_type != kPredicateType) {
    return Status::malformed("statement predicateType {} is not {}", printable(pred_type, 64), kPredicateType);
  }
  ZTSLM_ASSIGN_OR_RETURN(simdjson::dom::array subjects, top.array("subject"));
  if (subjects.size() != 1) return Status::malformed("statement has {} subjects, expected exactly 1", subjects.size());
  Statement st;
  {
    simdjson::dom::element e;
    if (subjects.at(0).get(e) != simdjson::SUCCESS) return Status::malformed("statement subject unreadable");
    ZTSLM_ASSIGN_OR_RETURN(JsonObject subject, JsonObject::from(e, "subject"));
    ZTSLM_ASSIGN_OR_RETURN(std::string_view name, subject.string("name"));
    if (name.empty() || name.size() > lim.max_name_bytes) return Status::malformed("subject name is empty or too long");
    st.subject_name = std::string(name);
    ZTSLM_ASSIGN_OR_RETURN(JsonObject digest, subject.object("digest", "subject.digest"));
    ZTSLM_ASSIGN_OR_RETURN(std::string_view sha, digest.string("sha256"));
    auto bytes = hex_decode(sha, 32);
    if (!bytes.has_value()) return bytes.error().with_context("subject digest");
    std::copy(bytes->begin(), bytes->end(), st.root_digest.begin());
  }
  ZTSLM_ASSIGN_OR_RETURN(JsonObject predicate, top.object("predicate", "predicate"));
  ZTSLM_ASSIGN_OR_RETURN(JsonObject ser, predicate.object("serialization", "serialization"));
  ZTSLM_ASSIGN_OR_RETURN(st.serialization, parse_serialization(ser, lim));
  ZTSLM_ASSIGN_OR_RETURN(simdjson::dom::array resources, predicate.array("resources"));
  if (resources.size() > lim.max_resources) {
    return Status::resource_exhausted("statement has {} resources, limit {}", resources.size(), lim.max_resources);
  }
  st.resources.reserve(resources.size());
  std::unordered_set<std::string_view> names;
  bool has_dot = false;
  for (simdjson::dom::element e : resources) {
    ZTSLM_ASSIGN_OR_RETURN(JsonObject ro, JsonObject::from(e, "resource"));
    Resource r;
    ZTSLM_TRY(parse_resource(ro, st.serialization, lim, r));
    st.resources.push_back(std::move(r));
    has_dot = has_dot || st.resources.back().path == ".";
  }
  for (const Resource& r : st.resources) {
    if (!names.insert(r.name).second) {
      return Status::malformed("resource {} is listed twice", printable(r.name, 64));
    }
    // "." names the whole model when it is a single file; it cannot sit beside other files.
    if (has_dot && r.path != ".") return Status::malformed("resource \".\" mixed with named files");
  }
  // SECURITY: the subject digest is what a caller pins and logs; it must bind the resources.
  if (root_digest_of(st.resources) != st.root_digest) {
    return Status::malformed("subject digest does not match the resources (manifest is inconsistent)");
  }
  return st;
}

std::string write_statement(const Statement& st) {
  nlohmann::ordered_json j;
  j["_type"] = std::string(kStatementType);
  nlohmann::ordered_json subject;
  subject["name"] = st.subject_name;
  subject["digest"]["sha256"] = hex_encode(st.root_digest);
  j["subject"] = nlohmann::ordered_json::array({subject});
  j["predicateType"] = std::string(kPredicateType);
  nlohmann::ordered_json ser;
  const Serialization& s = st.serialization;
  ser["method"] = s.method == Method::kFiles ? "files" : "shards";
  ser["hash_type"] = std::string(hash_name(s.hash_type));
  ser["allow_symlinks"] = s.allow_symlinks;
  if (s.method == Method::kShards) ser["shard_size"] = static_cast<double>(s.shard_size);
  if (!s.ignore_paths.empty()) ser["ignore_paths"] = s.ignore_paths;
  j["predicate"]["serialization"] = ser;
  nlohmann::ordered_json resources = nlohmann::ordered_json::array();
  for (const Resource& r : st.resources) {
    nlohmann::ordered_json o;
    o["algorithm"] = s.method == Method::kFiles
                         ? std::string(hash_name(s.hash_type))
                         : std::string(hash_name(s.hash_type)) + "-sharded-" + std::to_string(s.shard_size);
    o["digest"] = hex_encode(r.digest);
    o["name"] = r.name;
    resources.push_back(std::move(o));
  }
  j["predicate"]["resources"] = std::move(resources);
  return j.dump(2);
}

}  // namespace ztslm::provenance
