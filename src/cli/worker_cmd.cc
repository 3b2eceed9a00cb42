// `ztslm worker` commands (registered from commands.cc).
#include "cli/commands.h"

namespace ztslm::cli {

void register_worker_commands(CLI::App& app) { (void)app; }

}  // namespace ztslm::cli
