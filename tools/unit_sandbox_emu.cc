// unit_sandbox_emu: runs a command under the process-level restrictions of
// packaging/ztslm.service, for hosts without a running systemd (containers, chroots, CI).
//
//   unit_sandbox_emu ALLOWED_SYSCALLS_FILE UID CMD [ARGS...]
//
// As systemd would for the unit, before exec'ing CMD it: empties the capability bounding set,
// switches to UID (group = UID), sets no_new_privs, and loads seccomp filters for
// MemoryDenyWriteExecute=yes, RestrictNamespaces=user net ipc,
// RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6, and SystemCallFilter= with the names in the
// file (one per line; scripts/package expands the unit's groups with `systemd-analyze
// syscall-filter`) and SystemCallErrorNumber=EPERM. It does not emulate the mount-level settings
// (ProtectSystem, PrivateTmp, …), which do not affect a worker's own lock-down.
//
// A development tool built by scripts/package; never linked into ztslm.
#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace {

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(111);
}

void load(scmp_filter_ctx ctx, const char* what) {
  if (ctx == nullptr || seccomp_load(ctx) != 0) die(what);
  seccomp_release(ctx);
}

void check(int rc) {
  if (rc != 0) {
    errno = -rc;
    die("seccomp_rule_add");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: unit_sandbox_emu ALLOWED_SYSCALLS_FILE UID CMD [ARGS...]\n");
    return 2;
  }
  const auto id = static_cast<uid_t>(std::strtoul(argv[2], nullptr, 10));
  if (id == 0) {
    std::fprintf(stderr, "unit_sandbox_emu: the unit never runs as root\n");
    return 2;
  }
  // CapabilityBoundingSet= (empty), then User=/Group=.
  for (int cap = 0; cap <= 63; ++cap) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  if (setgroups(0, nullptr) != 0 || setresgid(id, id, id) != 0 || setresuid(id, id, id) != 0) die("drop user");
  // NoNewPrivileges=yes.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("no_new_privs");

  // MemoryDenyWriteExecute=yes.
  scmp_filter_ctx mdwe = seccomp_init(SCMP_ACT_ALLOW);
  const scmp_datum_t wx = PROT_EXEC | PROT_WRITE;
  check(seccomp_rule_add(mdwe, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mmap), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, wx, wx)));
  check(seccomp_rule_add(mdwe, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mprotect), 1,
                             SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC)));
  check(seccomp_rule_add(mdwe, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(pkey_mprotect), 1,
                             SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC)));
  load(mdwe, "MemoryDenyWriteExecute");

  // RestrictNamespaces=user net ipc: every other namespace flag is refused; clone3 answers ENOSYS
  // as under systemd (its flags are out of seccomp's reach), so libc falls back to clone.
  scmp_filter_ctx ns = seccomp_init(SCMP_ACT_ALLOW);
  for (const scmp_datum_t flag : {scmp_datum_t{CLONE_NEWNS}, scmp_datum_t{CLONE_NEWPID}, scmp_datum_t{CLONE_NEWUTS},
                                  scmp_datum_t{CLONE_NEWCGROUP}}) {
    check(seccomp_rule_add(ns, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)));
    check(seccomp_rule_add(ns, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)));
  }
  check(seccomp_rule_add(ns, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0));
  load(ns, "RestrictNamespaces");

  // RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6.
  scmp_filter_ctx af = seccomp_init(SCMP_ACT_ALLOW);
  for (int family = 0; family < 64; ++family) {
    if (family == AF_UNIX || family == AF_INET || family == AF_INET6) continue;
    check(seccomp_rule_add(af, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                             SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family))));
  }
  load(af, "RestrictAddressFamilies");

  // SystemCallFilter= allow list with SystemCallErrorNumber=EPERM, last: it may not allow seccomp.
  scmp_filter_ctx allow = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  if (allow == nullptr) die("seccomp_init");
  if (seccomp_attr_set(allow, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) != 0) die("badarch");
  std::ifstream names(argv[1]);
  if (!names) die(argv[1]);
  int allowed = 0;
  int unknown = 0;
  for (std::string name; names >> name;) {
    const int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) {
      ++unknown;
      continue;
    }
    check(seccomp_rule_add(allow, SCMP_ACT_ALLOW, nr, 0));
    ++allowed;
  }
  std::fprintf(stderr,
               "unit_sandbox_emu: uid %u, no capabilities, no_new_privs, W^X, namespaces user/net/ipc, "
               "families unix/inet/inet6, %d system calls allowed (%d names unknown here)\n",
               static_cast<unsigned>(id), allowed, unknown);
  load(allow, "SystemCallFilter");
  execv(argv[3], argv + 3);
  die(argv[3]);
}
