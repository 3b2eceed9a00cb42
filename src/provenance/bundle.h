// Sigstore bundle (media type application/vnd.dev.sigstore.bundle.v0.3+json) carrying a DSSE
// envelope, as written by OpenSSF model-signing (../shared/testdata/model-signing/SPEC.md §2).
//
// Grammar accepted (JSON, RFC 8259; duplicate member names rejected; unknown members ignored):
//   bundle   = { "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
//                "verificationMaterial": material, "dsseEnvelope": envelope }
//   material = exactly one of { "publicKey": {"hint"?: hex64, "rawBytes"?: base64} }
//              | { "x509CertificateChain": {"certificates": [ {"rawBytes": base64}, ... ]} }
//              | { "certificate": {"rawBytes": base64}, "tlogEntries": [ >= 1 entry ] }
//              ("tlogEntries" may be present, empty or absent for the first two)
//   envelope = { "payloadType": "application/vnd.in-toto+json", "payload": base64,
//                "signatures": [ { "sig": base64, "keyid"?: string | null } ] }  (exactly one)
// Only the publicKey (key) method can be verified by this project; the certificate and keyless
// forms parse so that a caller can say "unsupported" instead of "malformed".
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ztslm::provenance {

inline constexpr std::string_view kBundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json";
inline constexpr std::string_view kInTotoPayloadType = "application/vnd.in-toto+json";

struct BundleLimits {
  // Sharded manifests of large models are the biggest bundles seen (SPEC.md §7.1).
  size_t max_bundle_bytes = size_t{64} << 20;
  size_t max_payload_bytes = size_t{48} << 20;  // decoded statement; base64 is 4/3 of it
  size_t max_signature_bytes = 256;             // DER ECDSA P-521 is at most 139 bytes
  size_t max_key_bytes = 16384;                 // rawBytes PEM of an EC public key is < 300
  size_t max_depth = 32;                        // real bundles nest 6 deep
};

enum class MaterialKind { kPublicKey, kCertificateChain, kKeyless };

// A bundle whose structure is valid; nothing in it is trusted yet (the signature is not checked).
struct Bundle {
  MaterialKind material = MaterialKind::kPublicKey;
  std::optional<std::string> key_hint;               // publicKey.hint (lowercase hex SHA-256)
  std::optional<std::vector<std::byte>> key_raw_pem;  // publicKey.rawBytes, decoded (legacy)
  std::string payload_type;
  std::vector<std::byte> payload;    // decoded statement bytes, exactly as signed
  std::vector<std::byte> signature;  // decoded DER ECDSA signature
};

// Parses `json` (the whole signature file). kMalformed for any defect of the grammar above (the
// message names the member), kResourceExhausted when `limits` are exceeded.
Result<Bundle> parse_bundle(std::string_view json, const BundleLimits& limits = BundleLimits());

// Writes a key-method bundle (hint of `key_hint`, empty tlogEntries, keyid "") around `payload`
// and its DER `signature`. The output parses with parse_bundle.
std::string write_bundle(std::string_view key_hint, std::span<const std::byte> payload,
                         std::span<const std::byte> signature);

}  // namespace ztslm::provenance
