#include "server/scheduler/worker_backend.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>

#include "core/format.h"
#include "core/utf8.h"
#include "worker/protocol/endpoint.h"
#include "worker/protocol/transport.h"

namespace ztslm::server::scheduler {
namespace {

namespace proto = worker::protocol;
using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;
using Ms = std::chrono::milliseconds;

enum class SlotState : uint8_t {
  kDown,      // no process; the monitor starts it when wanted and its backoff has passed
  kStarting,  // the monitor is starting it
  kIdle,      // Ready, no generation
  kBusy,      // owned by one thread (a generation, a ping, an eviction)
};

// One worker process and the state the supervisor keeps for it. Fields marked (owner) are used
// only by the thread that moved the slot to kBusy/kStarting, without the lock; the rest under
// Core::mu.
struct Slot {
  size_t index = 0;
  SlotState state = SlotState::kDown;
  bool wanted = false;    // shared: always; per-tenant: assigned to a tenant (or the first probe)
  bool assigned = false;  // per-tenant: `tenant` is meaningful
  std::string tenant;
  uint64_t incarnation = 0;  // changes whenever the process is replaced
  uint32_t failures = 0;     // consecutive failures (backoff exponent)
  bool ever_started = false;
  TimePoint next_start{};
  TimePoint last_alive{};    // last Pong or frame seen
  uint64_t last_used = 0;    // LRU tick
  std::vector<uint64_t> pending_close;  // sessions to close at the next chance
  std::string lockdown;
  std::string last_error;  // why it last failed
  pid_t pid = -1;
  // (owner)
  int fd = -1;
  std::unique_ptr<proto::GatewayEndpoint> ep;
  std::vector<std::byte> buf;
  uint64_t ping_nonce = 0;
  TimePoint ping_sent{};
};

// A failure of the worker itself (as opposed to an error the worker reported for a request).
struct Fault {
  std::string reason;
};

std::string describe_wait_status(int st) {
  if (WIFEXITED(st)) return str_format("exit code {}", WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return str_format("signal {}", WTERMSIG(st));
  return "unknown status";
}

int ms_until(TimePoint deadline) {
  const auto d = std::chrono::ceil<Ms>(deadline - SteadyClock::now()).count();
  if (d <= 0) return 0;
  return d > INT_MAX ? INT_MAX : static_cast<int>(d);
}

// Status codes a worker may report for one request; anything else becomes kInternal (a
// compromised worker must not be able to claim, say, kUnauthenticated).
Status worker_request_error(const proto::Error& e) {
  const auto code = static_cast<StatusCode>(e.code);
  switch (code) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kResourceExhausted:
    case StatusCode::kFailedPrecondition:
      return Status(code, "worker: " + printable(e.message, 200));
    default:
      return Status::internal("worker: {}", printable(e.message, 200));
  }
}

proto::Generate to_frame(const GenerateRequest& req) {
  proto::Generate g;
  if (req.is_chat) {
    g.kind = proto::PromptKind::kChat;
    g.messages.reserve(req.messages.size());
    for (const auto& m : req.messages) g.messages.push_back({m.role, m.content});
  } else {
    g.kind = proto::PromptKind::kText;
    g.text = req.prompt;
  }
  // OpenAI semantics, as the in-process backend: no top-k, no min-p, no repeat penalty.
  proto::Sampling& s = g.sampling;
  s.temperature = req.sampling.temperature;
  s.top_k = 0;
  s.top_p = req.sampling.top_p;
  s.min_p = 0.0f;
  s.repeat_penalty = 1.0f;
  s.frequency_penalty = req.sampling.frequency_penalty;
  s.presence_penalty = req.sampling.presence_penalty;
  s.seed = req.sampling.has_seed ? req.sampling.seed : 0xFFFFFFFFu;
  s.max_tokens = req.sampling.max_tokens;
  s.stop = req.sampling.stop;
  return g;
}

}  // namespace

struct WorkerBackend::Core {
  WorkerBackendOptions opt;
  std::string binary;
  mutable std::mutex mu;
  std::condition_variable cv;          // a slot changed state
  std::condition_variable monitor_cv;  // work for the monitor
  std::vector<std::unique_ptr<Slot>> slots;
  bool stopping = false;
  bool have_info = false;
  ModelInfo info;
  // KV bytes of one session as the first worker's Ready reported them (every later Ready must
  // agree: same model, same n_ctx); what each BackendSession counts against sessions.max_bytes.
  uint64_t session_kv_bytes = 0;
  uint64_t tick = 0;
  std::atomic<uint64_t> restarts{0};
  std::atomic<uint64_t> next_session{1};
  std::function<void()> restart_hook;
  std::thread monitor;

  // ---- I/O on an owned slot (no lock held) ----

  Status send(Slot& s, const proto::Frame& f) {
    auto bytes = s.ep->on_send(f);
    if (!bytes.has_value()) return bytes.error();
    return proto::send_datagram(s.fd, *bytes);
  }

  // The next frame, or nullopt when `deadline` passes first. Errors: the peer is gone, sent
  // bytes that do not decode, or a frame the protocol does not allow now.
  Result<std::optional<proto::Frame>> recv_until(Slot& s, TimePoint deadline) {
    for (;;) {
      auto got = proto::recv_datagram(s.fd, s.buf, s.ep->limits().max_frame_bytes, /*wait=*/false);
      if (!got.has_value()) return got.error();
      if (got->has_value()) {
        auto f = s.ep->on_receive(**got);
        if (!f.has_value()) return f.error();
        s.last_alive = SteadyClock::now();
        return std::optional<proto::Frame>(std::move(f).value());
      }
      const int wait_ms = ms_until(deadline);
      if (wait_ms == 0) return std::optional<proto::Frame>();
      pollfd p{s.fd, POLLIN, 0};
      if (::poll(&p, 1, wait_ms) < 0 && errno != EINTR) return Status::internal("poll on a worker socket failed");
    }
  }

  // Sends a Ping when none is outstanding and the slot has been quiet for an interval; returns a
  // fault when an outstanding one is past its deadline.
  std::optional<Fault> ping_due(Slot& s) {
    const TimePoint now = SteadyClock::now();
    if (s.ep->ping_outstanding()) {
      if (now - s.ping_sent >= Ms(opt.ping_deadline_ms)) {
        return Fault{str_format("no pong within {} ms (hung)", opt.ping_deadline_ms)};
      }
      return std::nullopt;
    }
    if (now - s.last_alive < Ms(opt.ping_interval_ms)) return std::nullopt;
    s.ping_sent = now;
    if (Status st = send(s, proto::Ping{++s.ping_nonce}); !st.ok()) return Fault{"ping: " + st.to_string()};
    return std::nullopt;
  }

  TimePoint next_ping_event(const Slot& s) const {
    if (s.ep->ping_outstanding()) return s.ping_sent + Ms(opt.ping_deadline_ms);
    return s.last_alive + Ms(opt.ping_interval_ms);
  }

  std::optional<Fault> flush_closes(Slot& s, const std::vector<uint64_t>& ids) {
    for (uint64_t id : ids) {
      if (Status st = send(s, proto::CloseSession{id}); !st.ok()) return Fault{"close session: " + st.to_string()};
    }
    return std::nullopt;
  }

  // Waits (up to the ping deadline) until no Ping and no CloseSession is outstanding.
  std::optional<Fault> settle(Slot& s, const std::vector<uint64_t>& closing) {
    size_t n_closed = 0;
    const TimePoint deadline = SteadyClock::now() + Ms(opt.ping_deadline_ms);
    while (s.ep->ping_outstanding() || n_closed < closing.size()) {
      auto f = recv_until(s, deadline);
      if (!f.has_value()) return Fault{f.error().to_string()};
      if (!f->has_value()) return Fault{str_format("no answer within {} ms (hung)", opt.ping_deadline_ms)};
      if (std::holds_alternative<proto::SessionClosed>(**f)) ++n_closed;
      if (auto* e = std::get_if<proto::Error>(&**f)) return Fault{"worker error: " + printable(e->message, 200)};
    }
    return std::nullopt;
  }

  // ---- process lifetime ----

  // fork + exec of `ztslm worker`, Hello, Ready. On success the slot holds the process.
  Status spawn(Slot& s) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
      return Status::internal("socketpair for a worker failed");
    }
    std::vector<std::string> args = {binary, "worker", "--fd", std::to_string(sv[1]), "--model-fd",
                                     std::to_string(opt.model_fd), "--threads", std::to_string(opt.threads)};
    if (!opt.chat_format.empty()) {
      args.push_back("--chat-format");
      args.push_back(opt.chat_format);
    }
    if (opt.allow_degraded_lockdown) args.push_back("--allow-degraded");
    if (opt.drop_user) {
      args.insert(args.end(), {"--uid", std::to_string(opt.run_as_uid), "--gid", std::to_string(opt.run_as_gid)});
    } else {
      args.push_back("--keep-user");
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
      ::close(sv[0]);
      ::close(sv[1]);
      return Status::internal("fork of a worker failed");
    }
    if (pid == 0) {
      // Child: only async-signal-safe calls until exec. The worker dies with the gateway.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      // Exactly these two descriptors cross exec; every other one is close-on-exec.
      if (::fcntl(sv[1], F_SETFD, 0) != 0 || ::fcntl(opt.model_fd, F_SETFD, 0) != 0) ::_exit(126);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(sv[1]);
    s.fd = sv[0];
    s.pid = pid;
    s.ep = std::make_unique<proto::GatewayEndpoint>();
    s.ping_nonce = 0;
    proto::Hello h;
    h.max_sessions = opt.max_sessions;
    h.n_ctx = opt.n_ctx;
    Status st = send(s, h);
    if (!st.ok()) return st;
    auto f = recv_until(s, SteadyClock::now() + Ms(opt.start_timeout_ms));
    if (!f.has_value()) {
      // The worker sends Error{0} before exiting when it cannot start; EOF otherwise.
      return Status::unavailable("worker did not start: {}", f.error().to_string());
    }
    if (!f->has_value()) return Status::deadline_exceeded("worker sent no Ready within {} ms", opt.start_timeout_ms);
    if (auto* e = std::get_if<proto::Error>(&**f)) {
      return Status::unavailable("worker did not start: {}", printable(e->message, 200));
    }
    const auto& r = std::get<proto::Ready>(**f);
    std::lock_guard<std::mutex> lock(mu);
    s.lockdown = r.lockdown;
    if (!have_info) {
      have_info = true;
      info.n_ctx = r.n_ctx;
      session_kv_bytes = r.session_kv_bytes;  // bounded by the decoder (Limits::max_session_kv_bytes)
    } else if (r.session_kv_bytes != session_kv_bytes || r.n_ctx != info.n_ctx) {
      // SECURITY: a worker must not shrink what its sessions count against the byte bound.
      return Status::failed_precondition("worker reports n_ctx {} and {} KV bytes per session, the first reported {} and {}",
                                         r.n_ctx, r.session_kv_bytes, info.n_ctx, session_kv_bytes);
    }
    return Status();
  }

  // Kills and reaps the slot's process (if any) and closes its socket; returns how it ended.
  std::string end_process(Slot& s) {
    std::string how;
    if (s.pid > 0) {
      int st = 0;
      if (::waitpid(s.pid, &st, WNOHANG) == s.pid) {
        how = describe_wait_status(st);
      } else {
        ::kill(s.pid, SIGKILL);
        while (::waitpid(s.pid, &st, 0) < 0 && errno == EINTR) {
        }
        how = "killed";
      }
    }
    if (s.fd >= 0) ::close(s.fd);
    s.fd = -1;
    s.ep.reset();
    return how;
  }

  void audit(const Slot& s, pid_t pid, std::string decision, std::vector<std::string> reasons) {
    if (opt.audit == nullptr) return;
    AuditRecord r;
    r.time_unix = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
    r.request_id = str_format("worker-{}-{}", s.index, pid);
    r.principal = "ztslm-supervisor";
    r.tenant = s.assigned ? s.tenant : std::string();
    r.route = "worker";
    r.model = opt.model_id;
    r.model_digest = opt.provenance.digest;  // the bytes this worker maps
    r.model_signer = opt.provenance.signer;
    r.decision = std::move(decision);
    r.reasons = std::move(reasons);
    (void)opt.audit->record(r);  // a failing audit log is reported by the request path
  }

  // The owner gives a failed worker up: kill, reap, audit, schedule the restart.
  void fail(Slot& s, const std::string& reason) {
    const pid_t pid = s.pid;
    const std::string how = end_process(s);
    {
      std::lock_guard<std::mutex> lock(mu);
      s.pid = -1;
      s.state = SlotState::kDown;
      s.last_error = reason;
      ++s.incarnation;
      s.pending_close.clear();  // the process and every KV cache in it are gone
      const uint32_t shift = std::min<uint32_t>(s.failures, 20);
      const uint64_t delay = std::min<uint64_t>(uint64_t{opt.restart_backoff_ms} << shift, opt.restart_backoff_max_ms);
      ++s.failures;
      s.next_start = SteadyClock::now() + Ms(delay);
    }
    cv.notify_all();
    monitor_cv.notify_all();
    std::fprintf(stderr, "ztslm serve: worker %zu (pid %d) failed: %s (%s)\n", s.index, static_cast<int>(pid),
                 reason.c_str(), how.c_str());
    audit(s, pid, "error", {"worker failed: " + reason, "process: " + (how.empty() ? std::string("gone") : how)});
  }

  // Returns an owned slot to the pool.
  void release(Slot& s, bool success) {
    {
      std::lock_guard<std::mutex> lock(mu);
      s.state = SlotState::kIdle;
      if (success) s.failures = 0;
    }
    cv.notify_all();
    monitor_cv.notify_all();
  }

  // ---- monitor thread: starts, restarts and pings workers ----

  void start_slot(Slot& s) {
    const bool is_restart = s.ever_started;
    if (is_restart) {
      // Under the lock, so that once set_restart_hook({}) returns the old hook is never called.
      std::lock_guard<std::mutex> lock(mu);
      restarts.fetch_add(1);
      if (restart_hook) restart_hook();
    }
    s.ever_started = true;
    Status st = spawn(s);
    if (!st.ok()) {
      fail(s, st.to_string());
      return;
    }
    const bool degraded = s.lockdown.find("degraded") != std::string::npos;
    std::vector<std::string> reasons = {is_restart ? "worker restarted" : "worker started", "lockdown: " + s.lockdown};
    if (degraded) reasons.push_back("degraded lockdown (allowed by worker.allow_degraded_lockdown)");
    audit(s, s.pid, degraded ? "degraded" : "allow", std::move(reasons));
    s.last_alive = SteadyClock::now();
    release(s, /*success=*/false);
  }

  void ping_slot(Slot& s, std::vector<uint64_t> closes) {
    if (auto f = flush_closes(s, closes)) return fail(s, f->reason);
    if (!s.ep->ping_outstanding()) {
      s.ping_sent = SteadyClock::now();
      if (Status st = send(s, proto::Ping{++s.ping_nonce}); !st.ok()) return fail(s, "ping: " + st.to_string());
    }
    if (auto f = settle(s, closes)) return fail(s, f->reason);
    release(s, /*success=*/false);
  }

  void monitor_loop() {
    std::unique_lock<std::mutex> lock(mu);
    while (!stopping) {
      const TimePoint now = SteadyClock::now();
      TimePoint wake = now + Ms(opt.ping_interval_ms);
      Slot* act = nullptr;
      bool start = false;
      std::vector<uint64_t> closes;
      for (auto& sp : slots) {
        Slot& s = *sp;
        if (s.state == SlotState::kDown && s.wanted) {
          if (s.next_start <= now) {
            act = &s;
            start = true;
            break;
          }
          wake = std::min(wake, s.next_start);
        } else if (s.state == SlotState::kIdle) {
          const TimePoint due = s.last_alive + Ms(opt.ping_interval_ms);
          if (due <= now || !s.pending_close.empty()) {
            act = &s;
            closes.swap(s.pending_close);
            break;
          }
          wake = std::min(wake, due);
        }
      }
      if (act == nullptr) {
        monitor_cv.wait_until(lock, wake);
        continue;
      }
      act->state = start ? SlotState::kStarting : SlotState::kBusy;
      lock.unlock();
      if (start) {
        start_slot(*act);
      } else {
        ping_slot(*act, std::move(closes));
      }
      lock.lock();
    }
  }

  // ---- scheduling (under mu) ----

  // Picks the slot that may run a request for `tenant` now (and marks nothing); nullptr = wait.
  // Per-tenant mode may assign a free slot or pick an idle one of another tenant to replace:
  // `evict` is then set and the caller retires that process first.
  Slot* pick(const std::string& tenant, uint64_t bound_slot, uint64_t bound_incarnation, bool bound, bool& evict) {
    evict = false;
    if (!opt.per_tenant) {
      if (bound && bound_slot < slots.size()) {
        Slot& b = *slots[bound_slot];
        if (b.incarnation == bound_incarnation && b.state != SlotState::kDown) {
          return b.state == SlotState::kIdle ? &b : nullptr;
        }
      }
      Slot* best = nullptr;
      for (auto& sp : slots) {
        if (sp->state == SlotState::kIdle && (best == nullptr || sp->last_used < best->last_used)) best = sp.get();
      }
      return best;
    }
    for (auto& sp : slots) {
      if (sp->assigned && sp->tenant == tenant) return sp->state == SlotState::kIdle ? sp.get() : nullptr;
    }
    // No worker for this tenant yet: an unassigned running one, an unassigned free slot, or the
    // least recently used idle worker of another tenant.
    for (auto& sp : slots) {
      if (!sp->assigned && sp->wanted && sp->state == SlotState::kIdle) {
        sp->assigned = true;
        sp->tenant = tenant;
        return sp.get();
      }
    }
    for (auto& sp : slots) {
      if (!sp->assigned && !sp->wanted && sp->state == SlotState::kDown) {
        sp->assigned = true;
        sp->wanted = true;
        sp->tenant = tenant;
        sp->next_start = SteadyClock::now();
        monitor_cv.notify_all();
        return nullptr;
      }
    }
    Slot* lru = nullptr;
    for (auto& sp : slots) {
      if (sp->state == SlotState::kIdle && (lru == nullptr || sp->last_used < lru->last_used)) lru = sp.get();
    }
    if (lru != nullptr) {
      lru->tenant = tenant;
      evict = true;
    }
    return lru;
  }

  // Retires an idle worker of another tenant (LRU replacement) so `s` can start for its new
  // tenant. Called by the owner, without the lock.
  void retire(Slot& s) {
    const pid_t pid = s.pid;
    (void)end_process(s);
    {
      std::lock_guard<std::mutex> lock(mu);
      s.pid = -1;
      s.state = SlotState::kDown;
      ++s.incarnation;
      s.pending_close.clear();
      s.failures = 0;
      s.ever_started = false;  // a replacement, not a restart
      s.next_start = SteadyClock::now();
    }
    monitor_cv.notify_all();
    audit(s, pid, "allow", {"worker retired (least recently used) for tenant " + printable(s.tenant, 64)});
  }
};

namespace {

// A session id on one worker; its destructor has the worker wipe that session's KV cache.
class WorkerSession final : public BackendSession {
 public:
  WorkerSession(std::weak_ptr<WorkerBackend::Core> core, uint64_t id, uint64_t kv_bytes)
      : core_(std::move(core)), id_(id), kv_bytes_(kv_bytes) {}
  ~WorkerSession() override;
  // The KV cache this session holds (or will hold) in its worker, as the workers reported it.
  size_t memory_bytes() const override { return static_cast<size_t>(kv_bytes_); }
  std::weak_ptr<WorkerBackend::Core> core_;
  uint64_t id_;
  uint64_t kv_bytes_;
  bool bound_ = false;  // guarded by Core::mu
  size_t slot_ = 0;
  uint64_t incarnation_ = 0;
};

WorkerSession::~WorkerSession() {
  auto core = core_.lock();
  if (core == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(core->mu);
    if (!bound_ || slot_ >= core->slots.size()) return;
    Slot& s = *core->slots[slot_];
    if (s.incarnation != incarnation_) return;  // that process, and the cache, are gone
    s.pending_close.push_back(id_);
  }
  core->monitor_cv.notify_all();
}

}  // namespace

Result<std::unique_ptr<WorkerBackend>> WorkerBackend::create(const WorkerBackendOptions& opt) {
  if (opt.model_fd < 0) return Status::invalid_argument("worker backend: no model fd");
  if (opt.count == 0) return Status::invalid_argument("worker backend: worker count is 0");
  if (opt.threads < 1) return Status::invalid_argument("worker backend: threads must be at least 1");
  auto core = std::make_shared<Core>();
  core->opt = opt;
  core->binary = opt.binary;
  if (core->binary.empty()) {
    std::string exe(4096, '\0');
    const ssize_t n = ::readlink("/proc/self/exe", exe.data(), exe.size() - 1);
    if (n <= 0) return Status::internal("cannot resolve /proc/self/exe");
    exe.resize(static_cast<size_t>(n));
    core->binary = exe;
  }
  core->info.id = opt.model_id;
  core->info.digest = opt.provenance.digest;
  core->info.signer = opt.provenance.signer;
  core->info.verified = opt.provenance.verified;
  core->info.created_unix = std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch()).count();
  const size_t n_start = opt.per_tenant ? 1 : opt.count;
  for (size_t i = 0; i < opt.count; ++i) {
    auto s = std::make_unique<Slot>();
    s->index = i;
    s->wanted = i < n_start;
    core->slots.push_back(std::move(s));
  }
  std::unique_ptr<WorkerBackend> b(new WorkerBackend(core));
  core->monitor = std::thread([c = core.get()] { c->monitor_loop(); });
  // Wait until each initial worker has either answered Ready or failed once.
  std::unique_lock<std::mutex> lock(core->mu);
  core->cv.wait(lock, [&] {
    for (size_t i = 0; i < n_start; ++i) {
      const Slot& s = *core->slots[i];
      if (s.state != SlotState::kIdle && s.failures == 0) return false;
    }
    return true;
  });
  for (size_t i = 0; i < n_start; ++i) {
    if (core->slots[i]->failures > 0) {
      const std::string why = core->slots[i]->last_error;
      lock.unlock();
      return Status::unavailable("worker {} could not start: {}", i, why);
    }
  }
  return b;
}

WorkerBackend::~WorkerBackend() {
  {
    std::lock_guard<std::mutex> lock(core_->mu);
    core_->stopping = true;
  }
  core_->monitor_cv.notify_all();
  core_->cv.notify_all();
  if (core_->monitor.joinable()) core_->monitor.join();
  // Generations have ended (the gateway stops first); every process goes now.
  for (auto& sp : core_->slots) (void)core_->end_process(*sp);
}

ModelInfo WorkerBackend::model_info() const {
  std::lock_guard<std::mutex> lock(core_->mu);
  return core_->info;
}

uint64_t WorkerBackend::restarts() const { return core_->restarts.load(); }

void WorkerBackend::set_restart_hook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(core_->mu);
  core_->restart_hook = std::move(hook);
}

std::vector<WorkerStatus> WorkerBackend::workers() const {
  std::lock_guard<std::mutex> lock(core_->mu);
  std::vector<WorkerStatus> out;
  for (const auto& sp : core_->slots) {
    const bool up = sp->state == SlotState::kIdle || sp->state == SlotState::kBusy;
    out.push_back({up ? sp->pid : -1, sp->state == SlotState::kBusy, sp->assigned ? sp->tenant : std::string(),
                   sp->lockdown});
  }
  return out;
}

bool WorkerBackend::wait_until_up_for_test(uint64_t min_restarts, uint32_t timeout_ms) const {
  std::unique_lock<std::mutex> lock(core_->mu);
  return core_->cv.wait_for(lock, Ms(timeout_ms), [&] {
    if (core_->restarts.load() < min_restarts) return false;
    for (const auto& sp : core_->slots) {
      if (sp->wanted && sp->state != SlotState::kIdle && sp->state != SlotState::kBusy) return false;
    }
    return true;
  });
}

Result<std::unique_ptr<BackendSession>> WorkerBackend::create_session() {
  uint64_t kv_bytes = 0;
  {
    std::lock_guard<std::mutex> lock(core_->mu);
    kv_bytes = core_->session_kv_bytes;
  }
  return std::unique_ptr<BackendSession>(new WorkerSession(core_, core_->next_session.fetch_add(1), kv_bytes));
}

Result<GenerateResult> WorkerBackend::generate(const GenerateRequest& req, const TokenCallback& on_text) {
  const TimePoint t_call = SteadyClock::now();
  // A worker found dead before it produced any text (it died while idle) costs the request one
  // more try on another worker; once text has reached the client, a failure ends the request.
  for (int attempt = 0;; ++attempt) {
    bool retriable = false;
    auto r = generate_once(req, on_text, t_call, retriable);
    if (r.has_value() || !retriable || attempt >= 1) return r;
  }
}

Result<GenerateResult> WorkerBackend::generate_once(const GenerateRequest& req, const TokenCallback& on_text,
                                                    std::chrono::steady_clock::time_point t_call, bool& retriable) {
  Core& c = *core_;
  proto::Generate g = to_frame(req);
  auto* ws = static_cast<WorkerSession*>(req.session);
  // Acquire a worker.
  Slot* s = nullptr;
  std::vector<uint64_t> closes;
  bool ephemeral = ws == nullptr;
  {
    std::unique_lock<std::mutex> lock(c.mu);
    const TimePoint deadline = t_call + Ms(c.opt.queue_timeout_ms);
    for (;;) {
      if (c.stopping) return Status::unavailable("the server is shutting down");
      bool evict = false;
      s = c.pick(req.tenant, ws != nullptr ? ws->slot_ : 0, ws != nullptr ? ws->incarnation_ : 0,
                 ws != nullptr && ws->bound_, evict);
      if (s != nullptr && evict) {
        s->state = SlotState::kBusy;
        s->assigned = true;
        lock.unlock();
        c.retire(*s);
        lock.lock();
        continue;
      }
      if (s != nullptr) break;
      if (c.cv.wait_until(lock, deadline) == std::cv_status::timeout) {
        bool again = false;
        s = c.pick(req.tenant, ws != nullptr ? ws->slot_ : 0, ws != nullptr ? ws->incarnation_ : 0,
                   ws != nullptr && ws->bound_, again);
        if (s == nullptr || again) {
          return Status::unavailable("no worker became free within {} ms; retry later", c.opt.queue_timeout_ms);
        }
        break;
      }
    }
    s->state = SlotState::kBusy;
    s->last_used = ++c.tick;
    if (ws != nullptr) {
      if (!ws->bound_ || ws->slot_ != s->index || ws->incarnation_ != s->incarnation) {
        // (Re)bind: a session whose worker was replaced starts a fresh cache on this one.
        if (ws->bound_ && ws->slot_ < c.slots.size() && c.slots[ws->slot_]->incarnation == ws->incarnation_) {
          c.slots[ws->slot_]->pending_close.push_back(ws->id_);
        }
        ws->id_ = c.next_session.fetch_add(1);
        ws->bound_ = true;
        ws->slot_ = s->index;
        ws->incarnation_ = s->incarnation;
      }
      g.session_id = ws->id_;
    } else {
      g.session_id = c.next_session.fetch_add(1);
    }
    closes.swap(s->pending_close);
  }
  Slot& slot = *s;

  // Drive the generation. A Fault is the worker's failure; `req_error` an error it reported.
  std::optional<Fault> fault;
  std::optional<Status> req_error;
  GenerateResult r;
  bool cancelled = false;
  std::optional<proto::GenerateEnd> end;
  if (auto f = c.flush_closes(slot, closes)) {
    fault = f;
  } else if (Status st = c.send(slot, g); !st.ok()) {
    if (st.code() == StatusCode::kInvalidArgument) {
      // The request does not fit a frame (a limit, not the worker's fault): nothing was sent.
      c.release(slot, /*success=*/false);
      return Status::invalid_argument("the prompt is too large for the worker protocol: {}", st.message());
    }
    fault = Fault{"send: " + st.to_string()};
  }
  while (!fault.has_value() && !end.has_value() && !req_error.has_value()) {
    auto got = c.recv_until(slot, c.next_ping_event(slot));
    if (!got.has_value()) {
      fault = Fault{got.error().to_string()};
      break;
    }
    if (!got->has_value()) {
      fault = c.ping_due(slot);
      continue;
    }
    proto::Frame& f = **got;
    if (auto* chunk = std::get_if<proto::TokenChunk>(&f)) {
      if (!chunk->text.empty() && !cancelled) {
        if (r.first_token_ms == 0) {
          r.first_token_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - t_call).count();
        }
        if (!on_text(chunk->text)) {
          cancelled = true;
          if (Status st = c.send(slot, proto::Cancel{g.session_id}); !st.ok()) fault = Fault{"cancel: " + st.to_string()};
        }
      }
    } else if (auto* e = std::get_if<proto::GenerateEnd>(&f)) {
      end = *e;
    } else if (auto* err = std::get_if<proto::Error>(&f)) {
      if (err->session_id == 0) {
        fault = Fault{"worker error: " + printable(err->message, 200)};
      } else {
        req_error = worker_request_error(*err);
      }
    }
    // Pong and SessionClosed need nothing more: the endpoint has checked and recorded them.
  }
  std::optional<Fault> close_fault;
  if (!fault.has_value() && ephemeral) {
    // A session-less request: its cache is wiped now.
    std::vector<uint64_t> mine = {g.session_id};
    close_fault = c.flush_closes(slot, mine);
    if (!close_fault.has_value()) close_fault = c.settle(slot, mine);
  }
  if (fault.has_value()) {
    c.fail(slot, fault->reason);
    retriable = r.first_token_ms == 0 && !cancelled && !end.has_value() && !req_error.has_value();
    return Status::unavailable("the worker serving this request failed; retry");
  }
  if (close_fault.has_value()) {
    // The worker failed after the generation had ended (GenerateEnd or the request's Error was
    // in): the answer is whole, so the client gets it; the worker is replaced and audited, and
    // its caches went with the process.
    c.fail(slot, "after the generation ended: " + close_fault->reason);
  } else {
    c.release(slot, /*success=*/true);
  }
  if (req_error.has_value()) return *req_error;
  if (cancelled || end->finish == proto::FinishReason::kCancelled) return Status::cancelled("generation cancelled");
  r.prompt_tokens = end->prompt_tokens;
  r.cached_tokens = end->cached_tokens;
  r.completion_tokens = end->completion_tokens;
  r.finish_reason = end->finish == proto::FinishReason::kStop ? "stop" : "length";
  r.model_ms = static_cast<double>(end->prefill_us + end->decode_us) / 1000.0;
  return r;
}

}  // namespace ztslm::server::scheduler
