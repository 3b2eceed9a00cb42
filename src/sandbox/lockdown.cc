#include "sandbox/lockdown.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "sandbox/seccomp_policy.h"

namespace ztslm::sandbox {
namespace {

// One argument comparison with every field set (libseccomp's SCMP_CMP macro leaves datum_b to
// aggregate initialisation, which clang's -Wmissing-field-initializers rejects).
scmp_arg_cmp arg_cmp(unsigned arg, scmp_compare op, scmp_datum_t a, scmp_datum_t b) {
  scmp_arg_cmp c{};
  c.arg = arg;
  c.op = op;
  c.datum_a = a;
  c.datum_b = b;
  return c;
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif
#else
constexpr bool kAsan = false;
#endif

// Landlock ABI (linux/landlock.h), spelled out so that rights newer than the build's kernel
// headers are still handled when the running kernel has them.
constexpr long kSysLandlockCreateRuleset = 444;
constexpr long kSysLandlockRestrictSelf = 446;
constexpr uint32_t kCreateRulesetVersion = 1u << 0;
struct LandlockRulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;  // ABI >= 4
  uint64_t scoped;              // ABI >= 6
};
uint64_t fs_rights_for(int abi) {
  uint64_t rights = (1ull << 13) - 1;        // ABI 1: execute .. make_sym
  if (abi >= 2) rights |= 1ull << 13;        // refer
  if (abi >= 3) rights |= 1ull << 14;        // truncate
  if (abi >= 5) rights |= 1ull << 15;        // ioctl_dev
  return rights;
}

int count_threads() {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir("/proc/self/task"), ::closedir);
  if (!d) return -1;
  int n = 0;
  while (const dirent* e = ::readdir(d.get())) {
    if (e->d_name[0] != '.') ++n;
  }
  return n;
}

Status set_limit(int resource, rlim_t value, const char* name) {
  struct rlimit cur {};
  if (::getrlimit(resource, &cur) != 0) return Status::internal("getrlimit {} failed", name);
  // Never raise a limit the parent already lowered.
  const rlim_t v = cur.rlim_max != RLIM_INFINITY && cur.rlim_max < value ? cur.rlim_max : value;
  const struct rlimit lim = {v, v};
  if (::setrlimit(resource, &lim) != 0) return Status::internal("setrlimit {} failed: {}", name, std::strerror(errno));
  return Status();
}

Status drop_user(const LockdownOptions& opt, LockdownReport& rep) {
  if (::geteuid() != 0 || !opt.drop_user_when_root) {
    rep.uid = static_cast<uint32_t>(::geteuid());
    rep.gid = static_cast<uint32_t>(::getegid());
    return Status();
  }
  if (opt.run_as_uid == 0 || opt.run_as_gid == 0) return Status::invalid_argument("refusing to run the worker as root");
  if (::setgroups(0, nullptr) != 0) return Status::permission_denied("setgroups failed: {}", std::strerror(errno));
  if (::setresgid(opt.run_as_gid, opt.run_as_gid, opt.run_as_gid) != 0) {
    return Status::permission_denied("setresgid {} failed: {}", opt.run_as_gid, std::strerror(errno));
  }
  if (::setresuid(opt.run_as_uid, opt.run_as_uid, opt.run_as_uid) != 0) {
    return Status::permission_denied("setresuid {} failed: {}", opt.run_as_uid, std::strerror(errno));
  }
  // SECURITY: confirm the drop is irreversible before going on.
  uid_t r = 0, e = 0, s = 0;
  if (::getresuid(&r, &e, &s) != 0 || r != opt.run_as_uid || e != opt.run_as_uid || s != opt.run_as_uid ||
      ::setuid(0) == 0) {
    return Status::permission_denied("privilege drop to uid {} did not stick", opt.run_as_uid);
  }
  rep.dropped_user = true;
  rep.uid = opt.run_as_uid;
  rep.gid = opt.run_as_gid;
  return Status();
}

void enter_namespaces(LockdownReport& rep) {
  // Root may create them directly; an unprivileged process only inside a new user namespace.
  if (::geteuid() == 0) {
    rep.net_namespace = ::unshare(CLONE_NEWNET) == 0;
    rep.ipc_namespace = ::unshare(CLONE_NEWIPC) == 0;
    return;
  }
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWIPC) == 0) {
    rep.net_namespace = rep.ipc_namespace = true;
  }
}

Status apply_landlock(const LockdownOptions& opt, LockdownReport& rep) {
  const int abi = landlock_abi_version();
  if (abi <= 0) {
    if (!opt.allow_degraded) {
      return Status::failed_precondition("landlock is not available in this kernel and degraded mode is off");
    }
    rep.degraded = true;
    return Status();
  }
  LandlockRulesetAttr attr{};
  attr.handled_access_fs = fs_rights_for(abi);
  size_t attr_size = sizeof(uint64_t);
  if (abi >= 4) {
    attr.handled_access_net = (1ull << 0) | (1ull << 1);  // bind_tcp, connect_tcp
    attr_size = 2 * sizeof(uint64_t);
  }
  if (abi >= 6) {
    attr.scoped = (1ull << 0) | (1ull << 1);  // abstract unix sockets, signals
    attr_size = 3 * sizeof(uint64_t);
  }
  const long fd = ::syscall(kSysLandlockCreateRuleset, &attr, attr_size, 0u);
  if (fd < 0) return Status::internal("landlock_create_ruleset failed: {}", std::strerror(errno));
  // No rule is added: every handled right is denied everywhere.
  const long rc = ::syscall(kSysLandlockRestrictSelf, static_cast<int>(fd), 0u);
  const int err = errno;
  ::close(static_cast<int>(fd));
  if (rc != 0) return Status::permission_denied("landlock_restrict_self failed: {}", std::strerror(err));
  rep.landlock_abi = abi;
  return Status();
}

Status apply_seccomp(const LockdownOptions& opt, LockdownReport& rep) {
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(SCMP_ACT_KILL_PROCESS), seccomp_release);
  if (!ctx) return Status::internal("seccomp_init failed");
  // Syscalls of another ABI (i386 via int 0x80, x32) kill as well.
  if (seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) != 0 ||
      seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1) != 0) {
    return Status::internal("seccomp attributes failed");
  }
  const uint64_t pid = static_cast<uint64_t>(::getpid());
  for (const SyscallRule& r : worker_policy(opt.allow_threads)) {
    int rc = 0;
    switch (r.kind) {
      case RuleKind::kAllow:
        rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, r.nr, 0);
        break;
      case RuleKind::kAllowIfMaskZero:
        rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, r.nr, 1,
                              arg_cmp(r.arg_index, SCMP_CMP_MASKED_EQ, r.mask, 0));
        break;
      case RuleKind::kAllowIfMaskSet:
        rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, r.nr, 1,
                              arg_cmp(r.arg_index, SCMP_CMP_MASKED_EQ, r.mask, r.mask));
        break;
      case RuleKind::kAllowIfArgIsPid:
        rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, r.nr, 1, arg_cmp(r.arg_index, SCMP_CMP_EQ, pid, 0));
        break;
      case RuleKind::kErrno:
        rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(static_cast<uint32_t>(r.errno_value)), r.nr, 0);
        break;
    }
    // A syscall this libseccomp does not know on this architecture (-EDOM/-EFAULT) is skipped:
    // unknown means unlisted, which the default action kills.
    if (rc != 0 && r.nr >= 0) {
      return Status::internal("seccomp rule for syscall {} failed: {}", r.nr, std::strerror(-rc));
    }
  }
  if (const int rc = seccomp_load(ctx.get()); rc != 0) {
    return Status::internal("seccomp_load failed: {}", std::strerror(-rc));
  }
  rep.seccomp = true;
  return Status();
}

}  // namespace

int landlock_abi_version() {
  const long v = ::syscall(kSysLandlockCreateRuleset, nullptr, 0, kCreateRulesetVersion);
  return v > 0 ? static_cast<int>(v) : 0;
}

std::string LockdownReport::to_string() const {
  std::string s = str_format("rlimits as={} nofile core=0; ", address_space_bounded ? "bounded" : "off");
  s += dropped_user ? str_format("user {}:{} (dropped); ", uid, gid) : str_format("user {}:{}; ", uid, gid);
  s += str_format("netns {}; ipcns {}; nnp; nodump; ", net_namespace ? "yes" : "no", ipc_namespace ? "yes" : "no");
  s += landlock_abi > 0 ? str_format("landlock abi {}; ", landlock_abi) : std::string("landlock none (degraded); ");
  s += seccomp ? "seccomp kill" : "seccomp off";
  return s;
}

Result<LockdownReport> lock_down(const LockdownOptions& opt) {
  if (const int n = count_threads(); n != 1) {
    return Status::failed_precondition("lock_down needs a single-threaded process ({} threads)", n);
  }
  LockdownReport rep;
  // 1. rlimits.
  ZTSLM_TRY(set_limit(RLIMIT_CORE, 0, "core"));
  ZTSLM_TRY(set_limit(RLIMIT_NOFILE, opt.max_open_files, "nofile"));
  // ASan reserves terabytes of shadow address space; an AS bound would break it.
  if (opt.max_address_space_bytes > 0 && !kAsan) {
    ZTSLM_TRY(set_limit(RLIMIT_AS, static_cast<rlim_t>(opt.max_address_space_bytes), "as"));
    rep.address_space_bounded = true;
  }
  // 2. namespaces (best effort, reported).
  if (opt.new_namespaces) enter_namespaces(rep);
  // 3. unprivileged user.
  ZTSLM_TRY(drop_user(opt, rep));
  // 4. no_new_privs: required by Landlock and seccomp for an unprivileged process.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Status::internal("no_new_privs failed");
  // 5. not dumpable.
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return Status::internal("set dumpable 0 failed");
  // 6. Landlock.
  ZTSLM_TRY(apply_landlock(opt, rep));
  // 7. seccomp, last: the steps above need syscalls it forbids.
  ZTSLM_TRY(apply_seccomp(opt, rep));
  return rep;
}

}  // namespace ztslm::sandbox
