// Gateway configuration: the YAML schema of config/ztslm.yaml (the embedded default) and its
// strict, non-throwing loader. A user file is applied over the embedded default, so every key
// is optional; an unknown key or an ill-typed value is an error naming the key.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "policy/quota.h"

namespace ztslm::server {

struct Limits {
  size_t max_header_bytes = 16384;
  size_t max_body_bytes = 1 << 20;
  uint32_t header_timeout_ms = 10000;
  uint32_t body_timeout_ms = 30000;
  uint32_t idle_timeout_ms = 60000;
  uint32_t write_timeout_ms = 30000;
  uint32_t max_connections = 256;
  uint32_t max_concurrent_generations = 4;
  uint32_t max_json_depth = 16;
  uint32_t max_messages = 256;
  size_t max_message_bytes = 256 * 1024;
  uint32_t max_stop_strings = 4;
  uint32_t max_tokens = 4096;
  uint32_t drain_timeout_ms = 10000;
};

struct TlsConfig {
  std::string cert_file;       // "" = generated in state_dir
  std::string key_file;
  std::string client_ca_file;  // "" = no client certificates requested
  std::string spiffe_trust_domain = "ztslm.local";  // mTLS principals must be in this domain
  std::string min_version = "1.3";
};

struct ModelConfig {
  std::string path;
  std::string id;
  std::string chat_format;
  uint32_t n_ctx = 2048;
  uint32_t threads = 0;
  std::string signature_path;  // "" = "<path>.sig"
  std::string publisher;       // "" = any trusted publisher; else the one that must have signed it
  bool allow_unsigned = false;  // serve without verification (loud warning, audited, "verified":
                                // false); the default policy then admits the model
};

// One trusted model publisher: a name (the signer in audit records and /v1/models) and its
// ECDSA public key, from a PEM file or inline PEM text (exactly one of the two).
struct PublisherConfig {
  std::string name;
  std::string public_key_file;
  std::string public_key_pem;
};

// The model trust store (provenance/): the publishers whose signatures `ztslm serve` accepts.
struct TrustConfig {
  std::vector<PublisherConfig> publishers;
};

struct SessionConfig {
  uint32_t max_sessions = 64;
  uint32_t max_per_principal = 8;
  uint32_t idle_ttl_s = 900;
  uint32_t max_age_s = 86400;
  uint64_t max_bytes = uint64_t{4} << 30;  // total memory of all sessions' backend state (KV)
};

// Per-principal anomaly detection (audit::AnomalyDetector): request outcomes are folded into
// windows of `window_s`; a window more than `factor` times above its EWMA baseline (or the
// floor) raises an audited anomaly event.
struct AnomalyConfig {
  bool enabled = true;
  uint32_t window_s = 60;
  double alpha = 0.3;              // weight of the newest window in the baseline
  uint32_t warmup_windows = 5;     // closed windows before a principal can raise events
  double factor = 4.0;
  double min_requests = 10;        // floors of the baselines, per window
  double min_tokens = 2000;
  double min_ratio = 0.05;         // floor of the deny and guard-hit rate baselines
  uint32_t min_requests_for_ratio = 10;
  uint32_t max_principals = 10000;
};

// JWT bearer tokens (identity::JwtVerifier). Enabled when `jwks_file` or `jwks_url` is set;
// then `issuers` and `audiences` are required.
struct JwtSettings {
  std::string jwks_file;           // a JWKS document read at start
  std::string jwks_url;            // fetched with libcurl: https:// (or file://)
  std::string jwks_ca_file;        // "" = the system trust store
  bool jwks_allow_http = false;    // plain http:// URLs (tests only)
  uint32_t jwks_cache_ttl_s = 300;     // scheduled refresh of a good key set
  uint32_t jwks_min_refresh_s = 30;    // at most one fetch per this (unknown kid, failures)
  uint32_t jwks_max_stale_s = 86400;   // keep serving the last good set this long
  uint32_t jwks_timeout_ms = 5000;     // whole transfer
  size_t jwks_max_bytes = 64 * 1024;
  std::vector<std::string> issuers;
  std::vector<std::string> audiences;
  uint32_t leeway_s = 30;
  uint32_t max_lifetime_s = 0;     // 0 = no bound on exp - iat
  std::vector<std::string> algorithms = {"RS256", "ES256", "EdDSA"};
  std::string principal_claim = "sub";  // principal id = "jwt:" + this claim
  std::string tenant_claim = "tenant";
  std::string roles_claim = "roles";
  std::string default_tenant;           // "" = a token without the tenant claim is rejected
  std::vector<std::string> default_roles;

  bool enabled() const { return !jwks_file.empty() || !jwks_url.empty(); }
};

// Limits of one quota class (chosen per request by the policy obligation `quota_class`).
struct QuotaClass {
  policy::QuotaLimits principal;
  policy::QuotaLimits tenant;
};

struct QuotaConfig {
  bool enabled = false;               // counters in state_dir/quotas.db (the embedded config: true)
  uint32_t flush_interval_ms = 1000;  // write-behind period (0: write before each admission)
  std::map<std::string, QuotaClass> classes;  // "default" must exist while enabled
};
// guard.injection_model's default ("${data}/": the data directory, core/data_dir.h).
inline constexpr std::string_view kDefaultInjectionModel = "${data}/models/guard/injection.ztim";

// Where the engine runs (DESIGN.md "Processes"). `sandboxed`: worker processes (`ztslm worker`)
// driven by the supervisor in server/scheduler/; `inprocess`: the engine inside the gateway
// (debugging and tests only: no sandbox between the model and the keys).
struct WorkerConfig {
  std::string mode = "sandboxed";    // "sandboxed" | "inprocess"
  uint32_t count = 2;                // shared: workers; per-tenant: at most this many at once
  std::string isolation = "shared";  // "shared" | "per-tenant"
  uint32_t threads = 0;              // engine threads per worker; 0: the CPUs divided among `count`
  uint32_t ping_interval_ms = 1000;  // liveness ping of each worker
  uint32_t ping_deadline_ms = 10000; // no Pong within this: the worker is hung and killed
  uint32_t restart_backoff_ms = 100;       // first restart delay, doubled per failure
  uint32_t restart_backoff_max_ms = 10000; // cap on the delay
  uint32_t queue_timeout_ms = 10000; // a request waits this long for a free worker, then 503
  uint32_t max_sessions = 256;       // sessions one worker may hold (each one a KV cache)
  std::string user = "nobody";       // user the workers drop to when the gateway runs as root
  bool allow_degraded_lockdown = false;  // run workers without Landlock on kernels lacking it
  std::string binary;                // "": this executable (/proc/self/exe)
};

struct ServerConfig {
  std::string address = "127.0.0.1";
  uint16_t port = 8443;
  std::string state_dir;
  TlsConfig tls;
  Limits limits;
  ModelConfig model;
  TrustConfig trust;
  SessionConfig sessions;
  WorkerConfig worker;
  AnomalyConfig anomaly;
  JwtSettings jwt;
  uint32_t io_threads = 4;
  std::string policy_path;  // "" = the embedded policy/default.rego
  uint32_t policy_reload_interval_ms = 1000;  // file watcher period; 0 = SIGHUP only
  QuotaConfig quotas;
  std::string guard_injection_model = std::string(kDefaultInjectionModel);  // "" = rules only
};

// The text of config/ztslm.yaml as compiled in.
std::string_view default_config_yaml();

// Applies the YAML document `yaml` over `base`. kInvalidArgument for a syntax error, an unknown
// key, a wrong type or a value out of range (the message names the key, never echoes values).
Result<ServerConfig> parse_config(std::string_view yaml, const ServerConfig& base);

// As above for a document read from a file in the directory `config_dir` (absolute): every
// file path field whose value is relative (neither absolute nor "${data}/...") is resolved
// against `config_dir`. Empty `config_dir`: values are kept as written.
Result<ServerConfig> parse_config(std::string_view yaml, const ServerConfig& base, const std::string& config_dir);

// `value` resolved against `config_dir` when it is a relative path: "" , absolute paths,
// "${data}/..." and any value with an empty `config_dir` are returned unchanged.
std::string resolve_config_path(const std::string& value, const std::string& config_dir);

// The embedded default (parse_config of default_config_yaml over ServerConfig{}).
Result<ServerConfig> default_config();

// Reads `path` and applies it over the embedded default. Relative file paths in it resolve
// against the directory of `path` (parse_config with config_dir), not the working directory.
Result<ServerConfig> load_config_file(const std::string& path);

// The state directory: `cfg.state_dir`, else $ZTSLM_STATE_DIR, else $XDG_STATE_HOME/ztslm,
// else $HOME/.local/state/ztslm. kFailedPrecondition when none can be determined.
Result<std::string> resolve_state_dir(const ServerConfig& cfg);

}  // namespace ztslm::server
