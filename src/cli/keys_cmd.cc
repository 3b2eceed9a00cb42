// `ztslm keys create|list|revoke`: API keys in the SQLite key store. A new key is printed once
// on stdout; the store keeps only a salted hash, so `list` can never show a secret.
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/secure.h"
#include "identity/api_key.h"

namespace ztslm::cli {
namespace {

using nlohmann::json;

struct KeysArgs {
  std::string db;
  std::string tenant;
  std::vector<std::string> roles;
  std::string expires = "never";
  std::string name;
  std::string key_id;
  bool json_out = false;
};

// "never" -> 0; "<n>s|m|h|d" -> now + n; "YYYY-MM-DD" -> that day 00:00 UTC; "@<unix>" -> unix.
Result<int64_t> parse_expiry(const std::string& s, int64_t now) {
  if (s == "never") return int64_t{0};
  if (s.size() >= 2 && s[0] == '@') {
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str() + 1, &end, 10);
    if (*end != '\0' || v <= 0) return Status::invalid_argument("--expires @<unix seconds> is not a number");
    return static_cast<int64_t>(v);
  }
  int y = 0, mo = 0, d = 0;
  char tail = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%c", &y, &mo, &d, &tail) == 3) {
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    if (mo < 1 || mo > 12 || d < 1 || d > 31) return Status::invalid_argument("--expires date {} is invalid", s);
    return static_cast<int64_t>(timegm(&tm));
  }
  char* end = nullptr;
  const long long n = std::strtoll(s.c_str(), &end, 10);
  int64_t unit = 0;
  if (end != s.c_str() && end[0] != '\0' && end[1] == '\0') {
    switch (end[0]) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      default: break;
    }
  }
  if (unit == 0 || n <= 0 || n > 100LL * 365 * 86400 / unit) {
    return Status::invalid_argument("--expires wants never, <n>s|m|h|d, YYYY-MM-DD or @<unix seconds>");
  }
  return now + static_cast<int64_t>(n) * unit;
}

std::string format_time(int64_t t) {
  if (t == 0) return "-";
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<std::unique_ptr<identity::ApiKeyStore>> open_store(const KeysArgs& a) {
  if (a.db.empty()) return Status::invalid_argument("--db PATH is required");
  return identity::ApiKeyStore::open(a.db, identity::system_unix_now);
}

int run_create(const KeysArgs& a) {
  auto store = open_store(a);
  if (!store.has_value()) return fail(store.error());
  auto expires = parse_expiry(a.expires, identity::system_unix_now());
  if (!expires.has_value()) return fail(expires.error());
  auto key = (*store)->create({.name = a.name, .tenant = a.tenant, .roles = a.roles, .expires_at = *expires});
  if (!key.has_value()) return fail(key.error());
  const identity::ApiKeyRecord& r = key->record;
  if (a.json_out) {
    std::string out = json{{"key", key->token},           {"key_id", r.key_id},      {"principal", r.principal_id},
                           {"tenant", r.tenant},          {"roles", r.roles},        {"created_at", r.created_at},
                           {"expires_at", r.expires_at}}
                          .dump();
    std::printf("%s\n", out.c_str());
    secure_zero(out.data(), out.size());
  } else {
    std::printf("%s\n", key->token.c_str());
    std::fprintf(stderr, "key id %s, principal %s, tenant %s, expires %s\n", r.key_id.c_str(), r.principal_id.c_str(),
                 r.tenant.c_str(), format_time(r.expires_at).c_str());
    std::fprintf(stderr, "store this key now: it is shown only once\n");
  }
  std::fflush(stdout);
  return 0;
}

int run_list(const KeysArgs& a) {
  auto store = open_store(a);
  if (!store.has_value()) return fail(store.error());
  auto list = (*store)->list();
  if (!list.has_value()) return fail(list.error());
  if (a.json_out) {
    json arr = json::array();
    for (const auto& r : *list) {
      arr.push_back({{"key_id", r.key_id},         {"principal", r.principal_id}, {"tenant", r.tenant},
                     {"roles", r.roles},           {"created_at", r.created_at},  {"expires_at", r.expires_at},
                     {"revoked_at", r.revoked_at}});
    }
    std::printf("%s\n", arr.dump(2).c_str());
    return 0;
  }
  std::printf("%-8s  %-24s  %-16s  %-20s  %-20s  %-20s  %s\n", "KEY ID", "PRINCIPAL", "TENANT", "ROLES", "CREATED",
              "EXPIRES", "STATUS");
  const int64_t now = identity::system_unix_now();
  for (const auto& r : *list) {
    std::string roles;
    for (const auto& role : r.roles) roles += (roles.empty() ? "" : ",") + role;
    const char* state = r.revoked_at != 0 ? "revoked" : (r.expires_at != 0 && now >= r.expires_at ? "expired" : "active");
    std::printf("%-8s  %-24s  %-16s  %-20s  %-20s  %-20s  %s\n", r.key_id.c_str(), r.principal_id.c_str(),
                r.tenant.c_str(), roles.c_str(), format_time(r.created_at).c_str(), format_time(r.expires_at).c_str(),
                state);
  }
  return 0;
}

int run_revoke(KeysArgs& a) {
  auto store = open_store(a);
  if (!store.has_value()) return fail(store.error());
  // Accept a whole key too (someone pasting a leaked key): only its id is used.
  std::string id = a.key_id;
  if (identity::has_api_key_prefix(id)) {
    auto parsed = identity::parse_api_key(id);
    if (!parsed.has_value()) return fail(Status::invalid_argument("not a key id or api key"));
    id = std::string(parsed->key_id);
  }
  Status s = (*store)->revoke(id);
  secure_zero(a.key_id.data(), a.key_id.size());
  if (!s.ok()) return fail(s);
  std::fprintf(stderr, "revoked %s\n", id.c_str());
  return 0;
}

}  // namespace

void register_keys_commands(CLI::App& app) {
  static KeysArgs ka;
  CLI::App* keys = app.add_subcommand("keys", "create, list and revoke API keys");
  keys->require_subcommand(1);

  auto* create = keys->add_subcommand("create", "create a key and print it once");
  create->add_option("--db", ka.db, "key store (SQLite) path")->required();
  create->add_option("--tenant", ka.tenant, "tenant of the key's principal")->required();
  create->add_option("--role", ka.roles, "role (repeatable)");
  create->add_option("--expires", ka.expires, "never, <n>s|m|h|d, YYYY-MM-DD (UTC) or @<unix seconds>")
      ->capture_default_str();
  create->add_option("--name", ka.name, "principal id (default apikey:<key id>); keys may share one");
  create->add_flag("--json", ka.json_out, "machine-readable output (contains the key)");
  create->callback([] { set_exit_code(run_create(ka)); });

  auto* list = keys->add_subcommand("list", "list keys (never secrets)");
  list->add_option("--db", ka.db, "key store (SQLite) path")->required();
  list->add_flag("--json", ka.json_out, "machine-readable output");
  list->callback([] { set_exit_code(run_list(ka)); });

  auto* revoke = keys->add_subcommand("revoke", "revoke a key at once");
  revoke->add_option("--db", ka.db, "key store (SQLite) path")->required();
  revoke->add_option("key_id", ka.key_id, "key id (8 characters) or the whole key")->required();
  revoke->callback([] { set_exit_code(run_revoke(ka)); });
}

}  // namespace ztslm::cli
