// `ztslm keys` commands (registered from commands.cc).
#include "cli/commands.h"

namespace ztslm::cli {

void register_keys_commands(CLI::App& app) { (void)app; }

}  // namespace ztslm::cli
