// The worker supervisor: server::Backend served by sandboxed `ztslm worker` processes
// (DESIGN.md "Processes", worker/protocol/README.md "Driving a worker").
//
// Each worker is started with fork + exec of the ztslm binary, one end of a
// socketpair(AF_UNIX, SOCK_SEQPACKET) and the sealed model memfd; it locks itself down and
// answers Hello with Ready, whose lock-down report is audited ("degraded" as such). Every frame a
// worker sends is untrusted and checked by protocol::GatewayEndpoint.
//
// Scheduling: one generation per worker at a time. A request goes to an idle worker (its
// session's worker when it has one); when none is free it waits up to `queue_timeout_ms`, then
// gets kUnavailable. A BackendSession is a session id on one worker; destroying it sends
// CloseSession, so the worker wipes that KV cache. Its memory_bytes() is the KV size of one
// session as the workers' Ready reported it (bounded by the protocol's limit; a worker whose
// report differs from the first one's is failed), so sessions.max_bytes bounds worker sessions. A request without a session runs under a
// fresh id that is closed when it ends.
//
// Failure: a worker that exits, crashes, sends a frame the protocol does not allow, or does not
// answer a Ping within `ping_deadline_ms` is killed (SIGKILL) and reaped; the request in flight on
// it fails with kUnavailable (503 at the gateway), the event is audited, and a new worker is
// started after an exponential backoff. Other workers carry on.
//
// Isolation: `shared` workers serve every tenant (separate sessions); `per_tenant` binds each
// worker to one tenant, started on demand, at most `count` at once, the least recently used idle
// one replaced when a new tenant needs a worker. All workers map the same sealed memfd
// read-only, so an extra worker costs its KV caches and scratch, not the weights.
//
// Thread-safe: generate() may be called from several threads at once.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "server/backend.h"
#include "server/stages.h"

namespace ztslm::server::scheduler {

struct WorkerBackendOptions {
  std::string binary;         // the ztslm executable; "" = /proc/self/exe
  int model_fd = -1;          // sealed model memfd; borrowed: must stay open while the backend lives
  std::string model_id;       // name in /v1/models
  ModelInfo provenance;       // digest, signer, verified: reported by model_info(); the rest is ignored
  std::string chat_format;    // passed to the worker; "" = the model's template, else chatml
  uint32_t n_ctx = 2048;      // asked for in Hello (the worker clamps it to the model's)
  uint32_t count = 2;         // shared: workers; per_tenant: workers at most
  bool per_tenant = false;
  int threads = 1;            // engine threads per worker
  uint32_t max_sessions = 256;  // sessions per worker (Hello)
  uint32_t ping_interval_ms = 1000;
  uint32_t ping_deadline_ms = 10000;
  uint32_t restart_backoff_ms = 100;
  uint32_t restart_backoff_max_ms = 10000;
  uint32_t queue_timeout_ms = 10000;
  uint32_t start_timeout_ms = 60000;  // fork to Ready (model load + lock-down)
  bool allow_degraded_lockdown = false;
  bool drop_user = true;      // when root: workers run as run_as_uid/gid
  uint32_t run_as_uid = 65534;
  uint32_t run_as_gid = 65534;
  AuditSink* audit = nullptr;  // worker start/failure records; null = none
};

// One worker as seen from outside (tests, diagnostics).
struct WorkerStatus {
  pid_t pid = -1;         // -1 while it is down or starting
  bool busy = false;      // running a generation (or a ping)
  std::string tenant;     // per-tenant mode: the tenant it serves ("" = none yet)
  std::string lockdown;   // Ready's lock-down report
};

class WorkerBackend final : public Backend {
 public:
  // Starts the workers (per-tenant mode: one, to check the model) and waits for their Ready.
  // Fails when the first worker cannot start (bad model, lock-down refused): the error names
  // the cause the worker reported.
  static Result<std::unique_ptr<WorkerBackend>> create(const WorkerBackendOptions& opt);
  ~WorkerBackend() override;  // kills every worker

  ModelInfo model_info() const override;
  Result<GenerateResult> generate(const GenerateRequest& req, const TokenCallback& on_text) override;
  Result<std::unique_ptr<BackendSession>> create_session() override;

  // Workers restarted after a failure so far (ztslm_worker_restarts_total).
  uint64_t restarts() const;
  // `hook` is called once per restart, from the supervisor's thread, under its lock (keep it
  // short; it must not call back into the backend). After set_restart_hook({}) returns, the
  // previous hook is never called again.
  void set_restart_hook(std::function<void()> hook);
  std::vector<WorkerStatus> workers() const;
  // Blocks until at least `min_restarts` restarts happened and every wanted worker is up, or
  // `timeout_ms` passed; returns whether the condition holds.
  bool wait_until_up_for_test(uint64_t min_restarts, uint32_t timeout_ms) const;

  struct Core;  // shared with the sessions (they outlive nothing, but may race shutdown)

 private:
  explicit WorkerBackend(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  // One try on one worker; `retriable` is set when the worker failed before any text was
  // delivered, so another worker may take the request.
  Result<GenerateResult> generate_once(const GenerateRequest& req, const TokenCallback& on_text,
                                       std::chrono::steady_clock::time_point t_call, bool& retriable);
  std::shared_ptr<Core> core_;
};

}  // namespace ztslm::server::scheduler
