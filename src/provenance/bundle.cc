#include "provenance/bundle.h"

#include <simdjson.h>

#include <nlohmann/json.hpp>

#include "provenance/encoding.h"
#include "provenance/internal/json.h"

namespace ztslm::provenance {
namespace {

using internal::JsonObject;

bool is_lower_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Status parse_material(const JsonObject& vm, const BundleLimits& lim, Bundle& out) {
  const bool has_key = vm.has("publicKey");
  const bool has_chain = vm.has("x509CertificateChain");
  const bool has_cert = vm.has("certificate");
  if (int{has_key} + int{has_chain} + int{has_cert} != 1) {
    return Status::malformed(
        "verificationMaterial needs exactly one of publicKey, x509CertificateChain, certificate");
  }
  if (auto tlog = vm.find("tlogEntries"); tlog.has_value()) {
    simdjson::dom::array a;
    if (tlog->get_array().get(a) != simdjson::SUCCESS) {
      return Status::malformed("verificationMaterial.tlogEntries is not an array");
    }
    if (has_cert && a.size() == 0) return Status::malformed("keyless bundle has no tlogEntries");
  } else if (has_cert) {
    return Status::malformed("keyless bundle has no tlogEntries");
  }
  if (has_chain) {
    ZTSLM_ASSIGN_OR_RETURN(JsonObject chain, vm.object("x509CertificateChain", "x509CertificateChain"));
    ZTSLM_ASSIGN_OR_RETURN(simdjson::dom::array certs, chain.array("certificates"));
    if (certs.size() == 0) return Status::malformed("x509CertificateChain.certificates is empty");
    for (simdjson::dom::element c : certs) {
      ZTSLM_ASSIGN_OR_RETURN(JsonObject cert, JsonObject::from(c, "certificate"));
      ZTSLM_TRY(cert.string("rawBytes"));
    }
    out.material = MaterialKind::kCertificateChain;
    return Status();
  }
  if (has_cert) {
    ZTSLM_ASSIGN_OR_RETURN(JsonObject cert, vm.object("certificate", "certificate"));
    ZTSLM_TRY(cert.string("rawBytes"));
    out.material = MaterialKind::kKeyless;
    return Status();
  }
  ZTSLM_ASSIGN_OR_RETURN(JsonObject pk, vm.object("publicKey", "publicKey"));
  out.material = MaterialKind::kPublicKey;
  ZTSLM_ASSIGN_OR_RETURN(std::optional<std::string_view> hint, pk.optional_string("hint"));
  if (hint.has_value()) {
    if (hint->size() != 64 || !is_lower_hex(*hint)) {
      return Status::malformed("publicKey.hint is not a lowercase hex sha-256");
    }
    out.key_hint = std::string(*hint);
  }
  ZTSLM_ASSIGN_OR_RETURN(std::optional<std::string_view> raw, pk.optional_string("rawBytes"));
  if (raw.has_value()) {
    auto pem = base64_decode(*raw, lim.max_key_bytes);
    if (!pem.has_value()) return pem.error().with_context("publicKey.rawBytes");
    out.key_raw_pem = std::move(pem).value();
  }
  return Status();
}

Status parse_envelope(const JsonObject& env, const BundleLimits& lim, Bundle& out) {
  ZTSLM_ASSIGN_OR_RETURN(std::string_view type, env.string("payloadType"));
  if (type != kInTotoPayloadType) {
    return Status::malformed("dsseEnvelope.payloadType {} is not {}", printable(type, 64), kInTotoPayloadType);
  }
  out.payload_type = std::string(type);
  ZTSLM_ASSIGN_OR_RETURN(std::string_view payload, env.string("payload"));
  auto decoded = base64_decode(payload, lim.max_payload_bytes);
  if (!decoded.has_value()) return decoded.error().with_context("dsseEnvelope.payload");
  out.payload = std::move(decoded).value();
  ZTSLM_ASSIGN_OR_RETURN(simdjson::dom::array sigs, env.array("signatures"));
  if (sigs.size() != 1) {
    return Status::malformed("dsseEnvelope.signatures has {} entries, expected exactly 1", sigs.size());
  }
  ZTSLM_ASSIGN_OR_RETURN(JsonObject sig, JsonObject::from(sigs.at(0).value_unsafe(), "signature"));
  ZTSLM_ASSIGN_OR_RETURN(std::string_view sig_b64, sig.string("sig"));
  auto sig_bytes = base64_decode(sig_b64, lim.max_signature_bytes);
  if (!sig_bytes.has_value()) return sig_bytes.error().with_context("signatures[0].sig");
  if (sig_bytes->empty()) return Status::malformed("signatures[0].sig is empty");
  out.signature = std::move(sig_bytes).value();
  ZTSLM_TRY(sig.optional_string("keyid"));
  return Status();
}

}  // namespace

Result<Bundle> parse_bundle(std::string_view json, const BundleLimits& lim) {
  if (json.empty()) return Status::malformed("signature bundle is empty");
  if (json.size() > lim.max_bundle_bytes) {
    return Status::resource_exhausted("signature bundle of {} bytes exceeds limit {}", json.size(),
                                      lim.max_bundle_bytes);
  }
  simdjson::dom::parser parser;
  if (parser.allocate(json.size(), lim.max_depth) != simdjson::SUCCESS) {
    return Status::resource_exhausted("cannot allocate json parser for {} bytes", json.size());
  }
  const simdjson::padded_string padded(json);
  simdjson::dom::element root;
  if (const auto err = parser.parse(padded).get(root); err != simdjson::SUCCESS) {
    if (err == simdjson::DEPTH_ERROR) {
      return Status::resource_exhausted("signature bundle nests deeper than {}", lim.max_depth);
    }
    return Status::malformed("signature bundle is not valid json: {}", simdjson::error_message(err));
  }
  ZTSLM_ASSIGN_OR_RETURN(JsonObject top, JsonObject::from(root, "bundle"));
  ZTSLM_ASSIGN_OR_RETURN(std::string_view media_type, top.string("mediaType"));
  if (media_type != kBundleMediaType) {
    return Status::malformed("bundle mediaType {} is not {}", printable(media_type, 80), kBundleMediaType);
  }
  Bundle out;
  ZTSLM_ASSIGN_OR_RETURN(JsonObject vm, top.object("verificationMaterial", "verificationMaterial"));
  ZTSLM_TRY(parse_material(vm, lim, out));
  ZTSLM_ASSIGN_OR_RETURN(JsonObject env, top.object("dsseEnvelope", "dsseEnvelope"));
  ZTSLM_TRY(parse_envelope(env, lim, out));
  return out;
}

std::string write_bundle(std::string_view key_hint, std::span<const std::byte> payload,
                         std::span<const std::byte> signature) {
  nlohmann::ordered_json j;
  j["mediaType"] = std::string(kBundleMediaType);
  j["verificationMaterial"]["publicKey"]["hint"] = std::string(key_hint);
  j["verificationMaterial"]["tlogEntries"] = nlohmann::ordered_json::array();
  j["dsseEnvelope"]["payload"] = base64_encode(payload);
  j["dsseEnvelope"]["payloadType"] = std::string(kInTotoPayloadType);
  nlohmann::ordered_json sig;
  sig["sig"] = base64_encode(signature);
  sig["keyid"] = "";
  j["dsseEnvelope"]["signatures"] = nlohmann::ordered_json::array({sig});
  return j.dump();
}

}  // namespace ztslm::provenance
