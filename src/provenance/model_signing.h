// Signing and verifying a model (a file or a folder) in the OpenSSF model-signing format, key
// method (../shared/testdata/model-signing/SPEC.md §5.3 and §7).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "provenance/bundle.h"
#include "provenance/crypto.h"
#include "provenance/statement.h"

namespace ztslm::provenance {

// The default signature file of a model: "<file>.sig" next to a single-file model, and
// "<dir>/model.sig" inside a folder model.
std::string default_signature_path(const std::string& model_path);

struct SignOptions {
  std::string signature_path;             // "" = default_signature_path(model)
  Method method = Method::kFiles;
  uint64_t shard_size = 1000000000;       // shards only (the reference's default)
  std::vector<std::string> ignore_paths;  // extra paths relative to the model root
  size_t max_files = 1u << 20;
};

// Hashes the model at `model_path` and writes a signed bundle to the signature path. Returns the
// signed statement. kNotFound / kInvalidArgument for a missing model or a symlink or special
// file inside it (symlinks are not followed), kInternal for I/O errors.
Result<Statement> sign_model(const std::string& model_path, const PrivateKey& key,
                             const SignOptions& opt = SignOptions());

struct VerifyOptions {
  std::string signature_path;                  // "" = default_signature_path(model)
  std::vector<std::string> extra_ignore_paths;  // operator-configured, relative to the model root
  bool ignore_unsigned_files = false;           // tolerate files the manifest does not list
  BundleLimits bundle_limits;
  StatementLimits statement_limits;
  size_t max_files = 1u << 20;
};

// What a successful verification proves.
struct VerifiedModel {
  Statement statement;       // the signed manifest
  std::string root_digest;   // lowercase hex (subject digest)
  std::string signer_hint;   // hint of the key that verified
};

// Checks a parsed bundle's signature with `key`, then parses its statement (SPEC.md §7 steps
// 2-6). Errors: kUnauthenticated "invalid signature: ..." (bad signature, hint of another key,
// unsupported verification material), kMalformed for a bad statement.
Result<Statement> verify_bundle(const Bundle& bundle, const PublicKey& key,
                                const StatementLimits& limits = StatementLimits());

// Full verification of the model at `model_path` against `key` (§7). Errors name the reason:
// kNotFound "missing signature: ...", kMalformed for an unreadable bundle or statement,
// kUnauthenticated "invalid signature: ...", kPermissionDenied "digest mismatch: ..." for a
// model whose files differ from the manifest (changed, missing or unsigned extra file).
Result<VerifiedModel> verify_model(const std::string& model_path, const PublicKey& key,
                                   const VerifyOptions& opt = VerifyOptions());

// Reads a whole small file (signature, key); kNotFound when it cannot be opened,
// kResourceExhausted above `max_bytes`.
Result<std::string> read_small_file(const std::string& path, size_t max_bytes);

}  // namespace ztslm::provenance
