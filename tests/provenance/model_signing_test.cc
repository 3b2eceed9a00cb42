// Model signing against the fixtures of ../shared/testdata/model-signing (README.md there lists
// the expected result of each case).
#include "provenance/model_signing.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/byte_reader.h"
#include "provenance/encoding.h"
#include "test_util.h"

namespace ztslm::provenance {
namespace {

namespace fs = std::filesystem;
using ::ztslm::testing::testdata_path;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

PublicKey load_key(const std::string& path) {
  auto k = PublicKey::from_pem(read_text(path));
  EXPECT_TRUE(k.has_value()) << path << ": " << k.error().to_string();
  return std::move(k).value();
}

std::string ms_dir() { return testdata_path("model-signing"); }

TEST(ModelSigningTest, GeneratedCasesGiveTheDocumentedResult) {
  ZTSLM_REQUIRE_SHARED();
  const nlohmann::json index = nlohmann::json::parse(read_text(ms_dir() + "/generated/cases/INDEX.json"));
  ASSERT_EQ(index.size(), 30u);
  size_t n_pass = 0;
  for (const auto& entry : index) {
    const std::string name = entry["case"];
    const std::string dir = ms_dir() + "/generated/cases/" + name;
    const nlohmann::json c = nlohmann::json::parse(read_text(dir + "/case.json"));
    VerifyOptions opt;
    opt.signature_path = dir + "/model.sig";
    opt.ignore_unsigned_files = c.value("ignore_unsigned_files", false);
    if (c.contains("extra_ignore_paths")) opt.extra_ignore_paths = c["extra_ignore_paths"].get<std::vector<std::string>>();
    const PublicKey key = load_key(dir + "/" + c["public_key"].get<std::string>());
    auto r = verify_model(dir + "/" + c["model"].get<std::string>(), key, opt);
    if (c["expect"] == "pass") {
      EXPECT_TRUE(r.has_value()) << name << ": " << r.error().to_string();
      n_pass += r.has_value();
    } else {
      EXPECT_FALSE(r.has_value()) << name << " was accepted";
      if (!r.has_value()) {
        // Each rejection is a specific reason, never an internal error.
        EXPECT_NE(r.error().code(), StatusCode::kInternal) << name << ": " << r.error().to_string();
      }
    }
  }
  EXPECT_EQ(n_pass, 5u);  // optional features (rawBytes, shards, ignore-unsigned) included
}

// One row per rejection: the reason the verifier gives must be the documented one.
TEST(ModelSigningTest, GeneratedRejectionsNameTheReason) {
  ZTSLM_REQUIRE_SHARED();
  struct Row {
    const char* name;
    StatusCode code;
    const char* message_part;
  };
  const Row rows[] = {
      {"neg-wrong-key", StatusCode::kUnauthenticated, "invalid signature"},
      {"neg-hint-mismatch", StatusCode::kUnauthenticated, "bundle names key"},
      {"neg-sig-bitflip", StatusCode::kUnauthenticated, "verification failed"},
      {"neg-sig-p1363", StatusCode::kUnauthenticated, "verification failed"},
      {"neg-payload-swapped", StatusCode::kUnauthenticated, "verification failed"},
      {"neg-payload-type-not-signed", StatusCode::kUnauthenticated, "verification failed"},
      {"neg-wrong-payload-type", StatusCode::kMalformed, "payloadType"},
      {"neg-digest-mismatch", StatusCode::kPermissionDenied, "weights.bin"},
      {"neg-extra-file", StatusCode::kPermissionDenied, "unsigned file present: subdir/adapter.bin"},
      {"neg-missing-file", StatusCode::kPermissionDenied, "missing: tokenizer.json"},
      {"neg-root-digest-mismatch", StatusCode::kMalformed, "manifest is inconsistent"},
      {"neg-two-subjects", StatusCode::kMalformed, "2 subjects"},
      {"neg-wrong-statement-type", StatusCode::kMalformed, "_type"},
      {"neg-wrong-predicate-type", StatusCode::kMalformed, "predicateType"},
      {"neg-wrong-media-type", StatusCode::kMalformed, "mediaType"},
      {"neg-no-signatures", StatusCode::kMalformed, "0 entries"},
      {"neg-no-envelope", StatusCode::kMalformed, "dsseEnvelope"},
      {"neg-empty-file", StatusCode::kMalformed, "empty"},
      {"neg-truncated-json", StatusCode::kMalformed, "not valid json"},
      {"neg-path-traversal", StatusCode::kMalformed, "../outside.bin"},
      {"neg-absolute-path", StatusCode::kMalformed, "/etc/hostname"},
      {"neg-duplicate-resource", StatusCode::kMalformed, "listed twice"},
      {"neg-unknown-method", StatusCode::kMalformed, "tensors"},
      {"neg-unknown-hash", StatusCode::kMalformed, "md5"},
      {"neg-no-serialization", StatusCode::kMalformed, "serialization"},
  };
  const PublicKey key = load_key(ms_dir() + "/generated/keys/p256-signing-key-pub.pem");
  for (const Row& row : rows) {
    VerifyOptions opt;
    opt.signature_path = ms_dir() + "/generated/cases/" + row.name + "/model.sig";
    auto r = verify_model(ms_dir() + "/generated/model", key, opt);
    ASSERT_FALSE(r.has_value()) << row.name;
    EXPECT_EQ(r.error().code(), row.code) << row.name << ": " << r.error().to_string();
    EXPECT_NE(r.error().message().find(row.message_part), std::string::npos)
        << row.name << ": " << r.error().to_string();
  }
}

TEST(ModelSigningTest, UpstreamKeyFixturesVerifyAndFailWithAnotherKey) {
  ZTSLM_REQUIRE_SHARED();
  const std::string up = ms_dir() + "/upstream/model-transparency";
  const PublicKey key = load_key(up + "/keys/signing-key-pub.pem");
  EXPECT_EQ(key.curve(), Curve::kP384);
  EXPECT_EQ(key.hint(), "e8450dec4eb99dae995da9af1bc2cc9f76ed669ee2e744f57abba763df3e3f8e");
  const PublicKey wrong = load_key(ms_dir() + "/generated/keys/p256-signing-key-pub.pem");
  struct Row {
    const char* dir;
    const char* model;  // relative to dir; "" = the folder itself
    std::vector<std::string> extra_ignores;
  };
  const Row rows[] = {
      {"v0.3.1-elliptic-key", "signme-1", {}},
      {"v1.0.0-elliptic-key", "signme-1", {}},
      {"v1.0.1-elliptic-key", "", {"ignore-me"}},
      {"v1.1.0-elliptic-key", "", {}},
  };
  for (const Row& row : rows) {
    const std::string dir = up + "/" + row.dir;
    VerifyOptions opt;
    opt.signature_path = dir + "/model.sig";
    opt.extra_ignore_paths = row.extra_ignores;
    const std::string model = std::string(row.model).empty() ? dir : dir + "/" + row.model;
    auto r = verify_model(model, key, opt);
    EXPECT_TRUE(r.has_value()) << row.dir << ": " << r.error().to_string();
    auto w = verify_model(model, wrong, opt);
    ASSERT_FALSE(w.has_value()) << row.dir;
    EXPECT_EQ(w.error().code(), StatusCode::kUnauthenticated) << w.error().to_string();
  }
  // Certificate bundles parse but this verifier implements only the key method.
  for (const char* d : {"v1.1.0-certificate", "v0.2.0-certificate"}) {
    VerifyOptions opt;
    opt.signature_path = up + "/" + d + "/model.sig";
    auto r = verify_model(up + "/" + d, key, opt);
    ASSERT_FALSE(r.has_value()) << d;
    EXPECT_EQ(r.error().code(), StatusCode::kUnauthenticated) << r.error().to_string();
  }
}

TEST(ModelSigningTest, SpecTestVectors) {
  ZTSLM_REQUIRE_SHARED();
  const std::string tv = ms_dir() + "/upstream/model-signing-spec/test-vectors/v1.0";
  for (const char* f : {"valid/key.bundle.json", "valid/certificate.bundle.json", "valid/sigstore.bundle.json"}) {
    auto b = parse_bundle(read_text(tv + "/" + f));
    ASSERT_TRUE(b.has_value()) << f << ": " << b.error().to_string();
    EXPECT_TRUE(parse_statement(b->payload).has_value()) << f;
  }
  for (const char* f : {"invalid/empty.bundle.json", "invalid/missing-envelope.bundle.json",
                        "invalid/missing-tlog-entries.bundle.json",
                        "invalid/missing-verification-material.bundle.json"}) {
    EXPECT_THAT(parse_bundle(read_text(tv + "/" + f)), StatusIs(StatusCode::kMalformed)) << f;
  }
  auto wp = parse_bundle(read_text(tv + "/invalid-payload/wrong-predicate.bundle.json"));
  ASSERT_TRUE(wp.has_value());
  EXPECT_THAT(parse_statement(wp->payload), StatusIs(StatusCode::kMalformed));

  // valid/key.bundle.json signs upstream v1.1.0-elliptic-key/signme-{1,2}.
  const std::string up = ms_dir() + "/upstream/model-transparency";
  VerifyOptions opt;
  opt.signature_path = tv + "/valid/key.bundle.json";
  opt.extra_ignore_paths = {"model.sig", "ignore-me"};
  auto r = verify_model(up + "/v1.1.0-elliptic-key", load_key(up + "/keys/signing-key-pub.pem"), opt);
  EXPECT_TRUE(r.has_value()) << r.error().to_string();
}

TEST(ModelSigningTest, StatementWriterMatchesReferenceGoldens) {
  ZTSLM_REQUIRE_SHARED();
  const std::string g = ms_dir() + "/upstream/model-transparency/payload-goldens";
  for (const char* name : {"sample_model_folder.json", "sample_model_file.json", "sample_model_folder_shard.json",
                           "sample_model_file_small_shards.json", "deep_model_folder.json"}) {
    std::string golden = read_text(g + "/" + name);
    // The golden files end with a newline; signed payloads do not (SPEC.md §8).
    ASSERT_EQ(golden.back(), '\n');
    golden.pop_back();
    auto st = parse_statement(as_bytes(golden));
    ASSERT_TRUE(st.has_value()) << name << ": " << st.error().to_string();
    EXPECT_EQ(write_statement(*st), golden) << name;
  }
}

class SignRoundTripTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("ztslm_sign_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "model" / "sub");
    write(dir_ / "model" / "weights.bin", std::string(5000, 'w'));
    write(dir_ / "model" / "sub" / "a.json", "{}");
    write(dir_ / "model" / "empty", "");
  }
  void TearDown() override { fs::remove_all(dir_); }
  static void write(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }
  fs::path dir_;
};

TEST_F(SignRoundTripTest, SignedFolderVerifiesAndEveryTamperIsRefused) {
  for (Curve curve : {Curve::kP256, Curve::kP384, Curve::kP521}) {
    for (Method method : {Method::kFiles, Method::kShards}) {
      auto key = PrivateKey::generate(curve);
      ASSERT_TRUE(key.has_value());
      SignOptions so;
      so.method = method;
      so.shard_size = 1024;
      const std::string model = (dir_ / "model").string();
      auto st = sign_model(model, *key, so);
      ASSERT_TRUE(st.has_value()) << st.error().to_string();
      EXPECT_TRUE(verify_model(model, key->public_key()).has_value());
      auto other = PrivateKey::generate(curve);
      EXPECT_THAT(verify_model(model, other->public_key()), StatusIs(StatusCode::kUnauthenticated));

      write(dir_ / "model" / "weights.bin", std::string(4999, 'w') + "x");
      EXPECT_THAT(verify_model(model, key->public_key()), StatusIs(StatusCode::kPermissionDenied));
      write(dir_ / "model" / "weights.bin", std::string(5000, 'w'));
      write(dir_ / "model" / "extra", "x");
      EXPECT_THAT(verify_model(model, key->public_key()), StatusIs(StatusCode::kPermissionDenied));
      fs::remove(dir_ / "model" / "extra");
      fs::create_symlink("weights.bin", dir_ / "model" / "link");
      EXPECT_THAT(verify_model(model, key->public_key()), StatusIs(StatusCode::kPermissionDenied));
      fs::remove(dir_ / "model" / "link");
      EXPECT_TRUE(verify_model(model, key->public_key()).has_value());
    }
  }
}

TEST_F(SignRoundTripTest, SingleFileModelAndMissingSignature) {
  const std::string file = (dir_ / "model" / "weights.bin").string();
  auto key = PrivateKey::generate(Curve::kP256);
  EXPECT_THAT(verify_model(file, key->public_key()), StatusIs(StatusCode::kNotFound));
  auto st = sign_model(file, *key);
  ASSERT_TRUE(st.has_value()) << st.error().to_string();
  ASSERT_EQ(st->resources.size(), 1u);
  EXPECT_EQ(st->resources[0].name, ".");
  EXPECT_TRUE(fs::exists(file + ".sig"));
  EXPECT_TRUE(verify_model(file, key->public_key()).has_value());
  // Truncation.
  write(file, std::string(4000, 'w'));
  EXPECT_THAT(verify_model(file, key->public_key()), StatusIs(StatusCode::kPermissionDenied));
}

TEST(EncodingTest, Base64IsStrict) {
  EXPECT_EQ(base64_encode(as_bytes(std::string_view("hello"))), "aGVsbG8=");
  auto d = base64_decode("aGVsbG8=", 100);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(d->data()), d->size()), "hello");
  for (const char* bad : {"aGVsbG8", "aGVsbG9=", "aGVs bG8=", "a===", "aGVsbG8+_A==", "====", "aG=sbG8="}) {
    EXPECT_THAT(base64_decode(bad, 100), StatusIs(StatusCode::kMalformed)) << bad;
  }
  EXPECT_THAT(base64_decode("aGVsbG8=", 4), StatusIs(StatusCode::kResourceExhausted));
  EXPECT_TRUE(base64_decode("-_8=", 10).has_value());  // URL-safe alphabet
  EXPECT_THAT(hex_decode("ABCD", 2), StatusIs(StatusCode::kMalformed));
}

TEST(StatementTest, SafeRelativePaths) {
  for (const char* ok : {"a", "a/b", "d0/f00", "a:b", ".hidden"}) EXPECT_TRUE(is_safe_relative_path(ok)) << ok;
  for (const char* bad : {"", "/a", "a/", "../a", "a/../b", "./a", "a//b", "a\\b", ".", ".."}) {
    EXPECT_FALSE(is_safe_relative_path(bad)) << bad;
  }
  EXPECT_FALSE(is_safe_relative_path(std::string_view("a\0b", 3)));
}

}  // namespace
}  // namespace ztslm::provenance
