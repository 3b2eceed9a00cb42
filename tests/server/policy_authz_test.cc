// The Rego decision point behind the gateway: the policy input document drives real decisions,
// obligations are enforced (max_tokens cap), and the shipped default policy denies an
// unverified model.
#include "server/policy_authz.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <utility>

#include "cli/inprocess_backend.h"
#include "policy/json.h"
#include "server/e2e_util.h"
#include "server/gateway.h"
#include "server/server.h"
#include "test_util.h"

namespace ztslm::server {
namespace {

constexpr const char* kPolicy = R"(package ztslm.authz
import rego.v1
default allow := false
allow if {
  input.action == "generate"
  "user" in input.principal.roles
  input.principal.tenant == "t1"
  input.route == "/v1/chat/completions"
  input.request.model == input.model.name
}
reasons contains "only tenant t1 may generate" if input.principal.tenant != "t1"
obligations := {"max_tokens": 2}
test_allows_t1 if allow with input as {"action": "generate", "principal": {"roles": ["user"], "tenant": "t1"},
  "route": "/v1/chat/completions", "request": {"model": "m"}, "model": {"name": "m"}}
)";

Principal user(const std::string& tenant) {
  Principal p;
  p.id = "p";
  p.tenant = tenant;
  p.roles = {"user"};
  p.method = "api_key";
  return p;
}

// A chat generation by `p` asking for `req` (a view: both must outlive the result).
PolicyInputArgs chat_input(const Principal& p, const openai::ApiRequest& req) {
  PolicyInputArgs a;
  a.principal = &p;
  a.method = "POST";
  a.path = "/v1/chat/completions";
  a.action = "generate";
  a.request = &req;
  a.model_id = "qwen2-0.5b-instruct";
  a.client_address = "127.0.0.1";
  a.unix_time = 1700000000;
  return a;
}

TEST(PolicyAuthorizerTest, DecidesOnThePolicyInputDocument) {
  const std::string dir = make_temp_dir();
  std::ofstream(dir + "/authz.rego") << kPolicy;
  policy::DecisionPoint pdp{policy::DecisionPoint::Options()};
  ASSERT_TRUE(load_policy(pdp, dir).ok());
  PolicyAuthorizer authz(pdp);
  openai::ApiRequest req;
  req.model = "m";
  const Principal t1 = user("t1"), t2 = user("t2");
  PolicyInputArgs a;
  a.principal = &t1;
  a.method = "POST";
  a.path = "/v1/chat/completions";
  a.action = "generate";
  a.request = &req;
  a.model_id = "m";
  auto d = authz.authorize(build_policy_input(a));
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(d->allow);
  EXPECT_EQ(d->max_tokens_cap, 2u);
  a.principal = &t2;
  d = authz.authorize(build_policy_input(a));
  ASSERT_TRUE(d.has_value());
  EXPECT_FALSE(d->allow);
  EXPECT_THAT(d->reasons, ::testing::Contains("only tenant t1 may generate"));
  std::filesystem::remove_all(dir);
}

TEST(PolicyAuthorizerTest, EmbeddedDefaultPolicyIsTheShippedFile) {
  const auto files = default_policy_files();
  ASSERT_EQ(files.size(), 2u);
  for (const auto& [f, name] : {std::pair{files[0], "default.rego"}, std::pair{files[1], "default_test.rego"}}) {
    std::ifstream in(std::string(ZTSLM_SOURCE_DIR) + "/policy/" + name, std::ios::binary);
    ASSERT_TRUE(in) << name;
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(f.text, text) << name;
  }
  policy::DecisionPoint pdp{policy::DecisionPoint::Options()};
  ASSERT_TRUE(load_policy(pdp, "").ok());  // "" = embedded; its tests pass
  EXPECT_EQ(pdp.generation(), 1u);
}

// Without an authorizer the gateway enforces the embedded default policy: an unsigned model
// generates only when the operator's config says model.allow_unsigned.
TEST(PolicyAuthorizerTest, DefaultPolicyInForceAndAllowUnsignedOnlyWhenConfigured) {
  ZTSLM_REQUIRE_SHARED();
  auto backend = tiny_in_process_backend(64);
  ASSERT_TRUE(backend.has_value());
  ManualClock clock;
  MemoryKeyAuth auth(clock);
  const std::string k = auth.create_key("a", "t1", {"user"});
  const json body = {{"model", "tiny-llama-spm-Q8_0"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                     {"max_tokens", 2}, {"temperature", 0}};
  for (const bool allow_unsigned : {false, true}) {
    const std::string dir = make_temp_dir();
    ServerConfig cfg = test_server_config(dir);
    cfg.model.allow_unsigned = allow_unsigned;
    SimpleAuditSink audit("", 16);
    ServerParts parts;
    parts.backend = backend->get();
    parts.auth = &auth;
    parts.audit = &audit;
    parts.clock = &clock;
    auto s = Server::start(cfg, parts);
    ASSERT_TRUE(s.has_value()) << s.error().to_string();
    const HttpResp r = curl_request((*s)->port(), (*s)->ca_file(), "POST", "/v1/chat/completions", body.dump(), {bearer(k)});
    if (allow_unsigned) {
      EXPECT_EQ(r.status, 200) << r.body;
    } else {
      EXPECT_EQ(r.status, 403) << r.body;
      EXPECT_THAT(audit.records().back().reasons, ::testing::Contains("model provenance is not verified"));
    }
    // Listing models does not depend on provenance.
    EXPECT_EQ(curl_request((*s)->port(), (*s)->ca_file(), "GET", "/v1/models", "", {bearer(k)}).status, 200);
    (*s)->stop();
    std::filesystem::remove_all(dir);
  }
}

TEST(PolicyInputTest, CarriesTheModelProvenance) {
  const Principal t1 = user("t1");
  PolicyInputArgs a;
  a.principal = &t1;
  a.action = "models";
  a.model_id = "m";
  json in = build_policy_input(a);
  EXPECT_EQ(in["model"], json({{"name", "m"}, {"digest", ""}, {"verified", false}, {"signer", ""}, {"allow_unsigned", false}}));
  const std::string digest = "sha256:" + std::string(64, 'a');
  a.model_digest = digest;
  a.model_signer = "acme";
  a.model_verified = true;
  in = build_policy_input(a);
  EXPECT_EQ(in["model"], json({{"name", "m"}, {"digest", digest}, {"verified", true}, {"signer", "acme"}, {"allow_unsigned", false}}));
}

// The input document reaches the policy converted in memory: the same value its JSON text would
// parse to, for every kind of JSON value the gateway can put in it.
TEST(PolicyInputTest, InMemoryConversionEqualsParsingTheJsonText) {
  const Principal t1 = user("t1");
  PolicyInputArgs a;
  a.principal = &t1;
  a.action = "generate";
  a.model_id = "m";
  json in = build_policy_input(a);
  in["extra"] = {{"unicode", "caf\u00e9 \u2603 \U0001F600"},
                 {"ints", {0, -1, int64_t{9007199254740993}, std::numeric_limits<int64_t>::min()}},
                 {"big_unsigned", uint64_t{18446744073709551615u}},
                 {"floats", {0.5, -2.25, 1e300, 3.0}},
                 {"nested", {{"b", {{"z", nullptr}, {"a", true}}}, {"a", json::array()}, {"", json::object()}}},
                 {"escapes", std::string("tab\t quote\" nul") + '\0'}};
  const auto parsed = policy::parse_json(in.dump());
  ASSERT_TRUE(parsed.has_value()) << parsed.error().to_string();
  EXPECT_EQ(policy_value(in), *parsed) << policy::to_json(policy_value(in));
  // Bytes that are not UTF-8 become U+FFFD, as the JSON writer's replacement would make them.
  json bad = {{"s", std::string("a\xff\xc3" "b")}};
  const auto want = policy::parse_json(bad.dump(-1, ' ', false, json::error_handler_t::replace));
  ASSERT_TRUE(want.has_value());
  EXPECT_EQ(policy_value(bad), *want);
  // A non-finite number is null, as in the JSON text.
  EXPECT_EQ(policy_value(json(std::numeric_limits<double>::infinity())), policy::Value::null());
}

TEST(PolicyAuthorizerTest, ShippedDefaultPolicyAllowsOnlyAVerifiedModel) {
  const std::string path = std::string(ZTSLM_SOURCE_DIR) + "/policy";
  if (!std::filesystem::exists(path + "/default.rego")) GTEST_SKIP() << "policy/default.rego not present";
  policy::DecisionPoint pdp{policy::DecisionPoint::Options()};
  ASSERT_TRUE(load_policy(pdp, path).ok());
  PolicyAuthorizer authz(pdp);
  openai::ApiRequest req;
  req.model = "qwen2-0.5b-instruct";
  req.sampling.max_tokens = 10;
  const Principal t1 = user("t1");
  PolicyInputArgs a = chat_input(t1, req);
  auto unknown = authz.authorize(build_policy_input(a));  // no digest, no signer
  ASSERT_TRUE(unknown.has_value());
  EXPECT_FALSE(unknown->allow);
  EXPECT_THAT(unknown->reasons, ::testing::Contains("model provenance is not verified"));
  const std::string digest = "sha256:" + std::string(64, 'b');
  a.model_digest = digest;
  a.model_signer = "acme";
  a.model_verified = true;
  auto d = authz.authorize(build_policy_input(a));
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(d->allow);
  EXPECT_EQ(d->max_tokens_cap, 512u);  // the user role's cap
  a.model_verified = false;  // same digest, but no trusted signature: denied
  d = authz.authorize(build_policy_input(a));
  ASSERT_TRUE(d.has_value());
  EXPECT_FALSE(d->allow);
  EXPECT_THAT(d->reasons, ::testing::Contains("model provenance is not verified"));
}

TEST(PolicyAuthorizerTest, GatewayEnforcesDecisionAndObligation) {
  ZTSLM_REQUIRE_SHARED();
  const std::string dir = make_temp_dir();
  std::ofstream(dir + "/authz.rego") << kPolicy;
  policy::DecisionPoint pdp{policy::DecisionPoint::Options()};
  ASSERT_TRUE(load_policy(pdp, dir).ok());
  PolicyAuthorizer authz(pdp);
  auto backend = tiny_in_process_backend(64);
  ASSERT_TRUE(backend.has_value());
  ManualClock clock;
  MemoryKeyAuth auth(clock);
  const std::string k1 = auth.create_key("a", "t1", {"user"});
  const std::string k2 = auth.create_key("b", "t2", {"user"});
  ServerConfig cfg = test_server_config(dir);
  ServerParts parts;
  parts.backend = backend->get();
  parts.auth = &auth;
  parts.authorizer = &authz;
  parts.clock = &clock;
  auto s = Server::start(cfg, parts);
  ASSERT_TRUE(s.has_value());
  const json body = {{"model", "tiny-llama-spm-Q8_0"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                     {"max_tokens", 5}, {"temperature", 0}};
  const HttpResp ok = curl_request((*s)->port(), (*s)->ca_file(), "POST", "/v1/chat/completions", body.dump(), {bearer(k1)});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.j()["usage"]["completion_tokens"], 2);  // the obligation capped max_tokens 5
  EXPECT_EQ(curl_request((*s)->port(), (*s)->ca_file(), "POST", "/v1/chat/completions", body.dump(), {bearer(k2)}).status, 403);
  EXPECT_EQ(curl_request((*s)->port(), (*s)->ca_file(), "GET", "/v1/models", "", {bearer(k1)}).status, 403);
  (*s)->stop();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ztslm::server
