// The model load of `ztslm serve`: the configured trust store, and the model file verified while it
// is copied into a sealed memfd (provenance::verify_and_copy_model into a
// sandbox::SealedMemfdWriter), so that the bytes whose digest was checked are exactly the bytes
// the engine (in process, or a sandboxed worker given the fd) maps. The path is never reopened
// after verification.
#pragma once

#include <string>

#include "core/result.h"
#include "provenance/trust_store.h"
#include "sandbox/unique_fd.h"
#include "server/backend.h"
#include "server/config/config.h"

namespace ztslm::cli {

// A model that passed the configured provenance check (or was admitted by allow_unsigned).
struct VerifiedModel {
  sandbox::UniqueFd fd;               // sealed memfd (sandbox::kModelSeals), close-on-exec
  provenance::LoadedModelInfo info;   // sha256 of the memfd's bytes, signer, signed root digest
  bool verified = false;              // false only under model.allow_unsigned
  std::string path;                   // the file it was copied from (messages only)

  // "sha256:<hex>", the form used in headers, /v1/models, policy input and audit records.
  std::string digest() const { return "sha256:" + info.sha256; }
  // The provenance fields of server::ModelInfo.
  void fill(server::ModelInfo& out) const;
};

// Builds the trust store of `cfg.trust` with `cfg.model.publisher` pinned for the model.
// kInvalidArgument (a config error) naming the publisher when a key cannot be read or parsed.
Result<provenance::TrustStore> build_trust_store(const server::ServerConfig& cfg);

// Verifies `cfg.model.path` against `store` while copying it into a sealed memfd. Errors name
// the reason as verify_and_copy_model does ("missing signature", "untrusted key", "not the
// pinned publisher", "invalid signature", "digest mismatch"), prefixed with the model path;
// nothing is left behind on failure.
Result<VerifiedModel> load_verified_model(const server::ServerConfig& cfg, const provenance::TrustStore& store);

}  // namespace ztslm::cli
