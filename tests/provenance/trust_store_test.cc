// Trust store and the verified copy into a sealed memfd (the gateway's model load path).
#include "provenance/trust_store.h"

#include <fcntl.h>
#include <sys/mman.h>

#include <filesystem>
#include <fstream>

#include "core/byte_reader.h"
#include "core/mapped_file.h"
#include "provenance/encoding.h"
#include "provenance/model_signing.h"
#include "sandbox/memfd.h"
#include "test_util.h"

namespace ztslm::provenance {
namespace {

namespace fs = std::filesystem;

struct SealedModel {
  sandbox::UniqueFd fd;
  LoadedModelInfo info;
};

// The composition the gateway uses: verify while copying into a memfd, then seal it.
Result<SealedModel> verify_model_into_sealed_memfd(const std::string& path, const TrustStore& store,
                                                   const LoadOptions& opt) {
  ZTSLM_ASSIGN_OR_RETURN(sandbox::SealedMemfdWriter w, sandbox::SealedMemfdWriter::create("model"));
  ZTSLM_ASSIGN_OR_RETURN(LoadedModelInfo info, verify_and_copy_model(path, store, opt, [&](std::span<const std::byte> b) {
                           return w.append(b);
                         }));
  ZTSLM_ASSIGN_OR_RETURN(sandbox::UniqueFd fd, w.seal());
  return SealedModel{std::move(fd), std::move(info)};
}

class TrustStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("ztslm_trust_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    model_ = (dir_ / "m.gguf").string();
    content_ = std::string(100000, 'g');
    for (size_t i = 0; i < content_.size(); ++i) content_[i] = static_cast<char>(i * 7 + i / 251);
    write(model_, content_);
    alice_ = std::move(PrivateKey::generate(Curve::kP256)).value();
    bob_ = std::move(PrivateKey::generate(Curve::kP384)).value();
    mallory_ = std::move(PrivateKey::generate(Curve::kP256)).value();
    ASSERT_THAT(store_.add_publisher("alice", alice_->public_key()), IsOk());
    ASSERT_THAT(store_.add_publisher("bob", bob_->public_key()), IsOk());
  }
  void TearDown() override { fs::remove_all(dir_); }
  static void write(const std::string& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

  fs::path dir_;
  std::string model_;
  std::string content_;
  std::optional<PrivateKey> alice_, bob_, mallory_;
  TrustStore store_;
};

TEST_F(TrustStoreTest, SignedModelLandsInASealedMemfdWithItsDigest) {
  ASSERT_TRUE(sign_model(model_, *alice_).has_value());
  auto r = verify_model_into_sealed_memfd(model_, store_, LoadOptions{});
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_EQ(r->info.signer, "alice");
  EXPECT_EQ(r->info.sha256, hex_encode(sha256(as_bytes(content_))));
  EXPECT_EQ(r->info.n_bytes, content_.size());
  EXPECT_THAT(sandbox::require_sealed(r->fd.get()), IsOk());
  // The memfd holds exactly the verified bytes and refuses every change.
  auto mapped = MappedFile::from_fd(r->fd.get());
  ASSERT_TRUE(mapped.has_value());
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(mapped->bytes().data()), mapped->size()), content_);
  EXPECT_EQ(::pwrite(r->fd.get(), "x", 1, 0), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_NE(::ftruncate(r->fd.get(), 10), 0);
  EXPECT_EQ(::fcntl(r->fd.get(), F_ADD_SEALS, 0), -1);
  EXPECT_EQ(::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd.get(), 0), MAP_FAILED);
}

TEST_F(TrustStoreTest, EachRefusalNamesItsReason) {
  LoadOptions opt;
  // Missing signature.
  auto missing = verify_model_into_sealed_memfd(model_, store_, opt);
  ASSERT_THAT(missing, StatusIs(StatusCode::kNotFound));
  EXPECT_NE(missing.error().message().find("missing signature"), std::string::npos);
  // Untrusted key.
  ASSERT_TRUE(sign_model(model_, *mallory_).has_value());
  auto untrusted = verify_model_into_sealed_memfd(model_, store_, opt);
  ASSERT_THAT(untrusted, StatusIs(StatusCode::kPermissionDenied));
  EXPECT_NE(untrusted.error().message().find("untrusted key"), std::string::npos);
  // Tampered after signing.
  ASSERT_TRUE(sign_model(model_, *alice_).has_value());
  std::string tampered = content_;
  tampered[5000] ^= 1;
  write(model_, tampered);
  auto mismatch = verify_model_into_sealed_memfd(model_, store_, opt);
  ASSERT_THAT(mismatch, StatusIs(StatusCode::kPermissionDenied));
  EXPECT_NE(mismatch.error().message().find("digest mismatch"), std::string::npos);
  // Truncated.
  write(model_, content_.substr(0, 1000));
  EXPECT_NE(verify_model_into_sealed_memfd(model_, store_, opt).error().message().find("digest mismatch"),
            std::string::npos);
  // Invalid signature: a flipped signature byte in a bundle that names a trusted key.
  write(model_, content_);
  ASSERT_TRUE(sign_model(model_, *alice_).has_value());
  auto bundle_text = read_small_file(model_ + ".sig", 1 << 20);
  auto bundle = parse_bundle(*bundle_text);
  ASSERT_TRUE(bundle.has_value());
  bundle->signature.back() ^= std::byte{1};
  write(model_ + ".sig", write_bundle(*bundle->key_hint, bundle->payload, bundle->signature));
  auto invalid = verify_model_into_sealed_memfd(model_, store_, opt);
  ASSERT_THAT(invalid, StatusIs(StatusCode::kUnauthenticated));
  EXPECT_NE(invalid.error().message().find("invalid signature"), std::string::npos);
  // allow_unsigned: same result shape, signer "unverified".
  opt.allow_unsigned = true;
  auto unsigned_ok = verify_model_into_sealed_memfd(model_, store_, opt);
  ASSERT_TRUE(unsigned_ok.has_value());
  EXPECT_EQ(unsigned_ok->info.signer, kUnverifiedSigner);
  EXPECT_EQ(unsigned_ok->info.sha256, hex_encode(sha256(as_bytes(content_))));
}

TEST_F(TrustStoreTest, PinnedPublisherIsTheOnlyOneAccepted) {
  ASSERT_THAT(store_.pin_model("tiny", "bob"), IsOk());
  EXPECT_THAT(store_.pin_model("x", "nobody"), StatusIs(StatusCode::kInvalidArgument));
  ASSERT_TRUE(sign_model(model_, *alice_).has_value());
  LoadOptions opt;
  opt.model_name = "tiny";
  auto r = verify_model_into_sealed_memfd(model_, store_, opt);
  ASSERT_THAT(r, StatusIs(StatusCode::kPermissionDenied));
  EXPECT_NE(r.error().message().find("must be signed by bob"), std::string::npos);
  opt.model_name = "other";  // not pinned: any trusted publisher
  EXPECT_TRUE(verify_model_into_sealed_memfd(model_, store_, opt).has_value());
  ASSERT_TRUE(sign_model(model_, *bob_).has_value());
  opt.model_name = "tiny";
  auto ok = verify_model_into_sealed_memfd(model_, store_, opt);
  ASSERT_TRUE(ok.has_value()) << ok.error().to_string();
  EXPECT_EQ(ok->info.signer, "bob");
}

TEST_F(TrustStoreTest, DuplicatePublishersAreRejected) {
  EXPECT_THAT(store_.add_publisher("alice", mallory_->public_key()), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_.add_publisher("carol", alice_->public_key()), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store_.add_publisher("", mallory_->public_key()), StatusIs(StatusCode::kInvalidArgument));
}

TEST_F(TrustStoreTest, SealedMemfdRejectsUnsealedFds) {
  auto w = sandbox::SealedMemfdWriter::create("plain");
  ASSERT_TRUE(w.has_value());
  const int fd = ::memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  EXPECT_THAT(sandbox::require_sealed(fd), StatusIs(StatusCode::kPermissionDenied));
  ::close(fd);
  const int file_fd = ::open(model_.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_THAT(sandbox::require_sealed(file_fd), StatusIs(StatusCode::kPermissionDenied));
  ::close(file_fd);
}

}  // namespace
}  // namespace ztslm::provenance
