#include "cli/verified_model.h"

#include <sys/stat.h>

#include "provenance/crypto.h"
#include "sandbox/memfd.h"

namespace ztslm::cli {

void VerifiedModel::fill(server::ModelInfo& out) const {
  out.digest = digest();
  out.signer = info.signer;
  out.verified = verified;
}

Result<provenance::TrustStore> build_trust_store(const server::ServerConfig& cfg) {
  provenance::TrustStore store;
  for (const server::PublisherConfig& p : cfg.trust.publishers) {
    Status s;
    if (!p.public_key_file.empty()) {
      s = store.add_publisher_pem_file(p.name, p.public_key_file);
    } else {
      auto key = provenance::PublicKey::from_pem(p.public_key_pem);
      s = key.has_value() ? store.add_publisher(p.name, std::move(key).value()) : key.error();
    }
    if (!s.ok()) return Status::invalid_argument("config: trust publisher {}: {}", p.name, s.message());
  }
  if (!cfg.model.publisher.empty()) {
    if (Status s = store.pin_model(cfg.model.path, cfg.model.publisher); !s.ok()) {
      return Status::invalid_argument("config: model.publisher: {}", s.message());
    }
  }
  return store;
}

Result<VerifiedModel> load_verified_model(const server::ServerConfig& cfg, const provenance::TrustStore& store) {
  struct stat st {};
  if (::stat(cfg.model.path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Status::not_found("model {} refused: not a readable regular file", cfg.model.path);
  }
  provenance::LoadOptions opt;
  opt.model_name = cfg.model.path;  // the pin of build_trust_store
  opt.signature_path = cfg.model.signature_path;
  opt.allow_unsigned = cfg.model.allow_unsigned;
  auto writer = sandbox::SealedMemfdWriter::create("ztslm-model", static_cast<uint64_t>(st.st_size));
  if (!writer.has_value()) return writer.error();
  auto info = provenance::verify_and_copy_model(cfg.model.path, store, opt, [&](std::span<const std::byte> b) {
    return writer->append(b);
  });
  // SECURITY: on failure the partly written memfd is dropped with `writer`; nothing of an
  // unverified file outlives this call.
  if (!info.has_value()) return Status(info.error().code(), "model " + cfg.model.path + " refused: " + info.error().message());
  auto fd = writer->seal();
  if (!fd.has_value()) return fd.error();
  VerifiedModel m;
  m.fd = std::move(fd).value();
  m.info = std::move(info).value();
  m.verified = !cfg.model.allow_unsigned;
  m.path = cfg.model.path;
  return m;
}

}  // namespace ztslm::cli
