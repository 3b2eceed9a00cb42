#include "server/config/config.h"

#include <yaml-cpp/yaml.h>

#include "core/utf8.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

namespace ztslm::server {
namespace {

// Walks one mapping node: each known key has a setter; anything else is an error.
using Setter = std::function<Status(const YAML::Node&, const std::string& key)>;

Status walk(const YAML::Node& node, const std::string& prefix,
            const std::map<std::string, Setter>& setters) {
  if (node.IsNull()) return Status();
  if (!node.IsMap()) return Status::invalid_argument("config: {} must be a mapping", prefix.empty() ? "document" : prefix);
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) return Status::invalid_argument("config: non-scalar key under {}", prefix);
    const std::string key = kv.first.Scalar();
    const std::string full = prefix.empty() ? key : prefix + "." + key;
    auto it = setters.find(key);
    if (it == setters.end()) return Status::invalid_argument("config: unknown key {}", printable(full, 80));
    ZTSLM_TRY(it->second(kv.second, full));
  }
  return Status();
}

template <typename T>
Setter uint_field(T* out, uint64_t lo, uint64_t hi) {
  return [out, lo, hi](const YAML::Node& n, const std::string& key) -> Status {
    if (!n.IsScalar()) return Status::invalid_argument("config: {} must be an integer", key);
    const std::string& s = n.Scalar();
    if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos) {
      return Status::invalid_argument("config: {} must be an integer", key);
    }
    const uint64_t v = std::strtoull(s.c_str(), nullptr, 10);
    if (v < lo || v > hi) return Status::invalid_argument("config: {} outside [{}, {}]", key, lo, hi);
    *out = static_cast<T>(v);
    return Status();
  };
}

Setter string_field(std::string* out) {
  return [out](const YAML::Node& n, const std::string& key) -> Status {
    if (n.IsNull()) {
      out->clear();
      return Status();
    }
    if (!n.IsScalar()) return Status::invalid_argument("config: {} must be a string", key);
    if (n.Scalar().size() > 4096) return Status::invalid_argument("config: {} longer than 4096 bytes", key);
    *out = n.Scalar();
    return Status();
  };
}

// A file path: a string field that, when the document came from a file (`config_dir` not
// empty), resolves a relative value (not absolute, not "${data}/...") against that file's
// directory, so that the file means the same whatever the working directory of the process.
Setter path_field(std::string* out, const std::string& config_dir) {
  return [out, config_dir](const YAML::Node& n, const std::string& key) -> Status {
    ZTSLM_TRY(string_field(out)(n, key));
    *out = resolve_config_path(*out, config_dir);
    return Status();
  };
}

Setter bool_field(bool* out) {
  return [out](const YAML::Node& n, const std::string& key) -> Status {
    if (!n.IsScalar() || (n.Scalar() != "true" && n.Scalar() != "false")) {
      return Status::invalid_argument("config: {} must be true or false", key);
    }
    *out = n.Scalar() == "true";
    return Status();
  };
}

// trust.publishers: a sequence of {name, public_key_file | public_key_pem}; replaces the base's.
Setter publishers_field(std::vector<PublisherConfig>* out, const std::string& config_dir) {
  return [out, config_dir](const YAML::Node& n, const std::string& key) -> Status {
    std::vector<PublisherConfig> list;
    if (!n.IsNull()) {
      if (!n.IsSequence()) return Status::invalid_argument("config: {} must be a list", key);
      if (n.size() > 256) return Status::invalid_argument("config: {} has more than 256 entries", key);
      for (size_t i = 0; i < n.size(); ++i) {
        const std::string item = key + "[" + std::to_string(i) + "]";
        PublisherConfig p;
        ZTSLM_TRY(walk(n[i], item, {{"name", string_field(&p.name)},
                                    {"public_key_file", path_field(&p.public_key_file, config_dir)},
                                    {"public_key_pem", string_field(&p.public_key_pem)}}));
        if (p.name.empty()) return Status::invalid_argument("config: {}.name is missing", item);
        if (p.public_key_file.empty() == p.public_key_pem.empty()) {
          return Status::invalid_argument("config: {} needs exactly one of public_key_file, public_key_pem", item);
        }
        for (const PublisherConfig& q : list) {
          if (q.name == p.name) return Status::invalid_argument("config: {}.name repeats an earlier publisher", item);
        }
        list.push_back(std::move(p));
      }
    }
    *out = std::move(list);
    return Status();
  };
}

// A plain decimal number ("0.3", "4", "1e-3") in [lo, hi].
Setter double_field(double* out, double lo, double hi) {
  return [out, lo, hi](const YAML::Node& n, const std::string& key) -> Status {
    if (!n.IsScalar()) return Status::invalid_argument("config: {} must be a number", key);
    const std::string& s = n.Scalar();
    if (s.empty() || s.size() > 32 || s.find_first_not_of("0123456789.eE+-") != std::string::npos) {
      return Status::invalid_argument("config: {} must be a number", key);
    }
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size() || !(v >= lo && v <= hi)) {
      return Status::invalid_argument("config: {} must be a number in [{}, {}]", key, lo, hi);
    }
    *out = v;
    return Status();
  };
}

// A sequence of at most `max_items` non-empty strings (each at most 1024 bytes); replaces the
// base list as a whole.
Setter string_list_field(std::vector<std::string>* out, size_t max_items) {
  return [out, max_items](const YAML::Node& n, const std::string& key) -> Status {
    if (n.IsNull()) {
      out->clear();
      return Status();
    }
    if (!n.IsSequence()) return Status::invalid_argument("config: {} must be a list of strings", key);
    if (n.size() > max_items) return Status::invalid_argument("config: {} has more than {} items", key, max_items);
    std::vector<std::string> v;
    for (const auto& item : n) {
      if (!item.IsScalar() || item.Scalar().empty() || item.Scalar().size() > 1024) {
        return Status::invalid_argument("config: {} must be a list of non-empty strings", key);
      }
      v.push_back(item.Scalar());
    }
    *out = std::move(v);
    return Status();
  };
}

Setter section(std::map<std::string, Setter> setters) {
  return [setters = std::move(setters)](const YAML::Node& n, const std::string& key) {
    return walk(n, key, setters);
  };
}

Setter quota_limits(policy::QuotaLimits* l) {
  constexpr uint64_t kMax = uint64_t{1} << 62;
  return section({{"requests_per_minute", uint_field(&l->requests_per_minute, 0, kMax)},
                  {"tokens_per_minute", uint_field(&l->tokens_per_minute, 0, kMax)},
                  {"tokens_per_day", uint_field(&l->tokens_per_day, 0, kMax)},
                  {"concurrent", uint_field(&l->concurrent, 0, 1 << 20)}});
}

// quotas.classes: class name -> {principal: limits, tenant: limits}. A class in a user file
// is applied over the default's class of the same name.
Setter quota_classes(std::map<std::string, QuotaClass>* classes) {
  return [classes](const YAML::Node& n, const std::string& key) -> Status {
    if (n.IsNull()) return Status();
    if (!n.IsMap()) return Status::invalid_argument("config: {} must be a mapping", key);
    if (n.size() > 64) return Status::invalid_argument("config: {} has more than 64 classes", key);
    for (const auto& kv : n) {
      if (!kv.first.IsScalar()) return Status::invalid_argument("config: non-scalar key under {}", key);
      const std::string name = kv.first.Scalar();
      if (name.empty() || name.size() > 32 || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos) {
        return Status::invalid_argument("config: {} names must be 1..32 of [a-z0-9_-]", key);
      }
      QuotaClass& qc = (*classes)[name];
      ZTSLM_TRY(walk(kv.second, key + "." + name,
                     {{"principal", quota_limits(&qc.principal)}, {"tenant", quota_limits(&qc.tenant)}}));
    }
    return Status();
  };
}

Status apply(const YAML::Node& root, ServerConfig& c, const std::string& dir) {
  constexpr uint64_t kU32 = std::numeric_limits<uint32_t>::max();
  Limits& l = c.limits;
  std::map<std::string, Setter> top = {
      {"listen", section({{"address", string_field(&c.address)},
                          {"port", uint_field(&c.port, 0, 65535)}})},
      {"state_dir", path_field(&c.state_dir, dir)},
      {"tls", section({{"cert_file", path_field(&c.tls.cert_file, dir)},
                       {"key_file", path_field(&c.tls.key_file, dir)},
                       {"client_ca_file", path_field(&c.tls.client_ca_file, dir)},
                       {"spiffe_trust_domain", string_field(&c.tls.spiffe_trust_domain)},
                       {"min_version", string_field(&c.tls.min_version)}})},
      {"limits",
       section({{"max_header_bytes", uint_field(&l.max_header_bytes, 1024, 1 << 20)},
                {"max_body_bytes", uint_field(&l.max_body_bytes, 1024, uint64_t{1} << 30)},
                {"header_timeout_ms", uint_field(&l.header_timeout_ms, 1, kU32)},
                {"body_timeout_ms", uint_field(&l.body_timeout_ms, 1, kU32)},
                {"idle_timeout_ms", uint_field(&l.idle_timeout_ms, 1, kU32)},
                {"write_timeout_ms", uint_field(&l.write_timeout_ms, 1, kU32)},
                {"max_connections", uint_field(&l.max_connections, 1, 1 << 20)},
                {"max_concurrent_generations", uint_field(&l.max_concurrent_generations, 1, 1024)},
                {"max_json_depth", uint_field(&l.max_json_depth, 4, 1024)},
                {"max_messages", uint_field(&l.max_messages, 1, 1 << 16)},
                {"max_message_bytes", uint_field(&l.max_message_bytes, 1, uint64_t{1} << 30)},
                {"max_stop_strings", uint_field(&l.max_stop_strings, 0, 16)},
                {"max_tokens", uint_field(&l.max_tokens, 1, 1 << 20)},
                {"drain_timeout_ms", uint_field(&l.drain_timeout_ms, 0, kU32)}})},
      {"model", section({{"path", path_field(&c.model.path, dir)},
                         {"id", string_field(&c.model.id)},
                         {"chat_format", string_field(&c.model.chat_format)},
                         {"n_ctx", uint_field(&c.model.n_ctx, 16, 1 << 20)},
                         {"threads", uint_field(&c.model.threads, 0, 1024)},
                         {"signature_path", path_field(&c.model.signature_path, dir)},
                         {"publisher", string_field(&c.model.publisher)},
                         {"allow_unsigned", bool_field(&c.model.allow_unsigned)}})},
      {"trust", section({{"publishers", publishers_field(&c.trust.publishers, dir)}})},
      {"sessions", section({{"max_sessions", uint_field(&c.sessions.max_sessions, 0, 1 << 20)},
                            {"max_per_principal", uint_field(&c.sessions.max_per_principal, 0, 1 << 20)},
                            {"idle_ttl_s", uint_field(&c.sessions.idle_ttl_s, 1, kU32)},
                            {"max_age_s", uint_field(&c.sessions.max_age_s, 1, kU32)},
                            {"max_bytes", uint_field(&c.sessions.max_bytes, 4096, uint64_t{1} << 50)}})},
      {"worker", section({{"mode", string_field(&c.worker.mode)},
                          {"count", uint_field(&c.worker.count, 1, 1024)},
                          {"isolation", string_field(&c.worker.isolation)},
                          {"threads", uint_field(&c.worker.threads, 0, 1024)},
                          {"ping_interval_ms", uint_field(&c.worker.ping_interval_ms, 10, kU32)},
                          {"ping_deadline_ms", uint_field(&c.worker.ping_deadline_ms, 10, kU32)},
                          {"restart_backoff_ms", uint_field(&c.worker.restart_backoff_ms, 1, kU32)},
                          {"restart_backoff_max_ms", uint_field(&c.worker.restart_backoff_max_ms, 1, kU32)},
                          {"queue_timeout_ms", uint_field(&c.worker.queue_timeout_ms, 0, kU32)},
                          {"max_sessions", uint_field(&c.worker.max_sessions, 1, 65536)},
                          {"user", string_field(&c.worker.user)},
                          {"allow_degraded_lockdown", bool_field(&c.worker.allow_degraded_lockdown)},
                          {"binary", path_field(&c.worker.binary, dir)}})},
      {"anomaly",
       section({{"enabled", bool_field(&c.anomaly.enabled)},
                {"window_s", uint_field(&c.anomaly.window_s, 1, 86400)},
                {"alpha", double_field(&c.anomaly.alpha, 1e-6, 1.0)},
                {"warmup_windows", uint_field(&c.anomaly.warmup_windows, 0, 100000)},
                {"factor", double_field(&c.anomaly.factor, 1.0, 1e6)},
                {"min_requests", double_field(&c.anomaly.min_requests, 0, 1e12)},
                {"min_tokens", double_field(&c.anomaly.min_tokens, 0, 1e15)},
                {"min_ratio", double_field(&c.anomaly.min_ratio, 0, 1.0)},
                {"min_requests_for_ratio", uint_field(&c.anomaly.min_requests_for_ratio, 1, kU32)},
                {"max_principals", uint_field(&c.anomaly.max_principals, 1, 10000000)}})},
      {"jwt",
       section({{"jwks_file", path_field(&c.jwt.jwks_file, dir)},
                {"jwks_url", string_field(&c.jwt.jwks_url)},
                {"jwks_ca_file", path_field(&c.jwt.jwks_ca_file, dir)},
                {"jwks_allow_http", bool_field(&c.jwt.jwks_allow_http)},
                {"jwks_cache_ttl_s", uint_field(&c.jwt.jwks_cache_ttl_s, 1, kU32)},
                {"jwks_min_refresh_s", uint_field(&c.jwt.jwks_min_refresh_s, 1, kU32)},
                {"jwks_max_stale_s", uint_field(&c.jwt.jwks_max_stale_s, 0, kU32)},
                {"jwks_timeout_ms", uint_field(&c.jwt.jwks_timeout_ms, 100, 60000)},
                {"jwks_max_bytes", uint_field(&c.jwt.jwks_max_bytes, 1024, 4 << 20)},
                {"issuers", string_list_field(&c.jwt.issuers, 16)},
                {"audiences", string_list_field(&c.jwt.audiences, 16)},
                {"leeway_s", uint_field(&c.jwt.leeway_s, 0, 300)},
                {"max_lifetime_s", uint_field(&c.jwt.max_lifetime_s, 0, kU32)},
                {"algorithms", string_list_field(&c.jwt.algorithms, 3)},
                {"claims", section({{"principal", string_field(&c.jwt.principal_claim)},
                                    {"tenant", string_field(&c.jwt.tenant_claim)},
                                    {"roles", string_field(&c.jwt.roles_claim)}})},
                {"default_tenant", string_field(&c.jwt.default_tenant)},
                {"default_roles", string_list_field(&c.jwt.default_roles, 32)}})},
      {"io_threads", uint_field(&c.io_threads, 1, 64)},
      {"policy", section({{"path", path_field(&c.policy_path, dir)},
                          {"reload_interval_ms", uint_field(&c.policy_reload_interval_ms, 0, 3600000)}})},
      {"quotas", section({{"enabled", bool_field(&c.quotas.enabled)},
                          {"flush_interval_ms", uint_field(&c.quotas.flush_interval_ms, 0, 3600000)},
                          {"classes", quota_classes(&c.quotas.classes)}})},
      {"guard", section({{"injection_model", path_field(&c.guard_injection_model, dir)}})},
  };
  ZTSLM_TRY(walk(root, "", top));
  if (c.tls.min_version != "1.3" && c.tls.min_version != "1.2") {
    return Status::invalid_argument("config: tls.min_version must be \"1.2\" or \"1.3\"");
  }
  if (c.tls.cert_file.empty() != c.tls.key_file.empty()) {
    return Status::invalid_argument("config: tls.cert_file and tls.key_file go together");
  }
  if (c.worker.mode != "sandboxed" && c.worker.mode != "inprocess") {
    return Status::invalid_argument("config: worker.mode must be \"sandboxed\" or \"inprocess\"");
  }
  if (c.worker.isolation != "shared" && c.worker.isolation != "per-tenant") {
    return Status::invalid_argument("config: worker.isolation must be \"shared\" or \"per-tenant\"");
  }
  if (c.worker.restart_backoff_max_ms < c.worker.restart_backoff_ms) {
    return Status::invalid_argument("config: worker.restart_backoff_max_ms is below worker.restart_backoff_ms");
  }
  if (c.address.empty()) return Status::invalid_argument("config: listen.address is empty");
  const JwtSettings& j = c.jwt;
  if (!j.jwks_file.empty() && !j.jwks_url.empty()) {
    return Status::invalid_argument("config: jwt.jwks_file and jwt.jwks_url are exclusive");
  }
  if (j.enabled() && (j.issuers.empty() || j.audiences.empty())) {
    return Status::invalid_argument("config: jwt needs issuers and audiences");
  }
  if (j.enabled() && j.algorithms.empty()) return Status::invalid_argument("config: jwt.algorithms is empty");
  for (const auto& alg : j.algorithms) {
    if (alg != "RS256" && alg != "ES256" && alg != "EdDSA") {
      return Status::invalid_argument("config: jwt.algorithms allows RS256, ES256 and EdDSA only");
    }
  }
  if (j.principal_claim.empty() || j.tenant_claim.empty() || j.roles_claim.empty()) {
    return Status::invalid_argument("config: jwt.claims names must not be empty");
  }
  if (c.quotas.enabled && c.quotas.classes.find("default") == c.quotas.classes.end()) {
    return Status::invalid_argument("config: quotas.classes.default is required while quotas are enabled");
  }
  if (!c.model.publisher.empty()) {
    if (c.model.allow_unsigned) {
      return Status::invalid_argument("config: model.publisher and model.allow_unsigned exclude each other");
    }
    bool known = false;
    for (const PublisherConfig& p : c.trust.publishers) known = known || p.name == c.model.publisher;
    if (!known) return Status::invalid_argument("config: model.publisher names no entry of trust.publishers");
  }
  return Status();
}

}  // namespace

std::string resolve_config_path(const std::string& value, const std::string& config_dir) {
  constexpr std::string_view kDataPrefix = "${data}/";
  if (value.empty() || config_dir.empty() || value.front() == '/' ||
      std::string_view(value).substr(0, kDataPrefix.size()) == kDataPrefix) {
    return value;
  }
  return config_dir.back() == '/' ? config_dir + value : config_dir + "/" + value;
}

Result<ServerConfig> parse_config(std::string_view yaml, const ServerConfig& base) {
  return parse_config(yaml, base, std::string());
}

Result<ServerConfig> parse_config(std::string_view yaml, const ServerConfig& base, const std::string& config_dir) {
  if (yaml.size() > (1u << 20)) return Status::invalid_argument("config: larger than 1 MiB");
  ServerConfig c = base;
  try {
    const YAML::Node root = YAML::Load(std::string(yaml));
    ZTSLM_TRY(apply(root, c, config_dir));
  } catch (const YAML::Exception& e) {
    return Status::invalid_argument("config: yaml error at line {}, column {}", e.mark.line + 1,
                                    e.mark.column + 1);
  } catch (const std::exception&) {
    return Status::invalid_argument("config: yaml error");
  }
  return c;
}

Result<ServerConfig> default_config() { return parse_config(default_config_yaml(), ServerConfig()); }

Result<ServerConfig> load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found("cannot open config {}", path);
  std::stringstream ss;
  ss << in.rdbuf();
  ZTSLM_ASSIGN_OR_RETURN(ServerConfig base, default_config());
  // The file's directory as named (symlinks are not followed), made absolute against the
  // working directory once, here.
  std::error_code ec;
  const std::filesystem::path abs = std::filesystem::absolute(std::filesystem::path(path), ec);
  if (ec) return Status::invalid_argument("config: cannot make {} absolute", path);
  std::string dir = abs.parent_path().lexically_normal().string();
  if (dir.empty()) dir = "/";
  auto c = parse_config(ss.str(), base, dir);
  if (!c.has_value()) return c.error().with_context(path);
  return c;
}

Result<std::string> resolve_state_dir(const ServerConfig& cfg) {
  if (!cfg.state_dir.empty()) return cfg.state_dir;
  if (const char* e = std::getenv("ZTSLM_STATE_DIR"); e != nullptr && *e != '\0') return std::string(e);
  if (const char* x = std::getenv("XDG_STATE_HOME"); x != nullptr && *x != '\0') {
    return std::string(x) + "/ztslm";
  }
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') {
    return std::string(h) + "/.local/state/ztslm";
  }
  return Status::failed_precondition("no state directory: set state_dir, ZTSLM_STATE_DIR or HOME");
}

}  // namespace ztslm::server
