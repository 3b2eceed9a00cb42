#include "provenance/trust_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>

#include "core/utf8.h"
#include "provenance/encoding.h"
#include "provenance/model_signing.h"

namespace ztslm::provenance {
namespace {

constexpr size_t kCopyChunk = size_t{4} << 20;

std::string basename_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Copies the file at `path` to `sink`, returning its SHA-256 and size.
Result<std::pair<Sha256Digest, uint64_t>> copy_hashed(const std::string& path, const LoadOptions& opt,
                                                      const ChunkSink& sink) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::not_found("model {} cannot be opened: {}", path, std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return Status::invalid_argument("model {} is not a regular file", path);
  if (static_cast<uint64_t>(st.st_size) > opt.max_model_bytes) {
    return Status::resource_exhausted("model {} has {} bytes, limit {}", path, st.st_size, opt.max_model_bytes);
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  Hasher h(HashType::kSha256);
  std::vector<std::byte> buf(kCopyChunk);
  uint64_t total = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::internal("cannot read model {}: {}", path, std::strerror(errno));
    if (n == 0) break;
    const std::span<const std::byte> chunk(buf.data(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
    if (total > opt.max_model_bytes) return Status::resource_exhausted("model {} grew past limit {}", path, opt.max_model_bytes);
    // Hash exactly the bytes handed to the sink: what the engine maps is what was hashed.
    h.update(chunk);
    ZTSLM_TRY(sink(chunk));
  }
  const std::vector<std::byte> d = h.finish();
  Sha256Digest out{};
  std::copy(d.begin(), d.end(), out.begin());
  return std::make_pair(out, total);
}

}  // namespace

Status TrustStore::add_publisher(std::string name, PublicKey key) {
  if (name.empty()) return Status::invalid_argument("publisher name is empty");
  for (const Publisher& p : publishers_) {
    if (p.name == name) return Status::invalid_argument("publisher {} is already trusted", name);
    if (p.key.hint() == key.hint()) {
      return Status::invalid_argument("key of publisher {} is already trusted as {}", name, p.name);
    }
  }
  publishers_.push_back({std::move(name), std::move(key)});
  return Status();
}

Status TrustStore::add_publisher_pem_file(std::string name, const std::string& pem_path) {
  ZTSLM_ASSIGN_OR_RETURN(const std::string pem, read_small_file(pem_path, 1u << 20));
  auto key = PublicKey::from_pem(pem);
  if (!key.has_value()) return key.error().with_context(pem_path);
  return add_publisher(std::move(name), std::move(key).value());
}

Status TrustStore::pin_model(std::string model_name, std::string publisher) {
  if (find(publisher) == nullptr) return Status::invalid_argument("pinned publisher {} is not trusted", publisher);
  for (const auto& pin : pins_) {
    if (pin.first == model_name) return Status::invalid_argument("model {} is already pinned", model_name);
  }
  pins_.emplace_back(std::move(model_name), std::move(publisher));
  return Status();
}

const Publisher* TrustStore::find(std::string_view name) const {
  for (const Publisher& p : publishers_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const Publisher* TrustStore::pinned_for(std::string_view model_name) const {
  for (const auto& pin : pins_) {
    if (pin.first == model_name) return find(pin.second);
  }
  return nullptr;
}

Result<LoadedModelInfo> verify_and_copy_model(const std::string& path, const TrustStore& store,
                                              const LoadOptions& opt, const ChunkSink& sink) {
  LoadedModelInfo info;
  if (opt.allow_unsigned) {
    ZTSLM_ASSIGN_OR_RETURN(const auto copied, copy_hashed(path, opt, sink));
    info.sha256 = hex_encode(copied.first);
    info.n_bytes = copied.second;
    info.signer = std::string(kUnverifiedSigner);
    return info;
  }
  const std::string sig_path = opt.signature_path.empty() ? path + ".sig" : opt.signature_path;
  auto text = read_small_file(sig_path, opt.bundle_limits.max_bundle_bytes);
  if (!text.has_value()) {
    if (text.error().code() == StatusCode::kNotFound) return Status::not_found("missing signature: {}", sig_path);
    return text.error();
  }
  ZTSLM_ASSIGN_OR_RETURN(const Bundle bundle, parse_bundle(*text, opt.bundle_limits));

  std::vector<const Publisher*> candidates;
  const Publisher* pinned = opt.model_name.empty() ? nullptr : store.pinned_for(opt.model_name);
  if (pinned != nullptr) {
    candidates.push_back(pinned);
  } else {
    for (const Publisher& p : store.publishers()) candidates.push_back(&p);
  }
  if (bundle.key_hint.has_value()) {
    std::erase_if(candidates, [&](const Publisher* p) { return p->key.hint() != *bundle.key_hint; });
    if (candidates.empty()) {
      if (pinned != nullptr) {
        return Status::permission_denied("untrusted key: not the pinned publisher: model {} must be signed by {}, "
                                         "bundle names key {}",
                                         opt.model_name, pinned->name, *bundle.key_hint);
      }
      return Status::permission_denied("untrusted key: signing key {} is not in the trust store", *bundle.key_hint);
    }
  }
  if (candidates.empty()) return Status::permission_denied("untrusted key: the trust store is empty");
  const Publisher* signer = nullptr;
  Result<Statement> st = Status::unauthenticated("invalid signature: no trusted key verifies it");
  for (const Publisher* p : candidates) {
    auto r = verify_bundle(bundle, p->key, opt.statement_limits);
    if (r.has_value()) {
      signer = p;
      st = std::move(r);
      break;
    }
    // A hint selected the key: its failure is the answer. Without a hint, try the next key.
    if (bundle.key_hint.has_value() || r.error().code() != StatusCode::kUnauthenticated) return r.error();
  }
  if (signer == nullptr) {
    return Status::unauthenticated("invalid signature: no trusted key{} verifies it",
                                   pinned != nullptr ? " (pinned publisher " + pinned->name + ")" : std::string());
  }
  const Serialization& ser = st->serialization;
  if (ser.method != Method::kFiles || ser.hash_type != HashType::kSha256 || st->resources.size() != 1 ||
      (st->resources[0].path != "." && st->resources[0].path != basename_of(path))) {
    return Status::failed_precondition(
        "model {}: manifest must list this single file with the sha256 files method", path);
  }
  ZTSLM_ASSIGN_OR_RETURN(const auto copied, copy_hashed(path, opt, sink));
  if (!std::equal(copied.first.begin(), copied.first.end(), st->resources[0].digest.begin(),
                  st->resources[0].digest.end())) {
    return Status::permission_denied("digest mismatch: model {} has sha256 {}, signed {}", path,
                                     hex_encode(copied.first), hex_encode(st->resources[0].digest));
  }
  info.sha256 = hex_encode(copied.first);
  info.n_bytes = copied.second;
  info.signer = signer->name;
  info.root_digest = hex_encode(st->root_digest);
  return info;
}

}  // namespace ztslm::provenance
