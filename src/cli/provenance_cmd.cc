// `ztslm model sign` and `ztslm model verify`: OpenSSF model-signing bundles (key method).
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/secure.h"
#include "provenance/encoding.h"
#include "provenance/model_signing.h"

namespace ztslm::cli {
namespace {

struct SignArgs {
  std::string key;
  std::string model;
  std::string signature;
  std::string method = "files";
  uint64_t shard_size = 1000000000;
  std::vector<std::string> ignore;
};

struct VerifyArgs {
  std::string key;
  std::string model;
  std::string signature;
  std::vector<std::string> ignore;
  bool ignore_unsigned = false;
};

int run_sign(const SignArgs& a) {
  auto pem = provenance::read_small_file(a.key, 1 << 20);
  if (!pem.has_value()) return fail(pem.error());
  auto key = provenance::PrivateKey::from_pem(*pem);
  secure_zero(pem->data(), pem->size());
  if (!key.has_value()) return fail(key.error().with_context(a.key));
  provenance::SignOptions so;
  so.signature_path = a.signature;
  so.ignore_paths = a.ignore;
  so.shard_size = a.shard_size;
  if (a.method == "shards") {
    so.method = provenance::Method::kShards;
  } else if (a.method != "files") {
    return fail(Status::invalid_argument("--method must be files or shards"));
  }
  auto st = provenance::sign_model(a.model, *key, so);
  if (!st.has_value()) return fail(st.error());
  const std::string sig = a.signature.empty() ? provenance::default_signature_path(a.model) : a.signature;
  std::printf("signed %s: %zu resources, root digest %s, key %s (%s)\nsignature: %s\n", a.model.c_str(),
              st->resources.size(), provenance::hex_encode(st->root_digest).c_str(),
              key->public_key().hint().c_str(), std::string(provenance::curve_name(key->public_key().curve())).c_str(),
              sig.c_str());
  return 0;
}

int run_verify(const VerifyArgs& a) {
  auto pem = provenance::read_small_file(a.key, 1 << 20);
  if (!pem.has_value()) return fail(pem.error());
  auto key = provenance::PublicKey::from_pem(*pem);
  if (!key.has_value()) return fail(key.error().with_context(a.key));
  provenance::VerifyOptions vo;
  vo.signature_path = a.signature;
  vo.extra_ignore_paths = a.ignore;
  vo.ignore_unsigned_files = a.ignore_unsigned;
  auto r = provenance::verify_model(a.model, *key, vo);
  if (!r.has_value()) return fail(r.error());
  std::printf("verified %s: %zu resources, root digest %s, key %s\n", a.model.c_str(),
              r->statement.resources.size(), r->root_digest.c_str(), r->signer_hint.c_str());
  return 0;
}

}  // namespace

void register_provenance_commands(CLI::App& app) {
  static SignArgs s;
  static VerifyArgs v;
  CLI::App* model = app.get_subcommand("model");
  CLI::App* sign = model->add_subcommand("sign", "sign a model file or folder (OpenSSF model-signing, ECDSA key)");
  sign->add_option("--key", s.key, "PEM private key (EC P-256/P-384/P-521)")->required();
  sign->add_option("--signature", s.signature, "bundle to write (default: MODEL.sig, or MODEL/model.sig for a folder)");
  sign->add_option("--method", s.method, "files or shards")->capture_default_str();
  sign->add_option("--shard-size", s.shard_size, "bytes per shard (shards method)")->capture_default_str();
  sign->add_option("--ignore", s.ignore, "path under the model folder to leave out (repeatable)");
  sign->add_option("MODEL", s.model, "model file or folder")->required();
  sign->callback([] { set_exit_code(run_sign(s)); });

  CLI::App* verify = model->add_subcommand("verify", "verify a model against its signature bundle and a trusted key");
  verify->add_option("--key", v.key, "trusted PEM public key")->required();
  verify->add_option("--signature", v.signature, "bundle (default: MODEL.sig, or MODEL/model.sig for a folder)");
  verify->add_option("--ignore", v.ignore, "path under the model folder to leave out (repeatable)");
  verify->add_flag("--ignore-unsigned", v.ignore_unsigned, "tolerate files the manifest does not list");
  verify->add_option("MODEL", v.model, "model file or folder")->required();
  verify->callback([] { set_exit_code(run_verify(v)); });
}

}  // namespace ztslm::cli
