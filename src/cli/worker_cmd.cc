// `ztslm worker`: the sandboxed engine process, started by the gateway (fork + exec) with a
// sealed model memfd and one end of a SOCK_SEQPACKET socketpair. Not for interactive use.
#include <unistd.h>

#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "worker/worker.h"

namespace ztslm::cli {
namespace {

struct WorkerArgs {
  int socket_fd = -1;
  int model_fd = -1;
  int threads = 1;
  std::string chat_format;
  bool allow_degraded = false;
  bool keep_user = false;
  uint32_t uid = 65534;
  uint32_t gid = 65534;
  uint64_t max_address_space_mb = 0;
};

}  // namespace

void register_worker_commands(CLI::App& app) {
  static WorkerArgs a;
  CLI::App* cmd = app.add_subcommand("worker", "internal: the sandboxed engine process the gateway starts");
  cmd->add_option("--fd", a.socket_fd, "inherited SOCK_SEQPACKET socket")->required();
  cmd->add_option("--model-fd", a.model_fd, "inherited sealed memfd holding the model")->required();
  cmd->add_option("-t,--threads", a.threads, "engine threads")->capture_default_str();
  cmd->add_option("--chat-format", a.chat_format, "chat format name or template (default: the model's, else chatml)");
  cmd->add_flag("--allow-degraded", a.allow_degraded, "run without Landlock when the kernel lacks it (audited)");
  cmd->add_flag("--keep-user", a.keep_user, "do not drop root to --uid/--gid");
  cmd->add_option("--uid", a.uid, "unprivileged uid when started as root")->capture_default_str();
  cmd->add_option("--gid", a.gid, "unprivileged gid when started as root")->capture_default_str();
  cmd->add_option("--max-address-space-mb", a.max_address_space_mb, "RLIMIT_AS in MiB (0 = unbounded)");
  cmd->callback([] {
    worker::WorkerOptions opt;
    opt.socket_fd = a.socket_fd;
    opt.model_fd = a.model_fd;
    opt.n_threads = a.threads;
    opt.chat_format = a.chat_format;
    opt.lockdown.allow_degraded = a.allow_degraded;
    opt.lockdown.drop_user_when_root = !a.keep_user;
    opt.lockdown.run_as_uid = a.uid;
    opt.lockdown.run_as_gid = a.gid;
    opt.lockdown.max_address_space_bytes = a.max_address_space_mb << 20;
    const int code = worker::run_worker(opt);
    // Exit at once: atexit handlers and sanitizer reports may need syscalls the sandbox forbids.
    std::fflush(stderr);
    ::_exit(code);
  });
}

}  // namespace ztslm::cli
