#include "server/gateway.h"

#include <chrono>

#include <openssl/evp.h>

#include "core/secure.h"
#include "core/utf8.h"
#include "guard/leak.h"
#include "server/openai/errors.h"
#include "server/openai/response.h"
#include "server/random.h"

namespace ztslm::server {
namespace {

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

constexpr std::string_view kJson = "application/json";

// Fixed route labels keep metric cardinality bounded whatever paths clients send.
std::string_view route_label(std::string_view path) {
  if (path == "/v1/chat/completions" || path == "/v1/completions" || path == "/v1/models" ||
      path == "/v1/sessions" || path == "/metrics" || path == "/healthz" || path == "/readyz") {
    return path;
  }
  if (path.starts_with("/v1/sessions/")) return "/v1/sessions/{id}";
  return "other";
}

}  // namespace

// Per-request state on the way through the pipeline.
struct Gateway::Ctx {
  http::Request req;
  std::shared_ptr<http::Responder> out;
  AuditRecord rec;
  Principal principal;
  int64_t start_ns = 0;
  Decision decision;  // the policy's decision with its obligations
  bool model_route = false;     // responses carry X-Model-Digest
  bool replied = false;
};

struct Gateway::GenJob {
  Ctx ctx;
  openai::ApiRequest api;
  SessionLease lease;
  std::unique_ptr<QuotaTicket> quota;
  std::unique_ptr<OutputFilter> filter;
  std::string audit_prompt;  // the client's text as the audit log sees it (no canary)
};

namespace {

// The policy's view of the input guard's report: counts, scores, reasons and positions, never
// the text (src/server/README.md "Policy input").
nlohmann::json guard_json(const GuardReport& g) {
  using nlohmann::json;
  json findings = json::array();
  for (const auto& [type, n] : g.findings) {
    const auto sev = g.severity.find(type);
    findings.push_back({{"type", type}, {"count", n}, {"severity", sev != g.severity.end() ? sev->second : "low"}});
  }
  json parts = json::array();
  for (size_t i = 0; i < g.parts.size(); ++i) {
    const GuardPartReport& p = g.parts[i];
    json pos = json::array();
    for (const auto& x : p.positions) pos.push_back({{"type", x.type}, {"start", x.start}, {"end", x.end}});
    parts.push_back({{"index", i},
                     {"role", p.role},
                     {"indirect", p.indirect},
                     {"bytes", p.bytes},
                     {"injection_score", p.injection_score},
                     {"reasons", p.reasons},
                     {"counts", p.counts},
                     {"positions", std::move(pos)}});
  }
  return {{"injection_score", g.injection_score},
          {"reasons", g.reasons},
          {"counts", g.findings},
          {"findings", std::move(findings)},
          {"indirect", std::any_of(g.parts.begin(), g.parts.end(), [](const GuardPartReport& p) { return p.indirect; })},
          {"parts", std::move(parts)}};
}

// A canary keyed to (tenant, principal, `label`): stable for the same label, so that a prompt
// (and the KV cache behind it) stays the same from request to request, and unguessable without
// the gateway's per-process key. Empty if the MAC fails (the caller then uses a random one).
std::string session_canary(std::string_view key, const Principal& p, std::string_view session_id) {
  const std::string data = p.tenant + '\0' + p.id + '\0' + std::string(session_id);
  unsigned char mac[32];
  size_t n = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, sizeof mac, &n) == nullptr ||
      n != sizeof mac) {
    return {};
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "zc-";
  for (size_t i = 0; i < 10; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 15];
  }
  secure_zero(mac, sizeof mac);
  return out;
}

// The reason a caller may see for a guard denial: the policy's own "input guard: ..." reasons
// (fixed texts of the policy, no request content), made printable and bounded.
std::string guard_denial_reason(const std::vector<std::string>& reasons) {
  std::string out;
  for (const auto& r : reasons) {
    if (!r.starts_with("input guard")) continue;
    if (!out.empty()) out += "; ";
    out += printable(r, 120);
  }
  return out;
}

}  // namespace

nlohmann::json build_policy_input(const PolicyInputArgs& a) {
  using nlohmann::json;
  json in;
  if (a.principal != nullptr) {
    in["principal"] = {{"id", a.principal->id}, {"tenant", a.principal->tenant}, {"roles", a.principal->roles},
                       {"method", a.principal->method}, {"attributes", a.principal->attributes}};
  }
  in["action"] = a.action;
  in["method"] = a.method;
  in["route"] = a.path;
  json req = json::object();
  if (a.request != nullptr) {
    const auto& r = *a.request;
    size_t prompt_bytes = r.prompt.size();
    for (const auto& m : r.messages) prompt_bytes += m.content.size();
    for (const auto& d : r.documents) prompt_bytes += d.size();
    req = {{"model", r.model},
           {"stream", r.stream},
           {"max_tokens", r.sampling.max_tokens},
           {"max_tokens_given", r.max_tokens_given},
           {"temperature", r.sampling.temperature},
           {"top_p", r.sampling.top_p},
           {"n_messages", r.messages.size()},
           {"n_documents", r.documents.size()},
           {"n_stop", r.sampling.stop.size()},
           {"prompt_bytes", prompt_bytes},
           {"user", r.user}};
  }
  in["request"] = std::move(req);
  // Provenance as the loader established it (cli/verified_model.h): verified only when a
  // trusted publisher's signature covered exactly the bytes the engine runs.
  in["model"] = {{"name", a.model_id}, {"digest", a.model_digest}, {"verified", a.model_verified},
                 {"signer", a.model_signer}, {"allow_unsigned", a.model_allow_unsigned}};
  if (a.session_id.empty()) {
    in["session"] = json::object();
  } else {
    // Only a session the principal owns gets this far (others are "not found" first).
    in["session"] = {{"id", a.session_id}, {"tenant", a.principal != nullptr ? a.principal->tenant : ""}};
  }
  in["client"] = {{"address", a.client_address}};
  in["time"] = a.unix_time * 1000000000;
  if (a.guard != nullptr) in["guard"] = guard_json(*a.guard);
  return in;
}

Gateway::Gateway(const ServerConfig& cfg, GatewayDeps deps)
    : cfg_(cfg),
      d_(deps),
      sessions_(cfg.sessions, *deps.clock, [b = deps.backend] { return b->create_session(); }),
      model_id_(deps.backend->model_info().id),
      model_(deps.backend->model_info()),
      request_prefix_("req_" + random_hex(6) + "_"),
      canary_key_(random_hex(32)) {
  const Limits& l = cfg.limits;
  parse_limits_.max_body_bytes = l.max_body_bytes;
  parse_limits_.max_depth = l.max_json_depth;
  parse_limits_.max_messages = l.max_messages;
  parse_limits_.max_message_bytes = l.max_message_bytes;
  parse_limits_.max_stop_strings = l.max_stop_strings;
  parse_limits_.max_tokens = l.max_tokens;
  if (cfg.anomaly.enabled) {
    const AnomalyConfig& ac = cfg.anomaly;
    audit::AnomalyOptions o;
    o.window_us = int64_t{ac.window_s} * 1000000;
    o.alpha = ac.alpha;
    o.warmup_windows = ac.warmup_windows;
    o.factor = ac.factor;
    o.min_requests = ac.min_requests;
    o.min_tokens = ac.min_tokens;
    o.min_ratio = ac.min_ratio;
    o.min_requests_for_ratio = ac.min_requests_for_ratio;
    o.max_principals = ac.max_principals;
    anomaly_ = std::make_unique<audit::AnomalyDetector>(o, &deps.metrics->anomalies);
  }
  for (uint32_t i = 0; i < l.max_concurrent_generations; ++i) workers_.emplace_back([this] { worker_loop(); });
}

Gateway::~Gateway() {
  shutdown();
  secure_zero(canary_key_.data(), canary_key_.size());
}

void Gateway::shutdown() {
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    if (stopping_.exchange(true) && workers_.empty()) return;
  }
  ready_.store(false);
  jobs_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void Gateway::worker_loop() {
  for (;;) {
    std::unique_ptr<GenJob> job;
    {
      std::unique_lock<std::mutex> lock(jobs_mu_);
      jobs_cv_.wait(lock, [this] { return stopping_.load() || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    run_generation(*job);
  }
}

void Gateway::on_rejected(int status, std::string_view reason, std::string_view client_address) {
  if (status == 0) {
    d_.metrics->tls_handshake_failures.inc();
    return;
  }
  d_.metrics->http_rejections.with({std::to_string(status)}).inc();
  AuditRecord r;
  r.time_unix = d_.clock->unix_seconds();
  r.request_id = request_prefix_ + std::to_string(request_seq_.fetch_add(1));
  r.decision = "reject";
  r.reasons.emplace_back(reason);
  r.http_status = status;
  r.client_address = std::string(client_address);
  r.model_digest = model_.digest;
  r.model_signer = model_.signer;
  count_audit(d_.audit->record(r));
}

void Gateway::count_audit(const Status& s) {
  if (s.ok()) d_.metrics->audit_records.inc();
  else d_.metrics->audit_failures.inc();
}

void Gateway::finish_record(Ctx& c, int status) {
  c.rec.http_status = status;
  c.rec.total_ms = static_cast<double>(steady_ns() - c.start_ns) / 1e6;
  if (c.rec.decision.empty()) c.rec.decision = status < 400 ? "allow" : "error";
  const std::string_view route = route_label(c.req.path);
  d_.metrics->requests.with({route, std::to_string(status)}).inc();
  d_.metrics->request_seconds.with({route}).observe(c.rec.total_ms / 1e3);
  d_.metrics->overhead.observe(std::max(0.0, c.rec.total_ms - c.rec.model_ms) / 1e3);
  d_.metrics->active_requests.add(-1);
  if (c.req.path != "/healthz" && c.req.path != "/readyz") {
    // A failed audit write cannot be reported once the response is out; it is counted.
    count_audit(d_.audit->record(c.rec));
    observe_outcome(c);
  }
}

void Gateway::observe_outcome(const Ctx& c) {
  // Only an authenticated principal has a baseline; failed authentications are counted by
  // reason in the metrics and audited per request.
  if (!anomaly_ || c.principal.id.empty()) return;
  audit::Observation o;
  o.principal = c.principal.id;
  o.tenant = c.principal.tenant;
  o.now_us = d_.clock->now_ms() * 1000;
  o.tokens = c.rec.tokens_in + c.rec.tokens_out;
  o.denied = c.rec.decision == "deny";
  o.guard_hit = !c.rec.guard_findings.empty();
  for (audit::AnomalyEvent& e : anomaly_->observe(o)) {
    // Events carry counts and rates only, never request text; the audit time is wall clock.
    e.time_us = d_.clock->unix_seconds() * 1000000;
    count_audit(d_.audit->record_anomaly(e));
  }
}

void Gateway::reply(Ctx& c, int status, std::string_view content_type, std::string body, http::Headers headers) {
  c.replied = true;
  headers.emplace_back("X-Request-Id", c.rec.request_id);
  if (c.model_route && !model_.digest.empty()) headers.emplace_back("X-Model-Digest", model_.digest);
  finish_record(c, status);
  c.out->send(status, content_type, std::move(body), std::move(headers));
}

void Gateway::reply_error(Ctx& c, const Status& s, int http_override, http::Headers headers) {
  openai::HttpError e = openai::error_response(s, http_override);
  if (e.http_status >= 500 || c.rec.reasons.empty()) c.rec.reasons.push_back(s.to_string());
  if (e.http_status == 401) headers.emplace_back("WWW-Authenticate", "Bearer");
  reply(c, e.http_status, kJson, std::move(e.body), std::move(headers));
}

void Gateway::handle(http::Request req, std::shared_ptr<http::Responder> responder) {
  Ctx c;
  c.start_ns = req.received_ns != 0 ? req.received_ns : steady_ns();
  c.req = std::move(req);
  c.out = std::move(responder);
  c.rec.time_unix = d_.clock->unix_seconds();
  c.rec.request_id = request_prefix_ + std::to_string(request_seq_.fetch_add(1));
  c.rec.route = std::string(c.req.method) + " " + std::string(route_label(c.req.path));
  c.rec.client_address = c.req.client_address;
  c.rec.model_digest = model_.digest;
  c.rec.model_signer = model_.signer;
  d_.metrics->active_requests.add(1);  // down again in finish_record, once per request
  route(c);
}

bool Gateway::authenticate(Ctx& c) {
  AuthInput in{c.req.authorization, c.req.peer_cert_der, c.req.client_address};
  AuthFailure failure;
  auto p = d_.auth->authenticate(in, failure);
  // SECURITY: the credential is wiped from the request once used; it never reaches a log.
  secure_zero(c.req.authorization.data(), c.req.authorization.size());
  c.req.authorization.clear();
  if (!p.has_value()) {
    c.rec.decision = "deny";
    c.rec.auth_failure = failure.reason.empty() ? "invalid" : failure.reason;
    // SECURITY: the failed check goes to the audit record only; every 401 body is the same.
    c.rec.reasons.push_back(failure.detail.empty() ? std::string("authentication failed")
                                                   : "authentication failed: " + failure.detail);
    d_.metrics->auth_failures.with({c.rec.auth_failure}).inc();
    if (p.error().code() == StatusCode::kUnavailable) {
      reply_error(c, Status::unavailable("authentication unavailable"));
      return false;
    }
    reply_error(c, Status::unauthenticated("invalid or missing credentials"));
    return false;
  }
  c.principal = std::move(p).value();
  c.rec.principal = c.principal.id;
  c.rec.tenant = c.principal.tenant;
  c.rec.auth_method = c.principal.method;
  return true;
}

bool Gateway::authorize(Ctx& c, std::string_view action, const openai::ApiRequest* req, const GuardReport* guard) {
  PolicyInputArgs a;
  a.principal = &c.principal;
  a.method = c.req.method;
  a.path = route_label(c.req.path);
  a.action = action;
  a.request = req;
  a.model_id = model_id_;
  a.model_digest = model_.digest;
  a.model_signer = model_.signer;
  a.model_verified = model_.verified;
  a.session_id = c.req.session_id;
  a.client_address = c.req.client_address;
  a.unix_time = c.rec.time_unix;
  a.model_allow_unsigned = cfg_.model.allow_unsigned;
  a.guard = guard;
  auto d = d_.authorizer->authorize(build_policy_input(a));
  if (!d.has_value() || !d->allow) {
    c.rec.decision = "deny";
    if (d.has_value()) c.rec.reasons = d->reasons;
    else c.rec.reasons.push_back("policy error: " + d.error().to_string());
    d_.metrics->policy_denials.with({route_label(c.req.path)}).inc();
    const std::string why = guard_denial_reason(c.rec.reasons);
    if (!why.empty()) {
      c.rec.guard_action = "deny";
      reply_error(c, Status::permission_denied("the request was refused: {}", why));
    } else {
      reply_error(c, Status::permission_denied("the caller may not {}", action));
    }
    return false;
  }
  c.rec.reasons = d->reasons;
  c.decision = std::move(d).value();
  return true;
}

bool Gateway::admit_quota(Ctx& c, const openai::ApiRequest& api, std::unique_ptr<QuotaTicket>& out) {
  if (d_.quotas == nullptr) return true;
  QuotaAsk ask;
  ask.principal = &c.principal;
  ask.quota_class = c.decision.quota_class;
  ask.max_tokens = api.sampling.max_tokens;
  ask.prompt_bytes = api.prompt.size();
  for (const auto& m : api.messages) ask.prompt_bytes += m.content.size();
  ask.n_messages = api.messages.size();
  ask.unix_time = c.rec.time_unix;
  QuotaVerdict v = d_.quotas->admit(ask);
  if (v.allow) {
    out = std::move(v.ticket);
    return true;
  }
  // A refusal consumes nothing: no request counted, no tokens, no session touched.
  c.rec.decision = "deny";
  c.rec.reasons.push_back(v.reason);
  if (!v.error.ok()) {
    c.rec.decision = "error";
    reply_error(c, Status::unavailable("quotas are unavailable; retry later"), 503, {{"Retry-After", "1"}});
    return false;
  }
  d_.metrics->quota_denials.with({std::string_view(v.reason).substr(0, 64)}).inc();
  if (v.retry_after_s <= 0) {
    reply_error(c, Status::permission_denied("no quota is configured for the caller"));
    return false;
  }
  const std::string_view what = std::string_view(v.reason).substr(std::string_view("quota:").size());
  reply_error(c, Status::resource_exhausted("quota exceeded ({}); retry after {} s", what, v.retry_after_s), 429,
              {{"Retry-After", std::to_string(v.retry_after_s)}});
  return false;
}

void Gateway::route(Ctx& c) {
  const std::string& p = c.req.path;
  const std::string& m = c.req.method;
  if (p == "/healthz" || p == "/readyz") {
    if (m != "GET") return reply_error(c, Status::invalid_argument("method not allowed"), 405);
    const bool ok = p == "/healthz" || (ready_.load() && !stopping_.load());
    return reply(c, ok ? 200 : 503, kJson, ok ? "{\"status\":\"ok\"}" : "{\"status\":\"unavailable\"}");
  }
  if (!authenticate(c)) return;
  // Model routes name the bytes behind every answer (after authentication: an anonymous
  // caller learns nothing about the deployment).
  c.model_route = p == "/v1/chat/completions" || p == "/v1/completions" || p == "/v1/models";
  if (p == "/v1/chat/completions" || p == "/v1/completions") {
    if (m != "POST") return reply_error(c, Status::invalid_argument("method not allowed"), 405);
    return handle_generate(c, p == "/v1/chat/completions");
  }
  if (p == "/v1/models") {
    if (m != "GET") return reply_error(c, Status::invalid_argument("method not allowed"), 405);
    return handle_models(c);
  }
  if (p == "/metrics") {
    if (m != "GET") return reply_error(c, Status::invalid_argument("method not allowed"), 405);
    return handle_metrics(c);
  }
  if (p == "/v1/sessions") {
    if (m != "POST") return reply_error(c, Status::invalid_argument("method not allowed"), 405);
    return handle_create_session(c);
  }
  if (p.starts_with("/v1/sessions/")) {
    if (m != "DELETE") return reply_error(c, Status::invalid_argument("method not allowed"), 405);
    return handle_delete_session(c, p.substr(std::string_view("/v1/sessions/").size()));
  }
  reply_error(c, Status::not_found("no route {}", printable(route_label(p), 32)));
}

void Gateway::handle_models(Ctx& c) {
  if (!authorize(c, "models", nullptr)) return;
  ModelInfo info = d_.backend->model_info();
  reply(c, 200, kJson, openai::models_json(info));
}

void Gateway::handle_metrics(Ctx& c) {
  if (!authorize(c, "metrics", nullptr)) return;
  d_.metrics->active_sessions.set(static_cast<int64_t>(sessions_.size()));
  reply(c, 200, audit::kPrometheusContentType, d_.registry->render());
}

void Gateway::handle_create_session(Ctx& c) {
  // The body, if any, must be an empty JSON object: nothing is silently ignored.
  std::string_view body = c.req.body;
  while (!body.empty() && (body.front() == ' ' || body.front() == '\n' || body.front() == '\r' || body.front() == '\t')) body.remove_prefix(1);
  while (!body.empty() && (body.back() == ' ' || body.back() == '\n' || body.back() == '\r' || body.back() == '\t')) body.remove_suffix(1);
  if (!body.empty() && body != "{}") {
    return reply_error(c, Status::invalid_argument("POST /v1/sessions takes no fields"));
  }
  if (!authorize(c, "sessions", nullptr)) return;
  auto s = sessions_.create({c.principal.id, c.principal.tenant});
  if (!s.has_value()) return reply_error(c, s.error());
  c.rec.session = s->id;
  d_.metrics->active_sessions.set(static_cast<int64_t>(sessions_.size()));
  nlohmann::json j = {{"id", s->id}, {"object", "session"}, {"created", s->created_unix},
                      {"expires_at", s->expires_unix}};
  reply(c, 200, kJson, j.dump());
}

void Gateway::handle_delete_session(Ctx& c, const std::string& id) {
  if (!authorize(c, "sessions", nullptr)) return;
  Status s = sessions_.remove(id, {c.principal.id, c.principal.tenant});
  if (!s.ok()) return reply_error(c, s);
  c.rec.session = id;
  d_.metrics->active_sessions.set(static_cast<int64_t>(sessions_.size()));
  nlohmann::json j = {{"id", id}, {"object", "session"}, {"deleted", true}};
  reply(c, 200, kJson, j.dump());
}

void Gateway::handle_generate(Ctx& c, bool is_chat) {
  auto parsed = is_chat ? openai::parse_chat_request(c.req.body, parse_limits_)
                        : openai::parse_completion_request(c.req.body, parse_limits_);
  if (!parsed.has_value()) {
    c.rec.decision = "reject";
    c.rec.reasons.push_back(parsed.error().to_string());
    const int code = parsed.error().code() == StatusCode::kResourceExhausted ? 413 : 400;
    return reply_error(c, parsed.error(), code);
  }
  openai::ApiRequest api = std::move(parsed).value();
  c.rec.model = api.model;
  if (!api.max_tokens_given) api.sampling.max_tokens = std::min<uint32_t>(256, cfg_.limits.max_tokens);
  // Input guard over every part the model will see, before the policy decides on its report.
  std::vector<GuardPart> parts;
  if (is_chat) {
    for (const auto& m : api.messages) parts.push_back({m.role, m.content, m.role == "tool"});
    for (const auto& d : api.documents) parts.push_back({"document", d, true});
  } else {
    parts.push_back({"prompt", api.prompt, false});
  }
  auto report = d_.input_guard->scan(parts);
  if (!report.has_value()) {
    c.rec.decision = "deny";
    c.rec.reasons.push_back("input guard error: " + report.error().to_string());
    return reply_error(c, Status::internal("input guard failed"));
  }
  c.rec.injection_score = report->injection_score;
  c.rec.guard_reasons = report->reasons;
  for (const auto& [type, n] : report->findings) {
    c.rec.guard_findings[type] += n;
    d_.metrics->guard_findings.with({"input", type}).inc(n);
  }
  if (!authorize(c, "generate", &api, &*report)) return;
  const Decision& ob = c.decision;
  if (ob.max_tokens_cap != 0 && api.sampling.max_tokens > ob.max_tokens_cap) api.sampling.max_tokens = ob.max_tokens_cap;
  if (api.model != model_id_) {
    return reply_error(c, Status::not_found("model '{}' does not exist", printable(api.model, 64)));
  }
  // Guard obligations. SECURITY: one the gateway cannot enforce refuses the request.
  auto obligation_error = [&](const std::string& why) {
    c.rec.decision = "deny";
    c.rec.reasons.push_back("policy error: " + why);
    reply_error(c, Status::permission_denied("the caller may not generate"));
  };
  if (!ob.guard_profile.empty() && ob.guard_profile != "strict" && ob.guard_profile != "standard") {
    return obligation_error("unknown guard_profile '" + printable(ob.guard_profile, 32) + "'");
  }
  if (ob.injection_threshold > 0 && report->injection_score >= ob.injection_threshold) {
    c.rec.decision = "deny";
    c.rec.guard_action = "deny";
    c.rec.reasons.push_back("input guard: injection score at or above the policy threshold");
    d_.metrics->policy_denials.with({route_label(c.req.path)}).inc();
    return reply_error(c, Status::permission_denied("the request was refused: input guard: prompt injection suspected"));
  }
  // Indirect input is spotlighted unless the policy says not to; the stripped view replaces the
  // original text only when the policy says so (profile "strict" or obligation strip).
  const bool spotlight = ob.spotlight != 0;
  const bool strip = ob.strip == 1 || (ob.strip == -1 && ob.guard_profile == "strict");

  // The audit log's view of the prompt: the client's text, before any gateway change.
  std::string audit_prompt;
  for (const auto& m : api.messages) {
    audit_prompt += m.role;
    audit_prompt += ": ";
    audit_prompt += m.content;
    audit_prompt += "\n";
  }
  for (const auto& d : api.documents) {
    audit_prompt += "document: ";
    audit_prompt += d;
    audit_prompt += "\n";
  }
  audit_prompt += api.prompt;

  OutputPolicy op;
  op.actions = ob.redact;
  std::vector<std::string> actions;
  if (strip) {
    for (auto& m : api.messages) m.content = d_.input_guard->strip(m.content);
    for (auto& d : api.documents) d = d_.input_guard->strip(d);
    api.prompt = d_.input_guard->strip(api.prompt);
    actions.push_back("strip");
  }
  if (is_chat) {
    std::string instruction;
    // Canary and spotlight marker id are keyed to the principal, the session and the system
    // prompt, so that the same conversation renders the same from request to request (seeded
    // requests stay reproducible, a session's KV cache stays valid) while the client cannot
    // know them (the key never leaves the process).
    std::string label = c.req.session_id;
    label += '\0';
    for (const auto& m : api.messages) {
      if (m.role == "system") label += m.content + '\n';
    }
    std::string mark;
    const std::string m8 = session_canary(canary_key_, c.principal, label + std::string(1, '\0') + "spotlight");
    if (m8.size() >= 11) mark = m8.substr(3, 8);
    if (mark.size() != 8) mark = random_hex(4);
    if (spotlight) {
      for (auto& m : api.messages) {
        if (m.role != "tool") continue;
        guard::Spotlight sp = guard::spotlight(m.content, mark);
        m.content = std::move(sp.text);
        instruction = std::move(sp.instruction);
      }
    }
    if (!api.documents.empty()) {
      // Documents go to the model as one user turn after the system messages.
      Message docs;
      docs.role = "user";
      for (const auto& d : api.documents) {
        if (!docs.content.empty()) docs.content += "\n";
        if (spotlight) {
          guard::Spotlight sp = guard::spotlight(d, mark);
          docs.content += sp.text;
          instruction = std::move(sp.instruction);
        } else {
          docs.content += d;
        }
      }
      size_t at = 0;
      while (at < api.messages.size() && api.messages[at].role == "system") ++at;
      api.messages.insert(api.messages.begin() + static_cast<std::ptrdiff_t>(at), std::move(docs));
      api.documents.clear();
    }
    if (!instruction.empty()) actions.push_back("spotlight");
    // The client's system prompt is what must not leak; a canary goes into it (a request
    // without a system prompt has nothing to protect and gets none).
    Message* sys = nullptr;
    for (auto& m : api.messages) {
      if (m.role != "system") continue;
      if (sys == nullptr) sys = &m;
      if (!op.system_prompt.empty()) op.system_prompt += "\n";
      op.system_prompt += m.content;
    }
    if (sys != nullptr && ob.canary != 0 && d_.output_filter->checks_leaks()) {
      op.canary = session_canary(canary_key_, c.principal, label);
      if (op.canary.empty()) {
        auto canary = guard::make_canary();
        if (!canary.has_value()) {
          c.rec.decision = "error";
          return reply_error(c, Status::internal("no entropy for the canary"));
        }
        op.canary = std::move(canary).value();
      }
      sys->content += "\n\n(Confidential marker, never to be repeated: " + op.canary + ")";
    }
    if (!instruction.empty()) {
      if (sys != nullptr) {
        sys->content += "\n\n" + instruction;
      } else {
        Message m;
        m.role = "system";
        m.content = instruction;
        api.messages.insert(api.messages.begin(), std::move(m));
      }
    }
  }
  for (const auto& a : actions) c.rec.guard_action += (c.rec.guard_action.empty() ? "" : ",") + a;
  auto filter = d_.output_filter->create(op);
  secure_zero(op.canary.data(), op.canary.size());
  if (!filter.has_value()) return obligation_error(filter.error().message());
  // Quotas: after the policy and the guard obligations, before the session and the backend.
  std::unique_ptr<QuotaTicket> quota;
  if (!admit_quota(c, api, quota)) return;
  SessionLease lease;
  if (!c.req.session_id.empty()) {
    auto l = sessions_.acquire(c.req.session_id, {c.principal.id, c.principal.tenant});
    if (!l.has_value()) {
      if (quota) quota->settle(0);
      return reply_error(c, l.error());
    }
    lease = std::move(l).value();
    c.rec.session = lease.id();
  }
  // Admission: a bounded number of generations run; past it the client is told to retry.
  uint32_t cur = active_gens_.load();
  do {
    if (cur >= cfg_.limits.max_concurrent_generations || stopping_.load()) {
      d_.metrics->generation_rejections.inc();
      if (quota) quota->refund();
      return reply_error(c, Status::unavailable("the server is at its generation limit; retry later"), 503,
                         {{"Retry-After", "1"}});
    }
  } while (!active_gens_.compare_exchange_weak(cur, cur + 1));
  auto job = std::make_unique<GenJob>();
  job->ctx = std::move(c);
  job->api = std::move(api);
  job->lease = std::move(lease);
  job->quota = std::move(quota);
  job->filter = std::move(filter).value();
  job->audit_prompt = std::move(audit_prompt);
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    jobs_.push_back(std::move(job));
  }
  jobs_cv_.notify_one();
}

void Gateway::run_generation(GenJob& job) {
  Ctx& c = job.ctx;
  openai::ApiRequest& api = job.api;
  openai::ResponseMeta meta;
  meta.is_chat = api.is_chat;
  meta.id = (api.is_chat ? "chatcmpl-" : "cmpl-") + random_hex(12);
  meta.created = d_.clock->unix_seconds();
  meta.model = model_id_;

  GenerateRequest gr;
  gr.is_chat = api.is_chat;
  gr.messages = std::move(api.messages);
  gr.prompt = std::move(api.prompt);
  gr.sampling = api.sampling;
  gr.session = job.lease.backend();
  gr.tenant = c.principal.tenant;

  OutputFilter* filter = job.filter.get();
  std::string text;            // non-streaming: the whole answer
  bool started = false;        // streaming: headers sent
  bool filter_stopped = false;
  int64_t last_piece_ns = 0;
  const int64_t gen_start_ns = steady_ns();
  auto start_stream = [&] {
    if (started) return;
    started = true;
    http::Headers h = {{"X-Request-Id", c.rec.request_id}};
    if (!model_.digest.empty()) h.emplace_back("X-Model-Digest", model_.digest);
    c.out->start_stream(200, "text/event-stream", std::move(h));
    if (api.is_chat) c.out->write(openai::chunk_sse(meta, "", true, nullptr, nullptr));
  };
  auto emit = [&](std::string_view piece) -> bool {
    if (piece.empty()) return true;
    text.append(piece);
    if (api.stream) {
      start_stream();
      return c.out->write(openai::chunk_sse(meta, piece, false, nullptr, nullptr));
    }
    return true;
  };
  auto on_text = [&](std::string_view piece) -> bool {
    const int64_t now = steady_ns();
    if (last_piece_ns == 0) d_.metrics->ttft.observe(static_cast<double>(now - gen_start_ns) / 1e9);
    else d_.metrics->inter_token.observe(static_cast<double>(now - last_piece_ns) / 1e9);
    last_piece_ns = now;
    if (stopping_.load() || c.out->client_gone()) return false;
    bool stop = false;
    const std::string out = filter->on_chunk(piece, stop);
    if (!emit(out)) return false;
    if (stop) {
      filter_stopped = true;
      return false;
    }
    return true;
  };
  auto result = d_.backend->generate(gr, on_text);
  // The session and the generation slot are free before the client sees the end of this
  // response, so its next request can use them at once.
  job.lease = SessionLease();
  active_gens_.fetch_sub(1);
  if (job.quota) {
    // Settled with the real count; a generation cut short (cancelled, disconnected, stopped by
    // the filter) is charged its whole reservation when the ticket is dropped.
    if (result.has_value()) job.quota->settle(uint64_t{result->prompt_tokens} + result->completion_tokens);
    else if (result.error().code() != StatusCode::kCancelled && !started) job.quota->settle(0);
    job.quota.reset();
  }
  // The rest the filter held back (it may still block here).
  if (result.has_value() && !filter_stopped) {
    const std::string tail = filter->finish();
    if (!filter->block_reason().empty()) filter_stopped = true;
    emit(tail);
  }
  for (const auto& [type, n] : filter->findings()) {
    c.rec.guard_findings[type] += n;
    d_.metrics->guard_findings.with({"output", type}).inc(n);
  }
  const std::string blocked = filter_stopped ? filter->block_reason() : std::string();
  GenerateResult r;
  if (result.has_value()) {
    r = *result;
  } else if (result.error().code() == StatusCode::kCancelled && filter_stopped) {
    r.finish_reason = "content_filter";
  } else {
    if (result.error().code() == StatusCode::kCancelled) c.rec.reasons.push_back("cancelled");
    if (!started) {
      c.rec.decision = "error";
      return reply_error(c, result.error());
    }
    c.rec.reasons.push_back(result.error().to_string());
    const openai::HttpError e = openai::error_response(result.error());
    c.out->write("data: " + e.body + "\n\n");
    c.out->write("data: [DONE]\n\n");
    c.out->end();
    finish_record(c, 200);
    return;
  }
  if (filter_stopped) r.finish_reason = "content_filter";
  c.rec.prompt = job.audit_prompt;
  c.rec.response = text;
  c.rec.tokens_in = r.prompt_tokens;
  c.rec.tokens_out = r.completion_tokens;
  c.rec.cached_tokens = r.cached_tokens;
  c.rec.model_ms = r.model_ms;
  d_.metrics->tokens_in.inc(r.prompt_tokens);
  d_.metrics->tokens_out.inc(r.completion_tokens);
  // A blocked output ends with an error: an SSE error event after the content_filter chunk, or
  // a 403 instead of the answer. The reason names the finding type only.
  const Status block_status =
      Status::permission_denied("the output was blocked by the output guard ({})", blocked.empty() ? "policy" : blocked);
  if (filter_stopped) {
    c.rec.decision = "deny";
    c.rec.guard_action += (c.rec.guard_action.empty() ? "block:" : ",block:") + (blocked.empty() ? "policy" : blocked);
    c.rec.reasons.push_back("output guard: " + (blocked.empty() ? std::string("policy") : blocked));
  }
  if (api.stream) {
    start_stream();
    const bool usage_inline = !api.include_usage;
    c.out->write(openai::chunk_sse(meta, "", false, r.finish_reason.c_str(), usage_inline ? &r : nullptr));
    if (api.include_usage) c.out->write(openai::usage_chunk_sse(meta, r));
    if (filter_stopped) c.out->write("data: " + openai::error_response(block_status).body + "\n\n");
    c.out->write("data: [DONE]\n\n");
    if (!filter_stopped) c.rec.decision = "allow";
    finish_record(c, 200);
    c.out->end();
    return;
  }
  if (filter_stopped) return reply_error(c, block_status);
  c.rec.decision = "allow";
  reply(c, 200, kJson, openai::completion_json(meta, text, r));
}

}  // namespace ztslm::server
