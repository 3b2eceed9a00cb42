// Process lock-down for the worker (DESIGN.md "least-privilege execution"). lock_down() applies,
// in this order, and fails (the caller must exit) if a mandatory layer cannot be applied:
//   1. rlimits: address space bound (when set), few descriptors, no core dumps
//   2. new network and IPC namespaces, best effort (they need the privilege step 3 drops)
//   3. drop to an unprivileged uid/gid when running as root (configurable)
//   4. no_new_privs
//   5. not dumpable (no ptrace attach by same-uid processes, no core)
//   6. Landlock ruleset handling every filesystem (and, where the ABI has them, network and
//      scope) right with no rule: no filesystem access at all. No Landlock in the kernel is an
//      error unless `allow_degraded`, and is then reported.
//   7. seccomp-bpf allowlist (seccomp_policy.h), default action: kill the process
// It must be called while the process has one thread: steps 2, 4 and 6 apply to the calling
// thread and to threads created afterwards only.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"

namespace ztslm::sandbox {

struct LockdownOptions {
  uint64_t max_address_space_bytes = 0;  // RLIMIT_AS; 0 = unbounded (ignored under ASan)
  uint32_t max_open_files = 16;          // RLIMIT_NOFILE: inherited fds + a few
  bool drop_user_when_root = true;
  uint32_t run_as_uid = 65534;  // "nobody"
  uint32_t run_as_gid = 65534;  // "nogroup"
  bool new_namespaces = true;   // best effort: unshare(CLONE_NEWNET | CLONE_NEWIPC)
  bool allow_degraded = false;  // continue without Landlock (reported, to be audited)
  bool allow_threads = true;    // permit clone(CLONE_THREAD) after lock-down
};

// What was applied, for the audit log and the worker's Ready frame.
struct LockdownReport {
  bool address_space_bounded = false;
  bool dropped_user = false;
  uint32_t uid = 0;
  uint32_t gid = 0;
  bool net_namespace = false;
  bool ipc_namespace = false;
  int landlock_abi = 0;  // 0: not applied
  bool degraded = false; // a layer the policy wants is missing (allowed by allow_degraded)
  bool seccomp = false;
  // "rlimits as=off nofile=16 core=0; user 65534:65534; netns yes; ipcns yes; nnp; nodump;
  //  landlock abi 7; seccomp kill"
  std::string to_string() const;
};

// Applies the steps above to the calling process. kFailedPrecondition when more than one thread
// runs or Landlock is missing (without allow_degraded); kPermissionDenied / kInternal when a
// mandatory step fails. After an error the process is partly locked down and must exit.
Result<LockdownReport> lock_down(const LockdownOptions& opt);

// The Landlock ABI version of the running kernel, 0 when Landlock is unavailable.
int landlock_abi_version();

}  // namespace ztslm::sandbox
