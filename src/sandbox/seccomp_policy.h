// The worker's seccomp-bpf allowlist as a reviewed table (STYLE.md E8). Anything not listed kills
// the whole process (SCMP_ACT_KILL_PROCESS): no open/openat (they fail with EACCES so library
// probes degrade cleanly), no socket/connect/bind, no execve, no ptrace, no fork; mmap and
// mprotect only without PROT_EXEC.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace ztslm::sandbox {

enum class RuleKind {
  kAllow,            // always allowed
  kAllowIfMaskZero,  // allowed when (arg[arg_index] & mask) == 0, else the default (kill)
  kAllowIfMaskSet,   // allowed when (arg[arg_index] & mask) == mask, else the default (kill)
  kAllowIfArgIsPid,  // allowed when arg[arg_index] == getpid() at install time (signals to self)
  kErrno,            // fails with errno_value, process lives
};

struct SyscallRule {
  int nr;  // SCMP_SYS(name)
  RuleKind kind;
  unsigned arg_index;
  uint64_t mask;
  int errno_value;
  std::string_view why;  // why the worker needs it (reviewed with every change)
};

// The worker policy. `allow_threads`: whether clone(CLONE_THREAD) is allowed (the engine's thread
// pool starts after lockdown).
std::span<const SyscallRule> worker_policy(bool allow_threads);

}  // namespace ztslm::sandbox
