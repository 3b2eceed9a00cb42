// libFuzzer target for the signature bundle and statement parsers and the signature check.
// Properties: parsing never crashes; a bundle is accepted by verify_bundle only when its
// signature verifies over PAE(payloadType, payload) with the trusted key, its payload type is
// in-toto and its statement is self-consistent; a parsed statement re-serialises to a statement
// that parses equal (idempotent).
#include <cstdint>
#include <string_view>

#include "core/byte_reader.h"
#include "core/check.h"
#include "provenance/bundle.h"
#include "provenance/crypto.h"
#include "provenance/model_signing.h"
#include "provenance/statement.h"

namespace {

using namespace ztslm::provenance;

// The P-256 public TEST key of ../shared/testdata/model-signing/generated/keys (the seeds under
// fuzz/corpus/provenance_bundle are signed with its private half).
constexpr std::string_view kTrustedPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEas6DjIfMd87270sr4l6McIyLPi8i\n"
    "NZqNDuEF8NhWq6olNuw6OMUX96vFsVADFt2asyDRt0xxQkjod+4iBfS9yg==\n"
    "-----END PUBLIC KEY-----\n";

BundleLimits fuzz_bundle_limits() {
  BundleLimits l;
  l.max_bundle_bytes = 1 << 20;
  l.max_payload_bytes = 1 << 19;
  return l;
}

bool same_statement(const Statement& a, const Statement& b) {
  if (a.subject_name != b.subject_name || a.root_digest != b.root_digest ||
      a.resources.size() != b.resources.size() || a.serialization.method != b.serialization.method ||
      a.serialization.hash_type != b.serialization.hash_type ||
      a.serialization.allow_symlinks != b.serialization.allow_symlinks ||
      a.serialization.shard_size != b.serialization.shard_size ||
      a.serialization.ignore_paths != b.serialization.ignore_paths) {
    return false;
  }
  for (size_t i = 0; i < a.resources.size(); ++i) {
    if (a.resources[i].name != b.resources[i].name || a.resources[i].digest != b.resources[i].digest) return false;
  }
  return true;
}

void check_statement_idempotent(const Statement& st) {
  const std::string again = write_statement(st);
  auto reparsed = parse_statement(ztslm::as_bytes(again));
  ZTSLM_CHECK(reparsed.has_value());
  ZTSLM_CHECK(same_statement(st, *reparsed));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const PublicKey key = std::move(PublicKey::from_pem(kTrustedPem)).value();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto bundle = parse_bundle(text, fuzz_bundle_limits());
  if (bundle.has_value()) {
    auto st = verify_bundle(*bundle, key);
    if (st.has_value()) {
      // Accepted: each condition that acceptance stands for must hold independently.
      ZTSLM_CHECK(bundle->material == MaterialKind::kPublicKey);
      ZTSLM_CHECK(bundle->payload_type == kInTotoPayloadType);
      ZTSLM_CHECK(key.verify(dsse_pae(bundle->payload_type, bundle->payload), bundle->signature));
      ZTSLM_CHECK(!bundle->key_hint.has_value() || *bundle->key_hint == key.hint());
      ZTSLM_CHECK(root_digest_of(st->resources) == st->root_digest);
      check_statement_idempotent(*st);
    }
    // The writer's form of an accepted-looking bundle parses back to the same fields.
    if (bundle->key_hint.has_value() && bundle->material == MaterialKind::kPublicKey && !bundle->key_raw_pem) {
      auto again = parse_bundle(write_bundle(*bundle->key_hint, bundle->payload, bundle->signature));
      ZTSLM_CHECK(again.has_value() && again->payload == bundle->payload && again->signature == bundle->signature);
    }
    return 0;
  }
  // Not a bundle: try the bytes as a statement.
  auto st = parse_statement(ztslm::as_bytes(text));
  if (st.has_value()) check_statement_idempotent(*st);
  return 0;
}
