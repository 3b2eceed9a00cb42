// `ztslm provenance` commands (registered from commands.cc).
#include "cli/commands.h"

namespace ztslm::cli {

void register_provenance_commands(CLI::App& app) { (void)app; }

}  // namespace ztslm::cli
