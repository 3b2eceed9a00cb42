// `ztslm serve`: the HTTPS gateway (server/) in front of the engine: sandboxed worker processes
// (worker.mode sandboxed) or, for debugging, the in-process backend. The model runs only after its
// signature verified against the configured trust store (cli/verified_model.h); the engine, in
// every mode, maps the sealed memfd that verification filled, never the path.
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/data_dir.h"
#include "cli/common.h"
#include "cli/inprocess_backend.h"
#include "cli/verified_model.h"
#include "core/utf8.h"
#include "server/config/config.h"
#include "server/scheduler/worker_backend.h"
#include "audit/audit_log.h"
#include "identity/api_key.h"
#include "identity/authenticator.h"
#include "identity/mtls.h"
#include "server/audit_sink.h"
#include "server/guard_filter.h"
#include "server/guard_input.h"
#include "server/identity_auth.h"
#include "server/policy_authz.h"
#include "server/policy_reloader.h"
#include "policy/decision.h"
#include "server/server.h"
#include "server/stages.h"

namespace ztslm::cli {
namespace {

struct ServeArgs {
  std::string config;
  std::string model;
  std::string state_dir;
  int port = -1;
  bool print_config = false;
};

// Bootstrap admin key: when the key store (state_dir/keys.db, identity's SQLite store) holds no
// key yet, one admin key is created and printed once; only its salted hash is stored.
Status ensure_admin_key(identity::ApiKeyStore& keys) {
  ZTSLM_ASSIGN_OR_RETURN(auto existing, keys.list());
  if (!existing.empty()) return Status();
  identity::NewApiKey nk;
  nk.name = "admin";
  nk.tenant = "default";
  nk.roles = {"admin", "user"};
  ZTSLM_ASSIGN_OR_RETURN(identity::CreatedApiKey created, keys.create(nk));
  std::printf("admin API key (shown once, store it now): %s\n", created.token.c_str());
  std::fflush(stdout);
  return Status();
}

Result<std::shared_ptr<const identity::MtlsVerifier>> make_mtls(const server::ServerConfig& cfg) {
  if (cfg.tls.client_ca_file.empty()) return std::shared_ptr<const identity::MtlsVerifier>();
  std::ifstream in(cfg.tls.client_ca_file, std::ios::binary);
  if (!in) return Status::not_found("cannot open tls.client_ca_file {}", cfg.tls.client_ca_file);
  std::stringstream ss;
  ss << in.rdbuf();
  identity::MtlsConfig mc;
  mc.ca_pem = ss.str();
  mc.trust_domain = cfg.tls.spiffe_trust_domain;
  return identity::MtlsVerifier::create(std::move(mc), identity::system_unix_now);
}

// The engine behind the gateway: sandboxed workers (worker.mode sandboxed, the default) or the
// engine in this process (inprocess: debugging and tests only).
// Both map `model.fd` (borrowed: it must outlive the backend) and report its provenance.
Result<std::unique_ptr<server::Backend>> make_backend(const server::ServerConfig& cfg, server::AuditSink& audit,
                                                      const VerifiedModel& model) {
  const std::string model_id =
      cfg.model.id.empty() ? std::filesystem::path(cfg.model.path).stem().string() : cfg.model.id;
  if (cfg.worker.mode == "inprocess") {
    std::fprintf(stderr,
                 "ztslm serve: WARNING: worker.mode is inprocess: the model runs inside the gateway, next to its "
                 "keys, without a sandbox. Use it for debugging and tests only.\n");
    InProcessBackendOptions bo;
    bo.model_fd = model.fd.get();
    model.fill(bo.provenance);
    bo.model_path = cfg.model.path;
    bo.model_id = model_id;
    bo.chat_format = cfg.model.chat_format;
    bo.n_ctx = cfg.model.n_ctx;
    bo.threads = static_cast<int>(cfg.model.threads);
    ZTSLM_ASSIGN_OR_RETURN(auto b, InProcessBackend::create(bo));
    return std::unique_ptr<server::Backend>(std::move(b));
  }
  server::scheduler::WorkerBackendOptions wo;
  wo.binary = cfg.worker.binary;
  wo.model_fd = model.fd.get();
  model.fill(wo.provenance);
  wo.model_id = model_id;
  wo.chat_format = cfg.model.chat_format;
  wo.n_ctx = cfg.model.n_ctx;
  wo.count = cfg.worker.count;
  wo.per_tenant = cfg.worker.isolation == "per-tenant";
  wo.threads = static_cast<int>(cfg.worker.threads);
  if (wo.threads == 0) {
    const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
    wo.threads = static_cast<int>(std::max(1u, cpus / cfg.worker.count));
  }
  wo.max_sessions = cfg.worker.max_sessions;
  wo.ping_interval_ms = cfg.worker.ping_interval_ms;
  wo.ping_deadline_ms = cfg.worker.ping_deadline_ms;
  wo.restart_backoff_ms = cfg.worker.restart_backoff_ms;
  wo.restart_backoff_max_ms = cfg.worker.restart_backoff_max_ms;
  wo.queue_timeout_ms = cfg.worker.queue_timeout_ms;
  wo.allow_degraded_lockdown = cfg.worker.allow_degraded_lockdown;
  wo.drop_user = ::geteuid() == 0;
  if (wo.drop_user) {
    const passwd* pw = ::getpwnam(cfg.worker.user.c_str());
    if (pw == nullptr) return Status::invalid_argument("worker.user {} is not a known user", printable(cfg.worker.user, 64));
    if (pw->pw_uid == 0) return Status::invalid_argument("worker.user must not be root");
    wo.run_as_uid = pw->pw_uid;
    wo.run_as_gid = pw->pw_gid;
  }
  wo.audit = &audit;
  ZTSLM_ASSIGN_OR_RETURN(auto b, server::scheduler::WorkerBackend::create(wo));
  return std::unique_ptr<server::Backend>(std::move(b));
}

// Paths in the config may start with "${data}/": the data directory (core/data_dir.h), where the
// bundled demo model and its publisher key live in a checkout and in an install alike.
void expand_data_dir(std::string& path) {
  constexpr std::string_view kPrefix = "${data}/";
  if (std::string_view(path).substr(0, kPrefix.size()) == kPrefix) {
    path = data_path(std::string_view(path).substr(kPrefix.size()));
  }
}

int run_serve(const ServeArgs& a) {
  auto cfg = a.config.empty() ? server::default_config() : server::load_config_file(a.config);
  if (!cfg.has_value()) return fail(cfg.error());
  if (!a.model.empty()) cfg->model.path = a.model;
  if (!a.state_dir.empty()) cfg->state_dir = a.state_dir;
  if (a.port >= 0) {
    if (a.port > 65535) return fail(Status::invalid_argument("--port {} outside [0, 65535]", a.port));
    cfg->port = static_cast<uint16_t>(a.port);
  }
  if (a.print_config) {
    std::fwrite(server::default_config_yaml().data(), 1, server::default_config_yaml().size(), stdout);
    return 0;
  }
  if (cfg->model.path.empty()) {
    return fail(Status::invalid_argument("no model configured: give --model PATH or set model.path"));
  }
  expand_data_dir(cfg->model.path);
  expand_data_dir(cfg->model.signature_path);
  expand_data_dir(cfg->policy_path);
  for (auto& p : cfg->trust.publishers) expand_data_dir(p.public_key_file);
  auto state = server::resolve_state_dir(*cfg);
  if (!state.has_value()) return fail(state.error());
  cfg->state_dir = *state;

  // Provenance first: nothing below (key store, audit log, TLS, socket, workers) exists for a
  // model that is refused. `model` holds the sealed memfd every engine maps; it outlives them.
  auto trust = build_trust_store(*cfg);
  if (!trust.has_value()) return fail(trust.error());
  auto model = load_verified_model(*cfg, *trust);
  if (!model.has_value()) return fail(model.error());
  if (!model->verified) {
    std::fprintf(stderr,
                 "ztslm serve: WARNING: model.allow_unsigned is set: model %s runs UNVERIFIED (sha256 %s); "
                 "its provenance is not checked, and /v1/models and the audit log say so\n",
                 cfg->model.path.c_str(), model->info.sha256.c_str());
  }

  // Signals are taken synchronously by this thread; every server thread inherits the mask.
  // SIGHUP reloads the policy files.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  if (Status s = server::make_state_dir(cfg->state_dir); !s.ok()) return fail(s);
  auto keys = identity::ApiKeyStore::open(cfg->state_dir + "/keys.db", identity::system_unix_now);
  if (!keys.has_value()) return fail(keys.error());
  std::shared_ptr<identity::ApiKeyStore> key_store(std::move(keys).value());
  if (Status s = ensure_admin_key(*key_store); !s.ok()) return fail(s);
  auto mtls = make_mtls(*cfg);
  if (!mtls.has_value()) return fail(mtls.error());
  auto jwt = server::make_jwt_verifier(cfg->jwt, identity::system_unix_now);  // null unless jwt: is set
  if (!jwt.has_value()) return fail(jwt.error());
  server::IdentityAuthStage auth(std::make_shared<const identity::Authenticator>(key_store, *jwt, *mtls));

  audit::AuditLogOptions ao;
  ao.path = cfg->state_dir + "/audit.log";
  ao.state_dir = cfg->state_dir;
  auto audit_log = audit::AuditLog::open(ao);
  if (!audit_log.has_value()) return fail(audit_log.error());
  server::AuditLogSink audit_sink(**audit_log);
  {
    // Which bytes this gateway serves, and whether anyone vouched for them.
    audit::SystemEvent ev;
    ev.event = model->verified ? "model.verified" : "model.unverified";
    ev.details = {{"path", cfg->model.path}, {"digest", model->digest()}, {"signer", model->info.signer},
                  {"verified", model->verified ? "true" : "false"}, {"bytes", std::to_string(model->info.n_bytes)}};
    if (auto r = (*audit_log)->append(ev); !r.has_value()) return fail(r.error());
  }

  auto backend = make_backend(*cfg, audit_sink, *model);
  if (!backend.has_value()) return fail(backend.error());

  // The policy in force: policy.path, or the embedded policy/default.rego when it is "".
  policy::DecisionPoint pdp{policy::DecisionPoint::Options()};
  if (Status s = server::load_policy(pdp, cfg->policy_path); !s.ok()) return fail(s);
  server::PolicyAuthorizer authorizer(pdp);
  server::SystemClock clock;
  std::unique_ptr<server::PolicyReloader> reloader;
  if (!cfg->policy_path.empty()) {
    reloader = std::make_unique<server::PolicyReloader>(pdp, cfg->policy_path, audit_sink, clock,
                                                        cfg->policy_reload_interval_ms);
  }

  // Input guard: Unicode smuggling, decoded payloads and the injection detector.
  std::string model_file = cfg->guard_injection_model;
  const bool default_model_file = model_file == server::kDefaultInjectionModel;
  expand_data_dir(model_file);
  if (default_model_file && !std::filesystem::exists(model_file)) {
    std::fprintf(stderr, "ztslm serve: %s not found; the input guard uses the curated rules only\n", model_file.c_str());
    model_file.clear();
  }
  auto detector = server::load_injection_detector(model_file);
  if (!detector.has_value()) return fail(detector.error().with_context("guard.injection_model"));
  server::GuardInputStage input_guard(std::shared_ptr<const guard::InjectionDetector>(std::move(detector).value()));
  // Output guard: DLP redaction and system-prompt leak checks on every response stream, per
  // the request's policy obligations.
  server::RedactingFilterFactory redactor;

  server::ServerParts parts;
  parts.backend = backend->get();
  parts.output_filter = &redactor;
  parts.input_guard = &input_guard;
  parts.auth = &auth;
  parts.authorizer = &authorizer;
  parts.audit = &audit_sink;
  auto srv = server::Server::start(*cfg, parts);
  if (!srv.has_value()) return fail(srv.error());
  auto* workers = dynamic_cast<server::scheduler::WorkerBackend*>(backend->get());
  if (workers != nullptr) {
    audit::Counter* restarts = &(*srv)->metrics().worker_restarts;
    workers->set_restart_hook([restarts] { restarts->inc(); });
  }
  std::printf("ztslm serve: https://%s:%u/ model %s, state %s%s%s\n", cfg->address.c_str(),
              static_cast<unsigned>((*srv)->port()), (*backend)->model_info().id.c_str(), cfg->state_dir.c_str(),
              (*srv)->ca_file().empty() ? "" : ", CA ", (*srv)->ca_file().c_str());
  std::fflush(stdout);
  int sig = 0;
  for (;;) {
    sigwait(&sigs, &sig);
    if (sig != SIGHUP) break;
    if (!reloader) {
      std::fprintf(stderr, "ztslm serve: SIGHUP: the embedded policy has no file to reload\n");
      continue;
    }
    const Status s = reloader->reload("sighup");
    std::fprintf(stderr, "ztslm serve: SIGHUP: policy %s\n",
                 s.ok() ? "reloaded" : ("kept (" + s.to_string() + ")").c_str());
  }
  std::fprintf(stderr, "ztslm serve: signal %d, draining\n", sig);
  reloader.reset();
  (*srv)->stop();
  if (workers != nullptr) workers->set_restart_hook({});  // the metrics go with the server
  if (Status s = (*audit_log)->close(); !s.ok()) return fail(s);
  return 0;
}

}  // namespace

void register_serve_commands(CLI::App& app) {
  static ServeArgs a;
  CLI::App* cmd = app.add_subcommand("serve", "serve the OpenAI-compatible HTTPS API (TLS, authenticated)");
  cmd->add_option("-c,--config", a.config, "YAML config file applied over the embedded default");
  cmd->add_option("-m,--model", a.model, "GGUF model file (overrides model.path)");
  cmd->add_option("--state-dir", a.state_dir, "state directory (TLS files, admin key, audit log)");
  cmd->add_option("-p,--port", a.port, "listen port (overrides listen.port; 0 = any free port)");
  cmd->add_flag("--print-default-config", a.print_config, "print the embedded default config and exit");
  cmd->callback([] { set_exit_code(run_serve(a)); });
}

}  // namespace ztslm::cli
