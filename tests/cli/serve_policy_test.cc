// `ztslm serve` reloads its policy files on SIGHUP: a policy that does not compile is refused
// (the one in force stays, the attempt is audited), a good one replaces it.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "cli/run_ztslm.h"
#include "test_util.h"

namespace ztslm {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Waits (bounded) until `path` contains `needle`.
bool wait_for(const std::string& path, const std::string& needle) {
  for (int i = 0; i < 1200; ++i) {
    if (slurp(path).find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

constexpr const char* kPolicy =
    "package ztslm.authz\nimport rego.v1\ndefault allow := false\nallow if \"user\" in input.principal.roles\n";

TEST(ServePolicyTest, SighupReloadsThePolicyFilesAndKeepsTheOldOnFailure) {
  ZTSLM_REQUIRE_SHARED();
  const std::string dir = ::testing::TempDir() + "ztslm_serve_policy_" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/policy");
  std::ofstream(dir + "/policy/authz.rego") << kPolicy;
  std::ofstream(dir + "/ztslm.yaml") << "listen: {port: 0}\nstate_dir: " << dir << "/state\n"
                                     << "policy: {path: " << dir << "/policy, reload_interval_ms: 0}\n"
                                     << "model: {allow_unsigned: true}\n";  // the shared model is unsigned
  const std::string model = ::ztslm::testing::testdata_path("models/tiny-llama-spm-Q8_0.gguf");
  const std::string out = dir + "/out.txt", err = dir + "/err.txt";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FILE* o = std::freopen(out.c_str(), "w", stdout);
    FILE* e = std::freopen(err.c_str(), "w", stderr);
    if (o == nullptr || e == nullptr) _exit(127);
    execl(ZTSLM_BINARY, ZTSLM_BINARY, "serve", "--config", (dir + "/ztslm.yaml").c_str(), "--model", model.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_TRUE(wait_for(out, "ztslm serve: https://")) << slurp(err);

  std::ofstream(dir + "/policy/authz.rego", std::ios::trunc) << "package ztslm.authz\nallow if {";
  ASSERT_EQ(kill(pid, SIGHUP), 0);
  EXPECT_TRUE(wait_for(err, "SIGHUP: policy kept")) << slurp(err);

  std::ofstream(dir + "/policy/authz.rego", std::ios::trunc) << kPolicy << "# edited\n";
  ASSERT_EQ(kill(pid, SIGHUP), 0);
  EXPECT_TRUE(wait_for(err, "SIGHUP: policy reloaded")) << slurp(err);

  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << slurp(err);
  // Both attempts are in the audit log, the refused one with its error.
  const std::string audit = slurp(dir + "/state/audit.log");
  size_t n = 0;
  for (size_t at = audit.find("\"sighup\""); at != std::string::npos; at = audit.find("\"sighup\"", at + 1)) ++n;
  EXPECT_EQ(n, 2u) << audit.substr(0, 2000);
  EXPECT_NE(audit.find("kept the policy in force"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ztslm
