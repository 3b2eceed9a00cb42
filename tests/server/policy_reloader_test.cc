// Policy reload from real files: a change is picked up by the watcher's check, a file that does
// not parse or whose tests fail keeps the policy in force, and every reload is audited.
#include "server/policy_reloader.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "policy/json.h"
#include "server/e2e_util.h"
#include "server/policy_authz.h"

namespace ztslm::server {
namespace {

std::string policy_text(bool allow_users, const std::string& extra = "") {
  return std::string("package ztslm.authz\nimport rego.v1\ndefault allow := false\n") +
         (allow_users ? "allow if \"user\" in input.principal.roles\n" : "allow if \"admin\" in input.principal.roles\n") +
         "test_nobody_without_roles if not allow with input as {\"principal\": {\"roles\": []}}\n" + extra;
}

class PolicyReloaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    write(policy_text(true));
    ASSERT_TRUE(load_policy(pdp_, dir_).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& text) { std::ofstream(dir_ + "/authz.rego", std::ios::trunc) << text; }
  bool user_allowed() const {
    return pdp_.decide(*policy::parse_json(R"({"principal": {"roles": ["user"]}})")).allow;
  }

  std::string dir_;
  policy::DecisionPoint pdp_{policy::DecisionPoint::Options{}};
  SimpleAuditSink audit_{"", 64};
  ManualClock clock_;
};

TEST_F(PolicyReloaderTest, ChangedFileIsReloadedAndAudited) {
  PolicyReloader r(pdp_, dir_, audit_, clock_, 0);
  EXPECT_TRUE(user_allowed());
  EXPECT_FALSE(r.check_for_change());  // nothing moved
  write(policy_text(false));
  EXPECT_TRUE(r.check_for_change());
  EXPECT_FALSE(user_allowed());
  EXPECT_EQ(pdp_.generation(), 2u);
  const AuditRecord rec = audit_.records().back();
  EXPECT_EQ(rec.route, "policy reload");
  EXPECT_EQ(rec.decision, "allow");
  EXPECT_EQ(rec.reasons.front(), "file_change");
  // The same contents written again are not a change.
  write(policy_text(false) + "");
  std::filesystem::last_write_time(dir_ + "/authz.rego", std::filesystem::file_time_type::clock::now());
  EXPECT_FALSE(r.check_for_change());
  EXPECT_EQ(pdp_.generation(), 2u);
}

TEST_F(PolicyReloaderTest, BrokenOrFailingPolicyKeepsTheOneInForce) {
  PolicyReloader r(pdp_, dir_, audit_, clock_, 0);
  write("package ztslm.authz\nallow if {");  // does not parse
  EXPECT_TRUE(r.check_for_change());
  EXPECT_TRUE(user_allowed());
  EXPECT_EQ(pdp_.generation(), 1u);
  AuditRecord rec = audit_.records().back();
  EXPECT_EQ(rec.decision, "error");
  ASSERT_EQ(rec.reasons.size(), 2u);
  EXPECT_NE(rec.reasons[1].find("kept the policy in force"), std::string::npos);

  write(policy_text(false, "test_users_may if allow with input as {\"principal\": {\"roles\": [\"user\"]}}\n"));
  EXPECT_TRUE(r.check_for_change());  // compiles, but its own test fails
  EXPECT_TRUE(user_allowed());
  rec = audit_.records().back();
  EXPECT_EQ(rec.decision, "error");
  EXPECT_NE(rec.reasons[1].find("test_users_may"), std::string::npos);
}

TEST_F(PolicyReloaderTest, ExplicitReloadAsOnSighup) {
  PolicyReloader r(pdp_, dir_, audit_, clock_, 0);
  EXPECT_TRUE(r.reload("sighup").ok());
  EXPECT_EQ(pdp_.generation(), 2u);
  EXPECT_EQ(audit_.records().back().reasons.front(), "sighup");
  std::filesystem::remove(dir_ + "/authz.rego");
  std::ofstream(dir_ + "/authz.rego") << "not rego";
  EXPECT_FALSE(r.reload("sighup").ok());
  EXPECT_TRUE(user_allowed());
}

}  // namespace
}  // namespace ztslm::server
