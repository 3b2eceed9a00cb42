#include "cli/commands.h"

namespace ztslm::cli {
namespace {
int g_exit_code = 0;
}  // namespace

int last_exit_code() { return g_exit_code; }
void set_exit_code(int code) { g_exit_code = code; }

void register_commands(CLI::App& app) {
  register_generate_command(app);
  register_bench_command(app);
  register_model_commands(app);
  register_serve_commands(app);
  register_worker_commands(app);
  register_keys_commands(app);
  register_policy_commands(app);
  register_guard_commands(app);
  register_audit_commands(app);
  register_provenance_commands(app);
  register_paths_command(app);
}

}  // namespace ztslm::cli
