// `ztslm model sign|verify` end to end on the binary.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using ::ztslm::testing::testdata_path;

// Runs `ztslm <args>`; returns the exit code and stdout+stderr.
std::pair<int, std::string> ztslm(const std::string& args) {
  const std::string cmd = std::string(ZTSLM_BINARY) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = ::pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

TEST(ProvenanceCliTest, SignThenVerifyAndRefuseTampering) {
  ZTSLM_REQUIRE_SHARED();
  const std::string keys = testdata_path("model-signing/generated/keys");
  const fs::path dir = fs::path(::testing::TempDir()) / ("ztslm_cli_sign_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string model = (dir / "m.gguf").string();
  fs::copy_file(testdata_path("models/tiny-llama-spm-Q8_0.gguf"), model);

  auto [rc_sign, out_sign] = ztslm("model sign --key '" + keys + "/p256-signing-key.pem' '" + model + "'");
  ASSERT_EQ(rc_sign, 0) << out_sign;
  EXPECT_TRUE(fs::exists(model + ".sig"));
  auto [rc_ok, out_ok] = ztslm("model verify --key '" + keys + "/p256-signing-key-pub.pem' '" + model + "'");
  EXPECT_EQ(rc_ok, 0) << out_ok;
  EXPECT_NE(out_ok.find("verified"), std::string::npos);

  auto [rc_wrong, out_wrong] = ztslm("model verify --key '" + keys + "/p256-wrong-key-pub.pem' '" + model + "'");
  EXPECT_EQ(rc_wrong, 1);
  EXPECT_NE(out_wrong.find("invalid signature"), std::string::npos) << out_wrong;

  {
    std::fstream f(model, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1000);
    f.put('\x7f');
  }
  auto [rc_bad, out_bad] = ztslm("model verify --key '" + keys + "/p256-signing-key-pub.pem' '" + model + "'");
  EXPECT_EQ(rc_bad, 1);
  EXPECT_NE(out_bad.find("digest mismatch"), std::string::npos) << out_bad;

  fs::remove(model + ".sig");
  auto [rc_missing, out_missing] = ztslm("model verify --key '" + keys + "/p256-signing-key-pub.pem' '" + model + "'");
  EXPECT_EQ(rc_missing, 1);
  EXPECT_NE(out_missing.find("missing signature"), std::string::npos) << out_missing;
  fs::remove_all(dir);
}

TEST(ProvenanceCliTest, VerifiesTheUpstreamFixture) {
  ZTSLM_REQUIRE_SHARED();
  const std::string up = testdata_path("model-signing/upstream/model-transparency");
  auto [rc, out] = ztslm("model verify --key '" + up + "/keys/signing-key-pub.pem' '" + up + "/v1.1.0-elliptic-key'");
  EXPECT_EQ(rc, 0) << out;
}

}  // namespace
