#include "sandbox/seccomp_policy.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>

namespace ztslm::sandbox {
namespace {

constexpr SyscallRule allow(int nr, std::string_view why) { return {nr, RuleKind::kAllow, 0, 0, 0, why}; }
constexpr SyscallRule deny(int nr, int err, std::string_view why) { return {nr, RuleKind::kErrno, 0, 0, err, why}; }

// clang-format off
constexpr SyscallRule kWorkerPolicy[] = {
    allow(SCMP_SYS(read),            "socketpair frames"),
    allow(SCMP_SYS(write),           "socketpair frames, stderr diagnostics"),
    allow(SCMP_SYS(readv),           "stdio"),
    allow(SCMP_SYS(writev),          "stdio, abort message"),
    allow(SCMP_SYS(recvfrom),        "recv() on the inherited socketpair"),
    allow(SCMP_SYS(recvmsg),         "recvmsg() on the inherited socketpair"),
    allow(SCMP_SYS(sendto),          "send() on the inherited socketpair"),
    allow(SCMP_SYS(sendmsg),         "sendmsg() on the inherited socketpair"),
    allow(SCMP_SYS(poll),            "waiting for frames between tokens"),
    allow(SCMP_SYS(ppoll),           "waiting for frames between tokens"),
    allow(SCMP_SYS(close),           "closing inherited descriptors"),
    {SCMP_SYS(mmap),     RuleKind::kAllowIfMaskZero, 2, PROT_EXEC, 0, "malloc arenas, thread stacks; never executable"},
    {SCMP_SYS(mprotect), RuleKind::kAllowIfMaskZero, 2, PROT_EXEC, 0, "guard pages, heap growth; never executable"},
    allow(SCMP_SYS(munmap),          "free"),
    allow(SCMP_SYS(mremap),          "realloc of large blocks"),
    allow(SCMP_SYS(madvise),         "free returns pages"),
    allow(SCMP_SYS(brk),             "malloc main arena"),
    allow(SCMP_SYS(futex),           "thread pool, mutexes"),
    allow(SCMP_SYS(sched_yield),     "thread pool spin-wait"),
    allow(SCMP_SYS(sched_getaffinity), "thread pool sizing"),
    allow(SCMP_SYS(nanosleep),       "backoff"),
    allow(SCMP_SYS(clock_nanosleep), "backoff"),
    allow(SCMP_SYS(clock_gettime),   "timings (vDSO fallback)"),
    allow(SCMP_SYS(clock_getres),    "timings"),
    allow(SCMP_SYS(gettimeofday),    "timings (vDSO fallback)"),
    allow(SCMP_SYS(getpid),          "own pid (abort)"),
    allow(SCMP_SYS(gettid),          "own tid (abort)"),
    allow(SCMP_SYS(getrandom),       "sampler seeds"),
    allow(SCMP_SYS(rt_sigreturn),    "signal return"),
    allow(SCMP_SYS(rt_sigprocmask),  "abort, thread creation"),
    allow(SCMP_SYS(rt_sigaction),    "glibc installs its thread signals at the first pthread_create"),
    allow(SCMP_SYS(sigaltstack),     "alternate signal stacks (crash handlers, sanitizers)"),
    allow(SCMP_SYS(set_robust_list), "new threads"),
    allow(SCMP_SYS(rseq),            "new threads (glibc registers rseq)"),
    allow(SCMP_SYS(exit),            "thread exit"),
    allow(SCMP_SYS(exit_group),      "process exit"),
    {SCMP_SYS(tgkill), RuleKind::kAllowIfArgIsPid, 0, 0, 0, "abort() signals itself only"},
    deny(SCMP_SYS(clone3),  ENOSYS,  "glibc falls back to clone, whose flags can be checked"),
    deny(SCMP_SYS(open),    EACCES,  "no filesystem (Landlock denies too); libc probes degrade"),
    deny(SCMP_SYS(openat),  EACCES,  "no filesystem (Landlock denies too); libc probes degrade"),
    deny(SCMP_SYS(newfstatat), EACCES, "path-based stat would reveal the filesystem"),
    deny(SCMP_SYS(fstat),   EACCES,  "stdio buffer sizing; not needed"),
    deny(SCMP_SYS(ioctl),   ENOTTY,  "isatty probes of stdio"),
};
// clang-format on

// Sanitizer builds only: the ASan/LSan runtime's thread bookkeeping uses a pipe.
#if defined(__SANITIZE_ADDRESS__)
#define ZTSLM_SANITIZER_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ZTSLM_SANITIZER_BUILD 1
#endif
#endif
#ifdef ZTSLM_SANITIZER_BUILD
constexpr SyscallRule kSanitizerRuleTable[] = {
    allow(SCMP_SYS(pipe2), "sanitizer runtime (test builds only)"),
};
constexpr std::span<const SyscallRule> kSanitizerRules(kSanitizerRuleTable);
#else
constexpr std::span<const SyscallRule> kSanitizerRules;
#endif

constexpr SyscallRule kThreadRule = {SCMP_SYS(clone), RuleKind::kAllowIfMaskSet, 0, CLONE_THREAD, 0,
                                     "thread pool threads; never a new process"};

}  // namespace

std::span<const SyscallRule> worker_policy(bool allow_threads) {
  static const auto with_threads = [] {
    struct Table {
      SyscallRule rules[std::size(kWorkerPolicy) + kSanitizerRules.size() + 1];
    } t{};
    size_t n = 0;
    for (const SyscallRule& r : kWorkerPolicy) t.rules[n++] = r;
    for (const SyscallRule& r : kSanitizerRules) t.rules[n++] = r;
    t.rules[n] = kThreadRule;
    return t;
  }();
  const size_t n = std::size(with_threads.rules);
  return std::span<const SyscallRule>(with_threads.rules, allow_threads ? n : n - 1);
}

}  // namespace ztslm::sandbox
