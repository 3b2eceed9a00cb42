// in-toto Statement v1 with the model-signing predicate (https://model_signing/signature/v1.0),
// the payload of a model signature (../shared/testdata/model-signing/SPEC.md §4-6).
//
// Grammar accepted (JSON; duplicate member names rejected; unknown members ignored):
//   statement = { "_type": "https://in-toto.io/Statement/v1",
//                 "subject": [ { "name": string, "digest": { "sha256": hex64 } } ]  (exactly one),
//                 "predicateType": "https://model_signing/signature/v1.0",
//                 "predicate": { "serialization": serialization, "resources": [ resource ... ] } }
//   serialization = { "method": "files" | "shards", "hash_type": "sha256" | "blake2b",
//                     "allow_symlinks": bool, "shard_size"?: integral number > 0 (shards only),
//                     "ignore_paths"?: [ relative path ... ] }
//   resource = { "name": path | path ":" start ":" end, "algorithm": string, "digest": hex }
// Semantic checks done here: names are relative and normalised (no "..", ".", "\", NUL, empty
// component, trailing "/"; "." alone only for a single-file model), no duplicate names, shard
// ranges well-formed, algorithm consistent with hash_type, digest length of the hash, and the
// subject digest equal to SHA-256 over the concatenated resource digests (§6).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "provenance/crypto.h"

namespace ztslm::provenance {

inline constexpr std::string_view kStatementType = "https://in-toto.io/Statement/v1";
inline constexpr std::string_view kPredicateType = "https://model_signing/signature/v1.0";

struct StatementLimits {
  size_t max_payload_bytes = size_t{48} << 20;  // as BundleLimits::max_payload_bytes
  size_t max_resources = 1u << 20;              // a 1 TB model in 1 MB shards
  size_t max_name_bytes = 4096;                 // PATH_MAX
  size_t max_ignore_paths = 4096;
  size_t max_depth = 32;
};

enum class Method { kFiles, kShards };

struct Serialization {
  Method method = Method::kFiles;
  HashType hash_type = HashType::kSha256;
  bool allow_symlinks = false;
  uint64_t shard_size = 0;                // shards only
  std::vector<std::string> ignore_paths;  // signed ignore paths (relative)
};

struct Resource {
  std::string name;       // as signed ("d0/f00", "w.bin:0:1024", ".")
  std::string path;       // the file part of name
  uint64_t start = 0;     // shards: byte range [start, end)
  uint64_t end = 0;
  std::vector<std::byte> digest;
};

// A fully validated statement (see the semantic checks above).
struct Statement {
  std::string subject_name;
  Sha256Digest root_digest{};
  Serialization serialization;
  std::vector<Resource> resources;
};

// Parses the decoded DSSE payload. kMalformed for any defect (the message names it),
// kResourceExhausted past `limits`.
Result<Statement> parse_statement(std::span<const std::byte> payload,
                                  const StatementLimits& limits = StatementLimits());

// True when `path` is a relative, normalised POSIX path (see the rules above; "." is not).
bool is_safe_relative_path(std::string_view path);

// SHA-256 over the concatenation of the resources' digests (SPEC.md §6).
Sha256Digest root_digest_of(std::span<const Resource> resources);

// Serialises `st` the way model_signing does (2-space indented JSON, members in its order). The
// result parses back to `st` with parse_statement.
std::string write_statement(const Statement& st);

}  // namespace ztslm::provenance
