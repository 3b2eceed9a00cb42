// Trust store (publishers' public keys, optional publisher pinned per model) and the verified
// load of a single-file model: the file is hashed while it is copied into a caller-supplied sink
// (the gateway's sealed memfd, see sandbox/memfd.h), and the signed digest is compared with that
// hash, so the bytes verified are exactly the bytes that will be executed.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "provenance/bundle.h"
#include "provenance/crypto.h"
#include "provenance/statement.h"

namespace ztslm::provenance {

struct Publisher {
  std::string name;  // operator's label, goes into audit records as the signer
  PublicKey key;
};

class TrustStore final {
 public:
  // Adds a trusted publisher. kInvalidArgument for an empty or duplicate name or a key that is
  // already trusted under another name.
  Status add_publisher(std::string name, PublicKey key);
  // Loads the PEM file at `pem_path` and adds it as `name` (errors as add_publisher and
  // PublicKey::from_pem, kNotFound for a missing file).
  Status add_publisher_pem_file(std::string name, const std::string& pem_path);
  // Requires model `model_name` to be signed by `publisher` (which must have been added).
  Status pin_model(std::string model_name, std::string publisher);

  const std::vector<Publisher>& publishers() const { return publishers_; }
  // The publisher pinned for `model_name`, or nullptr when none is.
  const Publisher* pinned_for(std::string_view model_name) const;
  const Publisher* find(std::string_view name) const;

 private:
  std::vector<Publisher> publishers_;
  std::vector<std::pair<std::string, std::string>> pins_;  // model -> publisher
};

struct LoadOptions {
  std::string model_name;       // name in the config; selects a pinned publisher
  std::string signature_path;   // "" = "<model>.sig"
  bool allow_unsigned = false;  // skip verification; the signer becomes "unverified"
  size_t max_model_bytes = size_t{64} << 30;
  BundleLimits bundle_limits;
  StatementLimits statement_limits;
};

// Receives the model bytes in order; returns a non-ok Status to abort the load.
using ChunkSink = std::function<Status(std::span<const std::byte>)>;

inline constexpr std::string_view kUnverifiedSigner = "unverified";

struct LoadedModelInfo {
  std::string sha256;       // lowercase hex SHA-256 of the bytes given to the sink
  std::string signer;       // publisher name, or "unverified" (allow_unsigned)
  std::string root_digest;  // the signed subject digest ("" when unverified)
  uint64_t n_bytes = 0;
};

// Verifies the signature of the single-file model at `path` against `store`, then copies the file
// into `sink` while hashing it, and accepts only when that hash equals the signed digest. The
// caller must discard what the sink received when this fails. Errors, each naming the reason:
//   kNotFound          "missing signature: <path>"
//   kMalformed         unreadable bundle or statement
//   kPermissionDenied  "untrusted key: ..." (no trusted key), "untrusted key: not the pinned
//                      publisher: ..." (signed by a key other than the pinned publisher's)
//   kUnauthenticated   "invalid signature: ..."
//   kPermissionDenied  "digest mismatch: ..." (the file is not what was signed)
//   kFailedPrecondition the manifest is not one sha256 "files" resource for this file
Result<LoadedModelInfo> verify_and_copy_model(const std::string& path, const TrustStore& store,
                                              const LoadOptions& opt, const ChunkSink& sink);

}  // namespace ztslm::provenance
