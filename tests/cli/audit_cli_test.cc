// End-to-end tests of `ztslm audit verify|tail` on logs written by audit::AuditLog.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "audit/audit_log.h"
#include "cli/run_ztslm.h"

namespace ztslm {
namespace {

using testing::run_ztslm;

class AuditCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "ztslm_audit_cli_" + std::to_string(getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directory(dir_);
    std::filesystem::permissions(dir_, std::filesystem::perms::owner_all);
    audit::AuditLogOptions o;
    o.path = dir_ + "/audit.log";
    o.state_dir = dir_;
    o.checkpoint_every_records = 4;
    auto log = audit::AuditLog::open(o);
    ASSERT_TRUE(log.has_value()) << log.error().to_string();
    for (int i = 0; i < 10; ++i) {
      audit::RequestRecord r;
      r.request_id = "req-" + std::to_string(i);
      r.principal = "alice";
      r.route = "/v1/chat/completions";
      r.status = 200;
      ASSERT_TRUE((*log)->append(r).has_value());
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string log() const { return dir_ + "/audit.log"; }
  std::string pub() const { return dir_ + "/audit-signing.pub"; }

  std::string dir_;
};

TEST_F(AuditCliTest, VerifyAcceptsAnIntactLogWithThePinnedKey) {
  const testing::ProcResult r = run_ztslm("audit verify " + log() + " --pubkey " + pub());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("OK: 14 records, 3 checkpoints, 1 sessions"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("signed by the pinned key"), std::string::npos) << r.out;
}

TEST_F(AuditCliTest, VerifyNamesTheFirstBadLine) {
  std::ifstream in(log());
  std::stringstream ss;
  ss << in.rdbuf();
  std::string bytes = ss.str();
  const size_t at = bytes.find("req-3");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 4] = '9';
  std::ofstream(log(), std::ios::trunc) << bytes;
  const testing::ProcResult r = run_ztslm("audit verify " + log());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("line 6: hash does not match"), std::string::npos) << r.err;
  const testing::ProcResult j = run_ztslm("audit verify --json " + log());
  EXPECT_EQ(j.exit_code, 1);
  EXPECT_NE(j.out.find("\"bad_line\":6"), std::string::npos) << j.out;
}

TEST_F(AuditCliTest, VerifyRejectsAnotherPinnedKeyAndBadArguments) {
  const std::string other(64, 'a');
  EXPECT_EQ(run_ztslm("audit verify " + log() + " --pubkey " + other).exit_code, 1);
  EXPECT_EQ(run_ztslm("audit verify " + log() + " --pubkey /nonexistent").exit_code, 2);
  EXPECT_EQ(run_ztslm("audit verify " + dir_ + "/missing.log").exit_code, 1);
}

TEST_F(AuditCliTest, TailPrintsTheLastRecords) {
  const testing::ProcResult r = run_ztslm("audit tail -n 2 " + log());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2);
  EXPECT_NE(r.out.find("\"type\":\"checkpoint\""), std::string::npos) << r.out;
}

}  // namespace
}  // namespace ztslm
