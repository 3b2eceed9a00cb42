#include "provenance/model_signing.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>

#include "core/byte_reader.h"
#include "core/utf8.h"
#include "provenance/encoding.h"

namespace ztslm::provenance {
namespace {

constexpr size_t kReadChunk = size_t{1} << 20;
constexpr int kMaxDirDepth = 64;
// Ignored at the model root in every manifest (SPEC.md §5.3 step 2).
constexpr const char* kDefaultIgnores[] = {".git", ".gitattributes", ".github", ".gitignore"};

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

struct LocalFile {
  std::string rel;   // "." for a single-file model
  std::string abs;
  uint64_t size = 0;
};

// What the local tree looks like under the manifest's rules.
struct Walk {
  std::string root;
  bool single_file = false;
  bool allow_symlinks = false;
  std::vector<std::string> ignores;
  size_t max_files = 0;
  std::vector<LocalFile> files;
};

bool is_ignored(const std::vector<std::string>& ignores, std::string_view rel) {
  for (const std::string& i : ignores) {
    if (rel == i || (rel.size() > i.size() && rel.compare(0, i.size(), i) == 0 && rel[i.size()] == '/')) {
      return true;
    }
  }
  return false;
}

Status walk_dir(Walk& w, const std::string& abs, const std::string& rel, int depth) {
  if (depth > kMaxDirDepth) return Status::resource_exhausted("model folder nests deeper than {}", kMaxDirDepth);
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(abs.c_str()), ::closedir);
  if (!dir) return Status::internal("cannot read folder {}: {}", abs, std::strerror(errno));
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(dir.get())) {
    const std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    names.emplace_back(n);
  }
  std::sort(names.begin(), names.end());
  for (const std::string& n : names) {
    const std::string child_rel = rel.empty() ? n : rel + "/" + n;
    const std::string child_abs = abs + "/" + n;
    if (is_ignored(w.ignores, child_rel)) continue;
    struct stat st {};
    if (::lstat(child_abs.c_str(), &st) != 0) return Status::internal("cannot stat {}", child_abs);
    if (S_ISLNK(st.st_mode)) {
      if (!w.allow_symlinks) {
        return Status::permission_denied("digest mismatch: {} is a symlink and symlinks are not allowed",
                                         printable(child_rel, 128));
      }
      if (::stat(child_abs.c_str(), &st) != 0) {
        return Status::permission_denied("digest mismatch: {} is a broken symlink", printable(child_rel, 128));
      }
    }
    if (S_ISDIR(st.st_mode)) {
      ZTSLM_TRY(walk_dir(w, child_abs, child_rel, depth + 1));
    } else if (S_ISREG(st.st_mode)) {
      if (w.files.size() >= w.max_files) return Status::resource_exhausted("model has more than {} files", w.max_files);
      w.files.push_back({child_rel, child_abs, static_cast<uint64_t>(st.st_size)});
    } else {
      return Status::permission_denied("digest mismatch: {} is not a regular file or folder",
                                       printable(child_rel, 128));
    }
  }
  return Status();
}

Result<Walk> walk_model(const std::string& model_path, bool allow_symlinks, std::vector<std::string> ignores,
                        size_t max_files) {
  Walk w;
  w.allow_symlinks = allow_symlinks;
  w.ignores = std::move(ignores);
  w.max_files = max_files;
  struct stat st {};
  if (::stat(model_path.c_str(), &st) != 0) return Status::not_found("model {} not found", model_path);
  w.root = model_path;
  if (S_ISREG(st.st_mode)) {
    w.single_file = true;
    w.files.push_back({".", model_path, static_cast<uint64_t>(st.st_size)});
    return w;
  }
  if (!S_ISDIR(st.st_mode)) return Status::invalid_argument("model {} is not a file or folder", model_path);
  ZTSLM_TRY(walk_dir(w, model_path, "", 0));
  return w;
}

// Hashes bytes [start, end) of `path` (end = UINT64_MAX: to the end of the file).
Result<std::vector<std::byte>> hash_range(const std::string& path, HashType type, uint64_t start, uint64_t end) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) return Status::not_found("cannot open {}", path);
  Hasher h(type);
  std::vector<std::byte> buf(kReadChunk);
  uint64_t pos = start;
  while (pos < end) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - pos));
    const ssize_t n = ::pread(fd.fd, buf.data(), want, static_cast<off_t>(pos));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::internal("cannot read {}: {}", path, std::strerror(errno));
    }
    if (n == 0) {
      if (end == UINT64_MAX) break;
      return Status::permission_denied("digest mismatch: {} is shorter than signed", path);
    }
    h.update(std::span<const std::byte>(buf.data(), static_cast<size_t>(n)));
    pos += static_cast<uint64_t>(n);
  }
  return h.finish();
}

std::string basename_of(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

// Path of `sig` relative to the model folder `root`, or "" when it lies outside.
std::string signature_rel(const std::string& root, const std::string& sig) {
  std::error_code ec;
  const auto r = std::filesystem::absolute(root, ec).lexically_normal();
  const auto s = std::filesystem::absolute(sig, ec).lexically_normal();
  if (ec) return "";
  const auto rel = s.lexically_relative(r);
  const std::string out = rel.generic_string();
  if (out.empty() || out == "." || out.rfind("..", 0) == 0) return "";
  return out;
}

std::vector<std::string> base_ignores(const std::string& model_path, const std::string& sig_path, bool single_file) {
  std::vector<std::string> ignores;
  if (single_file) return ignores;
  for (const char* d : kDefaultIgnores) ignores.emplace_back(d);
  const std::string rel = signature_rel(model_path, sig_path);
  if (!rel.empty()) ignores.push_back(rel);
  return ignores;
}

// Path-component order, as the reference signer sorts resources.
bool component_less(const Resource& a, const Resource& b) {
  if (a.path != b.path) {
    size_t i = 0, j = 0;
    while (i < a.path.size() && j < b.path.size()) {
      const size_t ei = std::min(a.path.find('/', i), a.path.size());
      const size_t ej = std::min(b.path.find('/', j), b.path.size());
      const std::string_view ca(a.path.data() + i, ei - i), cb(b.path.data() + j, ej - j);
      if (ca != cb) return ca < cb;
      i = ei + 1;
      j = ej + 1;
    }
    return a.path.size() - std::min(a.path.size(), i) < b.path.size() - std::min(b.path.size(), j);
  }
  return a.start < b.start;
}

std::string shard_name(const std::string& path, uint64_t start, uint64_t end) {
  return path + ":" + std::to_string(start) + ":" + std::to_string(end);
}

bool is_regular_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

std::string default_signature_path(const std::string& model_path) {
  struct stat st {};
  if (::stat(model_path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return model_path + "/model.sig";
  return model_path + ".sig";
}

Result<std::string> read_small_file(const std::string& path, size_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) return Status::not_found("cannot open {}", path);
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0 || !S_ISREG(st.st_mode)) return Status::invalid_argument("{} is not a regular file", path);
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return Status::resource_exhausted("{} has {} bytes, limit {}", path, st.st_size, max_bytes);
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::read(fd.fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

Result<Statement> sign_model(const std::string& model_path, const PrivateKey& key, const SignOptions& opt) {
  const std::string sig_path = opt.signature_path.empty() ? default_signature_path(model_path) : opt.signature_path;
  struct stat st {};
  if (::stat(model_path.c_str(), &st) != 0) return Status::not_found("model {} not found", model_path);
  std::vector<std::string> ignores = base_ignores(model_path, sig_path, S_ISREG(st.st_mode));
  for (const std::string& i : opt.ignore_paths) {
    if (!is_safe_relative_path(i)) return Status::invalid_argument("ignore path {} is not relative", i);
    ignores.push_back(i);
  }
  ZTSLM_ASSIGN_OR_RETURN(Walk w, walk_model(model_path, /*allow_symlinks=*/false, ignores, opt.max_files));
  Statement s;
  s.subject_name = basename_of(model_path);
  if (!is_valid_utf8(s.subject_name)) s.subject_name = "model";
  s.serialization.method = opt.method;
  s.serialization.hash_type = HashType::kSha256;
  s.serialization.shard_size = opt.method == Method::kShards ? opt.shard_size : 0;
  if (opt.method == Method::kShards && opt.shard_size == 0) return Status::invalid_argument("shard size is 0");
  if (!w.single_file) s.serialization.ignore_paths = ignores;
  for (const LocalFile& f : w.files) {
    if (!is_valid_utf8(f.rel)) return Status::invalid_argument("file name {} is not UTF-8", printable(f.rel, 64));
    if (opt.method == Method::kFiles) {
      Resource r;
      r.name = r.path = f.rel;
      ZTSLM_ASSIGN_OR_RETURN(r.digest, hash_range(f.abs, HashType::kSha256, 0, UINT64_MAX));
      s.resources.push_back(std::move(r));
      continue;
    }
    for (uint64_t start = 0; start < f.size; start += opt.shard_size) {
      Resource r;
      r.path = f.rel;
      r.start = start;
      r.end = std::min(f.size, start + opt.shard_size);
      r.name = shard_name(f.rel, r.start, r.end);
      ZTSLM_ASSIGN_OR_RETURN(r.digest, hash_range(f.abs, HashType::kSha256, r.start, r.end));
      s.resources.push_back(std::move(r));
    }
  }
  std::sort(s.resources.begin(), s.resources.end(), component_less);
  s.root_digest = root_digest_of(s.resources);
  const std::string payload = write_statement(s);
  const std::vector<std::byte> pae = dsse_pae(kInTotoPayloadType, as_bytes(payload));
  ZTSLM_ASSIGN_OR_RETURN(std::vector<std::byte> sig, key.sign(pae));
  const std::string bundle = write_bundle(key.public_key().hint(), as_bytes(payload), sig);
  const std::string tmp = sig_path + ".tmp";
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.fd < 0) return Status::internal("cannot write {}: {}", tmp, std::strerror(errno));
    if (::write(fd.fd, bundle.data(), bundle.size()) != static_cast<ssize_t>(bundle.size()) || ::fsync(fd.fd) != 0) {
      return Status::internal("cannot write {}", tmp);
    }
  }
  if (::rename(tmp.c_str(), sig_path.c_str()) != 0) return Status::internal("cannot rename {} to {}", tmp, sig_path);
  return s;
}

Result<Statement> verify_bundle(const Bundle& bundle, const PublicKey& key, const StatementLimits& limits) {
  if (bundle.material != MaterialKind::kPublicKey) {
    return Status::unauthenticated("invalid signature: only the key method is supported (bundle has {})",
                                   bundle.material == MaterialKind::kKeyless ? "a keyless certificate"
                                                                             : "a certificate chain");
  }
  if (bundle.key_hint.has_value() && *bundle.key_hint != key.hint()) {
    return Status::unauthenticated("invalid signature: bundle names key {} but the trusted key is {}",
                                   *bundle.key_hint, key.hint());
  }
  if (bundle.key_raw_pem.has_value()) {
    // Legacy bundles carry the signer's PEM; it only selects a key, never replaces the trusted one.
    auto embedded = PublicKey::from_pem(std::string_view(reinterpret_cast<const char*>(bundle.key_raw_pem->data()),
                                                         bundle.key_raw_pem->size()));
    if (!embedded.has_value() || embedded->hint() != key.hint()) {
      return Status::unauthenticated("invalid signature: bundle rawBytes key is not the trusted key");
    }
  }
  // SECURITY: the signature is checked over the received bytes before they are parsed.
  const std::vector<std::byte> pae = dsse_pae(bundle.payload_type, bundle.payload);
  if (!key.verify(pae, bundle.signature)) {
    return Status::unauthenticated("invalid signature: ecdsa {} verification failed", curve_name(key.curve()));
  }
  return parse_statement(bundle.payload, limits);
}

Result<VerifiedModel> verify_model(const std::string& model_path, const PublicKey& key, const VerifyOptions& opt) {
  const std::string sig_path = opt.signature_path.empty() ? default_signature_path(model_path) : opt.signature_path;
  auto text = read_small_file(sig_path, opt.bundle_limits.max_bundle_bytes);
  if (!text.has_value()) {
    if (text.error().code() == StatusCode::kNotFound) return Status::not_found("missing signature: {}", sig_path);
    return text.error();
  }
  ZTSLM_ASSIGN_OR_RETURN(const Bundle bundle, parse_bundle(*text, opt.bundle_limits));
  ZTSLM_ASSIGN_OR_RETURN(Statement st, verify_bundle(bundle, key, opt.statement_limits));

  struct stat mst {};
  if (::stat(model_path.c_str(), &mst) != 0) return Status::not_found("model {} not found", model_path);
  const bool single_file = S_ISREG(mst.st_mode);
  std::vector<std::string> ignores = base_ignores(model_path, sig_path, single_file);
  if (!single_file) {
    for (const std::string& i : st.serialization.ignore_paths) ignores.push_back(i);
    for (const std::string& i : opt.extra_ignore_paths) ignores.push_back(i);
  }
  // Expected: local path -> resources on it. A single-file model may be named "." or by its
  // basename (SPEC.md §5.2).
  const std::string base = basename_of(model_path);
  std::map<std::string, std::vector<const Resource*>> expected;
  for (const Resource& r : st.resources) {
    std::string path = r.path;
    if (single_file && path == base) path = ".";
    expected[path].push_back(&r);
  }
  const HashType ht = st.serialization.hash_type;
  const auto mismatch = [](std::string_view what, std::string_view name) {
    return Status::permission_denied("digest mismatch: {} {}", what, printable(name, 128));
  };
  std::vector<LocalFile> files;
  if (opt.ignore_unsigned_files) {
    for (const auto& entry : expected) {
      const std::string& path = entry.first;
      const std::string abs = path == "." ? model_path : model_path + "/" + path;
      if ((path == ".") != single_file || is_ignored(ignores, path) || !is_regular_file(abs)) {
        return mismatch("signed file is missing:", path);
      }
      if (!st.serialization.allow_symlinks) {
        struct stat lst {};
        if (::lstat(abs.c_str(), &lst) != 0 || S_ISLNK(lst.st_mode)) return mismatch("symlink not allowed:", path);
      }
      struct stat fst {};
      ::stat(abs.c_str(), &fst);
      files.push_back({path, abs, static_cast<uint64_t>(fst.st_size)});
    }
  } else {
    ZTSLM_ASSIGN_OR_RETURN(Walk w, walk_model(model_path, st.serialization.allow_symlinks, ignores, opt.max_files));
    for (LocalFile& f : w.files) {
      // A zero-length file has no shards, so a shard manifest cannot list it (SPEC.md §5.3).
      if (st.serialization.method == Method::kShards && f.size == 0) continue;
      files.push_back(std::move(f));
    }
    for (const LocalFile& f : files) {
      if (!expected.contains(f.rel)) return mismatch("unsigned file present:", f.rel);
    }
    if (files.size() != expected.size()) {
      for (const auto& entry : expected) {
        const std::string& path = entry.first;
        const bool found = std::any_of(files.begin(), files.end(), [&](const LocalFile& f) { return f.rel == path; });
        if (!found) return mismatch("signed file is missing:", path);
      }
    }
  }
  for (const LocalFile& f : files) {
    std::vector<const Resource*>& list = expected[f.rel];
    if (st.serialization.method == Method::kFiles) {
      ZTSLM_ASSIGN_OR_RETURN(const std::vector<std::byte> d, hash_range(f.abs, ht, 0, UINT64_MAX));
      if (list.size() != 1 || d != list[0]->digest) return mismatch("file differs from its signed digest:", f.rel);
      continue;
    }
    // Shards: the signed ranges must tile the file exactly.
    std::sort(list.begin(), list.end(), [](const Resource* a, const Resource* b) { return a->start < b->start; });
    uint64_t pos = 0;
    for (const Resource* r : list) {
      if (r->start != pos) return mismatch("shards do not cover", f.rel);
      ZTSLM_ASSIGN_OR_RETURN(const std::vector<std::byte> d, hash_range(f.abs, ht, r->start, r->end));
      if (d != r->digest) return mismatch("shard differs from its signed digest:", r->name);
      pos = r->end;
    }
    if (pos != f.size) return mismatch("file size differs from the signed shards:", f.rel);
  }
  VerifiedModel out;
  out.root_digest = hex_encode(st.root_digest);
  out.signer_hint = key.hint();
  out.statement = std::move(st);
  return out;
}

}  // namespace ztslm::provenance
