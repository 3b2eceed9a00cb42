// Lock-down in a forked child: forbidden syscalls are denied or kill it, and /proc shows the
// seccomp filter and no_new_privs.
#include "sandbox/lockdown.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <atomic>
#include <seccomp.h>

#include "sandbox/seccomp_policy.h"
#include "test_util.h"

namespace ztslm::sandbox {
namespace {

LockdownOptions test_options() {
  LockdownOptions o;
  o.max_address_space_bytes = size_t{8} << 30;
  o.allow_degraded = landlock_abi_version() == 0;  // reported below; the kernel here has it
  return o;
}

// Runs `body` in a forked child after lock_down(); returns the raw wait status. Exit code 100
// means lock_down itself failed.
int run_locked(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    auto rep = lock_down(test_options());
    if (!rep.has_value()) ::_exit(100);
    ::_exit(body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

bool killed_by_sigsys(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS; }
int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

TEST(LockdownTest, AllowedWorkStillRuns) {
  const int st = run_locked([] {
    void* p = ::mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    static_cast<char*>(p)[0] = 1;
    if (::mprotect(p, 4096, PROT_READ) != 0) return 2;
    ::munmap(p, 1 << 20);
    std::string s(10 << 20, 'x');  // malloc through mmap
    if (::write(STDERR_FILENO, "", 0) != 0) return 3;
    return s.size() == (10u << 20) ? 0 : 4;
  });
  EXPECT_EQ(exit_code(st), 0) << "status " << st;
}

TEST(LockdownTest, OpenIsDenied) {
  const int st = run_locked([] {
    const int fd = ::open("/etc/hostname", O_RDONLY);
    if (fd >= 0) return 1;
    if (errno != EACCES) return 2;
    if (::syscall(SYS_openat, AT_FDCWD, "/tmp", O_RDONLY | O_DIRECTORY) >= 0) return 3;
    return 0;
  });
  EXPECT_EQ(exit_code(st), 0) << "status " << st;
}

TEST(LockdownTest, SocketKills) {
  EXPECT_TRUE(killed_by_sigsys(run_locked([] { return ::socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 1 : 2; })));
}

TEST(LockdownTest, ConnectKills) {
  EXPECT_TRUE(killed_by_sigsys(run_locked([] {
    return static_cast<int>(::syscall(SYS_connect, 0, nullptr, 0));
  })));
}

TEST(LockdownTest, ExecveKills) {
  EXPECT_TRUE(killed_by_sigsys(run_locked([] {
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    ::execve("/bin/true", argv, nullptr);
    return 1;
  })));
}

TEST(LockdownTest, PtraceKills) {
  EXPECT_TRUE(killed_by_sigsys(run_locked([] { return static_cast<int>(::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr)); })));
}

TEST(LockdownTest, ForkKills) {
  // A new process (clone without CLONE_THREAD) is not on the allowlist.
  EXPECT_TRUE(killed_by_sigsys(run_locked([] { return static_cast<int>(::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0)); })));
}

TEST(LockdownTest, ExecutableMmapKills) {
  EXPECT_TRUE(killed_by_sigsys(run_locked([] {
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? 1 : 2;
  })));
}

TEST(LockdownTest, MprotectToExecutableKills) {
  EXPECT_TRUE(killed_by_sigsys(run_locked([] {
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    return ::mprotect(p, 4096, PROT_READ | PROT_EXEC);
  })));
}

TEST(LockdownTest, ThreadsStillStart) {
  const int st = run_locked([] {
    int v = 0;
    std::thread t([&] { v = 7; });
    t.join();
    return v == 7 ? 0 : 1;
  });
  EXPECT_EQ(exit_code(st), 0) << "status " << st;
}

std::string read_status(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string field(const std::string& status, const std::string& name) {
  const size_t at = status.find("\n" + name + ":");
  if (at == std::string::npos) return "";
  size_t v = at + name.size() + 2;
  while (v < status.size() && (status[v] == ' ' || status[v] == '\t')) ++v;
  return status.substr(v, status.find('\n', v) - v);
}

TEST(LockdownTest, ProcStatusShowsSeccompAndNoNewPrivs) {
  int to_parent[2], to_child[2];
  ASSERT_EQ(::pipe(to_parent), 0);
  ASSERT_EQ(::pipe(to_child), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(to_parent[0]);
    ::close(to_child[1]);
    auto rep = lock_down(test_options());
    const char ok = rep.has_value() ? 'y' : 'n';
    if (::write(to_parent[1], &ok, 1) != 1) ::_exit(2);
    char c = 0;
    if (::read(to_child[0], &c, 1) != 1) ::_exit(3);  // wait while the parent inspects us
    ::_exit(0);
  }
  ::close(to_parent[1]);
  ::close(to_child[0]);
  char ok = 0;
  ASSERT_EQ(::read(to_parent[0], &ok, 1), 1);
  EXPECT_EQ(ok, 'y');
  const std::string status = read_status(pid);
  EXPECT_EQ(field(status, "Seccomp"), "2") << status;
  EXPECT_EQ(field(status, "NoNewPrivs"), "1") << status;
  if (::geteuid() == 0) {
    EXPECT_EQ(field(status, "Uid").substr(0, 5), "65534") << "root drops to nobody";
    EXPECT_EQ(field(status, "CapEff"), "0000000000000000");
  }
  ASSERT_EQ(::write(to_child[1], "x", 1), 1);
  int st = 0;
  ::waitpid(pid, &st, 0);
  EXPECT_EQ(exit_code(st), 0);
  ::close(to_parent[0]);
  ::close(to_child[1]);
}

TEST(LockdownTest, ReportSaysWhatWasApplied) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    auto rep = lock_down(test_options());
    const std::string s = rep.has_value() ? rep->to_string() : "error: " + rep.error().to_string();
    (void)!::write(fds[1], s.data(), s.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  char buf[512] = {0};
  const ssize_t n = ::read(fds[0], buf, sizeof buf - 1);
  ::close(fds[0]);
  ::waitpid(pid, nullptr, 0);
  ASSERT_GT(n, 0);
  const std::string report(buf, static_cast<size_t>(n));
  EXPECT_NE(report.find("seccomp kill"), std::string::npos) << report;
  if (landlock_abi_version() > 0) {
    EXPECT_NE(report.find("landlock abi " + std::to_string(landlock_abi_version())), std::string::npos) << report;
  } else {
    EXPECT_NE(report.find("degraded"), std::string::npos) << report;
  }
  std::printf("lock-down report: %s\n", report.c_str());
}

TEST(LockdownTest, RefusesWhenThreadsRun) {
  std::thread t([] {});
  // lock_down counts threads before touching anything, so this is safe in the test process.
  auto rep = [] {
    std::atomic<bool> go{false};
    std::thread busy([&] { while (!go.load()) std::this_thread::yield(); });
    auto r = lock_down(LockdownOptions{});
    go = true;
    busy.join();
    return r;
  }();
  t.join();
  EXPECT_THAT(rep, StatusIs(StatusCode::kFailedPrecondition));
}

TEST(SeccompPolicyTest, TableHasAReasonForEveryRule) {
  for (const SyscallRule& r : worker_policy(true)) EXPECT_FALSE(r.why.empty()) << r.nr;
  // The forbidden calls are not allowed by any rule.
  for (const SyscallRule& r : worker_policy(true)) {
    EXPECT_NE(r.nr, SCMP_SYS(execve));
    EXPECT_NE(r.nr, SCMP_SYS(socket));
    EXPECT_NE(r.nr, SCMP_SYS(connect));
    EXPECT_NE(r.nr, SCMP_SYS(ptrace));
    if (r.nr == SCMP_SYS(openat)) {
      EXPECT_EQ(r.kind, RuleKind::kErrno);
    }
  }
}

}  // namespace
}  // namespace ztslm::sandbox
