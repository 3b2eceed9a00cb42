#include "server/config/config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace ztslm::server {
namespace {

using ::ztslm::testing::shared_dir;

TEST(ConfigTest, EmbeddedDefaultMatchesIssueDefaults) {
  auto c = default_config();
  ASSERT_TRUE(c.has_value()) << c.error().to_string();
  EXPECT_EQ(c->address, "127.0.0.1");
  EXPECT_EQ(c->port, 8443);
  EXPECT_EQ(c->tls.min_version, "1.3");
  EXPECT_EQ(c->model.path, "${data}/models/demo/ztslm-demo-Q8_0.gguf");  // the bundled demo model
  EXPECT_GT(c->limits.max_body_bytes, 0u);
  EXPECT_GT(c->limits.header_timeout_ms, 0u);
}

TEST(ConfigTest, UserFileOverridesOnlyWhatItNames) {
  auto base = default_config();
  ASSERT_TRUE(base.has_value());
  auto c = parse_config("listen:\n  port: 0\nlimits:\n  max_body_bytes: 4096\n", *base);
  ASSERT_TRUE(c.has_value()) << c.error().to_string();
  EXPECT_EQ(c->port, 0);
  EXPECT_EQ(c->limits.max_body_bytes, 4096u);
  EXPECT_EQ(c->limits.max_header_bytes, base->limits.max_header_bytes);
  EXPECT_EQ(c->address, "127.0.0.1");
}

TEST(ConfigTest, RejectsEachDefect) {
  const struct {
    const char* name;
    const char* yaml;
  } kCases[] = {
      {"unknown top key", "listen_port: 1\n"},
      {"unknown nested key", "limits:\n  max_bogus: 1\n"},
      {"wrong type", "listen:\n  port: [1]\n"},
      {"not a number", "listen:\n  port: eighty\n"},
      {"negative", "limits:\n  max_body_bytes: -1\n"},
      {"out of range", "listen:\n  port: 70000\n"},
      {"bad tls version", "tls:\n  min_version: \"1.0\"\n"},
      {"cert without key", "tls:\n  cert_file: a.pem\n"},
      {"syntax error", "listen: [\n"},
      {"section not a map", "limits: 5\n"},
      {"unknown worker mode", "worker:\n  mode: container\n"},
      {"unknown isolation", "worker:\n  isolation: per-user\n"},
      {"zero workers", "worker:\n  count: 0\n"},
      {"not a boolean", "worker:\n  allow_degraded_lockdown: yes\n"},
      {"backoff cap below start", "worker:\n  restart_backoff_ms: 500\n  restart_backoff_max_ms: 100\n"},
      {"allow_unsigned not a boolean", "model:\n  allow_unsigned: yes\n"},
      {"publishers not a list", "trust:\n  publishers: {name: a}\n"},
      {"publisher without a name", "trust:\n  publishers: [{public_key_file: a.pem}]\n"},
      {"publisher without a key", "trust:\n  publishers: [{name: a}]\n"},
      {"publisher with two keys", "trust:\n  publishers: [{name: a, public_key_file: a.pem, public_key_pem: x}]\n"},
      {"publisher unknown key", "trust:\n  publishers: [{name: a, public_key_file: a.pem, url: x}]\n"},
      {"duplicate publisher", "trust:\n  publishers: [{name: a, public_key_file: a.pem}, {name: a, public_key_file: b.pem}]\n"},
      {"pin of an unknown publisher", "model:\n  publisher: a\n"},
      {"pin with allow_unsigned",
       "trust:\n  publishers: [{name: a, public_key_file: a.pem}]\nmodel:\n  publisher: a\n  allow_unsigned: true\n"},
      {"anomaly bool", "anomaly:\n  enabled: yes\n"},
      {"anomaly number", "anomaly:\n  alpha: 0.3x\n"},
      {"anomaly alpha range", "anomaly:\n  alpha: 2\n"},
      {"anomaly factor below 1", "anomaly:\n  factor: 0.5\n"},
      {"jwt list not a list", "jwt:\n  issuers: https://a\n"},
      {"jwt list of maps", "jwt:\n  issuers: [{a: b}]\n"},
      {"jwt without issuers", "jwt:\n  jwks_file: k.json\n  audiences: [a]\n"},
      {"jwt without audiences", "jwt:\n  jwks_file: k.json\n  issuers: [https://a]\n"},
      {"jwt file and url", "jwt:\n  jwks_file: k\n  jwks_url: https://x\n  issuers: [i]\n  audiences: [a]\n"},
      {"jwt unknown alg", "jwt:\n  algorithms: [HS256]\n"},
      {"jwt leeway range", "jwt:\n  leeway_s: 301\n"},
      {"jwt unknown claim key", "jwt:\n  claims:\n    email: e\n"},
      {"sessions max_bytes range", "sessions:\n  max_bytes: 12\n"},
  };
  for (const auto& c : kCases) {
    EXPECT_THAT(parse_config(c.yaml, ServerConfig()), StatusIs(StatusCode::kInvalidArgument)) << c.name;
  }
}

TEST(ConfigTest, QuotaClassesFromTheEmbeddedDefaultAndAUserFile) {
  auto base = default_config();
  ASSERT_TRUE(base.has_value());
  EXPECT_TRUE(base->quotas.enabled);
  ASSERT_EQ(base->quotas.classes.count("default"), 1u);
  ASSERT_EQ(base->quotas.classes.count("elevated"), 1u);
  ASSERT_EQ(base->quotas.classes.count("admin"), 1u);
  EXPECT_EQ(base->quotas.classes.at("default").principal.requests_per_minute, 60u);
  EXPECT_EQ(base->quotas.classes.at("admin").tenant.tokens_per_day, 0u);  // unlimited
  auto c = parse_config(
      "quotas:\n  flush_interval_ms: 0\n  classes:\n    default:\n      principal: {tokens_per_minute: 7}\n"
      "    batch:\n      tenant: {concurrent: 3}\n",
      *base);
  ASSERT_TRUE(c.has_value()) << c.error().to_string();
  EXPECT_EQ(c->quotas.flush_interval_ms, 0u);
  EXPECT_EQ(c->quotas.classes.at("default").principal.tokens_per_minute, 7u);
  EXPECT_EQ(c->quotas.classes.at("default").principal.requests_per_minute, 60u);  // kept
  EXPECT_EQ(c->quotas.classes.at("batch").tenant.concurrent, 3u);
  EXPECT_EQ(c->quotas.classes.at("batch").principal.requests_per_minute, 0u);
  for (const char* bad : {"quotas:\n  classes:\n    Bad Name:\n      principal: {}\n",
                          "quotas:\n  classes:\n    default:\n      principal: {rpm: 1}\n",
                          "quotas:\n  classes:\n    default:\n      owner: {}\n",
                          "quotas:\n  enabled: yes please\n",
                          "quotas:\n  classes: [1, 2]\n"}) {
    EXPECT_THAT(parse_config(bad, *base), StatusIs(StatusCode::kInvalidArgument)) << bad;
  }
  // Enabled without a default class: refused.
  EXPECT_THAT(parse_config("quotas:\n  enabled: true\n", ServerConfig()), StatusIs(StatusCode::kInvalidArgument));
}

TEST(ConfigTest, WorkersAreSandboxedAndSharedByDefault) {
  auto c = default_config();
  ASSERT_TRUE(c.has_value()) << c.error().to_string();
  EXPECT_EQ(c->worker.mode, "sandboxed");
  EXPECT_EQ(c->worker.isolation, "shared");
  EXPECT_FALSE(c->worker.allow_degraded_lockdown);
  EXPECT_GE(c->worker.count, 1u);
  EXPECT_LT(c->worker.ping_interval_ms, c->worker.ping_deadline_ms);
  auto p = parse_config("worker:\n  isolation: per-tenant\n  count: 8\n  allow_degraded_lockdown: true\n", *c);
  ASSERT_TRUE(p.has_value()) << p.error().to_string();
  EXPECT_EQ(p->worker.isolation, "per-tenant");
  EXPECT_EQ(p->worker.count, 8u);
  EXPECT_TRUE(p->worker.allow_degraded_lockdown);
  EXPECT_EQ(p->worker.mode, "sandboxed");
}

TEST(ConfigTest, TrustSectionAndModelProvenanceKeys) {
  auto base = default_config();
  ASSERT_TRUE(base.has_value());
  // By default only the demo publisher is trusted, for the bundled demo model.
  ASSERT_EQ(base->trust.publishers.size(), 1u);
  EXPECT_EQ(base->trust.publishers[0].name, "ztslm-demo");
  EXPECT_EQ(base->trust.publishers[0].public_key_file, "${data}/models/demo/demo-publisher.pub.pem");
  EXPECT_EQ(base->model.path, "${data}/models/demo/ztslm-demo-Q8_0.gguf");
  EXPECT_FALSE(base->model.allow_unsigned);
  auto c = parse_config(
      "trust:\n  publishers:\n    - {name: acme, public_key_file: /k/acme.pem}\n"
      "    - name: lab\n      public_key_pem: \"-----BEGIN PUBLIC KEY-----\"\n"
      "model:\n  path: m.gguf\n  signature_path: m.bundle\n  publisher: lab\n",
      *base);
  ASSERT_TRUE(c.has_value()) << c.error().to_string();
  ASSERT_EQ(c->trust.publishers.size(), 2u);
  EXPECT_EQ(c->trust.publishers[0].name, "acme");
  EXPECT_EQ(c->trust.publishers[0].public_key_file, "/k/acme.pem");
  EXPECT_EQ(c->trust.publishers[1].public_key_pem, "-----BEGIN PUBLIC KEY-----");
  EXPECT_EQ(c->model.signature_path, "m.bundle");
  EXPECT_EQ(c->model.publisher, "lab");
  // A later file replaces the list as a whole.
  auto d = parse_config("trust:\n  publishers: []\nmodel:\n  publisher: \"\"\n  allow_unsigned: true\n", *c);
  ASSERT_TRUE(d.has_value()) << d.error().to_string();
  EXPECT_TRUE(d->trust.publishers.empty());
  EXPECT_TRUE(d->model.allow_unsigned);
}

TEST(ConfigTest, AnomalyJwtAndSessionBytesSections) {
  auto base = default_config();
  ASSERT_TRUE(base.has_value());
  EXPECT_TRUE(base->anomaly.enabled);
  EXPECT_FALSE(base->jwt.enabled());
  EXPECT_EQ(base->jwt.algorithms, (std::vector<std::string>{"RS256", "ES256", "EdDSA"}));
  auto c = parse_config(
      "anomaly:\n  enabled: false\n  window_s: 10\n  alpha: 0.5\n  factor: 2.5\n  min_tokens: 1e3\n"
      "jwt:\n  jwks_url: https://idp.example/jwks.json\n  jwks_cache_ttl_s: 60\n"
      "  issuers: [https://idp.example, https://idp2.example]\n  audiences: [model-server]\n"
      "  algorithms: [ES256]\n  claims:\n    principal: email\n  default_roles: [user]\n"
      "sessions:\n  max_bytes: 1048576\n",
      *base);
  ASSERT_TRUE(c.has_value()) << c.error().to_string();
  EXPECT_FALSE(c->anomaly.enabled);
  EXPECT_EQ(c->anomaly.window_s, 10u);
  EXPECT_EQ(c->anomaly.alpha, 0.5);
  EXPECT_EQ(c->anomaly.factor, 2.5);
  EXPECT_EQ(c->anomaly.min_tokens, 1000.0);
  EXPECT_EQ(c->anomaly.warmup_windows, base->anomaly.warmup_windows);
  EXPECT_TRUE(c->jwt.enabled());
  EXPECT_EQ(c->jwt.jwks_cache_ttl_s, 60u);
  EXPECT_EQ(c->jwt.issuers.size(), 2u);
  EXPECT_EQ(c->jwt.algorithms, (std::vector<std::string>{"ES256"}));
  EXPECT_EQ(c->jwt.principal_claim, "email");
  EXPECT_EQ(c->jwt.tenant_claim, "tenant");
  EXPECT_EQ(c->jwt.default_roles, (std::vector<std::string>{"user"}));
  EXPECT_EQ(c->sessions.max_bytes, 1048576u);
}

// Every file path field of a config file, relative in the file, resolves against the file's
// directory; absolute paths, "${data}/..." and empty values stay as written.
TEST(ConfigTest, RelativePathsResolveAgainstTheConfigFileDirectory) {
  const std::string yaml =
      "state_dir: state\n"
      "tls: {cert_file: tls/cert.pem, key_file: ./tls/key.pem, client_ca_file: ../ca/clients.pem}\n"
      "model: {path: m.gguf, signature_path: sigs/m.gguf.sig}\n"
      "trust:\n  publishers:\n    - {name: a, public_key_file: k.pem}\n"
      "    - {name: b, public_key_file: /abs/b.pem}\n    - {name: c, public_key_pem: \"k/rel.pem\"}\n"
      "    - {name: d, public_key_file: \"${data}/models/demo/demo-publisher.pub.pem\"}\n"
      "worker: {binary: bin/ztslm}\n"
      "jwt: {jwks_file: jwks.json, jwks_ca_file: idp-ca.pem, issuers: [i], audiences: [a]}\n"
      "policy: {path: policy.d}\n"
      "guard: {injection_model: guard/injection.ztim}\n";
  auto base = default_config();
  ASSERT_TRUE(base.has_value());
  auto c = parse_config(yaml, *base, "/etc/ztslm");
  ASSERT_TRUE(c.has_value()) << c.error().to_string();
  EXPECT_EQ(c->state_dir, "/etc/ztslm/state");
  EXPECT_EQ(c->tls.cert_file, "/etc/ztslm/tls/cert.pem");
  EXPECT_EQ(c->tls.key_file, "/etc/ztslm/./tls/key.pem");
  EXPECT_EQ(c->tls.client_ca_file, "/etc/ztslm/../ca/clients.pem");
  EXPECT_EQ(c->model.path, "/etc/ztslm/m.gguf");
  EXPECT_EQ(c->model.signature_path, "/etc/ztslm/sigs/m.gguf.sig");
  ASSERT_EQ(c->trust.publishers.size(), 4u);
  EXPECT_EQ(c->trust.publishers[0].public_key_file, "/etc/ztslm/k.pem");
  EXPECT_EQ(c->trust.publishers[1].public_key_file, "/abs/b.pem");
  EXPECT_EQ(c->trust.publishers[2].public_key_pem, "k/rel.pem");  // PEM text, not a path
  EXPECT_EQ(c->trust.publishers[3].public_key_file, "${data}/models/demo/demo-publisher.pub.pem");
  EXPECT_EQ(c->worker.binary, "/etc/ztslm/bin/ztslm");
  EXPECT_EQ(c->jwt.jwks_file, "/etc/ztslm/jwks.json");
  EXPECT_EQ(c->jwt.jwks_ca_file, "/etc/ztslm/idp-ca.pem");
  EXPECT_EQ(c->policy_path, "/etc/ztslm/policy.d");
  EXPECT_EQ(c->guard_injection_model, "/etc/ztslm/guard/injection.ztim");

  // What the file does not name keeps the embedded default (a "${data}/" path), and the same
  // document without a directory (the embedded default's own parse) keeps every value as written.
  auto d = parse_config("model: {path: m.gguf}\nguard: {injection_model: \"\"}\n", *base, "/etc/ztslm");
  ASSERT_TRUE(d.has_value()) << d.error().to_string();
  ASSERT_EQ(d->trust.publishers.size(), 1u);
  EXPECT_EQ(d->trust.publishers[0].public_key_file, "${data}/models/demo/demo-publisher.pub.pem");
  EXPECT_EQ(d->guard_injection_model, "");  // "" = rules only, not the directory
  EXPECT_EQ(d->state_dir, "");              // still the default search
  auto e = parse_config(yaml, *base);
  ASSERT_TRUE(e.has_value()) << e.error().to_string();
  EXPECT_EQ(e->model.path, "m.gguf");
  EXPECT_EQ(e->trust.publishers[0].public_key_file, "k.pem");
}

TEST(ConfigTest, ResolveConfigPath) {
  EXPECT_EQ(resolve_config_path("m.gguf", "/srv/z"), "/srv/z/m.gguf");
  EXPECT_EQ(resolve_config_path("m.gguf", "/"), "/m.gguf");
  EXPECT_EQ(resolve_config_path("/m.gguf", "/srv/z"), "/m.gguf");
  EXPECT_EQ(resolve_config_path("${data}/m.gguf", "/srv/z"), "${data}/m.gguf");
  EXPECT_EQ(resolve_config_path("${data}m.gguf", "/srv/z"), "/srv/z/${data}m.gguf");  // not the prefix
  EXPECT_EQ(resolve_config_path("", "/srv/z"), "");
  EXPECT_EQ(resolve_config_path("m.gguf", ""), "m.gguf");
}

// load_config_file takes the directory from the file's own path, made absolute once against
// the working directory of the moment: a later change of directory changes nothing.
TEST(ConfigTest, LoadConfigFileResolvesAgainstItsDirectory) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / ("ztslm_config_rel_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "etc");
  std::ofstream(dir / "etc" / "z.yaml") << "model: {path: m.gguf}\ntrust:\n  publishers: [{name: a, public_key_file: k.pem}]\n";
  const fs::path old_cwd = fs::current_path();
  fs::current_path(dir);
  auto c = load_config_file("etc/z.yaml");  // a relative --config
  fs::current_path("/");
  auto d = load_config_file((dir / "etc" / "z.yaml").string());
  fs::current_path(old_cwd);
  const std::string etc = fs::weakly_canonical(dir / "etc").string();
  ASSERT_TRUE(c.has_value()) << c.error().to_string();
  ASSERT_TRUE(d.has_value()) << d.error().to_string();
  EXPECT_EQ(fs::weakly_canonical(c->model.path).string(), etc + "/m.gguf");
  EXPECT_EQ(fs::weakly_canonical(d->model.path).string(), etc + "/m.gguf");
  EXPECT_EQ(d->trust.publishers[0].public_key_file, (dir / "etc").lexically_normal().string() + "/k.pem");
  fs::remove_all(dir);
}

TEST(ConfigTest, EmptyDocumentKeepsBase) {
  ServerConfig base;
  base.port = 1234;
  auto c = parse_config("", base);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->port, 1234);
}

}  // namespace
}  // namespace ztslm::server
