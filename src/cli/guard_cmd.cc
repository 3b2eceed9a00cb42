// `ztslm guard` commands (registered from commands.cc).
#include "cli/commands.h"

namespace ztslm::cli {

void register_guard_commands(CLI::App& app) { (void)app; }

}  // namespace ztslm::cli
