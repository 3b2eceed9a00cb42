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
}

}  // namespace ztslm::cli
